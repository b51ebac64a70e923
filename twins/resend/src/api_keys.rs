//! API keys. A created token authenticates as the account that created it
//! (`sending_access` tokens may only send); deleting the key revokes it.

use serde_json::{Value, json};
use wt_sdk::store::{get_json, set_json};
use wt_sdk::{Error, Request, Response, ids};

use crate::wire::{self, Token, account, coll, iso, missing, not_found, now_ms, token_key};

const COLL: &str = "api_keys";
pub const PERMISSIONS: &[&str] = &["full_access", "sending_access"];

fn show(key: &Value) -> Value {
    json!({
        "id": key["id"],
        "name": key["name"],
        "created_at": iso(key["created_ms"].as_u64().unwrap_or_default()),
        "last_used_at": null,
    })
}

fn name(body: &mut serde_json::Map<String, Value>) -> Result<String, Error> {
    let name = match body.remove("name") {
        None | Some(Value::Null) => return Err(missing("name")),
        Some(Value::String(s)) if s.trim().is_empty() => return Err(missing("name")),
        Some(Value::String(s)) => s,
        Some(_) => return Err(wire::invalid("Invalid `name` field. It must be a string.")),
    };
    if name.chars().count() > 50 {
        return Err(wire::invalid(
            "Invalid `name` field. It must be at most 50 characters.",
        ));
    }
    Ok(name)
}

pub fn create(req: &Request) -> Result<Response, Error> {
    let mut body = wire::body(req)?;
    let name = name(&mut body)?;
    let permission = match body.remove("permission") {
        None | Some(Value::Null) => "full_access".to_owned(),
        Some(Value::String(p)) if PERMISSIONS.contains(&p.as_str()) => p,
        Some(_) => {
            return Err(wire::invalid(
                "Invalid `permission` field. Use `full_access` or `sending_access`.",
            ));
        }
    };
    let domain_id = match body.remove("domain_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(d)) => Some(d),
        Some(_) => return Err(wire::invalid("Invalid `domain_id` field.")),
    };
    if let Some(d) = &domain_id {
        if permission != "sending_access" {
            return Err(wire::invalid(
                "The `domain_id` field can only be used with `sending_access` permission.",
            ));
        }
        if !coll("domains").contains(d) {
            return Err(not_found("Domain"));
        }
    }
    let id = ids::uuid_v4();
    let token = format!("re_{}_{}", ids::random_base62(8), ids::random_base62(24));
    let key = json!({
        "id": id, "name": name, "permission": permission, "domain_id": domain_id,
        "created_ms": now_ms(), "token": token,
    });
    coll(COLL).insert(&id, &key)?;
    set_json(
        &token_key(&token),
        &Token {
            account: account(),
            id: id.clone(),
            permission,
            revoked: false,
        },
    )?;
    Ok(Response::ok(&json!({"id": id, "token": token})))
}

pub fn list(req: &Request) -> Result<Response, Error> {
    wire::list(req, &coll(COLL), show)
}

fn load(req: &Request) -> Result<Value, Error> {
    coll(COLL)
        .get(wire::id(req))?
        .ok_or_else(|| not_found("API key"))
}

pub fn update(req: &Request) -> Result<Response, Error> {
    let mut key = load(req)?;
    let mut body = wire::body(req)?;
    key["name"] = json!(name(&mut body)?);
    let id = key["id"].as_str().unwrap_or_default().to_owned();
    coll(COLL).put(&id, &key)?;
    Ok(Response::ok(&json!({"object": "api_key", "id": id})))
}

pub fn delete(req: &Request) -> Result<Response, Error> {
    let key = load(req)?;
    let id = key["id"].as_str().unwrap_or_default().to_owned();
    coll(COLL).remove(&id)?;
    if let Some(token) = key["token"].as_str() {
        let tk = token_key(token);
        if let Some(mut t) = get_json::<Token>(&tk)? {
            t.revoked = true;
            set_json(&tk, &t)?;
        }
    }
    Ok(Response::ok(
        &json!({"object": "api_key", "id": id, "deleted": true}),
    ))
}

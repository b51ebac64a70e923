//! JWT templates, and the tokens `POST /v1/sessions/{id}/tokens/{name}`
//! mints from them.
//!
//! A template's `claims` are JSON in which Clerk's shortcodes are expanded
//! per token: a string that is exactly `{{user.first_name}}` becomes that
//! value (of any JSON type; `{{user.public_metadata.plan}}` reaches inside),
//! and a shortcode inside longer text is interpolated as text. Unknown or
//! unset values are `null`. Tokens carry the default claims `azp`, `exp`,
//! `iat`, `iss`, `jti`, `nbf` (`iat` minus `allowed_clock_skew`) and `sub`
//! besides, which templates may not override.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use wt_sdk::signature::hmac_sha256;
use wt_sdk::{Error, Request, Response, clock, config, ids};

use crate::users::reject_unknown;
use crate::wire::{self, all, boolean, coll, error, integer, new_id, now, string};
use crate::{jwt, organizations, sessions, users};

pub const COLL: &str = "jwt_templates";

/// Claims every template token carries and templates may not set.
pub const RESERVED: &[&str] = &["azp", "exp", "iat", "iss", "jti", "nbf", "sub"];

const FIELDS: &[&str] = &[
    "name",
    "claims",
    "lifetime",
    "allowed_clock_skew",
    "custom_signing_key",
    "signing_algorithm",
    "signing_key",
];

/// The template as the API shows it: without its signing key.
fn show(t: &Value) -> Value {
    let mut out = t.clone();
    if let Some(map) = out.as_object_mut() {
        map.remove("signing_key");
    }
    out
}

fn by_name(name: &str, except: Option<&str>) -> Result<Option<Value>, Error> {
    Ok(all(COLL)?
        .into_iter()
        .find(|t| t["name"] == name && Some(t["id"].as_str().unwrap_or_default()) != except))
}

/// Applies the fields of a create or update body to `t`.
fn apply(t: &mut Value, body: &mut Map<String, Value>, id: &str) -> Result<(), Error> {
    let name = wire::required_string(body, "name")?;
    if by_name(&name, Some(id))?.is_some() {
        return Err(wire::with_param(
            error(
                422,
                "form_identifier_exists",
                "That name is taken. Please try another.",
                "A JWT template with this name already exists.",
            ),
            "name",
        ));
    }
    let claims = match body.remove("claims") {
        None | Some(Value::Null) => return Err(wire::missing("claims")),
        Some(Value::Object(c)) => c,
        Some(_) => return Err(wire::invalid("claims", "claims must be a JSON object.")),
    };
    if let Some(reserved) = claims.keys().find(|k| RESERVED.contains(&k.as_str())) {
        return Err(wire::value_invalid(
            "claims",
            format!("{reserved} is a reserved claim and cannot be set by a template."),
        ));
    }
    let lifetime = integer(body, "lifetime")?.unwrap_or(60);
    if !(30..=315_360_000).contains(&lifetime) {
        return Err(wire::value_invalid(
            "lifetime",
            "lifetime must be between 30 and 315360000.",
        ));
    }
    let skew = integer(body, "allowed_clock_skew")?.unwrap_or(5);
    if skew > 300 {
        return Err(wire::value_invalid(
            "allowed_clock_skew",
            "allowed_clock_skew must be between 0 and 300.",
        ));
    }
    let custom = boolean(body, "custom_signing_key")?.unwrap_or(false);
    let algorithm = string(body, "signing_algorithm")?;
    let key = string(body, "signing_key")?;
    let algorithm = if custom {
        // HS256 is the custom algorithm the twin signs with; other
        // algorithms would need the customer's private key parsed.
        if algorithm.as_deref() != Some("HS256") {
            return Err(wire::value_invalid(
                "signing_algorithm",
                "The twin signs with a custom key only as HS256.",
            ));
        }
        let key = key
            .filter(|k| !k.is_empty())
            .ok_or_else(|| wire::missing("signing_key"))?;
        t["signing_key"] = json!(key);
        "HS256".to_owned()
    } else {
        if algorithm.as_deref().is_some_and(|a| a != "RS256") {
            return Err(wire::value_invalid(
                "signing_algorithm",
                "Without a custom signing key, templates are signed with RS256.",
            ));
        }
        if let Some(map) = t.as_object_mut() {
            map.remove("signing_key");
        }
        "RS256".to_owned()
    };
    t["name"] = json!(name);
    t["claims"] = Value::Object(claims);
    t["lifetime"] = json!(lifetime);
    t["allowed_clock_skew"] = json!(skew);
    t["custom_signing_key"] = json!(custom);
    t["signing_algorithm"] = json!(algorithm);
    t["updated_at"] = json!(now());
    Ok(())
}

pub fn create(req: &Request) -> Result<Response, Error> {
    let mut body = wire::body(req)?;
    reject_unknown(&body, FIELDS)?;
    let id = new_id("jtmp");
    let mut t = json!({"object": "jwt_template", "id": id, "created_at": now()});
    apply(&mut t, &mut body, &id)?;
    coll(COLL).insert(&id, &t)?;
    Ok(Response::ok(&show(&t)))
}

fn load(req: &Request) -> Result<Value, Error> {
    coll(COLL)
        .get(wire::param(req, "template_id"))?
        .ok_or_else(|| wire::not_found("JWT template"))
}

pub fn retrieve(req: &Request) -> Result<Response, Error> {
    Ok(Response::ok(&show(&load(req)?)))
}

pub fn list(req: &Request) -> Result<Response, Error> {
    let (limit, offset) = wire::paging(req)?;
    let shown: Vec<Value> = all(COLL)?.iter().map(show).collect();
    Ok(Response::ok(&wire::page(shown, limit, offset)))
}

pub fn update(req: &Request) -> Result<Response, Error> {
    let mut t = load(req)?;
    let id = t["id"].as_str().unwrap_or_default().to_owned();
    let mut body = wire::body(req)?;
    reject_unknown(&body, FIELDS)?;
    apply(&mut t, &mut body, &id)?;
    coll(COLL).put(&id, &t)?;
    Ok(Response::ok(&show(&t)))
}

pub fn delete(req: &Request) -> Result<Response, Error> {
    let t = load(req)?;
    let id = t["id"].as_str().unwrap_or_default();
    coll(COLL).remove(id)?;
    Ok(wire::deleted("jwt_template", id))
}

/// The value a shortcode path (`user.first_name`, `org.slug`,
/// `user.public_metadata.plan`) names, `null` when unknown or unset.
fn lookup(path: &str, user: &Value, org: &Value) -> Value {
    let mut parts = path.trim().split('.');
    let root = parts.next().unwrap_or_default();
    let field = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    let base = match (root, field) {
        ("user", "primary_email_address") => {
            users::primary_email(user).map_or(Value::Null, Value::String)
        }
        ("user", "primary_phone_address") => user["phone_numbers"]
            .as_array()
            .and_then(|p| {
                p.iter()
                    .find(|p| p["id"] == user["primary_phone_number_id"])
                    .map(|p| p["phone_number"].clone())
            })
            .unwrap_or(Value::Null),
        ("user", "full_name") => {
            let parts: Vec<&str> = ["first_name", "last_name"]
                .iter()
                .filter_map(|f| user[*f].as_str())
                .collect();
            if parts.is_empty() {
                Value::Null
            } else {
                json!(parts.join(" "))
            }
        }
        ("user", "email_verified") => json!(user["primary_email_address_id"].is_string()),
        ("user", "phone_number_verified") => json!(user["primary_phone_number_id"].is_string()),
        ("user", f) => user.get(f).cloned().unwrap_or(Value::Null),
        ("org", f) => org.get(f).cloned().unwrap_or(Value::Null),
        _ => Value::Null,
    };
    rest.iter()
        .try_fold(base, |v, k| v.get(*k).cloned())
        .unwrap_or(Value::Null)
}

/// Expands shortcodes in a template's claims.
fn expand(v: &Value, user: &Value, org: &Value) -> Value {
    match v {
        Value::String(s) => {
            let trimmed = s.trim();
            if let Some(inner) = trimmed
                .strip_prefix("{{")
                .and_then(|r| r.strip_suffix("}}"))
                && !inner.contains("{{")
            {
                return lookup(inner, user, org);
            }
            let mut out = String::new();
            let mut rest = s.as_str();
            while let Some(start) = rest.find("{{") {
                let Some(len) = rest[start..].find("}}") else {
                    break;
                };
                out.push_str(&rest[..start]);
                match lookup(&rest[start + 2..start + len], user, org) {
                    Value::Null => {}
                    Value::String(x) => out.push_str(&x),
                    other => out.push_str(&other.to_string()),
                }
                rest = &rest[start + len + 2..];
            }
            out.push_str(rest);
            Value::String(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|i| expand(i, user, org)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), expand(v, user, org)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A token for `session` from the template named `name`.
pub fn token(session: &Value, name: &str, expires_in: Option<u64>) -> Result<String, Error> {
    let t = by_name(name, None)?.ok_or_else(|| wire::not_found("JWT template"))?;
    let user_id = session["user_id"].as_str().unwrap_or_default();
    let user = coll(users::COLL).get(user_id)?.unwrap_or(Value::Null);
    let org = match session["last_active_organization_id"].as_str() {
        Some(org_id) => {
            let mut o = organizations::load(org_id).unwrap_or(Value::Null);
            if let Some(m) = organizations::membership(org_id, user_id)? {
                o["role"] = m["role"].clone();
            }
            o
        }
        None => Value::Null,
    };
    let iat = clock::wall_millis() / 1000;
    let lifetime = expires_in.unwrap_or_else(|| t["lifetime"].as_u64().unwrap_or(60));
    let skew = t["allowed_clock_skew"].as_u64().unwrap_or(5);
    let mut claims = match expand(&t["claims"], &user, &org) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let azp =
        config::string("authorized-party").unwrap_or_else(|| sessions::DEFAULT_AZP.to_owned());
    for (k, v) in [
        ("azp", json!(azp)),
        ("exp", json!(iat + lifetime)),
        ("iat", json!(iat)),
        ("iss", json!(sessions::issuer())),
        ("jti", json!(ids::random_base62(20).to_ascii_lowercase())),
        ("nbf", json!(iat.saturating_sub(skew))),
        ("sub", json!(user_id)),
    ] {
        claims.insert(k.to_owned(), v);
    }
    let claims = Value::Object(claims);
    if let Some(secret) = t["signing_key"].as_str() {
        let header = URL_SAFE_NO_PAD.encode(json!({"alg": "HS256", "typ": "JWT"}).to_string());
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let input = format!("{header}.{payload}");
        let mac = hmac_sha256(secret.as_bytes(), input.as_bytes());
        return Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac)));
    }
    let (kid, key) = jwt::signing_key()?;
    Ok(jwt::sign(&kid, &key, &claims))
}

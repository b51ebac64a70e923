//! Sign-in tokens: single-use tickets that sign a user in without a
//! password (`POST /v1/sign_in_tokens`, and revoke). The ticket itself is
//! shown only on create, as on Clerk.

use serde_json::{Value, json};
use wt_sdk::{Error, Request, Response, ids};

use crate::sessions;
use crate::users::{self, reject_unknown};
use crate::wire::{self, coll, error, integer, new_id, now, string};

pub const COLL: &str = "sign_in_tokens";

/// A token's lifetime unless `expires_in_seconds` says otherwise (30 days,
/// Clerk's default).
pub const DEFAULT_TTL_SECS: u64 = 30 * 24 * 3600;

pub fn create(req: &Request) -> Result<Response, Error> {
    let mut body = wire::body(req)?;
    reject_unknown(&body, &["user_id", "expires_in_seconds", "org_id"])?;
    let user_id = wire::required_string(&mut body, "user_id")?;
    users::load(&user_id)?;
    let ttl = integer(&mut body, "expires_in_seconds")?.unwrap_or(DEFAULT_TTL_SECS);
    if ttl == 0 || ttl > 315_360_000 {
        return Err(wire::value_invalid(
            "expires_in_seconds",
            "expires_in_seconds must be between 1 and 315360000.",
        ));
    }
    if let Some(org) = string(&mut body, "org_id")?
        && crate::organizations::membership(&org, &user_id)?.is_none()
    {
        return Err(wire::value_invalid(
            "org_id",
            "org_id must be an organization the user is a member of.",
        ));
    }
    let at = now();
    let id = new_id("sit");
    let ticket = ids::random_base62(64);
    let stored = json!({
        "object": "sign_in_token",
        "id": id,
        "user_id": user_id,
        "status": "pending",
        "expires_at": at + ttl * 1000,
        "created_at": at,
        "updated_at": at,
    });
    coll(COLL).insert(&id, &stored)?;
    let mut out = show(&stored);
    out["token"] = json!(ticket);
    out["url"] = json!(format!(
        "{}/v1/tickets/accept?ticket={ticket}",
        sessions::issuer()
    ));
    Ok(Response::ok(&out))
}

/// The token as the API shows it (without the ticket).
fn show(t: &Value) -> Value {
    json!({
        "object": "sign_in_token",
        "id": t["id"],
        "user_id": t["user_id"],
        "status": t["status"],
        "created_at": t["created_at"],
        "updated_at": t["updated_at"],
    })
}

pub fn revoke(req: &Request) -> Result<Response, Error> {
    let id = wire::param(req, "sign_in_token_id");
    let mut t = coll(COLL)
        .get(id)?
        .ok_or_else(|| wire::not_found("Sign in token"))?;
    if t["status"] != "pending" {
        return Err(error(
            400,
            "sign_in_token_not_pending",
            "sign in token is not pending",
            "Only pending sign in tokens can be revoked.",
        ));
    }
    t["status"] = json!("revoked");
    t["updated_at"] = json!(now());
    coll(COLL).put(id, &t)?;
    Ok(Response::ok(&show(&t)))
}

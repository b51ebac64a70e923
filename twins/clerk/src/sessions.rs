//! Sessions and their tokens.
//!
//! A session is `active` until revoked (`revoked`), its user is deleted
//! (`removed`), or twin time passes its `expire_at` (7 days, `expired`) or
//! `abandon_at` (30 days, `abandoned`); the time-driven states are computed
//! on every read, so advancing the twin clock is enough.
//!
//! `POST /v1/sessions/{id}/tokens` mints an RS256 session token signed with
//! the account's key (see [`crate::jwt`]). Its `iat`/`nbf`/`exp` are real
//! wall time, not twin time: the SDKs check them against the machine clock,
//! exactly as they check webhook timestamps.

use serde_json::{Value, json};
use wt_sdk::{Error, Request, Response, clock, config};

use crate::wire::{self, all, coll, error, integer, new_id, now, query_list, string};
use crate::{jwt, jwt_templates, organizations, users, webhooks};

pub const COLL: &str = "sessions";

/// How long a session lasts without activity (Clerk's default).
pub const EXPIRE_MS: u64 = 7 * 24 * 3600 * 1000;
/// When an idle session is abandoned (Clerk's default).
pub const ABANDON_MS: u64 = 30 * 24 * 3600 * 1000;
/// A session token's lifetime unless the caller asks otherwise (Clerk's).
pub const TOKEN_TTL_SECS: u64 = 60;
/// The issuer when the `frontend-api` setting is not set.
pub const DEFAULT_ISSUER: &str = "https://wt-twin.clerk.accounts.dev";
/// The authorized party (`azp`) when the `authorized-party` setting is not
/// set: the origin of a local development app.
pub const DEFAULT_AZP: &str = "http://localhost:3000";

const STATUSES: &[&str] = &[
    "active",
    "revoked",
    "ended",
    "expired",
    "removed",
    "abandoned",
    "replaced",
    "pending",
];

/// The session's status at twin time `at`.
pub fn status(session: &Value, at: u64) -> String {
    let stored = session["status"].as_str().unwrap_or("active");
    if stored != "active" {
        return stored.to_owned();
    }
    if session["abandon_at"].as_u64().is_some_and(|t| at >= t) {
        "abandoned".into()
    } else if session["expire_at"].as_u64().is_some_and(|t| at >= t) {
        "expired".into()
    } else {
        "active".into()
    }
}

/// The session as the API shows it now.
pub fn show(session: &Value) -> Value {
    let mut out = session.clone();
    out["status"] = json!(status(session, now()));
    out
}

fn load(req: &Request) -> Result<Value, Error> {
    coll(COLL)
        .get(wire::param(req, "session_id"))?
        .ok_or_else(|| wire::not_found("Session"))
}

pub fn create(req: &Request) -> Result<Response, Error> {
    let mut body = wire::body(req)?;
    users::reject_unknown(&body, &["user_id", "active_organization_id"])?;
    let user_id = wire::required_string(&mut body, "user_id")?;
    let user = users::load(&user_id)?;
    if user["banned"] == true {
        return Err(error(
            403,
            "user_banned",
            "user is banned",
            "This user is banned and cannot sign in.",
        ));
    }
    if user["locked"] == true {
        return Err(error(
            403,
            "user_locked",
            "user is locked",
            "This user is locked and cannot sign in.",
        ));
    }
    let org = string(&mut body, "active_organization_id")?;
    if let Some(org) = &org
        && organizations::membership(org, &user_id)?.is_none()
    {
        return Err(wire::value_invalid(
            "active_organization_id",
            "active_organization_id must be an organization the user is a member of.",
        ));
    }
    let at = now();
    let id = new_id("sess");
    let session = json!({
        "object": "session",
        "id": id,
        "user_id": user_id,
        "client_id": new_id("client"),
        "actor": null,
        "status": "active",
        "last_active_organization_id": org,
        "last_active_at": at,
        "expire_at": at + EXPIRE_MS,
        "abandon_at": at + ABANDON_MS,
        "updated_at": at,
        "created_at": at,
    });
    coll(COLL).insert(&id, &session)?;
    users::touch_sign_in(&user_id)?;
    webhooks::emit("session.created", session.clone())?;
    Ok(Response::ok(&session))
}

pub fn retrieve(req: &Request) -> Result<Response, Error> {
    Ok(Response::ok(&show(&load(req)?)))
}

pub fn list(req: &Request) -> Result<Response, Error> {
    let (limit, offset) = wire::paging(req)?;
    let user_ids = query_list(req, "user_id");
    let client_ids = query_list(req, "client_id");
    if user_ids.is_empty() && client_ids.is_empty() {
        return Err(wire::missing("user_id"));
    }
    let wanted = query_list(req, "status");
    if let Some(bad) = wanted.iter().find(|s| !STATUSES.contains(&s.as_str())) {
        return Err(wire::value_invalid(
            "status",
            format!("{bad} is not a valid session status."),
        ));
    }
    let at = now();
    let mut out: Vec<Value> = all(COLL)?
        .into_iter()
        .filter(|s| {
            (user_ids.is_empty() || user_ids.iter().any(|u| s["user_id"] == u.as_str()))
                && (client_ids.is_empty()
                    || client_ids.iter().any(|c| s["client_id"] == c.as_str()))
                && (wanted.is_empty() || wanted.contains(&status(s, at)))
        })
        .map(|s| show(&s))
        .collect();
    out.reverse();
    Ok(Response::ok(&wire::page(out, limit, offset)))
}

pub fn revoke(req: &Request) -> Result<Response, Error> {
    let mut session = load(req)?;
    if status(&session, now()) == "active" {
        session["status"] = json!("revoked");
        session["updated_at"] = json!(now());
        coll(COLL).put(session["id"].as_str().unwrap_or_default(), &session)?;
        webhooks::emit("session.revoked", session.clone())?;
    }
    Ok(Response::ok(&show(&session)))
}

/// Ends every active session of `user_id` as revoked (ban, password reset).
pub fn revoke_all(user_id: &str) -> Result<(), Error> {
    end_all(user_id, "revoked")
}

/// Marks the sessions of a deleted user as removed.
pub fn user_removed(user_id: &str) -> Result<(), Error> {
    end_all(user_id, "removed")
}

fn end_all(user_id: &str, to: &str) -> Result<(), Error> {
    let at = now();
    for mut s in all(COLL)? {
        if s["user_id"] == user_id && status(&s, at) == "active" {
            s["status"] = json!(to);
            s["updated_at"] = json!(at);
            coll(COLL).put(s["id"].as_str().unwrap_or_default(), &s)?;
            webhooks::emit(&format!("session.{to}"), s)?;
        }
    }
    Ok(())
}

/// `expires_in_seconds` of a token request: 30 s to 10 years.
fn token_lifetime(req: &Request) -> Result<Option<u64>, Error> {
    let mut body = wire::body(req)?;
    users::reject_unknown(&body, &["expires_in_seconds"])?;
    match integer(&mut body, "expires_in_seconds")? {
        None => Ok(None),
        Some(n) if (30..=315_360_000).contains(&n) => Ok(Some(n)),
        Some(_) => Err(wire::value_invalid(
            "expires_in_seconds",
            "expires_in_seconds must be between 30 and 315360000.",
        )),
    }
}

/// The issuer (`iss`) of this twin's tokens: the `frontend-api` setting.
pub fn issuer() -> String {
    config::string("frontend-api").unwrap_or_else(|| DEFAULT_ISSUER.to_owned())
}

/// The session token's claims, as Clerk's version 2 session tokens carry
/// them (`o` only with an active organization).
pub fn claims(session: &Value, ttl_secs: u64) -> Result<Value, Error> {
    let iat = clock::wall_millis() / 1000;
    let azp = config::string("authorized-party").unwrap_or_else(|| DEFAULT_AZP.to_owned());
    let mut claims = json!({
        "azp": azp,
        "exp": iat + ttl_secs,
        "iat": iat,
        "iss": issuer(),
        "nbf": iat.saturating_sub(10),
        "sid": session["id"],
        "sub": session["user_id"],
        "v": 2,
    });
    if let (Some(org), Some(user)) = (
        session["last_active_organization_id"].as_str(),
        session["user_id"].as_str(),
    ) && let Some(m) = organizations::membership(org, user)?
    {
        let role = m["role"].as_str().unwrap_or_default();
        let slug = organizations::load(org)
            .map(|o| o["slug"].clone())
            .unwrap_or(Value::Null);
        claims["o"] = json!({
            "id": org,
            "rol": role.strip_prefix("org:").unwrap_or(role),
            "slg": slug,
        });
    }
    Ok(claims)
}

pub fn create_token(req: &Request) -> Result<Response, Error> {
    let session = load(req)?;
    let ttl = token_lifetime(req)?.unwrap_or(TOKEN_TTL_SECS);
    // Clerk answers a token request for a session that ended as if the
    // session were gone.
    if status(&session, now()) != "active" {
        return Err(wire::not_found("Session"));
    }
    let claims = claims(&session, ttl)?;
    let (kid, key) = jwt::signing_key()?;
    Ok(Response::ok(
        &json!({"object": "token", "jwt": jwt::sign(&kid, &key, &claims)}),
    ))
}

/// `POST /v1/sessions/{id}/tokens/{template}`: a token shaped by the named
/// JWT template (see [`jwt_templates`]).
pub fn create_token_from_template(req: &Request) -> Result<Response, Error> {
    let session = load(req)?;
    let ttl = token_lifetime(req)?;
    if status(&session, now()) != "active" {
        return Err(wire::not_found("Session"));
    }
    let jwt = jwt_templates::token(&session, wire::param(req, "template_name"), ttl)?;
    Ok(Response::ok(&json!({"object": "token", "jwt": jwt})))
}

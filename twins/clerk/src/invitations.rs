//! Invitations to sign up: create, list, revoke. A pending invitation
//! expires when twin time passes its `expires_at` (computed on read).

use serde_json::{Map, Value, json};
use wt_sdk::{Error, Request, Response, ids};

use crate::sessions;
use crate::users::{self, reject_unknown, valid_email};
use crate::wire::{
    self, all, boolean, coll, error, integer, metadata, new_id, now, query_list, string,
};

pub const COLL: &str = "invitations";

/// Days an invitation stays valid unless `expires_in_days` says otherwise.
pub const DEFAULT_DAYS: u64 = 30;
const DAY_MS: u64 = 24 * 3600 * 1000;

const STATUSES: &[&str] = &["pending", "accepted", "revoked", "expired"];

/// The invitation's status at twin time `at`.
pub fn status(inv: &Value, at: u64) -> String {
    let stored = inv["status"].as_str().unwrap_or("pending");
    if stored == "pending" && inv["expires_at"].as_u64().is_some_and(|t| at >= t) {
        "expired".into()
    } else {
        stored.to_owned()
    }
}

fn show(inv: &Value) -> Value {
    let mut out = inv.clone();
    out["status"] = json!(status(inv, now()));
    out
}

fn pending_for(email: &str) -> Result<bool, Error> {
    let at = now();
    Ok(all(COLL)?.iter().any(|i| {
        i["email_address"]
            .as_str()
            .is_some_and(|e| e.eq_ignore_ascii_case(email))
            && status(i, at) == "pending"
    }))
}

/// Fields `POST /v1/invitations` accepts.
const CREATE_FIELDS: &[&str] = &[
    "email_address",
    "public_metadata",
    "redirect_url",
    "notify",
    "ignore_existing",
    "expires_in_days",
    "template_slug",
];

/// `POST /v1/invitations`: checks the request (and, unless
/// `ignore_existing`, that the address is free to invite), then stores a
/// pending invitation with a fresh ticket URL.
pub fn create(req: &Request) -> Result<Response, Error> {
    let mut body = wire::body(req)?;
    reject_unknown(&body, CREATE_FIELDS)?;
    let email = wire::required_string(&mut body, "email_address")?;
    if !valid_email(&email) {
        return Err(wire::invalid(
            "email_address",
            "email_address must be a valid email address.",
        ));
    }
    let public = metadata(&mut body, "public_metadata")?.unwrap_or_default();
    let redirect = redirect_url(&mut body)?;
    // Twin invitations send no email, so `notify` is checked and ignored.
    boolean(&mut body, "notify")?;
    let ignore_existing = boolean(&mut body, "ignore_existing")?.unwrap_or(false);
    let days = expires_in_days(&mut body)?;
    check_template(&mut body)?;
    if !ignore_existing {
        ensure_invitable(&email)?;
    }
    let at = now();
    let id = new_id("inv");
    let url = ticket_url(redirect.as_deref());
    let inv = json!({
        "object": "invitation",
        "id": id,
        "email_address": email,
        "public_metadata": public,
        "revoked": false,
        "status": "pending",
        "url": url,
        "expires_at": at + days * DAY_MS,
        "created_at": at,
        "updated_at": at,
    });
    coll(COLL).insert(&id, &inv)?;
    Ok(Response::ok(&inv))
}

/// `redirect_url`, which must be an http(s) URL.
fn redirect_url(body: &mut Map<String, Value>) -> Result<Option<String>, Error> {
    let redirect = string(body, "redirect_url")?;
    if let Some(r) = &redirect
        && !(r.starts_with("https://") || r.starts_with("http://"))
    {
        return Err(wire::invalid(
            "redirect_url",
            "redirect_url must be a valid URL.",
        ));
    }
    Ok(redirect)
}

/// `expires_in_days`: 1 to 365, [`DEFAULT_DAYS`] unless given.
fn expires_in_days(body: &mut Map<String, Value>) -> Result<u64, Error> {
    match integer(body, "expires_in_days")? {
        None => Ok(DEFAULT_DAYS),
        Some(d) if (1..=365).contains(&d) => Ok(d),
        Some(_) => Err(wire::value_invalid(
            "expires_in_days",
            "expires_in_days must be between 1 and 365.",
        )),
    }
}

/// `template_slug`: one of the two invitation templates, when given.
fn check_template(body: &mut Map<String, Value>) -> Result<(), Error> {
    match string(body, "template_slug")?.as_deref() {
        None | Some("invitation") | Some("waitlist_invitation") => Ok(()),
        Some(_) => Err(wire::value_invalid(
            "template_slug",
            "template_slug must be invitation or waitlist_invitation.",
        )),
    }
}

/// Unless `ignore_existing`, an address may not be invited when a user
/// already has it or an invitation to it is still pending.
fn ensure_invitable(email: &str) -> Result<(), Error> {
    if users::holder("email", email).is_some() {
        return Err(wire::with_param(
            error(
                422,
                "form_identifier_exists",
                "That email address is taken. Please try another.",
                "That email address is taken. Please try another.",
            ),
            "email_address",
        ));
    }
    if pending_for(email)? {
        return Err(wire::with_param(
            error(
                400,
                "duplicate_record",
                "duplicate invitation",
                format!("There is already a pending invitation for {email}."),
            ),
            "email_address",
        ));
    }
    Ok(())
}

/// The link the invitee follows: a fresh ticket, and the `redirect_url`
/// to land on afterwards.
fn ticket_url(redirect: Option<&str>) -> String {
    let mut url = format!(
        "{}/v1/tickets/accept?ticket={}",
        sessions::issuer(),
        ids::random_base62(48)
    );
    if let Some(r) = redirect {
        url.push_str("&redirect_url=");
        url.push_str(&wire::percent_encode(r));
    }
    url
}

pub fn list(req: &Request) -> Result<Response, Error> {
    let (limit, offset) = wire::paging(req)?;
    let wanted = query_list(req, "status");
    if let Some(bad) = wanted.iter().find(|s| !STATUSES.contains(&s.as_str())) {
        return Err(wire::value_invalid(
            "status",
            format!("{bad} is not a valid invitation status."),
        ));
    }
    let query = req
        .query_param("query")
        .filter(|q| !q.is_empty())
        .map(|q| q.to_lowercase());
    let mut out: Vec<Value> = all(COLL)?
        .iter()
        .map(show)
        .filter(|i| {
            (wanted.is_empty() || wanted.iter().any(|s| i["status"] == s.as_str()))
                && query.as_ref().is_none_or(|q| {
                    i["email_address"]
                        .as_str()
                        .is_some_and(|e| e.to_lowercase().contains(q.as_str()))
                })
        })
        .collect();
    wire::order(
        req,
        &mut out,
        "-created_at",
        &["created_at", "email_address", "expires_at"],
        |i, f| i[f].clone(),
    )?;
    Ok(Response::ok(&wire::page(out, limit, offset)))
}

pub fn revoke(req: &Request) -> Result<Response, Error> {
    let id = wire::param(req, "invitation_id");
    let mut inv = coll(COLL)
        .get(id)?
        .ok_or_else(|| wire::not_found("Invitation"))?;
    let current = status(&inv, now());
    if current != "pending" {
        return Err(error(
            400,
            "invitation_not_pending",
            "invitation is not pending",
            format!("Only pending invitations can be revoked; this one is {current}."),
        ));
    }
    inv["status"] = json!("revoked");
    inv["revoked"] = json!(true);
    inv["updated_at"] = json!(now());
    coll(COLL).put(id, &inv)?;
    Ok(Response::ok(&inv))
}

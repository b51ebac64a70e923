//! Webhooks: the `/webhooks` API and delivery of email events.
//!
//! Resend delivers through Svix, so every event goes out signed the Svix way
//! ([`wt_sdk::svix`]) to the account's enabled webhooks that subscribe to its
//! type, through the host's outbound queue (sent after the request commits,
//! retried, logged). Events follow what `last_event` reports: a mail sent
//! now emits `email.sent` and its outcome at once; a scheduled mail emits
//! `email.scheduled`, and `email.sent` plus its outcome once twin time passes
//! `scheduled_at`. Domains emit `domain.created`, `domain.updated` (on
//! update, on verify, and when verification completes) and
//! `domain.deleted`. The twin only runs during requests, so events due at a
//! later twin time are emitted by the account's next request (see
//! [`emit_due`]).

use serde_json::{Map, Value, json};
use wt_sdk::store::{self, scan_prefix};
use wt_sdk::{Error, Page, Request, Response, ids, log, outbound, svix};

use crate::wire::{self, coll, iso, missing, now_ms};
use crate::{domains, emails};

const COLL: &str = "webhooks";
/// Bounds the scan over an account's webhooks on every event.
const MAX_WEBHOOKS: u32 = 100;

/// Every event type Resend accepts in a webhook's `events`.
pub const EVENT_TYPES: &[&str] = &[
    "email.sent",
    "email.scheduled",
    "email.delivered",
    "email.delivery_delayed",
    "email.complained",
    "email.bounced",
    "email.opened",
    "email.clicked",
    "email.received",
    "email.failed",
    "email.suppressed",
    "contact.created",
    "contact.updated",
    "contact.deleted",
    "domain.created",
    "domain.updated",
    "domain.deleted",
];

fn endpoint(value: Option<Value>) -> Result<Option<String>, Error> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(url))
            if (url.starts_with("https://") || url.starts_with("http://"))
                && url.len() > "http://".len()
                && !url.contains(char::is_whitespace) =>
        {
            Ok(Some(url))
        }
        Some(_) => Err(wire::invalid(
            "Invalid `endpoint` field. It must be a valid URL.",
        )),
    }
}

fn events(value: Option<Value>) -> Result<Option<Vec<String>>, Error> {
    let bad = |detail: String| wire::invalid(format!("Invalid `events` field. {detail}"));
    let items = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(bad("It must be a list of event types.".into())),
    };
    if items.is_empty() {
        return Err(bad("At least one event type is required.".into()));
    }
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        match item.as_str() {
            Some(e) if EVENT_TYPES.contains(&e) => {
                if !out.iter().any(|o| o == e) {
                    out.push(e.to_owned());
                }
            }
            Some(e) => return Err(bad(format!("`{e}` is not a valid event type."))),
            None => return Err(bad("It must be a list of event types.".into())),
        }
    }
    Ok(Some(out))
}

fn show(hook: &Value) -> Value {
    json!({
        "object": "webhook",
        "id": hook["id"],
        "created_at": iso(hook["created_ms"].as_u64().unwrap_or_default()),
        "status": hook["status"],
        "endpoint": hook["endpoint"],
        "events": hook["events"],
        "signing_secret": hook["signing_secret"],
    })
}

fn load(req: &Request) -> Result<Value, Error> {
    wire::load_by_uuid(req, COLL, "Webhook")
}

pub fn create(req: &Request) -> Result<Response, Error> {
    let mut body = wire::body(req)?;
    let url = endpoint(body.remove("endpoint"))?.ok_or_else(|| missing("endpoint"))?;
    let events = events(body.remove("events"))?.ok_or_else(|| missing("events"))?;
    let id = ids::uuid_v4();
    let secret = svix::new_secret();
    let hook = json!({
        "id": id, "created_ms": now_ms(), "status": "enabled",
        "endpoint": url, "events": events, "signing_secret": secret,
    });
    coll(COLL).insert(&id, &hook)?;
    Ok(Response::ok(
        &json!({"object": "webhook", "id": id, "signing_secret": secret}),
    ))
}

pub fn retrieve(req: &Request) -> Result<Response, Error> {
    Ok(Response::ok(&show(&load(req)?)))
}

pub fn list(req: &Request) -> Result<Response, Error> {
    wire::list(req, &coll(COLL), show)
}

pub fn update(req: &Request) -> Result<Response, Error> {
    let mut hook = load(req)?;
    let mut body = wire::body(req)?;
    if let Some(url) = endpoint(body.remove("endpoint"))? {
        hook["endpoint"] = json!(url);
    }
    if let Some(events) = events(body.remove("events"))? {
        hook["events"] = json!(events);
    }
    match body.remove("status") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s == "enabled" || s == "disabled" => hook["status"] = json!(s),
        Some(_) => {
            return Err(wire::invalid(
                "Invalid `status` field. Use `enabled` or `disabled`.",
            ));
        }
    }
    let id = hook["id"].as_str().unwrap_or_default().to_owned();
    coll(COLL).put(&id, &hook)?;
    Ok(Response::ok(&json!({"object": "webhook", "id": id})))
}

pub fn delete(req: &Request) -> Result<Response, Error> {
    let hook = load(req)?;
    let id = hook["id"].as_str().unwrap_or_default();
    coll(COLL).remove(id)?;
    Ok(Response::ok(
        &json!({"object": "webhook", "id": id, "deleted": true}),
    ))
}

pub fn rotate_secret(req: &Request) -> Result<Response, Error> {
    let mut hook = load(req)?;
    let secret = svix::new_secret();
    hook["signing_secret"] = json!(secret);
    let id = hook["id"].as_str().unwrap_or_default().to_owned();
    coll(COLL).put(&id, &hook)?;
    Ok(Response::ok(
        &json!({"object": "webhook", "id": id, "signing_secret": secret}),
    ))
}

/// Sends `{type, created_at, data}` to every enabled webhook of the account
/// that subscribes to `kind`.
pub fn emit(kind: &str, data: Value) -> Result<(), Error> {
    let hooks = coll(COLL).list(&Page::first(MAX_WEBHOOKS), false)?;
    let payload = json!({"type": kind, "created_at": iso(now_ms()), "data": data});
    let body = payload.to_string().into_bytes();
    for hook in hooks.items {
        let wants = hook["events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e == kind));
        if hook["status"] != "enabled" || !wants {
            continue;
        }
        let (Some(url), Some(secret)) =
            (hook["endpoint"].as_str(), hook["signing_secret"].as_str())
        else {
            continue;
        };
        let request = svix::request(url, secret, body.clone())
            .map_err(|e| Error::internal(format!("webhook secret: {e}")))?;
        // A refused destination is the operator's choice, not the API
        // caller's fault: log it and carry on, as Resend would keep the
        // send successful whatever the webhook does.
        if let Err(e) = outbound::enqueue(request) {
            log::warn(format!("webhook {} not queued: {e}", hook["id"]));
        }
    }
    Ok(())
}

/// The `data` of an email event.
fn email_data(email: &Value) -> Value {
    let mut tags = Map::new();
    for t in email["tags"].as_array().into_iter().flatten() {
        if let Some(name) = t["name"].as_str() {
            tags.insert(name.to_owned(), t["value"].clone());
        }
    }
    let id = email["id"].as_str().unwrap_or_default();
    let mut data = json!({
        "email_id": id,
        "from": email["from"],
        "to": email["to"],
        "subject": email["subject"],
        "created_at": iso(email["created_ms"].as_u64().unwrap_or_default()),
        "message_id": format!("<{id}@resend.dev>"),
    });
    if !tags.is_empty() {
        data["tags"] = Value::Object(tags);
    }
    data
}

/// Emits what sending `email` produces now: `email.sent` and the outcome
/// its recipients stand for (`email.complained` follows a delivery, as on
/// Resend).
fn emit_sent(email: &Value) -> Result<(), Error> {
    let data = email_data(email);
    emit("email.sent", data.clone())?;
    match emails::last_event(email, now_ms()) {
        "bounced" => {
            let mut d = data;
            d["bounce"] = json!({
                "type": "Permanent", "subType": "General",
                "message": "The recipient's email provider sent a hard bounce message.",
            });
            emit("email.bounced", d)
        }
        "suppressed" => {
            let mut d = data;
            d["suppressed"] = json!({
                "type": "OnAccountSuppressionList",
                "message": "The recipient is on the account's suppression list.",
            });
            emit("email.suppressed", d)
        }
        "complained" => {
            emit("email.delivered", data.clone())?;
            emit("email.complained", data)
        }
        _ => emit("email.delivered", data),
    }
}

fn due_prefix() -> String {
    wt_sdk::scope::key("webhook-due/")
}

fn due_key(at_ms: u64, id: &str) -> String {
    format!("{}{at_ms:020}/{id}", due_prefix())
}

/// Called once a new email is stored: emits its events now, or
/// `email.scheduled` and a reminder to emit the rest when it is due.
pub fn email_created(email: &Value) -> Result<(), Error> {
    let id = email["id"].as_str().unwrap_or_default();
    match email["scheduled_ms"].as_u64() {
        Some(at) if at > now_ms() => {
            emit("email.scheduled", email_data(email))?;
            store::set(&due_key(at, id), b"email")?;
            Ok(())
        }
        _ => emit_sent(email),
    }
}

/// Called when a scheduled email moves from `old_at` (to `new_at`, or is
/// canceled with `None`).
pub fn email_rescheduled(id: &str, old_at: u64, new_at: Option<u64>) -> Result<(), Error> {
    store::delete(&due_key(old_at, id));
    if let Some(at) = new_at {
        store::set(&due_key(at, id), b"email")?;
    }
    Ok(())
}

/// Emits a `domain.*` event about `domain` (shown with its records).
pub fn domain_event(kind: &str, domain: &Value) -> Result<(), Error> {
    let mut data = domains::show(domain, true);
    if let Some(map) = data.as_object_mut() {
        map.remove("object");
    }
    emit(kind, data)
}

/// Called when verification of `domain` starts: `domain.updated` now, and
/// again when it completes at `done_at` (twin time).
pub fn domain_verifying(domain: &Value, done_at: u64) -> Result<(), Error> {
    domain_event("domain.updated", domain)?;
    let id = domain["id"].as_str().unwrap_or_default();
    store::set(&due_key(done_at, id), b"domain")?;
    Ok(())
}

/// Emits the events whose twin time has come: scheduled emails sent, domain
/// verifications completed.
/// Costs one small scan per request when nothing is due.
pub fn emit_due() -> Result<(), Error> {
    let prefix = due_prefix();
    let now = now_ms();
    for entry in scan_prefix(&prefix, 100, false) {
        let Some((at, id)) = entry.key[prefix.len()..].split_once('/') else {
            continue;
        };
        if !at.parse::<u64>().is_ok_and(|at| at <= now) {
            break;
        }
        let id = id.to_owned();
        store::delete(&entry.key);
        if entry.value == b"domain" {
            if let Some(domain) = coll("domains").get(&id)? {
                domain_event("domain.updated", &domain)?;
            }
        } else if let Some(email) = coll("emails").get(&id)? {
            emit_sent(&email)?;
        }
    }
    Ok(())
}

//! Emails: send, batch, retrieve, list, reschedule, cancel. `last_event` is
//! computed from twin time on every read: scheduled mail is `scheduled`
//! until its time passes, and then (like any sent mail) takes the outcome
//! Resend's test recipients stand for.

use serde_json::{Map, Value, json};
use wt_sdk::{Error, Request, Response, datetime, email, ids};

use crate::webhooks;
use crate::wire::{self, coll, iso, missing, now_ms};

const COLL: &str = "emails";
/// Most recipients across `to`, and separately `cc` and `bcc`.
pub const MAX_RECIPIENTS: usize = 50;
/// Most emails in one batch.
pub const MAX_BATCH: usize = 100;
/// How far ahead mail may be scheduled.
pub const MAX_SCHEDULE_MS: u64 = 30 * 24 * 3600 * 1000;

/// Whether `s` is `email@example.com` or `Name <email@example.com>`.
pub fn valid_address(s: &str) -> bool {
    email::mailbox_address(s).is_some_and(email::is_plausible)
}

/// The bare address of `Name <a@b.c>` or `a@b.c`, lower-cased.
fn bare(s: &str) -> String {
    email::mailbox_address(s)
        .unwrap_or(s.trim())
        .to_ascii_lowercase()
}

const FORMAT_HINT: &str = "The email address needs to follow the `email@example.com` or `Name <email@example.com>` format.";

/// A recipient field: one address or a list of them.
fn addresses(value: Option<Value>, field: &str) -> Result<Option<Vec<String>>, Error> {
    let list = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => vec![s],
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(wire::invalid(format!(
                    "Invalid `{field}` field. {FORMAT_HINT}"
                ))),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(wire::invalid(format!(
                "Invalid `{field}` field. {FORMAT_HINT}"
            )));
        }
    };
    if let Some(bad) = list.iter().find(|a| !valid_address(a)) {
        return Err(wire::invalid(format!(
            "Invalid `{field}` field. The email address `{bad}` is not valid. {FORMAT_HINT}"
        )));
    }
    if list.len() > MAX_RECIPIENTS {
        return Err(wire::invalid(format!(
            "Invalid `{field}` field. Too many recipients: the maximum is {MAX_RECIPIENTS}."
        )));
    }
    Ok(Some(list))
}

fn string(map: &mut Map<String, Value>, field: &str) -> Result<Option<String>, Error> {
    match map.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(wire::invalid(format!(
            "Invalid `{field}` field. It must be a string."
        ))),
    }
}

/// `scheduled_at`: ISO 8601, or Resend's natural language `in 1 min`,
/// `in 2 hours`, `in 1 day`.
pub fn parse_schedule(text: &str, now: u64) -> Option<u64> {
    if let Some(ms) = datetime::parse_millis(text) {
        return Some(ms);
    }
    let rest = text.trim().strip_prefix("in ")?;
    let (n, unit) = rest.trim().split_once(' ')?;
    let n: u64 = n.parse().ok()?;
    let unit_ms = match unit.trim().trim_end_matches('s') {
        "sec" | "second" => 1000,
        "min" | "minute" => 60_000,
        "hour" | "hr" => 3_600_000,
        "day" => 86_400_000,
        _ => return None,
    };
    Some(now + n.checked_mul(unit_ms)?)
}

fn schedule(text: &str) -> Result<u64, Error> {
    let now = now_ms();
    let at = parse_schedule(text, now).ok_or_else(|| {
        wire::invalid(
            "Invalid `scheduled_at` field. The date must be in ISO 8601 format (e.g: \
             2024-08-05T11:52:01.858Z) or in natural language (e.g.: in 1 min).",
        )
    })?;
    if at > now + MAX_SCHEDULE_MS {
        return Err(wire::invalid(
            "Invalid `scheduled_at` field. Emails can be scheduled up to 30 days in advance.",
        ));
    }
    Ok(at)
}

fn tag_part_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn tags(value: Option<Value>) -> Result<Value, Error> {
    let bad = || {
        wire::invalid(
            "Invalid `tags` field. Each tag needs a `name` and a `value` of ASCII letters, \
             numbers, underscores or dashes (at most 256 characters).",
        )
    };
    let items = match value {
        None | Some(Value::Null) => return Ok(Value::Null),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(bad()),
    };
    let mut out = Vec::new();
    for tag in items {
        let (Some(name), value) = (tag["name"].as_str(), &tag["value"]) else {
            return Err(bad());
        };
        let value = match value {
            Value::Null => None,
            Value::String(v) => Some(v.as_str()),
            _ => return Err(bad()),
        };
        if !tag_part_ok(name) || value.is_some_and(|v| !tag_part_ok(v)) {
            return Err(bad());
        }
        out.push(json!({"name": name, "value": value}));
    }
    Ok(Value::Array(out))
}

fn headers(value: Option<Value>) -> Result<Value, Error> {
    match value {
        None | Some(Value::Null) => Ok(Value::Null),
        Some(Value::Object(map)) if map.values().all(Value::is_string) => Ok(Value::Object(map)),
        Some(_) => Err(wire::invalid(
            "Invalid `headers` field. It must be an object of strings.",
        )),
    }
}

/// Keeps each attachment's name and type (not its content).
fn attachments(value: Option<Value>) -> Result<Value, Error> {
    let bad = |m: &str| wire::error(422, "invalid_attachment", m.to_owned());
    let items = match value {
        None | Some(Value::Null) => return Ok(Value::Null),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(bad("Invalid `attachments` field. It must be a list.")),
    };
    let mut out = Vec::new();
    for a in items {
        let filename = a["filename"].as_str();
        let path = a["path"].as_str();
        let has_content = a["content"].is_string() || a["content"].is_array();
        if !has_content && path.is_none() {
            return Err(bad("Attachment must have either a `content` or `path`."));
        }
        let name = filename
            .map(str::to_owned)
            .or_else(|| path.and_then(|p| p.rsplit('/').next()).map(str::to_owned));
        out.push(json!({
            "filename": name,
            "content_type": a["content_type"].as_str(),
        }));
    }
    Ok(Value::Array(out))
}

/// Validates one email (a send, or an item of a batch) into its stored
/// form, with a fresh id.
pub fn build(value: Value, in_batch: bool) -> Result<Value, Error> {
    let Value::Object(mut m) = value else {
        return Err(wire::invalid("Each email must be a JSON object."));
    };
    let from = string(&mut m, "from")?.ok_or_else(|| missing("from"))?;
    if !valid_address(&from) {
        return Err(wire::error(
            422,
            "invalid_from_address",
            format!("Invalid `from` field. {FORMAT_HINT}"),
        ));
    }
    let to = addresses(m.remove("to"), "to")?
        .filter(|t| !t.is_empty())
        .ok_or_else(|| missing("to"))?;
    let subject = string(&mut m, "subject")?.ok_or_else(|| missing("subject"))?;
    let cc = addresses(m.remove("cc"), "cc")?;
    let bcc = addresses(m.remove("bcc"), "bcc")?;
    let reply_to = addresses(m.remove("reply_to"), "reply_to")?;
    let html = string(&mut m, "html")?;
    let text = string(&mut m, "text")?;
    let tags = tags(m.remove("tags"))?;
    let headers = headers(m.remove("headers"))?;
    let scheduled = string(&mut m, "scheduled_at")?;
    let atts = m.remove("attachments").filter(|v| !v.is_null());
    if in_batch && atts.is_some() {
        return Err(wire::invalid(
            "The `attachments` field is not supported for batch emails.",
        ));
    }
    if in_batch && scheduled.is_some() {
        return Err(wire::invalid(
            "The `scheduled_at` field is not supported for batch emails.",
        ));
    }
    let attachments = attachments(atts)?;
    let scheduled_ms = scheduled.as_deref().map(schedule).transpose()?;
    let now = now_ms();
    Ok(json!({
        "id": ids::uuid_v4(),
        "from": from, "to": to, "subject": subject,
        "cc": cc, "bcc": bcc, "reply_to": reply_to,
        "html": html, "text": text, "tags": tags, "headers": headers,
        "attachments": attachments,
        "created_ms": now,
        "scheduled_ms": scheduled_ms,
        "canceled": false,
    }))
}

/// The outcome a sent email reaches, from Resend's test recipients
/// (`bounced@`, `suppressed@`, `complained@`, `delivered@resend.dev`, each
/// also with a `+label`): the first of bounced, suppressed, complained that
/// any recipient stands for, else delivered.
fn outcome(email: &Value) -> &'static str {
    const RANK: [&str; 4] = ["bounced", "suppressed", "complained", "delivered"];
    let mut best = RANK.len() - 1;
    for field in ["to", "cc", "bcc"] {
        for a in email[field].as_array().into_iter().flatten() {
            let addr = bare(a.as_str().unwrap_or_default());
            let Some(local) = addr.strip_suffix("@resend.dev") else {
                continue;
            };
            let name = local.split('+').next().unwrap_or_default();
            if let Some(rank) = RANK.iter().position(|r| *r == name) {
                best = best.min(rank);
            }
        }
    }
    RANK[best]
}

fn is_scheduled(email: &Value, now: u64) -> bool {
    !email["canceled"].as_bool().unwrap_or(false)
        && email["scheduled_ms"].as_u64().is_some_and(|at| at > now)
}

/// The email's `last_event` at twin time `now`.
pub fn last_event(email: &Value, now: u64) -> &'static str {
    if email["canceled"].as_bool().unwrap_or(false) {
        "canceled"
    } else if is_scheduled(email, now) {
        "scheduled"
    } else {
        outcome(email)
    }
}

/// The email as `GET /emails/{id}` shows it (`full`) or as a list item.
pub fn show(email: &Value, full: bool) -> Value {
    let now = now_ms();
    let mut out = json!({
        "object": "email",
        "id": email["id"],
        "to": email["to"],
        "from": email["from"],
        "created_at": iso(email["created_ms"].as_u64().unwrap_or_default()),
        "subject": email["subject"],
        "bcc": email["bcc"],
        "cc": email["cc"],
        "reply_to": email["reply_to"],
        "last_event": last_event(email, now),
        "scheduled_at": email["scheduled_ms"].as_u64().map(iso),
    });
    if full {
        out["html"] = email["html"].clone();
        out["text"] = email["text"].clone();
        out["tags"] = email["tags"].clone();
    }
    out
}

pub fn send(req: &Request) -> Result<Response, Error> {
    let email = build(wire::body_value(req)?, false)?;
    let id = email["id"].as_str().unwrap_or_default().to_owned();
    coll(COLL).insert(&id, &email)?;
    webhooks::email_created(&email)?;
    Ok(Response::ok(&json!({"id": id})))
}

pub fn batch(req: &Request) -> Result<Response, Error> {
    let Value::Array(items) = wire::body_value(req)? else {
        return Err(wire::invalid("The request body must be a list of emails."));
    };
    if items.is_empty() {
        return Err(wire::invalid("The batch must contain at least 1 email."));
    }
    if items.len() > MAX_BATCH {
        return Err(wire::invalid(format!(
            "Too many emails in the batch: the maximum is {MAX_BATCH}."
        )));
    }
    let permissive = match req.header("x-batch-validation").map(str::trim) {
        None | Some("") | Some("strict") => false,
        Some("permissive") => true,
        Some(other) => {
            return Err(wire::invalid(format!(
                "Invalid `x-batch-validation` header `{other}`: use `strict` or `permissive`."
            )));
        }
    };
    let mut built = Vec::new();
    let mut errors = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        match build(item, true) {
            Ok(email) => built.push(email),
            Err(e) if permissive => errors.push(json!({"index": index, "message": e.message})),
            Err(mut e) => {
                e.message = format!("emails[{index}]: {}", e.message);
                return Err(e);
            }
        }
    }
    let mut data = Vec::new();
    for email in &built {
        let id = email["id"].as_str().unwrap_or_default();
        coll(COLL).insert(id, email)?;
        webhooks::email_created(email)?;
        data.push(json!({"id": id}));
    }
    let mut out = json!({"data": data});
    if permissive {
        out["errors"] = Value::Array(errors);
    }
    Ok(Response::ok(&out))
}

/// The email named by the route, or 422 (not a UUID) / 404.
fn load(req: &Request) -> Result<Value, Error> {
    wire::load_by_uuid(req, COLL, "Email")
}

pub fn retrieve(req: &Request) -> Result<Response, Error> {
    Ok(Response::ok(&show(&load(req)?, true)))
}

pub fn list(req: &Request) -> Result<Response, Error> {
    wire::list(req, &coll(COLL), |e| show(e, false))
}

pub fn update(req: &Request) -> Result<Response, Error> {
    let mut email = load(req)?;
    let mut body = wire::body(req)?;
    let at = string(&mut body, "scheduled_at")?.ok_or_else(|| missing("scheduled_at"))?;
    if !is_scheduled(&email, now_ms()) {
        return Err(wire::invalid(format!(
            "This email cannot be updated because it is {}.",
            last_event(&email, now_ms())
        )));
    }
    let old_at = email["scheduled_ms"].as_u64().unwrap_or_default();
    let new_at = schedule(&at)?;
    email["scheduled_ms"] = json!(new_at);
    let id = email["id"].as_str().unwrap_or_default().to_owned();
    coll(COLL).put(&id, &email)?;
    webhooks::email_rescheduled(&id, old_at, Some(new_at))?;
    Ok(Response::ok(&json!({"object": "email", "id": id})))
}

pub fn cancel(req: &Request) -> Result<Response, Error> {
    let mut email = load(req)?;
    if !is_scheduled(&email, now_ms()) {
        return Err(wire::invalid(format!(
            "This email cannot be canceled because it is {}.",
            last_event(&email, now_ms())
        )));
    }
    email["canceled"] = json!(true);
    let id = email["id"].as_str().unwrap_or_default().to_owned();
    coll(COLL).put(&id, &email)?;
    let old_at = email["scheduled_ms"].as_u64().unwrap_or_default();
    webhooks::email_rescheduled(&id, old_at, None)?;
    Ok(Response::ok(&json!({"object": "email", "id": id})))
}

//! Sending domains. A new domain is `not_started`; `POST /domains/{id}/verify`
//! makes it `pending`, and it is `verified` once [`VERIFY_AFTER_MS`] of twin
//! time have passed (computed on read), its DNS records with it.

use serde_json::{Value, json};
use wt_sdk::{Error, Request, Response, ids};

use crate::webhooks;
use crate::wire::{self, coll, iso, missing, not_found, now_ms};

const COLL: &str = "domains";
pub const REGIONS: &[&str] = &["us-east-1", "eu-west-1", "sa-east-1", "ap-northeast-1"];
/// How long verification takes, in twin time.
pub const VERIFY_AFTER_MS: u64 = 60_000;

/// Whether `name` is a plausible DNS name with at least two labels.
pub fn valid_name(name: &str) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    name.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_alphabetic()))
}

pub fn status(domain: &Value, now: u64) -> &'static str {
    match domain["verify_requested_ms"].as_u64() {
        None => "not_started",
        Some(at) if now < at + VERIFY_AFTER_MS => "pending",
        Some(_) => "verified",
    }
}

fn records(domain: &Value, status: &str) -> Value {
    let return_path = domain["custom_return_path"].as_str().unwrap_or("send");
    let region = domain["region"].as_str().unwrap_or("us-east-1");
    json!([
        {"record": "SPF", "name": return_path, "type": "MX", "ttl": "Auto", "status": status,
         "value": format!("feedback-smtp.{region}.amazonses.com"), "priority": 10},
        {"record": "SPF", "name": return_path, "type": "TXT", "ttl": "Auto", "status": status,
         "value": "\"v=spf1 include:amazonses.com ~all\""},
        {"record": "DKIM", "name": "resend._domainkey", "type": "TXT", "ttl": "Auto",
         "status": status, "value": domain["dkim"]},
    ])
}

/// The full domain (`records` included) or its list item.
pub fn show(domain: &Value, full: bool) -> Value {
    let status = status(domain, now_ms());
    let mut out = json!({
        "object": "domain",
        "id": domain["id"],
        "name": domain["name"],
        "status": status,
        "created_at": iso(domain["created_ms"].as_u64().unwrap_or_default()),
        "region": domain["region"],
        "capabilities": {"sending": "enabled", "receiving": "disabled"},
    });
    if full {
        out["records"] = records(domain, status);
        for f in [
            "open_tracking",
            "click_tracking",
            "tls",
            "tracking_subdomain",
        ] {
            out[f] = domain[f].clone();
        }
    }
    out
}

fn opt_bool(body: &mut serde_json::Map<String, Value>, f: &str) -> Result<Option<bool>, Error> {
    match body.remove(f) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(_) => Err(wire::invalid(format!(
            "Invalid `{f}` field. It must be a boolean."
        ))),
    }
}

fn opt_str(body: &mut serde_json::Map<String, Value>, f: &str) -> Result<Option<String>, Error> {
    match body.remove(f) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(wire::invalid(format!(
            "Invalid `{f}` field. It must be a string."
        ))),
    }
}

pub fn create(req: &Request) -> Result<Response, Error> {
    let mut body = wire::body(req)?;
    let name = opt_str(&mut body, "name")?
        .filter(|n| !n.is_empty())
        .ok_or_else(|| missing("name"))?
        .to_ascii_lowercase();
    if !valid_name(&name) {
        return Err(wire::invalid(format!(
            "Invalid `name` field. `{name}` is not a valid domain name."
        )));
    }
    let region = opt_str(&mut body, "region")?.unwrap_or_else(|| "us-east-1".into());
    if !REGIONS.contains(&region.as_str()) {
        return Err(wire::invalid(format!(
            "Invalid `region` field. Use one of: {}.",
            REGIONS.join(", ")
        )));
    }
    let return_path = opt_str(&mut body, "custom_return_path")?.unwrap_or_else(|| "send".into());
    let all = coll(COLL).list(&wt_sdk::Page::first(10_000 - 2), false)?;
    if all.items.iter().any(|d| d["name"] == json!(name)) {
        return Err(wire::error(
            403,
            "validation_error",
            format!("The domain {name} has been registered already."),
        ));
    }
    let id = ids::uuid_v4();
    let domain = json!({
        "id": id, "name": name, "region": region, "custom_return_path": return_path,
        "created_ms": now_ms(), "verify_requested_ms": null,
        "open_tracking": opt_bool(&mut body, "open_tracking")?.unwrap_or(false),
        "click_tracking": opt_bool(&mut body, "click_tracking")?.unwrap_or(false),
        "tls": "opportunistic",
        "tracking_subdomain": opt_str(&mut body, "tracking_subdomain")?,
        "dkim": format!("p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQ{}", ids::random_base62(120)),
    });
    coll(COLL).insert(&id, &domain)?;
    webhooks::domain_event("domain.created", &domain)?;
    let mut out = show(&domain, true);
    out.as_object_mut().map(|o| o.remove("object"));
    Ok(Response::ok(&out))
}

fn load(req: &Request) -> Result<Value, Error> {
    let id = wire::id(req);
    coll(COLL).get(id)?.ok_or_else(|| not_found("Domain"))
}

pub fn retrieve(req: &Request) -> Result<Response, Error> {
    Ok(Response::ok(&show(&load(req)?, true)))
}

pub fn list(req: &Request) -> Result<Response, Error> {
    wire::list(req, &coll(COLL), |d| show(d, false))
}

pub fn update(req: &Request) -> Result<Response, Error> {
    let mut domain = load(req)?;
    let mut body = wire::body(req)?;
    for f in ["open_tracking", "click_tracking"] {
        if let Some(b) = opt_bool(&mut body, f)? {
            domain[f] = json!(b);
        }
    }
    if let Some(tls) = opt_str(&mut body, "tls")? {
        if !matches!(tls.as_str(), "opportunistic" | "enforced") {
            return Err(wire::invalid(
                "Invalid `tls` field. Use `opportunistic` or `enforced`.",
            ));
        }
        domain["tls"] = json!(tls);
    }
    if let Some(sub) = opt_str(&mut body, "tracking_subdomain")? {
        domain["tracking_subdomain"] = json!(sub);
    }
    let id = domain["id"].as_str().unwrap_or_default().to_owned();
    coll(COLL).put(&id, &domain)?;
    webhooks::domain_event("domain.updated", &domain)?;
    Ok(Response::ok(&json!({"object": "domain", "id": id})))
}

pub fn delete(req: &Request) -> Result<Response, Error> {
    let domain = load(req)?;
    let id = domain["id"].as_str().unwrap_or_default().to_owned();
    coll(COLL).remove(&id)?;
    webhooks::domain_event("domain.deleted", &domain)?;
    Ok(Response::ok(
        &json!({"object": "domain", "id": id, "deleted": true}),
    ))
}

pub fn verify(req: &Request) -> Result<Response, Error> {
    let mut domain = load(req)?;
    let id = domain["id"].as_str().unwrap_or_default().to_owned();
    if status(&domain, now_ms()) == "not_started" {
        domain["verify_requested_ms"] = json!(now_ms());
        coll(COLL).put(&id, &domain)?;
        webhooks::domain_verifying(&domain, now_ms() + VERIFY_AFTER_MS)?;
    }
    Ok(Response::ok(&json!({"object": "domain", "id": id})))
}

//! Events: every state change is recorded; listable and retrievable.

use serde_json::{Value, json};
use wt_sdk::{Error, Request, Response, ids};

use crate::wire::{self, Params, coll, context, list_body, now};
use crate::{API_VERSION, webhooks};

/// Records `type` about `object` (a snapshot of it now).
pub fn record(kind: &str, object: &Value) -> Result<(), Error> {
    record_with(kind, object, None)
}

/// Records an update with the attributes it changed.
pub fn record_with(kind: &str, object: &Value, previous: Option<Value>) -> Result<(), Error> {
    let ctx = context();
    let id = ids::new("evt");
    let mut data = json!({"object": object});
    if let Some(previous) = previous {
        data["previous_attributes"] = previous;
    }
    let subscribers = webhooks::subscribers(kind)?;
    let event = json!({
        "id": id, "object": "event", "api_version": API_VERSION, "created": now(),
        "data": data, "livemode": false, "pending_webhooks": subscribers.len(),
        "request": if ctx.request_id.is_empty() {
            json!({"id": null, "idempotency_key": null})
        } else {
            json!({"id": ctx.request_id, "idempotency_key": ctx.idempotency_key})
        },
        "type": kind,
    });
    coll("events").insert(&id, &event)?;
    // Serializing a large object costs more than the rest of a small
    // request; most accounts have no endpoint listening.
    if !subscribers.is_empty() {
        webhooks::deliver(&subscribers, &event.to_string());
    }
    Ok(())
}

pub fn retrieve(req: &Request) -> Result<Response, Error> {
    let p = Params::of(req)?;
    let expand = p.finish()?;
    wire::retrieve("events", "event", wire::id(req), &expand)
}

pub fn list(req: &Request) -> Result<Response, Error> {
    let mut p = Params::of(req)?;
    let page = p.page(req)?;
    let kind = p.string("type")?;
    let types = p.strings("types")?;
    let created = p.created()?;
    p.take("delivery_success");
    let expand = p.finish()?;
    let matches = |t: &str| match &kind {
        Some(k) if k.ends_with('*') => t.starts_with(&k[..k.len() - 1]),
        Some(k) => t == k,
        None => types.as_ref().is_none_or(|ts| ts.iter().any(|x| x == t)),
    };
    let found = coll("events").list_where(&page, true, |e| {
        created.matches(e) && matches(e["type"].as_str().unwrap_or(""))
    })?;
    Ok(Response::ok(&list_body("/v1/events", found, &expand)?))
}

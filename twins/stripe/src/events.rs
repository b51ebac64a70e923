//! Events: every state change is recorded; listable and retrievable.

use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use wt_sdk::{Error, Request, Response, ids};

use crate::wire::{self, Params, coll, list_body, now};
use crate::{API_VERSION, webhooks};

/// Records `type` about `object` (a snapshot of it now).
pub fn record(kind: &str, object: &Value) -> Result<(), Error> {
    record_with(kind, object, None)
}

/// Records an update with the attributes it changed.
pub fn record_with(kind: &str, object: &Value, previous: Option<Value>) -> Result<(), Error> {
    let object = serde_json::value::to_raw_value(object)
        .map_err(|e| Error::internal(format!("cannot encode the event's object: {e}")))?;
    record_raw(kind, &object, previous)
}

/// [`record_with`] for an object already encoded: the event embeds that
/// text instead of copying and encoding the object again.
pub fn record_raw(kind: &str, object: &RawValue, previous: Option<Value>) -> Result<(), Error> {
    let id = ids::new("evt");
    let subscribers = webhooks::subscribers(kind)?;
    let created = now();
    // Encoded while the request context is borrowed, not copied.
    let event = wire::with_context(|ctx| {
        // Fields in Stripe's (alphabetical) order, as the JSON of a `Value`
        // would have them.
        let event = Event {
            api_version: API_VERSION,
            created,
            data: EventData {
                object,
                previous_attributes: previous,
            },
            id: &id,
            livemode: false,
            object: "event",
            pending_webhooks: subscribers.len(),
            // An event the twin raises on its own, outside a request, has neither.
            request: if ctx.request_id.is_empty() {
                EventRequest::default()
            } else {
                EventRequest {
                    id: Some(&ctx.request_id),
                    idempotency_key: ctx.idempotency_key.as_deref(),
                }
            },
            kind,
        };
        serde_json::value::to_raw_value(&event)
    })
    .map_err(|e| Error::internal(format!("cannot encode the event: {e}")))?;
    coll("events").insert_raw(&id, &event)?;
    // Most accounts have no endpoint listening: nothing more to do.
    if !subscribers.is_empty() {
        webhooks::deliver(&subscribers, event.get());
    }
    Ok(())
}

#[derive(Serialize)]
struct Event<'a> {
    api_version: &'a str,
    created: u64,
    data: EventData<'a>,
    id: &'a str,
    livemode: bool,
    object: &'a str,
    pending_webhooks: usize,
    request: EventRequest<'a>,
    #[serde(rename = "type")]
    kind: &'a str,
}

#[derive(Serialize)]
struct EventData<'a> {
    object: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_attributes: Option<Value>,
}

#[derive(Serialize, Default)]
struct EventRequest<'a> {
    id: Option<&'a str>,
    idempotency_key: Option<&'a str>,
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

//! Webhook endpoints, and delivering events to them: each event goes to the
//! account's enabled endpoints whose `enabled_events` match, through the
//! host's outbound queue (sent after the request commits, retried, logged),
//! signed as Stripe signs: `Stripe-Signature: t=<wall secs>,v1=<hex HMAC>`.

use serde_json::{Value, json};
use wt_sdk::outbound::{self, OutboundRequest};
use wt_sdk::signature::{hex, hmac_sha256};
use wt_sdk::{Error, Page, Request, Response, clock, ids, log};

use crate::wire::{self, Params, apply_metadata, coll, load, now, set_opt};
use crate::{errors, expand};

const COLL: &str = "webhook_endpoints";
/// Signing secrets, kept apart from the endpoint objects because Stripe
/// shows a secret only once, on create.
const SECRETS: &str = "webhook_secrets";
/// Stripe allows 16 endpoints per account; this bounds the scan.
const MAX_ENDPOINTS: u32 = 100;

fn enabled_events(p: &mut Params) -> Result<Option<Vec<String>>, Error> {
    let events = p.strings("enabled_events")?;
    if let Some(list) = &events
        && list.is_empty()
    {
        return Err(errors::invalid("enabled_events", "Invalid array"));
    }
    Ok(events)
}

pub fn create(req: &Request) -> Result<Response, Error> {
    let mut p = Params::of(req)?;
    let url = p.required_string("url")?;
    let events = enabled_events(&mut p)?.ok_or_else(|| errors::missing("enabled_events"))?;
    let description = p.opt_string("description")?;
    let api_version = p.string("api_version")?;
    p.take("connect");
    let metadata = p.take("metadata");
    let expand = p.finish()?;
    let id = ids::new("we");
    let mut we = json!({
        "id": id, "object": "webhook_endpoint", "api_version": api_version, "application": null,
        "created": now(), "description": null, "enabled_events": events, "livemode": false,
        "metadata": {}, "status": "enabled", "url": url,
    });
    set_opt(&mut we, "description", description);
    apply_metadata(&mut we, metadata)?;
    coll(COLL).insert(&id, &we)?;
    let secret = format!("whsec_{}", ids::random_base62(32));
    coll(SECRETS).insert(&id, &json!({ "secret": secret }))?;
    we["secret"] = Value::String(secret);
    expand::apply(&mut we, &expand)?;
    Ok(Response::ok(&we))
}

pub fn retrieve(req: &Request) -> Result<Response, Error> {
    let expand = Params::of(req)?.finish()?;
    let mut we = load(COLL, "webhook_endpoint", wire::id(req))?;
    expand::apply(&mut we, &expand)?;
    Ok(Response::ok(&we))
}

pub fn update(req: &Request) -> Result<Response, Error> {
    let mut we = load(COLL, "webhook_endpoint", wire::id(req))?;
    let mut p = Params::of(req)?;
    if let Some(url) = p.string("url")? {
        we["url"] = json!(url);
    }
    if let Some(events) = enabled_events(&mut p)? {
        we["enabled_events"] = json!(events);
    }
    if let Some(disabled) = p.bool("disabled")? {
        we["status"] = json!(if disabled { "disabled" } else { "enabled" });
    }
    let description = p.opt_string("description")?;
    set_opt(&mut we, "description", description);
    apply_metadata(&mut we, p.take("metadata"))?;
    let expand = p.finish()?;
    coll(COLL).put(wire::id(req), &we)?;
    expand::apply(&mut we, &expand)?;
    Ok(Response::ok(&we))
}

pub fn delete(req: &Request) -> Result<Response, Error> {
    Params::of(req)?.finish()?;
    let id = wire::id(req);
    coll(COLL)
        .remove(id)?
        .ok_or_else(|| Error::resource_missing("webhook_endpoint", id))?;
    coll(SECRETS).remove(id)?;
    Ok(Response::ok(
        &json!({"id": id, "object": "webhook_endpoint", "deleted": true}),
    ))
}

pub fn list(req: &Request) -> Result<Response, Error> {
    wire::list_all(req, COLL, "/v1/webhook_endpoints")
}

/// The account's enabled endpoints that want `kind`, with their secrets.
pub fn subscribers(kind: &str) -> Result<Vec<(String, String)>, Error> {
    let endpoints = coll(COLL).list(&Page::first(MAX_ENDPOINTS), false)?;
    let mut out = Vec::new();
    for we in endpoints.items {
        let wants = we["enabled_events"]
            .as_array()
            .is_some_and(|events| events.iter().any(|e| e == "*" || e == kind));
        if we["status"] != "enabled" || !wants {
            continue;
        }
        let (Some(id), Some(url)) = (we["id"].as_str(), we["url"].as_str()) else {
            continue;
        };
        if let Some(secret) = coll(SECRETS).get(id)? {
            let secret = secret["secret"].as_str().unwrap_or_default().to_owned();
            out.push((url.to_owned(), secret));
        }
    }
    Ok(out)
}

/// `t=<secs>,v1=<hex HMAC-SHA256(secret, "<secs>.<payload>")>`, as
/// `stripe.Webhook.construct_event` verifies it. Real wall time, not twin
/// time: SDKs refuse signatures more than five minutes off their own clock.
pub fn signature_header(secret: &str, payload: &str, wall_secs: u64) -> String {
    let mac = hmac_sha256(
        secret.as_bytes(),
        format!("{wall_secs}.{payload}").as_bytes(),
    );
    format!("t={wall_secs},v1={}", hex(&mac))
}

/// Queues one signed delivery of `payload` per subscriber. A refused
/// destination is logged, not an error: a bad endpoint never fails the API
/// call that caused the event, as on Stripe.
pub fn deliver(subscribers: &[(String, String)], payload: &str) {
    let wall_secs = clock::wall_millis() / 1000;
    for (url, secret) in subscribers {
        let request = OutboundRequest::post(url.clone())
            .with_header("content-type", "application/json; charset=utf-8")
            .with_header(
                "user-agent",
                "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            )
            .with_header(
                "stripe-signature",
                signature_header(secret, payload, wall_secs),
            )
            .with_body(payload.as_bytes().to_vec());
        if let Err(err) = outbound::enqueue(request) {
            log::warn(format!("webhook to {url} not sent: {err}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_of_timestamp_dot_payload() {
        let header = signature_header("whsec_test", "{\"id\":\"evt_1\"}", 1_700_000_000);
        let expected = hex(&hmac_sha256(
            b"whsec_test",
            b"1700000000.{\"id\":\"evt_1\"}",
        ));
        assert_eq!(header, format!("t=1700000000,v1={expected}"));
    }
}

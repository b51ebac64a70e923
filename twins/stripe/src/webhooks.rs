//! Webhook endpoints (delivery is not implemented: events are only recorded).

use serde_json::{Value, json};
use wt_sdk::{Error, Request, Response, ids};

use crate::wire::{self, Params, apply_metadata, coll, list_body, load, now, set_opt};
use crate::{errors, expand};

const COLL: &str = "webhook_endpoints";

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
    we["secret"] = Value::String(format!("whsec_{}", ids::random_base62(32)));
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
    Ok(Response::ok(
        &json!({"id": id, "object": "webhook_endpoint", "deleted": true}),
    ))
}

pub fn list(req: &Request) -> Result<Response, Error> {
    let mut p = Params::of(req)?;
    let page = p.page(req)?;
    let expand = p.finish()?;
    let found = coll(COLL).list(&page, true)?;
    Ok(Response::ok(&list_body(
        "/v1/webhook_endpoints",
        found,
        &expand,
    )?))
}

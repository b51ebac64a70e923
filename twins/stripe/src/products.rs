//! Products.

use serde_json::{Value, json};
use wt_sdk::{Error, Request, Response, ids};

use crate::wire::{self, Params, apply_metadata, coll, list_body, load, now, set_opt};
use crate::{customers::previous, events, expand};

const COLL: &str = "products";

fn apply_fields(prod: &mut Value, p: &mut Params) -> Result<(), Error> {
    if let Some(name) = p.string("name")? {
        prod["name"] = json!(name);
    }
    if let Some(active) = p.bool("active")? {
        prod["active"] = json!(active);
    }
    for f in [
        "description",
        "url",
        "unit_label",
        "statement_descriptor",
        "tax_code",
    ] {
        let v = p.opt_string(f)?;
        set_opt(prod, f, v);
    }
    if let Some(shippable) = p.bool("shippable")? {
        prod["shippable"] = json!(shippable);
    }
    if let Some(images) = p.strings("images")? {
        prod["images"] = json!(images);
    }
    apply_metadata(prod, p.take("metadata"))
}

pub fn create(req: &Request) -> Result<Response, Error> {
    let mut p = Params::of(req)?;
    let name = p.required_string("name")?;
    let id = p
        .string("id")?
        .unwrap_or_else(|| ids::new_with_len("prod", 14));
    let kind = p.string("type")?.unwrap_or_else(|| "service".into());
    let t = now();
    let mut prod = json!({
        "id": id, "object": "product", "active": true, "attributes": [], "created": t,
        "default_price": null, "description": null, "images": [], "livemode": false,
        "marketing_features": [], "metadata": {}, "name": name, "package_dimensions": null,
        "shippable": null, "statement_descriptor": null, "tax_code": null, "type": kind,
        "unit_label": null, "updated": t, "url": null,
    });
    apply_fields(&mut prod, &mut p)?;
    let expand = p.finish()?;
    let raw = wire::insert_created(COLL, &id, &prod, "product.created")?;
    wire::created(&raw, prod, &expand)
}

pub fn retrieve(req: &Request) -> Result<Response, Error> {
    let expand = Params::of(req)?.finish()?;
    wire::retrieve(COLL, "product", wire::id(req), &expand)
}

pub fn update(req: &Request) -> Result<Response, Error> {
    let id = wire::id(req);
    let mut prod = load(COLL, "product", id)?;
    let before = prod.clone();
    let mut p = Params::of(req)?;
    apply_fields(&mut prod, &mut p)?;
    if let Some(price) = p.opt_string("default_price")? {
        if let Some(price_id) = &price {
            wire::load_ref("prices", "price", price_id, "default_price")?;
        }
        prod["default_price"] = price.map_or(Value::Null, Value::String);
    }
    let expand = p.finish()?;
    prod["updated"] = json!(now());
    coll(COLL).put(id, &prod)?;
    events::record_with("product.updated", &prod, Some(previous(&before, &prod)))?;
    expand::apply(&mut prod, &expand)?;
    Ok(Response::ok(&prod))
}

pub fn delete(req: &Request) -> Result<Response, Error> {
    Params::of(req)?.finish()?;
    let id = wire::id(req);
    let prod = load(COLL, "product", id)?;
    let has_prices = !coll("prices")
        .list_where(&wt_sdk::Page::first(1), true, |pr| {
            pr["product"] == json!(id)
        })?
        .items
        .is_empty();
    if has_prices {
        return Err(Error::bad_request(
            "This product cannot be deleted because it has one or more user-created prices.",
        )
        .with_code("product_has_prices"));
    }
    coll(COLL).remove(id)?;
    events::record("product.deleted", &prod)?;
    Ok(Response::ok(
        &json!({"id": id, "object": "product", "deleted": true}),
    ))
}

pub fn list(req: &Request) -> Result<Response, Error> {
    let mut p = Params::of(req)?;
    let page = p.page(req)?;
    let active = p.bool("active")?;
    let only = p.strings("ids")?;
    let created = p.created()?;
    p.take("shippable");
    p.take("url");
    let expand = p.finish()?;
    let found = coll(COLL).list_where(&page, true, |prod| {
        created.matches(prod)
            && active.is_none_or(|a| prod["active"] == json!(a))
            && only
                .as_ref()
                .is_none_or(|ids| ids.iter().any(|i| prod["id"] == json!(i)))
    })?;
    Ok(Response::ok(&list_body("/v1/products", found, &expand)?))
}

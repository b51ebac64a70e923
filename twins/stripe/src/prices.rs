//! Prices: immutable amounts, recurring intervals, lookup keys.

use serde_json::{Value, json};
use wt_sdk::{Error, Page, Request, Response, ids};

use crate::wire::{self, Params, apply_metadata, coll, list_body, load, now, set_opt};
use crate::{customers::previous, errors, events, expand};

const COLL: &str = "prices";

/// Gives `key` to `price_id`: with `transfer`, takes it from the price that
/// has it; without, refuses when another price has it.
fn claim_lookup_key(key: &str, price_id: &str, transfer: bool) -> Result<(), Error> {
    let holders = coll(COLL).list_where(&Page::first(100), true, |pr| {
        pr["lookup_key"] == json!(key) && pr["id"] != json!(price_id)
    })?;
    for holder in holders.items {
        let hid = holder["id"].as_str().unwrap_or_default().to_owned();
        if !transfer {
            return Err(Error::bad_request(format!(
                "A price (`{hid}`) already uses that lookup key."
            ))
            .with_code("lookup_key_already_exists")
            .with_param("lookup_key"));
        }
        coll(COLL).update(&hid, |pr| pr["lookup_key"] = Value::Null)?;
    }
    Ok(())
}

fn lookup_key(price: &mut Value, p: &mut Params, id: &str) -> Result<(), Error> {
    let key = p.opt_string("lookup_key")?;
    let transfer = p.bool("transfer_lookup_key")?.unwrap_or(false);
    if let Some(Some(k)) = &key {
        claim_lookup_key(k, id, transfer)?;
    }
    set_opt(price, "lookup_key", key);
    Ok(())
}

/// Builds a price from the parameters `create` and every `price_data` share
/// (`currency`, `product` or `product_data`, `unit_amount`, `recurring`),
/// named inside `prefix` (`items[0][price_data]`) in errors. Not stored.
fn build(p: &mut Params, prefix: &str, recurring_allowed: bool) -> Result<(String, Value), Error> {
    let currency = p
        .string("currency")?
        .ok_or_else(|| errors::missing(&field(prefix, "currency")))?
        .to_lowercase();
    let product = product(p, prefix)?;
    let unit_amount = unit_amount(p, prefix)?;
    let recurring = recurring(p, prefix, recurring_allowed)?;
    let id = ids::new_with_len("price", 24);
    let mut price = json!({
        "id": id, "object": "price", "active": true, "billing_scheme": "per_unit",
        "created": now(), "currency": currency, "custom_unit_amount": null, "livemode": false,
        "lookup_key": null, "metadata": {}, "nickname": null, "product": product,
        "recurring": recurring,
        "tax_behavior": "unspecified", "tiers_mode": null, "transform_quantity": null,
        "type": if recurring.is_null() { "one_time" } else { "recurring" },
        "unit_amount": unit_amount, "unit_amount_decimal": unit_amount.to_string(),
    });
    if let Some(tb) = p.string("tax_behavior")? {
        price["tax_behavior"] = json!(tb);
    }
    Ok((id, price))
}

/// How errors name parameter `k` inside `prefix` (`k` at the top level).
fn field(prefix: &str, k: &str) -> String {
    if prefix.is_empty() {
        k.to_owned()
    } else {
        format!("{prefix}[{k}]")
    }
}

/// The price's product: an existing `product`, or one made from
/// `product_data` (exactly one of the two).
fn product(p: &mut Params, prefix: &str) -> Result<String, Error> {
    match (p.string("product")?, p.hash("product_data")?) {
        (Some(id), None) => {
            wire::load_ref("products", "product", &id, &field(prefix, "product"))?;
            Ok(id)
        }
        (None, Some(data)) => inline_product(data, &field(prefix, "product_data")),
        (Some(_), Some(_)) => Err(errors::invalid(
            &field(prefix, "product"),
            "You may only specify one of these parameters: product, product_data.",
        )),
        (None, None) => Err(errors::missing(&field(prefix, "product"))),
    }
}

/// Creates (and announces) the product `product_data` describes, as Stripe
/// does for inline product data; `name` is how errors refer to it.
fn inline_product(mut data: Params, name: &str) -> Result<String, Error> {
    let product_name = data
        .string("name")?
        .ok_or_else(|| errors::missing(&format!("{name}[name]")))?;
    let meta = data.take("metadata");
    data.finish_in(name)?;
    let id = ids::new_with_len("prod", 14);
    let mut prod = json!({
        "id": id, "object": "product", "active": true, "attributes": [], "created": now(),
        "default_price": null, "description": null, "images": [], "livemode": false,
        "marketing_features": [], "metadata": {}, "name": product_name, "package_dimensions": null,
        "shippable": null, "statement_descriptor": null, "tax_code": null,
        "type": "service", "unit_label": null, "updated": now(), "url": null,
    });
    apply_metadata(&mut prod, meta)?;
    wire::insert_created("products", &id, &prod, "product.created")?;
    Ok(id)
}

/// `unit_amount`: required and not negative. The twin has no custom
/// (customer-chosen) amounts, so `custom_unit_amount` is refused rather
/// than ignored.
fn unit_amount(p: &mut Params, prefix: &str) -> Result<i64, Error> {
    let unit_amount = p.int("unit_amount")?;
    let custom = p.take("custom_unit_amount");
    let Some(unit_amount) = unit_amount else {
        if custom.is_some() {
            return Err(errors::invalid(
                &field(prefix, "custom_unit_amount"),
                "Custom unit amounts are not supported by this twin.",
            ));
        }
        return Err(errors::missing(&field(prefix, "unit_amount")));
    };
    if unit_amount < 0 {
        return Err(errors::invalid(
            &field(prefix, "unit_amount"),
            "This value must be greater than or equal to 0.",
        ));
    }
    Ok(unit_amount)
}

/// `recurring` as the price shows it (null for a one-time price); unknown
/// where the caller takes only one-time prices.
fn recurring(p: &mut Params, prefix: &str, recurring_allowed: bool) -> Result<Value, Error> {
    let name = field(prefix, "recurring");
    let mut r = match p.hash("recurring")? {
        Some(_) if !recurring_allowed => return Err(errors::unknown(&name)),
        None => return Ok(Value::Null),
        Some(r) => r,
    };
    let interval = r
        .string("interval")?
        .ok_or_else(|| errors::missing(&format!("{name}[interval]")))?;
    if !matches!(interval.as_str(), "day" | "week" | "month" | "year") {
        return Err(errors::invalid_enum(
            &format!("{name}[interval]"),
            &interval,
            &["day", "month", "week", "year"],
        ));
    }
    let count = r.int("interval_count")?.unwrap_or(1);
    if count < 1 {
        return Err(errors::invalid(
            &format!("{name}[interval_count]"),
            "This value must be greater than or equal to 1.",
        ));
    }
    let usage = r.string("usage_type")?.unwrap_or_else(|| "licensed".into());
    let trial = r.int("trial_period_days")?;
    r.finish_in(&name)?;
    Ok(
        json!({"interval": interval, "interval_count": count, "meter": null,
              "trial_period_days": trial, "usage_type": usage}),
    )
}

/// A price made from inline `price_data` (invoice items, subscription
/// items, checkout line items): stored like any price, as Stripe does.
pub fn inline(mut data: Params, prefix: &str, recurring_allowed: bool) -> Result<Value, Error> {
    let (id, price) = build(&mut data, prefix, recurring_allowed)?;
    data.take("unit_amount_decimal");
    data.finish_in(prefix)?;
    wire::insert_created(COLL, &id, &price, "price.created")?;
    Ok(price)
}

pub fn create(req: &Request) -> Result<Response, Error> {
    let mut p = Params::of(req)?;
    let (id, mut price) = build(&mut p, "", true)?;
    if let Some(active) = p.bool("active")? {
        price["active"] = json!(active);
    }
    let nickname = p.opt_string("nickname")?;
    set_opt(&mut price, "nickname", nickname);
    apply_metadata(&mut price, p.take("metadata"))?;
    lookup_key(&mut price, &mut p, &id)?;
    let expand = p.finish()?;
    let raw = wire::insert_created(COLL, &id, &price, "price.created")?;
    wire::created(&raw, price, &expand)
}

pub fn retrieve(req: &Request) -> Result<Response, Error> {
    let expand = Params::of(req)?.finish()?;
    wire::retrieve(COLL, "price", wire::id(req), &expand)
}

pub fn update(req: &Request) -> Result<Response, Error> {
    let id = wire::id(req);
    let mut price = load(COLL, "price", id)?;
    let before = price.clone();
    let mut p = Params::of(req)?;
    if let Some(active) = p.bool("active")? {
        price["active"] = json!(active);
    }
    let nickname = p.opt_string("nickname")?;
    set_opt(&mut price, "nickname", nickname);
    if let Some(tb) = p.string("tax_behavior")? {
        price["tax_behavior"] = json!(tb);
    }
    apply_metadata(&mut price, p.take("metadata"))?;
    lookup_key(&mut price, &mut p, id)?;
    let expand = p.finish()?;
    coll(COLL).put(id, &price)?;
    events::record_with("price.updated", &price, Some(previous(&before, &price)))?;
    expand::apply(&mut price, &expand)?;
    Ok(Response::ok(&price))
}

pub fn list(req: &Request) -> Result<Response, Error> {
    let mut p = Params::of(req)?;
    let page = p.page(req)?;
    let product = p.string("product")?;
    let active = p.bool("active")?;
    let currency = p.string("currency")?;
    let kind = p.string("type")?;
    let keys = p.strings("lookup_keys")?;
    let created = p.created()?;
    p.take("recurring");
    let expand = p.finish()?;
    let found = coll(COLL).list_where(&page, true, |pr| {
        created.matches(pr)
            && product.as_ref().is_none_or(|x| pr["product"] == json!(x))
            && active.is_none_or(|a| pr["active"] == json!(a))
            && currency.as_ref().is_none_or(|c| pr["currency"] == json!(c))
            && kind.as_ref().is_none_or(|t| pr["type"] == json!(t))
            && keys
                .as_ref()
                .is_none_or(|ks| ks.iter().any(|k| pr["lookup_key"] == json!(k)))
    })?;
    Ok(Response::ok(&list_body("/v1/prices", found, &expand)?))
}

//! Subscription items: reading the `items[]` (and `add_invoice_items[]`)
//! hashes of a request, building and changing the items a subscription
//! bills, and the `/v1/subscription_items` endpoints. Kept apart from the
//! subscription itself because creation, updates and the item endpoints
//! all change items through the same checks here.

use serde_json::{Value, json};
use wt_sdk::{Error, Request, Response, ids};

use super::{
    COLL, ITEMS, clock_of, current_period_end, items, record_updated, save, set_items, sub_id,
};
use crate::wire::{self, Params, apply_metadata, coll, list_body, load, now};
use crate::{billing, errors, expand, prices};

/// The legacy `plan` view of a recurring price, still on every item.
fn plan_of(price: &Value) -> Value {
    let r = &price["recurring"];
    json!({
        "id": price["id"], "object": "plan", "active": price["active"],
        "amount": price["unit_amount"], "amount_decimal": price["unit_amount_decimal"],
        "billing_scheme": price["billing_scheme"], "created": price["created"],
        "currency": price["currency"], "interval": r["interval"],
        "interval_count": r["interval_count"], "livemode": false,
        "metadata": price["metadata"], "meter": null, "nickname": price["nickname"],
        "product": price["product"], "tiers_mode": null, "transform_usage": null,
        "trial_period_days": r["trial_period_days"], "usage_type": r["usage_type"],
    })
}

/// What one entry of `items[]` asks for.
pub(super) struct ItemSpec {
    /// An existing item to change (`items[n][id]`).
    pub(super) id: Option<String>,
    pub(super) price: Option<Value>,
    pub(super) quantity: Option<i64>,
    pub(super) metadata: Option<Value>,
    pub(super) deleted: bool,
}

/// `name[k]`, or `k` at the top level (`name` empty).
fn nested(name: &str, k: &str) -> String {
    if name.is_empty() {
        k.to_owned()
    } else {
        format!("{name}[{k}]")
    }
}

/// Reads one item hash (`name` is how errors refer to it).
fn item_spec(mut h: Params, name: &str) -> Result<ItemSpec, Error> {
    let id = h.string("id")?;
    let price = match (h.string("price")?, h.string("plan")?, h.hash("price_data")?) {
        (Some(p), _, None) | (None, Some(p), None) => Some(wire::load_ref(
            "prices",
            "price",
            &p,
            &nested(name, "price"),
        )?),
        (None, None, Some(data)) => Some(prices::inline(data, &nested(name, "price_data"), true)?),
        (None, None, None) => None,
        _ => {
            return Err(Error::bad_request(format!(
                "You may only specify one of these parameters: {}, {}.",
                nested(name, "price"),
                nested(name, "price_data")
            )));
        }
    };
    if let Some(price) = &price {
        if price["type"] != json!("recurring") {
            return Err(errors::invalid(
                &nested(name, "price"),
                &format!(
                    "The price specified is set to `type=one_time` but this field only accepts \
                     prices with `type=recurring`: {}",
                    price["id"].as_str().unwrap_or_default()
                ),
            ));
        }
        if price["active"] == json!(false) {
            return Err(errors::invalid(
                &nested(name, "price"),
                &format!(
                    "The price specified is inactive. This field only accepts active prices: {}",
                    price["id"].as_str().unwrap_or_default()
                ),
            ));
        }
    }
    let quantity = h.int("quantity")?;
    if quantity.is_some_and(|q| q < 0) {
        return Err(errors::invalid(
            &nested(name, "quantity"),
            "This value must be greater than or equal to 0.",
        ));
    }
    let metadata = h.take("metadata");
    let deleted = h.bool("deleted")?.unwrap_or(false);
    for f in [
        "tax_rates",
        "discounts",
        "billing_thresholds",
        "clear_usage",
    ] {
        h.take(f);
    }
    h.finish_in(name)?;
    Ok(ItemSpec {
        id,
        price,
        quantity,
        metadata,
        deleted,
    })
}

/// The array of item hashes `key` (`items`, `add_invoice_items`).
pub(super) fn item_specs(p: &mut Params, key: &str) -> Result<Option<Vec<ItemSpec>>, Error> {
    let Some(raw) = p.take(key) else {
        return Ok(None);
    };
    let list = match raw {
        Value::Array(list) => list,
        Value::Object(map) => map.into_iter().map(|(_, v)| v).collect(),
        Value::String(s) if s.is_empty() => Vec::new(),
        _ => return Err(errors::invalid(key, "Invalid array")),
    };
    let mut out = Vec::new();
    for (i, v) in list.into_iter().enumerate() {
        let name = format!("{key}[{i}]");
        let mut holder = Params::of_map(json!({ "item": v }))?;
        let h = holder
            .hash("item")?
            .ok_or_else(|| errors::invalid(&name, "Invalid hash"))?;
        out.push(item_spec(h, &name)?);
    }
    Ok(Some(out))
}

/// A new item of `sub` for `price`, in the period `[start, end)`.
pub(super) fn new_item(sub: &str, spec: ItemSpec, start: u64, end: u64) -> Result<Value, Error> {
    let price = spec.price.unwrap_or(Value::Null);
    let id = ids::new("si");
    let mut item = json!({
        "id": id, "object": "subscription_item", "billing_thresholds": null,
        "created": now(), "current_period_end": end, "current_period_start": start,
        "discounts": [], "metadata": {}, "plan": plan_of(&price), "price": price,
        "quantity": spec.quantity.unwrap_or(1), "subscription": sub, "tax_rates": [],
    });
    apply_metadata(&mut item, spec.metadata)?;
    Ok(item)
}

/// Files the items not yet findable by id (once they passed validation,
/// so a refused request leaves nothing behind).
pub(super) fn link_items(sub: &Value) -> Result<(), Error> {
    let id = sub_id(sub);
    for item in items(sub) {
        let item_id = item["id"].as_str().unwrap_or_default();
        if !coll(ITEMS).contains(item_id) {
            coll(ITEMS).insert(item_id, &json!({ "subscription": id }))?;
        }
    }
    Ok(())
}

/// All items must bill in one currency and at one interval.
pub(super) fn check_items(items: &[Value]) -> Result<(), Error> {
    let Some(first) = items.first() else {
        return Err(errors::missing("items"));
    };
    for item in items {
        if item["price"]["currency"] != first["price"]["currency"] {
            return Err(errors::invalid(
                "items",
                "All prices on a subscription must have the same `currency`.",
            ));
        }
        if billing::interval(&item["price"]) != billing::interval(&first["price"]) {
            return Err(errors::invalid(
                "items",
                "All prices on a subscription must have the same `recurring.interval` and \
                 `recurring.interval_count`.",
            ));
        }
    }
    Ok(())
}

/// `add_invoice_items[]`: one-time prices billed on the first invoice.
pub(super) fn item_specs_once(p: &mut Params) -> Result<Option<Vec<ItemSpec>>, Error> {
    let Some(raw) = p.take("add_invoice_items") else {
        return Ok(None);
    };
    let mut holder = Params::of_map(json!({ "add_invoice_items": raw }))?;
    let list = match holder.take("add_invoice_items") {
        Some(Value::Array(list)) => list,
        Some(Value::Object(map)) => map.into_iter().map(|(_, v)| v).collect(),
        _ => return Err(errors::invalid("add_invoice_items", "Invalid array")),
    };
    let mut out = Vec::new();
    for (i, v) in list.into_iter().enumerate() {
        let name = format!("add_invoice_items[{i}]");
        let Value::Object(mut map) = v else {
            return Err(errors::invalid(&name, "Invalid hash"));
        };
        let price = match map.remove("price") {
            Some(Value::String(id)) => Some(wire::load_ref(
                "prices",
                "price",
                &id,
                &format!("{name}[price]"),
            )?),
            _ => None,
        };
        let mut h = Params::of_map(Value::Object(map))?;
        let quantity = h.int("quantity")?;
        let metadata = h.take("metadata");
        for f in ["tax_rates", "discounts", "period"] {
            h.take(f);
        }
        h.finish_in(&name)?;
        out.push(ItemSpec {
            id: None,
            price,
            quantity,
            metadata,
            deleted: false,
        });
    }
    Ok(Some(out))
}

/// Applies item changes (`items[]` of an update, or the item endpoints).
/// Changes take effect from the next invoice: the twin does not prorate.
pub(super) fn change_items(sub: &mut Value, specs: Vec<ItemSpec>) -> Result<(), Error> {
    let id = sub_id(sub);
    let mut data = items(sub);
    let start = sub["items"]["data"][0]["current_period_start"]
        .as_u64()
        .unwrap_or_else(now);
    let end = current_period_end(sub).unwrap_or_else(now);
    for spec in specs {
        match spec.id.clone() {
            Some(item_id) => {
                let Some(pos) = data.iter().position(|i| i["id"] == json!(item_id)) else {
                    return Err(errors::invalid(
                        "items",
                        &format!(
                            "Subscription item {item_id} does not belong to subscription {id}."
                        ),
                    ));
                };
                if spec.deleted {
                    data.remove(pos);
                    coll(ITEMS).remove(&item_id)?;
                    continue;
                }
                let item = &mut data[pos];
                if let Some(price) = spec.price {
                    item["plan"] = plan_of(&price);
                    item["price"] = price;
                }
                if let Some(q) = spec.quantity {
                    item["quantity"] = json!(q);
                }
                apply_metadata(item, spec.metadata)?;
            }
            None => {
                if spec.price.is_none() {
                    return Err(errors::missing("items[0][price]"));
                }
                data.push(new_item(&id, spec, start, end)?);
            }
        }
    }
    check_items(&data)?;
    set_items(sub, data);
    link_items(sub)
}

/// The subscription holding item `id`, or 404.
fn holder(id: &str) -> Result<Value, Error> {
    let pointer = coll(ITEMS)
        .get(id)?
        .ok_or_else(|| Error::resource_missing("subscription_item", id))?;
    load(
        COLL,
        "subscription",
        pointer["subscription"].as_str().unwrap_or_default(),
    )
}

/// Item `id` of `sub`, or 404.
fn find_item(sub: &Value, id: &str) -> Result<Value, Error> {
    items(sub)
        .into_iter()
        .find(|i| i["id"] == json!(id))
        .ok_or_else(|| Error::resource_missing("subscription_item", id))
}

/// Saves an item change and records it on the subscription.
fn item_changed(before: &Value, sub: &Value) -> Result<(), Error> {
    save(sub)?;
    record_updated(before, sub)
}

pub fn item_retrieve(req: &Request) -> Result<Response, Error> {
    let expand = Params::of(req)?.finish()?;
    let id = wire::id(req);
    let mut item = find_item(&holder(id)?, id)?;
    expand::apply(&mut item, &expand)?;
    Ok(Response::ok(&item))
}

pub fn item_list(req: &Request) -> Result<Response, Error> {
    let mut p = Params::of(req)?;
    let page = p.page(req)?;
    let sub_id = p.required_string("subscription")?;
    let expand = p.finish()?;
    let sub = load(COLL, "subscription", &sub_id)?;
    let found = wire::page_of(items(&sub), &page)?;
    Ok(Response::ok(&list_body(
        "/v1/subscription_items",
        found,
        &expand,
    )?))
}

/// The item hash of the item endpoints (everything but `subscription`).
fn item_params(p: &mut Params, id: Option<String>) -> Result<ItemSpec, Error> {
    let mut map = serde_json::Map::new();
    for k in [
        "price",
        "price_data",
        "plan",
        "quantity",
        "metadata",
        "tax_rates",
        "discounts",
    ] {
        if let Some(v) = p.take(k) {
            map.insert(k.to_owned(), v);
        }
    }
    for f in [
        "proration_behavior",
        "proration_date",
        "payment_behavior",
        "off_session",
    ] {
        p.take(f);
    }
    let mut spec = item_spec(Params::of_map(Value::Object(map))?, "")?;
    spec.id = id;
    Ok(spec)
}

pub fn item_create(req: &Request) -> Result<Response, Error> {
    let mut p = Params::of(req)?;
    let sub_id = p.required_string("subscription")?;
    let sub = wire::load_ref(COLL, "subscription", &sub_id, "subscription")?;
    // A test clock subscription's new item is created at the clock's time.
    let t = billing::time_on(&clock_of(&sub))?;
    wire::at_time(t, || item_create_at(p, sub))
}

fn item_create_at(mut p: Params, mut sub: Value) -> Result<Response, Error> {
    let spec = item_params(&mut p, None)?;
    if spec.price.is_none() {
        return Err(errors::missing("price"));
    }
    let expand = p.finish()?;
    let before = sub.clone();
    let known: Vec<Value> = items(&sub);
    change_items(&mut sub, vec![spec])?;
    item_changed(&before, &sub)?;
    let mut item = items(&sub)
        .into_iter()
        .find(|i| !known.iter().any(|k| k["id"] == i["id"]))
        .unwrap_or(Value::Null);
    expand::apply(&mut item, &expand)?;
    Ok(Response::ok(&item))
}

pub fn item_update(req: &Request) -> Result<Response, Error> {
    let id = wire::id(req).to_owned();
    let mut sub = holder(&id)?;
    let mut p = Params::of(req)?;
    let spec = item_params(&mut p, Some(id.clone()))?;
    let expand = p.finish()?;
    let before = sub.clone();
    change_items(&mut sub, vec![spec])?;
    item_changed(&before, &sub)?;
    let mut item = find_item(&sub, &id)?;
    expand::apply(&mut item, &expand)?;
    Ok(Response::ok(&item))
}

pub fn item_delete(req: &Request) -> Result<Response, Error> {
    let id = wire::id(req).to_owned();
    let mut sub = holder(&id)?;
    let mut p = Params::of(req)?;
    for f in ["proration_behavior", "proration_date", "clear_usage"] {
        p.take(f);
    }
    p.finish()?;
    if items(&sub).len() == 1 {
        return Err(Error::bad_request(
            "A subscription must have at least one active plan. To cancel a subscription, \
             please use the cancel API endpoint on /v1/subscriptions.",
        ));
    }
    let before = sub.clone();
    let spec = ItemSpec {
        id: Some(id.clone()),
        price: None,
        quantity: None,
        metadata: None,
        deleted: true,
    };
    change_items(&mut sub, vec![spec])?;
    item_changed(&before, &sub)?;
    Ok(Response::ok(
        &json!({"id": id, "object": "subscription_item", "deleted": true}),
    ))
}

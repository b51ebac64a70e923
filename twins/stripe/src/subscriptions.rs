//! Subscriptions and their items: recurring prices billed one invoice per
//! period, with trials, cancellation at period end, and the status machine
//! `trialing → active`, `incomplete` (first payment failed) `→ active` once
//! its invoice is paid or `→ incomplete_expired` after 23 hours, `active →
//! past_due` when a renewal's payment fails, and `canceled`.
//!
//! Work that falls due (a trial ending, a period ending) runs lazily: see
//! [`crate::billing`] for when. [`process`] replays everything due up to a
//! moment in order, each step stamped with the time it was due.

use serde_json::{Value, json};
use wt_sdk::{Error, Request, Response, ids};

use crate::billing::{self, LATEST, TWIN_CLOCK};
use crate::wire::{self, Params, apply_metadata, coll, list_body, load, now, set_opt};
use crate::{customers, errors, events, expand, invoice_items, invoices, payment_methods, prices};

/// The collection subscriptions live in.
pub const COLL: &str = "subscriptions";
/// `si_…` → the subscription holding it (items live inside their
/// subscription; this finds them by id).
const ITEMS: &str = "subscription_items";
/// Billing bookkeeping Stripe does not show: whether the trial-ending
/// notice went out.
const STATE: &str = "subscription_billing";
/// How long an `incomplete` subscription waits for its first payment.
const INCOMPLETE_WINDOW: u64 = 23 * 3600;
/// How long before a trial ends Stripe announces it.
const TRIAL_NOTICE: u64 = 3 * 86_400;

fn save(sub: &Value) -> Result<(), Error> {
    coll(COLL).put(sub["id"].as_str().unwrap_or_default(), sub)
}

fn status(sub: &Value) -> &str {
    sub["status"].as_str().unwrap_or_default()
}

fn sub_id(sub: &Value) -> String {
    sub["id"].as_str().unwrap_or_default().to_owned()
}

fn items(sub: &Value) -> Vec<Value> {
    sub["items"]["data"].as_array().cloned().unwrap_or_default()
}

fn set_items(sub: &mut Value, data: Vec<Value>) {
    let url = format!("/v1/subscription_items?subscription={}", sub_id(sub));
    sub["items"] = wire::embedded_list(url, data);
}

fn clock_of(sub: &Value) -> String {
    billing::clock_name(&sub["test_clock"])
}

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
struct ItemSpec {
    /// An existing item to change (`items[n][id]`).
    id: Option<String>,
    price: Option<Value>,
    quantity: Option<i64>,
    metadata: Option<Value>,
    deleted: bool,
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
fn item_specs(p: &mut Params, key: &str) -> Result<Option<Vec<ItemSpec>>, Error> {
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
fn new_item(sub: &str, spec: ItemSpec, start: u64, end: u64) -> Result<Value, Error> {
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
fn link_items(sub: &Value) -> Result<(), Error> {
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
fn check_items(items: &[Value]) -> Result<(), Error> {
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

/// The end of the period starting at `start`, anchored at the
/// subscription's billing cycle anchor.
fn period_end(sub: &Value, start: u64) -> u64 {
    let first = items(sub).into_iter().next().unwrap_or(Value::Null);
    let (unit, count) = billing::interval(&first["price"]);
    let anchor = sub["billing_cycle_anchor"].as_u64().unwrap_or(start);
    billing::period_end_after(anchor, &unit, count, start)
}

fn set_period(sub: &mut Value, start: u64, end: u64) {
    let data: Vec<Value> = items(sub)
        .into_iter()
        .map(|mut i| {
            i["current_period_start"] = json!(start);
            i["current_period_end"] = json!(end);
            i
        })
        .collect();
    set_items(sub, data);
}

fn current_period_end(sub: &Value) -> Option<u64> {
    sub["items"]["data"][0]["current_period_end"].as_u64()
}

fn state(id: &str) -> Result<Value, Error> {
    Ok(coll(STATE)
        .get(id)?
        .unwrap_or_else(|| json!({"trial_will_end_sent": false})))
}

/// When this subscription next has work to do, if ever.
fn next_due(sub: &Value, st: &Value) -> Option<u64> {
    let cancel_at = sub["cancel_at"].as_u64();
    let soonest = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    };
    match status(sub) {
        "incomplete" => sub["created"].as_u64().map(|c| c + INCOMPLETE_WINDOW),
        "trialing" => {
            let end = sub["trial_end"].as_u64()?;
            let start = sub["trial_start"].as_u64().unwrap_or(end);
            let notice = (st["trial_will_end_sent"] != json!(true))
                .then(|| end.saturating_sub(TRIAL_NOTICE).max(start));
            soonest(soonest(notice, Some(end)), cancel_at)
        }
        "active" | "past_due" => soonest(current_period_end(sub), cancel_at),
        _ => None,
    }
}

/// Re-files the subscription in its clock's due index.
fn reschedule(sub: &Value) -> Result<(), Error> {
    let id = sub_id(sub);
    let st = state(&id)?;
    billing::schedule(&id, &clock_of(sub), next_due(sub, &st))
}

/// Runs everything due on `id` up to `until`, in order.
pub fn process(id: &str, until: u64) -> Result<(), Error> {
    let Some(mut sub) = coll(COLL).get(id)? else {
        return billing::schedule(id, TWIN_CLOCK, None);
    };
    let mut st = state(id)?;
    // At most this many periods per call, so one request stays small; a
    // daily plan left alone for years catches up over the next requests.
    for _ in 0..400 {
        let Some(t) = next_due(&sub, &st) else { break };
        if t > until {
            break;
        }
        wire::at_time(t, || step(&mut sub, &mut st, t))?;
    }
    coll(STATE).put(id, &st)?;
    reschedule(&sub)
}

/// Runs what is due on `clock` at `at` (the twin clock on each request, a
/// test clock when advanced), as Stripe's automation. A subscription whose
/// work fails is logged and taken off the index rather than failing every
/// later request of the account.
pub fn run_due(clock: &str, at: u64) -> Result<(), Error> {
    for id in billing::due(clock, at) {
        if let Err(err) = wire::automated(|| process(&id, at)) {
            wt_sdk::log::warn(format!("billing for {id} stopped: {}", err.message));
            billing::schedule(&id, clock, None)?;
        }
    }
    Ok(())
}

fn step(sub: &mut Value, st: &mut Value, t: u64) -> Result<(), Error> {
    let id = sub_id(sub);
    match status(sub) {
        "incomplete" => {
            let before = sub.clone();
            sub["status"] = json!("incomplete_expired");
            sub["ended_at"] = json!(t);
            save(sub)?;
            if let Some(inv) = sub["latest_invoice"].as_str()
                && let Some(mut invoice) = coll(invoices::COLL).get(inv)?
                && invoice["status"] == json!("open")
            {
                invoice["status"] = json!("void");
                invoice["amount_remaining"] = json!(0);
                invoice["status_transitions"]["voided_at"] = json!(t);
                coll(invoices::COLL).put(inv, &invoice)?;
                events::record("invoice.voided", &invoice)?;
            }
            events::record_with(
                "customer.subscription.updated",
                sub,
                Some(customers::previous(&before, sub)),
            )?;
        }
        "trialing"
            if st["trial_will_end_sent"] != json!(true)
                && sub["trial_end"].as_u64().is_some_and(|end| t < end) =>
        {
            st["trial_will_end_sent"] = json!(true);
            events::record("customer.subscription.trial_will_end", sub)?;
        }
        _ if sub["cancel_at"].as_u64().is_some_and(|c| c <= t) => {
            cancel_now(sub, t, "cancellation_requested")?;
        }
        _ => renew(sub, t)?,
    }
    *sub = load(COLL, "subscription", &id)?;
    Ok(())
}

/// How far test clock `clock` may advance from `frozen`: Stripe allows two
/// billing intervals of its shortest-interval live subscription (which
/// also bounds the work one advance does). `None`: no limit.
pub fn advance_limit(clock: &str, frozen: u64) -> Result<Option<u64>, Error> {
    let live = coll(COLL).list_where(&wt_sdk::Page::first(1_000), false, |s| {
        s["test_clock"] == json!(clock)
            && matches!(status(s), "active" | "past_due" | "trialing" | "incomplete")
    })?;
    Ok(live
        .items
        .iter()
        .map(|sub| {
            let first = items(sub).into_iter().next().unwrap_or(Value::Null);
            let (unit, count) = billing::interval(&first["price"]);
            let anchor = sub["billing_cycle_anchor"].as_u64().unwrap_or(frozen);
            let next = billing::period_end_after(anchor, &unit, count, frozen);
            billing::period_end_after(anchor, &unit, count, next)
        })
        .min())
}

/// Ends every live subscription of a customer being deleted, as Stripe
/// does.
pub fn end_for_customer(customer: &str) -> Result<(), Error> {
    let live = coll(COLL).list_where(&wt_sdk::Page::first(1_000), false, |s| {
        s["customer"] == json!(customer) && !matches!(status(s), "canceled" | "incomplete_expired")
    })?;
    for mut sub in live.items {
        let t = billing::time_on(&clock_of(&sub))?;
        wire::at_time(t, || cancel_now(&mut sub, t, "cancellation_requested"))?;
    }
    Ok(())
}

/// Cancels at `t`; records `customer.subscription.deleted`.
fn cancel_now(sub: &mut Value, t: u64, reason: &str) -> Result<(), Error> {
    sub["status"] = json!("canceled");
    if sub["canceled_at"].is_null() {
        sub["canceled_at"] = json!(t);
    }
    sub["ended_at"] = json!(t);
    sub["cancellation_details"]["reason"] = json!(reason);
    save(sub)?;
    billing::schedule(&sub_id(sub), &clock_of(sub), None)?;
    events::record("customer.subscription.deleted", sub)
}

/// Starts the period beginning at `t` (a period or trial ended) and bills
/// it.
fn renew(sub: &mut Value, t: u64) -> Result<(), Error> {
    let before = sub.clone();
    let id = sub_id(sub);
    let previous_start = sub["items"]["data"][0]["current_period_start"]
        .as_u64()
        .unwrap_or(t);
    let end = period_end(sub, t);
    set_period(sub, t, end);
    // Optimistic: a paid invoice leaves it active; a failure below says
    // past_due.
    sub["status"] = json!("active");
    save(sub)?;
    let paid = bill(
        sub,
        "subscription_cycle",
        (t, end),
        previous_start,
        false,
        true,
    )?;
    let mut after = load(COLL, "subscription", &id)?;
    if !paid {
        after["status"] = json!("past_due");
        save(&after)?;
    }
    events::record_with(
        "customer.subscription.updated",
        &after,
        Some(customers::previous(&before, &after)),
    )?;
    *sub = after;
    Ok(())
}

/// Creates, finalizes and (when charged automatically and `charge`)
/// collects the invoice billing the period `[start, end)`. As on Stripe
/// the invoice's own `period_start`/`period_end` describe the period that
/// just ended (from `previous_start` to `start`; both `start` on a first
/// invoice), its lines the one paid for. Returns whether it ended up paid
/// (or needs no payment now: invoices sent to the customer).
/// `default_incomplete` creation passes `charge = false`: the open invoice
/// waits for the client to pay it.
fn bill(
    sub: &mut Value,
    reason: &str,
    (start, end): (u64, u64),
    previous_start: u64,
    trial: bool,
    charge: bool,
) -> Result<bool, Error> {
    let customer_id = sub["customer"].as_str().unwrap_or_default().to_owned();
    let customer = customers::load_live(&customer_id)?;
    let mut inv = invoices::draft(&customer, Some(sub), reason);
    let inv_id = inv["id"].as_str().unwrap_or_default().to_owned();
    inv["period_start"] = json!(previous_start);
    inv["period_end"] = json!(start);
    if let Some(days) = sub["days_until_due"].as_u64() {
        inv["due_date"] = json!(now() + days * 86_400);
    }
    let mut lines = Vec::new();
    for item in items(sub) {
        lines.push(invoices::line_for_sub_item(
            &item, sub, &inv_id, start, end, trial,
        )?);
    }
    let pending = invoice_items::pending_for(&customer_id, Some(&sub_id(sub)))?;
    let mut inv = invoices::create_draft(inv, lines, &pending)?;
    sub["latest_invoice"] = json!(inv_id);
    save(sub)?;
    invoices::finalize(&mut inv)?;
    if inv["status"] == json!("paid") {
        return Ok(true);
    }
    if sub["collection_method"] == json!("send_invoice") {
        return Ok(true);
    }
    if !charge {
        return Ok(false);
    }
    Ok(invoices::collect(&mut inv, None)?.is_none())
}

/// An invoice of subscription `id` was paid (by `pay`, or at creation): an
/// `incomplete` or `past_due` subscription becomes `active`.
pub fn invoice_paid(id: &str, _invoice: &Value) -> Result<(), Error> {
    let Some(mut sub) = coll(COLL).get(id)? else {
        return Ok(());
    };
    if !matches!(status(&sub), "incomplete" | "past_due") {
        return Ok(());
    }
    let before = sub.clone();
    sub["status"] = json!("active");
    save(&sub)?;
    events::record_with(
        "customer.subscription.updated",
        &sub,
        Some(customers::previous(&before, &sub)),
    )?;
    reschedule(&sub)
}

/// A Unix timestamp parameter (string or number) up to year 9999.
fn timestamp(param: &str, v: &Value) -> Result<u64, Error> {
    let t = match v {
        Value::String(s) => s.trim().parse::<u64>().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    };
    t.filter(|t| *t <= LATEST).ok_or_else(|| {
        errors::invalid(
            param,
            &format!("Invalid timestamp: must be an integer Unix timestamp, not {v}."),
        )
    })
}

/// `trial_end`: a future timestamp or `now`.
fn trial_end_param(p: &mut Params, t: u64) -> Result<Option<u64>, Error> {
    match p.take("trial_end") {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) if s == "now" => Ok(Some(t)),
        Some(v) => {
            let end = timestamp("trial_end", &v)?;
            if end <= t {
                return Err(errors::invalid(
                    "trial_end",
                    "Invalid timestamp: must be an integer Unix timestamp in the future.",
                ));
            }
            Ok(Some(end))
        }
    }
}

/// `cancel_at`: a timestamp, `""` to clear, or `min_period_end` /
/// `max_period_end` (the current period's end).
fn cancel_at_param(p: &mut Params, period_end: Option<u64>) -> Result<Option<Option<u64>>, Error> {
    match p.take("cancel_at") {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(Some(None)),
        Some(Value::String(s)) if s == "min_period_end" || s == "max_period_end" => {
            Ok(Some(period_end))
        }
        Some(v) => Ok(Some(Some(timestamp("cancel_at", &v)?))),
    }
}

/// A `default_payment_method` must be one of the customer's.
fn check_default_pm(pm: &str, customer: &str) -> Result<(), Error> {
    let found = coll(payment_methods::COLL_NAME).get(pm)?;
    if found.is_none_or(|p| p["customer"] != json!(customer)) {
        let mut e =
            Error::resource_missing("payment_method", pm).with_param("default_payment_method");
        e.message = format!(
            "The customer does not have a payment method with the ID {pm}. The payment method \
             must be attached to the customer."
        );
        e.status = 400;
        return Err(e);
    }
    Ok(())
}

/// The payment method a subscription's invoices would be charged to.
fn effective_pm(sub: &Value, customer: &Value) -> Option<String> {
    sub["default_payment_method"]
        .as_str()
        .or_else(|| customer["invoice_settings"]["default_payment_method"].as_str())
        .map(str::to_owned)
}

pub fn create(req: &Request) -> Result<Response, Error> {
    let p = Params::of(req)?;
    Ok(Response::ok(&create_from(p)?))
}

/// Starts a subscription from create parameters given as a value (what a
/// completed Checkout Session does).
pub fn start(params: Value) -> Result<Value, Error> {
    create_from(Params::of_map(params)?)
}

fn create_from(mut p: Params) -> Result<Value, Error> {
    let customer_id = p.required_string("customer")?;
    let customer = customers::load_ref(&customer_id, "customer")?;
    let clock = billing::clock_name(&customer["test_clock"]);
    let t = billing::time_on(&clock)?;
    wire::at_time(t, || create_at(p, customer, t))
}

/// What `create` does, at the customer's clock time `t`.
fn create_at(mut p: Params, customer: Value, t: u64) -> Result<Value, Error> {
    let customer_id = customer["id"].as_str().unwrap_or_default().to_owned();
    let specs = item_specs(&mut p, "items")?.ok_or_else(|| errors::missing("items"))?;
    if specs.is_empty() {
        return Err(errors::missing("items"));
    }
    let trial_days = p.int("trial_period_days")?;
    let trial_from_plan = p.bool("trial_from_plan")?.unwrap_or(false);
    let mut trial_end = trial_end_param(&mut p, t)?;
    if let Some(days) = trial_days {
        if !(0..=730).contains(&days) {
            return Err(errors::invalid(
                "trial_period_days",
                "This value must be between 0 and 730.",
            ));
        }
        if days > 0 {
            trial_end = Some(t + days as u64 * 86_400);
        }
    }
    if trial_from_plan
        && trial_end.is_none()
        && let Some(days) = specs
            .first()
            .and_then(|s| s.price.as_ref())
            .and_then(|pr| pr["recurring"]["trial_period_days"].as_u64())
    {
        trial_end = Some(t + days * 86_400);
    }
    let trial_end = trial_end.filter(|end| *end > t);
    let behavior = p
        .string("payment_behavior")?
        .unwrap_or_else(|| "allow_incomplete".into());
    let allowed = [
        "allow_incomplete",
        "default_incomplete",
        "error_if_incomplete",
        "pending_if_incomplete",
    ];
    if !allowed.contains(&behavior.as_str()) {
        return Err(errors::invalid_enum(
            "payment_behavior",
            &behavior,
            &allowed,
        ));
    }
    let collection = p
        .string("collection_method")?
        .unwrap_or_else(|| "charge_automatically".into());
    if !matches!(collection.as_str(), "charge_automatically" | "send_invoice") {
        return Err(errors::invalid_enum(
            "collection_method",
            &collection,
            &["charge_automatically", "send_invoice"],
        ));
    }
    let days_until_due = p.int("days_until_due")?;
    if collection == "send_invoice" && days_until_due.is_none() {
        return Err(errors::missing("days_until_due"));
    }
    let default_pm = p.string("default_payment_method")?;
    if let Some(pm) = &default_pm {
        check_default_pm(pm, &customer_id)?;
    }
    // Flexible is the default billing mode since 2025-09-30.clover; the twin
    // bills both alike (it does not prorate).
    let mut billing_mode = json!({"flexible": {"proration_discounts": "included"},
                                  "type": "flexible", "updated_at": null});
    if let Some(mut mode) = p.hash("billing_mode")? {
        let kind = mode
            .string("type")?
            .ok_or_else(|| errors::missing("billing_mode[type]"))?;
        mode.take("flexible");
        mode.finish_in("billing_mode")?;
        match kind.as_str() {
            "flexible" => {}
            "classic" => {
                billing_mode = json!({"flexible": null, "type": "classic", "updated_at": null})
            }
            other => {
                return Err(errors::invalid_enum(
                    "billing_mode[type]",
                    other,
                    &["classic", "flexible"],
                ));
            }
        }
    }
    let cancel_at_period_end = p.bool("cancel_at_period_end")?.unwrap_or(false);
    let cancel_at = cancel_at_param(&mut p, None)?.flatten();
    let description = p.string("description")?;
    let metadata = p.take("metadata");
    let add_items = match item_specs_once(&mut p)? {
        None => Vec::new(),
        Some(specs) => {
            let mut out = Vec::new();
            for (i, spec) in specs.into_iter().enumerate() {
                let price = spec
                    .price
                    .ok_or_else(|| errors::missing(&format!("add_invoice_items[{i}][price]")))?;
                out.push((price, spec.quantity.unwrap_or(1)));
            }
            out
        }
    };
    for f in [
        "proration_behavior",
        "off_session",
        "payment_settings",
        "automatic_tax",
        "billing_cycle_anchor_config",
        "trial_settings",
        "default_tax_rates",
        "discounts",
    ] {
        p.take(f);
    }
    let expand = p.finish()?;

    let sub_key = ids::new("sub");
    let mut data = Vec::new();
    for spec in specs {
        if spec.price.is_none() {
            return Err(errors::missing("items[0][price]"));
        }
        data.push(new_item(&sub_key, spec, t, t)?);
    }
    check_items(&data)?;
    let currency = data[0]["price"]["currency"].clone();
    let anchor = trial_end.unwrap_or(t);
    let mut sub = json!({
        "id": sub_key, "object": "subscription", "application": null,
        "application_fee_percent": null,
        "automatic_tax": {"disabled_reason": null, "enabled": false, "liability": null},
        "billing_cycle_anchor": anchor, "billing_cycle_anchor_config": null,
        "billing_mode": billing_mode,
        "billing_thresholds": null, "cancel_at": cancel_at, "cancel_at_period_end": false,
        "canceled_at": null,
        "cancellation_details": {"comment": null, "feedback": null, "reason": null},
        "collection_method": collection, "created": t, "currency": currency,
        "customer": customer_id, "customer_account": null, "days_until_due": days_until_due,
        "default_payment_method": default_pm, "default_source": null, "default_tax_rates": [],
        "description": description, "discounts": [], "ended_at": null,
        "invoice_settings": {"account_tax_ids": null, "issuer": {"type": "self"}},
        "items": null, "latest_invoice": null, "livemode": false, "metadata": {},
        "next_pending_invoice_item_invoice": null, "on_behalf_of": null,
        "pause_collection": null,
        "payment_settings": {"payment_method_options": null, "payment_method_types": null,
                             "save_default_payment_method": "off"},
        "pending_invoice_item_interval": null, "pending_setup_intent": null,
        "pending_update": null, "schedule": null, "start_date": t,
        "status": if trial_end.is_some() { "trialing" } else { "incomplete" },
        "test_clock": customer["test_clock"], "transfer_data": null,
        "trial_end": trial_end, "trial_settings": {"end_behavior":
            {"missing_payment_method": "create_invoice"}},
        "trial_start": trial_end.map(|_| t),
    });
    apply_metadata(&mut sub, metadata)?;
    set_items(&mut sub, data);
    let end = period_end(&sub, t);
    set_period(&mut sub, t, end);
    if cancel_at_period_end {
        sub["cancel_at_period_end"] = json!(true);
        sub["cancel_at"] = json!(end);
    }
    let charged_now = trial_end.is_none() && collection == "charge_automatically";
    if charged_now && behavior == "error_if_incomplete" {
        // Refuse before anything is written, as Stripe creates nothing.
        let pm = effective_pm(&sub, &customer);
        let decline = match &pm {
            Some(id) => coll(payment_methods::COLL_NAME)
                .get(id)?
                .and_then(|pm| payment_methods::decline_for(&pm)),
            None => None,
        };
        if pm.is_none() {
            return Err(Error::bad_request(
                "This customer has no attached payment source or default payment method. \
                 Please consider adding a default payment method.",
            )
            .with_code("resource_missing"));
        }
        if let Some((code, decline_code, message)) = decline {
            let mut e = Error::payment_required(message)
                .with_code(code)
                .with_extra("decline_code", decline_code);
            e.kind = "card_error".into();
            return Err(e);
        }
    }
    let trial = trial_end.is_some();
    let charge = behavior != "default_incomplete";
    if !trial && charge {
        // Optimistic, as for renewals: a failed first payment says
        // `incomplete` below; a paid one needs no second event.
        sub["status"] = json!("active");
    }
    coll(COLL).insert(&sub_key, &sub)?;
    link_items(&sub)?;
    for (price, qty) in add_items {
        invoice_items::create_for(&customer, &price, qty, Some(&sub_key))?;
    }
    let paid = bill(&mut sub, "subscription_create", (t, end), t, trial, charge)?;
    let mut after = load(COLL, "subscription", &sub_key)?;
    if !paid && !trial && status(&after) == "active" {
        after["status"] = json!("incomplete");
        save(&after)?;
    }
    events::record("customer.subscription.created", &after)?;
    let mut sub = load(COLL, "subscription", &sub_key)?;
    reschedule(&sub)?;
    expand::apply(&mut sub, &expand)?;
    Ok(sub)
}

/// `add_invoice_items[]`: one-time prices billed on the first invoice.
fn item_specs_once(p: &mut Params) -> Result<Option<Vec<ItemSpec>>, Error> {
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

pub fn retrieve(req: &Request) -> Result<Response, Error> {
    let expand = Params::of(req)?.finish()?;
    wire::retrieve(COLL, "subscription", wire::id(req), &expand)
}

/// Applies item changes (`items[]` of an update, or the item endpoints).
/// Changes take effect from the next invoice: the twin does not prorate.
fn change_items(sub: &mut Value, specs: Vec<ItemSpec>) -> Result<(), Error> {
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

pub fn update(req: &Request) -> Result<Response, Error> {
    let id = wire::id(req).to_owned();
    let sub = load(COLL, "subscription", &id)?;
    let t = billing::time_on(&clock_of(&sub))?;
    let p = Params::of(req)?;
    wire::at_time(t, || update_at(sub, p, t))
}

fn update_at(mut sub: Value, mut p: Params, t: u64) -> Result<Response, Error> {
    let id = sub_id(&sub);
    let before = sub.clone();
    if matches!(status(&sub), "canceled" | "incomplete_expired") {
        let allowed = ["metadata", "cancellation_details"];
        if let Some(k) = p
            .keys()
            .into_iter()
            .find(|k| !allowed.contains(&k.as_str()))
        {
            return Err(Error::bad_request(format!(
                "A canceled subscription can only update its cancellation_details and \
                 metadata. You passed `{k}`."
            ))
            .with_param(k));
        }
    }
    if let Some(specs) = item_specs(&mut p, "items")? {
        change_items(&mut sub, specs)?;
    }
    let customer_id = sub["customer"].as_str().unwrap_or_default().to_owned();
    if let Some(pm) = p.opt_string("default_payment_method")? {
        if let Some(pm) = &pm {
            check_default_pm(pm, &customer_id)?;
        }
        set_opt(&mut sub, "default_payment_method", Some(pm));
    }
    let description = p.opt_string("description")?;
    set_opt(&mut sub, "description", description);
    apply_metadata(&mut sub, p.take("metadata"))?;
    let period_end = current_period_end(&sub);
    if let Some(flag) = p.bool("cancel_at_period_end")? {
        sub["cancel_at_period_end"] = json!(flag);
        sub["cancel_at"] = json!(if flag { period_end } else { None });
        sub["canceled_at"] = json!(if flag { Some(t) } else { None });
        sub["cancellation_details"]["reason"] = json!(flag.then_some("cancellation_requested"));
    }
    if let Some(at) = cancel_at_param(&mut p, period_end)? {
        if at.is_some_and(|c| c < t) {
            return Err(errors::invalid(
                "cancel_at",
                "The cancel_at timestamp must be in the future.",
            ));
        }
        sub["cancel_at"] = json!(at);
        sub["cancel_at_period_end"] = json!(at.is_some() && at == period_end);
        sub["canceled_at"] = json!(at.map(|_| t));
    }
    if let Some(mut details) = p.hash("cancellation_details")? {
        let comment = details.opt_string("comment")?;
        let feedback = details.opt_string("feedback")?;
        details.finish_in("cancellation_details")?;
        if let Some(c) = comment {
            sub["cancellation_details"]["comment"] = json!(c);
        }
        if let Some(f) = feedback {
            sub["cancellation_details"]["feedback"] = json!(f);
        }
    }
    if let Some(m) = p.string("collection_method")? {
        sub["collection_method"] = json!(m);
    }
    if let Some(d) = p.int("days_until_due")? {
        sub["days_until_due"] = json!(d);
    }
    let trial_end = trial_end_param(&mut p, t)?;
    if let Some(end) = trial_end {
        if status(&sub) != "trialing" && end > t {
            return Err(errors::invalid(
                "trial_end",
                "A trial can only be extended or ended while the subscription is trialing.",
            ));
        }
        if status(&sub) == "trialing" {
            sub["trial_end"] = json!(end);
            sub["billing_cycle_anchor"] = json!(end);
            let start = sub["items"]["data"][0]["current_period_start"]
                .as_u64()
                .unwrap_or(t);
            set_period(&mut sub, start, end);
        }
    }
    for f in [
        "proration_behavior",
        "proration_date",
        "payment_behavior",
        "off_session",
        "payment_settings",
        "automatic_tax",
        "trial_settings",
        "billing_cycle_anchor",
        "default_tax_rates",
        "discounts",
        "trial_from_plan",
    ] {
        p.take(f);
    }
    let expand = p.finish()?;
    save(&sub)?;
    events::record_with(
        "customer.subscription.updated",
        &sub,
        Some(customers::previous(&before, &sub)),
    )?;
    // Ending a trial now bills at once.
    reschedule(&sub)?;
    wire::automated(|| process(&id, t))?;
    let mut sub = load(COLL, "subscription", &id)?;
    expand::apply(&mut sub, &expand)?;
    Ok(Response::ok(&sub))
}

pub fn cancel(req: &Request) -> Result<Response, Error> {
    let id = wire::id(req).to_owned();
    let mut sub = load(COLL, "subscription", &id)?;
    let mut p = Params::of(req)?;
    let mut comment = None;
    let mut feedback = None;
    if let Some(mut details) = p.hash("cancellation_details")? {
        comment = details.string("comment")?;
        feedback = details.string("feedback")?;
        details.finish_in("cancellation_details")?;
    }
    p.take("invoice_now");
    p.take("prorate");
    let expand = p.finish()?;
    if matches!(status(&sub), "canceled" | "incomplete_expired") {
        return Err(Error::bad_request(format!(
            "No such subscription: '{id}'; it has already been canceled."
        ))
        .with_code("resource_missing"));
    }
    sub["cancellation_details"]["comment"] = json!(comment);
    sub["cancellation_details"]["feedback"] = json!(feedback);
    let t = billing::time_on(&clock_of(&sub))?;
    wire::at_time(t, || cancel_now(&mut sub, t, "cancellation_requested"))?;
    expand::apply(&mut sub, &expand)?;
    Ok(Response::ok(&sub))
}

pub fn list(req: &Request) -> Result<Response, Error> {
    let mut p = Params::of(req)?;
    let page = p.page(req)?;
    let customer = p.string("customer")?;
    let price = p.string("price")?;
    let st = p.string("status")?;
    let clock = p.string("test_clock")?;
    let method = p.string("collection_method")?;
    let created = p.created()?;
    for f in [
        "current_period_end",
        "current_period_start",
        "automatic_tax",
    ] {
        p.take(f);
    }
    let expand = p.finish()?;
    if let Some(s) = &st {
        let allowed = [
            "active",
            "all",
            "canceled",
            "ended",
            "incomplete",
            "incomplete_expired",
            "past_due",
            "paused",
            "trialing",
            "unpaid",
        ];
        if !allowed.contains(&s.as_str()) {
            return Err(errors::invalid_enum("status", s, &allowed));
        }
    }
    let found = coll(COLL).list_where(&page, true, |sub| {
        let s = status(sub);
        let status_ok = match st.as_deref() {
            None => s != "canceled" && s != "incomplete_expired",
            Some("all") => true,
            Some("ended") => s == "canceled" || s == "incomplete_expired",
            Some(want) => s == want,
        };
        // Test clock subscriptions show only when asked for by clock or
        // customer, as on Stripe.
        let clock_ok = match &clock {
            Some(c) => sub["test_clock"] == json!(c),
            None => customer.is_some() || sub["test_clock"].is_null(),
        };
        status_ok
            && clock_ok
            && created.matches(sub)
            && customer
                .as_ref()
                .is_none_or(|c| sub["customer"] == json!(c))
            && method
                .as_ref()
                .is_none_or(|m| sub["collection_method"] == json!(m))
            && price
                .as_ref()
                .is_none_or(|pr| items(sub).iter().any(|i| i["price"]["id"] == json!(pr)))
    })?;
    Ok(Response::ok(&list_body(
        "/v1/subscriptions",
        found,
        &expand,
    )?))
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

fn find_item(sub: &Value, id: &str) -> Result<Value, Error> {
    items(sub)
        .into_iter()
        .find(|i| i["id"] == json!(id))
        .ok_or_else(|| Error::resource_missing("subscription_item", id))
}

/// Saves an item change and records it on the subscription.
fn item_changed(before: &Value, sub: &Value) -> Result<(), Error> {
    save(sub)?;
    events::record_with(
        "customer.subscription.updated",
        sub,
        Some(customers::previous(before, sub)),
    )
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

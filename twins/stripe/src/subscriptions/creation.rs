//! Starting a subscription: `POST /v1/subscriptions`, and the same from a
//! completed Checkout Session. Creation reads and checks every parameter
//! before writing anything (a refused request leaves nothing behind), then
//! stores the subscription, bills its first invoice, and settles its first
//! status from whether that invoice was paid.

use serde_json::{Value, json};
use wt_sdk::{Error, Request, Response, ids};

use super::cycle::{bill, period_end, reschedule, set_period};
use super::items::{ItemSpec, check_items, item_specs, item_specs_once, link_items, new_item};
use super::params::{cancel_at_param, check_default_pm, trial_end_param};
use super::{COLL, save, set_items, status};
use crate::wire::{self, Params, apply_metadata, coll, load};
use crate::{billing, customers, errors, events, expand, invoice_items, payment_methods};

/// `payment_behavior` values Stripe accepts.
const PAYMENT_BEHAVIORS: [&str; 4] = [
    "allow_incomplete",
    "default_incomplete",
    "error_if_incomplete",
    "pending_if_incomplete",
];

/// Parameters the twin accepts on create but does not act on.
const IGNORED: [&str; 8] = [
    "proration_behavior",
    "off_session",
    "payment_settings",
    "automatic_tax",
    "billing_cycle_anchor_config",
    "trial_settings",
    "default_tax_rates",
    "discounts",
];

/// A create request's settings, read and checked, other than its items.
struct Settings {
    /// When the trial ends, if there is one (always in the future).
    trial_end: Option<u64>,
    /// `payment_behavior`.
    behavior: String,
    /// `collection_method`.
    collection: String,
    days_until_due: Option<i64>,
    default_pm: Option<String>,
    billing_mode: Value,
    cancel_at_period_end: bool,
    cancel_at: Option<u64>,
    description: Option<String>,
    metadata: Option<Value>,
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

/// What `create` does, at the customer's clock time `t`: read everything,
/// build the subscription in memory, refuse an unpayable
/// `error_if_incomplete` start, then store it and bill the first period.
fn create_at(mut p: Params, customer: Value, t: u64) -> Result<Value, Error> {
    let customer_id = customer["id"].as_str().unwrap_or_default().to_owned();
    let specs = required_items(&mut p)?;
    let settings = read_settings(&mut p, &specs, &customer_id, t)?;
    let add_items = add_invoice_items(&mut p)?;
    for f in IGNORED {
        p.take(f);
    }
    let expand = p.finish()?;

    let sub_key = ids::new("sub");
    let data = first_items(&sub_key, specs, t)?;
    let mut sub = skeleton(&sub_key, &settings, &customer, &data, t);
    apply_metadata(&mut sub, settings.metadata)?;
    set_items(&mut sub, data);
    let end = period_end(&sub, t);
    set_period(&mut sub, t, end);
    if settings.cancel_at_period_end {
        sub["cancel_at_period_end"] = json!(true);
        sub["cancel_at"] = json!(end);
    }
    let trial = settings.trial_end.is_some();
    let charged_now = !trial && settings.collection == "charge_automatically";
    if charged_now && settings.behavior == "error_if_incomplete" {
        refuse_unpayable(&sub, &customer)?;
    }
    let charge = settings.behavior != "default_incomplete";
    if !trial && charge {
        // Optimistic, as for renewals: a failed first payment says
        // `incomplete` below; a paid one needs no second event.
        sub["status"] = json!("active");
    }
    store(&sub, &customer, add_items)?;
    let paid = bill(&mut sub, "subscription_create", (t, end), t, trial, charge)?;
    settle_first_status(&sub_key, paid, trial)?;
    let mut sub = load(COLL, "subscription", &sub_key)?;
    reschedule(&sub)?;
    expand::apply(&mut sub, &expand)?;
    Ok(sub)
}

/// `items[]`: required, and not empty.
fn required_items(p: &mut Params) -> Result<Vec<ItemSpec>, Error> {
    let specs = item_specs(p, "items")?.ok_or_else(|| errors::missing("items"))?;
    if specs.is_empty() {
        return Err(errors::missing("items"));
    }
    Ok(specs)
}

/// Reads the settings one after another: the order is part of the
/// behaviour (it decides which error a request with several faults gets),
/// so keep it when adding one.
fn read_settings(
    p: &mut Params,
    specs: &[ItemSpec],
    customer_id: &str,
    t: u64,
) -> Result<Settings, Error> {
    let trial_end = trial_end(p, specs, t)?;
    let behavior = payment_behavior(p)?;
    let (collection, days_until_due) = collection(p)?;
    let default_pm = p.string("default_payment_method")?;
    if let Some(pm) = &default_pm {
        check_default_pm(pm, customer_id)?;
    }
    let billing_mode = billing_mode(p)?;
    let cancel_at_period_end = p.bool("cancel_at_period_end")?.unwrap_or(false);
    let cancel_at = cancel_at_param(p, None)?.flatten();
    let description = p.string("description")?;
    let metadata = p.take("metadata");
    Ok(Settings {
        trial_end,
        behavior,
        collection,
        days_until_due,
        default_pm,
        billing_mode,
        cancel_at_period_end,
        cancel_at,
        description,
        metadata,
    })
}

/// When the trial ends: `trial_period_days` (0 to 730; 0 means none) wins
/// over `trial_end`; `trial_from_plan` falls back on the first price's
/// trial. A trial ending now or earlier is no trial.
fn trial_end(p: &mut Params, specs: &[ItemSpec], t: u64) -> Result<Option<u64>, Error> {
    let trial_days = p.int("trial_period_days")?;
    let trial_from_plan = p.bool("trial_from_plan")?.unwrap_or(false);
    let mut trial_end = trial_end_param(p, t)?;
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
    Ok(trial_end.filter(|end| *end > t))
}

/// `payment_behavior`, `allow_incomplete` unless given.
fn payment_behavior(p: &mut Params) -> Result<String, Error> {
    let behavior = p
        .string("payment_behavior")?
        .unwrap_or_else(|| "allow_incomplete".into());
    if !PAYMENT_BEHAVIORS.contains(&behavior.as_str()) {
        return Err(errors::invalid_enum(
            "payment_behavior",
            &behavior,
            &PAYMENT_BEHAVIORS,
        ));
    }
    Ok(behavior)
}

/// `collection_method` (`charge_automatically` unless given) and
/// `days_until_due`, which sending invoices requires.
fn collection(p: &mut Params) -> Result<(String, Option<i64>), Error> {
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
    Ok((collection, days_until_due))
}

/// `billing_mode`, as Stripe shows it.
fn billing_mode(p: &mut Params) -> Result<Value, Error> {
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
    Ok(billing_mode)
}

/// `add_invoice_items[]` as (price, quantity) pairs; each needs a price.
fn add_invoice_items(p: &mut Params) -> Result<Vec<(Value, i64)>, Error> {
    let Some(specs) = item_specs_once(p)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (i, spec) in specs.into_iter().enumerate() {
        let price = spec
            .price
            .ok_or_else(|| errors::missing(&format!("add_invoice_items[{i}][price]")))?;
        out.push((price, spec.quantity.unwrap_or(1)));
    }
    Ok(out)
}

/// The new subscription's items, all in the empty period at `t` until the
/// subscription's period is known; checked to bill alike.
fn first_items(sub_key: &str, specs: Vec<ItemSpec>, t: u64) -> Result<Vec<Value>, Error> {
    let mut data = Vec::new();
    for spec in specs {
        if spec.price.is_none() {
            return Err(errors::missing("items[0][price]"));
        }
        data.push(new_item(sub_key, spec, t, t)?);
    }
    check_items(&data)?;
    Ok(data)
}

/// The subscription object as Stripe first shows it, before its metadata,
/// items and period are filled in. `data` is not empty (checked by
/// [`check_items`]); the subscription bills in its first item's currency.
fn skeleton(sub_key: &str, s: &Settings, customer: &Value, data: &[Value], t: u64) -> Value {
    let currency = data[0]["price"]["currency"].clone();
    let anchor = s.trial_end.unwrap_or(t);
    let trial_end = s.trial_end;
    json!({
        "id": sub_key, "object": "subscription", "application": null,
        "application_fee_percent": null,
        "automatic_tax": {"disabled_reason": null, "enabled": false, "liability": null},
        "billing_cycle_anchor": anchor, "billing_cycle_anchor_config": null,
        "billing_mode": s.billing_mode,
        "billing_thresholds": null, "cancel_at": s.cancel_at, "cancel_at_period_end": false,
        "canceled_at": null,
        "cancellation_details": {"comment": null, "feedback": null, "reason": null},
        "collection_method": s.collection, "created": t, "currency": currency,
        "customer": customer["id"].as_str().unwrap_or_default(), "customer_account": null,
        "days_until_due": s.days_until_due,
        "default_payment_method": s.default_pm, "default_source": null, "default_tax_rates": [],
        "description": s.description, "discounts": [], "ended_at": null,
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
    })
}

/// `error_if_incomplete` refuses, before anything is written (Stripe
/// creates nothing), a first payment that could not succeed: no payment
/// method to charge, or one that declines.
fn refuse_unpayable(sub: &Value, customer: &Value) -> Result<(), Error> {
    let pm = effective_pm(sub, customer);
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
    Ok(())
}

/// The payment method a subscription's invoices would be charged to.
fn effective_pm(sub: &Value, customer: &Value) -> Option<String> {
    sub["default_payment_method"]
        .as_str()
        .or_else(|| customer["invoice_settings"]["default_payment_method"].as_str())
        .map(str::to_owned)
}

/// Writes the new subscription, makes its items findable by id, and files
/// the `add_invoice_items` as pending items its first invoice will sweep
/// up.
fn store(sub: &Value, customer: &Value, add_items: Vec<(Value, i64)>) -> Result<(), Error> {
    let sub_key = sub["id"].as_str().unwrap_or_default();
    coll(COLL).insert(sub_key, sub)?;
    link_items(sub)?;
    for (price, qty) in add_items {
        invoice_items::create_for(customer, &price, qty, Some(sub_key))?;
    }
    Ok(())
}

/// After the first invoice: an optimistically `active` subscription whose
/// first payment failed is `incomplete`; then `created` is recorded with
/// the settled status (so one event, not two).
fn settle_first_status(sub_key: &str, paid: bool, trial: bool) -> Result<(), Error> {
    let mut after = load(COLL, "subscription", sub_key)?;
    if !paid && !trial && status(&after) == "active" {
        after["status"] = json!("incomplete");
        save(&after)?;
    }
    events::record("customer.subscription.created", &after)
}

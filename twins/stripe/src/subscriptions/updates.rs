//! `POST /v1/subscriptions/{id}`: changes to a live subscription (items,
//! payment method, cancellation, collection, trial). The twin does not
//! prorate: item changes take effect from the next invoice. Each kind of
//! change reads its own parameters in a helper here, in the order the
//! request has always been checked: the order decides which error a
//! request with several faults gets.

use serde_json::{Value, json};
use wt_sdk::{Error, Request, Response};

use super::cycle::{process, reschedule, set_period};
use super::items::{change_items, item_specs};
use super::params::{cancel_at_param, check_default_pm, trial_end_param};
use super::{COLL, clock_of, current_period_end, record_updated, save, status, sub_id};
use crate::wire::{self, Params, apply_metadata, load, set_opt};
use crate::{billing, errors, expand};

/// Parameters the twin accepts on update but does not act on.
const IGNORED: [&str; 11] = [
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
];

pub fn update(req: &Request) -> Result<Response, Error> {
    let id = wire::id(req).to_owned();
    let sub = load(COLL, "subscription", &id)?;
    let t = billing::time_on(&clock_of(&sub))?;
    let p = Params::of(req)?;
    wire::at_time(t, || update_at(sub, p, t))
}

/// What `update` does, at the subscription's clock time `t`: applies each
/// kind of change, records the update, then runs whatever the change made
/// due at once (ending a trial now bills at once).
fn update_at(mut sub: Value, mut p: Params, t: u64) -> Result<Response, Error> {
    let id = sub_id(&sub);
    let before = sub.clone();
    refuse_if_ended(&sub, &p)?;
    if let Some(specs) = item_specs(&mut p, "items")? {
        change_items(&mut sub, specs)?;
    }
    update_payment_method(&mut sub, &mut p)?;
    let description = p.opt_string("description")?;
    set_opt(&mut sub, "description", description);
    apply_metadata(&mut sub, p.take("metadata"))?;
    update_cancellation(&mut sub, &mut p, t)?;
    update_collection(&mut sub, &mut p)?;
    update_trial(&mut sub, &mut p, t)?;
    for f in IGNORED {
        p.take(f);
    }
    let expand = p.finish()?;
    save(&sub)?;
    record_updated(&before, &sub)?;
    // Ending a trial now bills at once.
    reschedule(&sub)?;
    wire::automated(|| process(&id, t))?;
    let mut sub = load(COLL, "subscription", &id)?;
    expand::apply(&mut sub, &expand)?;
    Ok(Response::ok(&sub))
}

/// A canceled (or expired) subscription takes only `metadata` and
/// `cancellation_details`; anything else is refused naming the first
/// other parameter, before any change is read.
fn refuse_if_ended(sub: &Value, p: &Params) -> Result<(), Error> {
    if !matches!(status(sub), "canceled" | "incomplete_expired") {
        return Ok(());
    }
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
    Ok(())
}

/// `default_payment_method`: set (to one of the customer's) or cleared.
fn update_payment_method(sub: &mut Value, p: &mut Params) -> Result<(), Error> {
    let customer_id = sub["customer"].as_str().unwrap_or_default().to_owned();
    if let Some(pm) = p.opt_string("default_payment_method")? {
        if let Some(pm) = &pm {
            check_default_pm(pm, &customer_id)?;
        }
        set_opt(sub, "default_payment_method", Some(pm));
    }
    Ok(())
}

/// `cancel_at_period_end`, `cancel_at` and `cancellation_details`:
/// scheduling (or unscheduling) the end, stamped as requested at `t`.
fn update_cancellation(sub: &mut Value, p: &mut Params, t: u64) -> Result<(), Error> {
    let period_end = current_period_end(sub);
    if let Some(flag) = p.bool("cancel_at_period_end")? {
        sub["cancel_at_period_end"] = json!(flag);
        sub["cancel_at"] = json!(if flag { period_end } else { None });
        sub["canceled_at"] = json!(if flag { Some(t) } else { None });
        sub["cancellation_details"]["reason"] = json!(flag.then_some("cancellation_requested"));
    }
    if let Some(at) = cancel_at_param(p, period_end)? {
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
    Ok(())
}

/// `collection_method` and `days_until_due`, taken as given.
fn update_collection(sub: &mut Value, p: &mut Params) -> Result<(), Error> {
    if let Some(m) = p.string("collection_method")? {
        sub["collection_method"] = json!(m);
    }
    if let Some(d) = p.int("days_until_due")? {
        sub["days_until_due"] = json!(d);
    }
    Ok(())
}

/// `trial_end`: only a trialing subscription's trial moves (the billing
/// cycle re-anchors at its new end); any other may only end it "now",
/// which changes nothing.
fn update_trial(sub: &mut Value, p: &mut Params, t: u64) -> Result<(), Error> {
    let Some(end) = trial_end_param(p, t)? else {
        return Ok(());
    };
    if status(sub) != "trialing" && end > t {
        return Err(errors::invalid(
            "trial_end",
            "A trial can only be extended or ended while the subscription is trialing.",
        ));
    }
    if status(sub) == "trialing" {
        sub["trial_end"] = json!(end);
        sub["billing_cycle_anchor"] = json!(end);
        let start = sub["items"]["data"][0]["current_period_start"]
            .as_u64()
            .unwrap_or(t);
        set_period(sub, start, end);
    }
    Ok(())
}

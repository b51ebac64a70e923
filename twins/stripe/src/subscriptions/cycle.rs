//! The billing cycle: what happens to a subscription as time passes.
//! Periods and when the next work falls due, renewals and the invoice each
//! bills, trial-ending notices, expiry of an unpaid `incomplete`
//! subscription, and cancellation. Kept apart from the endpoints because
//! the same steps run on any request (lazily, see [`crate::billing`]),
//! when a test clock advances, and when a customer is deleted.

use serde_json::{Value, json};
use wt_sdk::Error;

use super::{
    COLL, INCOMPLETE_WINDOW, STATE, TRIAL_NOTICE, clock_of, current_period_end, items,
    record_updated, save, set_items, status, sub_id,
};
use crate::billing::{self, TWIN_CLOCK};
use crate::wire::{self, coll, load, now};
use crate::{customers, events, invoice_items, invoices};

/// The end of the period starting at `start`, anchored at the
/// subscription's billing cycle anchor.
pub(super) fn period_end(sub: &Value, start: u64) -> u64 {
    let first = items(sub).into_iter().next().unwrap_or(Value::Null);
    let (unit, count) = billing::interval(&first["price"]);
    let anchor = sub["billing_cycle_anchor"].as_u64().unwrap_or(start);
    billing::period_end_after(anchor, &unit, count, start)
}

/// Moves every item into the period `[start, end)`.
pub(super) fn set_period(sub: &mut Value, start: u64, end: u64) {
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

/// The billing bookkeeping of subscription `id` (nothing sent yet when
/// none was kept).
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
pub(super) fn reschedule(sub: &Value) -> Result<(), Error> {
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

/// Does the one piece of work due on `sub` at `t` (expiry, trial notice,
/// cancellation or renewal) and reloads it, as the work saves its own
/// changes.
fn step(sub: &mut Value, st: &mut Value, t: u64) -> Result<(), Error> {
    let id = sub_id(sub);
    match status(sub) {
        "incomplete" => expire_incomplete(sub, t)?,
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

/// An `incomplete` subscription whose first invoice went unpaid for
/// [`INCOMPLETE_WINDOW`] becomes `incomplete_expired` at `t`, and its
/// still-open invoice is voided (nothing can pay it any more).
fn expire_incomplete(sub: &mut Value, t: u64) -> Result<(), Error> {
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
    record_updated(&before, sub)
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
pub(super) fn cancel_now(sub: &mut Value, t: u64, reason: &str) -> Result<(), Error> {
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
    record_updated(&before, &after)?;
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
pub(super) fn bill(
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
    record_updated(&before, &sub)?;
    reschedule(&sub)
}

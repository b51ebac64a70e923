//! Subscriptions and their items: recurring prices billed one invoice per
//! period, with trials, cancellation at period end, and the status machine
//! `trialing → active`, `incomplete` (first payment failed) `→ active` once
//! its invoice is paid or `→ incomplete_expired` after 23 hours, `active →
//! past_due` when a renewal's payment fails, and `canceled`.
//!
//! Work that falls due (a trial ending, a period ending) runs lazily: see
//! [`crate::billing`] for when. [`cycle::process`] replays everything due up
//! to a moment in order, each step stamped with the time it was due.
//!
//! This file holds what every part shares (the stored shape, small
//! accessors) and the thin `/v1/subscriptions` handlers; the work itself
//! lives in submodules named for their job:
//!
//! - [`items`]: reading `items[]`, building and changing subscription
//!   items, and the `/v1/subscription_items` endpoints;
//! - [`params`]: timestamp and payment-method parameters that creation and
//!   updates read alike;
//! - [`creation`]: starting a subscription and billing its first invoice;
//! - [`updates`]: `POST /v1/subscriptions/{id}`;
//! - [`cycle`]: the billing cycle, renewals, trial notices, expiry and
//!   cancellation as time passes.

use serde_json::{Value, json};
use wt_sdk::{Error, Request, Response};

use crate::wire::{self, Params, coll, list_body, load};
use crate::{billing, customers, errors, events, expand};

mod creation;
mod cycle;
mod items;
mod params;
mod updates;

pub use creation::{create, start};
pub use cycle::{advance_limit, end_for_customer, invoice_paid, run_due};
pub use items::{item_create, item_delete, item_list, item_retrieve, item_update};
pub use updates::update;

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

fn current_period_end(sub: &Value) -> Option<u64> {
    sub["items"]["data"][0]["current_period_end"].as_u64()
}

/// Records `customer.subscription.updated` for the change from `before` to
/// `after`, with Stripe's `previous_attributes`: every status change and
/// item change announces itself the same way.
fn record_updated(before: &Value, after: &Value) -> Result<(), Error> {
    events::record_with(
        "customer.subscription.updated",
        after,
        Some(customers::previous(before, after)),
    )
}

pub fn retrieve(req: &Request) -> Result<Response, Error> {
    let expand = Params::of(req)?.finish()?;
    wire::retrieve(COLL, "subscription", wire::id(req), &expand)
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
    wire::at_time(t, || {
        cycle::cancel_now(&mut sub, t, "cancellation_requested")
    })?;
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

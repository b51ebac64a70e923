//! Test clocks: a frozen time that customers (and so their subscriptions
//! and invoices) live on, moved only forward by `advance`, which runs every
//! renewal, trial end and cancellation that falls due on the way, each at
//! its own moment.

use serde_json::json;
use wt_sdk::{Error, Page, Request, Response, ids};

use crate::wire::{self, Params, coll, load, now};
use crate::{errors, events, expand, subscriptions};

/// The collection test clocks live in.
pub const COLL: &str = "test_clocks";
/// Stripe deletes test clocks 30 days after creation.
const LIFETIME: u64 = 30 * 86_400;

fn frozen_time(p: &mut Params) -> Result<u64, Error> {
    let t = p
        .int("frozen_time")?
        .ok_or_else(|| errors::missing("frozen_time"))?;
    if !(0..=crate::billing::LATEST as i64).contains(&t) {
        return Err(errors::invalid(
            "frozen_time",
            "Invalid timestamp: must be a Unix timestamp between 0 and 253402300799.",
        ));
    }
    Ok(t as u64)
}

pub fn create(req: &Request) -> Result<Response, Error> {
    let mut p = Params::of(req)?;
    let frozen = frozen_time(&mut p)?;
    let name = p.string("name")?;
    let expand = p.finish()?;
    let id = ids::new("clock");
    let created = now();
    let tc = json!({
        "id": id, "object": "test_helpers.test_clock", "created": created,
        "deletes_after": created + LIFETIME, "frozen_time": frozen, "livemode": false,
        "name": name, "status": "ready", "status_details": {},
    });
    let raw = wire::insert_created(COLL, &id, &tc, "test_helpers.test_clock.created")?;
    wire::created(&raw, tc, &expand)
}

pub fn retrieve(req: &Request) -> Result<Response, Error> {
    let expand = Params::of(req)?.finish()?;
    wire::retrieve(COLL, "test_helpers.test_clock", wire::id(req), &expand)
}

pub fn list(req: &Request) -> Result<Response, Error> {
    wire::list_all(req, COLL, "/v1/test_helpers/test_clocks")
}

/// Moves the clock to `frozen_time` and runs everything due on it. The work
/// is done before the answer, so the answer says `advancing` (as Stripe's
/// does) while the stored clock, and every later read, is already `ready`.
pub fn advance(req: &Request) -> Result<Response, Error> {
    let id = wire::id(req).to_owned();
    let mut tc = load(COLL, "test_helpers.test_clock", &id)?;
    let mut p = Params::of(req)?;
    let target = frozen_time(&mut p)?;
    let expand = p.finish()?;
    let current = tc["frozen_time"].as_u64().unwrap_or(0);
    if target <= current {
        return Err(errors::invalid(
            "frozen_time",
            &format!(
                "The test clock's frozen_time can only move forward. Current frozen_time: \
                 {current}; requested: {target}."
            ),
        ));
    }
    if let Some(limit) = subscriptions::advance_limit(&id, current)?
        && target > limit
    {
        return Err(errors::invalid(
            "frozen_time",
            &format!(
                "Cannot advance this test clock more than two intervals of its shortest \
                 subscription interval at a time: the latest frozen_time allowed now is {limit}."
            ),
        ));
    }
    let mut advancing = tc.clone();
    advancing["status"] = json!("advancing");
    advancing["status_details"] = json!({"advancing": {"target_frozen_time": target}});
    events::record("test_helpers.test_clock.advancing", &advancing)?;
    tc["frozen_time"] = json!(target);
    coll(COLL).put(&id, &tc)?;
    subscriptions::run_due(&id, target)?;
    wire::at_time(target, || {
        events::record("test_helpers.test_clock.ready", &tc)
    })?;
    advancing["frozen_time"] = json!(current);
    expand::apply(&mut advancing, &expand)?;
    Ok(Response::ok(&advancing))
}

/// Deletes the clock and, as on Stripe, the customers living on it (their
/// subscriptions end with them).
pub fn delete(req: &Request) -> Result<Response, Error> {
    Params::of(req)?.finish()?;
    let id = wire::id(req).to_owned();
    let tc = load(COLL, "test_helpers.test_clock", &id)?;
    let on_clock = coll("customers").list_where(&Page::first(1_000), false, |c| {
        c["test_clock"] == json!(id) && c["deleted"] != json!(true)
    })?;
    for c in on_clock.items {
        let cid = c["id"].as_str().unwrap_or_default().to_owned();
        subscriptions::end_for_customer(&cid)?;
        coll("customers").put(
            &cid,
            &json!({"id": cid, "object": "customer", "deleted": true}),
        )?;
        events::record("customer.deleted", &c)?;
    }
    coll(COLL).remove(&id)?;
    events::record("test_helpers.test_clock.deleted", &tc)?;
    Ok(Response::ok(
        &json!({"id": id, "object": "test_helpers.test_clock", "deleted": true}),
    ))
}

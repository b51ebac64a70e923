//! Billing time: which clock an object lives on, billing period arithmetic,
//! and the index of subscriptions with work due.
//!
//! A twin runs only while it serves a request, so nothing happens "at" a
//! renewal date by itself. Instead every subscription with future work
//! (trial ending, period ending, cancellation) has one entry in a due index
//! `acct/{account}/due/{clock}/{secs:012}/{sub}`, ordered by time. Clock
//! `twin` is the host's twin clock: every request of the account first runs
//! what is due on it (one small range scan when nothing is). A test clock's
//! entries run when that clock is advanced, at the clock's time.

use serde_json::Value;
use wt_sdk::{Error, datetime, scope, store};

use crate::wire::{self, coll};

/// The due-index clock name of subscriptions that follow twin time.
pub const TWIN_CLOCK: &str = "twin";
/// 9999-12-31T23:59:59Z: the latest moment a clock or subscription may
/// name, so calendar arithmetic stays in range.
pub const LATEST: u64 = 253_402_300_799;
/// Most subscriptions one catch-up processes; the rest wait for the next
/// request, which bounds the work any one request does.
const MAX_PER_CATCH_UP: u32 = 200;

/// The clock an object's customer lives on (`test_clock`), or twin time.
pub fn clock_name(test_clock: &Value) -> String {
    test_clock.as_str().unwrap_or(TWIN_CLOCK).to_owned()
}

/// The current time on `clock`: a test clock's `frozen_time`, else twin
/// time (also for objects whose clock has been deleted).
pub fn time_on(clock: &str) -> Result<u64, Error> {
    if clock == TWIN_CLOCK {
        return Ok(wire::now());
    }
    Ok(coll("test_clocks")
        .get(clock)?
        .and_then(|tc| tc["frozen_time"].as_u64())
        .unwrap_or_else(wire::now))
}

/// A price's billing interval: `(unit, count)` from `recurring`.
pub fn interval(price: &Value) -> (String, u32) {
    let r = &price["recurring"];
    (
        r["interval"].as_str().unwrap_or("month").to_owned(),
        r["interval_count"]
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(1)
            .max(1),
    )
}

/// `anchor` moved `n` intervals forward (months clamp the day of month).
fn step(anchor: u64, unit: &str, count: u32, n: u32) -> u64 {
    let n64 = u64::from(n) * u64::from(count);
    match unit {
        "day" => anchor + n64 * 86_400,
        "week" => anchor + n64 * 7 * 86_400,
        "year" => datetime::add_months(anchor, n.saturating_mul(count).saturating_mul(12)),
        _ => datetime::add_months(anchor, n.saturating_mul(count)),
    }
}

/// The end of the billing period that contains `t`, for periods anchored at
/// `anchor`: the first anchor-aligned boundary strictly after `t`.
pub fn period_end_after(anchor: u64, unit: &str, count: u32, t: u64) -> u64 {
    if t < anchor {
        return anchor;
    }
    // Fixed-length units jump straight there; calendar units walk, which
    // stays short (a century of monthly periods is 1,200 steps).
    let len = match unit {
        "day" => Some(86_400 * u64::from(count)),
        "week" => Some(7 * 86_400 * u64::from(count)),
        _ => None,
    };
    if let Some(len) = len {
        return anchor + ((t - anchor) / len + 1) * len;
    }
    let mut n = 1;
    loop {
        let end = step(anchor, unit, count, n);
        if end > t || n == u32::MAX {
            return end;
        }
        n += 1;
    }
}

fn due_prefix(clock: &str) -> String {
    scope::key_of(&["due/", clock, "/"])
}

/// The due index's key for time `t`: every request scans up to now, so this
/// is built without `format!` (see `store::push_padded`).
fn due_key(prefix: &str, t: u64) -> String {
    let mut key = prefix.to_owned();
    store::push_padded(&mut key, t, 12);
    key
}

/// Where subscription `sub`'s due entry lives (so it can be moved).
fn pointer_key(sub: &str) -> String {
    scope::key_of(&["due-at/", sub])
}

/// Puts `sub` in `clock`'s due index at `at`, replacing its old entry;
/// `None` takes it out (nothing left to do).
pub fn schedule(sub: &str, clock: &str, at: Option<u64>) -> Result<(), Error> {
    let pointer = pointer_key(sub);
    if let Some(old) = store::get(&pointer) {
        store::delete(&String::from_utf8_lossy(&old));
    }
    match at {
        Some(t) => {
            let mut key = due_key(&due_prefix(clock), t);
            key.push('/');
            key.push_str(sub);
            store::set(&key, b"")?;
            store::set(&pointer, key.as_bytes())?;
        }
        None => {
            store::delete(&pointer);
        }
    }
    Ok(())
}

/// The subscriptions on `clock` with work due at or before `now`, oldest due
/// first.
pub fn due(clock: &str, now: u64) -> Vec<String> {
    let prefix = due_prefix(clock);
    let end = due_key(&prefix, now.saturating_add(1));
    store::scan(&prefix, Some(&end), MAX_PER_CATCH_UP, false)
        .into_iter()
        .filter_map(|e| e.key.rsplit('/').next().map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_follow_the_anchor() {
        let jan31 = 1_706_659_200; // 2024-01-31T00:00:00Z
        let feb29 = 1_709_164_800;
        let mar31 = 1_711_843_200;
        assert_eq!(period_end_after(jan31, "month", 1, jan31), feb29);
        assert_eq!(period_end_after(jan31, "month", 1, feb29), mar31);
        assert_eq!(
            period_end_after(jan31, "day", 7, jan31 + 1),
            jan31 + 7 * 86_400
        );
        assert_eq!(
            period_end_after(jan31, "week", 1, jan31),
            jan31 + 7 * 86_400
        );
        assert_eq!(
            period_end_after(jan31, "year", 1, jan31),
            1_738_281_600 // 2025-01-31
        );
        assert_eq!(period_end_after(jan31, "month", 1, jan31 - 5), jan31);
    }
}

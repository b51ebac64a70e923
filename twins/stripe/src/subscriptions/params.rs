//! Parameters that creation and updates read alike: `trial_end`,
//! `cancel_at` (and the timestamps inside them) and the check that a
//! `default_payment_method` belongs to the customer. One reader each, so
//! both endpoints accept and refuse the same values with the same errors.

use serde_json::{Value, json};
use wt_sdk::Error;

use crate::billing::LATEST;
use crate::wire::{Params, coll};
use crate::{errors, payment_methods};

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
pub(super) fn trial_end_param(p: &mut Params, t: u64) -> Result<Option<u64>, Error> {
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
pub(super) fn cancel_at_param(
    p: &mut Params,
    period_end: Option<u64>,
) -> Result<Option<Option<u64>>, Error> {
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
pub(super) fn check_default_pm(pm: &str, customer: &str) -> Result<(), Error> {
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

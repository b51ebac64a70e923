//! Charges, created by confirming payment intents.

use serde_json::{Value, json};
use wt_sdk::{Error, Request, Response, ids};

use crate::events;
use crate::wire::{self, Params, coll, list_body, now};

pub const COLL: &str = "charges";

/// Records the charge a confirmation makes on `pm` for `pi`.
pub fn create_for(
    pi: &Value,
    pm: &Value,
    decline: Option<(&str, &str, &str)>,
    manual: bool,
) -> Result<Value, Error> {
    let id = ids::new("ch");
    let amount = pi["amount"].as_i64().unwrap_or(0);
    let ok = decline.is_none();
    let card = &pm["card"];
    let ch = json!({
        "id": id, "object": "charge", "amount": amount,
        "amount_captured": if ok && !manual { amount } else { 0 },
        "amount_refunded": 0, "application": null, "application_fee": null,
        "application_fee_amount": null, "balance_transaction": null,
        "billing_details": pm["billing_details"], "calculated_statement_descriptor": "WT TWIN",
        "captured": ok && !manual, "created": now(), "currency": pi["currency"],
        "customer": pi["customer"], "description": pi["description"], "disputed": false,
        "failure_balance_transaction": null,
        "failure_code": decline.map(|d| d.0), "failure_message": decline.map(|d| d.2),
        "fraud_details": {}, "livemode": false, "metadata": {}, "on_behalf_of": null,
        "outcome": match decline {
            None => json!({"advice_code": null, "network_advice_code": null,
                "network_decline_code": null, "network_status": "approved_by_network",
                "reason": null, "risk_level": "normal", "risk_score": 20,
                "seller_message": "Payment complete.", "type": "authorized"}),
            Some((_, dc, _)) => json!({"advice_code": null, "network_advice_code": null,
                "network_decline_code": null, "network_status": "declined_by_network",
                "reason": dc, "risk_level": "normal", "risk_score": 20,
                "seller_message": "The bank did not return any further details with this decline.",
                "type": "issuer_declined"}),
        },
        "paid": ok, "payment_intent": pi["id"], "payment_method": pm["id"],
        "payment_method_details": {"card": {"amount_authorized": if ok { json!(amount) } else { Value::Null },
            "brand": card["brand"], "checks": card["checks"], "country": card["country"],
            "exp_month": card["exp_month"], "exp_year": card["exp_year"],
            "fingerprint": card["fingerprint"], "funding": card["funding"],
            "last4": card["last4"], "network": card["brand"], "three_d_secure": null,
            "wallet": null}, "type": "card"},
        "receipt_email": pi["receipt_email"], "receipt_number": null, "receipt_url": null,
        "refunded": false, "review": null, "shipping": pi["shipping"], "source": null,
        "statement_descriptor": null, "statement_descriptor_suffix": null,
        "status": if ok { "succeeded" } else { "failed" },
        "transfer_data": null, "transfer_group": null,
    });
    coll(COLL).insert(&id, &ch)?;
    events::record(
        if ok {
            "charge.succeeded"
        } else {
            "charge.failed"
        },
        &ch,
    )?;
    Ok(ch)
}

/// Captures `amount` of an authorized charge; the rest is released.
pub fn capture(id: &str, amount: i64) -> Result<(), Error> {
    let ch = coll(COLL).update(id, |ch| {
        let total = ch["amount"].as_i64().unwrap_or(0);
        ch["captured"] = json!(true);
        ch["amount_captured"] = json!(amount);
        if amount < total {
            ch["amount_refunded"] = json!(total - amount);
        }
    })?;
    if let Some(ch) = ch {
        events::record("charge.captured", &ch)?;
    }
    Ok(())
}

/// Releases an uncaptured charge (its intent was canceled).
pub fn release(id: &str) -> Result<(), Error> {
    let ch = coll(COLL).update(id, |ch| {
        ch["amount_refunded"] = ch["amount"].clone();
        ch["refunded"] = json!(true);
    })?;
    if let Some(ch) = ch {
        events::record("charge.expired", &ch)?;
    }
    Ok(())
}

pub fn retrieve(req: &Request) -> Result<Response, Error> {
    let expand = Params::of(req)?.finish()?;
    wire::retrieve(COLL, "charge", wire::id(req), &expand)
}

pub fn list(req: &Request) -> Result<Response, Error> {
    let mut p = Params::of(req)?;
    let page = p.page(req)?;
    let customer = p.string("customer")?;
    let pi = p.string("payment_intent")?;
    let created = p.created()?;
    p.take("transfer_group");
    let expand = p.finish()?;
    let found = coll(COLL).list_where(&page, true, |ch| {
        created.matches(ch)
            && customer.as_ref().is_none_or(|c| ch["customer"] == json!(c))
            && pi.as_ref().is_none_or(|x| ch["payment_intent"] == json!(x))
    })?;
    Ok(Response::ok(&list_body("/v1/charges", found, &expand)?))
}

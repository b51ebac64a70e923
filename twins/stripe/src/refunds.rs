//! Refunds of succeeded charges, full or partial.

use serde_json::json;
use wt_sdk::{Error, Request, Response, ids};

use crate::wire::{self, Params, apply_metadata, coll, list_body, load, now};
use crate::{charges, errors, events, expand};

const COLL: &str = "refunds";

pub fn create(req: &Request) -> Result<Response, Error> {
    let mut p = Params::of(req)?;
    let charge_id = match (p.string("charge")?, p.string("payment_intent")?) {
        (Some(ch), _) => {
            wire::load_ref(charges::COLL, "charge", &ch, "charge")?;
            ch
        }
        (None, Some(pi_id)) => {
            let pi = wire::load_ref(
                "payment_intents",
                "payment_intent",
                &pi_id,
                "payment_intent",
            )?;
            match (pi["status"].as_str(), pi["latest_charge"].as_str()) {
                (Some("succeeded"), Some(ch)) => ch.to_owned(),
                _ => {
                    return Err(errors::unexpected_state(
                        "payment_intent_unexpected_state",
                        format!(
                            "This PaymentIntent ({pi_id}) does not have a successful charge to refund."
                        ),
                    ));
                }
            }
        }
        (None, None) => return Err(errors::missing("charge")),
    };
    let amount = p.int("amount")?;
    let reason = p.string("reason")?;
    if let Some(r) = &reason
        && !matches!(
            r.as_str(),
            "duplicate" | "fraudulent" | "requested_by_customer"
        )
    {
        return Err(errors::invalid_enum(
            "reason",
            r,
            &["duplicate", "fraudulent", "requested_by_customer"],
        ));
    }
    let metadata = p.take("metadata");
    p.take("instructions_email");
    let expand = p.finish()?;
    let ch = load(charges::COLL, "charge", &charge_id)?;
    let refunded = ch["amount_refunded"].as_i64().unwrap_or(0);
    let total = ch["amount"].as_i64().unwrap_or(0);
    if ch["status"] != json!("succeeded") || ch["captured"] != json!(true) {
        return Err(Error::bad_request(format!(
            "Charge {charge_id} has not been captured; it cannot be refunded."
        ))
        .with_code("charge_not_refundable"));
    }
    let remaining = total - refunded;
    if ch["refunded"] == json!(true) || remaining <= 0 {
        return Err(
            Error::bad_request(format!("Charge {charge_id} has already been refunded."))
                .with_code("charge_already_refunded"),
        );
    }
    let amount = amount.unwrap_or(remaining);
    if amount < 1 {
        return Err(errors::invalid(
            "amount",
            "This value must be greater than or equal to 1.",
        ));
    }
    if amount > remaining {
        return Err(Error::bad_request(format!(
            "Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})"
        ))
        .with_code("amount_too_large")
        .with_param("amount"));
    }
    let id = ids::new("re");
    let mut refund = json!({
        "id": id, "object": "refund", "amount": amount, "balance_transaction": null,
        "charge": charge_id, "created": now(), "currency": ch["currency"],
        "destination_details": {"card": {"reference_status": "pending", "reference_type": "acquirer_reference_number", "type": "refund"}, "type": "card"},
        "metadata": {}, "payment_intent": ch["payment_intent"], "reason": reason,
        "receipt_number": null, "source_transfer_reversal": null, "status": "succeeded",
        "transfer_reversal": null,
    });
    apply_metadata(&mut refund, metadata)?;
    coll(COLL).insert(&id, &refund)?;
    let now_refunded = refunded + amount;
    let updated = coll(charges::COLL).update(&charge_id, |c| {
        c["amount_refunded"] = json!(now_refunded);
        c["refunded"] = json!(now_refunded >= total);
    })?;
    events::record("refund.created", &refund)?;
    if let Some(c) = updated {
        events::record("charge.refunded", &c)?;
    }
    expand::apply(&mut refund, &expand)?;
    Ok(Response::ok(&refund))
}

pub fn retrieve(req: &Request) -> Result<Response, Error> {
    let expand = Params::of(req)?.finish()?;
    wire::retrieve(COLL, "refund", wire::id(req), &expand)
}

pub fn list(req: &Request) -> Result<Response, Error> {
    let mut p = Params::of(req)?;
    let page = p.page(req)?;
    let charge = p.string("charge")?;
    let pi = p.string("payment_intent")?;
    let created = p.created()?;
    let expand = p.finish()?;
    let found = coll(COLL).list_where(&page, true, |r| {
        created.matches(r)
            && charge.as_ref().is_none_or(|c| r["charge"] == json!(c))
            && pi.as_ref().is_none_or(|x| r["payment_intent"] == json!(x))
    })?;
    Ok(Response::ok(&list_body("/v1/refunds", found, &expand)?))
}

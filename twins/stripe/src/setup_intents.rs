//! Setup intents: save a card for later, attaching it to the customer.

use serde_json::{Value, json};
use wt_sdk::{Error, Request, Response, ids};

use crate::wire::{self, Params, apply_metadata, coll, list_body, load, now};
use crate::{errors, events, expand, payment_methods};

const COLL: &str = "setup_intents";

fn save(si: &Value) -> Result<(), Error> {
    coll(COLL).put(si["id"].as_str().unwrap_or_default(), si)
}

fn status(si: &Value) -> String {
    si["status"].as_str().unwrap_or_default().to_owned()
}

fn apply_fields(si: &mut Value, p: &mut Params) -> Result<(), Error> {
    crate::payment_intents::apply_common(si, p)?;
    if let Some(usage) = p.string("usage")? {
        if !matches!(usage.as_str(), "on_session" | "off_session") {
            return Err(errors::invalid_enum(
                "usage",
                &usage,
                &["off_session", "on_session"],
            ));
        }
        si["usage"] = json!(usage);
    }
    apply_metadata(si, p.take("metadata"))
}

fn run_confirm(si: &mut Value) -> Result<(), Error> {
    let pm_id = crate::payment_intents::confirmable(si, "setup_intent", "SetupIntent")?;
    let pm = load(payment_methods::COLL_NAME, "payment_method", &pm_id)?;
    if let Some((code, decline_code, message)) = payment_methods::decline_for(&pm) {
        si["status"] = json!("requires_payment_method");
        si["last_setup_error"] = json!({
            "code": code, "decline_code": decline_code,
            "doc_url": format!("https://stripe.com/docs/error-codes/{code}"),
            "message": message, "payment_method": pm, "type": "card_error",
        });
        save(si)?;
        events::record("setup_intent.setup_failed", si)?;
        return Err(Error::payment_required(message)
            .with_code(code)
            .with_extra("decline_code", decline_code)
            .with_extra(
                "doc_url",
                format!("https://stripe.com/docs/error-codes/{code}"),
            )
            .with_extra("setup_intent", si.clone())
            .with_extra("payment_method", pm));
    }
    if let Some(customer) = si["customer"].as_str().map(str::to_owned)
        && pm["customer"].is_null()
    {
        payment_methods::attach_to(&pm_id, &customer, "payment_method")?;
    }
    si["status"] = json!("succeeded");
    si["last_setup_error"] = Value::Null;
    si["latest_attempt"] = json!(ids::new("setatt"));
    save(si)?;
    events::record("setup_intent.succeeded", si)
}

/// A new SetupIntent with Stripe's defaults, before any parameter.
fn blank(id: &str) -> Value {
    json!({
        "id": id, "object": "setup_intent", "application": null,
        "automatic_payment_methods": null, "cancellation_reason": null,
        "client_secret": format!("{id}_secret_{}", ids::random_base62(25)),
        "created": now(), "customer": null, "description": null, "flow_directions": null,
        "last_setup_error": null, "latest_attempt": null, "livemode": false, "mandate": null,
        "metadata": {}, "next_action": null, "on_behalf_of": null, "payment_method": null,
        "payment_method_configuration_details": null,
        "payment_method_options": {"card": {"mandate_options": null, "network": null,
            "request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"], "single_use_mandate": null,
        "status": "requires_payment_method", "usage": "off_session",
    })
}

/// Saves `pm_id` for `customer` as a confirmed SetupIntent (what a setup
/// mode Checkout Session does when completed).
pub(crate) fn confirm_for(customer: Option<&str>, pm_id: &str) -> Result<Value, Error> {
    let id = ids::new("seti");
    let mut si = blank(&id);
    si["customer"] = json!(customer);
    si["payment_method"] = json!(pm_id);
    si["status"] = json!("requires_confirmation");
    wire::insert_created(COLL, &id, &si, "setup_intent.created")?;
    run_confirm(&mut si)?;
    Ok(si)
}

pub fn create(req: &Request) -> Result<Response, Error> {
    let mut p = Params::of(req)?;
    let id = ids::new("seti");
    let mut si = blank(&id);
    apply_fields(&mut si, &mut p)?;
    let confirm = p.bool("confirm")?.unwrap_or(false);
    for f in [
        "return_url",
        "use_stripe_sdk",
        "payment_method_options",
        "mandate_data",
    ] {
        p.take(f);
    }
    let expand = p.finish()?;
    wire::insert_created(COLL, &id, &si, "setup_intent.created")?;
    if confirm {
        run_confirm(&mut si)?;
    }
    expand::apply(&mut si, &expand)?;
    Ok(Response::ok(&si))
}

pub fn retrieve(req: &Request) -> Result<Response, Error> {
    let mut p = Params::of(req)?;
    p.take("client_secret");
    let expand = p.finish()?;
    wire::retrieve(COLL, "setup_intent", wire::id(req), &expand)
}

pub fn update(req: &Request) -> Result<Response, Error> {
    let mut si = load(COLL, "setup_intent", wire::id(req))?;
    if matches!(status(&si).as_str(), "succeeded" | "canceled") {
        return Err(errors::unexpected_state(
            "setup_intent_unexpected_state",
            format!(
                "This SetupIntent's status is {}, so it cannot be updated.",
                status(&si)
            ),
        ));
    }
    let mut p = Params::of(req)?;
    apply_fields(&mut si, &mut p)?;
    let expand = p.finish()?;
    save(&si)?;
    expand::apply(&mut si, &expand)?;
    Ok(Response::ok(&si))
}

pub fn confirm(req: &Request) -> Result<Response, Error> {
    let mut si = load(COLL, "setup_intent", wire::id(req))?;
    let mut p = Params::of(req)?;
    crate::payment_intents::take_confirm_params(&mut si, &mut p, &[])?;
    let expand = p.finish()?;
    run_confirm(&mut si)?;
    expand::apply(&mut si, &expand)?;
    Ok(Response::ok(&si))
}

pub fn cancel(req: &Request) -> Result<Response, Error> {
    let mut si = load(COLL, "setup_intent", wire::id(req))?;
    let mut p = Params::of(req)?;
    let reason = p.string("cancellation_reason")?;
    let expand = p.finish()?;
    let st = status(&si);
    if matches!(st.as_str(), "succeeded" | "canceled" | "processing") {
        return Err(errors::unexpected_state(
            "setup_intent_unexpected_state",
            format!(
                "You cannot cancel this SetupIntent because it has a status of {st}. Only a \
                 SetupIntent with one of the following statuses may be canceled: \
                 requires_payment_method, requires_confirmation, requires_action."
            ),
        ));
    }
    si["status"] = json!("canceled");
    si["cancellation_reason"] = reason.map_or(Value::Null, Value::String);
    save(&si)?;
    events::record("setup_intent.canceled", &si)?;
    expand::apply(&mut si, &expand)?;
    Ok(Response::ok(&si))
}

pub fn list(req: &Request) -> Result<Response, Error> {
    let mut p = Params::of(req)?;
    let page = p.page(req)?;
    let customer = p.string("customer")?;
    let pm = p.string("payment_method")?;
    let created = p.created()?;
    let expand = p.finish()?;
    let found = coll(COLL).list_where(&page, true, |si| {
        created.matches(si)
            && customer.as_ref().is_none_or(|c| si["customer"] == json!(c))
            && pm.as_ref().is_none_or(|x| si["payment_method"] == json!(x))
    })?;
    Ok(Response::ok(&list_body(
        "/v1/setup_intents",
        found,
        &expand,
    )?))
}

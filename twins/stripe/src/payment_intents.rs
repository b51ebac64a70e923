//! Payment intents and their status machine.

use serde_json::{Value, json};
use wt_sdk::{Error, Request, Response, ids};

use crate::wire::{self, Params, apply_metadata, coll, list_body, load, now, set_opt};
use crate::{charges, customers, errors, events, expand, payment_methods};

const COLL: &str = "payment_intents";

fn save(pi: &Value) -> Result<(), Error> {
    coll(COLL).put(pi["id"].as_str().unwrap_or_default(), pi)
}

fn status(pi: &Value) -> &str {
    pi["status"].as_str().unwrap_or_default()
}

/// Sets the fields create and update share.
fn apply_fields(pi: &mut Value, p: &mut Params) -> Result<(), Error> {
    if let Some(amount) = p.int("amount")? {
        if amount < 1 {
            return Err(errors::invalid(
                "amount",
                "This value must be greater than or equal to 1.",
            ));
        }
        pi["amount"] = json!(amount);
    }
    if let Some(currency) = p.string("currency")? {
        pi["currency"] = json!(currency.to_lowercase());
    }
    apply_common(pi, p)?;
    if let Some(method) = p.string("capture_method")? {
        if !matches!(method.as_str(), "automatic" | "automatic_async" | "manual") {
            return Err(errors::invalid_enum(
                "capture_method",
                &method,
                &["automatic", "automatic_async", "manual"],
            ));
        }
        pi["capture_method"] = json!(method);
    }
    for f in [
        "receipt_email",
        "statement_descriptor",
        "statement_descriptor_suffix",
        "setup_future_usage",
        "transfer_group",
    ] {
        let v = p.opt_string(f)?;
        set_opt(pi, f, v);
    }
    if let Some(shipping) = p.take("shipping") {
        pi["shipping"] = if shipping == json!("") {
            Value::Null
        } else {
            shipping
        };
    }
    apply_metadata(pi, p.take("metadata"))
}

/// The parameters payment and setup intents share on create and update:
/// `customer`, `payment_method` (a magic test id materializes; giving one
/// moves `requires_payment_method` on to `requires_confirmation`),
/// `payment_method_types`, `automatic_payment_methods`, `description`.
pub(crate) fn apply_common(intent: &mut Value, p: &mut Params) -> Result<(), Error> {
    if let Some(customer) = p.opt_string("customer")? {
        if let Some(c) = &customer {
            customers::load_ref(c, "customer")?;
        }
        set_opt(intent, "customer", Some(customer));
    }
    if let Some(pm) = p.string("payment_method")? {
        let pm = payment_methods::resolve(&pm, "payment_method")?;
        intent["payment_method"] = pm["id"].clone();
        if intent["status"] == json!("requires_payment_method") {
            intent["status"] = json!("requires_confirmation");
        }
    }
    if let Some(types) = p.strings("payment_method_types")? {
        intent["payment_method_types"] = json!(types);
    }
    if let Some(mut apm) = p.hash("automatic_payment_methods")? {
        let enabled = apm.bool("enabled")?.unwrap_or(false);
        let redirects = apm
            .string("allow_redirects")?
            .unwrap_or_else(|| "always".into());
        apm.finish_in("automatic_payment_methods")?;
        intent["automatic_payment_methods"] =
            json!({"allow_redirects": redirects, "enabled": enabled});
    }
    let description = p.opt_string("description")?;
    set_opt(intent, "description", description);
    Ok(())
}

/// Takes what a confirmation may carry for either kind of intent: a new
/// `payment_method`, and the client-side parameters that change nothing in
/// a twin (`extra` names the ones only this kind accepts).
pub(crate) fn take_confirm_params(
    intent: &mut Value,
    p: &mut Params,
    extra: &[&str],
) -> Result<(), Error> {
    if let Some(pm) = p.string("payment_method")? {
        let pm = payment_methods::resolve(&pm, "payment_method")?;
        intent["payment_method"] = pm["id"].clone();
    }
    for f in [
        "return_url",
        "use_stripe_sdk",
        "payment_method_options",
        "mandate_data",
        "client_secret",
    ]
    .iter()
    .chain(extra)
    {
        p.take(f);
    }
    Ok(())
}

/// Stripe's minimum charge amounts, in the currency's smallest unit.
fn check_minimum(pi: &Value) -> Result<(), Error> {
    let currency = pi["currency"].as_str().unwrap_or_default();
    let minimum = match currency {
        "usd" | "eur" | "cad" | "aud" | "chf" | "nzd" | "sgd" => 50,
        "gbp" => 30,
        "jpy" => 50,
        _ => 1,
    };
    let amount = pi["amount"].as_i64().unwrap_or(0);
    if amount < minimum {
        let shown = if currency == "jpy" {
            format!("¥{minimum}")
        } else {
            let symbol = match currency {
                "usd" | "cad" | "aud" | "nzd" | "sgd" => "$",
                "eur" => "€",
                "gbp" => "£",
                _ => "",
            };
            format!("{symbol}{}.{:02}", minimum / 100, minimum % 100)
        };
        return Err(
            Error::bad_request(format!("Amount must be at least {shown} {currency}"))
                .with_code("amount_too_small")
                .with_param("amount"),
        );
    }
    Ok(())
}

/// A new PaymentIntent with Stripe's defaults, before any parameter.
fn blank(id: &str) -> Value {
    json!({
        "id": id, "object": "payment_intent", "amount": 0, "amount_capturable": 0,
        "amount_details": {"tip": {}}, "amount_received": 0, "application": null,
        "application_fee_amount": null, "automatic_payment_methods": null,
        "canceled_at": null, "cancellation_reason": null, "capture_method": "automatic_async",
        "client_secret": format!("{id}_secret_{}", ids::random_base62(25)),
        "confirmation_method": "automatic", "created": now(), "currency": "usd",
        "customer": null, "description": null, "last_payment_error": null,
        "latest_charge": null, "livemode": false, "metadata": {}, "next_action": null,
        "on_behalf_of": null, "payment_method": null,
        "payment_method_configuration_details": null,
        "payment_method_options": {"card": {"installments": null, "mandate_options": null,
            "network": null, "request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"], "processing": null, "receipt_email": null,
        "review": null, "setup_future_usage": null, "shipping": null, "source": null,
        "statement_descriptor": null, "statement_descriptor_suffix": null,
        "status": "requires_payment_method", "transfer_data": null, "transfer_group": null,
    })
}

/// Charges `amount` to customer `customer`'s payment method `pm_id` off
/// session, as invoices and checkout do: a confirmed PaymentIntent. A
/// decline is `Ok(Err((intent, card_error)))`, the intent kept in
/// `requires_payment_method` like any declined confirmation.
pub(crate) fn charge(
    customer: Option<&str>,
    pm_id: &str,
    amount: i64,
    currency: &str,
    description: Option<&str>,
) -> Result<Result<Value, (Value, Error)>, Error> {
    let id = ids::new("pi");
    let mut pi = blank(&id);
    pi["amount"] = json!(amount);
    pi["currency"] = json!(currency);
    pi["customer"] = json!(customer);
    pi["payment_method"] = json!(pm_id);
    pi["description"] = json!(description);
    pi["status"] = json!("requires_confirmation");
    wire::insert_created(COLL, &id, &pi, "payment_intent.created")?;
    match run_confirm(&mut pi) {
        Ok(()) => Ok(Ok(pi)),
        Err(e) if e.status == 402 => Ok(Err((load(COLL, "payment_intent", &id)?, e))),
        Err(e) => Err(e),
    }
}

pub fn create(req: &Request) -> Result<Response, Error> {
    let mut p = Params::of(req)?;
    if !p.has("amount") {
        return Err(errors::missing("amount"));
    }
    if !p.has("currency") {
        return Err(errors::missing("currency"));
    }
    let id = ids::new("pi");
    let mut pi = blank(&id);
    apply_fields(&mut pi, &mut p)?;
    check_minimum(&pi)?;
    let confirm = p.bool("confirm")?.unwrap_or(false);
    for f in [
        "return_url",
        "off_session",
        "error_on_requires_action",
        "mandate",
        "use_stripe_sdk",
        "payment_method_options",
        "confirmation_method",
    ] {
        p.take(f);
    }
    let expand = p.finish()?;
    wire::insert_created(COLL, &id, &pi, "payment_intent.created")?;
    if confirm {
        run_confirm(&mut pi)?;
    }
    expand::apply(&mut pi, &expand)?;
    Ok(Response::ok(&pi))
}

/// The payment method an intent (`object` is `payment_intent` or
/// `setup_intent`, `noun` its name in messages) can be confirmed with, or the
/// error Stripe answers when it cannot be confirmed at all.
pub(crate) fn confirmable(intent: &Value, object: &str, noun: &str) -> Result<String, Error> {
    let st = intent["status"].as_str().unwrap_or_default();
    let refuse = |message: String| {
        errors::unexpected_state(&format!("{object}_unexpected_state"), message)
            .with_extra(object, intent.clone())
    };
    if !matches!(
        st,
        "requires_payment_method" | "requires_confirmation" | "requires_action"
    ) {
        return Err(refuse(format!(
            "You cannot confirm this {noun} because it has a status of {st}. Only a {noun} with \
             one of the following statuses may be confirmed: requires_confirmation, \
             requires_payment_method, requires_action."
        )));
    }
    intent["payment_method"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| {
            refuse(format!(
                "You cannot confirm this {noun} because it's missing a payment method. To \
                 confirm the {noun} with a payment method, pass `payment_method`."
            ))
        })
}

/// Confirms: charges the payment method. A decline leaves the intent in
/// `requires_payment_method` (saved) and answers 402.
fn run_confirm(pi: &mut Value) -> Result<(), Error> {
    let pm_id = confirmable(pi, "payment_intent", "PaymentIntent")?;
    let pm = load(crate::payment_methods::COLL_NAME, "payment_method", &pm_id)?;
    let decline = payment_methods::decline_for(&pm);
    let manual = pi["capture_method"] == json!("manual");
    let charge = charges::create_for(pi, &pm, decline, manual)?;
    pi["latest_charge"] = charge["id"].clone();
    let amount = pi["amount"].clone();
    match decline {
        Some((code, decline_code, message)) => {
            pi["status"] = json!("requires_payment_method");
            pi["last_payment_error"] = json!({
                "charge": charge["id"], "code": code, "decline_code": decline_code,
                "doc_url": format!("https://stripe.com/docs/error-codes/{code}"),
                "message": message, "payment_method": pm, "type": "card_error",
            });
            save(pi)?;
            events::record("payment_intent.payment_failed", pi)?;
            let mut err = Error::payment_required(message)
                .with_code(code)
                .with_extra("decline_code", decline_code)
                .with_extra("charge", charge["id"].clone())
                .with_extra(
                    "doc_url",
                    format!("https://stripe.com/docs/error-codes/{code}"),
                )
                .with_extra("payment_intent", pi.clone())
                .with_extra("payment_method", pm);
            err.kind = "card_error".into();
            Err(err)
        }
        None => {
            pi["last_payment_error"] = Value::Null;
            if manual {
                pi["status"] = json!("requires_capture");
                pi["amount_capturable"] = amount;
                save(pi)?;
                events::record("payment_intent.amount_capturable_updated", pi)?;
            } else {
                pi["status"] = json!("succeeded");
                pi["amount_received"] = amount;
                save(pi)?;
                events::record("payment_intent.succeeded", pi)?;
            }
            Ok(())
        }
    }
}

pub fn retrieve(req: &Request) -> Result<Response, Error> {
    let mut p = Params::of(req)?;
    p.take("client_secret");
    let expand = p.finish()?;
    wire::retrieve(COLL, "payment_intent", wire::id(req), &expand)
}

pub fn update(req: &Request) -> Result<Response, Error> {
    let id = wire::id(req);
    let mut pi = load(COLL, "payment_intent", id)?;
    let before = pi.clone();
    if matches!(status(&pi), "succeeded" | "canceled") {
        return Err(errors::unexpected_state(
            "payment_intent_unexpected_state",
            format!(
                "This PaymentIntent's status is {}, so it cannot be updated.",
                status(&pi)
            ),
        ));
    }
    let mut p = Params::of(req)?;
    apply_fields(&mut pi, &mut p)?;
    check_minimum(&pi)?;
    let expand = p.finish()?;
    save(&pi)?;
    events::record_with(
        "payment_intent.updated",
        &pi,
        Some(customers::previous(&before, &pi)),
    )?;
    expand::apply(&mut pi, &expand)?;
    Ok(Response::ok(&pi))
}

pub fn confirm(req: &Request) -> Result<Response, Error> {
    let id = wire::id(req);
    let mut pi = load(COLL, "payment_intent", id)?;
    let mut p = Params::of(req)?;
    if let Some(method) = p.string("capture_method")? {
        pi["capture_method"] = json!(method);
    }
    apply_metadata(&mut pi, p.take("metadata"))?;
    take_confirm_params(
        &mut pi,
        &mut p,
        &[
            "off_session",
            "error_on_requires_action",
            "mandate",
            "receipt_email",
            "setup_future_usage",
            "shipping",
        ],
    )?;
    let expand = p.finish()?;
    run_confirm(&mut pi)?;
    expand::apply(&mut pi, &expand)?;
    Ok(Response::ok(&pi))
}

pub fn capture(req: &Request) -> Result<Response, Error> {
    let id = wire::id(req);
    let mut pi = load(COLL, "payment_intent", id)?;
    let mut p = Params::of(req)?;
    let capturable = pi["amount_capturable"].as_i64().unwrap_or(0);
    let amount = p.int("amount_to_capture")?.unwrap_or(capturable);
    apply_metadata(&mut pi, p.take("metadata"))?;
    p.take("final_capture");
    p.take("statement_descriptor");
    let expand = p.finish()?;
    if status(&pi) != "requires_capture" {
        return Err(errors::unexpected_state(
            "payment_intent_unexpected_state",
            format!(
                "This PaymentIntent could not be captured because it has a status of {}. Only a \
                 PaymentIntent with one of the following statuses may be captured: requires_capture.",
                status(&pi)
            ),
        ));
    }
    if amount < 1 || amount > capturable {
        return Err(errors::invalid(
            "amount_to_capture",
            &format!("The amount to capture ({amount}) must be between 1 and the capturable amount ({capturable})."),
        )
        .with_code("amount_too_large"));
    }
    charges::capture(pi["latest_charge"].as_str().unwrap_or_default(), amount)?;
    pi["status"] = json!("succeeded");
    pi["amount_capturable"] = json!(0);
    pi["amount_received"] = json!(amount);
    save(&pi)?;
    events::record("payment_intent.succeeded", &pi)?;
    expand::apply(&mut pi, &expand)?;
    Ok(Response::ok(&pi))
}

pub fn cancel(req: &Request) -> Result<Response, Error> {
    let id = wire::id(req);
    let mut pi = load(COLL, "payment_intent", id)?;
    let mut p = Params::of(req)?;
    let reason = p.string("cancellation_reason")?;
    let expand = p.finish()?;
    let st = status(&pi).to_owned();
    if !matches!(
        st.as_str(),
        "requires_payment_method"
            | "requires_capture"
            | "requires_confirmation"
            | "requires_action"
            | "processing"
    ) {
        return Err(errors::unexpected_state(
            "payment_intent_unexpected_state",
            format!(
                "You cannot cancel this PaymentIntent because it has a status of {st}. Only a \
                 PaymentIntent with one of the following statuses may be canceled: \
                 requires_payment_method, requires_capture, requires_confirmation, requires_action, processing."
            ),
        ));
    }
    if st == "requires_capture" {
        charges::release(pi["latest_charge"].as_str().unwrap_or_default())?;
    }
    pi["status"] = json!("canceled");
    pi["canceled_at"] = json!(now());
    pi["cancellation_reason"] = reason.map_or(Value::Null, Value::String);
    pi["amount_capturable"] = json!(0);
    save(&pi)?;
    events::record("payment_intent.canceled", &pi)?;
    expand::apply(&mut pi, &expand)?;
    Ok(Response::ok(&pi))
}

pub fn list(req: &Request) -> Result<Response, Error> {
    let mut p = Params::of(req)?;
    let page = p.page(req)?;
    let customer = p.string("customer")?;
    let created = p.created()?;
    let expand = p.finish()?;
    let found = coll(COLL).list_where(&page, true, |pi| {
        created.matches(pi) && customer.as_ref().is_none_or(|c| pi["customer"] == json!(c))
    })?;
    Ok(Response::ok(&list_body(
        "/v1/payment_intents",
        found,
        &expand,
    )?))
}

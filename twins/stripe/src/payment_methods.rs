//! Payment methods: test cards by magic id or token, attach and detach.

use serde_json::{Value, json};
use wt_sdk::{Error, Request, Response, ids};

use crate::wire::{self, Params, apply_metadata, coll, list_body, load, now};
use crate::{customers, errors, events, expand};

const COLL: &str = "payment_methods";
/// The collection payment methods live in.
pub const COLL_NAME: &str = COLL;

/// A test card: brand, last4, and how a charge on it ends.
pub struct TestCard {
    pub brand: &'static str,
    pub last4: &'static str,
    /// `(code, decline_code, message)` when charges are declined.
    pub decline: Option<(&'static str, &'static str, &'static str)>,
}

const GENERIC: (&str, &str, &str) = (
    "card_declined",
    "generic_decline",
    "Your card was declined.",
);

/// The test card a magic `pm_card_…` id or `tok_…` token stands for.
pub fn magic(id: &str) -> Option<TestCard> {
    let card = |brand, last4, decline| {
        Some(TestCard {
            brand,
            last4,
            decline,
        })
    };
    match id {
        "pm_card_visa" | "tok_visa" => card("visa", "4242", None),
        "pm_card_mastercard" | "tok_mastercard" => card("mastercard", "4444", None),
        "pm_card_amex" | "tok_amex" => card("amex", "8431", None),
        "pm_card_visa_chargeDeclined" | "tok_chargeDeclined" => card("visa", "0002", Some(GENERIC)),
        "pm_card_chargeDeclinedInsufficientFunds" | "tok_chargeDeclinedInsufficientFunds" => card(
            "visa",
            "9995",
            Some((
                "card_declined",
                "insufficient_funds",
                "Your card has insufficient funds.",
            )),
        ),
        "pm_card_chargeDeclinedExpiredCard" | "tok_chargeDeclinedExpiredCard" => card(
            "visa",
            "0069",
            Some(("expired_card", "expired_card", "Your card has expired.")),
        ),
        "pm_card_chargeDeclinedIncorrectCvc" | "tok_chargeDeclinedIncorrectCvc" => card(
            "visa",
            "0127",
            Some((
                "incorrect_cvc",
                "incorrect_cvc",
                "Your card's security code is incorrect.",
            )),
        ),
        _ => None,
    }
}

/// How a charge on the stored payment method `pm` ends (by its card).
pub fn decline_for(pm: &Value) -> Option<(&'static str, &'static str, &'static str)> {
    match pm["card"]["last4"].as_str()? {
        "0002" => Some(GENERIC),
        "9995" => magic("pm_card_chargeDeclinedInsufficientFunds")?.decline,
        "0069" => magic("pm_card_chargeDeclinedExpiredCard")?.decline,
        "0127" => magic("pm_card_chargeDeclinedIncorrectCvc")?.decline,
        _ => None,
    }
}

fn brand_of(number: &str) -> &'static str {
    match number.as_bytes().first() {
        Some(b'4') => "visa",
        Some(b'5') | Some(b'2') => "mastercard",
        Some(b'3') => "amex",
        Some(b'6') => "discover",
        _ => "unknown",
    }
}

fn new_card(brand: &str, last4: &str, exp_month: i64, exp_year: i64) -> Result<Value, Error> {
    let id = ids::new("pm");
    let pm = json!({
        "id": id, "object": "payment_method", "allow_redisplay": "unspecified",
        "billing_details": {"address": {"city": null, "country": null, "line1": null,
            "line2": null, "postal_code": null, "state": null},
            "email": null, "name": null, "phone": null, "tax_id": null},
        "card": {"brand": brand, "checks": {"address_line1_check": null,
            "address_postal_code_check": null, "cvc_check": "pass"}, "country": "US",
            "display_brand": brand, "exp_month": exp_month, "exp_year": exp_year,
            "fingerprint": format!("fp{last4}{brand}"), "funding": "credit",
            "generated_from": null, "last4": last4,
            "networks": {"available": [brand], "preferred": null},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": true}, "wallet": null},
        "created": now(), "customer": null, "livemode": false, "metadata": {}, "type": "card",
    });
    wire::insert_created(COLL, &id, &pm, "payment_method.created")?;
    Ok(pm)
}

fn default_exp_year() -> i64 {
    1970 + (now() / 31_557_600) as i64 + 3
}

/// The payment method `id` names, materializing a magic id or token into a
/// fresh `pm_…`; a missing one is a 400 naming `param`.
pub fn resolve(id: &str, param: &str) -> Result<Value, Error> {
    if let Some(card) = magic(id) {
        return new_card(card.brand, card.last4, 12, default_exp_year());
    }
    wire::load_ref(COLL, "payment_method", id, param)
}

pub fn create(req: &Request) -> Result<Response, Error> {
    let mut p = Params::of(req)?;
    let kind = p.string("type")?.unwrap_or_else(|| "card".into());
    if kind != "card" {
        return Err(errors::invalid_enum("type", &kind, &["card"]));
    }
    let mut card = p.hash("card")?.ok_or_else(|| errors::missing("card"))?;
    let billing = p.take("billing_details");
    let metadata = p.take("metadata");
    let expand = p.finish()?;
    let mut pm = if let Some(token) = card.string("token")? {
        let tc = magic(&token).ok_or_else(|| {
            let mut e = Error::resource_missing("token", &token).with_param("card[token]");
            e.status = 400;
            e
        })?;
        card.finish_in("card")?;
        new_card(tc.brand, tc.last4, 12, default_exp_year())?
    } else {
        let number = card
            .string("number")?
            .ok_or_else(|| errors::missing("card[number]"))?;
        let month = card
            .int("exp_month")?
            .ok_or_else(|| errors::missing("card[exp_month]"))?;
        let year = card
            .int("exp_year")?
            .ok_or_else(|| errors::missing("card[exp_year]"))?;
        card.take("cvc");
        card.finish_in("card")?;
        let digits: String = number.chars().filter(char::is_ascii_digit).collect();
        if digits.len() < 12 {
            return Err(Error::payment_required("Your card number is incorrect.")
                .with_code("incorrect_number")
                .with_param("card[number]"));
        }
        new_card(brand_of(&digits), &digits[digits.len() - 4..], month, year)?
    };
    if let Some(Value::Object(b)) = billing {
        for (k, v) in b {
            pm["billing_details"][k] = v;
        }
    }
    apply_metadata(&mut pm, metadata)?;
    let id = pm["id"].as_str().unwrap_or_default().to_owned();
    coll(COLL).put(&id, &pm)?;
    expand::apply(&mut pm, &expand)?;
    Ok(Response::ok(&pm))
}

pub fn retrieve(req: &Request) -> Result<Response, Error> {
    let expand = Params::of(req)?.finish()?;
    wire::retrieve(COLL, "payment_method", wire::id(req), &expand)
}

pub fn update(req: &Request) -> Result<Response, Error> {
    let id = wire::id(req);
    let mut pm = load(COLL, "payment_method", id)?;
    let mut p = Params::of(req)?;
    apply_metadata(&mut pm, p.take("metadata"))?;
    if let Some(Value::Object(b)) = p.take("billing_details") {
        for (k, v) in b {
            pm["billing_details"][k] = v;
        }
    }
    let expand = p.finish()?;
    coll(COLL).put(id, &pm)?;
    events::record("payment_method.updated", &pm)?;
    expand::apply(&mut pm, &expand)?;
    Ok(Response::ok(&pm))
}

/// Attaches payment method `pm_id` (or a magic one) to `customer`.
pub fn attach_to(pm_id: &str, customer: &str, param: &str) -> Result<Value, Error> {
    customers::load_ref(customer, "customer")?;
    let mut pm = resolve(pm_id, param)?;
    match pm["customer"].as_str() {
        Some(c) if c != customer => {
            return Err(Error::bad_request(
                "The payment method you provided has already been attached to a customer.",
            )
            .with_code("payment_method_unexpected_state"));
        }
        _ => {}
    }
    pm["customer"] = json!(customer);
    let id = pm["id"].as_str().unwrap_or_default().to_owned();
    coll(COLL).put(&id, &pm)?;
    events::record("payment_method.attached", &pm)?;
    Ok(pm)
}

pub fn attach(req: &Request) -> Result<Response, Error> {
    let mut p = Params::of(req)?;
    let customer = p.required_string("customer")?;
    let expand = p.finish()?;
    let id = wire::id(req);
    if magic(id).is_none() {
        load(COLL, "payment_method", id)?;
    }
    let mut pm = attach_to(id, &customer, "payment_method")?;
    expand::apply(&mut pm, &expand)?;
    Ok(Response::ok(&pm))
}

pub fn detach(req: &Request) -> Result<Response, Error> {
    let expand = Params::of(req)?.finish()?;
    let id = wire::id(req);
    let mut pm = load(COLL, "payment_method", id)?;
    if pm["customer"].is_null() {
        return Err(Error::bad_request(
            "The payment method you provided is not attached to a customer so detachment is impossible.",
        )
        .with_code("payment_method_unexpected_state"));
    }
    pm["customer"] = Value::Null;
    coll(COLL).put(id, &pm)?;
    events::record("payment_method.detached", &pm)?;
    expand::apply(&mut pm, &expand)?;
    Ok(Response::ok(&pm))
}

fn list_filtered(req: &Request, customer: Option<String>, url: &str) -> Result<Response, Error> {
    let mut p = Params::of(req)?;
    let page = p.page(req)?;
    let customer = match customer {
        Some(c) => Some(c),
        None => p.string("customer")?,
    };
    let kind = p.string("type")?;
    p.take("allow_redisplay");
    let expand = p.finish()?;
    if let Some(c) = &customer {
        customers::load_live(c)?;
    }
    let found = coll(COLL).list_where(&page, true, |pm| {
        customer.as_ref().is_none_or(|c| pm["customer"] == json!(c))
            && kind.as_ref().is_none_or(|t| pm["type"] == json!(t))
    })?;
    Ok(Response::ok(&list_body(url, found, &expand)?))
}

pub fn list(req: &Request) -> Result<Response, Error> {
    list_filtered(req, None, "/v1/payment_methods")
}

pub fn list_for_customer(req: &Request) -> Result<Response, Error> {
    let id = wire::id(req).to_owned();
    let url = format!("/v1/customers/{id}/payment_methods");
    list_filtered(req, Some(id), &url)
}

//! Checkout Sessions: a hosted payment page for `payment`, `subscription`
//! or `setup`. No browser visits a twin's page in a test, so the twin adds
//! a test helper, `POST /v1/test_helpers/checkout/sessions/{id}/complete`,
//! that does what paying on the page does: creates the PaymentIntent,
//! Subscription or SetupIntent, completes the session and records
//! `checkout.session.completed`. The session's `url` serves a small page on
//! the twin whose button does the same.

use serde_json::{Value, json};
use wt_sdk::{Error, Request, Response, ids};

use crate::wire::{self, Params, apply_metadata, coll, list_body, load, now};
use crate::{
    customers, errors, events, expand, payment_intents, payment_methods, prices, setup_intents,
    subscriptions,
};

const COLL: &str = "checkout_sessions";
/// Each session's line items, kept apart: the session shows them only
/// when `line_items` is expanded.
const LINES: &str = "checkout_line_items";
/// Sessions expire after 24 hours unless `expires_at` says sooner.
const DEFAULT_LIFETIME: u64 = 24 * 3600;

fn save(cs: &Value) -> Result<(), Error> {
    coll(COLL).put(cs["id"].as_str().unwrap_or_default(), cs)
}

/// Reads `line_items[]`: each a `price` or `price_data`, and a `quantity`.
fn line_items(p: &mut Params) -> Result<Vec<Value>, Error> {
    let list = match p.take("line_items") {
        None => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(Value::Object(map)) => map.into_iter().map(|(_, v)| v).collect(),
        Some(_) => return Err(errors::invalid("line_items", "Invalid array")),
    };
    let mut out = Vec::new();
    for (i, v) in list.into_iter().enumerate() {
        let name = format!("line_items[{i}]");
        let mut h = Params::of_map(v).map_err(|_| errors::invalid(&name, "Invalid hash"))?;
        let price = match (h.string("price")?, h.hash("price_data")?) {
            (Some(id), None) => wire::load_ref("prices", "price", &id, &format!("{name}[price]"))?,
            (None, Some(data)) => prices::inline(data, &format!("{name}[price_data]"), true)?,
            (None, None) => return Err(errors::missing(&format!("{name}[price]"))),
            (Some(_), Some(_)) => {
                return Err(Error::bad_request(format!(
                    "You may only specify one of these parameters: {name}[price], \
                     {name}[price_data]."
                )));
            }
        };
        let quantity = h.int("quantity")?.unwrap_or(1);
        if quantity < 1 {
            return Err(errors::invalid(
                &format!("{name}[quantity]"),
                "This value must be greater than or equal to 1.",
            ));
        }
        for f in [
            "adjustable_quantity",
            "tax_rates",
            "dynamic_tax_rates",
            "metadata",
        ] {
            h.take(f);
        }
        h.finish_in(&name)?;
        let unit = price["unit_amount"].as_i64().unwrap_or(0);
        let product = price["product"].as_str().unwrap_or_default();
        let description = coll("products")
            .get(product)?
            .and_then(|p| p["name"].as_str().map(str::to_owned));
        out.push(json!({
            "id": ids::new("li"), "object": "item", "adjustable_quantity": null,
            "amount_discount": 0, "amount_subtotal": unit * quantity, "amount_tax": 0,
            "amount_total": unit * quantity, "currency": price["currency"],
            "description": description, "metadata": {}, "price": price, "quantity": quantity,
        }));
    }
    Ok(out)
}

/// What a create request asks for, read and checked (everything but the
/// ignored parameters and `expand`).
struct NewSession {
    mode: String,
    lines: Vec<Value>,
    customer: Option<String>,
    customer_email: Option<String>,
    /// The customer `customer` names, for `customer_details`.
    customer_obj: Option<Value>,
    /// `customer_creation`.
    creation: Option<String>,
    success_url: Option<String>,
    cancel_url: Option<String>,
    /// `client_reference_id`.
    reference: Option<String>,
    created: u64,
    expires_at: u64,
    currency: Value,
    /// What `subscription_data` asks of the subscription the session starts.
    sub_data: Value,
    /// `payment_method_types`.
    types: Option<Vec<String>>,
    metadata: Option<Value>,
}

/// Parameters the twin accepts on create but does not act on.
const IGNORED: [&str; 22] = [
    "payment_intent_data",
    "setup_intent_data",
    "allow_promotion_codes",
    "billing_address_collection",
    "locale",
    "ui_mode",
    "submit_type",
    "phone_number_collection",
    "automatic_tax",
    "tax_id_collection",
    "shipping_address_collection",
    "consent_collection",
    "custom_text",
    "custom_fields",
    "invoice_creation",
    "payment_method_options",
    "payment_method_collection",
    "saved_payment_method_options",
    "return_url",
    "discounts",
    "adaptive_pricing",
    "currency",
];

/// `POST /v1/checkout/sessions`: reads and checks the request, then
/// stores the open session and its line items and publishes its page.
pub fn create(req: &Request) -> Result<Response, Error> {
    let mut p = Params::of(req)?;
    let new = read_session(&mut p)?;
    for f in IGNORED {
        p.take(f);
    }
    let expand = p.finish()?;
    let id = format!("cs_test_{}", ids::random_base62(58));
    let mut cs = session_object(&id, &new);
    apply_metadata(&mut cs, new.metadata)?;
    coll(COLL).insert(&id, &cs)?;
    coll(LINES).insert(
        &id,
        &json!({ "data": new.lines, "subscription_data": new.sub_data }),
    )?;
    wire::publish_page(&id)?;
    expand::apply(&mut cs, &expand)?;
    Ok(Response::ok(&cs))
}

/// Reads a create request's parameters one after another: the order is
/// part of the behaviour (it decides which error a request with several
/// faults gets), so keep it when adding one.
fn read_session(p: &mut Params) -> Result<NewSession, Error> {
    let mode = read_mode(p)?;
    let lines = line_items(p)?;
    check_lines(&mode, &lines)?;
    let Buyer {
        customer,
        customer_email,
        customer_obj,
    } = read_customer(p)?;
    let creation = customer_creation(p, &mode)?;
    let success_url = p.string("success_url")?;
    let cancel_url = p.string("cancel_url")?;
    let reference = p.string("client_reference_id")?;
    let created = now();
    let expires_at = expires_at(p, created)?;
    // `currency` is read (and so consumed) even when the line items decide.
    let currency = lines
        .first()
        .map(|l| l["currency"].clone())
        .or(p.string("currency")?.map(|c| json!(c.to_lowercase())))
        .unwrap_or(Value::Null);
    let sub_data = subscription_data(p, &mode)?;
    let types = p.strings("payment_method_types")?;
    let metadata = p.take("metadata");
    Ok(NewSession {
        mode,
        lines,
        customer,
        customer_email,
        customer_obj,
        creation,
        success_url,
        cancel_url,
        reference,
        created,
        expires_at,
        currency,
        sub_data,
        types,
        metadata,
    })
}

/// `mode`: required, one of `payment`, `subscription`, `setup`.
fn read_mode(p: &mut Params) -> Result<String, Error> {
    let mode = p.required_string("mode")?;
    if !matches!(mode.as_str(), "payment" | "subscription" | "setup") {
        return Err(errors::invalid_enum(
            "mode",
            &mode,
            &["payment", "setup", "subscription"],
        ));
    }
    Ok(mode)
}

/// The line items must suit the mode (payments take one-time prices,
/// subscriptions at least one recurring one, setup none) and share one
/// currency.
fn check_lines(mode: &str, lines: &[Value]) -> Result<(), Error> {
    let recurring = lines
        .iter()
        .filter(|l| l["price"]["type"] == json!("recurring"))
        .count();
    match mode {
        "payment" | "subscription" if lines.is_empty() => {
            return Err(errors::missing("line_items"));
        }
        "payment" if recurring > 0 => {
            return Err(errors::invalid(
                "line_items",
                "You must be in `subscription` mode to use recurring prices.",
            ));
        }
        "subscription" if recurring == 0 => {
            return Err(errors::invalid(
                "line_items",
                "You must provide at least one recurring price in `subscription` mode when \
                 using prices.",
            ));
        }
        "setup" if !lines.is_empty() => {
            return Err(errors::invalid(
                "line_items",
                "You cannot pass `line_items` in `setup` mode.",
            ));
        }
        _ => {}
    }
    if let Some(first) = lines.first()
        && lines.iter().any(|l| l["currency"] != first["currency"])
    {
        return Err(errors::invalid(
            "line_items",
            "All line items must use the same currency.",
        ));
    }
    Ok(())
}

/// Who a new session is for, as the request says.
struct Buyer {
    customer: Option<String>,
    customer_email: Option<String>,
    /// The customer `customer` names.
    customer_obj: Option<Value>,
}

/// `customer` or `customer_email` (not both), with the customer named
/// loaded.
fn read_customer(p: &mut Params) -> Result<Buyer, Error> {
    let customer = p.string("customer")?;
    let customer_email = p.string("customer_email")?;
    if customer.is_some() && customer_email.is_some() {
        return Err(Error::bad_request(
            "You may only specify one of these parameters: customer, customer_email.",
        ));
    }
    let customer_obj = match &customer {
        Some(c) => Some(customers::load_ref(c, "customer")?),
        None => None,
    };
    Ok(Buyer {
        customer,
        customer_email,
        customer_obj,
    })
}

/// `customer_creation`: `always` or `if_required`, and not in
/// `subscription` mode (a subscription always needs a customer).
fn customer_creation(p: &mut Params, mode: &str) -> Result<Option<String>, Error> {
    let creation = p.string("customer_creation")?;
    if let Some(c) = &creation {
        if !matches!(c.as_str(), "always" | "if_required") {
            return Err(errors::invalid_enum(
                "customer_creation",
                c,
                &["always", "if_required"],
            ));
        }
        if mode == "subscription" {
            return Err(errors::invalid(
                "customer_creation",
                "`customer_creation` can only be used in `payment` and `setup` mode.",
            ));
        }
    }
    Ok(creation)
}

/// `expires_at`: between 30 minutes and 24 hours after `t`; 24 hours
/// unless given.
fn expires_at(p: &mut Params, t: u64) -> Result<u64, Error> {
    match p.int("expires_at")? {
        Some(at) => {
            let at = u64::try_from(at).unwrap_or(0);
            if at < t + 1800 || at > t + DEFAULT_LIFETIME {
                return Err(errors::invalid(
                    "expires_at",
                    "The `expires_at` timestamp must be between 30 minutes and 24 hours from \
                     Checkout Session creation.",
                ));
            }
            Ok(at)
        }
        None => Ok(t + DEFAULT_LIFETIME),
    }
}

/// `subscription_data` (only in `subscription` mode): the parts the twin
/// passes on to the subscription the session starts; the rest is read and
/// ignored.
fn subscription_data(p: &mut Params, mode: &str) -> Result<Value, Error> {
    let mut sub_data = json!({});
    let Some(mut sd) = p.hash("subscription_data")? else {
        return Ok(sub_data);
    };
    if mode != "subscription" {
        return Err(errors::invalid(
            "subscription_data",
            "`subscription_data` can only be used in `subscription` mode.",
        ));
    }
    if let Some(days) = sd.int("trial_period_days")? {
        sub_data["trial_period_days"] = json!(days);
    }
    if let Some(end) = sd.int("trial_end")? {
        sub_data["trial_end"] = json!(end);
    }
    if let Some(d) = sd.string("description")? {
        sub_data["description"] = json!(d);
    }
    if let Some(m) = sd.take("metadata") {
        sub_data["metadata"] = m;
    }
    for f in [
        "default_tax_rates",
        "application_fee_percent",
        "on_behalf_of",
        "transfer_data",
        "trial_settings",
        "proration_behavior",
        "invoice_settings",
        "billing_mode",
        "billing_cycle_anchor",
    ] {
        sd.take(f);
    }
    sd.finish_in("subscription_data")?;
    Ok(sub_data)
}

/// The session object as Stripe shows it at creation (before metadata),
/// with its hosted page served by this twin.
fn session_object(id: &str, new: &NewSession) -> Value {
    let NewSession {
        mode,
        lines,
        customer,
        customer_email,
        customer_obj,
        creation,
        success_url,
        cancel_url,
        reference,
        created: t,
        expires_at,
        currency,
        types,
        ..
    } = new;
    let subtotal: i64 = lines
        .iter()
        .filter_map(|l| l["amount_total"].as_i64())
        .sum();
    let base_url = wire::with_context(|c| c.base_url.clone());
    json!({
        "id": id, "object": "checkout.session", "adaptive_pricing": {"enabled": false},
        "after_expiration": null, "allow_promotion_codes": null,
        "amount_subtotal": if mode == "setup" { Value::Null } else { json!(subtotal) },
        "amount_total": if mode == "setup" { Value::Null } else { json!(subtotal) },
        "automatic_tax": {"enabled": false, "liability": null, "provider": null, "status": null},
        "billing_address_collection": null, "cancel_url": cancel_url,
        "client_reference_id": reference, "client_secret": null,
        "collected_information": null, "consent": null, "consent_collection": null,
        "created": t, "currency": currency, "currency_conversion": null, "custom_fields": [],
        "custom_text": {"after_submit": null, "shipping_address": null, "submit": null,
                        "terms_of_service_acceptance": null},
        "customer": customer,
        "customer_creation": if mode == "subscription" || customer.is_some() {
            Value::Null
        } else {
            json!(creation.as_deref().unwrap_or("if_required"))
        },
        "customer_details": customer_obj.as_ref().map(|c| json!({"address": c["address"],
            "email": c["email"], "name": c["name"], "phone": c["phone"],
            "tax_exempt": "none", "tax_ids": []})),
        "customer_email": customer_email, "discounts": [], "expires_at": expires_at,
        "invoice": null, "invoice_creation": null, "livemode": false, "locale": null,
        "metadata": {}, "mode": mode, "origin_context": null, "payment_intent": null,
        "payment_link": null, "payment_method_collection": "always",
        "payment_method_configuration_details": null, "payment_method_options": {},
        "payment_method_types": types.clone().unwrap_or_else(|| vec!["card".into()]),
        "payment_status": if mode == "setup" { "no_payment_required" } else { "unpaid" },
        "permissions": null, "phone_number_collection": {"enabled": false},
        "recovered_from": null, "saved_payment_method_options": null, "setup_intent": null,
        "shipping_address_collection": null, "shipping_cost": null, "shipping_options": [],
        "status": "open", "submit_type": null, "subscription": null,
        "success_url": success_url,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted", "url": format!("{base_url}/c/pay/{id}"),
        "wallet_options": null,
    })
}

/// The session's line items (for `expand[]=line_items` and the page).
pub fn lines_of(id: &str) -> Result<Vec<Value>, Error> {
    Ok(coll(LINES)
        .get(id)?
        .and_then(|l| l["data"].as_array().cloned())
        .unwrap_or_default())
}

/// An open session past `expires_at` expires when next looked at.
fn refresh(mut cs: Value) -> Result<Value, Error> {
    let due = cs["expires_at"].as_u64().is_some_and(|at| now() >= at);
    if cs["status"] == json!("open") && due {
        cs["status"] = json!("expired");
        save(&cs)?;
        wire::automated(|| events::record("checkout.session.expired", &cs))?;
    }
    Ok(cs)
}

pub fn retrieve(req: &Request) -> Result<Response, Error> {
    let expand = Params::of(req)?.finish()?;
    let cs = load(COLL, "checkout.session", wire::id(req))?;
    let mut cs = refresh(cs)?;
    expand::apply(&mut cs, &expand)?;
    Ok(Response::ok(&cs))
}

pub fn list(req: &Request) -> Result<Response, Error> {
    let mut p = Params::of(req)?;
    let page = p.page(req)?;
    let customer = p.string("customer")?;
    let pi = p.string("payment_intent")?;
    let sub = p.string("subscription")?;
    let st = p.string("status")?;
    let created = p.created()?;
    p.take("customer_details");
    p.take("payment_link");
    let expand = p.finish()?;
    let mut found = coll(COLL).list_where(&page, true, |cs| {
        created.matches(cs)
            && customer.as_ref().is_none_or(|c| cs["customer"] == json!(c))
            && pi.as_ref().is_none_or(|x| cs["payment_intent"] == json!(x))
            && sub.as_ref().is_none_or(|x| cs["subscription"] == json!(x))
            && st.as_ref().is_none_or(|x| cs["status"] == json!(x))
    })?;
    found.items = found
        .items
        .into_iter()
        .map(refresh)
        .collect::<Result<_, _>>()?;
    Ok(Response::ok(&list_body(
        "/v1/checkout/sessions",
        found,
        &expand,
    )?))
}

pub fn list_line_items(req: &Request) -> Result<Response, Error> {
    let mut p = Params::of(req)?;
    let page = p.page(req)?;
    let expand = p.finish()?;
    let id = wire::id(req);
    load(COLL, "checkout.session", id)?;
    let found = wire::page_of(lines_of(id)?, &page)?;
    Ok(Response::ok(&list_body(
        &format!("/v1/checkout/sessions/{id}/line_items"),
        found,
        &expand,
    )?))
}

pub fn expire(req: &Request) -> Result<Response, Error> {
    let expand = Params::of(req)?.finish()?;
    let cs = load(COLL, "checkout.session", wire::id(req))?;
    let mut cs = refresh(cs)?;
    if cs["status"] != json!("open") {
        return Err(Error::bad_request(format!(
            "Only Checkout Sessions with a status of `open` can be expired. This session has a \
             status of `{}`.",
            cs["status"].as_str().unwrap_or_default()
        )));
    }
    cs["status"] = json!("expired");
    save(&cs)?;
    events::record("checkout.session.expired", &cs)?;
    expand::apply(&mut cs, &expand)?;
    Ok(Response::ok(&cs))
}

/// Completes an open session as if the customer paid with `pm` (a magic
/// test id or an existing payment method).
fn complete_with(id: &str, pm: &str) -> Result<Value, Error> {
    let mut cs = open_session(id)?;
    let pm = payment_methods::resolve(pm, "payment_method")?;
    let pm_id = pm["id"].as_str().unwrap_or_default().to_owned();
    let mode = cs["mode"].as_str().unwrap_or_default().to_owned();
    if mode != "setup" {
        refuse_declined(&pm)?;
    }
    let customer_id = session_customer(&cs, &mode)?;
    if let Some(c) = &customer_id
        && pm["customer"].is_null()
        && mode != "setup"
    {
        payment_methods::attach_to(&pm_id, c, "payment_method")?;
    }
    let currency = cs["currency"].as_str().unwrap_or("usd").to_owned();
    let lines = lines_of(id)?;
    match mode.as_str() {
        "payment" => {
            let amount = cs["amount_total"].as_i64().unwrap_or(0);
            let pi =
                payment_intents::charge(customer_id.as_deref(), &pm_id, amount, &currency, None)?
                    .map_err(|(_, e)| e)?;
            cs["payment_intent"] = pi["id"].clone();
            cs["payment_status"] = json!("paid");
        }
        "subscription" => {
            let customer = customer_id.clone().unwrap_or_default();
            start_subscription(&mut cs, id, &customer, &pm_id, &lines)?;
        }
        _ => {
            let si = setup_intents::confirm_for(customer_id.as_deref(), &pm_id)?;
            cs["setup_intent"] = si["id"].clone();
        }
    }
    mark_complete(&mut cs, customer_id)?;
    Ok(cs)
}

/// Session `id`, refreshed, which must still be open to complete.
fn open_session(id: &str) -> Result<Value, Error> {
    let cs = load(COLL, "checkout.session", id)?;
    let cs = refresh(cs)?;
    if cs["status"] != json!("open") {
        return Err(Error::bad_request(format!(
            "This Checkout Session is no longer open (status `{}`) and cannot be completed.",
            cs["status"].as_str().unwrap_or_default()
        ))
        .with_code("checkout_session_unexpected_state"));
    }
    Ok(cs)
}

/// A card that declines is refused as the page refuses it: a card error,
/// and the session stays open.
fn refuse_declined(pm: &Value) -> Result<(), Error> {
    let Some((code, decline_code, message)) = payment_methods::decline_for(pm) else {
        return Ok(());
    };
    let mut e = Error::payment_required(message)
        .with_code(code)
        .with_extra("decline_code", decline_code)
        .with_extra("payment_method", pm.clone());
    e.kind = "card_error".into();
    Err(e)
}

/// The session's customer: the one it names, else a new one when the mode
/// (`subscription`) or `customer_creation=always` needs one.
fn session_customer(cs: &Value, mode: &str) -> Result<Option<String>, Error> {
    let wants_customer = mode == "subscription" || cs["customer_creation"] == json!("always");
    Ok(match cs["customer"].as_str() {
        Some(c) => Some(c.to_owned()),
        None if wants_customer => {
            let c = customers::create_for_checkout(cs["customer_email"].as_str())?;
            Some(c["id"].as_str().unwrap_or_default().to_owned())
        }
        None => None,
    })
}

/// Starts the subscription a `subscription` session sells: its recurring
/// lines as items, its one-time lines on the first invoice, and its
/// `subscription_data`; then notes it (and whether anything was paid) on
/// the session.
fn start_subscription(
    cs: &mut Value,
    id: &str,
    customer: &str,
    pm_id: &str,
    lines: &[Value],
) -> Result<(), Error> {
    let extra = coll(LINES).get(id)?.unwrap_or(Value::Null);
    let mut params = extra["subscription_data"].clone();
    if !params.is_object() {
        params = json!({});
    }
    params["customer"] = json!(customer);
    params["default_payment_method"] = json!(pm_id);
    let (recurring, once): (Vec<&Value>, Vec<&Value>) = lines
        .iter()
        .partition(|l| l["price"]["type"] == json!("recurring"));
    params["items"] = json!(
        recurring
            .iter()
            .map(|l| json!({"price": l["price"]["id"], "quantity": l["quantity"]}))
            .collect::<Vec<_>>()
    );
    if !once.is_empty() {
        params["add_invoice_items"] = json!(
            once.iter()
                .map(|l| json!({"price": l["price"]["id"], "quantity": l["quantity"]}))
                .collect::<Vec<_>>()
        );
    }
    let sub = subscriptions::start(params)?;
    cs["subscription"] = sub["id"].clone();
    cs["invoice"] = sub["latest_invoice"].clone();
    cs["payment_status"] = json!(if sub["status"] == json!("trialing") {
        "no_payment_required"
    } else {
        "paid"
    });
    Ok(())
}

/// Fills in who paid, completes the session and records
/// `checkout.session.completed`.
fn mark_complete(cs: &mut Value, customer_id: Option<String>) -> Result<(), Error> {
    cs["customer"] = json!(customer_id);
    let email = match &customer_id {
        Some(c) => customers::load_live(c)?["email"].clone(),
        None => cs["customer_email"].clone(),
    };
    cs["customer_details"] = json!({"address": null, "email": email, "name": null,
        "phone": null, "tax_exempt": "none", "tax_ids": []});
    cs["status"] = json!("complete");
    save(cs)?;
    events::record("checkout.session.completed", cs)
}

/// `POST /v1/test_helpers/checkout/sessions/{id}/complete` (a twin
/// extension): `payment_method` defaults to `pm_card_visa`.
pub fn complete(req: &Request) -> Result<Response, Error> {
    let mut p = Params::of(req)?;
    let pm = p
        .string("payment_method")?
        .unwrap_or_else(|| "pm_card_visa".into());
    let expand = p.finish()?;
    let mut cs = complete_with(wire::id(req), &pm)?;
    expand::apply(&mut cs, &expand)?;
    Ok(Response::ok(&cs))
}

/// `GET /c/pay/{id}`: what the hosted page shows, with a button that
/// completes the session with the test card 4242.
pub fn page(req: &Request) -> Result<Response, Error> {
    let id = wire::id(req);
    let cs = refresh(load(COLL, "checkout.session", id)?)?;
    let mut rows = String::new();
    for l in lines_of(id)? {
        rows.push_str(&format!(
            "<li>{} × {} — {} {}</li>",
            l["quantity"],
            wire::escape_html(l["description"].as_str().unwrap_or("item")),
            l["amount_total"],
            wire::escape_html(l["currency"].as_str().unwrap_or_default()),
        ));
    }
    let status = cs["status"].as_str().unwrap_or_default();
    let action = if status == "open" {
        // No `action`: the form posts back to the page's own URL, so it
        // works under any route prefix.
        "<form method=\"post\"><button>Pay with test card 4242</button></form>".to_owned()
    } else {
        format!("<p>This session is {}.</p>", wire::escape_html(status))
    };
    let html = format!(
        "<!doctype html><meta charset=\"utf-8\"><title>Checkout (twin)</title>\
         <h1>Checkout</h1><p>Mode: {}</p><ul>{rows}</ul><p>Total: {} {}</p>{action}",
        wire::escape_html(cs["mode"].as_str().unwrap_or_default()),
        cs["amount_total"],
        wire::escape_html(cs["currency"].as_str().unwrap_or_default()),
    );
    Ok(Response::bytes(200, "text/html; charset=utf-8", html))
}

/// `POST /c/pay/{id}`: the page's button. Completes the session and
/// redirects to `success_url` (with `{CHECKOUT_SESSION_ID}` filled in).
pub fn page_pay(req: &Request) -> Result<Response, Error> {
    let cs = complete_with(wire::id(req), "pm_card_visa")?;
    let id = cs["id"].as_str().unwrap_or_default();
    match cs["success_url"].as_str() {
        Some(url) => {
            Ok(Response::empty(303)
                .with_header("location", url.replace("{CHECKOUT_SESSION_ID}", id)))
        }
        None => Ok(Response::bytes(
            200,
            "text/html; charset=utf-8",
            "<!doctype html><p>Payment complete.</p>",
        )),
    }
}

//! Invoices: draft → open (finalize, numbered) → paid | void |
//! uncollectible, with totals kept from their lines, and payment through a
//! PaymentIntent on the customer's default payment method so test card
//! declines behave as they do for intents. Invoice payments (`inpay_…`)
//! record each successful charge, as the current API's `payments` does.

use serde_json::{Value, json};
use wt_sdk::{Error, Request, Response, ids};

use crate::wire::{self, Params, apply_metadata, coll, list_body, load, now, set_opt};
use crate::{
    billing, customers, errors, events, expand, invoice_items, payment_intents, payment_methods,
    subscriptions,
};

/// The collection invoices live in.
pub const COLL: &str = "invoices";
/// The collection invoice payments live in.
pub const PAYMENTS: &str = "invoice_payments";

fn save(inv: &Value) -> Result<(), Error> {
    coll(COLL).put(inv["id"].as_str().unwrap_or_default(), inv)
}

fn status(inv: &Value) -> &str {
    inv["status"].as_str().unwrap_or_default()
}

/// The subscription an invoice bills, if any.
pub fn subscription_of(inv: &Value) -> Option<String> {
    inv["parent"]["subscription_details"]["subscription"]
        .as_str()
        .map(str::to_owned)
}

/// Runs `f` at the time of the invoice's clock (a test clock's frozen time).
fn on_clock<T>(inv: &Value, f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    let t = billing::time_on(&billing::clock_name(&inv["test_clock"]))?;
    wire::at_time(t, f)
}

/// `GET /i/{id}`: the hosted invoice page `hosted_invoice_url` names: the
/// number, status, lines and amounts.
pub fn page(req: &Request) -> Result<Response, Error> {
    let inv = load(COLL, "invoice", wire::id(req))?;
    let currency = inv["currency"].as_str().unwrap_or("usd").to_owned();
    let mut rows = String::new();
    for l in inv["lines"]["data"].as_array().cloned().unwrap_or_default() {
        rows.push_str(&format!(
            "<li>{} — {}</li>",
            wire::escape_html(l["description"].as_str().unwrap_or("item")),
            wire::escape_html(&money(l["amount"].as_i64().unwrap_or(0), &currency)),
        ));
    }
    let html = format!(
        "<!doctype html><meta charset=\"utf-8\"><title>Invoice {number} (twin)</title>\
         <h1>Invoice {number}</h1><p>Status: {status}</p><ul>{rows}</ul>\
         <p>Total: {total}</p><p>Amount due: {due}</p><p>Amount paid: {paid}</p>",
        number = wire::escape_html(inv["number"].as_str().unwrap_or_default()),
        status = wire::escape_html(status(&inv)),
        total = wire::escape_html(&money(inv["total"].as_i64().unwrap_or(0), &currency)),
        due = wire::escape_html(&money(
            inv["amount_remaining"].as_i64().unwrap_or(0),
            &currency
        )),
        paid = wire::escape_html(&money(inv["amount_paid"].as_i64().unwrap_or(0), &currency)),
    );
    Ok(Response::bytes(200, "text/html; charset=utf-8", html))
}

/// Money as an invoice line's description shows it.
fn money(amount: i64, currency: &str) -> String {
    let zero_decimal = matches!(currency, "jpy" | "krw" | "vnd" | "clp" | "pyg" | "ugx");
    let number = if zero_decimal {
        amount.to_string()
    } else {
        format!("{}.{:02}", amount / 100, (amount % 100).abs())
    };
    match currency {
        "usd" | "cad" | "aud" | "nzd" | "sgd" => format!("${number}"),
        "eur" => format!("€{number}"),
        "gbp" => format!("£{number}"),
        "jpy" => format!("¥{number}"),
        other => format!("{number} {}", other.to_uppercase()),
    }
}

/// A new draft for `customer`, with no lines yet.
pub fn draft(customer: &Value, subscription: Option<&Value>, reason: &str) -> Value {
    let id = ids::new("in");
    let t = now();
    let parent = match subscription {
        Some(sub) => json!({"quote_details": null, "subscription_details": {
            "metadata": sub["metadata"], "subscription": sub["id"]},
            "type": "subscription_details"}),
        None => Value::Null,
    };
    let collection = subscription
        .and_then(|s| s["collection_method"].as_str())
        .unwrap_or("charge_automatically");
    json!({
        "id": id, "object": "invoice", "account_country": "US", "account_name": "WT Twin",
        "account_tax_ids": null, "amount_due": 0, "amount_overpaid": 0, "amount_paid": 0,
        "amount_paid_off_stripe": 0,
        "amount_remaining": 0, "amount_shipping": 0, "application": null, "attempt_count": 0,
        "attempted": false, "auto_advance": subscription.is_some(),
        "automatic_tax": {"disabled_reason": null, "enabled": false, "liability": null,
                          "provider": null, "status": null},
        "automatically_finalizes_at": null, "billing_reason": reason,
        "collection_method": collection, "created": t,
        "currency": subscription.map_or(json!("usd"), |s| s["currency"].clone()),
        "custom_fields": null, "customer": customer["id"], "customer_account": null,
        "customer_address": customer["address"], "customer_email": customer["email"],
        "customer_name": customer["name"], "customer_phone": customer["phone"],
        "customer_shipping": customer["shipping"], "customer_tax_exempt": "none",
        "customer_tax_ids": [], "default_payment_method": null, "default_source": null,
        "default_tax_rates": [], "description": null, "discounts": [],
        "due_date": null, "effective_at": null, "ending_balance": null, "footer": null,
        "from_invoice": null, "hosted_invoice_url": null, "invoice_pdf": null,
        "issuer": {"type": "self"}, "last_finalization_error": null, "latest_revision": null,
        "lines": wire::embedded_list(format!("/v1/invoices/{id}/lines"), Vec::new()),
        "livemode": false, "metadata": {}, "next_payment_attempt": null, "number": null,
        "on_behalf_of": null, "parent": parent,
        "payment_settings": {"default_mandate": null, "payment_method_options": null,
                             "payment_method_types": null},
        "period_end": t, "period_start": t, "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0, "receipt_number": null, "rendering": null,
        "shipping_cost": null, "shipping_details": null, "starting_balance": 0,
        "statement_descriptor": null, "status": "draft",
        "status_transitions": {"finalized_at": null, "marked_uncollectible_at": null,
                               "paid_at": null, "voided_at": null},
        "subtotal": 0, "subtotal_excluding_tax": 0, "test_clock": customer["test_clock"],
        "total": 0, "total_discount_amounts": [], "total_excluding_tax": 0,
        "total_pretax_credit_amounts": [], "total_taxes": [], "webhooks_delivered_at": null,
    })
}

/// The invoice line an invoice item becomes (its id follows the item's).
fn line_for_item(ii: &Value, invoice: &str) -> Value {
    let suffix = ii["id"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches("ii_");
    let sub = ii["parent"]["subscription_details"]["subscription"].clone();
    json!({
        "id": format!("il_{suffix}"), "object": "line_item", "amount": ii["amount"],
        "currency": ii["currency"], "description": ii["description"],
        "discount_amounts": [], "discountable": ii["discountable"], "discounts": [],
        "invoice": invoice, "livemode": false, "metadata": ii["metadata"],
        "parent": {"invoice_item_details": {"credited_items": null, "invoice_item": ii["id"],
            "proration": false, "proration_details": {"credited_items": null},
            "subscription": sub}, "subscription_item_details": null,
            "type": "invoice_item_details"},
        "period": ii["period"], "pretax_credit_amounts": [], "pricing": ii["pricing"],
        "quantity": ii["quantity"], "quantity_decimal": ii["quantity_decimal"],
        "subscription": sub, "subtotal": ii["amount"], "taxes": [],
    })
}

/// The line a subscription item bills for one period (`trial`: at no
/// charge, described as the trial).
pub fn line_for_sub_item(
    item: &Value,
    sub: &Value,
    invoice: &str,
    start: u64,
    end: u64,
    trial: bool,
) -> Result<Value, Error> {
    let price = &item["price"];
    let qty = item["quantity"].as_i64().unwrap_or(1);
    let unit = price["unit_amount"].as_i64().unwrap_or(0);
    let currency = price["currency"].as_str().unwrap_or("usd");
    let product = price["product"].as_str().unwrap_or_default();
    let product_name = coll("products")
        .get(product)?
        .and_then(|p| p["name"].as_str().map(str::to_owned))
        .unwrap_or_else(|| product.to_owned());
    let (unit_shown, amount) = if trial { (0, 0) } else { (unit, unit * qty) };
    let (interval, count) = billing::interval(price);
    let every = if count == 1 {
        interval
    } else {
        format!("every {count} {interval}s")
    };
    let description = if trial {
        format!("Trial period for {product_name}")
    } else {
        format!(
            "{qty} × {product_name} (at {} / {every})",
            money(unit, currency)
        )
    };
    Ok(json!({
        "id": ids::new("il"), "object": "line_item", "amount": amount, "currency": currency,
        "description": description, "discount_amounts": [], "discountable": true,
        "discounts": [], "invoice": invoice, "livemode": false, "metadata": item["metadata"],
        "parent": {"invoice_item_details": null, "subscription_item_details": {
            "invoice_item": null, "proration": false,
            "proration_details": {"credited_items": null}, "subscription": sub["id"],
            "subscription_item": item["id"]}, "type": "subscription_item_details"},
        "period": {"start": start, "end": end}, "pretax_credit_amounts": [],
        "pricing": {"price_details": {"price": price["id"], "product": product},
                    "type": "price_details", "unit_amount_decimal": unit_shown.to_string()},
        "quantity": qty, "quantity_decimal": qty.to_string(), "subscription": sub["id"],
        "subtotal": amount, "taxes": [],
    }))
}

/// Sets the lines and recomputes every total from them.
pub fn set_lines(inv: &mut Value, lines: Vec<Value>) {
    let subtotal: i64 = lines.iter().filter_map(|l| l["amount"].as_i64()).sum();
    if let Some(c) = lines.first().and_then(|l| l["currency"].as_str()) {
        inv["currency"] = json!(c);
    }
    let url = format!(
        "/v1/invoices/{}/lines",
        inv["id"].as_str().unwrap_or_default()
    );
    inv["lines"] = wire::embedded_list(url, lines);
    let paid = inv["amount_paid"].as_i64().unwrap_or(0);
    for f in [
        "subtotal",
        "subtotal_excluding_tax",
        "total",
        "total_excluding_tax",
    ] {
        inv[f] = json!(subtotal);
    }
    inv["amount_due"] = json!(subtotal);
    inv["amount_remaining"] = json!((subtotal - paid).max(0));
}

/// Rebuilds a draft's invoice-item lines from the items now on it.
pub fn refresh_draft(id: &str) -> Result<(), Error> {
    let mut inv = load(COLL, "invoice", id)?;
    if status(&inv) != "draft" {
        return Ok(());
    }
    let mut lines: Vec<Value> = inv["lines"]["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|l| l["parent"]["type"] != json!("invoice_item_details"))
        .collect();
    for ii in invoice_items::on_invoice(id)? {
        lines.push(line_for_item(&ii, id));
    }
    set_lines(&mut inv, lines);
    save(&inv)
}

/// Stores a new draft, taking `pending` items onto it, and records
/// `invoice.created`.
pub fn create_draft(
    mut inv: Value,
    mut lines: Vec<Value>,
    pending: &[Value],
) -> Result<Value, Error> {
    let id = inv["id"].as_str().unwrap_or_default().to_owned();
    for ii in pending {
        let ii_id = ii["id"].as_str().unwrap_or_default();
        invoice_items::set_invoice(ii_id, Some(&id))?;
        let mut on = ii.clone();
        on["invoice"] = json!(id);
        lines.push(line_for_item(&on, &id));
    }
    set_lines(&mut inv, lines);
    wire::insert_created(COLL, &id, &inv, "invoice.created")?;
    Ok(inv)
}

/// Draft → open: numbers the invoice from the customer's prefix and
/// sequence; a zero amount is paid at once, as on Stripe.
pub fn finalize(inv: &mut Value) -> Result<(), Error> {
    if status(inv) != "draft" {
        return Err(Error::bad_request(format!(
            "This invoice is already finalized, you can't re-finalize a non-draft invoice. \
             Invoice {} has a status of {}.",
            inv["id"].as_str().unwrap_or_default(),
            status(inv)
        ))
        .with_code("invoice_not_editable"));
    }
    let customer = inv["customer"].as_str().unwrap_or_default().to_owned();
    let updated = coll("customers").update(&customer, |c| {
        let n = c["next_invoice_sequence"].as_i64().unwrap_or(1);
        c["next_invoice_sequence"] = json!(n + 1);
    })?;
    let (prefix, seq) = updated.map_or(("INV".to_owned(), 1), |c| {
        (
            c["invoice_prefix"].as_str().unwrap_or("INV").to_owned(),
            c["next_invoice_sequence"].as_i64().unwrap_or(2) - 1,
        )
    });
    let t = now();
    let id = inv["id"].as_str().unwrap_or_default().to_owned();
    inv["number"] = json!(format!("{prefix}-{seq:04}"));
    inv["status"] = json!("open");
    inv["status_transitions"]["finalized_at"] = json!(t);
    inv["effective_at"] = json!(t);
    inv["ending_balance"] = json!(0);
    // The hosted page is served by the twin itself (`page`); the twin
    // renders no PDFs, so `invoice_pdf` stays null.
    inv["hosted_invoice_url"] = json!(wire::with_context(|c| format!("{}/i/{id}", c.base_url)));
    wire::publish_page(&id)?;
    if inv["collection_method"] == json!("send_invoice") && inv["due_date"].is_null() {
        inv["due_date"] = json!(t + 30 * 86_400);
    }
    save(inv)?;
    events::record("invoice.finalized", inv)?;
    if inv["amount_remaining"].as_i64().unwrap_or(0) == 0 {
        mark_paid(inv, None)?;
    }
    Ok(())
}

/// Marks an invoice paid (by `pi`, or out of band / nothing to pay), records
/// the invoice payment and events, and lets its subscription know.
fn mark_paid(inv: &mut Value, pi: Option<&Value>) -> Result<(), Error> {
    let t = now();
    let remaining = inv["amount_remaining"].as_i64().unwrap_or(0);
    let paid = inv["amount_paid"].as_i64().unwrap_or(0) + remaining;
    inv["amount_paid"] = json!(paid);
    inv["amount_remaining"] = json!(0);
    inv["status"] = json!("paid");
    inv["status_transitions"]["paid_at"] = json!(t);
    inv["next_payment_attempt"] = Value::Null;
    save(inv)?;
    if let Some(pi) = pi {
        let id = ids::new("inpay");
        let payment = json!({
            "id": id, "object": "invoice_payment", "amount_paid": remaining,
            "amount_requested": remaining, "created": t, "currency": inv["currency"],
            "invoice": inv["id"], "is_default": true, "livemode": false,
            "payment": {"charge": null, "payment_intent": pi["id"], "payment_record": null,
                        "type": "payment_intent"},
            "status": "paid", "status_transitions": {"canceled_at": null, "paid_at": t},
        });
        coll(PAYMENTS).insert(&id, &payment)?;
        events::record("invoice_payment.paid", &payment)?;
    }
    events::record("invoice.paid", inv)?;
    events::record("invoice.payment_succeeded", inv)?;
    if let Some(sub) = subscription_of(inv) {
        subscriptions::invoice_paid(&sub, inv)?;
    }
    Ok(())
}

/// The payment method an invoice is charged to: the one given, else the
/// invoice's, its subscription's, or the customer's invoice default.
fn payment_method_for(inv: &Value, given: Option<String>) -> Result<Option<String>, Error> {
    let customer = inv["customer"].as_str().unwrap_or_default();
    if let Some(pm) = given {
        let pm = payment_methods::resolve(&pm, "payment_method")?;
        let id = pm["id"].as_str().unwrap_or_default().to_owned();
        if pm["customer"].is_null() {
            payment_methods::attach_to(&id, customer, "payment_method")?;
        } else if pm["customer"] != json!(customer) {
            return Err(errors::invalid(
                "payment_method",
                &format!(
                    "The PaymentMethod {id} does not belong to the Customer {customer}. Please \
                     use a PaymentMethod that belongs to the Customer."
                ),
            ));
        }
        return Ok(Some(id));
    }
    if let Some(pm) = inv["default_payment_method"].as_str() {
        return Ok(Some(pm.to_owned()));
    }
    if let Some(sub) = subscription_of(inv)
        && let Some(s) = coll("subscriptions").get(&sub)?
        && let Some(pm) = s["default_payment_method"].as_str()
    {
        return Ok(Some(pm.to_owned()));
    }
    let c = customers::load_live(customer)?;
    Ok(c["invoice_settings"]["default_payment_method"]
        .as_str()
        .map(str::to_owned))
}

/// Tries to collect an open invoice. `Ok(None)`: paid. `Ok(Some(error))`:
/// the card was declined or there is nothing to charge (the invoice stays
/// open, `invoice.payment_failed` recorded); the error is what `pay`
/// answers.
pub fn collect(inv: &mut Value, given: Option<String>) -> Result<Option<Error>, Error> {
    let remaining = inv["amount_remaining"].as_i64().unwrap_or(0);
    if remaining == 0 {
        mark_paid(inv, None)?;
        return Ok(None);
    }
    let Some(pm) = payment_method_for(inv, given)? else {
        inv["attempted"] = json!(true);
        inv["attempt_count"] = json!(inv["attempt_count"].as_i64().unwrap_or(0) + 1);
        save(inv)?;
        events::record("invoice.payment_failed", inv)?;
        return Ok(Some(Error::bad_request(
            "This customer has no attached payment source or default payment method. Please \
             consider adding a default payment method.",
        )));
    };
    let customer = inv["customer"].as_str().unwrap_or_default().to_owned();
    let currency = inv["currency"].as_str().unwrap_or("usd").to_owned();
    let description = match inv["billing_reason"].as_str() {
        Some("subscription_create") => Some("Subscription creation"),
        Some("subscription_cycle") => Some("Subscription update"),
        _ => None,
    };
    inv["attempted"] = json!(true);
    inv["attempt_count"] = json!(inv["attempt_count"].as_i64().unwrap_or(0) + 1);
    match payment_intents::charge(Some(&customer), &pm, remaining, &currency, description)? {
        Ok(pi) => {
            mark_paid(inv, Some(&pi))?;
            Ok(None)
        }
        Err((_pi, err)) => {
            save(inv)?;
            events::record("invoice.payment_failed", inv)?;
            Ok(Some(err))
        }
    }
}

/// `payments` is includable (`expand[]=payments`): the invoice's payments.
pub fn payments_list(invoice: &str) -> Result<Value, Error> {
    let found = coll(PAYMENTS).list_where(&wt_sdk::Page::first(100), true, |p| {
        p["invoice"] == json!(invoice)
    })?;
    Ok(
        json!({"object": "list", "data": found.items, "has_more": found.has_more,
              "url": format!("/v1/invoice_payments?invoice={invoice}")}),
    )
}

/// The fields create and update share (update allows fewer once final).
fn apply_fields(inv: &mut Value, p: &mut Params, draft: bool) -> Result<(), Error> {
    let description = p.opt_string("description")?;
    set_opt(inv, "description", description);
    let footer = p.opt_string("footer")?;
    set_opt(inv, "footer", footer);
    if let Some(a) = p.bool("auto_advance")? {
        inv["auto_advance"] = json!(a);
    }
    if let Some(pm) = p.opt_string("default_payment_method")? {
        if let Some(id) = &pm {
            wire::load_ref(
                payment_methods::COLL_NAME,
                "payment_method",
                id,
                "default_payment_method",
            )?;
        }
        set_opt(inv, "default_payment_method", Some(pm));
    }
    apply_metadata(inv, p.take("metadata"))?;
    let money_fields = ["collection_method", "days_until_due", "due_date"];
    if !draft {
        if let Some(f) = money_fields.iter().find(|f| p.has(f)) {
            return Err(Error::bad_request(format!(
                "Finalized invoices can't be updated in this way: `{f}` can only change on a \
                 draft invoice."
            ))
            .with_code("invoice_not_editable")
            .with_param(*f));
        }
        return Ok(());
    }
    if let Some(m) = p.string("collection_method")? {
        if !matches!(m.as_str(), "charge_automatically" | "send_invoice") {
            return Err(errors::invalid_enum(
                "collection_method",
                &m,
                &["charge_automatically", "send_invoice"],
            ));
        }
        inv["collection_method"] = json!(m);
    }
    if let Some(days) = p.int("days_until_due")? {
        inv["due_date"] = json!(inv["created"].as_i64().unwrap_or(0) + days * 86_400);
    }
    if let Some(due) = p.int("due_date")? {
        inv["due_date"] = json!(due);
    }
    if inv["collection_method"] == json!("charge_automatically") && !inv["due_date"].is_null() {
        return Err(errors::invalid(
            "due_date",
            "Invoices with `collection_method=charge_automatically` cannot have a due date.",
        ));
    }
    for f in [
        "automatic_tax",
        "custom_fields",
        "rendering",
        "account_tax_ids",
        "issuer",
    ] {
        p.take(f);
    }
    Ok(())
}

pub fn create(req: &Request) -> Result<Response, Error> {
    let mut p = Params::of(req)?;
    let customer_id = p.required_string("customer")?;
    let customer = customers::load_ref(&customer_id, "customer")?;
    let sub = match p.string("subscription")? {
        Some(s) => Some(wire::load_ref(
            "subscriptions",
            "subscription",
            &s,
            "subscription",
        )?),
        None => None,
    };
    let behavior = p
        .string("pending_invoice_items_behavior")?
        .unwrap_or_else(|| "exclude".into());
    if !matches!(behavior.as_str(), "include" | "exclude") {
        return Err(errors::invalid_enum(
            "pending_invoice_items_behavior",
            &behavior,
            &["exclude", "include"],
        ));
    }
    let currency = p.string("currency")?.map(|c| c.to_lowercase());
    let t = billing::time_on(&billing::clock_name(&customer["test_clock"]))?;
    wire::at_time(t, || {
        let mut inv = draft(&customer, sub.as_ref(), "manual");
        inv["auto_advance"] = json!(false);
        if let Some(c) = &currency {
            inv["currency"] = json!(c);
        }
        apply_fields(&mut inv, &mut p, true)?;
        let expand = p.finish()?;
        let sub_id = sub.as_ref().and_then(|s| s["id"].as_str());
        let pending = if behavior == "include" {
            invoice_items::pending_for(&customer_id, sub_id)?
        } else {
            Vec::new()
        };
        let mut inv = create_draft(inv, Vec::new(), &pending)?;
        expand::apply(&mut inv, &expand)?;
        Ok(Response::ok(&inv))
    })
}

pub fn retrieve(req: &Request) -> Result<Response, Error> {
    let expand = Params::of(req)?.finish()?;
    wire::retrieve(COLL, "invoice", wire::id(req), &expand)
}

pub fn update(req: &Request) -> Result<Response, Error> {
    let id = wire::id(req);
    let mut inv = load(COLL, "invoice", id)?;
    let before = inv.clone();
    let mut p = Params::of(req)?;
    let is_draft = status(&inv) == "draft";
    apply_fields(&mut inv, &mut p, is_draft)?;
    let expand = p.finish()?;
    save(&inv)?;
    events::record_with(
        "invoice.updated",
        &inv,
        Some(customers::previous(&before, &inv)),
    )?;
    expand::apply(&mut inv, &expand)?;
    Ok(Response::ok(&inv))
}

pub fn delete(req: &Request) -> Result<Response, Error> {
    Params::of(req)?.finish()?;
    let id = wire::id(req);
    let inv = load(COLL, "invoice", id)?;
    if status(&inv) != "draft" {
        return Err(Error::bad_request(format!(
            "You can only delete draft invoices. Invoice {id} has a status of {}; void it \
             instead.",
            status(&inv)
        ))
        .with_code("invoice_not_editable"));
    }
    // Its items go back to pending, for the customer's next invoice.
    for ii in invoice_items::on_invoice(id)? {
        invoice_items::set_invoice(ii["id"].as_str().unwrap_or_default(), None)?;
    }
    coll(COLL).remove(id)?;
    events::record("invoice.deleted", &inv)?;
    Ok(Response::ok(
        &json!({"id": id, "object": "invoice", "deleted": true}),
    ))
}

pub fn finalize_invoice(req: &Request) -> Result<Response, Error> {
    let id = wire::id(req);
    let mut inv = load(COLL, "invoice", id)?;
    let mut p = Params::of(req)?;
    if let Some(a) = p.bool("auto_advance")? {
        inv["auto_advance"] = json!(a);
    }
    let expand = p.finish()?;
    on_clock(&inv.clone(), || finalize(&mut inv))?;
    expand::apply(&mut inv, &expand)?;
    Ok(Response::ok(&inv))
}

pub fn pay(req: &Request) -> Result<Response, Error> {
    let id = wire::id(req);
    let mut inv = load(COLL, "invoice", id)?;
    let mut p = Params::of(req)?;
    let pm = p.string("payment_method")?;
    let out_of_band = p.bool("paid_out_of_band")?.unwrap_or(false);
    for f in ["forgive", "off_session", "source", "mandate"] {
        p.take(f);
    }
    let expand = p.finish()?;
    match status(&inv) {
        "open" | "uncollectible" => {}
        "paid" => {
            return Err(Error::bad_request("Invoice is already paid.")
                .with_code("invoice_unexpected_state"));
        }
        st => {
            return Err(Error::bad_request(format!(
                "You can only pay open or uncollectible invoices. This invoice has a status of \
                 {st}."
            ))
            .with_code("invoice_unexpected_state"));
        }
    }
    on_clock(&inv.clone(), || {
        if out_of_band {
            inv["amount_paid_off_stripe"] = inv["amount_remaining"].clone();
            return mark_paid(&mut inv, None);
        }
        match collect(&mut inv, pm)? {
            None => Ok(()),
            Some(err) => Err(err),
        }
    })?;
    expand::apply(&mut inv, &expand)?;
    Ok(Response::ok(&inv))
}

/// open → void / uncollectible.
fn close(req: &Request, to: &str, event: &str, stamp: &str) -> Result<Response, Error> {
    let id = wire::id(req);
    let mut inv = load(COLL, "invoice", id)?;
    let expand = Params::of(req)?.finish()?;
    let allowed = if to == "void" {
        matches!(status(&inv), "open" | "uncollectible")
    } else {
        status(&inv) == "open"
    };
    if !allowed {
        return Err(Error::bad_request(format!(
            "You can only {} invoices that are open{}. This invoice has a status of {}.",
            if to == "void" {
                "void"
            } else {
                "mark as uncollectible"
            },
            if to == "void" {
                " or uncollectible"
            } else {
                ""
            },
            status(&inv)
        ))
        .with_code("invoice_unexpected_state"));
    }
    on_clock(&inv.clone(), || {
        inv["status"] = json!(to);
        inv["status_transitions"][stamp] = json!(now());
        if to == "void" {
            inv["amount_remaining"] = json!(0);
        }
        save(&inv)?;
        events::record(event, &inv)
    })?;
    expand::apply(&mut inv, &expand)?;
    Ok(Response::ok(&inv))
}

pub fn void(req: &Request) -> Result<Response, Error> {
    close(req, "void", "invoice.voided", "voided_at")
}

pub fn mark_uncollectible(req: &Request) -> Result<Response, Error> {
    close(
        req,
        "uncollectible",
        "invoice.marked_uncollectible",
        "marked_uncollectible_at",
    )
}

pub fn lines(req: &Request) -> Result<Response, Error> {
    let mut p = Params::of(req)?;
    let page = p.page(req)?;
    let expand = p.finish()?;
    let id = wire::id(req);
    let inv = load(COLL, "invoice", id)?;
    let all = inv["lines"]["data"].as_array().cloned().unwrap_or_default();
    let found = wire::page_of(all, &page)?;
    Ok(Response::ok(&list_body(
        &format!("/v1/invoices/{id}/lines"),
        found,
        &expand,
    )?))
}

pub fn list(req: &Request) -> Result<Response, Error> {
    let mut p = Params::of(req)?;
    let page = p.page(req)?;
    let customer = p.string("customer")?;
    let sub = p.string("subscription")?;
    let st = p.string("status")?;
    let method = p.string("collection_method")?;
    let created = p.created()?;
    p.take("due_date");
    let expand = p.finish()?;
    let found = coll(COLL).list_where(&page, true, |inv| {
        created.matches(inv)
            && customer
                .as_ref()
                .is_none_or(|c| inv["customer"] == json!(c))
            && sub
                .as_ref()
                .is_none_or(|s| subscription_of(inv).as_deref() == Some(s))
            && st.as_ref().is_none_or(|s| inv["status"] == json!(s))
            && method
                .as_ref()
                .is_none_or(|m| inv["collection_method"] == json!(m))
    })?;
    Ok(Response::ok(&list_body("/v1/invoices", found, &expand)?))
}

pub fn payment_retrieve(req: &Request) -> Result<Response, Error> {
    let expand = Params::of(req)?.finish()?;
    let mut pay = load(PAYMENTS, "invoice_payment", wire::id(req))?;
    expand::apply(&mut pay, &expand)?;
    Ok(Response::ok(&pay))
}

pub fn payment_list(req: &Request) -> Result<Response, Error> {
    let mut p = Params::of(req)?;
    let page = p.page(req)?;
    let invoice = p.string("invoice")?;
    let st = p.string("status")?;
    if let Some(mut payment) = p.hash("payment")? {
        payment.take("type");
        payment.take("payment_intent");
        payment.finish_in("payment")?;
    }
    let expand = p.finish()?;
    let found = coll(PAYMENTS).list_where(&page, true, |pay| {
        invoice.as_ref().is_none_or(|i| pay["invoice"] == json!(i))
            && st.as_ref().is_none_or(|s| pay["status"] == json!(s))
    })?;
    Ok(Response::ok(&list_body(
        "/v1/invoice_payments",
        found,
        &expand,
    )?))
}

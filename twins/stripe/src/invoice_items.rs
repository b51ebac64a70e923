//! Invoice items: one-off charges that wait ("pending") for the customer's
//! next invoice, or sit on a draft invoice named with `invoice`.

use serde_json::{Value, json};
use wt_sdk::{Error, Page, Request, Response, ids};

use crate::wire::{self, Params, apply_metadata, coll, list_body, load, now, set_opt};
use crate::{customers, errors, events, expand, invoices, prices};

/// The collection invoice items live in.
pub const COLL: &str = "invoiceitems";

/// The pending items of `customer` that an invoice for `subscription`
/// (or a one-off invoice, `None`) takes, oldest first.
pub fn pending_for(customer: &str, subscription: Option<&str>) -> Result<Vec<Value>, Error> {
    let found = coll(COLL).list_where(&Page::first(250), false, |ii| {
        ii["customer"] == json!(customer)
            && ii["invoice"].is_null()
            && (ii["parent"].is_null()
                || subscription.is_some_and(|s| {
                    ii["parent"]["subscription_details"]["subscription"] == json!(s)
                }))
    })?;
    Ok(found.items)
}

/// Items on invoice `invoice`, oldest first.
pub fn on_invoice(invoice: &str) -> Result<Vec<Value>, Error> {
    Ok(coll(COLL)
        .list_where(&Page::first(250), false, |ii| {
            ii["invoice"] == json!(invoice)
        })?
        .items)
}

/// Moves item `id` onto invoice `invoice` (`None`: back to pending).
pub fn set_invoice(id: &str, invoice: Option<&str>) -> Result<(), Error> {
    coll(COLL).update(id, |ii| ii["invoice"] = json!(invoice))?;
    Ok(())
}

/// A pending item of `qty` × `price` for `customer` (a subscription's
/// `add_invoice_items`, a checkout session's one-time lines), billed on
/// the next invoice of `subscription`.
pub fn create_for(
    customer: &Value,
    price: &Value,
    qty: i64,
    subscription: Option<&str>,
) -> Result<Value, Error> {
    let id = ids::new("ii");
    let t = now();
    let unit = price["unit_amount"].as_i64().unwrap_or(0);
    let ii = json!({
        "id": id, "object": "invoiceitem", "amount": unit * qty, "currency": price["currency"],
        "customer": customer["id"], "customer_account": null, "date": t, "description": null,
        "discountable": true, "discounts": [], "invoice": null, "livemode": false,
        "metadata": {}, "net_amount": null,
        "parent": subscription.map(|s| json!({"subscription_details": {"subscription": s,
            "subscription_item": null}, "type": "subscription_details"})),
        "period": {"start": t, "end": t},
        "pricing": {"price_details": {"price": price["id"], "product": price["product"]},
                    "type": "price_details", "unit_amount_decimal": unit.to_string()},
        "proration": false, "quantity": qty, "quantity_decimal": qty.to_string(),
        "tax_rates": [], "test_clock": customer["test_clock"],
    });
    wire::insert_created(COLL, &id, &ii, "invoiceitem.created")?;
    Ok(ii)
}

/// The amount fields: `amount` (+ `currency`), `pricing[price]`, or
/// `price_data`, times `quantity`.
fn apply_amount(ii: &mut Value, p: &mut Params, creating: bool) -> Result<(), Error> {
    let quantity = p.int("quantity")?;
    if let Some(q) = quantity {
        if q < 0 {
            return Err(errors::invalid(
                "quantity",
                "This value must be greater than or equal to 0.",
            ));
        }
        ii["quantity"] = json!(q);
        ii["quantity_decimal"] = json!(q.to_string());
    }
    let amount = p.int("amount")?;
    let unit_decimal = p.string("unit_amount_decimal")?;
    let currency = p.string("currency")?.map(|c| c.to_lowercase());
    let price = match (p.hash("pricing")?, p.hash("price_data")?) {
        (Some(mut pricing), None) => {
            let id = pricing.string("price")?;
            pricing.finish_in("pricing")?;
            id.map(|id| wire::load_ref("prices", "price", &id, "pricing[price]"))
                .transpose()?
        }
        (None, Some(data)) => Some(prices::inline(data, "price_data", false)?),
        (Some(_), Some(_)) => {
            return Err(Error::bad_request(
                "You may only specify one of these parameters: pricing, price_data.",
            ));
        }
        (None, None) => None,
    };
    let qty = ii["quantity"].as_i64().unwrap_or(1);
    if let Some(price) = price {
        if amount.is_some() {
            return Err(Error::bad_request(
                "You may only specify one of these parameters: amount, pricing.",
            ));
        }
        let unit = price["unit_amount"].as_i64().unwrap_or(0);
        ii["currency"] = price["currency"].clone();
        ii["pricing"] = json!({"price_details": {"price": price["id"], "product": price["product"]},
                               "type": "price_details", "unit_amount_decimal": unit.to_string()});
        ii["amount"] = json!(unit * qty);
    } else if let Some(unit) = unit_decimal {
        let unit: i64 = unit
            .parse()
            .map_err(|_| errors::invalid("unit_amount_decimal", "Invalid decimal"))?;
        ii["pricing"]["unit_amount_decimal"] = json!(unit.to_string());
        ii["amount"] = json!(unit * qty);
    } else if let Some(amount) = amount {
        ii["amount"] = json!(amount);
        let unit = if qty == 0 { 0 } else { amount / qty };
        ii["pricing"]["unit_amount_decimal"] = json!(unit.to_string());
    } else if creating {
        return Err(errors::missing("amount"));
    } else if quantity.is_some() {
        let unit: i64 = ii["pricing"]["unit_amount_decimal"]
            .as_str()
            .and_then(|u| u.parse().ok())
            .unwrap_or(0);
        ii["amount"] = json!(unit * qty);
    }
    if let Some(c) = currency {
        ii["currency"] = json!(c);
    }
    if creating && ii["currency"].is_null() {
        return Err(errors::missing("currency"));
    }
    Ok(())
}

fn apply_fields(ii: &mut Value, p: &mut Params) -> Result<(), Error> {
    let description = p.opt_string("description")?;
    set_opt(ii, "description", description);
    if let Some(d) = p.bool("discountable")? {
        ii["discountable"] = json!(d);
    }
    if let Some(mut period) = p.hash("period")? {
        let start = period
            .int("start")?
            .ok_or_else(|| errors::missing("period[start]"))?;
        let end = period
            .int("end")?
            .ok_or_else(|| errors::missing("period[end]"))?;
        period.finish_in("period")?;
        if end < start {
            return Err(errors::invalid(
                "period[end]",
                "The period end must be after the period start.",
            ));
        }
        ii["period"] = json!({"start": start, "end": end});
    }
    for f in ["tax_rates", "tax_code", "tax_behavior", "discounts"] {
        p.take(f);
    }
    apply_metadata(ii, p.take("metadata"))
}

/// Refuses changes to an item already on a finalized invoice.
fn check_editable(ii: &Value) -> Result<(), Error> {
    if let Some(inv) = ii["invoice"].as_str() {
        let invoice = load(invoices::COLL, "invoice", inv)?;
        if invoice["status"] != json!("draft") {
            return Err(Error::bad_request(format!(
                "You cannot modify or delete an invoice item that is attached to a finalized \
                 invoice ({inv})."
            ))
            .with_code("invoice_not_editable"));
        }
    }
    Ok(())
}

pub fn create(req: &Request) -> Result<Response, Error> {
    let mut p = Params::of(req)?;
    let customer_id = p.required_string("customer")?;
    let customer = customers::load_ref(&customer_id, "customer")?;
    // Items of a test clock customer are dated on the clock.
    let t = crate::billing::time_on(&crate::billing::clock_name(&customer["test_clock"]))?;
    let id = ids::new("ii");
    let mut ii = json!({
        "id": id, "object": "invoiceitem", "amount": 0, "currency": null,
        "customer": customer_id, "customer_account": null, "date": t, "description": null,
        "discountable": true, "discounts": [], "invoice": null, "livemode": false,
        "metadata": {}, "net_amount": null, "parent": null,
        "period": {"start": t, "end": t},
        "pricing": {"price_details": null, "type": "price_details", "unit_amount_decimal": null},
        "proration": false, "quantity": 1, "quantity_decimal": "1", "tax_rates": [],
        "test_clock": customer["test_clock"],
    });
    apply_amount(&mut ii, &mut p, true)?;
    apply_fields(&mut ii, &mut p)?;
    if let Some(sub) = p.string("subscription")? {
        wire::load_ref("subscriptions", "subscription", &sub, "subscription")?;
        ii["parent"] = json!({"subscription_details": {"subscription": sub,
            "subscription_item": null}, "type": "subscription_details"});
    }
    let invoice = p.string("invoice")?;
    let expand = p.finish()?;
    if let Some(inv_id) = &invoice {
        let inv = wire::load_ref(invoices::COLL, "invoice", inv_id, "invoice")?;
        if inv["status"] != json!("draft") {
            return Err(errors::invalid(
                "invoice",
                &format!(
                    "Invoice {inv_id} is already finalized; invoice items can only be added to \
                     draft invoices."
                ),
            ));
        }
        if inv["customer"] != json!(customer_id) {
            return Err(errors::invalid(
                "invoice",
                "The invoice belongs to another customer than the invoice item.",
            ));
        }
        ii["invoice"] = json!(inv_id);
    }
    wire::insert_created(COLL, &id, &ii, "invoiceitem.created")?;
    if let Some(inv_id) = &invoice {
        invoices::refresh_draft(inv_id)?;
    }
    expand::apply(&mut ii, &expand)?;
    Ok(Response::ok(&ii))
}

pub fn retrieve(req: &Request) -> Result<Response, Error> {
    let expand = Params::of(req)?.finish()?;
    wire::retrieve(COLL, "invoiceitem", wire::id(req), &expand)
}

pub fn update(req: &Request) -> Result<Response, Error> {
    let id = wire::id(req);
    let mut ii = load(COLL, "invoiceitem", id)?;
    check_editable(&ii)?;
    let mut p = Params::of(req)?;
    apply_amount(&mut ii, &mut p, false)?;
    apply_fields(&mut ii, &mut p)?;
    let expand = p.finish()?;
    coll(COLL).put(id, &ii)?;
    if let Some(inv) = ii["invoice"].as_str() {
        invoices::refresh_draft(inv)?;
    }
    expand::apply(&mut ii, &expand)?;
    Ok(Response::ok(&ii))
}

pub fn delete(req: &Request) -> Result<Response, Error> {
    Params::of(req)?.finish()?;
    let id = wire::id(req);
    let ii = load(COLL, "invoiceitem", id)?;
    check_editable(&ii)?;
    coll(COLL).remove(id)?;
    events::record("invoiceitem.deleted", &ii)?;
    if let Some(inv) = ii["invoice"].as_str() {
        invoices::refresh_draft(inv)?;
    }
    Ok(Response::ok(
        &json!({"id": id, "object": "invoiceitem", "deleted": true}),
    ))
}

pub fn list(req: &Request) -> Result<Response, Error> {
    let mut p = Params::of(req)?;
    let page = p.page(req)?;
    let customer = p.string("customer")?;
    let invoice = p.string("invoice")?;
    let pending = p.bool("pending")?;
    let created = p.created()?;
    let expand = p.finish()?;
    let found = coll(COLL).list_where(&page, true, |ii| {
        // Items have `date`, not `created`; the filter reads it.
        let stamped = json!({"created": ii["date"]});
        created.matches(&stamped)
            && customer.as_ref().is_none_or(|c| ii["customer"] == json!(c))
            && invoice.as_ref().is_none_or(|i| ii["invoice"] == json!(i))
            && pending.is_none_or(|pd| ii["invoice"].is_null() == pd)
    })?;
    Ok(Response::ok(&list_body(
        "/v1/invoiceitems",
        found,
        &expand,
    )?))
}

//! `expand[]`: replace an id with the object it names, up to 4 levels deep.

use serde_json::Value;
use wt_sdk::Error;

use crate::wire::coll;

const MAX_DEPTH: usize = 4;

/// The collection holding objects whose ids start with `id`'s prefix.
fn collection_for(id: &str) -> Option<&'static str> {
    let prefix = id.split('_').next()?;
    Some(match prefix {
        "cus" => "customers",
        "prod" => "products",
        "price" => "prices",
        "pm" => "payment_methods",
        "pi" => "payment_intents",
        "ch" => "charges",
        "re" => "refunds",
        "evt" => "events",
        "we" => "webhook_endpoints",
        "seti" => "setup_intents",
        "sub" => "subscriptions",
        "in" => "invoices",
        "ii" => "invoiceitems",
        "inpay" => "invoice_payments",
        "cs" => "checkout_sessions",
        "clock" => "test_clocks",
        _ => return None,
    })
}

/// The object `id` names in the current account, if any.
pub fn lookup(id: &str) -> Result<Option<Value>, Error> {
    match collection_for(id) {
        Some(name) => coll(name).get(id),
        None => Ok(None),
    }
}

fn not_expandable(path: &str) -> Error {
    Error::bad_request(format!("This property cannot be expanded ({path}).")).with_param("expand")
}

/// Applies every path to one object.
pub fn apply(obj: &mut Value, paths: &[String]) -> Result<(), Error> {
    for path in paths {
        let segs: Vec<&str> = path.split('.').collect();
        if segs.len() > MAX_DEPTH {
            return Err(Error::bad_request(format!(
                "You cannot expand more than {MAX_DEPTH} levels of a property. Property: {path}"
            ))
            .with_param("expand"));
        }
        expand_at(obj, &segs, path)?;
    }
    Ok(())
}

/// Applies the `data.…` paths of a list request to one item.
pub fn apply_list(item: &mut Value, paths: &[String]) -> Result<(), Error> {
    let inner: Vec<String> = paths
        .iter()
        .filter_map(|p| p.strip_prefix("data.").map(str::to_owned))
        .collect();
    for p in &inner {
        if p.split('.').count() + 1 > MAX_DEPTH {
            return Err(Error::bad_request(format!(
                "You cannot expand more than {MAX_DEPTH} levels of a property. Property: data.{p}"
            ))
            .with_param("expand"));
        }
    }
    apply(item, &inner)
}

/// Fields Stripe leaves out unless expanded ("includable"): an invoice's
/// `payments`, a Checkout Session's `line_items`.
fn includable(obj: &serde_json::Map<String, Value>, field: &str) -> Result<Option<Value>, Error> {
    let id = obj.get("id").and_then(Value::as_str).unwrap_or_default();
    match (obj.get("object").and_then(Value::as_str), field) {
        (Some("invoice"), "payments") => crate::invoices::payments_list(id).map(Some),
        (Some("checkout.session"), "line_items") => {
            let data = crate::checkout::lines_of(id)?;
            let mut list =
                crate::wire::embedded_list(format!("/v1/checkout/sessions/{id}/line_items"), data);
            if let Some(m) = list.as_object_mut() {
                m.remove("total_count");
            }
            Ok(Some(list))
        }
        _ => Ok(None),
    }
}

fn expand_at(obj: &mut Value, segs: &[&str], path: &str) -> Result<(), Error> {
    let Some((first, rest)) = segs.split_first() else {
        return Ok(());
    };
    let Some(map) = obj.as_object_mut() else {
        return Err(not_expandable(path));
    };
    if !map.contains_key(*first)
        && let Some(included) = includable(map, first)?
    {
        map.insert((*first).to_owned(), included);
    }
    let Some(field) = map.get_mut(*first) else {
        return Err(not_expandable(path));
    };
    if let Value::String(id) = field {
        if collection_for(id).is_none() {
            return Err(not_expandable(path));
        }
        if let Some(found) = lookup(id)? {
            *field = found;
        }
    }
    match field {
        Value::Object(_) if !rest.is_empty() => expand_at(field, rest, path),
        Value::Array(items) if !rest.is_empty() => {
            for item in items {
                expand_at(item, rest, path)?;
            }
            Ok(())
        }
        Value::Null | Value::Object(_) => Ok(()),
        _ if rest.is_empty() => Ok(()),
        _ => Err(not_expandable(path)),
    }
}

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

fn expand_at(obj: &mut Value, segs: &[&str], path: &str) -> Result<(), Error> {
    let Some((first, rest)) = segs.split_first() else {
        return Ok(());
    };
    let Some(map) = obj.as_object_mut() else {
        return Err(not_expandable(path));
    };
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

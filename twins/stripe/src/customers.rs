//! Customers, their list and search.

use serde_json::{Value, json};
use wt_sdk::{Error, Page, Request, Response, ids};

use crate::wire::{self, Params, apply_metadata, coll, list_body, now, set_opt};
use crate::{errors, events, expand, payment_methods};

const COLL: &str = "customers";

fn is_deleted(c: &Value) -> bool {
    c["deleted"] == json!(true)
}

/// A live (not deleted) customer, or 404.
pub fn load_live(id: &str) -> Result<Value, Error> {
    match coll(COLL).get(id)? {
        Some(c) if !is_deleted(&c) => Ok(c),
        _ => Err(Error::resource_missing("customer", id)),
    }
}

/// A live customer a parameter refers to, or 400 naming the parameter.
pub fn load_ref(id: &str, param: &str) -> Result<Value, Error> {
    load_live(id).map_err(|mut e| {
        e.status = 400;
        e.with_param(param)
    })
}

/// The fields create and update share.
fn apply_fields(c: &mut Value, p: &mut Params) -> Result<(), Error> {
    for f in ["email", "name", "description", "phone"] {
        let v = p.opt_string(f)?;
        set_opt(c, f, v);
    }
    for f in ["address", "shipping"] {
        if let Some(v) = p.take(f) {
            c[f] = if v == json!("") { Value::Null } else { v };
        }
    }
    if let Some(locales) = p.strings("preferred_locales")? {
        c["preferred_locales"] = json!(locales);
    }
    if let Some(mut settings) = p.hash("invoice_settings")? {
        if let Some(pm) = settings.opt_string("default_payment_method")? {
            c["invoice_settings"]["default_payment_method"] = pm.map_or(Value::Null, Value::String);
        }
        settings.take("custom_fields");
        settings.take("footer");
        settings.finish_in("invoice_settings")?;
    }
    apply_metadata(c, p.take("metadata"))
}

pub fn create(req: &Request) -> Result<Response, Error> {
    let mut p = Params::of(req)?;
    let id = ids::new("cus");
    let mut c = json!({
        "id": id, "object": "customer", "address": null, "balance": 0, "created": now(),
        "currency": null, "default_source": null, "delinquent": false, "description": null,
        "discount": null, "email": null,
        "invoice_prefix": ids::random_base62(8).to_uppercase(),
        "invoice_settings": {"custom_fields": null, "default_payment_method": null,
                             "footer": null, "rendering_options": null},
        "livemode": false, "metadata": {}, "name": null, "next_invoice_sequence": 1,
        "phone": null, "preferred_locales": [], "shipping": null, "tax_exempt": "none",
        "test_clock": null,
    });
    apply_fields(&mut c, &mut p)?;
    let payment_method = p.string("payment_method")?;
    let expand = p.finish()?;
    coll(COLL).insert(&id, &c)?;
    events::record("customer.created", &c)?;
    if let Some(pm) = payment_method {
        payment_methods::attach_to(&pm, &id, "payment_method")?;
    }
    expand::apply(&mut c, &expand)?;
    Ok(Response::ok(&c))
}

pub fn retrieve(req: &Request) -> Result<Response, Error> {
    let expand = Params::of(req)?.finish()?;
    let id = wire::id(req);
    let mut c = coll(COLL)
        .get(id)?
        .ok_or_else(|| Error::resource_missing("customer", id))?;
    if !is_deleted(&c) {
        expand::apply(&mut c, &expand)?;
    }
    Ok(Response::ok(&c))
}

pub fn update(req: &Request) -> Result<Response, Error> {
    let id = wire::id(req);
    let mut c = load_live(id)?;
    let before = c.clone();
    let mut p = Params::of(req)?;
    apply_fields(&mut c, &mut p)?;
    let expand = p.finish()?;
    coll(COLL).put(id, &c)?;
    events::record_with("customer.updated", &c, Some(previous(&before, &c)))?;
    expand::apply(&mut c, &expand)?;
    Ok(Response::ok(&c))
}

/// The top-level fields of `before` that differ in `after`.
pub fn previous(before: &Value, after: &Value) -> Value {
    let mut out = serde_json::Map::new();
    if let (Some(b), Some(a)) = (before.as_object(), after.as_object()) {
        for (k, v) in b {
            if a.get(k) != Some(v) {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

pub fn delete(req: &Request) -> Result<Response, Error> {
    Params::of(req)?.finish()?;
    let id = wire::id(req);
    let c = load_live(id)?;
    let stub = json!({"id": id, "object": "customer", "deleted": true});
    coll(COLL).put(id, &stub)?;
    events::record("customer.deleted", &c)?;
    Ok(Response::ok(&stub))
}

pub fn list(req: &Request) -> Result<Response, Error> {
    let mut p = Params::of(req)?;
    let page = p.page(req)?;
    let email = p.string("email")?;
    let created = p.created()?;
    p.take("test_clock");
    let expand = p.finish()?;
    let found = coll(COLL).list_where(&page, true, |c| {
        created.matches(c)
            && !is_deleted(c)
            && email
                .as_ref()
                .is_none_or(|e| c["email"].as_str() == Some(e))
    })?;
    Ok(Response::ok(&list_body("/v1/customers", found, &expand)?))
}

/// One clause of a search query: `field:'value'`, `field~'value'`, or
/// `metadata['key']:'value'`.
#[derive(Debug, PartialEq)]
struct Clause {
    field: String,
    meta_key: Option<String>,
    substring: bool,
    value: String,
}

fn unquote(s: &str) -> Option<&str> {
    let s = s.trim();
    s.strip_prefix('\'')
        .and_then(|r| r.strip_suffix('\''))
        .or_else(|| s.strip_prefix('"').and_then(|r| r.strip_suffix('"')))
}

fn parse_query(query: &str) -> Result<Vec<Clause>, Error> {
    let bad = || {
        errors::invalid(
            "query",
            &format!("We were unable to parse your search query. Query: {query}"),
        )
    };
    let mut clauses = Vec::new();
    for part in query.split(" AND ") {
        let part = part.trim();
        let at = part.find([':', '~']).ok_or_else(bad)?;
        let (lhs, rest) = part.split_at(at);
        let substring = rest.starts_with('~');
        let value = unquote(&rest[1..]).ok_or_else(bad)?.to_owned();
        let (field, meta_key) = match lhs.strip_prefix("metadata[") {
            Some(inner) => {
                let key = inner.strip_suffix(']').and_then(unquote).ok_or_else(bad)?;
                ("metadata".to_owned(), Some(key.to_owned()))
            }
            None => (lhs.trim().to_owned(), None),
        };
        if !matches!(field.as_str(), "email" | "name" | "phone" | "metadata") {
            return Err(errors::invalid(
                "query",
                &format!(
                    "Field '{field}' is an unsupported search field for resource `customers`."
                ),
            ));
        }
        clauses.push(Clause {
            field,
            meta_key,
            substring,
            value,
        });
    }
    Ok(clauses)
}

fn matches(c: &Value, clause: &Clause) -> bool {
    let actual = match &clause.meta_key {
        Some(k) => c["metadata"][k].as_str(),
        None => c[&clause.field].as_str(),
    };
    let Some(actual) = actual else { return false };
    if clause.substring {
        actual.to_lowercase().contains(&clause.value.to_lowercase())
    } else if clause.field == "email" {
        actual.eq_ignore_ascii_case(&clause.value)
    } else {
        actual == clause.value
    }
}

pub fn search(req: &Request) -> Result<Response, Error> {
    let mut p = Params::of(req)?;
    let query = p.required_string("query")?;
    let limit = p.int("limit")?.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(errors::invalid(
            "limit",
            "This value must be between 1 and 100.",
        ));
    }
    let next = p.string("page")?;
    let expand = p.finish()?;
    let clauses = parse_query(&query)?;
    let page = Page {
        limit: limit as u32,
        starting_after: next,
        ending_before: None,
    };
    let found = coll(COLL).list_where(&page, true, |c| {
        !is_deleted(c) && clauses.iter().all(|cl| matches(c, cl))
    })?;
    let next_page = match (found.has_more, found.items.last()) {
        (true, Some(last)) => last["id"].clone(),
        _ => Value::Null,
    };
    let mut body = list_body("/v1/customers/search", found, &expand)?;
    body["object"] = json!("search_result");
    body["next_page"] = next_page;
    Ok(Response::ok(&body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_search_queries() {
        let q = parse_query("email:'a@b.c' AND metadata['k']:\"v\" AND name~'jo'").unwrap();
        assert_eq!(q.len(), 3);
        assert_eq!(q[1].meta_key.as_deref(), Some("k"));
        assert!(q[2].substring);
        assert!(parse_query("email=x").is_err());
        assert!(parse_query("bogus:'x'").is_err());
    }
}

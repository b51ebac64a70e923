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
    // A customer on a test clock lives at the clock's time from birth.
    let clock = p.string("test_clock")?;
    let t = match &clock {
        Some(id) => {
            let tc = wire::load_ref("test_clocks", "test_helpers.test_clock", id, "test_clock")?;
            tc["frozen_time"].as_u64().unwrap_or_else(now)
        }
        None => now(),
    };
    wire::at_time(t, || create_at(p, clock))
}

/// A new customer with Stripe's defaults, before any parameter.
fn blank(id: String, clock: Option<String>) -> Value {
    json!({
        "id": id, "object": "customer", "address": null, "balance": 0, "created": now(),
        "currency": null, "default_source": null, "delinquent": false, "description": null,
        "discount": null, "email": null,
        "invoice_prefix": ids::random_base62(8).to_uppercase(),
        "invoice_settings": {"custom_fields": null, "default_payment_method": null,
                             "footer": null, "rendering_options": null},
        "livemode": false, "metadata": {}, "name": null, "next_invoice_sequence": 1,
        "phone": null, "preferred_locales": [], "shipping": null, "tax_exempt": "none",
        "test_clock": clock,
    })
}

fn create_at(mut p: Params, clock: Option<String>) -> Result<Response, Error> {
    let mut c = blank(ids::new("cus"), clock);
    let id = c["id"].as_str().unwrap_or_default().to_owned();
    apply_fields(&mut c, &mut p)?;
    let payment_method = p.string("payment_method")?;
    let expand = p.finish()?;
    let raw = wire::insert_created(COLL, &id, &c, "customer.created")?;
    if let Some(pm) = payment_method {
        payment_methods::attach_to(&pm, &id, "payment_method")?;
    }
    wire::created(&raw, c, &expand)
}

/// The customer a Checkout Session creates for whoever paid.
pub fn create_for_checkout(email: Option<&str>) -> Result<Value, Error> {
    let mut p = Params::of_map(json!({ "email": email.unwrap_or("") }))?;
    let mut c = blank(ids::new("cus"), None);
    apply_fields(&mut c, &mut p)?;
    let id = c["id"].as_str().unwrap_or_default().to_owned();
    wire::insert_created(COLL, &id, &c, "customer.created")?;
    Ok(c)
}

pub fn retrieve(req: &Request) -> Result<Response, Error> {
    let expand = Params::of(req)?.finish()?;
    wire::retrieve(COLL, "customer", wire::id(req), &expand)
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
    crate::subscriptions::end_for_customer(id)?;
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
    let clock = p.string("test_clock")?;
    let expand = p.finish()?;
    let found = coll(COLL).list_where(&page, true, |c| {
        // Test clock customers show only when their clock is asked for.
        let clock_ok = match &clock {
            Some(tc) => c["test_clock"] == json!(tc),
            None => c["test_clock"].is_null(),
        };
        created.matches(c)
            && clock_ok
            && !is_deleted(c)
            && email
                .as_ref()
                .is_none_or(|e| c["email"].as_str() == Some(e))
    })?;
    Ok(Response::ok(&list_body("/v1/customers", found, &expand)?))
}

/// How a clause compares.
#[derive(Debug, PartialEq, Clone, Copy)]
enum Op {
    /// `field:value`: exact (emails case-insensitively).
    Is,
    /// `field~value`: substring, case-insensitive.
    Contains,
    Gt,
    Ge,
    Lt,
    Le,
}

/// One clause of a search query: `field:'value'`, `field~'value'`,
/// `metadata['key']:'value'`, `created>1700000000`, or any of them negated
/// with a leading `-`.
#[derive(Debug, PartialEq)]
struct Clause {
    field: String,
    meta_key: Option<String>,
    op: Op,
    value: String,
    negated: bool,
}

/// A parsed query: clauses joined all by `AND` or all by `OR` (Stripe
/// allows no mixing and no parentheses).
#[derive(Debug, PartialEq)]
struct Query {
    clauses: Vec<Clause>,
    any: bool,
}

fn unquote(s: &str) -> Option<&str> {
    let s = s.trim();
    s.strip_prefix('\'')
        .and_then(|r| r.strip_suffix('\''))
        .or_else(|| s.strip_prefix('"').and_then(|r| r.strip_suffix('"')))
}

/// Splits on whitespace outside quotes.
fn tokens(query: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    for ch in query.chars() {
        match quote {
            Some(q) if ch == q => {
                quote = None;
                current.push(ch);
            }
            Some(_) => current.push(ch),
            None if ch == '\'' || ch == '"' => {
                quote = Some(ch);
                current.push(ch);
            }
            None if ch.is_whitespace() => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            None => current.push(ch),
        }
    }
    if quote.is_some() {
        return None;
    }
    if !current.is_empty() {
        out.push(current);
    }
    Some(out)
}

fn parse_clause(text: &str, bad: &dyn Fn() -> Error) -> Result<Clause, Error> {
    let (negated, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (lhs, rest) = if let Some(inner) = text.strip_prefix("metadata[") {
        let close = inner.find(']').ok_or_else(bad)?;
        (&text[..9 + close + 1], &inner[close + 1..])
    } else {
        let at = text.find([':', '~', '<', '>']).ok_or_else(bad)?;
        text.split_at(at)
    };
    let (op, value) = if let Some(v) = rest.strip_prefix(">=") {
        (Op::Ge, v)
    } else if let Some(v) = rest.strip_prefix("<=") {
        (Op::Le, v)
    } else if let Some(v) = rest.strip_prefix('>') {
        (Op::Gt, v)
    } else if let Some(v) = rest.strip_prefix('<') {
        (Op::Lt, v)
    } else if let Some(v) = rest.strip_prefix(':') {
        (Op::Is, v)
    } else if let Some(v) = rest.strip_prefix('~') {
        (Op::Contains, v)
    } else {
        return Err(bad());
    };
    let (field, meta_key) = match lhs.strip_prefix("metadata[") {
        Some(inner) => {
            let key = inner.strip_suffix(']').and_then(unquote).ok_or_else(bad)?;
            ("metadata".to_owned(), Some(key.to_owned()))
        }
        None => (lhs.trim().to_owned(), None),
    };
    if !matches!(
        field.as_str(),
        "email" | "name" | "phone" | "metadata" | "created"
    ) {
        return Err(errors::invalid(
            "query",
            &format!("Field '{field}' is an unsupported search field for resource `customers`."),
        ));
    }
    let numeric = field == "created";
    let value = match unquote(value) {
        Some(v) => v.to_owned(),
        None if numeric && !value.is_empty() => value.to_owned(),
        None => return Err(bad()),
    };
    if numeric {
        if op == Op::Contains || value.parse::<i64>().is_err() {
            return Err(errors::invalid(
                "query",
                &format!(
                    "Field 'created' takes a Unix timestamp with `:`, `<`, `<=`, `>` or `>=`; \
                     got `{text}`."
                ),
            ));
        }
    } else if !matches!(op, Op::Is | Op::Contains) {
        return Err(errors::invalid(
            "query",
            &format!("Field '{field}' does not support numeric comparisons (`{text}`)."),
        ));
    }
    Ok(Clause {
        field,
        meta_key,
        op,
        value,
        negated,
    })
}

fn parse_query(query: &str) -> Result<Query, Error> {
    let bad = || {
        errors::invalid(
            "query",
            &format!("We were unable to parse your search query. Query: {query}"),
        )
    };
    if query.contains(['(', ')']) {
        return Err(errors::invalid(
            "query",
            &format!("Parentheses are not supported in search queries. Query: {query}"),
        ));
    }
    let words = tokens(query).ok_or_else(bad)?;
    let mut clauses = Vec::new();
    let mut joiner: Option<&str> = None;
    for (i, word) in words.iter().enumerate() {
        if i % 2 == 1 {
            if word != "AND" && word != "OR" {
                return Err(bad());
            }
            if joiner.is_some_and(|j| j != word) {
                return Err(errors::invalid(
                    "query",
                    &format!(
                        "Search queries cannot combine `AND` and `OR` in one query. Query: \
                         {query}"
                    ),
                ));
            }
            joiner = Some(word);
        } else {
            clauses.push(parse_clause(word, &bad)?);
        }
    }
    if clauses.is_empty() || words.len() % 2 == 0 {
        return Err(bad());
    }
    Ok(Query {
        clauses,
        any: joiner == Some("OR"),
    })
}

fn matches(c: &Value, clause: &Clause) -> bool {
    let hit = if clause.field == "created" {
        let (Some(t), Ok(v)) = (c["created"].as_i64(), clause.value.parse::<i64>()) else {
            return false;
        };
        match clause.op {
            Op::Is => t == v,
            Op::Gt => t > v,
            Op::Ge => t >= v,
            Op::Lt => t < v,
            Op::Le => t <= v,
            Op::Contains => false,
        }
    } else {
        let actual = match &clause.meta_key {
            Some(k) => c["metadata"][k].as_str(),
            None => c[&clause.field].as_str(),
        };
        match actual {
            None => false,
            Some(actual) if clause.op == Op::Contains => {
                actual.to_lowercase().contains(&clause.value.to_lowercase())
            }
            Some(actual) if clause.field == "email" => actual.eq_ignore_ascii_case(&clause.value),
            Some(actual) => actual == clause.value,
        }
    };
    hit != clause.negated
}

impl Query {
    fn matches(&self, c: &Value) -> bool {
        if self.any {
            self.clauses.iter().any(|cl| matches(c, cl))
        } else {
            self.clauses.iter().all(|cl| matches(c, cl))
        }
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
    let parsed = parse_query(&query)?;
    let page = Page {
        limit: limit as u32,
        starting_after: next,
        ending_before: None,
    };
    let found = coll(COLL).list_where(&page, true, |c| !is_deleted(c) && parsed.matches(c))?;
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
        assert_eq!(q.clauses.len(), 3);
        assert!(!q.any);
        assert_eq!(q.clauses[1].meta_key.as_deref(), Some("k"));
        assert_eq!(q.clauses[2].op, Op::Contains);
        let q = parse_query("-name:'Ann Lee' OR created>=1700000000").unwrap();
        assert!(q.any && q.clauses[0].negated);
        assert_eq!(q.clauses[0].value, "Ann Lee");
        assert_eq!(q.clauses[1].op, Op::Ge);
        assert!(parse_query("email=x").is_err());
        assert!(parse_query("bogus:'x'").is_err());
        assert!(parse_query("name:'a' AND name:'b' OR name:'c'").is_err());
        assert!(parse_query("(name:'a')").is_err());
        assert!(parse_query("created~'1'").is_err());
        assert!(parse_query("name>'a'").is_err());
        assert!(parse_query("name:'a' AND").is_err());
        assert!(parse_query("name:'unterminated").is_err());
    }

    #[test]
    fn clauses_match_and_negate() {
        let c =
            json!({"name": "Ann Lee", "email": "A@x.io", "created": 100, "metadata": {"k": "v"}});
        assert!(parse_query("email:'a@x.io'").unwrap().matches(&c));
        assert!(parse_query("name~'lee'").unwrap().matches(&c));
        assert!(!parse_query("-metadata['k']:'v'").unwrap().matches(&c));
        assert!(
            parse_query("created<101 AND created>=100")
                .unwrap()
                .matches(&c)
        );
        assert!(parse_query("name:'Bo' OR created:100").unwrap().matches(&c));
        assert!(!parse_query("name:'Bo' OR created>100").unwrap().matches(&c));
    }
}

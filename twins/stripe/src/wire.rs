//! Per-request context and Stripe's wire conventions: the request id and
//! idempotency key, per-account collections, parameters with unknown-key checks,
//! metadata updates and list envelopes.

use std::cell::{Cell, RefCell};

use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use wt_sdk::{Collection, Error, ListPage, Page, Request, Response, clock, scope};

use crate::errors;
use crate::expand;

thread_local! {
    static CONTEXT: RefCell<Context> = RefCell::new(Context::default());
    /// Time in seconds objects are stamped with while work runs "at" another
    /// moment: a test clock's `frozen_time`, or the due time of a renewal
    /// processed late.
    static AT: Cell<Option<u64>> = const { Cell::new(None) };
}

/// What the current request is about.
#[derive(Default, Clone)]
pub struct Context {
    /// This request's `req_…` id.
    pub request_id: String,
    /// The `Idempotency-Key` the client sent.
    pub idempotency_key: Option<String>,
    /// Where the client reached the twin (`Request::base_url`), for URLs
    /// that point back at it.
    pub base_url: String,
}

pub fn set_context(ctx: Context) {
    CONTEXT.with(|c| *c.borrow_mut() = ctx);
    AT.with(|t| t.set(None));
}

/// Runs `f` with [`now`] answering `secs`, so what it creates is stamped
/// with that moment (objects on a test clock, renewals due in the past).
pub fn at_time<T>(secs: u64, f: impl FnOnce() -> T) -> T {
    let previous = AT.with(|t| t.replace(Some(secs)));
    let out = f();
    AT.with(|t| t.set(previous));
    out
}

/// Runs `f` as Stripe's own automation rather than the caller's request:
/// the events it records carry `request: {id: null, idempotency_key: null}`,
/// as renewals and test clock advances do on Stripe.
pub fn automated<T>(f: impl FnOnce() -> T) -> T {
    let saved = CONTEXT.with(|c| {
        let mut c = c.borrow_mut();
        let saved = (c.request_id.clone(), c.idempotency_key.take());
        c.request_id.clear();
        saved
    });
    let out = f();
    CONTEXT.with(|c| {
        let mut c = c.borrow_mut();
        c.request_id = saved.0;
        c.idempotency_key = saved.1;
    });
    out
}

/// Runs `f` on the current request's context, borrowed: every request builds
/// keys from the account, and every event names the request.
pub fn with_context<R>(f: impl FnOnce(&Context) -> R) -> R {
    CONTEXT.with(|c| f(&c.borrow()))
}

/// The current account's collection `name`.
pub fn coll(name: &str) -> Collection<Value> {
    scope::collection(name)
}

/// Twin time in seconds, or the moment [`at_time`] set.
pub fn now() -> u64 {
    AT.with(Cell::get).unwrap_or_else(clock::now_secs)
}

/// A request's parameters (body for writes, query for reads). Handlers take
/// what they know; [`Params::finish`] refuses whatever is left.
pub struct Params {
    map: Map<String, Value>,
    /// `expand[]` paths.
    pub expand: Vec<String>,
}

impl Params {
    pub fn of(req: &Request) -> Result<Params, Error> {
        let value = if matches!(req.method, wt_sdk::Method::Get | wt_sdk::Method::Delete) {
            req.query_form()?
        } else {
            let mut v = req.body_value()?;
            // Some clients put expand in the query of a POST.
            if !req.query.is_empty()
                && let (Value::Object(body), Value::Object(q)) = (&mut v, req.query_form()?)
            {
                for (k, val) in q {
                    body.entry(k).or_insert(val);
                }
            }
            v
        };
        let Value::Object(mut map) = value else {
            return Err(Error::bad_request("The request body must be an object."));
        };
        let expand = match map.remove("expand") {
            None => Vec::new(),
            Some(Value::String(s)) if s.is_empty() => Vec::new(),
            Some(Value::String(s)) => vec![s],
            Some(Value::Array(items)) => items
                .into_iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Some(_) => return Err(errors::invalid("expand", "Invalid array")),
        };
        Ok(Params { map, expand })
    }

    /// Parameters from a value already parsed (a nested hash taken apart).
    pub fn of_map(value: Value) -> Result<Params, Error> {
        match value {
            Value::Object(map) => Ok(Params {
                map,
                expand: Vec::new(),
            }),
            _ => Err(Error::bad_request("Invalid hash")),
        }
    }

    /// The names of the parameters not taken yet.
    pub fn keys(&self) -> Vec<String> {
        self.map.keys().cloned().collect()
    }

    /// The raw value, as sent (`""` means "unset").
    pub fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key)
    }

    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// A string; `None` when absent. `Some(None)` when sent empty (unset).
    pub fn opt_string(&mut self, key: &str) -> Result<Option<Option<String>>, Error> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(Some(None)),
            Some(Value::String(s)) => Ok(Some(Some(s))),
            Some(Value::Number(n)) => Ok(Some(Some(n.to_string()))),
            Some(Value::Bool(b)) => Ok(Some(Some(b.to_string()))),
            Some(_) => Err(errors::invalid(key, &format!("Invalid string: {key}"))),
        }
    }

    /// A non-empty string, or `None`.
    pub fn string(&mut self, key: &str) -> Result<Option<String>, Error> {
        Ok(self.opt_string(key)?.flatten())
    }

    pub fn required_string(&mut self, key: &str) -> Result<String, Error> {
        self.string(key)?.ok_or_else(|| errors::missing(key))
    }

    pub fn int(&mut self, key: &str) -> Result<Option<i64>, Error> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| errors::invalid_integer(key, &s)),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| errors::invalid_integer(key, &n.to_string())),
            Some(other) => Err(errors::invalid_integer(key, &other.to_string())),
        }
    }

    pub fn bool(&mut self, key: &str) -> Result<Option<bool>, Error> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => match s.as_str() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                _ => Err(errors::invalid_boolean(key, &s)),
            },
            Some(other) => Err(errors::invalid_boolean(key, &other.to_string())),
        }
    }

    /// A list of strings (`k[]=a&k[]=b`, or one `k=a`).
    pub fn strings(&mut self, key: &str) -> Result<Option<Vec<String>>, Error> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(Some(Vec::new())),
            Some(Value::String(s)) => Ok(Some(vec![s])),
            Some(Value::Array(items)) => Ok(Some(
                items
                    .into_iter()
                    .map(|v| match v {
                        Value::String(s) => Ok(s),
                        _ => Err(errors::invalid(key, "Invalid array")),
                    })
                    .collect::<Result<_, _>>()?,
            )),
            Some(_) => Err(errors::invalid(key, "Invalid array")),
        }
    }

    /// A hash of sub-parameters, itself checked by the caller.
    pub fn hash(&mut self, key: &str) -> Result<Option<Params>, Error> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Params {
                map,
                expand: Vec::new(),
            })),
            Some(_) => Err(errors::invalid(key, "Invalid hash")),
        }
    }

    /// Takes the list parameters (`limit`, `starting_after`, `ending_before`).
    pub fn page(&mut self, req: &Request) -> Result<Page, Error> {
        for k in ["limit", "starting_after", "ending_before"] {
            self.map.remove(k);
        }
        Page::from_query(req, 10, 100).map_err(|e| {
            let param = e.param.clone();
            match (param, e.message.starts_with("Invalid integer")) {
                (Some(p), true) => e.with_code("parameter_invalid_integer").with_param(p),
                _ => e,
            }
        })
    }

    /// Refuses any parameter nobody took (`prefix` names the hash).
    pub fn finish(self) -> Result<Vec<String>, Error> {
        self.finish_in("")
    }

    pub fn finish_in(self, prefix: &str) -> Result<Vec<String>, Error> {
        if let Some(key) = self.map.keys().next() {
            let name = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}[{key}]")
            };
            return Err(errors::unknown(&name));
        }
        Ok(self.expand)
    }
}

/// Applies a `metadata` parameter to an object's metadata: `metadata=`
/// clears it, `metadata[k]=` removes `k`, `metadata[k]=v` sets it.
pub fn apply_metadata(target: &mut Value, param: Option<Value>) -> Result<(), Error> {
    let Some(param) = param else { return Ok(()) };
    if !target["metadata"].is_object() {
        target["metadata"] = json!({});
    }
    match param {
        Value::String(s) if s.is_empty() => target["metadata"] = json!({}),
        Value::Object(entries) => {
            let meta = target["metadata"].as_object_mut().expect("object");
            for (k, v) in entries {
                match v {
                    Value::String(s) if s.is_empty() => {
                        meta.remove(&k);
                    }
                    Value::String(s) => {
                        meta.insert(k, Value::String(s));
                    }
                    Value::Number(_) | Value::Bool(_) => {
                        meta.insert(k, Value::String(v.to_string()));
                    }
                    _ => return Err(errors::invalid(&format!("metadata[{k}]"), "Invalid string")),
                }
            }
        }
        _ => return Err(errors::invalid("metadata", "Invalid hash")),
    }
    Ok(())
}

/// Sets `field` from an optional string parameter (`""` → null).
pub fn set_opt(target: &mut Value, field: &str, v: Option<Option<String>>) {
    if let Some(v) = v {
        target[field] = v.map_or(Value::Null, Value::String);
    }
}

/// Stripe's list envelope, with `data.…` expansions applied to each item.
pub fn list_body(url: &str, page: ListPage<Value>, expand: &[String]) -> Result<Value, Error> {
    let mut data = page.items;
    for item in &mut data {
        expand::apply_list(item, expand)?;
    }
    Ok(json!({"object": "list", "data": data, "has_more": page.has_more, "url": url}))
}

/// Loads `id` from collection `name`, or 404 `No such {object}: '{id}'`.
pub fn load(name: &str, object: &str, id: &str) -> Result<Value, Error> {
    coll(name)
        .get(id)?
        .ok_or_else(|| Error::resource_missing(object, id))
}

/// A retrieve's answer: the stored object with `expand` applied (a deleted
/// object has nothing to expand). With nothing to expand the stored JSON is
/// served as it is, byte for byte what decoding and re-encoding it would
/// give.
pub fn retrieve(name: &str, object: &str, id: &str, expand: &[String]) -> Result<Response, Error> {
    if expand.is_empty() {
        let raw = coll(name)
            .get_raw(id)?
            .ok_or_else(|| Error::resource_missing(object, id))?;
        return Ok(Response::ok(&*raw));
    }
    let mut value = load(name, object, id)?;
    if value["deleted"] != json!(true) {
        expand::apply(&mut value, expand)?;
    }
    Ok(Response::ok(&value))
}

/// Stores a new object and records its `<kind>.created` event from one
/// encoding of it, which it returns: a create that expands nothing answers
/// with exactly that text ([`created`]).
pub fn insert_created(
    name: &str,
    id: &str,
    object: &Value,
    event: &str,
) -> Result<Box<RawValue>, Error> {
    let raw = serde_json::value::to_raw_value(object)
        .map_err(|e| Error::internal(format!("cannot encode {id}: {e}")))?;
    coll(name).insert_raw(id, &raw)?;
    crate::events::record_raw(event, &raw, None)?;
    Ok(raw)
}

/// The answer to a create: the object as [`insert_created`] encoded it, or,
/// when something is expanded, `object` with those paths expanded.
pub fn created(raw: &RawValue, mut object: Value, expand: &[String]) -> Result<Response, Error> {
    if expand.is_empty() {
        return Ok(Response::ok(raw));
    }
    expand::apply(&mut object, expand)?;
    Ok(Response::ok(&object))
}

/// A list of a whole collection, newest first, with the usual paging and
/// `expand` parameters and nothing else.
pub fn list_all(req: &Request, name: &str, url: &str) -> Result<Response, Error> {
    let mut p = Params::of(req)?;
    let page = p.page(req)?;
    let expand = p.finish()?;
    let found = coll(name).list(&page, true)?;
    Ok(Response::ok(&list_body(url, found, &expand)?))
}

/// Loads an object a parameter refers to: a missing one is a 400 naming the
/// parameter, as Stripe does for references.
pub fn load_ref(name: &str, object: &str, id: &str, param: &str) -> Result<Value, Error> {
    coll(name).get(id)?.ok_or_else(|| {
        let mut e = Error::resource_missing(object, id).with_param(param);
        e.status = 400;
        e
    })
}

/// The `id` route parameter.
pub fn id(req: &Request) -> &str {
    req.param("id").unwrap_or_default()
}

/// A `created` list filter: an exact time, or a hash of `gt`/`gte`/`lt`/`lte`.
#[derive(Default, Debug, Clone, PartialEq)]
pub struct Created {
    pub gt: Option<i64>,
    pub gte: Option<i64>,
    pub lt: Option<i64>,
    pub lte: Option<i64>,
}

impl Created {
    /// Whether `obj["created"]` passes the filter.
    pub fn matches(&self, obj: &Value) -> bool {
        let Some(t) = obj["created"].as_i64() else {
            return self == &Created::default();
        };
        self.gt.is_none_or(|x| t > x)
            && self.gte.is_none_or(|x| t >= x)
            && self.lt.is_none_or(|x| t < x)
            && self.lte.is_none_or(|x| t <= x)
    }
}

impl Params {
    /// Takes the `created` filter.
    pub fn created(&mut self) -> Result<Created, Error> {
        if self.map.get("created").is_some_and(Value::is_string) {
            let at = self.int("created")?;
            return Ok(Created {
                gte: at,
                lte: at,
                ..Created::default()
            });
        }
        let Some(mut h) = self.hash("created")? else {
            return Ok(Created::default());
        };
        let (gt, gte) = (h.int("gt")?, h.int("gte")?);
        let (lt, lte) = (h.int("lt")?, h.int("lte")?);
        h.finish_in("created")?;
        Ok(Created { gt, gte, lt, lte })
    }
}

/// Text made safe to put in the twin's small HTML pages.
pub fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Makes `id` reachable by the twin's key-less hosted pages (a Checkout
/// Session's `url`, an invoice's `hosted_invoice_url`): a global entry
/// `page/{id}` names the account that owns it.
pub fn publish_page(id: &str) -> Result<(), Error> {
    scope::with_account(|account| wt_sdk::store::set(&format!("page/{id}"), account.as_bytes()))?;
    Ok(())
}

/// The account whose object a hosted page shows, if published.
pub fn page_owner(id: &str) -> Option<String> {
    wt_sdk::store::get(&format!("page/{id}")).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// One page of a list held inside another object (invoice lines, a
/// subscription's items, a session's line items), with the same cursor
/// rules as stored collections: an unknown cursor is a 404 naming it.
pub fn page_of(items: Vec<Value>, page: &Page) -> Result<ListPage<Value>, Error> {
    let limit = page.limit as usize;
    let position = |id: &str, param: &str| {
        items
            .iter()
            .position(|v| v["id"] == json!(id))
            .ok_or_else(|| Error::resource_missing("object", id).with_param(param))
    };
    if let Some(after) = &page.starting_after {
        let at = position(after, "starting_after")?;
        let rest: Vec<Value> = items[at + 1..].to_vec();
        let has_more = rest.len() > limit;
        return Ok(ListPage {
            items: rest.into_iter().take(limit).collect(),
            has_more,
        });
    }
    if let Some(before) = &page.ending_before {
        let at = position(before, "ending_before")?;
        let start = at.saturating_sub(limit);
        return Ok(ListPage {
            items: items[start..at].to_vec(),
            has_more: start > 0,
        });
    }
    let has_more = items.len() > limit;
    Ok(ListPage {
        items: items.into_iter().take(limit).collect(),
        has_more,
    })
}

/// An embedded list object (`items` of a subscription, `lines` of an
/// invoice). It holds every entry (the twin keeps the canonical copy
/// there); the paged endpoints serve longer lists page by page.
pub fn embedded_list(url: String, data: Vec<Value>) -> Value {
    let total = data.len();
    json!({"object": "list", "data": data, "has_more": false,
           "total_count": total, "url": url})
}

//! Clerk's wire conventions: secret keys and accounts, the error envelope
//! `{"errors":[{message, long_message, code, meta}], "clerk_trace_id"}`,
//! JSON bodies, `limit`/`offset` pagination with `order_by`, and metadata
//! merging.

use serde_json::{Map, Value, json};
use wt_sdk::{Collection, Error, Request, Response, auth, clock, ids};

/// Most items one list returns (Clerk's `limit` maximum).
pub const MAX_LIMIT: usize = 500;
/// `limit` when none is given.
pub const DEFAULT_LIMIT: usize = 10;
/// Most objects of one kind a list walks through. A twin account holds test
/// data, far below this.
pub const MAX_SCAN: u32 = 9_999;

/// The current request's account (the secret key itself), and store keys
/// under it.
pub use wt_sdk::scope::{account, key};

/// Whether `key` looks like a Clerk secret key: `sk_test_` or `sk_live_`
/// and then letters and digits.
pub fn well_formed(key: &str) -> bool {
    auth::is_key_shaped(key, &["sk_test_", "sk_live_"], b"")
}

/// The account named by `Authorization: Bearer sk_…`.
pub fn authenticate(request: &Request) -> Result<String, Error> {
    match auth::credentials(request) {
        Ok(Some(auth::Credentials::Bearer(key))) if well_formed(&key) => Ok(key),
        _ => Err(error(
            401,
            "authentication_invalid",
            "Invalid authentication",
            "Unable to authenticate the request, you need to supply an active API key",
        )),
    }
}

/// An error in Clerk's vocabulary. The short `message` travels in the
/// error's `kind`, the `long_message` in its `message`.
pub fn error(status: u16, code: &str, message: &str, long_message: impl Into<String>) -> Error {
    Error::new(status, message, long_message).with_code(code)
}

/// Adds `meta.param_name`, as Clerk does for form errors.
pub fn with_param(err: Error, param: &str) -> Error {
    err.with_extra("meta", json!({ "param_name": param }))
}

/// 404 `resource_not_found`.
pub fn not_found(what: &str) -> Error {
    error(
        404,
        "resource_not_found",
        "not found",
        format!("{what} not found"),
    )
}

/// 422 `form_param_format_invalid` for `param`.
pub fn invalid(param: &str, long_message: impl Into<String>) -> Error {
    with_param(
        error(422, "form_param_format_invalid", "is invalid", long_message),
        param,
    )
}

/// 422 `form_param_missing` for `param`.
pub fn missing(param: &str) -> Error {
    with_param(
        error(
            422,
            "form_param_missing",
            "missing",
            format!("{param} must be included."),
        ),
        param,
    )
}

/// 422 `form_param_value_invalid` for `param`.
pub fn value_invalid(param: &str, long_message: impl Into<String>) -> Error {
    with_param(
        error(422, "form_param_value_invalid", "is invalid", long_message),
        param,
    )
}

/// Renders any error as Clerk does. Errors raised outside the twin's own
/// vocabulary (the router's 404 and 405, store failures) get the code Clerk
/// uses for their status.
pub fn render(err: &Error) -> Response {
    let clerk_code = err.code.as_deref().filter(|c| *c != "resource_missing");
    let (code, message, long) = match clerk_code {
        Some(code) if err.status < 500 => {
            // Clerk's own errors carry the short message in `kind`.
            let short = match err.kind.as_str() {
                "" => "invalid request",
                kind => kind,
            };
            (code.to_owned(), short.to_owned(), err.message.clone())
        }
        _ => match err.status {
            404 => (
                "resource_not_found".to_owned(),
                "not found".to_owned(),
                err.message.clone(),
            ),
            405 => (
                "request_method_not_allowed".to_owned(),
                "method not allowed".to_owned(),
                err.message.clone(),
            ),
            s if s < 500 => (
                "request_invalid".to_owned(),
                "invalid request".to_owned(),
                err.message.clone(),
            ),
            _ => (
                "internal_clerk_error".to_owned(),
                "Oops, an unexpected error occurred".to_owned(),
                err.message.clone(),
            ),
        },
    };
    let mut item = json!({"message": message, "long_message": long, "code": code});
    if let Some(meta) = err.extra.get("meta") {
        item["meta"] = meta.clone();
    }
    Response::json(
        err.status,
        &json!({"errors": [item], "clerk_trace_id": ids::random_base62(32).to_ascii_lowercase()}),
    )
}

/// The JSON body as an object (`{}` when empty); anything else is 400.
pub fn body(req: &Request) -> Result<Map<String, Value>, Error> {
    if req.body.trim_ascii().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_slice(&req.body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(error(
            400,
            "malformed_request",
            "malformed request",
            "The request body is not a valid JSON object.",
        )),
    }
}

/// A string field: absent or `null` is `None`; another type is 422.
pub fn string(body: &mut Map<String, Value>, field: &str) -> Result<Option<String>, Error> {
    match body.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(field, format!("{field} must be a string."))),
    }
}

/// A required, non-empty string field.
pub fn required_string(body: &mut Map<String, Value>, field: &str) -> Result<String, Error> {
    string(body, field)?
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| missing(field))
}

/// A boolean field.
pub fn boolean(body: &mut Map<String, Value>, field: &str) -> Result<Option<bool>, Error> {
    match body.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(_) => Err(invalid(field, format!("{field} must be a boolean."))),
    }
}

/// A non-negative integer field.
pub fn integer(body: &mut Map<String, Value>, field: &str) -> Result<Option<u64>, Error> {
    match body.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| invalid(field, format!("{field} must be a non-negative integer."))),
    }
}

/// A metadata field: an object, or `None` when absent or `null`.
pub fn metadata(
    body: &mut Map<String, Value>,
    field: &str,
) -> Result<Option<Map<String, Value>>, Error> {
    match body.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(invalid(field, format!("{field} must be an object."))),
    }
}

/// Merges `patch` into `target` the way Clerk's metadata endpoints do:
/// objects merge key by key, recursively; a `null` deletes the key; any
/// other value replaces.
pub fn deep_merge(target: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (k, v) in patch {
        match v {
            Value::Null => {
                target.remove(&k);
            }
            Value::Object(inner) => match target.get_mut(&k) {
                Some(Value::Object(existing)) => deep_merge(existing, inner),
                _ => {
                    let mut fresh = Map::new();
                    deep_merge(&mut fresh, inner);
                    target.insert(k, Value::Object(fresh));
                }
            },
            other => {
                target.insert(k, other);
            }
        }
    }
}

/// The current account's collection `name`.
pub fn coll(name: &str) -> Collection<Value> {
    wt_sdk::scope::collection(name)
}

/// Every object of the current account's collection `name`, oldest first.
pub fn all(name: &str) -> Result<Vec<Value>, Error> {
    Ok(coll(name)
        .list(&wt_sdk::Page::first(MAX_SCAN), false)?
        .items)
}

/// The account's instance id (`ins_…`): the `kid` of its signing key and
/// the `instance_id` of its webhook events, as on Clerk. Made on first use.
pub fn instance_id() -> Result<String, Error> {
    let k = key("instance_id");
    if let Some(id) = wt_sdk::store::get(&k) {
        return Ok(String::from_utf8_lossy(&id).into_owned());
    }
    let id = new_id("ins");
    wt_sdk::store::set(&k, id.as_bytes())?;
    Ok(id)
}

/// Twin time in milliseconds: Clerk's timestamps are Unix milliseconds.
pub fn now() -> u64 {
    clock::now_millis()
}

/// A Clerk id: `{prefix}_` and 27 base62 characters (`user_2abc…`).
pub fn new_id(prefix: &str) -> String {
    ids::new_with_len(prefix, 27)
}

/// The route parameter `name`.
pub fn param<'a>(req: &'a Request, name: &str) -> &'a str {
    req.param(name).unwrap_or_default()
}

/// Every value of the repeated query parameter `name` (`email_address=a&
/// email_address=b`, as the SDKs send arrays, and the `name[]=` spelling
/// too), skipping empty ones.
pub fn query_list(req: &Request, name: &str) -> Vec<String> {
    let bracketed = format!("{name}[]");
    req.query_pairs()
        .into_iter()
        .filter(|(k, v)| (k == name || *k == bracketed) && !v.trim().is_empty())
        .map(|(_, v)| v.trim().to_owned())
        .collect()
}

/// A boolean query parameter (`true`/`false`), `None` when absent.
pub fn query_bool(req: &Request, name: &str) -> Result<Option<bool>, Error> {
    match req.query_param(name).as_deref() {
        None | Some("") => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(_) => Err(value_invalid(
            name,
            format!("{name} must be true or false."),
        )),
    }
}

/// `limit` (1–500, default 10) and `offset` (≥ 0) from the query.
pub fn paging(req: &Request) -> Result<(usize, usize), Error> {
    let mut limit = DEFAULT_LIMIT;
    let mut offset = 0;
    if let Some(v) = req.query_param("limit").filter(|v| !v.is_empty()) {
        limit = v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                value_invalid(
                    "limit",
                    format!("limit must be a number between 1 and {MAX_LIMIT}."),
                )
            })?;
    }
    if let Some(v) = req.query_param("offset").filter(|v| !v.is_empty()) {
        offset = v.trim().parse::<usize>().map_err(|_| {
            value_invalid(
                "offset",
                "offset must be a number greater than or equal to 0.",
            )
        })?;
    }
    Ok((limit, offset))
}

/// One page of `items` by `limit` and `offset`.
pub fn page(items: Vec<Value>, limit: usize, offset: usize) -> Vec<Value> {
    items.into_iter().skip(offset).take(limit).collect()
}

/// Sorts by `order_by` (`+field` or `-field`, descending by default as on
/// Clerk) among `allowed`; `sort_key` gives an item's value for a field.
/// `items` come oldest first; ties keep creation order in the direction of
/// the sort, and items without a value come last either way.
pub fn order(
    req: &Request,
    items: &mut Vec<Value>,
    default: &str,
    allowed: &[&str],
    sort_key: impl Fn(&Value, &str) -> Value,
) -> Result<(), Error> {
    let spec = req
        .query_param("order_by")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| default.to_owned());
    let (descending, field) = match spec.as_bytes().first() {
        Some(b'+') => (false, &spec[1..]),
        Some(b'-') => (true, &spec[1..]),
        _ => (true, spec.as_str()),
    };
    if !allowed.contains(&field) {
        return Err(value_invalid(
            "order_by",
            format!(
                "order_by must be one of {}, optionally prefixed with + or -.",
                allowed.join(", ")
            ),
        ));
    }
    let (mut keyed, mut unkeyed): (Vec<Keyed>, Vec<Keyed>) = items
        .drain(..)
        .map(|item| (sort_key(&item, field), item))
        .partition(|(k, _)| !k.is_null());
    keyed.sort_by(|a, b| compare(&a.0, &b.0));
    if descending {
        keyed.reverse();
        unkeyed.reverse();
    }
    items.extend(keyed.into_iter().chain(unkeyed).map(|(_, item)| item));
    Ok(())
}

/// An item with its sort key.
type Keyed = (Value, Value);

/// Orders non-null JSON scalars: numbers numerically, strings
/// case-insensitively.
fn compare(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .unwrap_or_default()
            .total_cmp(&y.as_f64().unwrap_or_default()),
        (Value::String(x), Value::String(y)) => x.to_lowercase().cmp(&y.to_lowercase()),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => std::cmp::Ordering::Equal,
    }
}

/// `{"object":"total_count","total_count":n}`.
pub fn total_count(n: usize) -> Response {
    Response::ok(&json!({"object": "total_count", "total_count": n}))
}

/// `{"object":…,"id":…,"deleted":true}`.
pub fn deleted(object: &str, id: &str) -> Response {
    Response::ok(&json!({"object": object, "id": id, "deleted": true}))
}

/// Percent-encodes everything but unreserved characters (RFC 3986), for a
/// value placed in a URL's query.
pub fn percent_encode(s: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

//! Resend's wire conventions: API keys and accounts, the error envelope
//! `{"statusCode","name","message"}`, JSON bodies, cursor lists
//! (`limit`/`after`/`before`) and timestamps.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use wt_sdk::store::get_json;
use wt_sdk::{Collection, Error, Page, Request, Response, auth, clock, datetime, ids};

/// Who the current request is from.
#[derive(Default, Clone, Debug)]
pub struct Caller {
    /// The account: the key itself, or for a key made with `POST /api-keys`
    /// the key of the account that made it.
    pub account: String,
    /// A `sending_access` key may only send.
    pub sending_only: bool,
}

/// The current request's account: the scope its objects are kept under.
pub use wt_sdk::scope::account;

/// What `tokens/{token}` holds for a key created through the API.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Token {
    pub account: String,
    pub id: String,
    pub permission: String,
    pub revoked: bool,
}

pub fn token_key(token: &str) -> String {
    format!("tokens/{token}")
}

/// Whether `key` looks like a Resend API key: `re_` and then letters,
/// digits and underscores.
pub fn well_formed(key: &str) -> bool {
    auth::is_key_shaped(key, &["re_"], b"_")
}

/// Reads the `Authorization: Bearer re_…` header: whose key it is.
pub fn authenticate(request: &Request) -> Result<Caller, Error> {
    // `Bearer` with no token (what an SDK with an empty key sends) is a
    // missing key, not a malformed one.
    let empty_bearer = request
        .header("authorization")
        .is_some_and(|h| h.trim().eq_ignore_ascii_case("bearer"));
    let key = match auth::credentials(request) {
        _ if empty_bearer => return Err(missing_key()),
        Ok(None) => return Err(missing_key()),
        Ok(Some(auth::Credentials::Bearer(key))) => key,
        Ok(Some(_)) | Err(_) => return Err(invalid_key()),
    };
    if !well_formed(&key) {
        return Err(invalid_key());
    }
    match get_json::<Token>(&token_key(&key))? {
        Some(t) if t.revoked => Err(invalid_key()),
        Some(t) => Ok(Caller {
            account: t.account,
            sending_only: t.permission == "sending_access",
        }),
        None => Ok(Caller {
            account: key,
            sending_only: false,
        }),
    }
}

fn missing_key() -> Error {
    error(
        401,
        "missing_api_key",
        "Missing API key in the authorization header. Include the following header \
         Authorization: Bearer YOUR_API_KEY in the request.",
    )
}

fn invalid_key() -> Error {
    error(403, "invalid_api_key", "API key is invalid")
}

/// An error in Resend's vocabulary: `name` goes out as the body's `name`.
pub fn error(status: u16, name: &str, message: impl Into<String>) -> Error {
    Error::new(status, "resend_error", message).with_code(name)
}

/// 422 `missing_required_field`: ``Missing `field` field.``
pub fn missing(field: &str) -> Error {
    error(
        422,
        "missing_required_field",
        format!("Missing `{field}` field."),
    )
}

/// 422 `validation_error`.
pub fn invalid(message: impl Into<String>) -> Error {
    error(422, "validation_error", message)
}

/// 404 `not_found`: `{what} not found`.
pub fn not_found(what: &str) -> Error {
    error(404, "not_found", format!("{what} not found"))
}

/// Renders any error as `{"statusCode","name","message"}`; errors without a
/// Resend name (the router's 404/405, store failures) get the name Resend
/// uses for their status.
pub fn render(err: &Error) -> Response {
    let name = match err.code.as_deref() {
        Some("resource_missing") => "not_found",
        Some(code) => code,
        None => match err.status {
            400 | 422 => "validation_error",
            401 => "missing_api_key",
            403 => "invalid_api_key",
            404 => "not_found",
            405 => "method_not_allowed",
            429 => "rate_limit_exceeded",
            _ => "application_error",
        },
    };
    Response::json(
        err.status,
        &json!({"statusCode": err.status, "name": name, "message": err.message}),
    )
}

/// The JSON body as an object (`{}` when empty).
pub fn body(req: &Request) -> Result<Map<String, Value>, Error> {
    match body_value(req)? {
        Value::Object(map) => Ok(map),
        _ => Err(invalid("The request body must be a JSON object.")),
    }
}

/// The JSON body, whatever it is (`{}` when empty).
pub fn body_value(req: &Request) -> Result<Value, Error> {
    if req.body.trim_ascii().is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(&req.body).map_err(|e| {
        error(
            400,
            "validation_error",
            format!("The request body is not valid JSON: {e}"),
        )
    })
}

/// The current account's collection `name`.
pub fn coll(name: &str) -> Collection<Value> {
    wt_sdk::scope::collection(name)
}

/// The `id` route parameter.
pub fn id(req: &Request) -> &str {
    req.param("id").unwrap_or_default()
}

/// The object of collection `name` the route's UUID `id` names (any case),
/// or 422 when it is not a UUID, or 404 `{what} not found`.
pub fn load_by_uuid(req: &Request, name: &str, what: &str) -> Result<Value, Error> {
    let id = id(req);
    if !ids::is_uuid(id) {
        return Err(invalid("The `id` must be a valid UUID."));
    }
    coll(name)
        .get(&id.to_ascii_lowercase())?
        .ok_or_else(|| not_found(what))
}

/// Twin time in milliseconds.
pub fn now_ms() -> u64 {
    clock::now_millis()
}

/// A timestamp the way Resend writes it: `2024-08-05T11:52:01.858+00:00`.
pub fn iso(ms: u64) -> String {
    let s = datetime::format_millis(ms);
    format!("{}+00:00", &s[..s.len() - 1])
}

/// A list page from `?limit=&after=&before=`, newest first, each item
/// shown through `show`: `{"object":"list","has_more","data"}`.
pub fn list(
    req: &Request,
    coll: &Collection<Value>,
    show: impl Fn(&Value) -> Value,
) -> Result<Response, Error> {
    let mut page = Page::first(20);
    for (k, v) in req.query_pairs() {
        match k.as_str() {
            "limit" => {
                let n: u32 = v
                    .trim()
                    .parse()
                    .ok()
                    .filter(|n| (1..=100).contains(n))
                    .ok_or_else(|| {
                        invalid("The `limit` parameter must be an integer between 1 and 100.")
                    })?;
                page.limit = n;
            }
            "after" if !v.is_empty() => page.starting_after = Some(v),
            "before" if !v.is_empty() => page.ending_before = Some(v),
            _ => {}
        }
    }
    if page.starting_after.is_some() && page.ending_before.is_some() {
        return Err(invalid(
            "You can only use one of `after` or `before`, not both.",
        ));
    }
    for cursor in [&page.starting_after, &page.ending_before]
        .into_iter()
        .flatten()
    {
        if !coll.contains(cursor) {
            return Err(invalid(format!(
                "The cursor `{cursor}` does not name an object in this list."
            )));
        }
    }
    let listed = coll.list(&page, true)?;
    let data: Vec<Value> = listed.items.iter().map(show).collect();
    Ok(Response::ok(
        &json!({"object": "list", "has_more": listed.has_more, "data": data}),
    ))
}

/// Copies `fields` of `obj` (missing ones as null) into a new object.
pub fn pick(obj: &Value, fields: &[&str]) -> Value {
    let mut out = Map::new();
    for f in fields {
        out.insert((*f).to_owned(), obj.get(*f).cloned().unwrap_or(Value::Null));
    }
    Value::Object(out)
}

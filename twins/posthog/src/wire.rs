//! PostHog's wire conventions: the error envelope
//! `{"type","code","detail","attr"}`, project API keys (`phc_…`) and
//! personal API keys (`phx_…`), projects, and the request bodies ingestion
//! accepts (JSON, gzip, base64 `data=` forms).

use std::borrow::Cow;

use base64::Engine as _;
use serde_json::{Map, Value, json};
use wt_sdk::store::{get_json, increment, set_json};
use wt_sdk::{Error, Request, Response, auth, compression, form};

/// An error in PostHog's vocabulary: `kind` is the body's `type`
/// (`validation_error`, `authentication_error`, `invalid_request`,
/// `server_error`), `code` its `code`, `param` its `attr`.
pub fn error(status: u16, kind: &str, code: &str, detail: impl Into<String>) -> Error {
    Error::new(status, kind, detail).with_code(code)
}

/// 400 `validation_error` about one field (`attr`).
pub fn invalid(code: &str, attr: &str, detail: impl Into<String>) -> Error {
    error(400, "validation_error", code, detail).with_param(attr)
}

/// 404 `{"type":"invalid_request","code":"not_found","detail":"Not found."}`,
/// what Django REST framework answers for an unknown object.
pub fn not_found() -> Error {
    error(404, "invalid_request", "not_found", "Not found.")
}

/// Renders any error as `{"type","code","detail","attr"}`. Errors that did
/// not come from this module (the router's 404 and 405, store failures) are
/// mapped to what PostHog answers for their status.
pub fn render(err: &Error) -> Response {
    let kind = match (err.kind.as_str(), err.status) {
        ("", s) if s >= 500 => "server_error",
        ("", 400) => "validation_error",
        ("", 401) => "authentication_error",
        ("", _) => "invalid_request",
        (kind, _) => kind,
    };
    let code = err.code.as_deref().unwrap_or(match err.status {
        400 => "invalid_input",
        404 => "not_found",
        405 => "method_not_allowed",
        _ => "error",
    });
    let detail = match (err.status, err.code.as_deref()) {
        (404, None) => "Not found.".to_owned(),
        // The router says "Method PUT is not allowed for /x."; DRF says this.
        (405, None) => err
            .message
            .strip_prefix("Method ")
            .and_then(|m| m.split_once(' '))
            .map_or_else(
                || err.message.clone(),
                |(method, _)| format!("Method \"{method}\" not allowed."),
            ),
        _ => err.message.clone(),
    };
    Response::json(
        err.status,
        &json!({"type": kind, "code": code, "detail": detail, "attr": err.param}),
    )
}

/// A management API body: a JSON object, as Django REST framework parses
/// it (an empty body is an empty object; anything else is a 400 naming the
/// type it got).
pub fn object_body(request: &Request) -> Result<Map<String, Value>, Error> {
    if request.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(&request.body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => {
            let got = match other {
                Value::Array(_) => "list",
                Value::String(_) => "str",
                Value::Number(n) if n.is_f64() => "float",
                Value::Number(_) => "int",
                Value::Bool(_) => "bool",
                _ => "NoneType",
            };
            Err(invalid(
                "invalid_input",
                "non_field_errors",
                format!("Invalid data. Expected a dictionary, but got {got}."),
            ))
        }
        Err(e) => Err(error(
            400,
            "validation_error",
            "parse_error",
            format!("JSON parse error - {e}"),
        )),
    }
}

/// 400 for invalid flag or cohort `filters`.
pub fn filters_error(detail: &str) -> Error {
    invalid("invalid_input", "filters", detail)
}

/// Whether `key` is a project API key (`phc_…`). Every well-formed one is
/// its own project, created the first time it is seen.
pub fn is_project_key(key: &str) -> bool {
    auth::is_key_shaped(key, &["phc_"], b"_-")
}

/// Whether `key` is a personal API key (`phx_…`). Any well-formed one is a
/// user with access to every project in the twin.
pub fn is_personal_key(key: &str) -> bool {
    auth::is_key_shaped(key, &["phx_"], b"_-")
}

/// 401 for a request that names no project key.
pub fn missing_project_key() -> Error {
    error(
        401,
        "authentication_error",
        "missing_api_key",
        "API key not provided. You can find your project API key in PostHog project settings.",
    )
}

/// 401 for a project key that is not one.
pub fn invalid_project_key() -> Error {
    error(
        401,
        "authentication_error",
        "invalid_api_key",
        "Project API key invalid. You can find your project API key in PostHog project settings.",
    )
}

/// Checks a project key and returns its project, creating it on first use.
pub fn project_for_key(key: &str) -> Result<Project, Error> {
    if !is_project_key(key) {
        return Err(invalid_project_key());
    }
    Project::for_token(key)
}

/// A project: a numeric id (what PostHog's URLs use) and its API token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// The numeric id, handed out in order of first use.
    pub id: u64,
    /// The `phc_…` token.
    pub token: String,
}

impl Project {
    /// The project of `token`, created (with the next id) when new.
    pub fn for_token(token: &str) -> Result<Project, Error> {
        let by_token = format!("projects/by-token/{token}");
        if let Some(id) = get_json::<u64>(&by_token)? {
            return Ok(Project {
                id,
                token: token.to_owned(),
            });
        }
        let id = u64::try_from(increment("projects/seq", 1)?)
            .map_err(|_| Error::internal("project sequence is negative"))?;
        set_json(&by_token, &id)?;
        set_json(&format!("projects/by-id/{id}"), token)?;
        Ok(Project {
            id,
            token: token.to_owned(),
        })
    }

    /// The project with numeric id `id`, if one was created.
    pub fn by_id(id: u64) -> Result<Option<Project>, Error> {
        Ok(get_json::<String>(&format!("projects/by-id/{id}"))?.map(|token| Project { id, token }))
    }

    /// The store prefix of everything the project owns.
    pub fn prefix(&self) -> String {
        format!("p/{}", self.id)
    }

    /// The project as `GET /api/projects/{id}/` shows it.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "uuid": format!("00000000-0000-4000-8000-{:012x}", self.id),
            "name": "Default project",
            "api_token": self.token,
            "timezone": "UTC",
            "organization": "twin",
            "access_control": false,
            "anonymize_ips": false,
            "completed_snippet_onboarding": true,
        })
    }
}

/// Checks the personal API key of a management request: `Authorization:
/// Bearer phx_…`, or `personal_api_key` in the query string.
pub fn require_personal_key(request: &Request) -> Result<String, Error> {
    let key = match auth::credentials(request) {
        Ok(Some(auth::Credentials::Bearer(key))) => Some(key),
        Ok(Some(_)) | Err(_) => return Err(bad_personal_key()),
        Ok(None) => request.query_param("personal_api_key"),
    };
    match key {
        None => Err(error(
            401,
            "authentication_error",
            "not_authenticated",
            "Authentication credentials were not provided.",
        )),
        Some(k) if is_personal_key(&k) => Ok(k),
        Some(_) => Err(bad_personal_key()),
    }
}

fn bad_personal_key() -> Error {
    error(
        401,
        "authentication_error",
        "authentication_failed",
        "Invalid personal API key.",
    )
}

/// The project a management URL names: its numeric id, its `phc_…` token
/// (a twin convenience), or `@current`, which is the project of the `token`
/// query parameter (how the SDK's remote-config call names it). A personal
/// key may use every project.
pub fn project_from_path(request: &Request) -> Result<Project, Error> {
    let raw = request.param("project_id").unwrap_or_default();
    if raw == "@current" {
        let token = request
            .query_param("token")
            .or_else(|| request.query_param("project_api_key"))
            .ok_or_else(|| {
                invalid(
                    "invalid_input",
                    "token",
                    "The twin resolves @current from the `token` query parameter (a phc_ key).",
                )
            })?;
        return project_for_key(&token);
    }
    if is_project_key(raw) {
        return Project::for_token(raw);
    }
    let id: u64 = raw.parse().map_err(|_| not_found())?;
    Project::by_id(id)?.ok_or_else(not_found)
}

/// The JSON document of an ingestion or `/flags` request, whichever way the
/// client packed it: plain JSON, gzip (`Content-Encoding: gzip` or
/// `?compression=gzip-js`/`gzip`), a form with `data=` holding base64 (or
/// plain) JSON as older clients send, or the same in the query string of a
/// `GET`.
pub fn decode_document(request: &Request) -> Result<Value, Error> {
    let bad = |detail: String| error(400, "validation_error", "invalid_payload", detail);
    let body = compression::decoded_body(request)
        .map_err(|e| bad(format!("Malformed request data: {e}")))?;
    let mut body: Cow<'_, [u8]> = body;
    let compression_param = request.query_param("compression").unwrap_or_default();
    if compression::is_gzip(&body) || compression_param.starts_with("gzip") {
        body = Cow::Owned(
            compression::gunzip(&body).map_err(|e| bad(format!("Malformed request data: {e}")))?,
        );
    }
    let trimmed = body.trim_ascii();
    if trimmed.is_empty() {
        // A GET (or an empty POST) may carry `data=` in the query string.
        if let Some(data) = request.query_param("data") {
            return decode_data_field(&data).map_err(bad);
        }
        return Err(bad("Malformed request data: the body is empty.".into()));
    }
    if trimmed.starts_with(b"{") || trimmed.starts_with(b"[") {
        return serde_json::from_slice(trimmed)
            .map_err(|e| bad(format!("Malformed request data: {e}")));
    }
    // A form body: `data=<base64 or JSON>&compression=…`.
    let text = std::str::from_utf8(trimmed)
        .map_err(|_| bad("Malformed request data: the body is not UTF-8 text.".into()))?;
    let mut data = None;
    let mut form_compression = String::new();
    for (k, v) in form::pairs(text) {
        match k.as_ref() {
            "data" => data = Some(v.into_owned()),
            "compression" => form_compression = v.into_owned(),
            _ => {}
        }
    }
    let data = data.ok_or_else(|| bad("Malformed request data: no `data` field.".into()))?;
    if form_compression == "lz64" {
        // lz-string is a browser-only encoding the twin does not decode;
        // say so rather than mis-read the data.
        return Err(bad(
            "Malformed request data: lz64 compression is not supported by the twin.".into(),
        ));
    }
    decode_data_field(&data).map_err(bad)
}

/// The `data` field of a form: base64 of JSON (or of gzipped JSON), or JSON.
fn decode_data_field(data: &str) -> Result<Value, String> {
    let data = data.trim();
    if data.starts_with('{') || data.starts_with('[') {
        return serde_json::from_str(data).map_err(|e| format!("Malformed request data: {e}"));
    }
    // Form decoding turned the base64 `+` into spaces; put them back.
    let cleaned: String = data
        .chars()
        .filter(|c| !matches!(c, '\n' | '\r' | '\t'))
        .map(|c| if c == ' ' { '+' } else { c })
        .collect();
    let cleaned = cleaned.trim_end_matches('=');
    let raw = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(cleaned)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cleaned))
        .map_err(|_| "Malformed request data: `data` is neither JSON nor base64.".to_owned())?;
    let raw = if compression::is_gzip(&raw) {
        compression::gunzip(&raw).map_err(|e| format!("Malformed request data: {e}"))?
    } else {
        raw
    };
    serde_json::from_slice(&raw).map_err(|e| format!("Malformed request data: {e}"))
}

/// The project key of an ingestion or `/flags` document: `api_key` or
/// `token` at the top, else in the first event's `properties.token`, else
/// the query string's `token`/`api_key`, else `Authorization: Bearer`.
pub fn project_key_of(request: &Request, doc: &Value) -> Option<String> {
    let from_obj = |o: &Map<String, Value>| {
        ["api_key", "token", "$token"]
            .iter()
            .find_map(|k| o.get(*k).and_then(Value::as_str).map(str::to_owned))
    };
    let first_event = match doc {
        Value::Array(items) => items.first(),
        Value::Object(o) => o
            .get("batch")
            .and_then(Value::as_array)
            .and_then(|b| b.first())
            .or(Some(doc)),
        _ => None,
    };
    doc.as_object()
        .and_then(from_obj)
        .or_else(|| first_event.and_then(Value::as_object).and_then(from_obj))
        .or_else(|| {
            first_event
                .and_then(|e| e.get("properties"))
                .and_then(Value::as_object)
                .and_then(from_obj)
        })
        .or_else(|| request.query_param("token"))
        .or_else(|| request.query_param("api_key"))
        .or_else(|| match auth::credentials(request) {
            Ok(Some(auth::Credentials::Bearer(k))) => Some(k),
            _ => None,
        })
        .filter(|k| !k.is_empty())
}

//! Errors a twin returns, rendered in the vendor's shape.
//!
//! Client libraries parse error bodies, so a twin must reproduce the vendor's
//! exact JSON. [`Error`] holds the facts (status, code, message, param, the
//! vendor's category in `kind`, anything else in `extra`) and a [`Renderer`]
//! turns them into the vendor's body. Each vendor twin brings its own
//! renderer and passes it to [`Router::on_error`](crate::Router::on_error),
//! which uses it for the router's own 404s and 405s too.
//!
//! The default, [`render_plain`], belongs to no vendor: it is the shape the
//! host uses for its own errors, `{"error":{"code":…,"message":…,"param":…}}`
//! (plus `type` when the twin set a `kind`), so a twin without a vendor to
//! imitate answers like the host around it.
//!
//! The constructors name statuses, not vendor categories: they leave `kind`
//! empty, and a renderer derives the vendor's category from `status` unless
//! the twin set one with [`Error::with_kind`] (Stripe's `card_error`, say).

use std::fmt;

use serde_json::{Map, Value};

use crate::Response;

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Turns an [`Error`] into the vendor's response body.
pub type Renderer = fn(&Error) -> Response;

/// An API error as the vendor would report it.
///
/// Its fields live in [`ErrorData`] behind one box, reached through `Deref`
/// (`err.status`, `err.code`, `err.message = …` all work): errors are the cold
/// path, and keeping `Error` pointer-sized keeps every handler's
/// `Result<Response, Error>` small.
#[derive(Debug, Clone, PartialEq)]
pub struct Error(Box<ErrorData>);

/// The fields of an [`Error`].
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorData {
    /// HTTP status.
    pub status: u16,
    /// The vendor's category for the error (Stripe's `type`, PostHog's
    /// `type`), when the twin sets one; empty otherwise, and renderers derive
    /// it from `status`.
    pub kind: String,
    /// A machine-readable code (`resource_missing`), when there is one.
    pub code: Option<String>,
    /// Human-readable message.
    pub message: String,
    /// The request parameter at fault, when there is one.
    pub param: Option<String>,
    /// Further vendor-specific fields, merged into the rendered error object.
    pub extra: Map<String, Value>,
    /// Headers to add to the rendered response (`Allow`, `Retry-After`,
    /// `WWW-Authenticate`); they apply whatever the renderer.
    pub headers: Vec<(String, String)>,
}

impl std::ops::Deref for Error {
    type Target = ErrorData;

    fn deref(&self) -> &ErrorData {
        &self.0
    }
}

impl std::ops::DerefMut for Error {
    fn deref_mut(&mut self) -> &mut ErrorData {
        &mut self.0
    }
}

impl From<ErrorData> for Error {
    fn from(data: ErrorData) -> Self {
        Error(Box::new(data))
    }
}

impl Error {
    /// An error with the given status, vendor category (`""` for none) and
    /// message.
    pub fn new(status: u16, kind: impl Into<String>, message: impl Into<String>) -> Self {
        Error(Box::new(ErrorData {
            status,
            kind: kind.into(),
            code: None,
            message: message.into(),
            param: None,
            extra: Map::new(),
            headers: Vec::new(),
        }))
    }

    /// The fields, unboxed.
    pub fn into_data(self) -> ErrorData {
        *self.0
    }

    /// 400: the request is malformed or invalid.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "", message)
    }

    /// 401: missing or wrong credentials.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, "", message)
    }

    /// 402: the request was valid but the payment failed.
    pub fn payment_required(message: impl Into<String>) -> Self {
        Self::new(402, "", message)
    }

    /// 403: authenticated but not allowed.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "", message)
    }

    /// 404 with no code (an unknown URL, say).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "", message)
    }

    /// 404 `resource_missing` for an object looked up by id:
    /// message `No such {object}: '{id}'`, param `id`.
    pub fn resource_missing(object: &str, id: &str) -> Self {
        Self::not_found(format!("No such {object}: '{id}'"))
            .with_code("resource_missing")
            .with_param("id")
    }

    /// 405.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "", message)
    }

    /// 409: conflicts with the current state.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(409, "", message)
    }

    /// 429.
    pub fn too_many_requests(message: impl Into<String>) -> Self {
        Self::new(429, "", message)
    }

    /// 500: the twin itself failed.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "", message)
    }

    /// Sets the machine-readable code.
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Sets the parameter at fault.
    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// Replaces the kind.
    pub fn with_kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = kind.into();
        self
    }

    /// Adds a vendor-specific field (Stripe's `decline_code`, say).
    pub fn with_extra(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extra.insert(key.into(), value.into());
        self
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers
            .push((name.into().to_ascii_lowercase(), value.into()));
        self
    }

    /// Renders with `renderer` and adds [`ErrorData::headers`].
    pub fn render_with(&self, renderer: Renderer) -> Response {
        let mut response = renderer(self);
        response.headers.extend(self.headers.iter().cloned());
        response
    }

    /// Renders in the default shape; see [`render_plain`].
    pub fn to_response(&self) -> Response {
        self.render_with(render_plain)
    }
}

/// The default renderer, the host's own error shape:
/// `{"error":{"type":kind,"code":…,"message":…,"param":…,…extra}}`, where
/// `type`, `code` and `param` are left out when unset.
pub fn render_plain(err: &Error) -> Response {
    render_envelope(err, Some(err.kind.as_str()).filter(|k| !k.is_empty()))
}

/// `{"error":{"type":kind,"code":…,"message":…,"param":…,…extra}}` with
/// `kind` as the `type` (left out when `None`): the envelope of the host's
/// errors and of vendors in Stripe's family, whose renderers only decide
/// the `type`.
pub fn render_envelope(err: &Error, kind: Option<&str>) -> Response {
    let mut inner = Map::new();
    if let Some(kind) = kind {
        inner.insert("type".into(), Value::from(kind));
    }
    if let Some(code) = &err.code {
        inner.insert("code".into(), Value::String(code.clone()));
    }
    inner.insert("message".into(), Value::String(err.message.clone()));
    if let Some(param) = &err.param {
        inner.insert("param".into(), Value::String(param.clone()));
    }
    for (k, v) in &err.extra {
        inner.insert(k.clone(), v.clone());
    }
    let mut outer = Map::new();
    outer.insert("error".into(), Value::Object(inner));
    Response::json(err.status, &Value::Object(outer))
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.status)?;
        if !self.kind.is_empty() {
            write!(f, " {}", self.kind)?;
        }
        if let Some(code) = &self.code {
            write!(f, " ({code})")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_shape_includes_set_fields_and_extra() {
        let err = Error::resource_missing("customer", "cus_1").with_extra("doc_url", "https://x");
        let resp = err.to_response();
        assert_eq!(resp.status, 404);
        assert_eq!(resp.header("content-type"), Some("application/json"));
        assert_eq!(
            resp.json_body::<Value>().unwrap(),
            json!({"error": {
                "code": "resource_missing",
                "message": "No such customer: 'cus_1'",
                "param": "id",
                "doc_url": "https://x",
            }})
        );
    }

    #[test]
    fn plain_shape_omits_unset_kind_code_and_param() {
        let body: Value = Error::internal("boom").to_response().json_body().unwrap();
        assert_eq!(body, json!({"error": {"message": "boom"}}));
        let typed = Error::internal("boom").with_kind("api_error").to_response();
        assert_eq!(
            typed.json_body::<Value>().unwrap(),
            json!({"error": {"type": "api_error", "message": "boom"}})
        );
    }

    #[test]
    fn custom_renderer_and_headers() {
        fn twilio(err: &Error) -> Response {
            Response::json(
                err.status,
                &json!({"code": err.code, "message": err.message, "status": err.status}),
            )
        }
        let resp = Error::too_many_requests("slow down")
            .with_code("20429")
            .with_header("Retry-After", "1")
            .render_with(twilio);
        assert_eq!(resp.status, 429);
        assert_eq!(resp.header("retry-after"), Some("1"));
        assert_eq!(
            resp.json_body::<Value>().unwrap(),
            json!({"code": "20429", "message": "slow down", "status": 429})
        );
    }

    #[test]
    fn fields_are_reachable_and_error_is_small() {
        let mut err = Error::bad_request("x");
        err.message.push('!');
        err.status = 422;
        assert_eq!((err.status, err.message.as_str()), (422, "x!"));
        assert_eq!(err.clone().into_data().kind, "");
        assert_eq!(Error::from(err.clone().into_data()), err);
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
    }

    #[test]
    fn display_is_one_line() {
        let err = Error::bad_request("bad").with_code("parameter_invalid");
        assert_eq!(err.to_string(), "400 (parameter_invalid): bad");
        assert_eq!(
            err.with_kind("invalid_request_error").to_string(),
            "400 invalid_request_error (parameter_invalid): bad"
        );
    }
}

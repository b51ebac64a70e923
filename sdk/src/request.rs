//! The HTTP request a twin handles.

use std::borrow::Cow;
use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{Error, form};

/// An HTTP method. Common ones are variants so matching on them is cheap;
/// anything else is kept, upper-cased, in [`Method::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
    /// `OPTIONS`
    Options,
    /// Any other method, upper-case.
    Other(String),
}

impl Method {
    /// The upper-case name: `"GET"`.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Other(m) => m,
        }
    }
}

impl From<&str> for Method {
    fn from(s: &str) -> Self {
        let known = [
            Method::Get,
            Method::Head,
            Method::Post,
            Method::Put,
            Method::Patch,
            Method::Delete,
            Method::Options,
        ];
        known
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s))
            .unwrap_or_else(|| Method::Other(s.to_ascii_uppercase()))
    }
}

impl From<String> for Method {
    fn from(s: String) -> Self {
        Method::from(s.as_str())
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One HTTP request, as the host hands it over.
///
/// `path` and `query` are kept exactly as the client sent them (still
/// percent-encoded): the twin decides what to decode, which matters when an
/// encoded `/` or `&` is part of an id or a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The path, starting with `/`, with the host's route prefix stripped.
    pub path: String,
    /// The raw query string without the `?`.
    pub query: String,
    /// Header pairs in arrival order, names lower-case.
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
    /// Path parameters captured by the [`Router`](crate::Router).
    params: Vec<(Cow<'static, str>, String)>,
}

impl Request {
    /// A request for tests: `Request::new("GET", "/items?limit=2")`.
    pub fn new(method: impl Into<Method>, path_and_query: &str) -> Self {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        Self::from_parts(
            method.into(),
            path,
            query.to_owned(),
            Vec::new(),
            Vec::new(),
        )
    }

    /// A request from its parts, as received from the host.
    pub fn from_parts(
        method: Method,
        path: String,
        query: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Self {
        Request {
            method,
            path,
            query,
            headers,
            body,
            params: Vec::new(),
        }
    }

    /// Adds a header (the name is lower-cased, as the host does).
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// `Authorization: Bearer <key>`, as vendor SDKs send their secret key.
    pub fn with_bearer(self, key: &str) -> Self {
        self.with_header("authorization", format!("Bearer {key}"))
    }

    /// Replaces the body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// A form body with its content type: `.with_form("name=x&tags[]=a")`.
    pub fn with_form(self, body: &str) -> Self {
        self.with_header("content-type", "application/x-www-form-urlencoded")
            .with_body(body)
    }

    /// A JSON body with its content type.
    pub fn with_json(self, value: &Value) -> Self {
        self.with_header("content-type", "application/json")
            .with_body(value.to_string())
    }

    /// Where the client reached this twin, without the path the twin sees:
    /// `http://{Host}{X-Forwarded-Prefix}` (`https` when
    /// `X-Forwarded-Proto` says so). Absolute links a twin returns (a
    /// hosted page's URL) start with it, so they lead back the way the
    /// client came: through the host's `/stripe` or `/{tenant}/stripe`
    /// prefix, or a proxy's. A `Host` or prefix holding anything but plain
    /// host and path characters is not put into links (`localhost`, no
    /// prefix, instead).
    ///
    /// ```
    /// use wt_sdk::Request;
    /// let request = Request::new("GET", "/v1/x")
    ///     .with_header("host", "127.0.0.1:4100")
    ///     .with_header("x-forwarded-prefix", "/ci-7/stripe");
    /// assert_eq!(request.base_url(), "http://127.0.0.1:4100/ci-7/stripe");
    /// let hostile = Request::new("GET", "/").with_header("host", "a\"><script>");
    /// assert_eq!(hostile.base_url(), "http://localhost");
    /// ```
    pub fn base_url(&self) -> String {
        let host = self
            .header("host")
            .filter(|h| {
                !h.is_empty()
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
            })
            .unwrap_or("localhost");
        let prefix = self
            .header("x-forwarded-prefix")
            .map(|p| p.trim_end_matches('/'))
            .filter(|p| {
                p.starts_with('/')
                    && !p.contains("//")
                    && p.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b))
            })
            .unwrap_or("");
        let scheme = match self.header("x-forwarded-proto") {
            Some(proto) if proto.eq_ignore_ascii_case("https") => "https",
            _ => "http",
        };
        let mut url = String::with_capacity(scheme.len() + 3 + host.len() + prefix.len());
        url.push_str(scheme);
        url.push_str("://");
        url.push_str(host);
        url.push_str(prefix);
        url
    }

    /// The first value of header `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name`, in order.
    pub fn headers_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The media type of `content-type` without parameters (`charset=…`).
    pub fn content_type(&self) -> Option<&str> {
        self.header("content-type")
            .map(|ct| ct.split(';').next().unwrap_or("").trim())
    }

    /// Whether the body is declared JSON (`application/json` or `…+json`).
    pub fn is_json(&self) -> bool {
        self.content_type().is_some_and(|ct| {
            let ct = ct.to_ascii_lowercase();
            ct == "application/json" || ct.ends_with("+json")
        })
    }

    /// Whether the body is declared `application/x-www-form-urlencoded`.
    pub fn is_form(&self) -> bool {
        self.content_type()
            .is_some_and(|ct| ct.eq_ignore_ascii_case("application/x-www-form-urlencoded"))
    }

    /// The path with percent-escapes decoded (`+` stays `+`).
    pub fn decoded_path(&self) -> Cow<'_, str> {
        form::percent_decode(&self.path)
    }

    /// The query string's pairs, decoded, in order, without bracket nesting.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        form::pairs(&self.query)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    /// The first decoded value of query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<String> {
        form::pairs(&self.query)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// The query string as a nested tree ([`form::parse`]): what a GET to a
    /// Stripe-like API carries (`expand[]=…`, `created[gte]=…`).
    pub fn query_form(&self) -> Result<Value, Error> {
        Ok(form::parse(&self.query)?)
    }

    /// The body as a nested form tree ([`form::parse`]); a malformed form is a
    /// 400.
    pub fn form(&self) -> Result<Value, Error> {
        Ok(form::parse_bytes(&self.body)?)
    }

    /// The body parsed as JSON into `T`; a parse failure is a 400.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::bad_request(format!("Invalid JSON body: {e}")))
    }

    /// The body's parameters whatever their encoding: JSON when the
    /// content type says so (or, with no content type, when the body starts
    /// with `{`), otherwise a form. An empty body is an empty object. This is
    /// what lets one handler accept both what vendor SDKs send (forms) and
    /// what people type into curl (JSON).
    pub fn body_value(&self) -> Result<Value, Error> {
        let trimmed = self.body.trim_ascii();
        if trimmed.is_empty() {
            return Ok(Value::Object(Default::default()));
        }
        let json = self.is_json() || (self.content_type().is_none() && trimmed.starts_with(b"{"));
        if json { self.json() } else { self.form() }
    }

    /// The body as UTF-8 text; invalid UTF-8 is replaced.
    pub fn body_text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// A path parameter captured by the router (`{id}` in the pattern),
    /// percent-decoded.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every captured path parameter, in pattern order.
    pub fn params(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params.iter().map(|(k, v)| (k.as_ref(), v.as_str()))
    }

    /// Sets a path parameter; the router does this, tests of single handlers
    /// may too.
    pub fn with_param(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<String>,
    ) -> Self {
        self.set_param(name, value);
        self
    }

    /// Sets a path parameter in place, replacing one of the same name.
    pub fn set_param(&mut self, name: impl Into<Cow<'static, str>>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self.params.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.params.push((name, value)),
        }
    }

    pub(crate) fn clear_params(&mut self) {
        self.params.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[test]
    fn methods_parse_case_insensitively() {
        assert_eq!(Method::from("get"), Method::Get);
        assert_eq!(Method::from("DELETE"), Method::Delete);
        assert_eq!(Method::from("purge"), Method::Other("PURGE".into()));
        assert_eq!(Method::from("purge").to_string(), "PURGE");
    }

    #[test]
    fn new_splits_path_and_query() {
        let r = Request::new("GET", "/items?limit=2&x=%20");
        assert_eq!(
            (r.path.as_str(), r.query.as_str()),
            ("/items", "limit=2&x=%20")
        );
        assert_eq!(Request::new(Method::Post, "a").path, "/a");
        assert_eq!(Request::new("GET", "/").query, "");
    }

    #[test]
    fn headers_are_case_insensitive_and_repeatable() {
        let r = Request::new("GET", "/")
            .with_header("X-Thing", "1")
            .with_header("x-thing", "2")
            .with_header("Content-Type", "application/JSON; charset=utf-8");
        assert_eq!(r.header("X-THING"), Some("1"));
        assert_eq!(r.headers_all("x-thing").collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(r.header("missing"), None);
        assert_eq!(r.content_type(), Some("application/JSON"));
        assert!(r.is_json());
        assert!(!r.is_form());
    }

    #[test]
    fn query_helpers_decode() {
        let r = Request::new("GET", "/s?q=a+b%26c&q=2&expand%5B%5D=x&e");
        assert_eq!(r.query_param("q").as_deref(), Some("a b&c"));
        assert_eq!(r.query_param("e").as_deref(), Some(""));
        assert_eq!(r.query_param("nope"), None);
        assert_eq!(r.query_pairs()[1], ("q".to_owned(), "2".to_owned()));
        assert_eq!(r.query_form().unwrap()["expand"], json!(["x"]));
        assert_eq!(Request::new("GET", "/a%20b+c").decoded_path(), "/a b+c");
    }

    #[test]
    fn json_and_form_bodies() {
        #[derive(Deserialize)]
        struct By {
            by: i64,
        }
        let r = Request::new("POST", "/").with_json(&json!({"by": 3}));
        assert_eq!(r.json::<By>().unwrap().by, 3);
        assert_eq!(r.body_value().unwrap(), json!({"by": 3}));
        let bad = Request::new("POST", "/").with_body("{").json::<By>();
        assert_eq!(bad.err().map(|e| e.status), Some(400));

        let f = Request::new("POST", "/").with_form("a[b]=1&c[]=2");
        assert_eq!(f.form().unwrap(), json!({"a": {"b": "1"}, "c": ["2"]}));
        assert_eq!(f.body_value().unwrap(), f.form().unwrap());
        let bad_form = Request::new("POST", "/").with_form("a[=1").body_value();
        assert_eq!(bad_form.err().map(|e| e.status), Some(400));

        // No content type: sniff JSON objects, otherwise a form.
        let sniff = Request::new("POST", "/").with_body(r#" {"by":1}"#);
        assert_eq!(sniff.body_value().unwrap(), json!({"by": 1}));
        let plain = Request::new("POST", "/").with_body("by=2");
        assert_eq!(plain.body_value().unwrap(), json!({"by": "2"}));
        assert_eq!(Request::new("POST", "/").body_value().unwrap(), json!({}));
        assert_eq!(
            Request::new("POST", "/").with_body(vec![0xff]).body_text(),
            "\u{FFFD}"
        );
    }

    #[test]
    fn params_set_and_replace() {
        let mut r = Request::new("GET", "/").with_param("id", "1");
        r.set_param("id", "2");
        r.set_param(String::from("other"), "3");
        assert_eq!(r.param("id"), Some("2"));
        assert_eq!(
            r.params().collect::<Vec<_>>(),
            [("id", "2"), ("other", "3")]
        );
        r.clear_params();
        assert_eq!(r.param("id"), None);
    }
}

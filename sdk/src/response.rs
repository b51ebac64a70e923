//! HTTP responses and their builders.

use std::borrow::Cow;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// An HTTP response. Header names are lower-case, matching what the host
/// expects; a repeated header is a repeated pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Header pairs in order.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with no headers and no body.
    pub fn empty(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// `value` as JSON with `content-type: application/json`.
    ///
    /// Serialization only fails for values JSON cannot express (maps with
    /// non-string keys, say): that is a bug in the twin, answered with a 500
    /// that says so rather than a panic that would hide it.
    pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => Self::bytes(status, "application/json", body),
            Err(e) => Self::text(500, format!("twin response serialization failed: {e}")),
        }
    }

    /// 200 with `value` as JSON.
    pub fn ok<T: Serialize + ?Sized>(value: &T) -> Self {
        Self::json(200, value)
    }

    /// 201 with `value` as JSON.
    pub fn created<T: Serialize + ?Sized>(value: &T) -> Self {
        Self::json(201, value)
    }

    /// 204 with no body.
    pub fn no_content() -> Self {
        Self::empty(204)
    }

    /// Plain text with `content-type: text/plain; charset=utf-8`.
    pub fn text(status: u16, text: impl Into<String>) -> Self {
        Self::bytes(
            status,
            "text/plain; charset=utf-8",
            text.into().into_bytes(),
        )
    }

    /// Arbitrary bytes with the given content type.
    pub fn bytes(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            headers: vec![("content-type".to_owned(), content_type.to_owned())],
            body: body.into(),
        }
    }

    /// Adds a header (the name is lower-cased); repeated names repeat.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers
            .push((name.into().to_ascii_lowercase(), value.into()));
        self
    }

    /// Replaces every header called `name` with one pair.
    pub fn set_header(&mut self, name: &str, value: impl Into<String>) {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.to_ascii_lowercase(), value.into()));
    }

    /// Replaces the status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// The first value of header `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// 4xx.
    pub fn is_client_error(&self) -> bool {
        (400..500).contains(&self.status)
    }

    /// 5xx.
    pub fn is_server_error(&self) -> bool {
        (500..600).contains(&self.status)
    }

    /// The body as text, invalid UTF-8 replaced.
    pub fn body_text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// The body parsed as JSON; handy in tests.
    pub fn json_body<T: DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_slice(&self.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use std::collections::BTreeMap;

    #[test]
    fn json_sets_content_type_and_body() {
        let r = Response::json(201, &json!({"a": 1}));
        assert_eq!(r.status, 201);
        assert_eq!(r.header("Content-Type"), Some("application/json"));
        assert_eq!(r.body, br#"{"a":1}"#);
        assert!(r.is_success());
        assert_eq!(Response::ok(&1).status, 200);
        assert_eq!(Response::created(&1).status, 201);
    }

    #[test]
    fn unserializable_json_is_a_500_not_a_panic() {
        let mut bad = BTreeMap::new();
        bad.insert(vec![1u8], 1);
        let r = Response::json(200, &bad);
        assert!(r.is_server_error());
        assert!(r.body_text().contains("serialization failed"));
    }

    #[test]
    fn text_empty_and_headers() {
        let r = Response::text(404, "nope").with_header("X-Trace", "1");
        assert_eq!(r.body_text(), "nope");
        assert_eq!(r.header("x-trace"), Some("1"));
        assert!(r.is_client_error());
        let mut e = Response::no_content()
            .with_header("a", "1")
            .with_header("A", "2");
        assert_eq!((e.status, e.body.len()), (204, 0));
        e.set_header("a", "3");
        assert_eq!(e.headers, vec![("a".to_owned(), "3".to_owned())]);
        assert_eq!(e.with_status(202).status, 202);
        assert_eq!(
            Response::json(200, &json!([1]))
                .json_body::<Value>()
                .unwrap(),
            json!([1])
        );
    }
}

//! Sending requests out: webhooks, status callbacks.
//!
//! [`enqueue`] hands a request to the host, which sends it only after the
//! current request's store writes commit (never if the handler panics),
//! retries failures with backoff, and logs every delivery
//! (`GET /_wt/twins/{t}/outbound`; `POST …/outbound/flush` delivers now).
//! Destinations are denied unless the operator allows them; loopback is
//! always allowed, which is where test suites run their webhook receivers.

use std::fmt;

/// A request for the host to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRequest {
    /// Upper-case HTTP method.
    pub method: String,
    /// Absolute `http://` URL.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl OutboundRequest {
    /// A `POST` to `url` with no headers and an empty body.
    pub fn post(url: impl Into<String>) -> Self {
        Self {
            method: "POST".into(),
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
}

/// Why the host refused to queue a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboundError {
    /// The destination is not allowed.
    Denied(String),
    /// The request is malformed (URL, method, header).
    Invalid(String),
    /// This call queued too many requests already.
    TooMany(String),
}

impl fmt::Display for OutboundError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Denied(m) => write!(f, "outbound request denied: {m}"),
            Self::Invalid(m) => write!(f, "invalid outbound request: {m}"),
            Self::TooMany(m) => write!(f, "too many outbound requests: {m}"),
        }
    }
}

impl std::error::Error for OutboundError {}

/// Queues `request`; returns the id the host's delivery log uses for it.
pub fn enqueue(request: OutboundRequest) -> Result<String, OutboundError> {
    crate::sys::outbound_enqueue(request)
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn queued_requests_are_visible_to_tests() {
        testing::reset();
        let id = enqueue(
            OutboundRequest::post("http://127.0.0.1:9/hook")
                .with_header("x-sig", "v1")
                .with_body("{}"),
        )
        .unwrap();
        assert!(!id.is_empty());
        let sent = testing::outbox();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].headers, [("x-sig".to_owned(), "v1".to_owned())]);
    }

    #[test]
    fn non_http_urls_are_invalid() {
        testing::reset();
        let err = enqueue(OutboundRequest::post("ftp://127.0.0.1/")).unwrap_err();
        assert!(matches!(err, OutboundError::Invalid(_)), "{err}");
    }
}

//! Run twin logic natively, without a host (not available on `wasm32`).
//!
//! On native targets the sdk's store, clock and log talk to an in-memory
//! stand-in for the host that lives in a thread-local. The test harness runs
//! every test on its own thread, so every test starts from an empty store and
//! real time without any setup; call [`reset`] to start over within a test.
//!
//! [`call`] runs a twin the way the host does: store writes made by the
//! handler commit when it returns and are rolled back if it panics, in which
//! case the response is a 500 carrying the panic message, like the host's.
//! [`Client`] wraps it with what every twin's tests repeat: a credential on
//! each request, form and JSON bodies, and answers read as JSON ([`expect`]).
//!
//! ```
//! use wt_sdk::{Info, Request, Response, Twin, store, testing};
//!
//! struct Counter;
//! impl Twin for Counter {
//!     fn describe() -> Info { Info::default() }
//!     fn handle(_: Request) -> Response {
//!         let n = store::increment("n", 1).unwrap();
//!         if n > 1 { panic!("only once") }
//!         Response::ok(&n)
//!     }
//! }
//!
//! assert_eq!(testing::call::<Counter>(Request::new("POST", "/")).status, 200);
//! assert_eq!(testing::call::<Counter>(Request::new("POST", "/")).status, 500);
//! assert_eq!(wt_sdk::store::counter("n").unwrap(), 1); // the second write rolled back
//! ```

use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde_json::Value;

use crate::log::Level;
use crate::sys::imp::{Native, with};
use crate::{Request, Response, Twin};

/// Empties the store and the captured logs and lets twin time run with the
/// real clock again.
pub fn reset() {
    with(|n| *n = Native::default());
}

/// Freezes twin time at `ms` milliseconds since the Unix epoch.
pub fn set_now_millis(ms: u64) {
    with(|n| n.now = Some(ms));
}

/// Moves twin time by `delta` milliseconds (freezing it at the result).
pub fn advance_millis(delta: i64) {
    let now = crate::clock::now_millis().saturating_add_signed(delta);
    set_now_millis(now);
}

/// Lets twin time follow the real clock again.
pub fn use_real_time() {
    with(|n| n.now = None);
}

/// Sets a config value as the operator would (`PUT /_wt/twins/{t}/config`).
/// Settings the twin declares start at their defaults on the first [`call`].
pub fn set_config(key: &str, value: serde_json::Value) {
    with(|n| n.config.insert(key.to_owned(), value.to_string()));
}

/// Sets the license claims the twin sees, as the host would after
/// validating a token (`None`: running without a license).
pub fn set_license(claims: Option<crate::license::Claims>) {
    with(|n| n.license = claims);
}

/// A panicking request, as [`try_call`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trap {
    /// The panic message.
    pub message: String,
}

/// Calls `T::handle` as the host would: commits the store writes on return,
/// rolls them back on panic and answers 500 with `twin trapped: {message}`.
pub fn call<T: Twin>(request: Request) -> Response {
    try_call::<T>(request)
        .unwrap_or_else(|trap| Response::text(500, format!("twin trapped: {}", trap.message)))
}

/// Like [`call`] but reports a panic as [`Trap`] (after rolling back).
pub fn try_call<T: Twin>(request: Request) -> Result<Response, Trap> {
    let settings = T::describe().settings;
    with(|n| {
        for setting in settings {
            n.config
                .entry(setting.key)
                .or_insert_with(|| setting.default.to_string());
        }
    });
    let (snapshot, queued) = with(|n| (n.store.clone(), n.outbox.len()));
    match catch_unwind(AssertUnwindSafe(|| T::handle(request))) {
        Ok(response) => Ok(response),
        Err(payload) => {
            // As on the host: a trap commits no writes and sends nothing.
            with(|n| {
                n.store = snapshot;
                n.outbox.truncate(queued);
            });
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic with a non-string payload".to_owned());
            Err(Trap { message })
        }
    }
}

/// Requests queued with [`crate::outbound::enqueue`] by calls that returned.
pub fn outbox() -> Vec<crate::outbound::OutboundRequest> {
    with(|n| n.outbox.clone())
}

/// Like [`outbox`], emptying it.
pub fn take_outbox() -> Vec<crate::outbound::OutboundRequest> {
    with(|n| std::mem::take(&mut n.outbox))
}

/// Every committed key, in order.
pub fn store_keys() -> Vec<String> {
    with(|n| n.store.keys().cloned().collect())
}

/// Every committed entry, in key order.
pub fn store_snapshot() -> Vec<(String, Vec<u8>)> {
    with(|n| {
        n.store
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    })
}

/// The log lines written so far.
pub fn logs() -> Vec<(Level, String)> {
    with(|n| n.logs.clone())
}

/// The log lines written so far, clearing them.
pub fn take_logs() -> Vec<(Level, String)> {
    with(|n| std::mem::take(&mut n.logs))
}

/// Calls one twin as a client would: every request carries the same headers
/// (a credential, an API version), bodies are forms or JSON, and the
/// answers go through [`call`]. Cheap to make: a test keeps one per account.
///
/// ```
/// use wt_sdk::testing::{Client, expect};
/// # use wt_sdk::{Info, Request, Response, Twin};
/// # struct Echo;
/// # impl Twin for Echo {
/// #     fn describe() -> Info { Info::default() }
/// #     fn handle(r: Request) -> Response {
/// #         Response::ok(&wt_sdk::json!({"auth": r.header("authorization"), "body": r.body_text()}))
/// #     }
/// # }
/// let alice = Client::<Echo>::new().bearer("sk_test_alice");
/// let body = expect(alice.post_form("/v1/things", "name=a"), 200);
/// assert_eq!(body["auth"], "Bearer sk_test_alice");
/// assert_eq!(body["body"], "name=a");
/// ```
pub struct Client<T> {
    headers: Vec<(String, String)>,
    _twin: PhantomData<fn() -> T>,
}

impl<T> Clone for Client<T> {
    fn clone(&self) -> Self {
        Client {
            headers: self.headers.clone(),
            _twin: PhantomData,
        }
    }
}

impl<T: Twin> Default for Client<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Twin> Client<T> {
    /// A client sending no headers of its own.
    pub fn new() -> Self {
        Client {
            headers: Vec::new(),
            _twin: PhantomData,
        }
    }

    /// Sends `name: value` on every request (replacing an earlier value).
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        let name = name.to_ascii_lowercase();
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value.into()));
        self
    }

    /// Authenticates with `Authorization: Bearer {key}`.
    pub fn bearer(self, key: &str) -> Self {
        self.with_header("authorization", format!("Bearer {key}"))
    }

    /// Authenticates with HTTP Basic `user:password`.
    pub fn basic(self, user: &str, password: &str) -> Self {
        let token = crate::signature::base64(format!("{user}:{password}").as_bytes());
        self.with_header("authorization", format!("Basic {token}"))
    }

    /// A request with this client's headers, to add a body or headers to
    /// before [`Client::send`].
    pub fn request(&self, method: &str, path: &str) -> Request {
        let mut request = Request::new(method, path);
        request.headers.extend(self.headers.iter().cloned());
        request
    }

    /// Calls the twin with `request` (see [`call`]).
    pub fn send(&self, request: Request) -> Response {
        call::<T>(request)
    }

    /// `GET path` (the query goes in `path`).
    pub fn get(&self, path: &str) -> Response {
        self.send(self.request("GET", path))
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> Response {
        self.send(self.request("DELETE", path))
    }

    /// `POST path` with a form body (`a=1&b[c]=2`).
    pub fn post_form(&self, path: &str, form: &str) -> Response {
        self.send(self.request("POST", path).with_form(form))
    }

    /// `method path` with a JSON body.
    pub fn send_json(&self, method: &str, path: &str, body: &Value) -> Response {
        self.send(self.request(method, path).with_json(body))
    }
}

/// The response body as JSON, or `Value::Null` when it is not JSON.
pub fn json(response: &Response) -> Value {
    response.json_body().unwrap_or(Value::Null)
}

/// Asserts `response` has `status` (showing the body when it does not) and
/// returns its body as JSON.
#[track_caller]
pub fn expect(response: Response, status: u16) -> Value {
    assert_eq!(
        response.status,
        status,
        "unexpected status; body: {}",
        response.body_text()
    );
    json(&response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Info, store};

    struct Flaky;

    impl Twin for Flaky {
        fn describe() -> Info {
            Info::default()
        }
        fn handle(request: Request) -> Response {
            store::set("touched", request.path.as_bytes()).unwrap();
            if request.path == "/boom" {
                panic!("boom at {}", request.path);
            }
            Response::no_content()
        }
    }

    #[test]
    fn commit_on_return_and_rollback_on_panic() {
        reset();
        assert_eq!(call::<Flaky>(Request::new("GET", "/ok")).status, 204);
        let trapped = call::<Flaky>(Request::new("GET", "/boom"));
        assert_eq!(trapped.status, 500);
        assert_eq!(trapped.body_text(), "twin trapped: boom at /boom");
        assert_eq!(
            store_snapshot(),
            vec![("touched".to_owned(), b"/ok".to_vec())]
        );
        assert_eq!(
            try_call::<Flaky>(Request::new("GET", "/boom")),
            Err(Trap {
                message: "boom at /boom".into()
            })
        );
    }

    #[test]
    fn reset_clears_everything() {
        store::set("k", b"v").unwrap();
        crate::log::info("x");
        set_now_millis(5);
        reset();
        assert!(store_keys().is_empty() && logs().is_empty());
        assert!(crate::clock::now_millis() > 5);
    }
}

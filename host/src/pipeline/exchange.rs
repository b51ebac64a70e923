//! Converting between `http` types and the world's request/response records,
//! and the JSON errors the host itself answers with. Shared by the socket
//! path and the in-process `Host::handle`, so both answer byte for byte alike.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};

use crate::bindings::types;
use crate::twin::CallError;

/// The request a twin sees: `path` already has the route prefix stripped.
pub fn to_twin_request(parts: &http::request::Parts, path: &str, body: Bytes) -> types::Request {
    let prefix = route_prefix(parts.uri.path(), path);
    let mut forwarded_prefix = None;
    let mut headers: Vec<(String, String)> = Vec::with_capacity(parts.headers.len() + 1);
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if !prefix.is_empty() && name == FORWARDED_PREFIX {
            // A proxy's prefix comes first, then the route's.
            forwarded_prefix = Some(value);
            continue;
        }
        headers.push((name.as_str().to_owned(), value));
    }
    if !prefix.is_empty() {
        let outer = forwarded_prefix.unwrap_or_default();
        headers.push((
            FORWARDED_PREFIX.to_owned(),
            format!("{}{prefix}", outer.trim_end_matches('/')),
        ));
    }
    types::Request {
        method: parts.method.as_str().to_owned(),
        path: path.to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers,
        body: body.into(),
    }
}

/// The header that tells a twin the path prefix it was reached under
/// (`/stripe`, `/ci-7/stripe`), so the absolute links it builds (a Checkout
/// Session's `url`) lead back through the same prefix. The de facto
/// standard name, which proxies also send.
pub const FORWARDED_PREFIX: &str = "x-forwarded-prefix";

/// The part of `full` in front of `seen`, the path the twin sees: `/stripe`
/// for `/stripe/v1/customers`, and for `/stripe` itself (seen as `/`).
fn route_prefix<'a>(full: &'a str, seen: &str) -> &'a str {
    match full.strip_suffix(seen) {
        Some(prefix) => prefix,
        None if seen == "/" => full,
        None => "",
    }
}

/// The twin's response as an `http::Response`, or a 500 naming the twin when
/// it produced something HTTP cannot carry.
pub fn from_twin_response(
    twin: &str,
    response: types::Response,
    max_body: usize,
) -> http::Response<Bytes> {
    if response.body.len() > max_body {
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "response_too_large",
            &format!(
                "twin '{twin}' returned a {} byte body; responses are limited to {max_body} bytes",
                response.body.len()
            ),
            Some(twin),
        );
    }
    match build_response(response) {
        Ok(response) => response,
        Err(problem) => error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "invalid_twin_response",
            &format!("twin '{twin}' returned an invalid response: {problem}"),
            Some(twin),
        ),
    }
}

/// Headers a twin may send, in number and in total bytes: generous for any
/// real API, small enough that a twin cannot make the host buffer megabytes
/// of headers.
const MAX_RESPONSE_HEADERS: usize = 100;
const MAX_RESPONSE_HEADER_BYTES: usize = 64 << 10;

/// What a twin's non-JSON responses are served under: a sandbox that keeps
/// forms, scripts and popups working (Stripe's hosted checkout page posts a
/// form) but never the page's own origin.
const SANDBOX: &str = "sandbox allow-forms allow-scripts allow-popups allow-modals allow-downloads";

/// JSON is never rendered as a page, so an API answer needs no sandbox.
fn is_json(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let essence = v.split(';').next().unwrap_or("").trim();
            let suffix = essence.len().saturating_sub("+json".len());
            essence.eq_ignore_ascii_case("application/json")
                || essence
                    .get(suffix..)
                    .is_some_and(|tail| tail.eq_ignore_ascii_case("+json"))
        })
}

fn build_response(response: types::Response) -> Result<http::Response<Bytes>, String> {
    let status = StatusCode::from_u16(response.status)
        .ok()
        .filter(|s| s.as_u16() <= 599)
        .ok_or_else(|| format!("status {} is not an HTTP status", response.status))?;
    // A 1xx is not a final answer: a 101 would hand the connection over to
    // the twin, any other would leave the client waiting for one more.
    if status.is_informational() {
        return Err(format!(
            "status {status} is informational; a twin answers with a final status (200-599)"
        ));
    }
    if response.headers.len() > MAX_RESPONSE_HEADERS {
        return Err(format!(
            "{} headers; at most {MAX_RESPONSE_HEADERS} are allowed",
            response.headers.len()
        ));
    }
    let header_bytes: usize = response
        .headers
        .iter()
        .map(|(n, v)| n.len() + v.len())
        .sum();
    if header_bytes > MAX_RESPONSE_HEADER_BYTES {
        return Err(format!(
            "{header_bytes} bytes of headers; at most {MAX_RESPONSE_HEADER_BYTES} are allowed"
        ));
    }
    // 204 and 304 never carry a body on the wire, and 205 must not: whatever
    // the twin put there would be read as the start of the next response.
    let body = if matches!(
        status,
        StatusCode::NO_CONTENT | StatusCode::RESET_CONTENT | StatusCode::NOT_MODIFIED
    ) {
        Bytes::new()
    } else {
        Bytes::from(response.body)
    };
    let mut out = http::Response::new(body);
    *out.status_mut() = status;
    let headers = out.headers_mut();
    headers.reserve(response.headers.len());
    for (name, value) in response.headers {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("header name {name:?} is not valid"))?;
        let value = HeaderValue::from_str(&value)
            .map_err(|_| format!("header {name:?} has a value HTTP cannot carry"))?;
        // The host frames every response itself (crate::framing): a
        // `content-length` that disagreed with the body, came twice or
        // carried a list, or a `transfer-encoding` beside it, would let the
        // twin forge the next response on a kept-alive connection.
        if crate::framing::is_framing_header(header.as_str()) {
            continue;
        }
        headers.append(header, value);
    }
    if !is_json(headers) {
        // A page a twin serves runs in an opaque origin: it shares no
        // origin with the control plane (on the shared listener) or the
        // `/admin/*` aliases (on the twin's own port), whatever the browser.
        // Policies combine, so a twin's own CSP cannot loosen this one.
        headers.append(
            http::header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(SANDBOX),
        );
    }
    Ok(out)
}

/// How the host reports a twin that did not answer.
pub fn call_error_response(err: &CallError) -> http::Response<Bytes> {
    let (status, code, twin) = match err {
        CallError::Trap { twin, .. } => (StatusCode::INTERNAL_SERVER_ERROR, "twin_trapped", twin),
        CallError::Deadline { twin, .. } => (StatusCode::GATEWAY_TIMEOUT, "twin_timeout", twin),
        CallError::Instantiate { twin, .. } => {
            (StatusCode::SERVICE_UNAVAILABLE, "twin_unavailable", twin)
        }
        CallError::Storage { twin, .. } => {
            (StatusCode::INTERNAL_SERVER_ERROR, "storage_error", twin)
        }
        CallError::Memory { twin, .. } => {
            (StatusCode::INTERNAL_SERVER_ERROR, "twin_memory_limit", twin)
        }
        CallError::Busy { twin, .. } => (StatusCode::SERVICE_UNAVAILABLE, "twin_busy", twin),
        CallError::Unlicensed { twin, code, .. } => (StatusCode::PAYMENT_REQUIRED, *code, twin),
    };
    let mut response = error_response(status, code, &err.to_string(), Some(twin));
    if matches!(err, CallError::Busy { .. }) {
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// A JSON error from the host itself. The shape, `{"error": {"type", "code",
/// "message"}}`, is Stripe's, which most vendor SDKs tolerate when they see
/// an unexpected 5xx; `twin` names the twin involved, if any.
pub fn error_response(
    status: StatusCode,
    code: &str,
    message: &str,
    twin: Option<&str>,
) -> http::Response<Bytes> {
    let mut error = serde_json::json!({
        "type": if status.is_server_error() { "api_error" } else { "invalid_request_error" },
        "code": code,
        "message": message,
    });
    if let Some(twin) = twin {
        error["twin"] = serde_json::Value::from(twin);
    }
    json_response(status, &serde_json::json!({ "error": error }))
}

/// The answer an injected fault gives, marked so a test can tell it apart.
pub fn fault_response(id: u64, status: u16, body: Vec<u8>, is_json: bool) -> http::Response<Bytes> {
    let mut out = http::Response::new(Bytes::from(body));
    *out.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if is_json {
        out.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    out.headers_mut()
        .insert("x-wt-fault", HeaderValue::from(id));
    out
}

/// A JSON body with the right content type.
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> http::Response<Bytes> {
    let mut out = http::Response::new(Bytes::from(body.to_string()));
    *out.status_mut() = status;
    out.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_routed_request_carries_its_prefix_after_a_proxys() {
        let parts = |uri: &str, proxy: Option<&str>| {
            let mut request = http::Request::get(uri);
            if let Some(prefix) = proxy {
                request = request.header(FORWARDED_PREFIX, prefix);
            }
            request.body(()).unwrap().into_parts().0
        };
        let prefix = |r: &types::Request| {
            r.headers
                .iter()
                .filter(|(n, _)| n == FORWARDED_PREFIX)
                .map(|(_, v)| v.clone())
                .collect::<Vec<_>>()
        };
        let shared = to_twin_request(&parts("/ci-7/stripe/v1/x", None), "/v1/x", Bytes::new());
        assert_eq!(prefix(&shared), ["/ci-7/stripe"]);
        let bare = to_twin_request(&parts("/stripe", None), "/", Bytes::new());
        assert_eq!(prefix(&bare), ["/stripe"]);
        let proxied = to_twin_request(
            &parts("/stripe/v1/x", Some("/twins/")),
            "/v1/x",
            Bytes::new(),
        );
        assert_eq!(prefix(&proxied), ["/twins/stripe"]);
        // On its own port the twin sees the whole path: a proxy's prefix
        // passes through untouched, and none is made up.
        let own = to_twin_request(&parts("/v1/x", Some("/twins")), "/v1/x", Bytes::new());
        assert_eq!(prefix(&own), ["/twins"]);
        assert!(
            prefix(&to_twin_request(
                &parts("/v1/x", None),
                "/v1/x",
                Bytes::new()
            ))
            .is_empty()
        );
    }

    #[test]
    fn invalid_twin_status_becomes_a_500_naming_the_twin() {
        let response = from_twin_response(
            "hello",
            types::Response {
                status: 42,
                headers: vec![],
                body: vec![],
            },
            1024,
        );
        assert_eq!(response.status(), 500);
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body["error"]["twin"], "hello");
        assert_eq!(body["error"]["code"], "invalid_twin_response");
    }

    #[test]
    fn invalid_header_is_reported_not_panicked() {
        let response = from_twin_response(
            "hello",
            types::Response {
                status: 200,
                headers: vec![("bad header".into(), "x".into())],
                body: vec![],
            },
            1024,
        );
        assert_eq!(response.status(), 500);
    }

    #[test]
    fn too_many_or_too_large_headers_are_refused() {
        let many = types::Response {
            status: 200,
            headers: (0..101).map(|i| (format!("x-{i}"), "v".into())).collect(),
            body: vec![],
        };
        assert_eq!(from_twin_response("hello", many, 1024).status(), 500);
        let large = types::Response {
            status: 200,
            headers: vec![("x-big".into(), "v".repeat(70 << 10))],
            body: vec![],
        };
        assert_eq!(from_twin_response("hello", large, 1024).status(), 500);
        let status_700 = types::Response {
            status: 700,
            headers: vec![],
            body: vec![],
        };
        assert_eq!(from_twin_response("hello", status_700, 1024).status(), 500);
    }

    #[test]
    fn framing_headers_from_a_twin_are_dropped() {
        for (name, value) in [
            ("content-length", "5"),
            ("content-length", " 2"),
            ("content-length", "2, 2"),
            ("content-length", "-1"),
            ("transfer-encoding", "chunked"),
            ("connection", "upgrade"),
            ("upgrade", "websocket"),
            ("keep-alive", "timeout=1"),
            ("trailer", "x-later"),
            ("te", "trailers"),
            ("proxy-connection", "keep-alive"),
        ] {
            let response = from_twin_response(
                "hello",
                types::Response {
                    status: 200,
                    headers: vec![
                        (name.into(), value.into()),
                        (name.into(), value.into()),
                        ("x-kept".into(), "1".into()),
                    ],
                    body: b"{}".to_vec(),
                },
                1024,
            );
            assert_eq!(response.status(), 200, "{name}: {value}");
            assert!(response.headers().get(name).is_none(), "{name}: {value}");
            assert_eq!(response.headers()["x-kept"], "1");
            assert_eq!(response.body().as_ref(), b"{}");
        }
    }

    #[test]
    fn pages_are_sandboxed_and_json_is_not() {
        let answer = |content_type: Option<&str>| {
            let headers = content_type
                .map(|t| vec![("content-type".to_owned(), t.to_owned())])
                .unwrap_or_default();
            from_twin_response(
                "hello",
                types::Response {
                    status: 200,
                    headers,
                    body: b"<script>fetch('/_wt/twins')</script>".to_vec(),
                },
                1024,
            )
        };
        for page in [Some("text/html"), Some("image/svg+xml"), None] {
            let response = answer(page);
            let csp = response.headers()["content-security-policy"]
                .to_str()
                .unwrap();
            assert!(csp.starts_with("sandbox ") && !csp.contains("allow-same-origin"));
        }
        for json in [
            "application/json",
            "application/json; charset=utf-8",
            "application/problem+json",
        ] {
            assert!(
                answer(Some(json))
                    .headers()
                    .get("content-security-policy")
                    .is_none()
            );
        }
    }

    #[test]
    fn informational_statuses_are_refused() {
        for status in [100, 101, 102, 103, 199] {
            let response = from_twin_response(
                "hello",
                types::Response {
                    status,
                    headers: vec![("upgrade".into(), "websocket".into())],
                    body: vec![],
                },
                1024,
            );
            assert_eq!(response.status(), 500, "{status}");
        }
    }

    #[test]
    fn bodiless_statuses_lose_their_body() {
        for status in [204, 304] {
            let response = from_twin_response(
                "hello",
                types::Response {
                    status,
                    headers: vec![],
                    body: b"HTTP/1.1 200 OK".to_vec(),
                },
                1024,
            );
            assert_eq!(response.status(), status);
            assert!(response.body().is_empty());
        }
    }

    #[test]
    fn repeated_headers_are_kept() {
        let response = from_twin_response(
            "hello",
            types::Response {
                status: 201,
                headers: vec![
                    ("set-cookie".into(), "a=1".into()),
                    ("set-cookie".into(), "b=2".into()),
                ],
                body: b"{}".to_vec(),
            },
            1024,
        );
        assert_eq!(response.status(), 201);
        assert_eq!(response.headers().get_all("set-cookie").iter().count(), 2);
    }
}

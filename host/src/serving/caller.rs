//! Who is asking. Every request is checked here before it reaches a twin or
//! the control plane, because three kinds of caller are untrusted even on
//! loopback (docs/SECURITY.md, "What can reach the host"):
//!
//! - a web page in the developer's browser, which can send simple
//!   cross-site requests to `127.0.0.1` and, through DNS rebinding, read the
//!   answers under a name of its own;
//! - a twin, through the webhooks it queues (and any API client that
//!   registers a webhook URL), which the host itself sends;
//! - anything on the network, when the host listens beyond loopback (the
//!   admin token covers that case).
//!
//! The checks read only headers, so they cost a few comparisons per request.

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, header};

use crate::exchange::error_response;

use crate::outbound::DELIVERY_HEADER;

/// What the listener accepts beyond the built-in rules.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallerPolicy {
    /// Check `Host` against loopback names (and `allowed_hosts`): on when the
    /// host listens on loopback, where a `Host` of any other name can only
    /// be a DNS-rebinding page or a mistake.
    pub(crate) check_host: bool,
    /// Extra names (`--allow-host`) a client may use in `Host`.
    pub(crate) allowed_hosts: Vec<String>,
    /// The domain twins are named under beside `localhost` (`--domain`):
    /// `Host: {twin}[.{tenant}].{domain}` routes, and its names are allowed.
    pub(crate) domain: Option<String>,
    /// Twins may deliver to twin routes of this host (`--allow-outbound self`).
    pub(crate) self_delivery: bool,
}

/// Why a caller was turned away; knows its HTTP status, like axum's
/// rejections, and renders in the host's JSON error envelope.
#[derive(Debug)]
pub(crate) struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    #[cfg(test)]
    fn status(&self) -> StatusCode {
        self.status
    }

    pub(crate) fn into_response(self) -> http::Response<Bytes> {
        error_response(self.status, self.code, &self.message, None)
    }
}

impl CallerPolicy {
    /// Checks that hold for every request on this host's listeners.
    pub(crate) fn check_any(&self, parts: &http::request::Parts) -> Result<(), Refusal> {
        if self.check_host
            && let Some(host) = host_name(parts)
            && !self.host_allowed(host)
        {
            return Err(Refusal::new(
                StatusCode::MISDIRECTED_REQUEST,
                "host_not_allowed",
                format!(
                    "this wt-host listens on loopback and answers to localhost, *.localhost and loopback addresses, not {host:?} (a DNS-rebinding page uses a name of its own; `--allow-host NAME` adds a name)"
                ),
            ));
        }
        Ok(())
    }

    /// Checks before a twin route: deliveries from twins only when allowed.
    pub(crate) fn check_twin(&self, parts: &http::request::Parts) -> Result<(), Refusal> {
        if !self.self_delivery && parts.headers.contains_key(DELIVERY_HEADER) {
            return Err(forbidden(
                "delivery_refused",
                "twins may not send requests to the twins of their own host unless the operator allows it (--allow-outbound self)",
            ));
        }
        Ok(())
    }

    /// Checks before the control plane (and its `/admin/*` aliases): never a
    /// twin's delivery, never a browser page, JSON bodies only.
    pub(crate) fn check_control(&self, parts: &http::request::Parts) -> Result<(), Refusal> {
        if parts.headers.contains_key(DELIVERY_HEADER) {
            return Err(forbidden(
                "delivery_refused",
                "requests sent by twins (webhooks) never reach the control plane",
            ));
        }
        if parts.method == Method::OPTIONS {
            // A CORS preflight: answered without any Access-Control-Allow-*
            // header, so the browser never sends the real request.
            return Err(forbidden(
                "preflight_refused",
                "the control plane does not answer cross-origin requests",
            ));
        }
        if let Some(site) = from_a_page(&parts.headers) {
            return Err(forbidden(
                "cross_origin_refused",
                format!(
                    "the control plane does not answer requests made by web pages ({site}); use curl, the wt-host CLI or a test helper"
                ),
            ));
        }
        if parts.method != Method::GET
            && parts.method != Method::HEAD
            && let Some(kind) = simple_content_type(&parts.headers)
        {
            return Err(Refusal::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "json_required",
                format!(
                    "control-plane bodies are JSON: send `Content-Type: application/json`, not {kind:?}"
                ),
            ));
        }
        Ok(())
    }

    fn host_allowed(&self, host: &str) -> bool {
        is_loopback_name(host)
            || self
                .allowed_hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(host))
            || self
                .domain
                .as_deref()
                .is_some_and(|domain| under_domain(host, domain))
    }
}

/// Whether `host` is `domain` or a name under it, in any case.
pub(crate) fn under_domain(host: &str, domain: &str) -> bool {
    let host = host.trim_end_matches('.');
    host.eq_ignore_ascii_case(domain)
        || (host.len() > domain.len()
            && host.as_bytes()[host.len() - domain.len() - 1] == b'.'
            && host[host.len() - domain.len()..].eq_ignore_ascii_case(domain))
}

fn forbidden(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal::new(StatusCode::FORBIDDEN, code, message)
}

/// The host name a request names, without its port: the `Host` header, or
/// the authority of an absolute-form request line.
fn host_name(parts: &http::request::Parts) -> Option<&str> {
    let host = parts
        .uri
        .host()
        .or_else(|| parts.headers.get(header::HOST)?.to_str().ok())?;
    Some(strip_port(host))
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        // `[::1]:4100` or `[::1]`
        return rest.split_once(']').map_or(host, |(ip, _)| ip);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

/// `localhost`, a name under `.localhost` (browsers resolve both to loopback
/// themselves, so no DNS answer can point them elsewhere), or a loopback
/// address.
fn is_loopback_name(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    if host.eq_ignore_ascii_case("localhost")
        || host
            .get(host.len().saturating_sub(".localhost".len())..)
            .is_some_and(|tail| tail.eq_ignore_ascii_case(".localhost"))
    {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// Why the request looks like one a web page made, if it does. Browsers add
/// `Origin` to every cross-origin request and to every same-origin request
/// but GET and HEAD, and `Sec-Fetch-Site` to every request; only a URL typed
/// into the address bar says `none`. (A twin on the shared listener shares
/// its origin, so same-origin requests are refused too.)
fn from_a_page(headers: &HeaderMap) -> Option<String> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        return Some(format!(
            "Origin: {}",
            String::from_utf8_lossy(origin.as_bytes())
        ));
    }
    let site = headers.get("sec-fetch-site")?.to_str().unwrap_or("?");
    (site != "none").then(|| format!("Sec-Fetch-Site: {site}"))
}

/// The content type, if it is one a page may send cross-site without a
/// preflight (the Fetch standard's CORS-safelisted types).
fn simple_content_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?;
    let text = String::from_utf8_lossy(value.as_bytes()).to_ascii_lowercase();
    let essence = text.split(';').next().unwrap_or("").trim();
    matches!(
        essence,
        "text/plain" | "application/x-www-form-urlencoded" | "multipart/form-data"
    )
    .then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
        let mut builder = http::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    fn loopback() -> CallerPolicy {
        CallerPolicy {
            check_host: true,
            ..CallerPolicy::default()
        }
    }

    #[test]
    fn loopback_names_pass_and_other_hosts_do_not() {
        let policy = loopback();
        for ok in [
            "127.0.0.1:4100",
            "127.0.0.1",
            "127.1.2.3:9",
            "localhost",
            "LOCALHOST:4100",
            "stripe.localhost:4100",
            "localhost.",
            "[::1]:4100",
            "[::1]",
        ] {
            let p = parts("GET", "/", &[("host", ok)]);
            assert!(policy.check_any(&p).is_ok(), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:4100",
            "localhost.evil.example",
            "evillocalhost",
            "10.0.0.1:4100",
            "0.0.0.0:4100",
            "[::ffff:127.0.0.1]:4100",
        ] {
            let p = parts("GET", "/", &[("host", bad)]);
            let refused = policy.check_any(&p).unwrap_err();
            assert_eq!(refused.status(), 421, "{bad}");
        }
        // The authority of an absolute-form request line counts, not a Host
        // header that disagrees with it.
        let p = parts(
            "GET",
            "http://evil.example/_wt/twins",
            &[("host", "localhost")],
        );
        assert!(policy.check_any(&p).is_err());
        // No Host at all (HTTP/1.0): no browser sends that.
        assert!(policy.check_any(&parts("GET", "/", &[])).is_ok());
    }

    #[test]
    fn allowed_hosts_extend_the_loopback_names() {
        let policy = CallerPolicy {
            allowed_hosts: vec!["twins.test".into()],
            ..loopback()
        };
        assert!(
            policy
                .check_any(&parts("GET", "/", &[("host", "Twins.Test:4100")]))
                .is_ok()
        );
        // Beyond loopback the host is not checked at all.
        let open = CallerPolicy::default();
        assert!(
            open.check_any(&parts("GET", "/", &[("host", "anything")]))
                .is_ok()
        );
    }

    #[test]
    fn pages_and_deliveries_never_reach_the_control_plane() {
        let policy = loopback();
        let refused = |method: &str, headers: &[(&str, &str)]| {
            policy
                .check_control(&parts(method, "/_wt/reset", headers))
                .err()
                .map(|r| r.status().as_u16())
        };
        assert_eq!(refused("POST", &[]), None);
        assert_eq!(refused("GET", &[("sec-fetch-site", "none")]), None);
        assert_eq!(
            refused("POST", &[("content-type", "application/json")]),
            None
        );
        assert_eq!(
            refused("POST", &[("origin", "https://evil.example")]),
            Some(403)
        );
        assert_eq!(refused("POST", &[("origin", "null")]), Some(403));
        assert_eq!(
            refused("POST", &[("origin", "http://127.0.0.1:4100")]),
            Some(403)
        );
        assert_eq!(
            refused("GET", &[("sec-fetch-site", "same-origin")]),
            Some(403)
        );
        assert_eq!(
            refused("GET", &[("sec-fetch-site", "cross-site")]),
            Some(403)
        );
        assert_eq!(refused("OPTIONS", &[]), Some(403));
        assert_eq!(
            refused("POST", &[(DELIVERY_HEADER, "hello dlv_1")]),
            Some(403)
        );
        for simple in [
            "text/plain",
            "text/plain;charset=UTF-8",
            "application/x-www-form-urlencoded",
            "Multipart/Form-Data; boundary=x",
        ] {
            assert_eq!(
                refused("POST", &[("content-type", simple)]),
                Some(415),
                "{simple}"
            );
            assert_eq!(
                refused("PUT", &[("content-type", simple)]),
                Some(415),
                "{simple}"
            );
        }
    }

    #[test]
    fn deliveries_reach_twins_only_when_allowed() {
        let delivery = parts("POST", "/v1/x", &[(DELIVERY_HEADER, "stripe dlv_1")]);
        assert_eq!(loopback().check_twin(&delivery).unwrap_err().status(), 403);
        let allowing = CallerPolicy {
            self_delivery: true,
            ..loopback()
        };
        assert!(allowing.check_twin(&delivery).is_ok());
        assert!(
            allowing.check_control(&delivery).is_err(),
            "the control plane refuses deliveries even when twins may reach twins"
        );
        assert!(loopback().check_twin(&parts("POST", "/v1/x", &[])).is_ok());
    }
}

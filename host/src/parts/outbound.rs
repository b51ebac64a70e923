//! Requests twins send out (webhooks, status callbacks): checked against a
//! deny-by-default destination policy when queued, sent only after the
//! queuing request commits, retried with backoff, and logged.
//!
//! A delivery is the host acting for an untrusted twin, so it is bounded the
//! way the twin is (docs/SECURITY.md): by count and bytes per call, bytes
//! pending per twin, deliveries in flight per twin; it carries
//! [`DELIVERY_HEADER`] so this host's own
//! listeners know it; it never follows a redirect; and a reset stops it.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{Notify, Semaphore};

/// Marks every request the host sends for a twin (`<twin> <delivery id>`).
/// Twins cannot set or remove it, and the host cannot be made to send a
/// request without it (no redirects are followed, framing headers are the
/// host's), so a request carrying it is one of this host's own deliveries:
/// the listeners (`caller.rs`) refuse it on the control plane always, on
/// twin routes unless the operator allowed `--allow-outbound self`.
pub const DELIVERY_HEADER: &str = "wt-delivery";

/// Requests one twin call may queue.
pub const MAX_PER_CALL: usize = 100;
/// Body bytes one queued request may carry: webhooks are small JSON
/// documents (a Stripe event is a few KiB).
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Body and header bytes one twin call may queue in all.
pub const MAX_BYTES_PER_CALL: usize = 4 << 20;
/// Body bytes of one twin's deliveries still pending (queued or retrying);
/// past it, `enqueue` answers `too-many` until some settle. Together with
/// the log's bound this caps what one twin's deliveries hold in the host.
pub const MAX_PENDING_BYTES: usize = 16 << 20;
/// Deliveries of one twin in flight at once: a twin cannot open a flood of
/// connections to one receiver (or to another twin, where allowed).
const MAX_IN_FLIGHT: usize = 8;
/// Deliveries kept in each twin's log.
const LOG_CAPACITY: usize = 1000;
/// Body bytes of settled deliveries kept in each twin's log; older entries
/// are forgotten first.
const LOG_BYTES: usize = 16 << 20;
/// Whether a queued request may not set this header: the host frames each
/// request (`crate::framing`: a twin's `content-length` could smuggle a
/// second, unmarked request into the connection), names its destination
/// from the URL, and marks it.
fn is_host_owned(name: &str) -> bool {
    crate::framing::is_framing_header(name) || name == "host" || name == DELIVERY_HEADER
}
/// Attempts before a delivery is marked failed.
const MAX_ATTEMPTS: u32 = 6;
/// First retry delay; doubles each time (1 s, 2 s, 4 s, 8 s, 16 s).
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// One attempt's time limit.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Which destinations twins may reach.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Hosts (`example.test`) or `host:port` pairs allowed beside loopback;
    /// `self` lets twins reach the twin routes of this host (never its
    /// control plane).
    pub allowed: Vec<String>,
}

/// The `--allow-outbound` entry that lets twins deliver to this host's
/// twins.
pub const SELF: &str = "self";

/// A request a twin queued, checked.
#[derive(Debug, Clone, Serialize)]
pub struct OutboundRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    #[serde(skip)]
    pub body: Vec<u8>,
}

impl Policy {
    /// Whether twins may deliver to the twin routes of this host.
    pub fn allows_self(&self) -> bool {
        self.allowed.iter().any(|a| a == SELF)
    }

    /// Checks a queued request: `Err` says why it is refused.
    pub fn check(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
    ) -> Result<(), Refusal> {
        let uri: http::Uri = url
            .parse()
            .map_err(|_| Refusal::Invalid(format!("{url:?} is not a URL")))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => {
                return Err(Refusal::Invalid(format!(
                    "scheme {other:?} is not supported for outbound requests (use http)"
                )));
            }
            None => return Err(Refusal::Invalid(format!("{url:?} is not an absolute URL"))),
        }
        let host = uri
            .host()
            .ok_or_else(|| Refusal::Invalid(format!("{url:?} has no host")))?;
        let parsed = http::Method::from_bytes(method.as_bytes())
            .map_err(|_| Refusal::Invalid(format!("{method:?} is not an HTTP method")))?;
        // CONNECT would turn the host into a tunnel; TRACE echoes headers.
        if parsed == http::Method::CONNECT || parsed == http::Method::TRACE {
            return Err(Refusal::Invalid(format!(
                "{method} is not a method twins may send"
            )));
        }
        for (name, value) in headers {
            let header = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Refusal::Invalid(format!("header name {name:?} is not valid")))?;
            if is_host_owned(header.as_str()) {
                return Err(Refusal::Invalid(format!(
                    "header {name:?} is set by the host, not by a twin"
                )));
            }
            http::HeaderValue::from_str(value)
                .map_err(|_| Refusal::Invalid(format!("header {name:?} has an invalid value")))?;
        }
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let loopback = match bare.parse::<IpAddr>() {
            Ok(ip) => ip.is_loopback(),
            Err(_) => bare == "localhost" || bare.ends_with(".localhost"),
        };
        let port = uri.port_u16().unwrap_or(80);
        let allowed = loopback
            || self
                .allowed
                .iter()
                .any(|a| a == bare || *a == format!("{bare}:{port}"));
        if allowed {
            Ok(())
        } else {
            Err(Refusal::Denied(format!(
                "{bare}:{port} is not an allowed destination (loopback is; the operator can allow more with --allow-outbound)"
            )))
        }
    }
}

/// Why a queued request was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    Denied(String),
    Invalid(String),
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Delivered,
    Failed,
    /// Stopped by a reset (or `DELETE …/outbound`) before it settled.
    Cancelled,
}

#[derive(Debug, Clone, Serialize)]
struct Progress {
    status: Status,
    attempts: u32,
    /// The last answer's status code, if any came.
    last_status: Option<u16>,
    last_error: Option<String>,
}

/// One queued request and its fate.
#[derive(Debug)]
pub struct Delivery {
    id: String,
    request: OutboundRequest,
    queued_at_millis: u64,
    progress: tokio::sync::Mutex<Progress>,
    /// Stops the task that retries it.
    task: Mutex<Option<tokio::task::AbortHandle>>,
}

/// What one twin's deliveries share: the connection pool, the in-flight
/// bound, the pending bytes, the flush signal.
#[derive(Debug)]
struct Sender {
    twin: String,
    client: reqwest::Client,
    /// Wakes workers sleeping between retries (flush).
    wake: Notify,
    in_flight: Semaphore,
    /// Body bytes of deliveries not yet settled.
    pending_bytes: AtomicUsize,
}

/// One twin's outbound queue and delivery log.
#[derive(Debug)]
pub struct Outbound {
    log: Mutex<VecDeque<Arc<Delivery>>>,
    sender: Arc<Sender>,
    next: AtomicU64,
}

/// Why `enqueue` cannot take another request now.
#[derive(Debug, Clone, PartialEq)]
pub struct Backlog(pub String);

impl Outbound {
    pub fn new(twin: &str, client: reqwest::Client) -> Self {
        Self {
            log: Mutex::new(VecDeque::new()),
            sender: Arc::new(Sender {
                twin: twin.to_owned(),
                client,
                wake: Notify::new(),
                in_flight: Semaphore::new(MAX_IN_FLIGHT),
                pending_bytes: AtomicUsize::new(0),
            }),
            next: AtomicU64::new(1),
        }
    }

    /// Whether `bytes` more may be queued on top of what is pending and what
    /// this call queued already (`queued_in_call`).
    pub fn has_room(&self, queued_in_call: usize, bytes: usize) -> Result<(), Backlog> {
        let pending = self.sender.pending_bytes.load(Ordering::Acquire);
        if pending + queued_in_call + bytes > MAX_PENDING_BYTES {
            return Err(Backlog(format!(
                "the twin has {pending} bytes of deliveries pending; at most {MAX_PENDING_BYTES} may be (try again once some are delivered)"
            )));
        }
        Ok(())
    }

    /// A fresh delivery id, unique within this twin.
    pub fn next_id(&self) -> String {
        format!("dlv_{}", self.next.fetch_add(1, Ordering::Relaxed))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<Delivery>>> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts delivering requests whose call has committed.
    pub fn send(&self, requests: Vec<(String, OutboundRequest)>) {
        for (id, request) in requests {
            self.sender
                .pending_bytes
                .fetch_add(request.body.len(), Ordering::AcqRel);
            let delivery = Arc::new(Delivery {
                id,
                request,
                queued_at_millis: crate::clock::wall_millis(),
                progress: tokio::sync::Mutex::new(Progress {
                    status: Status::Pending,
                    attempts: 0,
                    last_status: None,
                    last_error: None,
                }),
                task: Mutex::new(None),
            });
            self.remember(delivery.clone());
            let sender = self.sender.clone();
            let task = tokio::spawn({
                let delivery = delivery.clone();
                async move { run(&sender, &delivery).await }
            });
            *lock(&delivery.task) = Some(task.abort_handle());
        }
    }

    /// Adds a delivery to the log, forgetting the oldest settled ones past
    /// the log's count and byte bounds (pending ones are bounded by
    /// `MAX_PENDING_BYTES` instead, and stay until they settle).
    fn remember(&self, delivery: Arc<Delivery>) {
        // Declared first so it is dropped after the lock is let go.
        let mut forgotten = Vec::new();
        let mut log = self.lock();
        log.push_back(delivery);
        let mut bytes: usize = log.iter().map(|d| d.request.body.len()).sum();
        let mut index = 0;
        while (log.len() > LOG_CAPACITY || bytes > LOG_BYTES) && index < log.len() {
            let settled = log[index]
                .progress
                .try_lock()
                .is_ok_and(|p| p.status != Status::Pending);
            if settled {
                if let Some(old) = log.remove(index) {
                    bytes -= old.request.body.len();
                    forgotten.push(old);
                }
            } else {
                index += 1;
            }
        }
    }

    /// Makes one more attempt at every pending delivery now, and waits for
    /// them: a test's "send the webhooks, then assert".
    pub async fn flush(&self) {
        self.sender.wake.notify_waiters();
        let pending: Vec<Arc<Delivery>> = self.lock().iter().cloned().collect();
        for delivery in pending {
            attempt(&self.sender, &delivery).await;
        }
    }

    /// Stops every pending delivery (marked `cancelled`) and forgets the
    /// whole log: what a reset and `DELETE …/outbound` do, so a webhook loop
    /// or a flood stops there.
    pub async fn cancel_all(&self) {
        let deliveries: Vec<Arc<Delivery>> = self.lock().drain(..).collect();
        for delivery in deliveries {
            if let Some(task) = lock(&delivery.task).take() {
                task.abort();
            }
            let mut progress = delivery.progress.lock().await;
            if progress.status == Status::Pending {
                progress.status = Status::Cancelled;
                self.sender
                    .pending_bytes
                    .fetch_sub(delivery.request.body.len(), Ordering::AcqRel);
            }
        }
    }

    /// The delivery log, oldest first.
    pub async fn log(&self) -> Vec<serde_json::Value> {
        let deliveries: Vec<Arc<Delivery>> = self.lock().iter().cloned().collect();
        let mut out = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            let progress = delivery.progress.lock().await.clone();
            let mut value = serde_json::json!({
                "id": delivery.id,
                "queued_at_millis": delivery.queued_at_millis,
                "request": delivery.request,
                "body": String::from_utf8_lossy(&delivery.request.body),
            });
            if let (Some(map), Ok(serde_json::Value::Object(more))) =
                (value.as_object_mut(), serde_json::to_value(&progress))
            {
                map.extend(more);
            }
            out.push(value);
        }
        out
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// The client every twin's deliveries share: it follows no redirect, since
/// a redirect would take a delivery to a destination the policy never saw
/// (webhook senders such as Stripe treat a 3xx as a failed attempt too).
pub fn client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(concat!("wt-host/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(LoopbackNames))
        .build()
}

/// Resolves `localhost` and every name under `.localhost` to loopback
/// without asking DNS (RFC 6761, as browsers do): the policy lets twins
/// reach those names because they are loopback, so no resolver may say
/// otherwise. It also makes `http://myapp.localhost:3000/hook` work where
/// the system resolver does not know such names. Other names (allowed with
/// `--allow-outbound`) go to the system resolver.
#[derive(Debug)]
struct LoopbackNames;

impl reqwest::dns::Resolve for LoopbackNames {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().trim_end_matches('.').to_ascii_lowercase();
        Box::pin(async move {
            if host == "localhost" || host.ends_with(".localhost") {
                let loopback: Vec<std::net::SocketAddr> = vec![
                    (std::net::Ipv4Addr::LOCALHOST, 0).into(),
                    (std::net::Ipv6Addr::LOCALHOST, 0).into(),
                ];
                return Ok(Box::new(loopback.into_iter()) as reqwest::dns::Addrs);
            }
            let found: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            Ok(Box::new(found.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Retries until delivered or out of attempts, sleeping between tries
/// unless a flush wakes it.
async fn run(sender: &Sender, delivery: &Delivery) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        if attempt(sender, delivery).await != Status::Pending {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = sender.wake.notified() => {}
        }
        backoff = backoff.saturating_mul(2);
    }
}

/// One attempt, unless the delivery is already settled; returns its status.
async fn attempt(sender: &Sender, delivery: &Delivery) -> Status {
    let twin = sender.twin.as_str();
    let mut progress = delivery.progress.lock().await;
    if progress.status != Status::Pending {
        return progress.status;
    }
    // Waits for one of the twin's few connection slots; never closed.
    let Ok(_slot) = sender.in_flight.acquire().await else {
        return progress.status;
    };
    progress.attempts += 1;
    let request = &delivery.request;
    let method = http::Method::from_bytes(request.method.as_bytes()).unwrap_or(http::Method::POST);
    let mut builder = sender
        .client
        .request(method, &request.url)
        .timeout(ATTEMPT_TIMEOUT)
        .body(request.body.clone());
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    builder = builder.header(DELIVERY_HEADER, format!("{twin} {}", delivery.id));
    match builder.send().await {
        Ok(response) if response.status().is_success() => {
            progress.status = Status::Delivered;
            progress.last_status = Some(response.status().as_u16());
            progress.last_error = None;
        }
        Ok(response) => {
            progress.last_status = Some(response.status().as_u16());
            progress.last_error = Some(format!("answered {}", response.status()));
        }
        Err(err) => {
            progress.last_status = None;
            progress.last_error = Some(err.to_string());
        }
    }
    if progress.status == Status::Pending && progress.attempts >= MAX_ATTEMPTS {
        progress.status = Status::Failed;
        tracing::warn!(
            twin,
            delivery = delivery.id,
            url = crate::logs::printable(&request.url).as_ref(),
            "outbound delivery failed for good"
        );
    }
    if progress.status != Status::Pending {
        sender
            .pending_bytes
            .fetch_sub(request.body.len(), Ordering::AcqRel);
    }
    progress.status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_allowed_and_everything_else_denied_by_default() {
        let policy = Policy::default();
        for ok in [
            "http://127.0.0.1:9000/hook",
            "http://localhost/x",
            "http://hooks.localhost:8080/",
            "http://[::1]:1/",
        ] {
            assert_eq!(policy.check("POST", ok, &[]), Ok(()), "{ok}");
        }
        for denied in [
            "http://10.0.0.1/",
            "http://example.com/hook",
            "http://169.254.169.254/",
        ] {
            assert!(
                matches!(policy.check("POST", denied, &[]), Err(Refusal::Denied(_))),
                "{denied}"
            );
        }
    }

    #[test]
    fn operators_allow_hosts_or_host_ports() {
        let policy = Policy {
            allowed: vec!["hooks.test".into(), "other.test:8080".into()],
        };
        assert_eq!(policy.check("POST", "http://hooks.test/a", &[]), Ok(()));
        assert_eq!(
            policy.check("POST", "http://other.test:8080/a", &[]),
            Ok(())
        );
        assert!(
            policy
                .check("POST", "http://other.test:9090/a", &[])
                .is_err()
        );
    }

    #[test]
    fn malformed_requests_are_invalid_not_denied() {
        let policy = Policy::default();
        for (method, url) in [
            ("POST", "not a url"),
            ("POST", "/relative"),
            ("POST", "ftp://127.0.0.1/"),
            ("BAD METHOD", "http://127.0.0.1/"),
            ("CONNECT", "http://127.0.0.1/"),
            ("TRACE", "http://127.0.0.1/"),
        ] {
            assert!(
                matches!(policy.check(method, url, &[]), Err(Refusal::Invalid(_))),
                "{method} {url}"
            );
        }
        let bad_header = [("bad header".to_owned(), "x".to_owned())];
        assert!(matches!(
            policy.check("POST", "http://127.0.0.1/", &bad_header),
            Err(Refusal::Invalid(_))
        ));
    }
}

//! Requests twins send out (webhooks, status callbacks): checked against a
//! deny-by-default destination policy when queued, sent only after the
//! queuing request commits, retried with backoff, and logged.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Notify;

/// Requests one twin call may queue.
pub const MAX_PER_CALL: usize = 100;
/// Deliveries kept in each twin's log.
const LOG_CAPACITY: usize = 1000;
/// Attempts before a delivery is marked failed.
const MAX_ATTEMPTS: u32 = 6;
/// First retry delay; doubles each time (1 s, 2 s, 4 s, 8 s, 16 s).
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// One attempt's time limit.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Which destinations twins may reach.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Hosts (`example.test`) or `host:port` pairs allowed beside loopback.
    pub allowed: Vec<String>,
}

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
        http::Method::from_bytes(method.as_bytes())
            .map_err(|_| Refusal::Invalid(format!("{method:?} is not an HTTP method")))?;
        for (name, value) in headers {
            http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Refusal::Invalid(format!("header name {name:?} is not valid")))?;
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
}

/// One twin's outbound queue and delivery log.
#[derive(Debug)]
pub struct Outbound {
    twin: String,
    log: Mutex<VecDeque<Arc<Delivery>>>,
    client: reqwest::Client,
    /// Wakes workers sleeping between retries (flush).
    wake: Arc<Notify>,
    next: AtomicU64,
}

impl Outbound {
    pub fn new(twin: &str, client: reqwest::Client) -> Self {
        Self {
            twin: twin.to_owned(),
            log: Mutex::new(VecDeque::new()),
            client,
            wake: Arc::new(Notify::new()),
            next: AtomicU64::new(1),
        }
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
            });
            {
                let mut log = self.lock();
                if log.len() == LOG_CAPACITY {
                    log.pop_front();
                }
                log.push_back(delivery.clone());
            }
            let (client, wake, twin) = (self.client.clone(), self.wake.clone(), self.twin.clone());
            tokio::spawn(async move { run(&twin, &client, &delivery, &wake).await });
        }
    }

    /// Makes one more attempt at every pending delivery now, and waits for
    /// them: a test's "send the webhooks, then assert".
    pub async fn flush(&self) {
        self.wake.notify_waiters();
        let pending: Vec<Arc<Delivery>> = self.lock().iter().cloned().collect();
        for delivery in pending {
            attempt(&self.twin, &self.client, &delivery).await;
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

    /// Forgets delivered and failed entries (pending ones keep going).
    pub async fn clear(&self) {
        let deliveries: Vec<Arc<Delivery>> = self.lock().drain(..).collect();
        let mut keep = Vec::new();
        for delivery in deliveries {
            if delivery.progress.lock().await.status == Status::Pending {
                keep.push(delivery);
            }
        }
        self.lock().extend(keep);
    }
}

/// Retries until delivered or out of attempts, sleeping between tries
/// unless a flush wakes it.
async fn run(twin: &str, client: &reqwest::Client, delivery: &Delivery, wake: &Notify) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        if attempt(twin, client, delivery).await != Status::Pending {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = wake.notified() => {}
        }
        backoff = backoff.saturating_mul(2);
    }
}

/// One attempt, unless the delivery is already settled; returns its status.
async fn attempt(twin: &str, client: &reqwest::Client, delivery: &Delivery) -> Status {
    let mut progress = delivery.progress.lock().await;
    if progress.status != Status::Pending {
        return progress.status;
    }
    progress.attempts += 1;
    let request = &delivery.request;
    let method = http::Method::from_bytes(request.method.as_bytes()).unwrap_or(http::Method::POST);
    let mut builder = client
        .request(method, &request.url)
        .timeout(ATTEMPT_TIMEOUT)
        .body(request.body.clone());
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
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
            url = request.url,
            "outbound delivery failed for good"
        );
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

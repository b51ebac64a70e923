//! Requests twins send out (webhooks): deny-by-default destinations, nothing
//! sent when the queuing request traps, retries with backoff, flush, log.

use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wt_tests::{HostProcess, fixture_path, send};

/// A webhook receiver on loopback: answers each request with the next
/// status from `script` (then 200), or always with one raw reply, and keeps
/// what it received. `boundary.rs` uses it too.
pub(crate) struct Receiver {
    pub(crate) url: String,
    received: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    pub(crate) async fn start(script: Vec<u16>) -> Self {
        Self::spawn(script, None).await
    }

    /// Answers every request with `reply`, a whole raw HTTP response.
    pub(crate) async fn replying(reply: &str) -> Self {
        Self::spawn(Vec::new(), Some(reply.to_owned())).await
    }

    async fn spawn(script: Vec<u16>, raw: Option<String>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script));
        let log = received.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (log, script, raw) = (log.clone(), script.clone(), raw.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    // Read headers, then the body by Content-Length.
                    loop {
                        let n = stream.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buf).to_string();
                        if let Some(end) = text.find("\r\n\r\n") {
                            let length = text[..end]
                                .lines()
                                .find_map(|l| {
                                    let (k, v) = l.split_once(':')?;
                                    k.eq_ignore_ascii_case("content-length")
                                        .then(|| v.trim().parse::<usize>().ok())?
                                })
                                .unwrap_or(0);
                            if buf.len() >= end + 4 + length {
                                break;
                            }
                        }
                    }
                    log.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&buf).into_owned());
                    let status = {
                        let mut script = script.lock().unwrap();
                        if script.is_empty() {
                            200
                        } else {
                            script.remove(0)
                        }
                    };
                    let reply = raw.unwrap_or_else(|| {
                        format!(
                            "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        )
                    });
                    let _ = stream.write_all(reply.as_bytes()).await;
                });
            }
        });
        Self { url, received }
    }

    pub(crate) fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }
}

fn start() -> HostProcess {
    HostProcess::start(&[("adversary", fixture_path("adversary"))], &[])
}

async fn post(client: &reqwest::Client, url: String, body: &str) -> (u16, Value) {
    send(client.post(url).body(body.to_owned())).await
}

#[tokio::test]
async fn a_committed_request_is_delivered_and_logged() {
    let host = start();
    let receiver = Receiver::start(vec![]).await;
    let client = reqwest::Client::new();
    let base = host.twin("adversary").own_url.clone().unwrap();
    let (status, body) = post(
        &client,
        format!("{base}/send?url={}", receiver.url),
        "payload-1",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, log) = post(
        &client,
        format!("{}/_wt/twins/adversary/outbound/flush", host.url),
        "",
    )
    .await;
    let delivery = &log["deliveries"][0];
    assert_eq!(delivery["id"], body["queued"]);
    assert_eq!(delivery["status"], "delivered", "{log}");
    assert_eq!(delivery["attempts"], 1);
    assert_eq!(delivery["body"], "payload-1");
    assert_eq!(receiver.count(), 1);
    let received = receiver.received.lock().unwrap()[0].clone();
    assert!(
        received.contains("x-adversary: 1") && received.ends_with("payload-1"),
        "{received}"
    );
}

#[tokio::test]
async fn destinations_are_denied_by_default() {
    let host = start();
    let client = reqwest::Client::new();
    let base = host.twin("adversary").own_url.clone().unwrap();
    for url in [
        "http://10.0.0.1/hook",
        "http://example.com/hook",
        "http://169.254.169.254/latest",
    ] {
        let (status, body) = post(&client, format!("{base}/send?url={url}"), "").await;
        assert_eq!(status, 400, "{url}: {body}");
        assert!(
            body["refused"].as_str().unwrap().contains("denied"),
            "{body}"
        );
    }
    let (status, body) = post(&client, format!("{base}/send?url=ftp://127.0.0.1/"), "").await;
    assert_eq!(status, 400);
    assert!(
        body["refused"].as_str().unwrap().contains("invalid"),
        "{body}"
    );
}

#[tokio::test]
async fn a_trapped_request_sends_nothing() {
    let host = start();
    let receiver = Receiver::start(vec![]).await;
    let client = reqwest::Client::new();
    let base = host.twin("adversary").own_url.clone().unwrap();
    let (status, _) = post(
        &client,
        format!("{base}/send?url={}&then=panic", receiver.url),
        "never",
    )
    .await;
    assert_eq!(status, 500);
    let (_, log) = post(
        &client,
        format!("{}/_wt/twins/adversary/outbound/flush", host.url),
        "",
    )
    .await;
    assert_eq!(log["deliveries"], serde_json::json!([]));
    assert_eq!(receiver.count(), 0);
}

#[tokio::test]
async fn failures_are_retried_until_delivered() {
    let host = start();
    // Two failures, then success.
    let receiver = Receiver::start(vec![500, 503]).await;
    let client = reqwest::Client::new();
    let base = host.twin("adversary").own_url.clone().unwrap();
    post(
        &client,
        format!("{base}/send?url={}", receiver.url),
        "retry-me",
    )
    .await;
    let flush = format!("{}/_wt/twins/adversary/outbound/flush", host.url);
    let mut last = Value::Null;
    for _ in 0..5 {
        let (_, log) = post(&client, flush.clone(), "").await;
        last = log["deliveries"][0].clone();
        if last["status"] == "delivered" {
            break;
        }
    }
    assert_eq!(last["status"], "delivered", "{last}");
    assert_eq!(last["attempts"], 3, "{last}");
    assert_eq!(receiver.count(), 3);
}

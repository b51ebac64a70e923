//! The boundary around the host itself (docs/SECURITY.md, "What can reach
//! the host"): what a twin, a webhook URL, a web page and a twin's response
//! can do to the host, its control plane and the other twins. Each test
//! drives the attack through the HTTP port, as an attacker would.

use std::time::Duration;

use crate::outbound::Receiver;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wt_tests::{HostProcess, fixture_path, run_to_exit, send, twin_path};

fn start(extra: &[&str]) -> HostProcess {
    HostProcess::start(
        &[
            ("adversary", fixture_path("adversary")),
            ("hello", twin_path("hello")),
        ],
        extra,
    )
}

fn own(host: &HostProcess, twin: &str) -> String {
    host.twin(twin).own_url.clone().expect("own port")
}

/// hello's counter, read through its own port.
async fn counter(client: &reqwest::Client, host: &HostProcess) -> Value {
    send(client.get(format!("{}/counter", own(host, "hello"))))
        .await
        .1
}

/// Queues `count` deliveries from the adversary to `url`, then flushes
/// them; returns the adversary's answer and its delivery log.
async fn deliver(
    client: &reqwest::Client,
    host: &HostProcess,
    url: &str,
    query: &str,
) -> (Value, Value) {
    let (_, queued) = send(
        client
            .post(format!("{}/send", own(host, "adversary")))
            .query(&[("url", url)])
            .query(&form(query))
            .body("{}"),
    )
    .await;
    let (status, log) =
        send(client.post(format!("{}/_wt/twins/adversary/outbound/flush", host.url))).await;
    assert_eq!(status, 200, "{log}");
    (queued, log)
}

fn form(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[tokio::test]
async fn webhooks_never_reach_the_control_plane() {
    let host = start(&[]);
    let client = reqwest::Client::new();
    send(client.post(format!("{}/counter", own(&host, "hello")))).await;
    assert_eq!(counter(&client, &host).await["value"], 1);
    let hello_port = own(&host, "hello");
    for target in [
        format!("{}/_wt/reset", host.url),
        format!("{}/_wt/twins/hello/reset", host.url),
        format!("{hello_port}/admin/reset"),
        format!("{}/_wt/twins/hello/clock/advance", host.url),
    ] {
        let (queued, log) = deliver(&client, &host, &target, "").await;
        assert!(queued["refused"].is_null(), "{queued}");
        let last = log["deliveries"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        assert_eq!(last["last_status"], 403, "{target}: {last}");
        assert_ne!(last["status"], "delivered", "{target}: {last}");
    }
    assert_eq!(
        counter(&client, &host).await["value"],
        1,
        "no delivery reset hello"
    );
}

#[tokio::test]
async fn a_stripe_webhook_endpoint_cannot_reset_another_twin() {
    let host = HostProcess::start(
        &[
            ("stripe", twin_path("stripe")),
            ("hello", twin_path("hello")),
        ],
        &[],
    );
    let client = reqwest::Client::new();
    let stripe = own(&host, "stripe");
    let auth = "Bearer sk_test_boundary";
    let (status, endpoint) = send(
        client
            .post(format!("{stripe}/v1/webhook_endpoints"))
            .header("authorization", auth)
            .form(&[
                ("url", format!("{}/_wt/twins/hello/reset", host.url)),
                ("enabled_events[]", "*".to_owned()),
            ]),
    )
    .await;
    assert_eq!(status, 200, "{endpoint}");
    send(client.post(format!("{}/counter", own(&host, "hello")))).await;
    let (status, customer) = send(
        client
            .post(format!("{stripe}/v1/customers"))
            .header("authorization", auth)
            .form(&[("email", "jo@example.com")]),
    )
    .await;
    assert_eq!(status, 200, "{customer}");
    let (_, log) = send(client.post(format!("{}/_wt/twins/stripe/outbound/flush", host.url))).await;
    let deliveries = log["deliveries"].as_array().unwrap();
    assert!(!deliveries.is_empty(), "{log}");
    assert!(deliveries.iter().all(|d| d["last_status"] == 403), "{log}");
    assert_eq!(counter(&client, &host).await["value"], 1);
}

#[tokio::test]
async fn twins_reach_other_twins_only_when_the_operator_allows_it() {
    let client = reqwest::Client::new();
    let host = start(&[]);
    let target = format!("{}/counter", own(&host, "hello"));
    let (_, log) = deliver(&client, &host, &target, "").await;
    assert_eq!(log["deliveries"][0]["last_status"], 403, "{log}");
    // Through the shared listener's prefix and `Host: hello.localhost` too.
    let prefixed = format!("{}/hello/counter", host.url);
    let (_, log) = deliver(&client, &host, &prefixed, "").await;
    assert_eq!(log["deliveries"][1]["last_status"], 403, "{log}");
    assert_eq!(counter(&client, &host).await["value"], 0);

    let host = start(&["--allow-outbound", "self"]);
    let target = format!("{}/counter", own(&host, "hello"));
    let (_, log) = deliver(&client, &host, &target, "").await;
    assert_eq!(log["deliveries"][0]["status"], "delivered", "{log}");
    assert_eq!(counter(&client, &host).await["value"], 1);
    // Still never the control plane.
    let (_, log) = deliver(&client, &host, &format!("{}/_wt/reset", host.url), "").await;
    assert_eq!(log["deliveries"][1]["last_status"], 403, "{log}");
    assert_eq!(counter(&client, &host).await["value"], 1);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let host = start(&[]);
    let client = reqwest::Client::new();
    send(client.post(format!("{}/counter", own(&host, "hello")))).await;
    let reset = format!("{}/_wt/twins/hello/reset", host.url);
    let receiver = Receiver::replying(&format!(
        "HTTP/1.1 307 Temporary Redirect\r\nlocation: {reset}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    ))
    .await;
    let url = receiver.url.clone();
    let (_, log) = deliver(&client, &host, &url, "").await;
    assert_eq!(log["deliveries"][0]["last_status"], 307, "{log}");
    // Each attempt (the first, and the flush's) reached the receiver and
    // went no further.
    assert!(receiver.count() >= 1);
    assert_eq!(counter(&client, &host).await["value"], 1);
}

#[tokio::test]
async fn a_twin_cannot_smuggle_a_request_through_framing_headers() {
    let host = start(&["--allow-outbound", "self"]);
    let client = reqwest::Client::new();
    for header in [
        "content-length:0",
        "transfer-encoding:chunked",
        "host:hello.localhost",
        "connection:keep-alive",
        "wt-delivery:none",
    ] {
        let (status, answer) = send(
            client
                .post(format!("{}/send", own(&host, "adversary")))
                .query(&[
                    ("url", format!("{}/hook", host.url)),
                    ("header", header.into()),
                ])
                .body("POST /_wt/reset HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n"),
        )
        .await;
        assert_eq!(status, 400, "{header}: {answer}");
        assert!(
            answer["refused"]
                .as_str()
                .unwrap()
                .contains("set by the host"),
            "{answer}"
        );
    }
}

#[tokio::test]
async fn reset_and_delete_stop_pending_deliveries() {
    let host = start(&[]);
    let client = reqwest::Client::new();
    let receiver =
        Receiver::replying("HTTP/1.1 500 Nope\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await;
    let url = receiver.url.clone();
    let (queued, log) = deliver(&client, &host, &url, "count=3").await;
    assert_eq!(queued["ids"].as_array().unwrap().len(), 3, "{queued}");
    assert!(
        log["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] == "pending"),
        "{log}"
    );
    let (status, _) = send(client.post(format!("{}/_wt/twins/adversary/reset", host.url))).await;
    assert_eq!(status, 200);
    let after_reset = receiver.count();
    let (_, log) =
        send(client.post(format!("{}/_wt/twins/adversary/outbound/flush", host.url))).await;
    assert_eq!(log["deliveries"], json!([]), "{log}");
    // Retries were due after 1 s; none comes.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(receiver.count(), after_reset);

    deliver(&client, &host, &url, "count=2").await;
    let (status, _) =
        send(client.delete(format!("{}/_wt/twins/adversary/outbound", host.url))).await;
    assert_eq!(status, 200);
    let settled = receiver.count();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(receiver.count(), settled);
}

#[tokio::test]
async fn outbound_bytes_are_bounded_per_call_and_per_twin() {
    let host = start(&[]);
    let client = reqwest::Client::new();
    let adversary = own(&host, "adversary");
    // One body over 1 MiB is refused outright.
    let (status, answer) = send(
        client
            .post(format!("{adversary}/send"))
            .query(&[("url", "http://127.0.0.1:9/"), ("kib", "1025")]),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    // A hundred 1 MiB bodies: a call stops at 4 MiB.
    let (_, answer) = send(client.post(format!("{adversary}/send")).query(&[
        ("url", "http://127.0.0.1:9/"),
        ("kib", "1024"),
        ("count", "100"),
    ]))
    .await;
    let queued = answer["ids"].as_array().unwrap().len();
    assert!((1..=4).contains(&queued), "{answer}");
    assert!(
        answer["refused"].as_str().unwrap().contains("bytes"),
        "{answer}"
    );
    // Pending deliveries (to a port that refuses connections, retried for
    // half a minute) stop at 16 MiB in all.
    let mut total = queued;
    for _ in 0..10 {
        let (_, answer) = send(client.post(format!("{adversary}/send")).query(&[
            ("url", "http://127.0.0.1:9/"),
            ("kib", "1000"),
            ("count", "4"),
        ]))
        .await;
        total += answer["ids"].as_array().unwrap().len();
    }
    assert!(total <= 17, "{total} MiB of deliveries pending");
}

/// Reads one HTTP/1.1 response (framed by `content-length`, which the host
/// always sends) from a kept-alive connection.
async fn read_response(stream: &mut TcpStream) -> (u16, String, String) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut byte))
            .await
            .expect("a response within 10 s")
            .unwrap();
        assert_eq!(
            n,
            1,
            "connection closed mid-head: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head[9..12].parse().unwrap();
    let lengths: Vec<usize> = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.trim().parse().unwrap())
        .collect();
    assert!(lengths.len() <= 1, "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("transfer-encoding"),
        "{head}"
    );
    let mut body = vec![0u8; lengths.first().copied().unwrap_or(0)];
    stream.read_exact(&mut body).await.unwrap();
    (status, head, String::from_utf8_lossy(&body).into_owned())
}

async fn exchange(
    stream: &mut TcpStream,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, String, String) {
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    read_response(stream).await
}

/// Every way a twin could frame its response, each followed on the same
/// connection by a plain request whose answer must be its own.
pub fn hostile_framings() -> Vec<Value> {
    let forged = "HTTP/1.1 200 OK\r\ncontent-length: 15\r\n\r\n{\"forged\":true}";
    let mut specs = Vec::new();
    for headers in [
        json!([["content-length", "2"]]),
        json!([["content-length", " 2"]]),
        json!([["content-length", "2, 2"]]),
        json!([["content-length", "2"], ["content-length", "2"]]),
        json!([["content-length", "-1"]]),
        json!([["content-length", "999"]]),
        json!([["content-length", "2"], ["transfer-encoding", "chunked"]]),
        json!([["transfer-encoding", "chunked"]]),
        json!([["transfer-encoding", "gzip, chunked"]]),
        json!([["connection", "close"]]),
        json!([["connection", "upgrade"], ["upgrade", "websocket"]]),
        json!([["trailer", "x-later"], ["keep-alive", "timeout=0"]]),
    ] {
        specs.push(json!({ "status": 200, "headers": headers, "body": format!("{{}}{forged}") }));
    }
    for status in [100, 101, 103, 204, 304] {
        specs.push(json!({
            "status": status,
            "headers": [["upgrade", "websocket"], ["connection", "upgrade"]],
            "body": forged,
        }));
    }
    specs
}

#[tokio::test]
async fn a_twin_response_cannot_frame_the_connection() {
    let host = start(&[]);
    let addr = own(&host, "adversary")
        .trim_start_matches("http://")
        .to_owned();
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    for spec in hostile_framings() {
        let (status, head, body) =
            exchange(&mut stream, "POST", "/respond", &spec.to_string()).await;
        let asked = spec["status"].as_u64().unwrap() as u16;
        if asked < 200 {
            assert_eq!(status, 500, "{spec}: {head}{body}");
            assert!(body.contains("informational"), "{body}");
        } else {
            assert_eq!(status, asked, "{spec}: {head}");
            let lower = head.to_ascii_lowercase();
            assert!(!lower.contains("upgrade"), "{spec}: {head}");
            assert!(!lower.contains("connection: close"), "{spec}: {head}");
        }
        let (status, _, body) = exchange(&mut stream, "GET", "/ok", "").await;
        assert_eq!(
            (status, body.as_str()),
            (200, r#"{"ok":true}"#),
            "after {spec}"
        );
    }
}

#[tokio::test]
async fn web_pages_cannot_drive_the_control_plane() {
    let host = start(&[]);
    let client = reqwest::Client::new();
    send(client.post(format!("{}/counter", own(&host, "hello")))).await;
    // A cross-site form post, as a page at evil.example sends it.
    let (status, body) = send(
        client
            .post(format!("{}/_wt/reset", host.url))
            .header("origin", "https://evil.example")
            .header("sec-fetch-site", "cross-site")
            .header("sec-fetch-mode", "no-cors")
            .header("content-type", "text/plain;charset=UTF-8")
            .body("{}"),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "cross_origin_refused");
    // The same from the twin's own origin (a page a twin served on the
    // shared listener), and via its /admin alias.
    for (url, origin) in [
        (
            format!("{}/_wt/twins/hello/reset", host.url),
            host.url.clone(),
        ),
        (
            format!("{}/admin/reset", own(&host, "hello")),
            own(&host, "hello"),
        ),
    ] {
        let (status, _) = send(client.post(url).header("origin", origin)).await;
        assert_eq!(status, 403);
    }
    // A form post without Origin (an old browser) still has a simple type.
    let (status, body) = send(
        client
            .put(format!("{}/_wt/twins/hello/state", host.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(r#"{"entries":[]}"#),
    )
    .await;
    assert_eq!(status, 415, "{body}");
    // A preflight gets no CORS grant.
    let response = client
        .request(reqwest::Method::OPTIONS, format!("{}/_wt/reset", host.url))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(
        response
            .headers()
            .keys()
            .all(|k| !k.as_str().starts_with("access-control-"))
    );
    assert_eq!(
        counter(&client, &host).await["value"],
        1,
        "nothing was reset"
    );

    // What tools send still works.
    let (status, _) = send(client.post(format!("{}/_wt/twins/hello/reset", host.url))).await;
    assert_eq!(status, 200);
    assert_eq!(counter(&client, &host).await["value"], 0);
}

#[tokio::test]
async fn dns_rebinding_names_are_refused_on_loopback() {
    let host = start(&[]);
    let client = reqwest::Client::new();
    send(client.post(format!("{}/counter", own(&host, "hello")))).await;
    for url in [
        format!("{}/_wt/twins/hello/state", host.url),
        format!("{}/hello/counter", host.url),
        format!("{}/counter", own(&host, "hello")),
        format!("{}/admin/state", own(&host, "hello")),
    ] {
        let (status, body) = send(client.get(&url).header("host", "evil.example:4100")).await;
        assert_eq!(status, 421, "{url}: {body}");
        assert_eq!(body["error"]["code"], "host_not_allowed");
    }
    for name in ["localhost", "hello.localhost", "127.0.0.1", "[::1]"] {
        let (status, body) = send(
            client
                .get(format!("{}/counter", own(&host, "hello")))
                .header("host", format!("{name}:1234")),
        )
        .await;
        assert_eq!(status, 200, "{name}: {body}");
    }
    let host = start(&["--allow-host", "twins.test"]);
    let (status, _) = send(
        client
            .get(format!("{}/counter", own(&host, "hello")))
            .header("host", "twins.test"),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn buffered_request_bodies_are_bounded() {
    let host = start(&["--max-buffered-bodies", "1MiB"]);
    let client = reqwest::Client::new();
    let (status, body) = send(
        client
            .post(format!("{}/write?key=big", own(&host, "adversary")))
            .body(vec![b'x'; 2 << 20]),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "host_busy");
    // Chunked bodies are counted as they arrive.
    let addr = own(&host, "adversary")
        .trim_start_matches("http://")
        .to_owned();
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(b"POST /write?key=chunked HTTP/1.1\r\nhost: 127.0.0.1\r\ntransfer-encoding: chunked\r\n\r\n")
        .await
        .unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 100 << 10, "x".repeat(100 << 10));
    for _ in 0..20 {
        if stream.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let (status, _, body) = read_response(&mut stream).await;
    assert_eq!(status, 503, "{body}");
    // The budget comes back: a small body is taken.
    let (status, body) = send(
        client
            .post(format!("{}/write?key=small", own(&host, "adversary")))
            .body(vec![b'x'; 100 << 10]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_request_cannot_stage_unbounded_writes_or_deletes() {
    let host = start(&[]);
    let client = reqwest::Client::new();
    let adversary = own(&host, "adversary");
    let before = rss_kib(host.pid());
    // 768 deletes of absent 1 MiB keys: no such key can exist.
    let (status, body) =
        send(client.post(format!("{adversary}/delete-many?count=768&kib=1024"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["existed"], 0);
    // Deletes of absent short keys stage nothing either.
    let (status, _) =
        send(client.post(format!("{adversary}/delete-many?count=200000&kib=0"))).await;
    assert_eq!(status, 200);
    if before > 0 {
        let grown = rss_kib(host.pid()).saturating_sub(before);
        assert!(grown < 200 << 10, "RSS grew by {grown} KiB");
    }
    // Writes stop at 64 MiB staged in one request, with an error the twin
    // sees; nothing of that request commits.
    let (status, body) =
        send(client.post(format!("{adversary}/write-many?count=100&kib=1024"))).await;
    assert_eq!(status, 507, "{body}");
    assert!(
        body["refused"].as_str().unwrap().contains("stage"),
        "{body}"
    );
    let written = body["written"].as_u64().unwrap();
    assert!((60..=64).contains(&written), "{body}");
}

#[tokio::test]
async fn twin_logs_are_bounded_and_printable() {
    let host = start(&[]);
    let client = reqwest::Client::new();
    let (status, _) = send(
        client
            .post(format!("{}/log?lines=5000", own(&host, "adversary")))
            .body("\u{1b}[2J\u{1b}]0;pwned\u{7}cleared\nforged line"),
    )
    .await;
    assert_eq!(status, 200);
    // The panic message of a trap, too.
    let (status, body) = send(client.get(format!(
        "{}/panic?message=%1B%5B31mred%0Aforged",
        own(&host, "adversary")
    )))
    .await;
    assert_eq!(status, 500, "{body}");
    assert!(
        !body["error"]["message"]
            .as_str()
            .unwrap()
            .contains('\u{1b}'),
        "{body}"
    );
    let metrics = reqwest::get(format!("{}/_wt/metrics", host.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let dropped: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("wt_log_lines_dropped_total{twin=\"adversary\"} "))
        .and_then(|v| v.parse().ok())
        .expect("a dropped-lines metric");
    assert!(dropped >= 3900, "{dropped} dropped");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stderr = host.stderr();
    let raw: Vec<&String> = stderr
        .iter()
        .filter(|l| l.contains('\u{1b}') || l.contains('\u{7}'))
        .collect();
    assert!(raw.is_empty(), "{raw:?}");
    assert!(stderr.iter().all(|l| !l.starts_with("forged")));
    let logged = stderr.iter().filter(|l| l.contains("cleared")).count();
    assert!((900..=1100).contains(&logged), "{logged} lines logged");
}

#[test]
fn a_describe_that_declares_too_much_is_refused_quickly() {
    let exited = run_to_exit(&[
        "run",
        fixture_path("bloated").to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--port",
        "bloated=0",
    ]);
    assert_eq!(exited.status.code(), Some(2), "{exited:?}");
    assert!(exited.stderr.contains("100000 settings"), "{exited:?}");
    assert!(!exited.stderr.contains('\u{1b}') && !exited.stdout.contains('\u{1b}'));
}

#[tokio::test]
async fn a_scan_never_copies_more_than_the_twin_could_receive() {
    let host = start(&[]);
    let client = reqwest::Client::new();
    let adversary = own(&host, "adversary");
    for prefix in ["a/", "b/"] {
        let (status, body) = send(client.post(format!(
            "{adversary}/write-many?count=40&kib=1024&prefix={prefix}"
        )))
        .await;
        assert_eq!(status, 200, "{body}");
    }
    // 80 MiB stored; the twin's memory is 64 MiB, so a scan of it all is
    // refused before the host copies it out (it used to copy it all, then
    // the twin ran out of memory taking it).
    let (status, body) = send(client.get(format!("{adversary}/scan-all"))).await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("scan fewer"),
        "{body}"
    );
    // The twin and its state are fine.
    let (status, _) = send(client.get(format!("{adversary}/ok"))).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn twin_pages_are_sandboxed_and_json_is_untouched() {
    let host = start(&[]);
    let client = reqwest::Client::new();
    let respond = |content_type: &str| {
        client
            .post(format!("{}/adversary/respond", host.url))
            .json(&json!({
                "status": 200,
                "headers": [["content-type", content_type], ["content-security-policy", "default-src *"]],
                "body": "<script>fetch('/_wt/twins/hello/state').then(r => r.text()).then(steal)</script>",
            }))
            .send()
    };
    let page = respond("text/html").await.unwrap();
    let policies: Vec<&str> = page
        .headers()
        .get_all("content-security-policy")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        policies
            .iter()
            .any(|p| p.starts_with("sandbox") && !p.contains("allow-same-origin")),
        "{policies:?}"
    );
    let api = respond("application/json").await.unwrap();
    assert_eq!(
        api.headers()
            .get_all("content-security-policy")
            .iter()
            .count(),
        1
    );
}

#[tokio::test]
async fn webhooks_to_localhost_names_resolve_to_loopback() {
    let host = start(&[]);
    let client = reqwest::Client::new();
    let receiver = Receiver::replying("HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n").await;
    let url = receiver.url.clone();
    let url = url.replace("127.0.0.1", "myapp.localhost");
    let (_, log) = deliver(&client, &host, &url, "").await;
    assert_eq!(log["deliveries"][0]["status"], "delivered", "{log}");
    assert!(receiver.count() >= 1);
}

//! What operators drive: the admin token off loopback, one twin's own clock,
//! hot reload without losing state or in-flight requests, and the access log.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;
use wt_tests::{HostProcess, json, run_to_exit, send, twin_path};

#[test]
fn listening_beyond_loopback_needs_an_admin_token() {
    let hello = twin_path("hello").display().to_string();
    let out = run_to_exit(&["run", &hello, "--listen", "0.0.0.0:0", "--no-own-ports"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        out.stderr
            .contains("--listen 0.0.0.0:0 is reachable beyond this machine"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--admin-token"), "{}", out.stderr);
}

#[tokio::test]
async fn the_admin_token_guards_the_control_plane_and_its_aliases_only() {
    let host = HostProcess::start(
        &[("hello", twin_path("hello"))],
        &["--admin-token", "s3cret"],
    );
    assert!(
        host.stdout
            .iter()
            .any(|l| l.starts_with("control plane requires the admin token")),
        "{:?}",
        host.stdout
    );
    let client = reqwest::Client::new();
    let health = format!("{}/_wt/health", host.url);
    let (status, body) = send(client.get(&health)).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "admin_token_required");
    for wrong in ["s3cre", "s3cret!", "S3CRET", ""] {
        let (status, _) = send(client.get(&health).bearer_auth(wrong)).await;
        assert_eq!(status, 401, "{wrong:?}");
    }
    let (status, _) = send(client.get(&health).bearer_auth("s3cret")).await;
    assert_eq!(status, 200);
    // The WonderTwin alias on the twin's own port is the control plane too.
    let own = host.twin("hello").own_url.clone().unwrap();
    let (status, _) = send(client.post(format!("{own}/admin/reset"))).await;
    assert_eq!(status, 401);
    let (status, _) = send(
        client
            .post(format!("{own}/admin/reset"))
            .bearer_auth("s3cret"),
    )
    .await;
    assert_eq!(status, 200);
    // Twin routes need no token.
    let (status, _) = send(client.get(format!("{own}/"))).await;
    assert_eq!(status, 200);
    // The CLI verbs pass it on.
    let refused = run_to_exit(&["reset", "--url", &host.url]);
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(refused.stderr.contains("401"), "{}", refused.stderr);
    let reset = run_to_exit(&["reset", "--url", &host.url, "--admin-token", "s3cret"]);
    assert!(reset.status.success(), "{reset:?}");
}

#[tokio::test]
async fn one_twins_clock_moves_alone_and_still_follows_global_moves() {
    let host = HostProcess::start(&[("a", twin_path("hello")), ("b", twin_path("hello"))], &[]);
    let client = reqwest::Client::new();
    let wt = |p: &str| format!("{}/_wt/{p}", host.url);
    let time = |twin: &str| format!("{}/time", host.twin(twin).prefixed_url);
    let (_, frozen) = send(client.post(wt("clock/freeze"))).await;
    let t0 = frozen["now_millis"].as_u64().unwrap();

    let (status, a) = send(
        client
            .post(wt("twins/a/clock/advance"))
            .json(&json!({"by": "1h"})),
    )
    .await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(
        (a["twin"].clone(), a["offset_millis"].clone()),
        (json!("a"), json!(3_600_000))
    );
    let (_, seen_a) = send(client.get(time("a"))).await;
    let (_, seen_b) = send(client.get(time("b"))).await;
    assert_eq!(seen_a["now_millis"], t0 + 3_600_000);
    assert_eq!(seen_b["now_millis"], t0);

    // A global move reaches both.
    send(client.post(wt("clock/advance")).json(&json!({"by": "24h"}))).await;
    let (_, seen_a) = send(client.get(time("a"))).await;
    let (_, seen_b) = send(client.get(time("b"))).await;
    assert_eq!(seen_a["now_millis"], t0 + 86_400_000 + 3_600_000);
    assert_eq!(seen_b["now_millis"], t0 + 86_400_000);

    // WonderTwin's /admin/time on b's own port moves b alone.
    let own_b = host.twin("b").own_url.clone().unwrap();
    let (status, _) = send(
        client
            .post(format!("{own_b}/admin/time/advance"))
            .json(&json!({"by": "10m"})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, seen_b) = send(client.get(time("b"))).await;
    assert_eq!(seen_b["now_millis"], t0 + 86_400_000 + 600_000);

    // Back to following the global clock; the global clock has no reset.
    let (status, cleared) = send(client.post(wt("twins/a/clock/reset"))).await;
    assert_eq!(status, 200);
    assert_eq!(cleared["offset_millis"], 0);
    let (status, _) = send(client.post(wt("clock/reset"))).await;
    assert_eq!(status, 404);
    let (status, _) = send(client.get(wt("twins/a/clock/advance"))).await;
    assert_eq!(status, 405);

    // The CLI, per twin.
    let out = run_to_exit(&["clock", "advance", "2h", "--twin", "b", "--url", &host.url]);
    assert!(out.status.success(), "{out:?}");
    let (_, seen_b) = send(client.get(time("b"))).await;
    assert_eq!(seen_b["now_millis"], t0 + 86_400_000 + 600_000 + 7_200_000);
    let out = run_to_exit(&["clock", "reset", "--url", &host.url]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stderr.contains("needs --twin"), "{}", out.stderr);
}

/// hello.wasm with a custom section appended: same behavior, other bytes
/// (so another sha256).
fn hello_variant(tag: u8) -> Vec<u8> {
    let mut bytes = std::fs::read(twin_path("hello")).unwrap();
    bytes.extend_from_slice(&[0x00, 0x03, 0x01, b'v', tag]);
    bytes
}

async fn sha_of(client: &reqwest::Client, host: &HostProcess) -> String {
    let (_, twins) = send(client.get(format!("{}/_wt/twins", host.url))).await;
    twins["twins"][0]["sha256"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn reload_keeps_state_and_finishes_requests_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let file: PathBuf = dir.path().join("hello.wasm");
    std::fs::write(&file, hello_variant(1)).unwrap();
    let host = HostProcess::start(&[("hello", file.clone())], &["--watch"]);
    let client = reqwest::Client::new();
    let base = host.twin("hello").prefixed_url.clone();
    let own = host.twin("hello").own_url.clone().unwrap();
    let (status, item) = send(
        client
            .post(format!("{base}/items"))
            .form(&[("name", "kept")]),
    )
    .await;
    assert_eq!(status, 200);
    let first = sha_of(&client, &host).await;

    // A request in flight when the reload happens finishes on the old code.
    let spin = tokio::spawn(send(client.get(format!("{own}/spin?ms=1500"))));
    tokio::time::sleep(Duration::from_millis(200)).await;
    std::fs::write(&file, hello_variant(2)).unwrap();
    let (status, reloaded) =
        send(client.post(format!("{}/_wt/twins/hello/reload", host.url))).await;
    assert_eq!(status, 200, "{reloaded}");
    assert_ne!(reloaded["reloaded"]["sha256"], first);
    let (status, spun) = spin.await.unwrap();
    assert_eq!(status, 200, "{spun}");

    // State survived, on the shared listener and the own port alike.
    for url in [format!("{base}/items"), format!("{own}/items")] {
        let (_, list) = send(client.get(url)).await;
        assert_eq!(list["data"][0]["id"], item["id"]);
    }

    // --watch notices a changed file by itself.
    let before = sha_of(&client, &host).await;
    std::fs::write(&file, hello_variant(3)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while sha_of(&client, &host).await == before {
        assert!(Instant::now() < deadline, "--watch did not reload");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A broken file is refused and the old code keeps serving.
    std::fs::write(&file, b"not wasm").unwrap();
    let (status, refused) = send(client.post(format!("{}/_wt/twins/hello/reload", host.url))).await;
    assert_eq!(status, 400);
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a WebAssembly file"),
        "{refused}"
    );
    let (status, _) = send(client.get(format!("{base}/items"))).await;
    assert_eq!(status, 200);
    assert!(
        host.stderr().iter().any(|l| l.contains("reloaded")),
        "the reload is logged"
    );
}

#[tokio::test]
async fn every_request_is_logged_once_with_twin_method_path_status_and_micros() {
    let host = HostProcess::start(&[("hello", twin_path("hello"))], &["--log-format", "json"]);
    let client = reqwest::Client::new();
    let base = host.twin("hello").prefixed_url.clone();
    send(client.get(format!("{base}/items/item_missing"))).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let line = loop {
        let found = host
            .stderr()
            .into_iter()
            .find(|l| l.contains("/items/item_missing"));
        if let Some(line) = found {
            break line;
        }
        assert!(Instant::now() < deadline, "no access log line");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let record = json(&line);
    assert_eq!(record["fields"]["message"], "answered");
    let span = &record["span"];
    assert_eq!(
        (
            &span["twin"],
            &span["method"],
            &span["path"],
            &span["status"]
        ),
        (
            &json!("hello"),
            &json!("GET"),
            &json!("/items/item_missing"),
            &json!(404)
        )
    );
    assert!(span["micros"].as_u64().unwrap() > 0, "{record}");
}

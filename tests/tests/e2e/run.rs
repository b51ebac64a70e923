//! `wt-host run` end to end: the real binary, real sockets, real signals.

use wt_tests::{HostProcess, fixture_path, json, run_to_exit, twin_path};

fn hello() -> HostProcess {
    HostProcess::start(&[("hello", twin_path("hello"))], &[])
}

#[tokio::test]
async fn hello_answers_on_the_shared_prefix_its_own_port_and_its_host_name() {
    let host = hello();
    let ready = host.twin("hello");
    assert_eq!(ready.version, "0.1.0");
    let own = ready.own_url.clone().expect("hello has its own port");
    assert_eq!(ready.prefixed_url, format!("{}/hello", host.url));
    let client = reqwest::Client::new();

    // The twin sees the path without the prefix, and the raw query.
    let via_prefix = client
        .get(format!("{}/echo/a/b?x=1&y=%20", ready.prefixed_url))
        .send()
        .await
        .unwrap();
    assert_eq!(via_prefix.status(), 200);
    let body = json(&via_prefix.text().await.unwrap());
    assert_eq!(body["path"], "/echo/a/b");
    assert_eq!(body["query"], "x=1&y=%20");
    assert_eq!(body["method"], "GET");

    let via_port = client
        .post(format!("{own}/echo"))
        .body("payload")
        .send()
        .await
        .unwrap();
    let body = json(&via_port.text().await.unwrap());
    assert_eq!(body["path"], "/echo");
    assert_eq!(body["body"], "payload");

    let via_host = client
        .get(format!("{}/echo/z", host.url))
        .header("host", "hello.localhost")
        .send()
        .await
        .unwrap();
    let body = json(&via_host.text().await.unwrap());
    assert_eq!(body["path"], "/echo/z");

    // The bare prefix is the twin's root.
    let root = client.get(&ready.prefixed_url).send().await.unwrap();
    assert_eq!(root.status(), 200);
    assert_eq!(json(&root.text().await.unwrap())["twin"], "hello");
}

#[tokio::test]
async fn unknown_twin_is_a_json_404_naming_what_is_loaded() {
    let host = hello();
    let client = reqwest::Client::new();
    for request in [
        client.get(format!("{}/nope/v1/x", host.url)),
        client
            .get(format!("{}/v1/x", host.url))
            .header("host", "nope.localhost:4100"),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 404);
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "404s are JSON"
        );
        let body = json(&response.text().await.unwrap());
        assert_eq!(body["error"]["code"], "unknown_twin");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("'nope'") && message.contains("hello"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn a_trap_answers_500_json_rolls_back_and_the_next_request_works() {
    let host = hello();
    let base = host.twin("hello").own_url.clone().unwrap();
    let client = reqwest::Client::new();

    let trapped = client.get(format!("{base}/trap")).send().await.unwrap();
    assert_eq!(trapped.status(), 500);
    let body = json(&trapped.text().await.unwrap());
    assert_eq!(body["error"]["code"], "twin_trapped");
    assert_eq!(body["error"]["twin"], "hello");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("hello: trap requested"),
        "panic message is surfaced: {message}"
    );

    // A write made before the trap is not committed.
    let rolled_back = client
        .post(format!("{base}/trap-after-write"))
        .send()
        .await
        .unwrap();
    assert_eq!(rolled_back.status(), 500);
    let counter = client.get(format!("{base}/counter")).send().await.unwrap();
    assert_eq!(counter.status(), 200);
    assert_eq!(json(&counter.text().await.unwrap())["value"], 0);

    let next = client.post(format!("{base}/counter")).send().await.unwrap();
    assert_eq!(next.status(), 200);
    assert_eq!(json(&next.text().await.unwrap())["value"], 1);
}

#[tokio::test]
async fn sixty_four_concurrent_increments_end_at_sixty_four() {
    let host = hello();
    let base = host.twin("hello").prefixed_url.clone();
    let client = reqwest::Client::new();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let client = client.clone();
        let url = format!("{base}/counter");
        tasks.spawn(async move {
            let response = client.post(url).send().await.unwrap();
            assert_eq!(response.status(), 200);
            json(&response.text().await.unwrap())["value"]
                .as_i64()
                .unwrap()
        });
    }
    let mut seen = Vec::new();
    while let Some(value) = tasks.join_next().await {
        seen.push(value.unwrap());
    }
    seen.sort_unstable();
    // Linearizable: every increment saw a distinct predecessor.
    assert_eq!(seen, (1..=64).collect::<Vec<_>>());
    let end = client.get(format!("{base}/counter")).send().await.unwrap();
    assert_eq!(json(&end.text().await.unwrap())["value"], 64);
}

#[tokio::test]
async fn control_plane_lists_twins_and_reports_health() {
    let host = hello();
    let client = reqwest::Client::new();
    let twins = client
        .get(format!("{}/_wt/twins", host.url))
        .send()
        .await
        .unwrap();
    assert_eq!(twins.status(), 200);
    let body = json(&twins.text().await.unwrap());
    let hello = &body["twins"][0];
    assert_eq!(hello["name"], "hello");
    assert_eq!(hello["version"], "0.1.0");
    assert_eq!(hello["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(hello["urls"]["prefixed"], format!("{}/hello", host.url));
    assert_eq!(
        hello["urls"]["own"].as_str(),
        host.twin("hello").own_url.as_deref()
    );

    let health = client
        .get(format!("{}/_wt/health", host.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let body = json(&health.text().await.unwrap());
    assert_eq!(body["summary"], "1/1 twins healthy");
    assert_eq!(body["twins"][0]["status"], "ok");
    assert_eq!(body["unreachable"], serde_json::json!([]));

    // Reset drops state without a restart.
    let base = host.twin("hello").own_url.clone().unwrap();
    client.post(format!("{base}/counter")).send().await.unwrap();
    let reset = client
        .post(format!("{}/_wt/twins/hello/reset", host.url))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 200);
    let counter = client.get(format!("{base}/counter")).send().await.unwrap();
    assert_eq!(json(&counter.text().await.unwrap())["value"], 0);

    let unknown = client
        .get(format!("{}/_wt/nothing", host.url))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn oversized_request_body_is_413_json() {
    let host = hello();
    let base = host.twin("hello").own_url.clone().unwrap();
    let response = reqwest::Client::new()
        .post(format!("{base}/echo"))
        .body(vec![b'x'; 11 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(
        json(&response.text().await.unwrap())["error"]["code"],
        "request_too_large"
    );
}

#[test]
fn second_start_loads_from_the_precompiled_cache() {
    let cache = tempfile::tempdir().unwrap();
    let twins = [("hello", twin_path("hello"))];
    let first = HostProcess::start_with_cache(&twins, &[], cache.path()).unwrap();
    assert!(
        first.twin("hello").detail.contains("cache miss"),
        "{:?}",
        first.twins
    );
    let cold = first.startup;
    drop(first);
    let second = HostProcess::start_with_cache(&twins, &[], cache.path()).unwrap();
    assert!(
        second.twin("hello").detail.contains("cache hit"),
        "{:?}",
        second.twins
    );
    eprintln!(
        "startup to ready: cold cache {cold:?}, warm cache {:?} ({})",
        second.startup,
        second.twin("hello").detail
    );
}

#[test]
fn a_tampered_cache_entry_is_recompiled_not_loaded() {
    let cache = tempfile::tempdir().unwrap();
    let twins = [("hello", twin_path("hello"))];
    drop(HostProcess::start_with_cache(&twins, &[], cache.path()).unwrap());
    let entry = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .expect("a cache entry");
    let mut bytes = std::fs::read(&entry).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&entry, bytes).unwrap();
    let again = HostProcess::start_with_cache(&twins, &[], cache.path()).unwrap();
    assert!(
        again.twin("hello").detail.contains("cache miss"),
        "{:?}",
        again.twins
    );
}

#[test]
fn refuses_a_text_file_a_core_module_and_a_foreign_component_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.wasm");
    std::fs::write(&text, "just some text\n").unwrap();
    // The smallest valid core module: magic and version 1.
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let foreign = fixture_path("cli-command");
    let missing = dir.path().join("missing.wasm");

    let cases = [
        (&text, "not a WebAssembly file"),
        (&core, "core WebAssembly module, not a component"),
        (&foreign, "component of another world"),
        (&missing, "cannot read"),
    ];
    for (path, expected) in cases {
        let path_str = path.to_str().unwrap();
        let out = run_to_exit(&["run", path_str]);
        assert_eq!(out.status.code(), Some(2), "{path_str}: {out:?}");
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {:?}", out.stderr);
        assert!(
            lines[0].contains(path_str) && lines[0].contains(expected),
            "{}",
            lines[0]
        );
    }
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    let out = run_to_exit(&["run", "x.wasm", "--port", "hello"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stderr.contains("--port"), "{}", out.stderr);

    let hello = twin_path("hello");
    let out = run_to_exit(&[
        "run",
        hello.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--port",
        "stripe=0",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stderr.contains("'stripe'"), "{}", out.stderr);
}

#[test]
fn sigterm_exits_zero() {
    let host = hello();
    let status = host.terminate();
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn sigterm_lets_the_request_in_flight_finish() {
    let host = hello();
    let url = format!(
        "{}/spin?ms=700",
        host.twin("hello").own_url.clone().unwrap()
    );
    let in_flight = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let response = reqwest::get(&url).await.unwrap();
            let code = response.status().as_u16();
            (code, response.text().await.unwrap())
        })
    });
    // Give the request time to reach the twin, then ask the host to stop.
    std::thread::sleep(std::time::Duration::from_millis(250));
    let status = host.terminate();
    assert_eq!(status.code(), Some(0), "{status:?}");
    let (code, body) = in_flight.join().unwrap();
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["spun_ms"], 700);
}

#[tokio::test]
async fn a_request_past_its_deadline_is_a_504_and_the_twin_keeps_serving() {
    let host = HostProcess::start(
        &[("hello", twin_path("hello"))],
        &["--request-timeout", "300ms"],
    );
    let base = host.twin("hello").own_url.clone().unwrap();
    let client = reqwest::Client::new();
    let started = std::time::Instant::now();
    let slow = client
        .get(format!("{base}/spin?ms=10000"))
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(slow.status(), 504);
    let body = json(&slow.text().await.unwrap());
    assert_eq!(body["error"]["code"], "twin_timeout");
    assert!(
        took < std::time::Duration::from_secs(5),
        "stopped early: {took:?}"
    );
    let next = client.get(format!("{base}/counter")).send().await.unwrap();
    assert_eq!(next.status(), 200);
}

#[tokio::test]
async fn copies_of_one_twin_under_other_names_have_separate_state() {
    let path = twin_path("hello");
    let host = HostProcess::start(&[("alpha", path.clone()), ("beta", path)], &[]);
    let client = reqwest::Client::new();
    let alpha = host.twin("alpha").prefixed_url.clone();
    let beta = host.twin("beta").prefixed_url.clone();
    for _ in 0..3 {
        client
            .post(format!("{alpha}/counter"))
            .send()
            .await
            .unwrap();
    }
    let a = client.get(format!("{alpha}/counter")).send().await.unwrap();
    let b = client.get(format!("{beta}/counter")).send().await.unwrap();
    assert_eq!(json(&a.text().await.unwrap())["value"], 3);
    assert_eq!(json(&b.text().await.unwrap())["value"], 0);
}

#[tokio::test]
async fn a_busy_twin_does_not_hold_up_another_twin() {
    let path = twin_path("hello");
    let host = HostProcess::start(&[("alpha", path.clone()), ("beta", path)], &[]);
    let client = reqwest::Client::new();
    let alpha = host.twin("alpha").prefixed_url.clone();
    let beta = host.twin("beta").prefixed_url.clone();

    let busy = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .get(format!("{alpha}/spin?ms=3000"))
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    // Let alpha start spinning, then ask beta; beta must answer while alpha
    // is still busy (ordering, not a timing threshold).
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let answered = client.post(format!("{beta}/counter")).send().await.unwrap();
    assert_eq!(answered.status(), 200);
    assert!(
        !busy.is_finished(),
        "beta answered only after alpha finished"
    );
    assert_eq!(busy.await.unwrap(), 200);
}

/// Found by tests/fuzz.rs: a client that shuts its write side after sending
/// the request got no response while the twin was still working.
#[test]
fn regression_half_closed_client_still_gets_its_response() {
    use std::io::{Read, Write};
    let host = hello();
    let own = host.twin("hello").own_url.clone().unwrap();
    let mut stream = std::net::TcpStream::connect(own.trim_start_matches("http://")).unwrap();
    stream
        .write_all(b"GET /spin?ms=200 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply:?}");
}

#[tokio::test]
async fn too_many_request_headers_get_a_431_and_the_host_keeps_serving() {
    let host = hello();
    let base = host.twin("hello").own_url.clone().unwrap();
    let client = reqwest::Client::new();
    let mut request = client.get(format!("{base}/echo"));
    for i in 0..150 {
        request = request.header(format!("x-flood-{i}"), "v");
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 431);
    let next = client.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(next.status(), 200);
}

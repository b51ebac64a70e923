//! The sandbox, tested with a twin that misbehaves on purpose
//! (tests/fixtures/adversary): every attempt fails inside the guest or ends
//! only its own request, and the host and every other twin keep serving.

use std::time::{Duration, Instant};

use wt_tests::{HostProcess, fixture_path, json, send, twin_path};

fn start(extra: &[&str]) -> HostProcess {
    HostProcess::start(
        &[
            ("adversary", fixture_path("adversary")),
            ("hello", twin_path("hello")),
        ],
        extra,
    )
}

async fn get(client: &reqwest::Client, url: String) -> (u16, serde_json::Value) {
    send(client.get(url)).await
}

#[tokio::test]
async fn a_spinning_twin_is_stopped_and_another_twin_stays_fast_meanwhile() {
    let host = start(&["--request-timeout", "2s"]);
    let adversary = host.twin("adversary").prefixed_url.clone();
    let hello = host.twin("hello").prefixed_url.clone();
    let client = reqwest::Client::new();

    let started = Instant::now();
    let spinning = tokio::spawn({
        let client = client.clone();
        async move { get(&client, format!("{adversary}/loop")).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut latencies = Vec::new();
    for _ in 0..20 {
        let sent = Instant::now();
        let (status, _) = get(&client, format!("{hello}/counter")).await;
        latencies.push(sent.elapsed());
        assert_eq!(status, 200);
    }
    assert!(
        !spinning.is_finished(),
        "hello's requests all answered while adversary spun"
    );
    let (status, body) = spinning.await.unwrap();
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["error"]["code"], "twin_timeout");
    assert_eq!(body["error"]["twin"], "adversary");
    latencies.sort();
    eprintln!(
        "while adversary spun: hello median {:?}, max {:?}; adversary stopped after {:?}",
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1],
        started.elapsed()
    );
    let (status, _) = get(
        &client,
        format!("{}/ok", host.twin("adversary").prefixed_url),
    )
    .await;
    assert_eq!(status, 200, "the spinning twin serves its next request");
}

#[tokio::test]
async fn memory_stack_panics_and_aborts_end_only_their_request() {
    let host = start(&["--max-memory", "32MiB"]);
    let base = host.twin("adversary").own_url.clone().unwrap();
    let client = reqwest::Client::new();

    let (status, body) = get(&client, format!("{base}/alloc")).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"]["code"], "twin_memory_limit");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("adversary") && message.contains("33554432"),
        "{message}"
    );

    let (status, body) = get(&client, format!("{base}/huge-response")).await;
    assert_eq!(
        status, 500,
        "a gigabyte cannot be built inside the limit: {body}"
    );
    assert_eq!(body["error"]["code"], "twin_memory_limit");

    for (route, needle) in [
        ("recurse", "stack"),
        ("panic", "adversary: panic on purpose"),
        ("abort", ""),
    ] {
        let (status, body) = get(&client, format!("{base}/{route}")).await;
        assert_eq!(status, 500, "{route}: {body}");
        assert_eq!(body["error"]["code"], "twin_trapped", "{route}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{route}: {message}");
        let (status, _) = get(&client, format!("{base}/ok")).await;
        assert_eq!(status, 200, "after {route}");
    }
    let (status, _) = get(
        &client,
        format!("{}/", host.twin("hello").own_url.clone().unwrap()),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn responses_past_the_limit_are_refused_and_under_it_delivered() {
    let host = start(&[]);
    let base = host.twin("adversary").own_url.clone().unwrap();
    let client = reqwest::Client::new();
    let (status, body) = get(&client, format!("{base}/big-response?mb=20")).await;
    assert_eq!(status, 500);
    assert_eq!(body["error"]["code"], "response_too_large");
    let ok = client
        .get(format!("{base}/big-response?mb=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.bytes().await.unwrap().len(), 2 << 20);
}

#[tokio::test]
async fn no_files_environment_arguments_or_sockets() {
    let host = start(&[]);
    let base = host.twin("adversary").own_url.clone().unwrap();
    let client = reqwest::Client::new();

    let (_, body) = get(&client, format!("{base}/read-file?path=/etc/passwd")).await;
    assert_eq!(body["file"]["read"], false, "{body}");
    assert_eq!(body["root_entries"], serde_json::Value::Null, "{body}");
    let (_, body) = get(&client, format!("{base}/read-file?path=Cargo.toml")).await;
    assert_eq!(body["file"]["read"], false, "{body}");

    let (_, body) = get(&client, format!("{base}/env")).await;
    assert_eq!(body["vars"], serde_json::json!([]), "{body}");
    assert_eq!(body["args"], serde_json::json!([]), "{body}");

    // Even the host's own listener, on loopback, is out of reach.
    let addr = host.url.trim_start_matches("http://").to_owned();
    let (_, body) = get(&client, format!("{base}/socket?addr={addr}")).await;
    assert_eq!(body["connected"], false, "{body}");
}

#[tokio::test]
async fn a_twin_sees_only_its_own_keys_and_a_killed_request_writes_nothing() {
    let host = start(&["--request-timeout", "500ms"]);
    let adversary = host.twin("adversary").own_url.clone().unwrap();
    let hello = host.twin("hello").own_url.clone().unwrap();
    let client = reqwest::Client::new();

    client
        .post(format!("{hello}/counter"))
        .send()
        .await
        .unwrap();
    client
        .post(format!("{hello}/items"))
        .form(&[("name", "private")])
        .send()
        .await
        .unwrap();
    let (_, body) = get(&client, format!("{adversary}/scan-all")).await;
    assert_eq!(body["keys"], serde_json::json!([]), "{body}");

    let stopped = client
        .post(format!("{adversary}/write-then-loop?key=half"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(stopped.status(), 504);
    let (_, body) = get(&client, format!("{adversary}/scan-all")).await;
    assert_eq!(
        body["keys"],
        serde_json::json!([]),
        "the write before the kill rolled back"
    );
}

#[tokio::test]
async fn past_the_queue_a_busy_twin_answers_503_with_retry_after() {
    let host = start(&["--request-timeout", "1500ms", "--max-queue", "2"]);
    let base = host.twin("adversary").own_url.clone().unwrap();
    let client = reqwest::Client::new();
    let spinning = tokio::spawn({
        let (client, base) = (client.clone(), base.clone());
        async move {
            client
                .get(format!("{base}/loop"))
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut waiting = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let (client, base) = (client.clone(), base.clone());
        waiting.spawn(async move {
            let response = client.get(format!("{base}/ok")).send().await.unwrap();
            let retry = response.headers().get("retry-after").cloned();
            (response.status().as_u16(), retry)
        });
    }
    let mut statuses = Vec::new();
    while let Some(result) = waiting.join_next().await {
        let (status, retry) = result.unwrap();
        if status == 503 {
            assert_eq!(retry.unwrap(), "1");
        }
        statuses.push(status);
    }
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        [200, 200, 503, 503, 503],
        "two queued, three turned away"
    );
    assert_eq!(spinning.await.unwrap(), 504);
}

#[tokio::test]
async fn a_twin_over_its_state_quota_gets_an_error_it_can_report() {
    let host = start(&["--max-state", "64KiB"]);
    let base = host.twin("adversary").own_url.clone().unwrap();
    let client = reqwest::Client::new();
    let mut written = 0;
    let refusal = loop {
        let response = client
            .post(format!("{base}/write?key=k{written}"))
            .body(vec![b'v'; 10 << 10])
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = json(&response.text().await.unwrap());
        if status != 200 {
            break body;
        }
        written += 1;
        assert!(written < 20, "the quota never applied");
    };
    assert_eq!(
        written, 6,
        "six 10 KiB values fit in 64 KiB, the seventh does not"
    );
    assert_eq!(
        refusal["error"]["code"], "store_quota_exceeded",
        "{refusal}"
    );
    assert!(
        refusal["error"]["message"]
            .as_str()
            .unwrap()
            .contains("65536 bytes"),
        "{refusal}"
    );
    // The host is fine, and the twin's committed state is what was accepted.
    let (_, body) = get(&client, format!("{base}/scan-all")).await;
    assert_eq!(body["keys"].as_array().unwrap().len(), 6);
    let twins = json(
        &client
            .get(format!("{}/_wt/twins", host.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    let adversary = twins["twins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "adversary")
        .unwrap();
    assert_eq!(adversary["state"]["keys"], 6);
}

#[tokio::test]
async fn when_every_instance_slot_is_busy_requests_wait_instead_of_failing() {
    let host = start(&["--max-instances", "1"]);
    let adversary = host.twin("adversary").own_url.clone().unwrap();
    let hello = host.twin("hello").own_url.clone().unwrap();
    let client = reqwest::Client::new();
    let hello_hold = tokio::spawn({
        let client = client.clone();
        async move {
            // Holds the only slot for 2 s: long enough that the request
            // below surely comes while it runs, even with the other test
            // modules of this binary loading both cores.
            client
                .get(format!("{hello}/spin?ms=2000"))
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let waited = client.get(format!("{adversary}/ok")).send().await.unwrap();
    assert_eq!(waited.status(), 200, "waited for the slot, did not fail");
    assert!(
        hello_hold.is_finished(),
        "it could only run once the slot was free"
    );
    assert_eq!(hello_hold.await.unwrap(), 200);
}

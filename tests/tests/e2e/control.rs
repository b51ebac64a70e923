//! The `/_wt/` control plane against a running host: twin time, state
//! export/import, the request journal, and resets.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wt_tests::{HostProcess, json, twin_path};

fn hello(extra: &[&str]) -> HostProcess {
    HostProcess::start(&[("hello", twin_path("hello"))], extra)
}

async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = client.request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        if text.is_empty() {
            Value::Null
        } else {
            json(&text)
        },
    )
}

#[tokio::test]
async fn twin_time_freezes_advances_and_jumps() {
    let host = hello(&[]);
    let client = reqwest::Client::new();
    let wt = |p: &str| format!("{}/_wt/{p}", host.url);
    let time = || format!("{}/time", host.twin("hello").prefixed_url);

    let (status, frozen) = call(&client, reqwest::Method::POST, wt("clock/freeze"), None).await;
    assert_eq!(status, 200);
    assert_eq!(frozen["frozen"], true);
    let at = frozen["now_millis"].as_u64().unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (_, seen) = call(&client, reqwest::Method::GET, time(), None).await;
    assert_eq!(seen["now_millis"], at, "the twin sees frozen time");

    let (status, _) = call(
        &client,
        reqwest::Method::POST,
        wt("clock/advance"),
        Some(json!({ "by": "24h" })),
    )
    .await;
    assert_eq!(status, 200);
    let (_, seen) = call(&client, reqwest::Method::GET, time(), None).await;
    assert_eq!(seen["now_millis"], at + 86_400_000);
    assert!(
        seen["wall_millis"].as_u64().unwrap() < at + 3_600_000,
        "wall time does not move with twin time"
    );

    let (_, _) = call(
        &client,
        reqwest::Method::POST,
        wt("clock/advance"),
        Some(json!({ "to": 4_102_444_800_000_u64 })),
    )
    .await;
    let (_, seen) = call(&client, reqwest::Method::GET, time(), None).await;
    assert_eq!(seen["now_millis"], 4_102_444_800_000_u64);

    let (_, running) = call(&client, reqwest::Method::POST, wt("clock/unfreeze"), None).await;
    assert_eq!(running["frozen"], false);
    let (_, clock) = call(&client, reqwest::Method::GET, wt("clock"), None).await;
    assert!(clock["now_millis"].as_u64().unwrap() >= 4_102_444_800_000_u64);

    for bad in [
        json!({ "by": "3 weeks" }),
        json!({ "by": "1h", "to": 5 }),
        json!({}),
    ] {
        let (status, body) = call(
            &client,
            reqwest::Method::POST,
            wt("clock/advance"),
            Some(bad.clone()),
        )
        .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "invalid_clock_request");
    }
}

#[tokio::test]
async fn state_exports_and_imports_exactly_and_seeds_a_twin() {
    let host = hello(&[]);
    let client = reqwest::Client::new();
    let base = host.twin("hello").own_url.clone().unwrap();
    let state_url = format!("{}/_wt/twins/hello/state", host.url);

    let created = client
        .post(format!("{base}/items"))
        .form(&[("name", "seeded"), ("metadata[k]", "v")])
        .send()
        .await
        .unwrap();
    let id = json(&created.text().await.unwrap())["id"]
        .as_str()
        .unwrap()
        .to_owned();
    client.post(format!("{base}/counter")).send().await.unwrap();

    let (status, mut exported) = call(&client, reqwest::Method::GET, state_url.clone(), None).await;
    assert_eq!(status, 200);
    assert_eq!(exported["twin"], "hello");
    // A binary value travels as base64 and comes back byte for byte.
    exported["entries"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "key": "zz/binary", "base64": "AJ//" }));

    client
        .post(format!("{}/_wt/twins/hello/reset", host.url))
        .send()
        .await
        .unwrap();
    let gone = client
        .get(format!("{base}/items/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);

    let (status, imported) = call(
        &client,
        reqwest::Method::PUT,
        state_url.clone(),
        Some(exported.clone()),
    )
    .await;
    assert_eq!(status, 200, "{imported}");
    let item = client
        .get(format!("{base}/items/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(json(&item.text().await.unwrap())["metadata"]["k"], "v");
    let (_, counter) = call(
        &client,
        reqwest::Method::GET,
        format!("{base}/counter"),
        None,
    )
    .await;
    assert_eq!(counter["value"], 1);

    let (_, again) = call(&client, reqwest::Method::GET, state_url.clone(), None).await;
    assert_eq!(again["entries"], exported["entries"], "round-trips exactly");

    for bad in [
        json!({ "entries": [{ "key": "k" }] }),
        json!({ "entries": [{ "key": "k", "text": "a", "base64": "YQ==" }] }),
        json!({ "entries": [{ "key": "k", "base64": "not base64!" }] }),
        json!({ "rows": [] }),
    ] {
        let (status, body) = call(
            &client,
            reqwest::Method::PUT,
            state_url.clone(),
            Some(bad.clone()),
        )
        .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "invalid_state_document");
    }
    let (status, _) = call(
        &client,
        reqwest::Method::GET,
        format!("{}/_wt/twins/nope/state", host.url),
        None,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_journal_records_filters_clears_and_stays_bounded() {
    let host = hello(&["--journal-size", "50"]);
    let client = reqwest::Client::new();
    let base = host.twin("hello").own_url.clone().unwrap();
    let journal = format!("{}/_wt/twins/hello/requests", host.url);

    client
        .post(format!("{base}/items?expand[]=x"))
        .form(&[("name", "journaled")])
        .send()
        .await
        .unwrap();
    client
        .get(format!("{base}/items/item_missing"))
        .send()
        .await
        .unwrap();
    let (_, body) = call(&client, reqwest::Method::GET, journal.clone(), None).await;
    let entries = body["requests"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["method"], "POST");
    assert_eq!(entries[0]["path"], "/items");
    assert_eq!(entries[0]["query"], "expand[]=x");
    assert_eq!(entries[0]["request_body"], "name=journaled");
    assert_eq!(entries[0]["status"], 200);
    assert_eq!(entries[1]["status"], 404);
    assert!(
        entries[1]["response_body"]
            .as_str()
            .unwrap()
            .contains("resource_missing")
    );

    let (_, gets) = call(
        &client,
        reqwest::Method::GET,
        format!("{journal}?method=GET&path=%2Fitems%2F"),
        None,
    )
    .await;
    assert_eq!(gets["requests"].as_array().unwrap().len(), 1);

    // A flood never grows it past its bound.
    let mut flood = tokio::task::JoinSet::new();
    for _ in 0..400 {
        let (client, url) = (client.clone(), format!("{base}/counter"));
        flood.spawn(async move { client.post(url).send().await.unwrap().status() });
    }
    while let Some(status) = flood.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
    let (_, body) = call(&client, reqwest::Method::GET, journal.clone(), None).await;
    let entries = body["requests"].as_array().unwrap();
    assert_eq!(entries.len(), 50);
    assert_eq!(
        entries.last().unwrap()["seq"],
        402,
        "newest kept, oldest dropped"
    );

    let (status, _) = call(&client, reqwest::Method::DELETE, journal.clone(), None).await;
    assert_eq!(status, 200);
    let (_, body) = call(
        &client,
        reqwest::Method::GET,
        format!("{journal}?limit=5"),
        None,
    )
    .await;
    assert_eq!(body["requests"], json!([]));
}

#[tokio::test]
async fn reset_and_reseed_a_thousand_times() {
    let host = hello(&["--journal-size", "0"]);
    let client = reqwest::Client::new();
    let base = host.twin("hello").own_url.clone().unwrap();
    let fixture = json!({ "entries": [{ "key": "counter", "text": "41" }] });
    let mut resets = Vec::with_capacity(1000);
    for _ in 0..1000 {
        client.post(format!("{base}/counter")).send().await.unwrap();
        let started = Instant::now();
        let reset = client
            .post(format!("{}/_wt/twins/hello/reset", host.url))
            .send()
            .await
            .unwrap();
        resets.push(started.elapsed());
        assert_eq!(reset.status(), 200);
        let seeded = client
            .put(format!("{}/_wt/twins/hello/state", host.url))
            .json(&fixture)
            .send()
            .await
            .unwrap();
        assert_eq!(seeded.status(), 200);
    }
    let (_, counter) = call(
        &client,
        reqwest::Method::POST,
        format!("{base}/counter"),
        None,
    )
    .await;
    assert_eq!(counter["value"], 42, "the last seed is what the twin sees");
    resets.sort();
    eprintln!(
        "1000 resets over HTTP: median {:?}, p99 {:?}",
        resets[500], resets[990]
    );
}

#[tokio::test]
async fn faults_answer_errors_delay_drop_and_expire() {
    let host = hello(&[]);
    let client = reqwest::Client::new();
    let base = host.twin("hello").own_url.clone().unwrap();
    let faults = format!("{}/_wt/twins/hello/faults", host.url);

    let (status, fault) = call(
        &client,
        reqwest::Method::POST,
        faults.clone(),
        Some(json!({
            "method": "POST", "path": "/count*", "status": 503,
            "body": { "error": { "message": "injected" } }, "count": 2
        })),
    )
    .await;
    assert_eq!(status, 201, "{fault}");
    for _ in 0..2 {
        let response = client.post(format!("{base}/counter")).send().await.unwrap();
        assert_eq!(response.status(), 503);
        assert_eq!(
            response.headers()["x-wt-fault"],
            fault["id"].to_string().as_str()
        );
        assert_eq!(
            json(&response.text().await.unwrap())["error"]["message"],
            "injected"
        );
    }
    let (_, counter) = call(
        &client,
        reqwest::Method::POST,
        format!("{base}/counter"),
        None,
    )
    .await;
    assert_eq!(
        counter["value"], 1,
        "faulted requests never reached the twin; the fault expired"
    );

    call(
        &client,
        reqwest::Method::POST,
        faults.clone(),
        Some(json!({ "method": "GET", "path": "/", "latency": "300ms" })),
    )
    .await;
    let started = Instant::now();
    let (status, _) = call(&client, reqwest::Method::GET, format!("{base}/"), None).await;
    assert_eq!(status, 200, "latency alone still calls the twin");
    assert!(started.elapsed() >= Duration::from_millis(300));

    call(
        &client,
        reqwest::Method::POST,
        faults.clone(),
        Some(json!({ "path": "/echo/*", "drop": true })),
    )
    .await;
    let dropped = client.get(format!("{base}/echo/anything")).send().await;
    assert!(dropped.is_err(), "the connection is dropped: {dropped:?}");

    let (_, listed) = call(&client, reqwest::Method::GET, faults.clone(), None).await;
    assert_eq!(listed["faults"].as_array().unwrap().len(), 2);
    let (status, body) = call(
        &client,
        reqwest::Method::POST,
        faults.clone(),
        Some(json!({ "path": "/x", "status": 700 })),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = call(&client, reqwest::Method::DELETE, faults.clone(), None).await;
    assert_eq!(status, 200);
    let echoed = client
        .get(format!("{base}/echo/anything"))
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.status(), 200);

    // The journal shows what the client saw, faults included.
    let (_, journal) = call(
        &client,
        reqwest::Method::GET,
        format!("{}/_wt/twins/hello/requests?path=%2Fcounter", host.url),
        None,
    )
    .await;
    let statuses: Vec<_> = journal["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [503, 503, 200]);
}

#[tokio::test]
async fn cli_verbs_drive_a_running_host() {
    let host = hello(&[]);
    let client = reqwest::Client::new();
    let base = host.twin("hello").own_url.clone().unwrap();
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(wt_tests::wt_host_bin())
            .args(args)
            .env("WT_URL", &host.url)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    client.post(format!("{base}/counter")).send().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hello.json");
    let (code, _, err) = cli(&["state", "export", "hello", "-o", file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .contains("\"counter\"")
    );

    let (code, out, _) = cli(&["requests", "hello", "--method", "POST"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("POST /counter -> 200"), "{out}");

    let (code, out, _) = cli(&["reset", "hello"]);
    assert_eq!((code, out.trim()), (Some(0), "reset hello"));
    let (_, counter) = call(
        &client,
        reqwest::Method::GET,
        format!("{base}/counter"),
        None,
    )
    .await;
    assert_eq!(counter["value"], 0);

    let (code, out, err) = cli(&["state", "import", "hello", file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("imported"), "{out}");
    let (_, counter) = call(
        &client,
        reqwest::Method::GET,
        format!("{base}/counter"),
        None,
    )
    .await;
    assert_eq!(counter["value"], 1);

    let (code, out, _) = cli(&["clock", "freeze"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("(frozen)"), "{out}");
    let (code, _, _) = cli(&["clock", "advance", "24h"]);
    assert_eq!(code, Some(0));
    let (code, _, err) = cli(&["clock", "advance", "soon"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("clock advance"), "{err}");

    let (code, _, err) = cli(&["reset", "nope"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("no twin named 'nope'"), "{err}");
    let (code, _, err) = cli(&["reset", "--url", "http://127.0.0.1:9"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("no wt-host answering"), "{err}");
}

#[tokio::test]
async fn metrics_count_requests_errors_traps_and_latency() {
    let host = hello(&[]);
    let client = reqwest::Client::new();
    let base = host.twin("hello").own_url.clone().unwrap();
    for path in ["/", "/counter", "/nope", "/trap"] {
        client.get(format!("{base}{path}")).send().await.unwrap();
    }
    let response = client
        .get(format!("{}/_wt/metrics", host.url))
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    for line in [
        "wt_requests_total{twin=\"hello\",class=\"2xx\"} 2",
        "wt_requests_total{twin=\"hello\",class=\"4xx\"} 1",
        "wt_requests_total{twin=\"hello\",class=\"5xx\"} 1",
        "wt_traps_total{twin=\"hello\"} 1",
        "wt_request_duration_seconds_count{twin=\"hello\"} 4",
        "# TYPE wt_request_duration_seconds histogram",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }
    let peak = text
        .lines()
        .find_map(|l| l.strip_prefix("wt_instance_memory_peak_bytes{twin=\"hello\"} "))
        .unwrap();
    assert!(peak.parse::<u64>().unwrap() > 0, "{peak}");
}

#[tokio::test]
async fn wondertwin_admin_paths_work_on_a_twins_own_port() {
    let host = hello(&[]);
    let client = reqwest::Client::new();
    let base = host.twin("hello").own_url.clone().unwrap();
    client.post(format!("{base}/counter")).send().await.unwrap();
    let (status, journal) = call(
        &client,
        reqwest::Method::GET,
        format!("{base}/admin/requests"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(journal["requests"][0]["path"], "/counter");
    let (status, _) = call(
        &client,
        reqwest::Method::POST,
        format!("{base}/admin/reset"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (_, counter) = call(
        &client,
        reqwest::Method::GET,
        format!("{base}/counter"),
        None,
    )
    .await;
    assert_eq!(counter["value"], 0);
    let (status, time) = call(
        &client,
        reqwest::Method::GET,
        format!("{base}/admin/time"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(time["now_millis"].as_u64().is_some());
    // Not an alias: still the twin's own 404.
    let (status, _) = call(
        &client,
        reqwest::Method::GET,
        format!("{base}/admin/nothing"),
        None,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn admin_health_on_a_twins_port_reports_that_twin() {
    let host = HostProcess::start(
        &[("hello", twin_path("hello")), ("other", twin_path("hello"))],
        &[],
    );
    let client = reqwest::Client::new();
    let base = host.twin("hello").own_url.clone().unwrap();
    let (status, health) = call(
        &client,
        reqwest::Method::GET,
        format!("{base}/admin/health"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{health}");
    let names: Vec<&str> = health["twins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["hello"], "{health}");
    assert_eq!(health["summary"], "1/1 twins healthy");
    // The host's own health still covers every twin.
    let (_, all) = call(
        &client,
        reqwest::Method::GET,
        format!("{}/_wt/health", host.url),
        None,
    )
    .await;
    assert_eq!(all["twins"].as_array().unwrap().len(), 2, "{all}");
}

#[tokio::test]
async fn verify_says_whether_a_request_was_made_and_names_the_near_misses() {
    let host = hello(&[]);
    let client = reqwest::Client::new();
    let twin = |p: &str| format!("{}/hello{p}", host.url);
    let wt = |p: &str| format!("{}/_wt/twins/hello/{p}", host.url);
    let (status, _) = call(
        &client,
        reqwest::Method::POST,
        twin("/counter"),
        Some(json!({"by": 2})),
    )
    .await;
    assert_eq!(status, 200);
    let form = client
        .post(twin("/items"))
        .header("authorization", "Bearer sk_test_verify")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=widget&metadata[color]=red")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200);

    let verify = |body: Value| {
        call(
            &client,
            reqwest::Method::POST,
            wt("requests/verify"),
            Some(body),
        )
    };
    let (status, ok) = verify(json!({
        "match": {"method": "post", "path": "/items", "body": {"metadata[color]": "red"},
                  "headers": {"Authorization": "Bearer sk_test_verify"}},
        "count": {"eq": 1},
    }))
    .await;
    assert_eq!((status, ok["matched"].as_u64()), (200, Some(1)), "{ok}");
    // A JSON body's fields by path, numbers as numbers.
    let (status, _) = verify(json!({"match": {"path": "/counter", "body": {"by": 2}}})).await;
    assert_eq!(status, 200);
    let (status, _) = verify(json!({"match": {"path": "/*"}, "count": {"gte": 2, "lte": 2}})).await;
    assert_eq!(status, 200);

    let (status, failed) = verify(json!({
        "match": {"method": "POST", "path": "/items", "body": {"metadata[color]": "blue"}},
        "count": {"eq": 1},
    }))
    .await;
    assert_eq!(status, 409, "{failed}");
    assert_eq!(failed["error"]["code"], "verification_failed");
    assert_eq!(failed["matched"], 0);
    let nearest = &failed["near_misses"][0];
    assert_eq!(nearest["path"], "/items");
    assert_eq!(
        nearest["misses"],
        json!(["body metadata[color] is \"red\", not \"blue\""])
    );
    let (status, _) = verify(json!({"match": {"colour": "red"}})).await;
    assert_eq!(status, 400);

    // The listing takes the same criteria.
    let (_, listed) = call(
        &client,
        reqwest::Method::GET,
        wt("requests?body.name=widget&status=200"),
        None,
    )
    .await;
    assert_eq!(listed["requests"].as_array().unwrap().len(), 1, "{listed}");
}

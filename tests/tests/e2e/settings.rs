//! What twins declare in `describe` and the host enforces: settings changed
//! through `/_wt/twins/{t}/config` (and its `/admin/config` alias), and the
//! 409 for a request reusing an idempotency key while the first is in flight.

use std::time::Duration;

use serde_json::json;
use wt_host::license::{self, IssueRequest, Tier};
use wt_tests::{HostProcess, fixture_path, json, send, twin_path};

/// The `licensed` fixture (it declares `strict` and `greeting`) under a
/// license issued here, so its routes answer.
fn licensed_host() -> (HostProcess, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let pair = license::keygen();
    let public = dir.path().join("k.pub");
    let private = dir.path().join("k.key");
    std::fs::write(&public, &pair.public_pem).unwrap();
    std::fs::write(&private, &pair.private_pem).unwrap();
    let now = license::unix_now();
    let token = license::issue(
        &license::read_signing_key(&private).unwrap(),
        &IssueRequest {
            issuer: "tests".into(),
            subject: "acct".into(),
            audience: vec!["licensed".into()],
            tier: Tier::Trial,
            not_before: now,
            expires: now + 3600,
            issued_at: now,
        },
    )
    .unwrap();
    let file = dir.path().join("license.jwt");
    std::fs::write(&file, token).unwrap();
    let host = HostProcess::start(
        &[("licensed", fixture_path("licensed"))],
        &[
            "--license",
            file.to_str().unwrap(),
            "--trust-key",
            public.to_str().unwrap(),
        ],
    );
    (host, dir)
}

#[tokio::test]
async fn settings_change_at_run_time_are_checked_and_reset() {
    let (host, _keys) = licensed_host();
    let client = reqwest::Client::new();
    let twin = host.twin("licensed").prefixed_url.clone();
    let config = format!("{}/_wt/twins/licensed/config", host.url);

    let (status, body) = send(client.get(&config)).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["settings"],
        json!([
            {"key": "strict", "description": "Refuse requests without a reason header.", "default": false, "value": false},
            {"key": "greeting", "description": "What GET /config says.", "default": "hello", "value": "hello"},
        ])
    );
    let (_, seen) = send(client.get(format!("{twin}/config"))).await;
    assert_eq!(seen, json!({"strict": false, "greeting": "hello"}));

    let (status, body) = send(
        client
            .put(&config)
            .json(&json!({"strict": true, "greeting": "hi"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["settings"][0]["value"], true);
    // The twin sees the change on its next request.
    let (status, refused) = send(client.get(format!("{twin}/config"))).await;
    assert_eq!(status, 400, "{refused}");
    let (status, seen) = send(
        client
            .get(format!("{twin}/config"))
            .header("x-reason", "test"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(seen, json!({"strict": true, "greeting": "hi"}));

    // An unknown key or a wrong type changes nothing and says why.
    for (bad, says) in [
        (
            json!({"strict": false, "strcit": true}),
            "no setting \"strcit\"",
        ),
        (json!({"strict": "yes"}), "takes a boolean, not a string"),
    ] {
        let (status, body) = send(client.put(&config).json(&bad)).await;
        assert_eq!(status, 400);
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
    }
    let (status, _) = send(client.put(&config).body("[1]")).await;
    assert_eq!(status, 400);
    let (_, now) = send(client.get(&config)).await;
    assert_eq!(now["settings"][0]["value"], true);

    // The WonderTwin alias on the twin's own port, and a reset back to the
    // values it started with.
    let own = host.twin("licensed").own_url.clone().unwrap();
    let (status, alias) = send(client.get(format!("{own}/admin/quirks"))).await;
    assert_eq!(status, 200);
    assert_eq!(alias["settings"][1]["value"], "hi");
    let (status, _) = send(client.post(format!("{}/_wt/twins/licensed/reset", host.url))).await;
    assert_eq!(status, 200);
    let (_, seen) = send(client.get(format!("{twin}/config"))).await;
    assert_eq!(seen, json!({"strict": false, "greeting": "hello"}));

    let (status, _) = send(client.get(format!("{}/_wt/twins/nope/config", host.url))).await;
    assert_eq!(status, 404);
}

/// Stripe declares its idempotency conflict: a second request with the same
/// key and credentials while the first is still in flight gets 409, while
/// other credentials and later retries are unaffected.
#[tokio::test]
async fn a_key_reused_while_in_flight_is_refused_with_the_vendors_409() {
    let host = HostProcess::start(&[("stripe", twin_path("stripe"))], &[]);
    let client = reqwest::Client::new();
    let base = host.twin("stripe").prefixed_url.clone();
    // Hold the first request for a while: a latency fault, once.
    let (status, _) = send(
        client
            .post(format!("{}/_wt/twins/stripe/faults", host.url))
            .json(&json!({"method": "POST", "path": "/v1/customers", "latency": "1500ms", "count": 1})),
    )
    .await;
    assert_eq!(status, 201);
    let create = |key: &'static str| {
        client
            .post(format!("{base}/v1/customers"))
            .bearer_auth(key)
            .header("idempotency-key", "same-key")
            .form(&[("email", "a@example.com")])
    };
    let first = tokio::spawn(send(create("sk_test_one")));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, conflict) = send(create("sk_test_one")).await;
    assert_eq!(status, 409, "{conflict}");
    assert_eq!(conflict["error"]["type"], "idempotency_error");
    // Another account may use the same key at the same time.
    let (status, other) = send(create("sk_test_two")).await;
    assert_eq!(status, 200, "{other}");

    let (status, created) = first.await.unwrap();
    assert_eq!(status, 200, "{created}");
    // Once the first has answered, a retry is a replay, as Stripe does.
    let response = create("sk_test_one").send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.to_str().unwrap()),
        Some("true")
    );
    assert_eq!(json(&response.text().await.unwrap())["id"], created["id"]);
}

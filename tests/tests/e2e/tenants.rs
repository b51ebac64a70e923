//! Tenants through the HTTP port and the CLI: each tenant's state, clock,
//! faults, settings, journal and resets are its own, the default world is
//! untouched, an idle tenant expires, and a deleted tenant lets its request
//! in flight finish.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wt_tests::{HostProcess, fixture_path, run_to_exit, send, twin_path};

fn start(extra: &[&str]) -> HostProcess {
    HostProcess::start(
        &[
            ("hello", twin_path("hello")),
            ("pro", fixture_path("licensed")),
        ],
        extra,
    )
}

struct Plane<'a> {
    host: &'a HostProcess,
    client: reqwest::Client,
}

impl Plane<'_> {
    fn url(&self, path: &str) -> String {
        format!("{}/{}", self.host.url, path.trim_start_matches('/'))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        send(self.client.get(self.url(path))).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        send(self.client.post(self.url(path)).json(&body)).await
    }

    async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        send(self.client.put(self.url(path)).json(&body)).await
    }

    /// A plain-text answer (the metrics).
    async fn text(&self, path: &str) -> String {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        response.text().await.unwrap()
    }

    async fn delete(&self, path: &str) -> (u16, Value) {
        send(self.client.delete(self.url(path))).await
    }

    /// Makes a tenant and returns its id.
    async fn tenant(&self, body: Value) -> String {
        let (status, tenant) = self.post("/_wt/tenants", body).await;
        assert_eq!(status, 201, "{tenant}");
        tenant["id"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn a_tenant_has_its_own_state_clock_faults_settings_and_journal() {
    let host = start(&["--license", "none.jwt"]);
    let wt = Plane {
        host: &host,
        client: reqwest::Client::new(),
    };
    let (status, made) = wt
        .post(
            "/_wt/tenants",
            json!({"twins": ["hello", "pro"], "ttl": "1h"}),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let id = made["id"].as_str().unwrap().to_owned();
    let urls = &made["twins"]["hello"];
    assert_eq!(urls["prefixed_url"], format!("{}/{id}/hello", host.url));
    // The host serves its twins on ports of their own, so a tenant's do too.
    assert_eq!(urls["base_url"], urls["own_url"]);
    assert!(
        urls["own_url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    assert!(
        made["expires_at_millis"].as_u64().unwrap() > made["created_at_millis"].as_u64().unwrap()
    );

    // State: the same route counts separately in each world.
    for _ in 0..2 {
        assert_eq!(wt.post("/hello/counter", json!({})).await.0, 200);
    }
    let (_, counted) = wt.post(&format!("/{id}/hello/counter"), json!({})).await;
    assert_eq!(counted["value"], 1);
    assert_eq!(wt.get("/hello/counter").await.1["value"], 2);
    // By Host name too: `hello.<tenant>.localhost`.
    let by_name = send(
        wt.client
            .get(wt.url("/counter"))
            .header("host", format!("hello.{id}.localhost")),
    )
    .await;
    assert_eq!(by_name.1["value"], 1, "{by_name:?}");

    // Clock: a month in the tenant moves nothing in the default world.
    let (status, _) = wt
        .post(
            &format!("/_wt/tenants/{id}/clock/advance"),
            json!({"by": "720h"}),
        )
        .await;
    assert_eq!(status, 200);
    let tenant_now = wt.get(&format!("/{id}/hello/time")).await.1["now_millis"]
        .as_u64()
        .unwrap();
    let default_now = wt.get("/hello/time").await.1["now_millis"]
        .as_u64()
        .unwrap();
    let month = 720 * 3600 * 1000;
    assert!(
        tenant_now >= default_now + month - 60_000,
        "{tenant_now} vs {default_now}"
    );
    assert!(default_now.abs_diff(wall_millis()) < 60_000);

    // Faults: injected in the tenant, answered only there.
    let (status, _) = wt
        .post(
            &format!("/_wt/tenants/{id}/twins/hello/faults"),
            json!({"status": 503, "body": {"error": "injected"}}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(wt.get(&format!("/{id}/hello/counter")).await.0, 503);
    assert_eq!(wt.get("/hello/counter").await.0, 200);
    assert_eq!(
        wt.delete(&format!("/_wt/tenants/{id}/twins/hello/faults"))
            .await
            .0,
        200
    );

    // Settings: changed in the tenant, the default world keeps its own.
    let (status, _) = wt
        .put(
            &format!("/_wt/tenants/{id}/twins/pro/config"),
            json!({"greeting": "howdy"}),
        )
        .await;
    assert_eq!(status, 200);
    let setting = |v: &Value| v["settings"][1]["value"].clone();
    assert_eq!(
        setting(
            &wt.get(&format!("/_wt/tenants/{id}/twins/pro/config"))
                .await
                .1
        ),
        "howdy"
    );
    assert_eq!(setting(&wt.get("/_wt/twins/pro/config").await.1), "hello");

    // Journal: each world sees only its own requests.
    let journal = |v: &Value| v["requests"].as_array().unwrap().len();
    let (_, tenant_journal) = wt
        .get(&format!("/_wt/tenants/{id}/twins/hello/requests"))
        .await;
    let (_, default_journal) = wt.get("/_wt/twins/hello/requests").await;
    assert_eq!(journal(&tenant_journal), 4, "{tenant_journal}");
    assert_eq!(journal(&default_journal), 5, "{default_journal}");

    // Reset: the tenant's slate is clean, the default world's is not.
    assert_eq!(
        wt.post(&format!("/_wt/tenants/{id}/reset"), json!({}))
            .await
            .0,
        200
    );
    assert_eq!(wt.get(&format!("/{id}/hello/counter")).await.1["value"], 0);
    assert_eq!(wt.get("/hello/counter").await.1["value"], 2);
    let tenant_now = wt.get(&format!("/{id}/hello/time")).await.1["now_millis"]
        .as_u64()
        .unwrap();
    assert!(
        tenant_now.abs_diff(wall_millis()) < 60_000,
        "a reset tenant follows real time"
    );

    // A default-world reset leaves the tenant alone.
    wt.post(&format!("/{id}/hello/counter"), json!({})).await;
    assert_eq!(wt.post("/_wt/reset", json!({})).await.0, 200);
    assert_eq!(wt.get(&format!("/{id}/hello/counter")).await.1["value"], 1);
    assert_eq!(wt.get("/hello/counter").await.1["value"], 0);

    // Listing and deleting.
    let (_, listed) = wt.get("/_wt/tenants").await;
    assert_eq!(listed["tenants"][0]["id"], id.as_str());
    assert_eq!(wt.delete(&format!("/_wt/tenants/{id}")).await.0, 200);
    let (status, gone) = wt.get(&format!("/{id}/hello/counter")).await;
    assert_eq!(
        (status, gone["error"]["code"].as_str()),
        (404, Some("unknown_twin"))
    );
    let (status, gone) = wt.get(&format!("/_wt/tenants/{id}/twins")).await;
    assert_eq!(
        (status, gone["error"]["code"].as_str()),
        (404, Some("unknown_tenant"))
    );
}

fn wall_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test]
async fn tenant_requests_are_checked_and_bounded() {
    let host = start(&["--max-tenants", "2", "--license", "none.jwt"]);
    let wt = Plane {
        host: &host,
        client: reqwest::Client::new(),
    };
    let cases = [
        (json!({"twins": ["nope"]}), 404, "unknown_twin"),
        (json!({"name": "Bad_Name"}), 400, "invalid_tenant_request"),
        (json!({"name": "hello"}), 409, "tenant_exists"),
        (json!({"ttl": "forever"}), 400, "invalid_tenant_request"),
        (json!({"ttl": "30d"}), 400, "invalid_tenant_request"),
        (json!({"colour": "red"}), 400, "invalid_tenant_request"),
    ];
    for (body, status, code) in cases {
        let (got, answer) = wt.post("/_wt/tenants", body.clone()).await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}: {answer}"
        );
    }
    let first = wt.tenant(json!({"name": "ci-1"})).await;
    assert_eq!(first, "ci-1");
    let (status, again) = wt.post("/_wt/tenants", json!({"name": "ci-1"})).await;
    assert_eq!(
        (status, again["error"]["code"].as_str()),
        (409, Some("tenant_exists"))
    );
    // An empty body is every twin for the default hour.
    let (status, second) = wt.post("/_wt/tenants", Value::Null).await;
    assert_eq!(status, 201, "{second}");
    assert_eq!(second["twins"].as_object().unwrap().len(), 2);
    assert_eq!(second["ttl_secs"], 3600);
    let (status, full) = wt.post("/_wt/tenants", json!({})).await;
    assert_eq!(
        (status, full["error"]["code"].as_str()),
        (429, Some("too_many_tenants"))
    );
    // A tenant's twins keep their code: reload is the default world's.
    let (status, refused) = wt
        .post("/_wt/tenants/ci-1/twins/hello/reload", json!({}))
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (409, Some("tenant_twins_not_reloadable"))
    );
    let metrics = wt.text("/_wt/metrics").await;
    assert!(metrics.contains("wt_tenants 2\n"), "{metrics}");
    assert!(
        metrics.contains("wt_tenants_created_total 2\n"),
        "{metrics}"
    );
    assert!(!metrics.contains("ci-1"), "no series per tenant id");
}

#[tokio::test]
async fn an_idle_tenant_expires_and_a_used_one_lives_on() {
    let host = start(&["--license", "none.jwt"]);
    let wt = Plane {
        host: &host,
        client: reqwest::Client::new(),
    };
    let idle = wt.tenant(json!({"twins": ["hello"], "ttl": "2s"})).await;
    let used = wt.tenant(json!({"twins": ["hello"], "ttl": "2s"})).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        assert_eq!(wt.get(&format!("/{used}/hello/counter")).await.0, 200);
        if wt.get(&format!("/_wt/tenants/{idle}")).await.0 == 404 {
            break;
        }
        assert!(Instant::now() < deadline, "the idle tenant never expired");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(wt.get(&format!("/_wt/tenants/{used}")).await.0, 200);
    let metrics = wt.text("/_wt/metrics").await;
    assert!(
        metrics.contains("wt_tenants_expired_total 1\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn deleting_a_tenant_lets_its_request_in_flight_finish() {
    let host = start(&["--license", "none.jwt"]);
    let wt = Plane {
        host: &host,
        client: reqwest::Client::new(),
    };
    let id = wt.tenant(json!({"twins": ["hello"]})).await;
    let slow = tokio::spawn(send(
        reqwest::Client::new().get(wt.url(&format!("/{id}/hello/spin?ms=1500"))),
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(wt.delete(&format!("/_wt/tenants/{id}")).await.0, 200);
    let (status, body) = slow.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(wt.get(&format!("/{id}/hello/counter")).await.0, 404);
    // The default world never noticed.
    assert_eq!(wt.get("/hello/counter").await.0, 200);
}

#[tokio::test]
async fn the_cli_makes_lists_uses_and_deletes_tenants() {
    let host = start(&["--license", "none.jwt"]);
    let url = host.url.as_str();
    let made = run_to_exit(&[
        "tenant", "create", "hello", "--ttl", "10m", "--name", "cli-1", "--url", url,
    ]);
    assert!(made.status.success(), "{made:?}");
    let mut lines = made.stdout.lines();
    assert_eq!(lines.next(), Some("cli-1"));
    let own = lines
        .next()
        .unwrap()
        .strip_prefix("hello ")
        .unwrap()
        .to_owned();
    assert!(own.starts_with("http://127.0.0.1:"), "{made:?}");

    let client = reqwest::Client::new();
    let (status, _) = send(client.post(format!("{own}/counter"))).await;
    assert_eq!(status, 200);
    let (_, counter) = send(client.get(format!("{url}/cli-1/hello/counter"))).await;
    assert_eq!(
        counter["value"], 1,
        "the own port and the prefix reach one twin"
    );
    let listed = run_to_exit(&["tenant", "list", "--url", url]);
    assert!(
        listed.stdout.starts_with("cli-1 hello (expires in "),
        "{listed:?}"
    );

    // The control verbs act on the tenant with --tenant.
    let reset = run_to_exit(&["reset", "hello", "--tenant", "cli-1", "--url", url]);
    assert!(reset.status.success(), "{reset:?}");
    let (_, counter) = send(client.get(format!("{url}/cli-1/hello/counter"))).await;
    assert_eq!(counter["value"], 0);
    let clock = run_to_exit(&["clock", "advance", "48h", "--tenant", "cli-1", "--url", url]);
    assert!(clock.status.success(), "{clock:?}");
    let (_, tenant_clock) = send(client.get(format!("{url}/_wt/tenants/cli-1/clock"))).await;
    let (_, default_clock) = send(client.get(format!("{url}/_wt/clock"))).await;
    let ahead = tenant_clock["now_millis"].as_u64().unwrap()
        - default_clock["now_millis"].as_u64().unwrap();
    assert!(
        ahead >= 47 * 3600 * 1000,
        "{tenant_clock} vs {default_clock}"
    );

    let unknown = run_to_exit(&["reset", "--tenant", "nope", "--url", url]);
    assert!(!unknown.status.success());
    assert!(unknown.stderr.contains("no tenant 'nope'"), "{unknown:?}");
    let deleted = run_to_exit(&["tenant", "delete", "cli-1", "--url", url]);
    assert_eq!(deleted.stdout.trim(), "deleted cli-1", "{deleted:?}");
    let listed = run_to_exit(&["tenant", "list", "--url", url]);
    assert_eq!(listed.stdout, "", "{listed:?}");
}

#[tokio::test]
async fn a_tenants_own_ports_serve_its_twins_and_close_with_it() {
    let host = start(&["--license", "none.jwt"]);
    let wt = Plane {
        host: &host,
        client: reqwest::Client::new(),
    };
    let (status, made) = wt.post("/_wt/tenants", json!({"twins": ["hello"]})).await;
    assert_eq!(status, 201, "{made}");
    let id = made["id"].as_str().unwrap().to_owned();
    let own = made["twins"]["hello"]["own_url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(Some(own.clone()), host.twin("hello").own_url);
    for _ in 0..3 {
        send(wt.client.post(format!("{own}/counter"))).await;
    }
    assert_eq!(
        send(wt.client.get(format!("{own}/counter"))).await.1["value"],
        3
    );
    assert_eq!(wt.get("/hello/counter").await.1["value"], 0);
    // WonderTwin's /admin/* on the tenant's port act on the tenant's twin.
    let (status, _) = send(wt.client.post(format!("{own}/admin/reset"))).await;
    assert_eq!(status, 200);
    assert_eq!(
        send(wt.client.get(format!("{own}/counter"))).await.1["value"],
        0
    );
    let (_, listed) = wt.get(&format!("/_wt/tenants/{id}/twins")).await;
    assert_eq!(listed["twins"][0]["urls"]["own"], own.as_str());

    // Without ports when asked, and the prefixed URL is the base URL.
    let (_, portless) = wt
        .post("/_wt/tenants", json!({"twins": ["hello"], "ports": false}))
        .await;
    let urls = &portless["twins"]["hello"];
    assert!(urls["own_url"].is_null());
    assert_eq!(urls["base_url"], urls["prefixed_url"]);

    assert_eq!(wt.delete(&format!("/_wt/tenants/{id}")).await.0, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let closed = reqwest::Client::new()
            .get(format!("{own}/counter"))
            .send()
            .await
            .is_err();
        if closed {
            break;
        }
        assert!(Instant::now() < deadline, "the tenant's port stayed open");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn links_a_twin_returns_lead_back_the_way_the_client_came() {
    let host = HostProcess::start(&[("stripe", twin_path("stripe"))], &[]);
    let client = reqwest::Client::new();
    let (status, made) = send(
        client
            .post(format!("{}/_wt/tenants", host.url))
            .json(&json!({"name": "links"})),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let own = made["twins"]["stripe"]["own_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let bases = [
        // The default world through the shared listener's prefix.
        format!("{}/stripe", host.url),
        // A tenant through the prefix, and on its own port.
        format!("{}/links/stripe", host.url),
        own,
    ];
    for base in bases {
        let (status, session) = send(
            client
                .post(format!("{base}/v1/checkout/sessions"))
                .bearer_auth("sk_test_links")
                .form(&[("mode", "setup"), ("currency", "usd")]),
        )
        .await;
        assert_eq!(status, 200, "{base}: {session}");
        let url = session["url"].as_str().unwrap();
        assert!(
            url.starts_with(&format!("{base}/c/pay/cs_")),
            "{base}: {url}"
        );
        let page = client.get(url).send().await.unwrap();
        assert_eq!(page.status(), 200, "{url}");
        let html = page.text().await.unwrap();
        assert!(html.contains("<form method=\"post\">"), "{html}");
    }
}

#[tokio::test]
async fn a_domain_names_twins_and_tenants_like_localhost_does() {
    let host = start(&[
        "--domain",
        "Twins.Example.Internal",
        "--license",
        "none.jwt",
    ]);
    let wt = Plane {
        host: &host,
        client: reqwest::Client::new(),
    };
    let id = wt.tenant(json!({"twins": ["hello"], "name": "ci-9"})).await;
    wt.post(&format!("/{id}/hello/counter"), json!({})).await;
    let by_name = |name: &str| {
        send(
            wt.client
                .get(wt.url("/counter"))
                .header("host", format!("{name}:4100")),
        )
    };
    assert_eq!(by_name("hello.twins.example.internal").await.1["value"], 0);
    assert_eq!(
        by_name("hello.ci-9.twins.example.internal").await.1["value"],
        1
    );
    let (status, refused) = by_name("hello.evil.example").await;
    assert_eq!(status, 421, "{refused}");
    let (_, twins) = wt.get(&format!("/_wt/tenants/{id}/twins")).await;
    let host_url = twins["twins"][0]["urls"]["host"].as_str().unwrap();
    assert!(
        host_url.starts_with("http://hello.ci-9.twins.example.internal:"),
        "{host_url}"
    );
    let bad = run_to_exit(&["run", "--domain", "not a domain", "x.wasm"]);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    assert!(bad.stderr.contains("--domain"), "{bad:?}");
}

#[tokio::test]
async fn a_tenants_deliveries_and_license_check_are_its_own() {
    let host = HostProcess::start(
        &[
            ("adversary", fixture_path("adversary")),
            ("pro", fixture_path("licensed")),
        ],
        &["--license", "none.jwt"],
    );
    let wt = Plane {
        host: &host,
        client: reqwest::Client::new(),
    };
    let receiver = crate::outbound::Receiver::start(vec![]).await;
    let id = wt.tenant(json!({"name": "hooks"})).await;
    let (status, queued) = send(
        wt.client
            .post(wt.url(&format!("/{id}/adversary/send?url={}", receiver.url)))
            .body("from-the-tenant"),
    )
    .await;
    assert_eq!(status, 200, "{queued}");
    let (_, log) = wt
        .post(
            &format!("/_wt/tenants/{id}/twins/adversary/outbound/flush"),
            json!({}),
        )
        .await;
    assert_eq!(log["deliveries"][0]["status"], "delivered", "{log}");
    assert_eq!(log["deliveries"][0]["body"], "from-the-tenant");
    assert_eq!(receiver.count(), 1);
    let (_, default_log) = wt.get("/_wt/twins/adversary/outbound").await;
    assert_eq!(
        default_log["deliveries"],
        json!([]),
        "the default world sent nothing"
    );

    // The tenant's copy of a paid twin is checked against the host's
    // license like the original: none here, so 402 in both worlds.
    let (tenant_status, refusal) = wt.get(&format!("/{id}/pro/config")).await;
    assert_eq!(tenant_status, 402, "{refusal}");
    assert_eq!(wt.get("/pro/config").await.0, 402);
}

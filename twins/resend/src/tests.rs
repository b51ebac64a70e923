use serde_json::{Value, json};
use wt_sdk::testing::{self, Client, call, expect};
use wt_sdk::{Request, Response};

use super::Resend;
use crate::emails::{last_event, parse_schedule, valid_address};

const KEY: &str = "re_unit_key";
const T0: u64 = 1_700_000_000_000;

fn setup() {
    testing::reset();
    testing::set_now_millis(T0);
}

fn client(key: &str) -> Client<Resend> {
    Client::new().bearer(key)
}

fn req(method: &str, path: &str, key: &str) -> Request {
    client(key).request(method, path)
}

fn send_as(key: &str, method: &str, path: &str, body: Value) -> Response {
    client(key).send_json(method, path, &body)
}

fn send(method: &str, path: &str, body: Value) -> Response {
    send_as(KEY, method, path, body)
}

fn get(path: &str) -> Response {
    client(KEY).get(path)
}

fn body(r: &Response) -> Value {
    r.json_body().unwrap()
}

fn ok(r: Response) -> Value {
    expect(r, 200)
}

fn err(r: Response, status: u16, name: &str) -> Value {
    assert_eq!(r.status, status, "{}", r.body_text());
    let b = body(&r);
    assert_eq!(b["statusCode"], json!(status));
    assert_eq!(b["name"], json!(name), "{b}");
    assert!(b["message"].as_str().is_some_and(|m| !m.is_empty()));
    b
}

fn email(to: Value) -> Value {
    json!({"from": "Acme <me@acme.dev>", "to": to, "subject": "hi", "html": "<p>hi</p>"})
}

#[test]
fn auth_errors_in_resend_shape() {
    setup();
    err(
        call::<Resend>(Request::new("GET", "/emails")),
        401,
        "missing_api_key",
    );
    let empty = Request::new("GET", "/emails").with_header("authorization", "Bearer ");
    err(call::<Resend>(empty), 401, "missing_api_key");
    err(get_with("sk_test_1"), 403, "invalid_api_key");
    err(get_with("re_"), 403, "invalid_api_key");
    err(get_with("re_a/b"), 403, "invalid_api_key");
    let basic = Request::new("GET", "/emails").with_header("authorization", "Basic cmVfMTo=");
    err(call::<Resend>(basic), 403, "invalid_api_key");
    ok(get("/emails"));
}

fn get_with(key: &str) -> Response {
    call::<Resend>(req("GET", "/emails", key))
}

#[test]
fn send_and_retrieve() {
    setup();
    let sent = ok(send(
        "POST",
        "/emails",
        json!({"from": "me@acme.dev", "to": "delivered@resend.dev", "subject": "s",
               "text": "t", "cc": ["c@x.io"], "reply_to": "r@x.io",
               "tags": [{"name": "k", "value": "v"}], "headers": {"X-A": "1"},
               "attachments": [{"filename": "a.txt", "content": "aGk="}]}),
    ));
    let id = sent["id"].as_str().unwrap();
    assert!(wt_sdk::ids::is_uuid(id));
    let e = ok(get(&format!("/emails/{id}")));
    assert_eq!(e["object"], "email");
    assert_eq!(e["to"], json!(["delivered@resend.dev"]));
    assert_eq!(e["cc"], json!(["c@x.io"]));
    assert_eq!(e["bcc"], Value::Null);
    assert_eq!(e["reply_to"], json!(["r@x.io"]));
    assert_eq!(e["text"], "t");
    assert_eq!(e["html"], Value::Null);
    assert_eq!(e["last_event"], "delivered");
    assert_eq!(e["scheduled_at"], Value::Null);
    assert_eq!(e["created_at"], "2023-11-14T22:13:20.000+00:00");
    err(get("/emails/not-a-uuid"), 422, "validation_error");
    err(
        get("/emails/00000000-0000-4000-8000-000000000000"),
        404,
        "not_found",
    );
}

#[test]
fn send_validation() {
    setup();
    let cases = [
        (
            json!({"to": "a@x.io", "subject": "s"}),
            422,
            "missing_required_field",
        ),
        (
            json!({"from": "a@x.io", "subject": "s"}),
            422,
            "missing_required_field",
        ),
        (
            json!({"from": "a@x.io", "to": "b@x.io"}),
            422,
            "missing_required_field",
        ),
        (
            json!({"from": "nope", "to": "b@x.io", "subject": "s"}),
            422,
            "invalid_from_address",
        ),
        (
            json!({"from": "a@x.io", "to": "b", "subject": "s"}),
            422,
            "validation_error",
        ),
        (
            json!({"from": "a@x.io", "to": 5, "subject": "s"}),
            422,
            "validation_error",
        ),
        (
            json!({"from": "a@x.io", "to": "b@x.io", "subject": "s", "scheduled_at": "soon"}),
            422,
            "validation_error",
        ),
        (
            json!({"from": "a@x.io", "to": "b@x.io", "subject": "s", "tags": [{"name": "a b"}]}),
            422,
            "validation_error",
        ),
        (
            json!({"from": "a@x.io", "to": "b@x.io", "subject": "s", "attachments": [{}]}),
            422,
            "invalid_attachment",
        ),
    ];
    for (b, status, name) in cases {
        err(send("POST", "/emails", b), status, name);
    }
    let many: Vec<String> = (0..51).map(|i| format!("u{i}@x.io")).collect();
    err(
        send("POST", "/emails", email(json!(many))),
        422,
        "validation_error",
    );
    let fifty: Vec<String> = (0..50).map(|i| format!("u{i}@x.io")).collect();
    ok(send("POST", "/emails", email(json!(fifty))));
    let r = call::<Resend>(req("POST", "/emails", KEY).with_body("{nope"));
    err(r, 400, "validation_error");
    err(get("/nope"), 404, "not_found");
    err(send("PUT", "/emails", json!({})), 405, "method_not_allowed");
}

#[test]
fn test_recipients_drive_last_event() {
    setup();
    for (to, event) in [
        ("delivered@resend.dev", "delivered"),
        ("bounced@resend.dev", "bounced"),
        ("complained+x@resend.dev", "complained"),
        ("suppressed@resend.dev", "suppressed"),
        ("Someone <BOUNCED+label@resend.dev>", "bounced"),
        ("anyone@example.com", "delivered"),
    ] {
        let id = ok(send("POST", "/emails", email(json!(to))))["id"].clone();
        let e = ok(get(&format!("/emails/{}", id.as_str().unwrap())));
        assert_eq!(e["last_event"], event, "{to}");
    }
}

#[test]
fn scheduling_update_and_cancel() {
    setup();
    let mut b = email(json!("delivered@resend.dev"));
    b["scheduled_at"] = json!("in 1 hour");
    let id = ok(send("POST", "/emails", b))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/emails/{id}");
    let e = ok(get(&path));
    assert_eq!(e["last_event"], "scheduled");
    assert_eq!(e["scheduled_at"], "2023-11-14T23:13:20.000+00:00");
    let u = ok(send(
        "PATCH",
        &path,
        json!({"id": id, "scheduled_at": "2023-11-15T01:00:00Z"}),
    ));
    assert_eq!(u, json!({"object": "email", "id": id}));
    testing::advance_millis(2 * 3_600_000);
    assert_eq!(ok(get(&path))["last_event"], "scheduled");
    testing::advance_millis(3_600_000);
    assert_eq!(ok(get(&path))["last_event"], "delivered");
    err(
        send("POST", &format!("{path}/cancel"), json!({})),
        422,
        "validation_error",
    );
    // Another, canceled before its time: stays canceled after it.
    let mut b = email(json!("delivered@resend.dev"));
    b["scheduled_at"] = json!("in 10 min");
    let id = ok(send("POST", "/emails", b))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let c = ok(send("POST", &format!("/emails/{id}/cancel"), json!({})));
    assert_eq!(c["object"], "email");
    testing::advance_millis(3_600_000);
    assert_eq!(ok(get(&format!("/emails/{id}")))["last_event"], "canceled");
    err(
        send(
            "PATCH",
            &format!("/emails/{id}"),
            json!({"scheduled_at": "in 1 min"}),
        ),
        422,
        "validation_error",
    );
    let mut far = email(json!("a@x.io"));
    far["scheduled_at"] = json!("in 31 days");
    err(send("POST", "/emails", far), 422, "validation_error");
}

#[test]
fn list_is_newest_first_with_cursors() {
    setup();
    let ids: Vec<String> = (0..5)
        .map(|i| {
            let id = ok(send("POST", "/emails", email(json!(format!("u{i}@x.io")))))["id"].clone();
            id.as_str().unwrap().to_owned()
        })
        .collect();
    let page = ok(get("/emails?limit=2"));
    assert_eq!(page["object"], "list");
    assert_eq!(page["has_more"], true);
    let got: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [ids[4].as_str(), ids[3].as_str()]);
    assert!(page["data"][0].get("html").is_none());
    let next = ok(get(&format!("/emails?limit=10&after={}", ids[3])));
    assert_eq!(next["data"].as_array().unwrap().len(), 3);
    assert_eq!(next["has_more"], false);
    let prev = ok(get(&format!("/emails?before={}", ids[2])));
    assert_eq!(prev["data"][0]["id"], json!(ids[4]));
    err(get("/emails?limit=0"), 422, "validation_error");
    err(get("/emails?limit=101"), 422, "validation_error");
    err(get("/emails?after=x&before=y"), 422, "validation_error");
}

#[test]
fn batch_strict_and_permissive() {
    setup();
    let r = ok(send(
        "POST",
        "/emails/batch",
        json!([email(json!("a@x.io")), email(json!(["b@x.io"]))]),
    ));
    assert_eq!(r["data"].as_array().unwrap().len(), 2);
    assert!(r.get("errors").is_none());
    let bad = json!([email(json!("a@x.io")), {"from": "a@x.io"}]);
    err(
        send("POST", "/emails/batch", bad.clone()),
        422,
        "missing_required_field",
    );
    let r = call::<Resend>(
        req("POST", "/emails/batch", KEY)
            .with_header("x-batch-validation", "permissive")
            .with_body(bad.to_string()),
    );
    let r = ok(r);
    assert_eq!(r["data"].as_array().unwrap().len(), 1);
    assert_eq!(r["errors"][0]["index"], 1);
    assert_eq!(ok(get("/emails"))["data"].as_array().unwrap().len(), 3);
    err(
        send("POST", "/emails/batch", json!([])),
        422,
        "validation_error",
    );
    let many: Vec<Value> = (0..101).map(|_| email(json!("a@x.io"))).collect();
    err(
        send("POST", "/emails/batch", json!(many)),
        422,
        "validation_error",
    );
    let mut sched = email(json!("a@x.io"));
    sched["scheduled_at"] = json!("in 1 min");
    err(
        send("POST", "/emails/batch", json!([sched])),
        422,
        "validation_error",
    );
}

#[test]
fn idempotency_replays_and_detects_mismatch() {
    setup();
    let post = |key: &str, b: Value| {
        call::<Resend>(
            req("POST", "/emails", KEY)
                .with_header("idempotency-key", key)
                .with_body(b.to_string()),
        )
    };
    let first = ok(post("k1", email(json!("a@x.io"))));
    let again = ok(post("k1", email(json!("a@x.io"))));
    assert_eq!(first, again);
    err(
        post("k1", email(json!("b@x.io"))),
        409,
        "invalid_idempotent_request",
    );
    err(
        post(&"k".repeat(257), email(json!("a@x.io"))),
        400,
        "invalid_idempotency_key",
    );
    // Keys are forgotten after 24 hours of twin time.
    testing::advance_millis(24 * 3_600_000);
    let later = ok(post("k1", email(json!("b@x.io"))));
    assert_ne!(later["id"], first["id"]);
    assert_eq!(ok(post("k1", email(json!("b@x.io")))), later);
    // Failures are not kept.
    err(post("k2", json!({})), 422, "missing_required_field");
    ok(post("k2", email(json!("a@x.io"))));
    assert_eq!(ok(get("/emails"))["data"].as_array().unwrap().len(), 3);
}

#[test]
fn accounts_are_isolated() {
    setup();
    let id = ok(send("POST", "/emails", email(json!("a@x.io"))))["id"].clone();
    let other = call::<Resend>(req(
        "GET",
        &format!("/emails/{}", id.as_str().unwrap()),
        "re_other",
    ));
    err(other, 404, "not_found");
    let list = ok(call::<Resend>(req("GET", "/emails", "re_other")));
    assert_eq!(list["data"], json!([]));
}

#[test]
fn domains_lifecycle() {
    setup();
    let d = ok(send(
        "POST",
        "/domains",
        json!({"name": "Example.com", "region": "eu-west-1"}),
    ));
    assert_eq!(d["name"], "example.com");
    assert_eq!(d["status"], "not_started");
    assert_eq!(d["records"].as_array().unwrap().len(), 3);
    assert_eq!(
        d["records"][0]["value"],
        "feedback-smtp.eu-west-1.amazonses.com"
    );
    let id = d["id"].as_str().unwrap().to_owned();
    let path = format!("/domains/{id}");
    err(
        send("POST", "/domains", json!({"name": "example.com"})),
        403,
        "validation_error",
    );
    err(
        send("POST", "/domains", json!({})),
        422,
        "missing_required_field",
    );
    err(
        send("POST", "/domains", json!({"name": "nodot"})),
        422,
        "validation_error",
    );
    err(
        send(
            "POST",
            "/domains",
            json!({"name": "a.io", "region": "mars"}),
        ),
        422,
        "validation_error",
    );
    let got = ok(get(&path));
    assert_eq!(got["object"], "domain");
    assert_eq!(got["region"], "eu-west-1");
    ok(send("POST", &format!("{path}/verify"), json!({})));
    assert_eq!(ok(get(&path))["status"], "pending");
    testing::advance_millis(61_000);
    let got = ok(get(&path));
    assert_eq!(got["status"], "verified");
    assert_eq!(got["records"][2]["status"], "verified");
    let u = ok(send(
        "PATCH",
        &path,
        json!({"id": id, "open_tracking": true, "tls": "enforced"}),
    ));
    assert_eq!(u, json!({"object": "domain", "id": id}));
    let got = ok(get(&path));
    assert_eq!(
        (got["open_tracking"].clone(), got["tls"].clone()),
        (json!(true), json!("enforced"))
    );
    err(
        send("PATCH", &path, json!({"tls": "never"})),
        422,
        "validation_error",
    );
    let list = ok(get("/domains"));
    assert_eq!(list["data"][0]["id"], json!(id));
    assert!(list["data"][0].get("records").is_none());
    let del = ok(call::<Resend>(req("DELETE", &path, KEY)));
    assert_eq!(del, json!({"object": "domain", "id": id, "deleted": true}));
    err(get(&path), 404, "not_found");
}

#[test]
fn api_keys_belong_to_their_account_and_revoke() {
    setup();
    let k = ok(send("POST", "/api-keys", json!({"name": "ci"})));
    let token = k["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("re_"));
    let id = k["id"].as_str().unwrap().to_owned();
    // The new token sees the creator's data.
    let sent = ok(send("POST", "/emails", email(json!("a@x.io"))));
    let seen = ok(call::<Resend>(req(
        "GET",
        &format!("/emails/{}", sent["id"].as_str().unwrap()),
        &token,
    )));
    assert_eq!(seen["id"], sent["id"]);
    let list = ok(get("/api-keys"));
    assert_eq!(list["data"][0]["id"], json!(id));
    assert_eq!(list["data"][0]["name"], "ci");
    assert!(list["data"][0].get("token").is_none());
    let u = ok(send(
        "PATCH",
        &format!("/api-keys/{id}"),
        json!({"name": "ci2"}),
    ));
    assert_eq!(u["id"], json!(id));
    assert_eq!(ok(get("/api-keys"))["data"][0]["name"], "ci2");
    err(
        send("POST", "/api-keys", json!({})),
        422,
        "missing_required_field",
    );
    err(
        send(
            "POST",
            "/api-keys",
            json!({"name": "x", "permission": "root"}),
        ),
        422,
        "validation_error",
    );
    // Sending-only keys send and nothing else.
    let s = ok(send(
        "POST",
        "/api-keys",
        json!({"name": "s", "permission": "sending_access"}),
    ));
    let st = s["token"].as_str().unwrap();
    ok(send_as(st, "POST", "/emails", email(json!("a@x.io"))));
    err(
        call::<Resend>(req("GET", "/emails", st)),
        401,
        "restricted_api_key",
    );
    let del = ok(call::<Resend>(req(
        "DELETE",
        &format!("/api-keys/{id}"),
        KEY,
    )));
    assert_eq!(del["deleted"], true);
    err(
        call::<Resend>(req("GET", "/emails", &token)),
        403,
        "invalid_api_key",
    );
    err(
        call::<Resend>(req("DELETE", &format!("/api-keys/{id}"), KEY)),
        404,
        "not_found",
    );
}

#[test]
fn helpers() {
    assert!(valid_address("a@b.co"));
    assert!(valid_address("Name <a@b.co>"));
    assert!(!valid_address("a@b"));
    assert!(!valid_address("Name <a@b.co"));
    assert!(!valid_address("a b@c.io"));
    assert_eq!(parse_schedule("in 2 mins", 1000), Some(121_000));
    assert_eq!(parse_schedule("in 1 day", 0), Some(86_400_000));
    assert_eq!(parse_schedule("in x min", 0), None);
    assert_eq!(parse_schedule("1970-01-01T00:00:01Z", 0), Some(1000));
    let e = json!({"to": ["x@y.io"], "cc": ["complained@resend.dev"], "canceled": false,
                   "scheduled_ms": 5});
    assert_eq!(last_event(&e, 4), "scheduled");
    assert_eq!(last_event(&e, 5), "complained");
}

/// The event types of the outbox's deliveries to `url`, in order, after
/// checking each one's Svix signature against `secret`.
fn delivered(url: &str, secret: &str) -> Vec<String> {
    testing::take_outbox()
        .into_iter()
        .filter(|r| r.url == url)
        .map(|r| {
            let h = |n: &str| {
                r.headers
                    .iter()
                    .find(|(k, _)| k == n)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            let ts: u64 = h("svix-timestamp").parse().unwrap();
            let want = wt_sdk::svix::signature(secret, &h("svix-id"), ts, &r.body).unwrap();
            assert_eq!(h("svix-signature"), want);
            let payload: Value = serde_json::from_slice(&r.body).unwrap();
            payload["type"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[test]
fn webhooks_crud_and_validation() {
    setup();
    let created = ok(send(
        "POST",
        "/webhooks",
        json!({"endpoint": "https://example.com/hook", "events": ["email.sent", "email.sent"]}),
    ));
    assert_eq!(created["object"], "webhook");
    let id = created["id"].as_str().unwrap().to_owned();
    let secret = created["signing_secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let path = format!("/webhooks/{id}");
    let got = ok(get(&path));
    assert_eq!(got["events"], json!(["email.sent"]));
    assert_eq!(
        (&got["status"], &got["signing_secret"]),
        (&json!("enabled"), &json!(secret))
    );
    assert_eq!(got["created_at"], "2023-11-14T22:13:20.000+00:00");
    let u = ok(send(
        "PATCH",
        &path,
        json!({"status": "disabled", "events": ["email.bounced"]}),
    ));
    assert_eq!(u, json!({"object": "webhook", "id": id}));
    let listed = ok(get("/webhooks"));
    assert_eq!(listed["data"][0]["status"], "disabled");
    assert_eq!(listed["data"][0]["events"], json!(["email.bounced"]));
    let rotated = ok(send(
        "POST",
        &format!("{path}/signing-secret/rotate"),
        json!({}),
    ));
    assert_ne!(rotated["signing_secret"], json!(secret));
    for bad in [
        json!({"events": ["email.sent"]}),
        json!({"endpoint": "https://x.io/h"}),
    ] {
        err(
            send("POST", "/webhooks", bad),
            422,
            "missing_required_field",
        );
    }
    for bad in [
        json!({"endpoint": "ftp://x.io", "events": ["email.sent"]}),
        json!({"endpoint": "https://x.io/h", "events": []}),
        json!({"endpoint": "https://x.io/h", "events": ["email.nope"]}),
        json!({"endpoint": "https://x.io/h", "events": "email.sent"}),
    ] {
        err(send("POST", "/webhooks", bad), 422, "validation_error");
    }
    err(
        send("PATCH", &path, json!({"status": "paused"})),
        422,
        "validation_error",
    );
    err(get("/webhooks/nope"), 422, "validation_error");
    let del = ok(send("DELETE", &path, json!({})));
    assert_eq!(del["deleted"], true);
    err(get(&path), 404, "not_found");
}

#[test]
fn email_events_are_signed_and_follow_twin_time() {
    setup();
    let url = "http://127.0.0.1:9/hook";
    let all = json!([
        "email.sent",
        "email.scheduled",
        "email.delivered",
        "email.bounced",
        "email.complained",
        "email.suppressed"
    ]);
    let hook = ok(send(
        "POST",
        "/webhooks",
        json!({"endpoint": url, "events": all}),
    ));
    let secret = hook["signing_secret"].as_str().unwrap().to_owned();
    // Another webhook subscribed to nothing that happens here, and a
    // disabled one: neither receives anything.
    ok(send(
        "POST",
        "/webhooks",
        json!({"endpoint": "http://127.0.0.1:9/other", "events": ["domain.created"]}),
    ));
    let off = ok(send(
        "POST",
        "/webhooks",
        json!({"endpoint": "http://127.0.0.1:9/off", "events": all}),
    ));
    ok(send(
        "PATCH",
        &format!("/webhooks/{}", off["id"].as_str().unwrap()),
        json!({"status": "disabled"}),
    ));
    testing::take_outbox();

    ok(send(
        "POST",
        "/emails",
        email(json!("delivered@resend.dev")),
    ));
    assert_eq!(delivered(url, &secret), ["email.sent", "email.delivered"]);
    ok(send(
        "POST",
        "/emails",
        email(json!(["a@x.io", "bounced@resend.dev"])),
    ));
    assert_eq!(delivered(url, &secret), ["email.sent", "email.bounced"]);
    ok(send(
        "POST",
        "/emails",
        email(json!("complained@resend.dev")),
    ));
    assert_eq!(
        delivered(url, &secret),
        ["email.sent", "email.delivered", "email.complained"]
    );

    let mut later = email(json!("delivered@resend.dev"));
    later["scheduled_at"] = json!("in 1 hour");
    let id = ok(send("POST", "/emails", later))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(delivered(url, &secret), ["email.scheduled"]);
    ok(get("/emails"));
    assert!(delivered(url, &secret).is_empty(), "not due yet");
    testing::advance_millis(3_600_000);
    let e = ok(get(&format!("/emails/{id}")));
    assert_eq!(e["last_event"], "delivered");
    assert_eq!(delivered(url, &secret), ["email.sent", "email.delivered"]);
    ok(get("/emails"));
    assert!(delivered(url, &secret).is_empty(), "emitted once");

    // A canceled scheduled email never emits more.
    let mut later = email(json!("delivered@resend.dev"));
    later["scheduled_at"] = json!("in 1 hour");
    let id = ok(send("POST", "/emails", later))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(send("POST", &format!("/emails/{id}/cancel"), json!({})));
    testing::advance_millis(7_200_000);
    ok(get("/emails"));
    assert_eq!(delivered(url, &secret), ["email.scheduled"]);
    // Payload shape.
    ok(send(
        "POST",
        "/emails",
        email(json!("delivered@resend.dev")),
    ));
    let sent = testing::take_outbox();
    let p: Value = serde_json::from_slice(&sent[0].body).unwrap();
    assert_eq!(p["type"], "email.sent");
    assert_eq!(p["data"]["to"], json!(["delivered@resend.dev"]));
    assert_eq!(p["data"]["subject"], "hi");
    assert!(
        p["data"]["email_id"]
            .as_str()
            .is_some_and(wt_sdk::ids::is_uuid)
    );
    assert!(sent.iter().all(|r| r.url == url));
    // Other accounts' mail does not reach this account's webhooks.
    ok(send_as(
        "re_other",
        "POST",
        "/emails",
        email(json!("a@x.io")),
    ));
    assert!(testing::take_outbox().is_empty());
}

#[test]
fn domain_events_follow_verification() {
    setup();
    let url = "http://127.0.0.1:9/domains";
    let hook = ok(send(
        "POST",
        "/webhooks",
        json!({"endpoint": url, "events": ["domain.created", "domain.updated", "domain.deleted"]}),
    ));
    let secret = hook["signing_secret"].as_str().unwrap().to_owned();
    let d = ok(send(
        "POST",
        "/domains",
        json!({"name": "hooks.example.com"}),
    ));
    let id = d["id"].as_str().unwrap().to_owned();
    assert_eq!(delivered(url, &secret), ["domain.created"]);
    ok(send("POST", &format!("/domains/{id}/verify"), json!({})));
    assert_eq!(delivered(url, &secret), ["domain.updated"]);
    testing::advance_millis(61_000);
    ok(get("/emails"));
    let sent = testing::take_outbox();
    assert_eq!(sent.len(), 1);
    let p: Value = serde_json::from_slice(&sent[0].body).unwrap();
    assert_eq!(
        (&p["type"], &p["data"]["status"]),
        (&json!("domain.updated"), &json!("verified"))
    );
    assert_eq!(p["data"]["name"], "hooks.example.com");
    ok(send("DELETE", &format!("/domains/{id}"), json!({})));
    assert_eq!(delivered(url, &secret), ["domain.deleted"]);
}

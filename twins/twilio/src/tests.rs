use serde_json::{Value, json};
use wt_sdk::fields::Fields;
use wt_sdk::testing::{self, Client, call, expect};
use wt_sdk::{Request, Response, store};

use super::Twilio;
use crate::messages::{price, segments, signature};
use crate::verify::code_key;

const AC: &str = "AC0123456789abcdef0123456789abcdef";
const OTHER: &str = "ACffffffffffffffffffffffffffffffff";
const TOKEN: &str = "secret-token";
const T0: u64 = 1_700_000_000_000;
const HOOK: &str = "http://127.0.0.1:9/status";

fn setup() {
    testing::reset();
    testing::set_now_millis(T0);
}

fn client(user: &str, password: &str) -> Client<Twilio> {
    Client::new().basic(user, password)
}

fn req_as(user: &str, password: &str, method: &str, path: &str) -> Request {
    client(user, password).request(method, path)
}

fn msgs(account: &str) -> String {
    format!("/2010-04-01/Accounts/{account}/Messages.json")
}

fn msg(sid: &str) -> String {
    format!("/2010-04-01/Accounts/{AC}/Messages/{sid}.json")
}

fn post(path: &str, form: &str) -> Response {
    client(AC, TOKEN).post_form(path, form)
}

fn get(path: &str) -> Response {
    client(AC, TOKEN).get(path)
}

fn body(r: &Response) -> Value {
    r.json_body().unwrap()
}

fn status(r: Response, want: u16) -> Value {
    expect(r, want)
}

fn err(r: Response, http: u16, code: u64) -> Value {
    assert_eq!(r.status, http, "{}", r.body_text());
    let b = body(&r);
    assert_eq!(b["code"], json!(code), "{b}");
    assert_eq!(b["status"], json!(http));
    assert_eq!(
        b["more_info"],
        json!(format!("https://www.twilio.com/docs/errors/{code}"))
    );
    assert!(b["message"].as_str().is_some_and(|m| !m.is_empty()));
    b
}

fn send(form: &str) -> Value {
    status(post(&msgs(AC), form), 201)
}

fn is_sid(v: &Value, prefix: &str) -> bool {
    v.as_str().is_some_and(|s| crate::wire::is_sid(s, prefix))
}

// --- wire --------------------------------------------------------------------

#[test]
fn authentication_errors_are_20003() {
    setup();
    let b = err(call::<Twilio>(Request::new("GET", &msgs(AC))), 401, 20003);
    assert_eq!(b["message"], json!("Authenticate"));
    let r = call::<Twilio>(Request::new("GET", &msgs(AC)));
    assert!(
        r.header("www-authenticate")
            .is_some_and(|h| h.starts_with("Basic"))
    );
    let bearer = Request::new("GET", &msgs(AC)).with_header("authorization", "Bearer x");
    err(call::<Twilio>(bearer), 401, 20003);
    err(
        call::<Twilio>(req_as("AC123", TOKEN, "GET", &msgs("AC123"))),
        401,
        20003,
    );
    err(call::<Twilio>(req_as(AC, "", "GET", &msgs(AC))), 401, 20003);
    let not_hex = "ACzz23456789abcdef0123456789abcdef";
    err(
        call::<Twilio>(req_as(not_hex, TOKEN, "GET", &msgs(not_hex))),
        401,
        20003,
    );
    // The first token seen is the account's; another one is refused.
    status(get(&msgs(AC)), 200);
    err(
        call::<Twilio>(req_as(AC, "other", "GET", &msgs(AC))),
        401,
        20003,
    );
}

#[test]
fn another_accounts_url_is_404() {
    setup();
    let b = err(get(&msgs(OTHER)), 404, 20404);
    assert!(b["message"].as_str().unwrap().contains(&msgs(OTHER)));
}

#[test]
fn api_keys_bind_to_their_first_account() {
    setup();
    let sk = "SK0123456789abcdef0123456789abcdef";
    let created = status(
        call::<Twilio>(
            req_as(sk, "keysecret", "POST", &msgs(AC))
                .with_form("To=%2B15551234567&From=%2B15005550006&Body=hi"),
        ),
        201,
    );
    assert_eq!(created["account_sid"], json!(AC));
    // The account's own credentials see what the key created.
    let listed = status(get(&msgs(AC)), 200);
    assert_eq!(listed["messages"][0]["sid"], created["sid"]);
    err(
        call::<Twilio>(req_as(sk, "keysecret", "GET", &msgs(OTHER))),
        404,
        20404,
    );
    err(
        call::<Twilio>(req_as(sk, "wrong", "GET", &msgs(AC))),
        401,
        20003,
    );
    // On Verify (no account in the URL) the key acts for its account.
    let service = status(
        call::<Twilio>(req_as(sk, "keysecret", "POST", "/v2/Services").with_form("FriendlyName=K")),
        201,
    );
    assert_eq!(service["account_sid"], json!(AC));
}

#[test]
fn unknown_routes_and_methods_use_twilios_shape() {
    setup();
    let b = err(
        get("/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Nope.json"),
        404,
        20404,
    );
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .ends_with("/Nope.json was not found")
    );
    err(
        call::<Twilio>(req_as(AC, TOKEN, "PUT", &msgs(AC))),
        405,
        20004,
    );
    err(
        get(&format!("/2010-04-01/Accounts/{AC}/Messages/SM1")),
        404,
        20404,
    );
}

#[test]
fn the_account_resource() {
    setup();
    let path = format!("/2010-04-01/Accounts/{AC}.json");
    let a = status(get(&path), 200);
    assert_eq!(a["sid"], json!(AC));
    assert_eq!(a["auth_token"], json!(TOKEN));
    assert_eq!(a["status"], json!("active"));
    assert_eq!(a["friendly_name"], json!("My first Twilio account"));
    assert_eq!(a["date_created"], json!("Tue, 14 Nov 2023 22:13:20 +0000"));
    assert_eq!(a["uri"], json!(path));
    testing::advance_millis(1000);
    let renamed = status(post(&path, "FriendlyName=Test+Shop"), 200);
    assert_eq!(renamed["friendly_name"], json!("Test Shop"));
    assert_eq!(
        renamed["date_updated"],
        json!("Tue, 14 Nov 2023 22:13:21 +0000")
    );
    assert_eq!(status(get(&path), 200)["friendly_name"], json!("Test Shop"));
    err(
        post(&path, &format!("FriendlyName={}", "n".repeat(65))),
        400,
        20001,
    );
    err(
        get(&format!("/2010-04-01/Accounts/{OTHER}.json")),
        404,
        20404,
    );
    err(get(&format!("/2010-04-01/Accounts/{AC}")), 404, 20404);
}

// --- messages ----------------------------------------------------------------

#[test]
fn create_returns_the_twilio_message() {
    setup();
    let m = send(
        "To=%2B15551234567&From=%2B15005550006&Body=Hello+there&StatusCallback=http%3A%2F%2F127.0.0.1%3A9%2Fs",
    );
    assert!(is_sid(&m["sid"], "SM"), "{m}");
    assert_eq!(m["account_sid"], json!(AC));
    assert_eq!(m["status"], json!("queued"));
    assert_eq!(m["to"], json!("+15551234567"));
    assert_eq!(m["from"], json!("+15005550006"));
    assert_eq!(m["body"], json!("Hello there"));
    assert_eq!(m["date_created"], json!("Tue, 14 Nov 2023 22:13:20 +0000"));
    assert_eq!(m["date_updated"], m["date_created"]);
    assert_eq!(m["date_sent"], Value::Null);
    assert_eq!(m["direction"], json!("outbound-api"));
    assert_eq!(m["api_version"], json!("2010-04-01"));
    assert_eq!(
        (m["num_segments"].clone(), m["num_media"].clone()),
        (json!("1"), json!("0"))
    );
    assert_eq!(m["price"], Value::Null);
    assert_eq!(m["error_code"], Value::Null);
    let sid = m["sid"].as_str().unwrap();
    assert_eq!(m["uri"], json!(msg(sid)));
    assert_eq!(
        m["subresource_uris"]["media"],
        json!(format!(
            "/2010-04-01/Accounts/{AC}/Messages/{sid}/Media.json"
        ))
    );
    assert_eq!(status(get(&msg(sid)), 200), m);
}

#[test]
fn required_fields_and_invalid_numbers() {
    setup();
    err(post(&msgs(AC), "From=%2B15005550006&Body=x"), 400, 21604);
    err(post(&msgs(AC), "To=%2B15551234567&Body=x"), 400, 21603);
    err(
        post(&msgs(AC), "To=%2B15551234567&From=%2B15005550006"),
        400,
        21602,
    );
    err(
        post(&msgs(AC), "To=%2B15551234567&From=%2B15005550006&Body="),
        400,
        21602,
    );
    err(
        post(&msgs(AC), "To=5551234&From=%2B15005550006&Body=x"),
        400,
        21211,
    );
    err(
        post(&msgs(AC), "To=%2B15551234567&From=not+a+number!&Body=x"),
        400,
        21212,
    );
    err(
        post(&msgs(AC), "To=%2B15551234567&From=%2B15551234567&Body=x"),
        400,
        21266,
    );
    let long = "a".repeat(1601);
    err(
        post(
            &msgs(AC),
            &format!("To=%2B15551234567&From=%2B15005550006&Body={long}"),
        ),
        400,
        21617,
    );
    err(
        post(
            &msgs(AC),
            "To=%2B15551234567&From=%2B15005550006&MediaUrl=ftp%3A%2F%2Fx",
        ),
        400,
        21620,
    );
    err(
        post(
            &msgs(AC),
            "To=%2B15551234567&From=%2B15005550006&Body=x&StatusCallback=nope",
        ),
        400,
        21609,
    );
    err(
        post(
            &msgs(AC),
            "To=%2B15551234567&MessagingServiceSid=MG1&Body=x",
        ),
        400,
        21705,
    );
    // Media alone is enough; alphanumeric senders and short codes are valid.
    let m = send(
        "To=%2B15551234567&From=Acme&MediaUrl=https%3A%2F%2Fx.test%2Fa.png&MediaUrl=https%3A%2F%2Fx.test%2Fb.pdf",
    );
    assert_eq!(m["num_media"], json!("2"));
    send("To=%2B15551234567&From=12345&Body=x");
    // Nothing was stored for the refused ones.
    assert_eq!(
        status(get(&msgs(AC)), 200)["messages"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn magic_test_numbers() {
    setup();
    let cases = [
        ("%2B15005550001", "%2B15551234567", 21212),
        ("%2B15005550007", "%2B15551234567", 21606),
        ("%2B15005550008", "%2B15551234567", 21611),
        ("%2B15005550006", "%2B15005550001", 21211),
        ("%2B15005550006", "%2B15005550002", 21612),
        ("%2B15005550006", "%2B15005550003", 21408),
        ("%2B15005550006", "%2B15005550004", 21610),
        ("%2B15005550006", "%2B15005550009", 21614),
    ];
    for (from, to, code) in cases {
        err(
            post(&msgs(AC), &format!("To={to}&From={from}&Body=x")),
            400,
            code,
        );
    }
    // The valid magic From, and any other well-formed number, succeed.
    assert_eq!(
        send("To=%2B15551234567&From=%2B15005550006&Body=x")["status"],
        json!("queued")
    );
    assert_eq!(
        send("To=%2B447700900123&From=%2B15557654321&Body=x")["status"],
        json!("queued")
    );
}

fn progress(to: &str) -> (String, Vec<Value>) {
    let m = send(&format!(
        "To={to}&From=%2B15005550006&Body=hi&StatusCallback={}",
        wt_sdk::fields::encode_component(HOOK)
    ));
    let sid = m["sid"].as_str().unwrap().to_owned();
    let mut seen = vec![m];
    for _ in 0..4 {
        testing::advance_millis(1000);
        seen.push(status(get(&msg(&sid)), 200));
    }
    (sid, seen)
}

fn statuses(seen: &[Value]) -> Vec<&str> {
    seen.iter().map(|m| m["status"].as_str().unwrap()).collect()
}

#[test]
fn status_progresses_with_twin_time_and_calls_back_signed() {
    setup();
    let (sid, seen) = progress("%2B15551234567");
    assert_eq!(
        statuses(&seen),
        ["queued", "sending", "sent", "delivered", "delivered"]
    );
    assert_eq!(
        seen[2]["date_sent"],
        json!("Tue, 14 Nov 2023 22:13:22 +0000")
    );
    assert_eq!(
        seen[3]["date_updated"],
        json!("Tue, 14 Nov 2023 22:13:23 +0000")
    );
    assert_eq!(seen[3]["price"], json!("-0.00790"));
    assert_eq!(seen[3]["error_code"], Value::Null);
    let calls = testing::take_outbox();
    assert_eq!(calls.len(), 3);
    let mut got = Vec::new();
    for c in &calls {
        assert_eq!(c.url, HOOK);
        let params = Fields::parse(&String::from_utf8_lossy(&c.body));
        assert_eq!(params.get("MessageSid"), Some(sid.as_str()));
        assert_eq!(params.get("AccountSid"), Some(AC));
        assert_eq!(params.get("From"), Some("+15005550006"));
        assert_eq!(params.get("To"), Some("+15551234567"));
        assert_eq!(params.get("ErrorCode"), None);
        let pairs: Vec<(&str, String)> = params
            .pairs()
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        let header = c
            .headers
            .iter()
            .find(|(k, _)| k == "x-twilio-signature")
            .map(|(_, v)| v.as_str());
        assert_eq!(header, Some(signature(TOKEN, HOOK, &pairs).as_str()));
        got.push(params.get("MessageStatus").unwrap().to_owned());
    }
    assert_eq!(got, ["sending", "sent", "delivered"]);
}

#[test]
fn signature_matches_twilios_request_validator() {
    // Computed with the `twilio` Python package's RequestValidator.
    let params = [
        ("To", "+18005551212".to_owned()),
        ("CallSid", "CA1234567890ABCDE".to_owned()),
        ("Caller", "+12349013030".to_owned()),
        ("Digits", "1234".to_owned()),
        ("From", "+12349013030".to_owned()),
    ];
    assert_eq!(
        signature(
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=2",
            &params
        ),
        "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    );
}

#[test]
fn failure_numbers_end_undelivered_or_failed() {
    setup();
    let (_, seen) = progress("%2B15005550005");
    assert_eq!(
        statuses(&seen),
        ["queued", "sending", "sent", "undelivered", "undelivered"]
    );
    assert_eq!(seen[3]["error_code"], json!(30003));
    let (_, seen) = progress("%2B15005550010");
    assert_eq!(
        statuses(&seen),
        ["queued", "sending", "failed", "failed", "failed"]
    );
    assert_eq!(seen[2]["error_code"], json!(30008));
    assert_eq!(seen[2]["date_sent"], Value::Null);
    let last = testing::take_outbox().pop().unwrap();
    let params = Fields::parse(&String::from_utf8_lossy(&last.body));
    assert_eq!(params.get("MessageStatus"), Some("failed"));
    assert_eq!(params.get("ErrorCode"), Some("30008"));
}

#[test]
fn a_late_read_applies_every_step_at_once() {
    setup();
    let m = send(&format!(
        "To=%2B15551234567&From=%2B15005550006&Body=x&StatusCallback={}",
        wt_sdk::fields::encode_component(HOOK)
    ));
    testing::advance_millis(3_600_000);
    // Any request of the account applies them, even one for another resource.
    status(
        call::<Twilio>(req_as(AC, TOKEN, "GET", "/v2/Services")),
        200,
    );
    assert_eq!(testing::take_outbox().len(), 3);
    let fetched = status(get(&msg(m["sid"].as_str().unwrap())), 200);
    assert_eq!(fetched["status"], json!("delivered"));
    assert!(testing::take_outbox().is_empty());
    assert!(
        !testing::store_keys()
            .iter()
            .any(|k| k.contains("/pending/"))
    );
}

#[test]
fn list_pages_newest_first_with_links_without_prefix() {
    setup();
    let mut sids = Vec::new();
    for i in 0..5 {
        sids.push(
            send(&format!("To=%2B1555123456{i}&From=%2B15005550006&Body={i}"))["sid"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        testing::advance_millis(10);
    }
    sids.reverse();
    let p1 = status(get(&format!("{}?PageSize=2", msgs(AC))), 200);
    let keys: Vec<&String> = p1.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "end",
            "first_page_uri",
            "messages",
            "next_page_uri",
            "page",
            "page_size",
            "previous_page_uri",
            "start",
            "uri"
        ]
    );
    let ids = |p: &Value| -> Vec<String> {
        p["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["sid"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&p1), sids[..2]);
    assert_eq!(
        (
            p1["page"].clone(),
            p1["page_size"].clone(),
            p1["start"].clone(),
            p1["end"].clone()
        ),
        (json!(0), json!(2), json!(0), json!(1))
    );
    assert_eq!(p1["previous_page_uri"], Value::Null);
    assert_eq!(
        p1["first_page_uri"],
        json!(format!("{}?PageSize=2&Page=0", msgs(AC)))
    );
    let next = p1["next_page_uri"].as_str().unwrap();
    assert!(
        next.starts_with(&format!("{}?PageSize=2&Page=1&PageToken=PA", msgs(AC))),
        "{next}"
    );
    let p2 = status(get(next), 200);
    assert_eq!(ids(&p2), sids[2..4]);
    assert_eq!(p2["start"], json!(2));
    let p3 = status(get(p2["next_page_uri"].as_str().unwrap()), 200);
    assert_eq!(ids(&p3), sids[4..]);
    assert_eq!(p3["next_page_uri"], Value::Null);
    let back = status(get(p3["previous_page_uri"].as_str().unwrap()), 200);
    assert_eq!(ids(&back), sids[2..4]);
    assert_eq!(back["page"], json!(1));
    let back = status(get(back["previous_page_uri"].as_str().unwrap()), 200);
    assert_eq!(ids(&back), sids[..2]);
    assert_eq!(back["previous_page_uri"], Value::Null);
    // A page number alone skips.
    assert_eq!(
        ids(&status(
            get(&format!("{}?PageSize=2&Page=1", msgs(AC))),
            200
        )),
        sids[2..4]
    );
    err(get(&format!("{}?PageSize=0", msgs(AC))), 400, 20001);
    err(get(&format!("{}?PageSize=1001", msgs(AC))), 400, 20001);
    err(get(&format!("{}?PageToken=PASMnope", msgs(AC))), 400, 20001);
    err(get(&format!("{}?PageToken=XX", msgs(AC))), 400, 20001);
}

#[test]
fn list_filters_carry_into_links() {
    setup();
    send("To=%2B15551110000&From=%2B15005550006&Body=a");
    send("To=%2B15552220000&From=%2B15005550006&Body=b");
    send("To=%2B15551110000&From=%2B15553330000&Body=c");
    let p = status(
        get(&format!("{}?To=%2B15551110000&PageSize=1", msgs(AC))),
        200,
    );
    assert_eq!(p["messages"][0]["body"], json!("c"));
    let next = p["next_page_uri"].as_str().unwrap();
    assert!(next.contains("To=%2B15551110000"), "{next}");
    let p2 = status(get(next), 200);
    assert_eq!(p2["messages"][0]["body"], json!("a"));
    assert_eq!(p2["next_page_uri"], Value::Null);
    let by_from = status(get(&format!("{}?From=%2B15553330000", msgs(AC))), 200);
    assert_eq!(by_from["messages"].as_array().unwrap().len(), 1);
}

#[test]
fn date_sent_filters() {
    setup();
    send("To=%2B15551110000&From=%2B15005550006&Body=day1");
    testing::advance_millis(86_400_000);
    send("To=%2B15551110000&From=%2B15005550006&Body=day2");
    // Unsent messages have no date_sent and match no DateSent filter.
    let q = |f: &str| -> Vec<String> {
        status(get(&format!("{}?{f}", msgs(AC))), 200)["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["body"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(q("DateSent=2023-11-14"), ["day1"]);
    testing::advance_millis(5000);
    assert_eq!(q("DateSent=2023-11-15"), ["day2"]);
    assert_eq!(q("DateSent%3C=2023-11-14"), ["day1"]);
    assert_eq!(q("DateSent%3E=2023-11-15"), ["day2"]);
    assert_eq!(q("DateSent%3E=2023-11-14T00%3A00%3A00Z"), ["day2", "day1"]);
    assert!(q("DateSent%3C=2023-11-13").is_empty());
    err(get(&format!("{}?DateSent=yesterday", msgs(AC))), 400, 20001);
}

#[test]
fn redact_cancel_and_delete_follow_the_status() {
    setup();
    let m = send(&format!(
        "To=%2B15551234567&From=%2B15005550006&Body=secret&StatusCallback={}",
        wt_sdk::fields::encode_component(HOOK)
    ));
    let sid = m["sid"].as_str().unwrap();
    err(post(&msg(sid), "Body="), 400, 20009);
    err(
        call::<Twilio>(req_as(AC, TOKEN, "DELETE", &msg(sid))),
        400,
        20009,
    );
    err(post(&msg(sid), "Body=new"), 400, 20001);
    err(post(&msg(sid), "Status=sent"), 400, 20001);
    testing::advance_millis(5000);
    err(post(&msg(sid), "Status=canceled"), 400, 30409);
    let redacted = status(post(&msg(sid), "Body="), 200);
    assert_eq!(redacted["body"], json!(""));
    assert_eq!(redacted["status"], json!("delivered"));
    status(call::<Twilio>(req_as(AC, TOKEN, "DELETE", &msg(sid))), 204);
    err(get(&msg(sid)), 404, 20404);
    // A queued message can be canceled; it then stays canceled.
    testing::take_outbox();
    let q = send(&format!(
        "To=%2B15551234567&From=%2B15005550006&Body=x&StatusCallback={}",
        wt_sdk::fields::encode_component(HOOK)
    ));
    let qsid = q["sid"].as_str().unwrap();
    assert_eq!(
        status(post(&msg(qsid), "Status=canceled"), 200)["status"],
        json!("canceled")
    );
    testing::advance_millis(10_000);
    assert_eq!(status(get(&msg(qsid)), 200)["status"], json!("canceled"));
    let calls = testing::take_outbox();
    assert_eq!(calls.len(), 1);
    assert!(String::from_utf8_lossy(&calls[0].body).contains("MessageStatus=canceled"));
}

#[test]
fn scheduled_messages_wait_for_send_at() {
    setup();
    let base = "To=%2B15551234567&Body=later&ScheduleType=fixed";
    err(
        post(
            &msgs(AC),
            &format!("{base}&From=%2B15005550006&SendAt=2023-11-15T00%3A00%3A00Z"),
        ),
        400,
        35118,
    );
    let mg = "MG0123456789abcdef0123456789abcdef";
    err(
        post(&msgs(AC), &format!("{base}&MessagingServiceSid={mg}")),
        400,
        35115,
    );
    err(
        post(
            &msgs(AC),
            &format!("{base}&MessagingServiceSid={mg}&SendAt=2023-11-14T22%3A20%3A00Z"),
        ),
        400,
        35114,
    );
    err(
        post(
            &msgs(AC),
            &format!("{base}&MessagingServiceSid={mg}&SendAt=soon"),
        ),
        400,
        35114,
    );
    err(
        post(
            &msgs(AC),
            &format!("To=%2B15551234567&Body=x&ScheduleType=often&MessagingServiceSid={mg}"),
        ),
        400,
        35111,
    );
    let m = send(&format!(
        "{base}&MessagingServiceSid={mg}&SendAt=2023-11-15T00%3A00%3A00Z"
    ));
    assert_eq!(m["status"], json!("scheduled"));
    assert_eq!(m["from"], Value::Null);
    assert_eq!(m["messaging_service_sid"], json!(mg));
    let sid = m["sid"].as_str().unwrap();
    testing::advance_millis(3_600_000);
    assert_eq!(status(get(&msg(sid)), 200)["status"], json!("scheduled"));
    testing::set_now_millis(1_700_006_400_000 + 2500); // SendAt + 2.5 s
    let sent = status(get(&msg(sid)), 200);
    assert_eq!(sent["status"], json!("sent"));
    assert_eq!(sent["date_sent"], json!("Wed, 15 Nov 2023 00:00:02 +0000"));
    // Canceling a scheduled message.
    let m2 = send(&format!(
        "{base}&MessagingServiceSid={mg}&SendAt=2023-11-16T00%3A00%3A00Z"
    ));
    let s2 = m2["sid"].as_str().unwrap();
    assert_eq!(
        status(post(&msg(s2), "Status=canceled"), 200)["status"],
        json!("canceled")
    );
}

#[test]
fn a_messaging_service_alone_is_accepted_then_queued() {
    setup();
    let mg = "MG0123456789abcdef0123456789abcdef";
    let m = send(&format!(
        "To=%2B15551234567&MessagingServiceSid={mg}&Body=x&StatusCallback={}",
        wt_sdk::fields::encode_component(HOOK)
    ));
    assert_eq!(m["status"], json!("accepted"));
    let sid = m["sid"].as_str().unwrap();
    assert_eq!(status(get(&msg(sid)), 200)["status"], json!("queued"));
    let calls = testing::take_outbox();
    assert_eq!(calls.len(), 1);
    let params = Fields::parse(&String::from_utf8_lossy(&calls[0].body));
    assert_eq!(params.get("MessageStatus"), Some("queued"));
    assert_eq!(params.get("MessagingServiceSid"), Some(mg));
    assert_eq!(params.get("From"), None);
    testing::advance_millis(3000);
    assert_eq!(status(get(&msg(sid)), 200)["status"], json!("delivered"));
}

#[test]
fn media_subresource_lists_each_url() {
    setup();
    let m = send(
        "To=%2B15551234567&From=%2B15005550006&MediaUrl=https%3A%2F%2Fx.test%2Fa.png&MediaUrl=https%3A%2F%2Fx.test%2Fb",
    );
    let page = status(get(m["subresource_uris"]["media"].as_str().unwrap()), 200);
    let list = page["media_list"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert!(is_sid(&list[0]["sid"], "ME"));
    assert_eq!(list[0]["content_type"], json!("image/png"));
    assert_eq!(list[1]["content_type"], json!("application/octet-stream"));
    assert_eq!(list[0]["parent_sid"], m["sid"]);
}

#[test]
fn segments_and_prices() {
    assert_eq!(segments(""), 1);
    assert_eq!(segments(&"a".repeat(160)), 1);
    assert_eq!(segments(&"a".repeat(161)), 2);
    assert_eq!(segments(&"a".repeat(306)), 2);
    assert_eq!(segments(&"a".repeat(307)), 3);
    assert_eq!(segments(&"{".repeat(80)), 1);
    assert_eq!(segments(&"{".repeat(81)), 2);
    assert_eq!(segments(&"é".repeat(160)), 1);
    assert_eq!(segments(&"ł".repeat(70)), 1);
    assert_eq!(segments(&"ł".repeat(71)), 2);
    assert_eq!(segments("hi 👋"), 1);
    assert_eq!(price(1), "-0.00790");
    assert_eq!(price(3), "-0.02370");
    assert_eq!(price(200), "-1.58000");
}

#[test]
fn accounts_are_isolated() {
    setup();
    send("To=%2B15551234567&From=%2B15005550006&Body=x");
    let other = call::<Twilio>(req_as(OTHER, "t", "GET", &msgs(OTHER)));
    assert!(
        status(other, 200)["messages"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

// --- verify ------------------------------------------------------------------

fn v2(method: &str, path: &str, form: &str) -> Response {
    call::<Twilio>(req_as(AC, TOKEN, method, path).with_form(form))
}

fn service(form: &str) -> Value {
    status(v2("POST", "/v2/Services", form), 201)
}

fn code(service: &str, to: &str) -> String {
    String::from_utf8(store::get(&code_key(AC, service, to)).expect("code stored")).unwrap()
}

#[test]
fn services_crud_and_list() {
    setup();
    err(v2("POST", "/v2/Services", ""), 400, 20001);
    err(
        v2("POST", "/v2/Services", "FriendlyName=x&CodeLength=3"),
        400,
        60200,
    );
    err(
        v2("POST", "/v2/Services", "FriendlyName=x&CodeLength=11"),
        400,
        60200,
    );
    err(
        v2("POST", "/v2/Services", "FriendlyName=x&LookupEnabled=maybe"),
        400,
        60200,
    );
    err(
        v2(
            "POST",
            "/v2/Services",
            &format!("FriendlyName={}", "n".repeat(31)),
        ),
        400,
        60200,
    );
    let s = service("FriendlyName=My+App&CodeLength=8");
    assert!(is_sid(&s["sid"], "VA"));
    assert_eq!(s["code_length"], json!(8));
    assert_eq!(s["friendly_name"], json!("My App"));
    assert_eq!(s["date_created"], json!("2023-11-14T22:13:20Z"));
    let sid = s["sid"].as_str().unwrap();
    assert_eq!(
        s["url"],
        json!(format!("https://verify.twilio.com/v2/Services/{sid}"))
    );
    let path = format!("/v2/Services/{sid}");
    assert_eq!(status(v2("GET", &path, ""), 200), s);
    let u = status(
        v2(
            "POST",
            &path,
            "FriendlyName=Renamed&CodeLength=4&Psd2Enabled=true",
        ),
        200,
    );
    assert_eq!(
        (
            u["friendly_name"].clone(),
            u["code_length"].clone(),
            u["psd2_enabled"].clone()
        ),
        (json!("Renamed"), json!(4), json!(true))
    );
    let s2 = service("FriendlyName=Two");
    let page = status(v2("GET", "/v2/Services?PageSize=1", ""), 200);
    assert_eq!(page["services"][0]["sid"], s["sid"]);
    assert_eq!(page["meta"]["key"], json!("services"));
    assert_eq!(
        page["meta"]["first_page_url"],
        json!("https://verify.twilio.com/v2/Services?PageSize=1&Page=0")
    );
    let next = page["meta"]["next_page_url"].as_str().unwrap();
    let rel = next.strip_prefix("https://verify.twilio.com").unwrap();
    let page2 = status(v2("GET", rel, ""), 200);
    assert_eq!(page2["services"][0]["sid"], s2["sid"]);
    assert_eq!(page2["meta"]["next_page_url"], Value::Null);
    assert!(page2["meta"]["previous_page_url"].is_string());
    status(v2("DELETE", &path, ""), 204);
    err(v2("GET", &path, ""), 404, 20404);
    err(v2("DELETE", &path, ""), 404, 20404);
}

fn verification(service: &str, form: &str) -> Response {
    v2(
        "POST",
        &format!("/v2/Services/{service}/Verifications"),
        form,
    )
}

fn check(service: &str, form: &str) -> Response {
    v2(
        "POST",
        &format!("/v2/Services/{service}/VerificationCheck"),
        form,
    )
}

#[test]
fn verify_flow_approves_the_right_code() {
    setup();
    let s = service("FriendlyName=App&CodeLength=7");
    let va = s["sid"].as_str().unwrap();
    let v = status(verification(va, "To=%2B15551234567&Channel=sms"), 201);
    assert!(is_sid(&v["sid"], "VE"));
    assert_eq!(
        (v["status"].clone(), v["valid"].clone()),
        (json!("pending"), json!(false))
    );
    assert_eq!(v["send_code_attempts"].as_array().unwrap().len(), 1);
    assert!(v.get("code").is_none());
    let code = code(va, "+15551234567");
    assert_eq!(code.len(), 7);
    assert!(code.bytes().all(|b| b.is_ascii_digit()));
    let wrong = if code == "0000000" {
        "1111111"
    } else {
        "0000000"
    };
    let miss = status(check(va, &format!("To=%2B15551234567&Code={wrong}")), 200);
    assert_eq!(
        (miss["status"].clone(), miss["valid"].clone()),
        (json!("pending"), json!(false))
    );
    let hit = status(check(va, &format!("To=%2B15551234567&Code={code}")), 200);
    assert_eq!(
        (hit["status"].clone(), hit["valid"].clone()),
        (json!("approved"), json!(true))
    );
    assert_eq!(hit["sid"], v["sid"]);
    // Approved: the code is gone and checks find nothing pending.
    assert!(store::get(&code_key(AC, va, "+15551234567")).is_none());
    err(
        check(va, &format!("To=%2B15551234567&Code={code}")),
        404,
        20404,
    );
    // Still fetchable within its ten minutes, by SID.
    let fetched = status(
        v2(
            "GET",
            &format!(
                "/v2/Services/{va}/Verifications/{}",
                v["sid"].as_str().unwrap()
            ),
            "",
        ),
        200,
    );
    assert_eq!(fetched["status"], json!("approved"));
}

#[test]
fn verify_resends_the_same_code_and_limits_sends() {
    setup();
    let va = service("FriendlyName=App")["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = status(verification(&va, "To=%2B15551234567&Channel=sms"), 201);
    let code = code(&va, "+15551234567");
    assert_eq!(code.len(), 6);
    let again = status(verification(&va, "To=%2B15551234567&Channel=call"), 201);
    assert_eq!(again["sid"], first["sid"]);
    assert_eq!(again["channel"], json!("call"));
    assert_eq!(self::code(&va, "+15551234567"), code);
    for _ in 0..3 {
        status(verification(&va, "To=%2B15551234567&Channel=sms"), 201);
    }
    err(
        verification(&va, "To=%2B15551234567&Channel=sms"),
        429,
        60203,
    );
    // By `To` as the path SID, and by VerificationSid in a check.
    let by_to = status(
        v2(
            "GET",
            &format!("/v2/Services/{va}/Verifications/%2B15551234567"),
            "",
        ),
        200,
    );
    assert_eq!(by_to["send_code_attempts"].as_array().unwrap().len(), 5);
    let ok = status(
        check(
            &va,
            &format!(
                "VerificationSid={}&Code={code}",
                first["sid"].as_str().unwrap()
            ),
        ),
        200,
    );
    assert_eq!(ok["status"], json!("approved"));
}

#[test]
fn verify_max_checks_and_expiry() {
    setup();
    let va = service("FriendlyName=App")["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    status(verification(&va, "To=%2B15551234567&Channel=sms"), 201);
    let code = code(&va, "+15551234567");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        status(check(&va, &format!("To=%2B15551234567&Code={wrong}")), 200);
    }
    err(
        check(&va, &format!("To=%2B15551234567&Code={code}")),
        429,
        60202,
    );
    err(
        check(&va, &format!("To=%2B15551234567&Code={code}")),
        404,
        20404,
    );
    // A new verification starts over; it expires after ten minutes.
    let v = status(verification(&va, "To=%2B15551234567&Channel=sms"), 201);
    let code = self::code(&va, "+15551234567");
    testing::advance_millis(10 * 60 * 1000);
    err(
        check(&va, &format!("To=%2B15551234567&Code={code}")),
        404,
        20404,
    );
    err(
        v2(
            "GET",
            &format!(
                "/v2/Services/{va}/Verifications/{}",
                v["sid"].as_str().unwrap()
            ),
            "",
        ),
        404,
        20404,
    );
    assert!(store::get(&code_key(AC, &va, "+15551234567")).is_none());
}

#[test]
fn verify_validation_cancel_and_custom_codes() {
    setup();
    let va = service("FriendlyName=App")["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    err(verification(&va, "Channel=sms"), 400, 20001);
    err(verification(&va, "To=%2B15551234567"), 400, 20001);
    err(
        verification(&va, "To=%2B15551234567&Channel=pigeon"),
        400,
        60200,
    );
    err(verification(&va, "To=5551234567&Channel=sms"), 400, 60200);
    err(
        verification(&va, "To=not-an-email&Channel=email"),
        400,
        60200,
    );
    err(
        verification(&va, "To=%2B15551234567&Channel=sms&CustomCode=1234"),
        400,
        60200,
    );
    err(
        verification(
            "VA00000000000000000000000000000000",
            "To=%2B15551234567&Channel=sms",
        ),
        404,
        20404,
    );
    err(check(&va, "To=%2B15551234567"), 400, 20001);
    err(check(&va, "Code=123456"), 400, 20001);
    let e = status(verification(&va, "To=a%40example.com&Channel=email"), 201);
    assert_eq!(e["channel"], json!("email"));
    let path = format!(
        "/v2/Services/{va}/Verifications/{}",
        e["sid"].as_str().unwrap()
    );
    err(v2("POST", &path, "Status=done"), 400, 60200);
    assert_eq!(
        status(v2("POST", &path, "Status=canceled"), 200)["status"],
        json!("canceled")
    );
    err(v2("POST", &path, "Status=approved"), 404, 20404);
    // Custom codes once the service allows them.
    status(
        v2(
            "POST",
            &format!("/v2/Services/{va}"),
            "CustomCodeEnabled=true",
        ),
        200,
    );
    status(
        verification(&va, "To=%2B15559876543&Channel=sms&CustomCode=4242"),
        201,
    );
    assert_eq!(code(&va, "+15559876543"), "4242");
    assert_eq!(
        status(check(&va, "To=%2B15559876543&Code=4242"), 200)["status"],
        json!("approved")
    );
}

#[test]
fn deleting_a_service_drops_its_verifications_and_codes() {
    setup();
    let va = service("FriendlyName=App")["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    status(verification(&va, "To=%2B15551234567&Channel=sms"), 201);
    status(v2("DELETE", &format!("/v2/Services/{va}"), ""), 204);
    assert!(!testing::store_keys().iter().any(|k| k.contains(&va)));
}

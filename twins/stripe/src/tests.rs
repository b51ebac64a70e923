use serde_json::{Value, json};
use wt_sdk::testing::{Client, call, expect};
use wt_sdk::{Request, Response};

use super::Stripe;

const KEY: &str = "sk_test_unit";

fn client(key: &str) -> Client<Stripe> {
    Client::new().bearer(key)
}

fn req(method: &str, path: &str, key: &str) -> Request {
    client(key).request(method, path)
}

fn post(path: &str, form: &str) -> Response {
    client(KEY).post_form(path, form)
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

#[test]
fn auth_is_required_and_keys_are_accounts() {
    let r = call::<Stripe>(Request::new("GET", "/v1/customers"));
    assert_eq!(r.status, 401);
    assert_eq!(body(&r)["error"]["type"], "invalid_request_error");
    let r = call::<Stripe>(req("GET", "/v1/customers", "pk_nope"));
    assert_eq!(r.status, 401);
    assert!(r.header("request-id").unwrap().starts_with("req_"));
    let c = ok(post("/v1/customers", "email=a@x.io"));
    // Basic auth with the key as user: base64("sk_test_unit:")
    let basic = Request::new(
        "GET",
        &format!("/v1/customers/{}", c["id"].as_str().unwrap()),
    )
    .with_header("authorization", "Basic c2tfdGVzdF91bml0Og==");
    assert_eq!(call::<Stripe>(basic).status, 200);
    let other = call::<Stripe>(req(
        "GET",
        &format!("/v1/customers/{}", c["id"].as_str().unwrap()),
        "sk_test_other",
    ));
    assert_eq!(other.status, 404);
    assert_eq!(body(&other)["error"]["code"], "resource_missing");
}

#[test]
fn headers_and_errors() {
    let r = call::<Stripe>(
        req("GET", "/v1/customers", KEY).with_header("stripe-version", "2020-08-27"),
    );
    assert_eq!(r.header("stripe-version"), Some("2020-08-27"));
    assert_eq!(
        get("/v1/customers").header("stripe-version"),
        Some(super::API_VERSION)
    );
    let e = body(&post("/v1/customers", "bogus=1"));
    assert_eq!(
        (e["error"]["code"].as_str(), e["error"]["param"].as_str()),
        (Some("parameter_unknown"), Some("bogus"))
    );
    let e = get("/v1/customers?limit=abc");
    assert_eq!(
        (e.status, body(&e)["error"]["code"].clone()),
        (400, json!("parameter_invalid_integer"))
    );
    let e = body(&get("/v1/customers/cus_x"));
    assert_eq!(e["error"]["message"], "No such customer: 'cus_x'");
    assert_eq!(e["error"]["param"], "id");
}

#[test]
fn a_create_answers_stores_and_records_one_encoding() {
    let created = post("/v1/customers", "email=one@x.io&name=One");
    assert_eq!(created.status, 200);
    let c = body(&created);
    let id = id_of(&c);
    // The response is the stored object, byte for byte.
    let retrieved = get(&format!("/v1/customers/{id}"));
    assert_eq!(retrieved.body, created.body);
    // The event embeds that same object in Stripe's envelope.
    let events = ok(get("/v1/events?type=customer.created"));
    let event = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["data"]["object"]["id"] == c["id"])
        .unwrap()
        .clone();
    assert_eq!(event["data"]["object"], c);
    assert!(event["data"].get("previous_attributes").is_none());
    assert_eq!(event["object"], "event");
    assert_eq!(event["type"], "customer.created");
    assert_eq!(event["livemode"], false);
    assert_eq!(event["pending_webhooks"], 0);
    assert!(event["request"]["id"].as_str().unwrap().starts_with("req_"));
    assert_eq!(event["request"]["idempotency_key"], Value::Null);
    // Stored (and retrieved) as text with the keys in order, the object as
    // the create answered it.
    let raw = get(&format!("/v1/events/{}", id_of(&event)));
    let text = raw.body_text();
    assert!(text.starts_with(r#"{"api_version":"#), "{text}");
    assert!(
        text.contains(&format!(r#""data":{{"object":{}}}"#, created.body_text())),
        "{text}"
    );
    assert!(text.ends_with(r#""type":"customer.created"}"#), "{text}");
    // An update's event still carries what changed.
    ok(post(&format!("/v1/customers/{id}"), "name=Two"));
    let updated = ok(get("/v1/events?type=customer.updated"));
    assert_eq!(
        updated["data"][0]["data"]["previous_attributes"]["name"],
        "One"
    );
    assert_eq!(updated["data"][0]["data"]["object"]["name"], "Two");
}

#[test]
fn customer_crud_metadata_list_search() {
    let c = ok(post(
        "/v1/customers",
        "email=a@x.io&name=Ann&metadata[k]=v&metadata[j]=w",
    ));
    assert_eq!(c["object"], "customer");
    assert!(c["id"].as_str().unwrap().starts_with("cus_"));
    let id = c["id"].as_str().unwrap();
    let u = ok(post(&format!("/v1/customers/{id}"), "metadata[k]=&name=Bo"));
    assert_eq!(u["metadata"], json!({"j": "w"}));
    assert_eq!(u["name"], "Bo");
    let u = ok(post(&format!("/v1/customers/{id}"), "metadata="));
    assert_eq!(u["metadata"], json!({}));
    ok(post("/v1/customers", "email=b@x.io&metadata[tier]=gold"));
    let l = ok(get("/v1/customers?email=a@x.io"));
    assert_eq!(l["data"].as_array().unwrap().len(), 1);
    assert_eq!(l["url"], "/v1/customers");
    let s = ok(get(
        "/v1/customers/search?query=metadata%5B%27tier%27%5D%3A%27gold%27",
    ));
    assert_eq!(s["object"], "search_result");
    assert_eq!(s["data"][0]["email"], "b@x.io");
    let d = ok(call::<Stripe>(req(
        "DELETE",
        &format!("/v1/customers/{id}"),
        KEY,
    )));
    assert_eq!(d, json!({"id": id, "object": "customer", "deleted": true}));
    assert_eq!(ok(get(&format!("/v1/customers/{id}"))), d);
    assert_eq!(
        ok(get("/v1/customers"))["data"].as_array().unwrap().len(),
        1
    );
}

#[test]
fn idempotent_replay_and_mismatch() {
    let a = call::<Stripe>(
        req("POST", "/v1/customers", KEY)
            .with_header("idempotency-key", "k1")
            .with_form("email=a@x.io"),
    );
    let b = call::<Stripe>(
        req("POST", "/v1/customers", KEY)
            .with_header("idempotency-key", "k1")
            .with_form("email=a@x.io"),
    );
    assert_eq!(b.header("idempotent-replayed"), Some("true"));
    assert_eq!(body(&a), body(&b));
    let c = call::<Stripe>(
        req("POST", "/v1/customers", KEY)
            .with_header("idempotency-key", "k1")
            .with_form("email=z@x.io"),
    );
    assert_eq!(
        (c.status, body(&c)["error"]["type"].clone()),
        (400, json!("idempotency_error"))
    );
    // 400s are not stored: the same key works after fixing the request.
    let bad = call::<Stripe>(
        req("POST", "/v1/customers", KEY)
            .with_header("idempotency-key", "k2")
            .with_form("nope=1"),
    );
    assert_eq!(bad.status, 400);
    let good = call::<Stripe>(
        req("POST", "/v1/customers", KEY)
            .with_header("idempotency-key", "k2")
            .with_form("nope=1"),
    );
    assert_eq!(good.header("idempotent-replayed"), None);
    assert_eq!(
        ok(get("/v1/customers"))["data"].as_array().unwrap().len(),
        1
    );
}

#[test]
fn prices_products_lookup_keys() {
    let prod = ok(post("/v1/products", "name=Gold"));
    let pid = prod["id"].as_str().unwrap();
    assert!(pid.starts_with("prod_"));
    let price = ok(post(
        "/v1/prices",
        &format!(
            "product={pid}&unit_amount=500&currency=usd&recurring[interval]=month&lookup_key=gold"
        ),
    ));
    assert_eq!(price["recurring"]["interval_count"], 1);
    assert_eq!(price["type"], "recurring");
    let e = post(
        "/v1/prices",
        &format!("product={pid}&unit_amount=1&currency=usd&lookup_key=gold"),
    );
    assert_eq!(e.status, 400);
    let p2 = ok(post(
        "/v1/prices",
        &format!(
            "product={pid}&unit_amount=1&currency=usd&lookup_key=gold&transfer_lookup_key=true"
        ),
    ));
    let l = ok(get(
        "/v1/prices?lookup_keys%5B0%5D=gold&expand%5B%5D=data.product",
    ));
    assert_eq!(l["data"].as_array().unwrap().len(), 1);
    assert_eq!(l["data"][0]["id"], p2["id"]);
    assert_eq!(l["data"][0]["product"]["name"], "Gold");
    let e = post(
        &format!("/v1/prices/{}", p2["id"].as_str().unwrap()),
        "unit_amount=3",
    );
    assert_eq!(body(&e)["error"]["code"], "parameter_unknown");
}

#[test]
fn payment_intent_lifecycle_decline_and_refund() {
    let c = ok(post("/v1/customers", "email=a@x.io"));
    let cid = c["id"].as_str().unwrap();
    let pi = ok(post(
        "/v1/payment_intents",
        &format!(
            "amount=1000&currency=usd&customer={cid}&payment_method=pm_card_visa&confirm=true&expand[]=latest_charge.customer"
        ),
    ));
    assert_eq!(pi["status"], "succeeded");
    assert_eq!(pi["latest_charge"]["customer"]["id"], cid);
    assert_eq!(
        pi["latest_charge"]["payment_method_details"]["card"]["last4"],
        "4242"
    );
    let ch = pi["latest_charge"]["id"].as_str().unwrap();
    let r = ok(post("/v1/refunds", &format!("charge={ch}&amount=300")));
    assert_eq!(r["amount"], 300);
    assert_eq!(
        post("/v1/refunds", &format!("charge={ch}&amount=800")).status,
        400
    );
    ok(post("/v1/refunds", &format!("charge={ch}")));
    let charge = ok(get(&format!("/v1/charges/{ch}")));
    assert_eq!(
        (
            charge["amount_refunded"].clone(),
            charge["refunded"].clone()
        ),
        (json!(1000), json!(true))
    );

    let d = post(
        "/v1/payment_intents",
        "amount=500&currency=usd&payment_method=pm_card_chargeDeclinedInsufficientFunds&confirm=true",
    );
    assert_eq!(d.status, 402);
    let e = body(&d)["error"].clone();
    assert_eq!(
        (e["type"].as_str(), e["decline_code"].as_str()),
        (Some("card_error"), Some("insufficient_funds"))
    );
    let pid = e["payment_intent"]["id"].as_str().unwrap();
    let stored = ok(get(&format!("/v1/payment_intents/{pid}")));
    assert_eq!(stored["status"], "requires_payment_method");
    assert_eq!(
        stored["last_payment_error"]["decline_code"],
        "insufficient_funds"
    );

    let m = ok(post(
        "/v1/payment_intents",
        "amount=700&currency=usd&payment_method=pm_card_visa&capture_method=manual&confirm=true",
    ));
    assert_eq!(m["status"], "requires_capture");
    let id = m["id"].as_str().unwrap();
    let cap = ok(post(
        &format!("/v1/payment_intents/{id}/capture"),
        "amount_to_capture=500",
    ));
    assert_eq!(
        (cap["status"].clone(), cap["amount_received"].clone()),
        (json!("succeeded"), json!(500))
    );
    assert_eq!(
        post(&format!("/v1/payment_intents/{id}/cancel"), "").status,
        400
    );

    let ev = ok(get("/v1/events?type=payment_intent.succeeded"));
    assert_eq!(ev["data"].as_array().unwrap().len(), 2);
    let failed = ok(get("/v1/events?type=payment_intent.payment_failed"));
    assert_eq!(failed["data"].as_array().unwrap().len(), 1);
}

#[test]
fn webhook_secret_only_on_create() {
    let we = ok(post(
        "/v1/webhook_endpoints",
        "url=https://x.io/h&enabled_events[]=*",
    ));
    assert!(we["secret"].as_str().unwrap().starts_with("whsec_"));
    let got = ok(get(&format!(
        "/v1/webhook_endpoints/{}",
        we["id"].as_str().unwrap()
    )));
    assert!(got.get("secret").is_none());
}

#[test]
fn setup_intent_attaches_card() {
    let c = ok(post("/v1/customers", "email=s@x.io"));
    let cid = c["id"].as_str().unwrap();
    let si = ok(post(
        "/v1/setup_intents",
        &format!("customer={cid}&payment_method=pm_card_visa&confirm=true"),
    ));
    assert!(si["id"].as_str().unwrap().starts_with("seti_"));
    assert_eq!(si["status"], "succeeded");
    let pms = ok(get(&format!(
        "/v1/payment_methods?customer={cid}&type=card"
    )));
    assert_eq!(pms["data"][0]["id"], si["payment_method"]);
    let d = post(
        "/v1/setup_intents",
        "payment_method=pm_card_visa_chargeDeclined&confirm=true",
    );
    assert_eq!(d.status, 402);
    assert_eq!(
        body(&d)["error"]["setup_intent"]["status"],
        "requires_payment_method"
    );
}

#[test]
fn created_filter_and_amount_minimum() {
    wt_sdk::testing::set_now_millis(1_000_000_000_000);
    ok(post("/v1/customers", "name=old"));
    wt_sdk::testing::set_now_millis(2_000_000_000_000);
    ok(post("/v1/customers", "name=new"));
    let l = ok(get("/v1/customers?created%5Bgte%5D=1500000000"));
    assert_eq!(l["data"].as_array().unwrap().len(), 1);
    assert_eq!(l["data"][0]["name"], "new");
    assert_eq!(l["data"][0]["created"], 2_000_000_000);
    let e = post("/v1/payment_intents", "amount=10&currency=usd");
    assert_eq!(body(&e)["error"]["code"], "amount_too_small");
    assert_eq!(
        body(&e)["error"]["message"],
        "Amount must be at least $0.50 usd"
    );
}

#[test]
fn expand_depth_json_bodies_and_nested_unknowns() {
    let c = ok(call::<Stripe>(
        req("POST", "/v1/customers", KEY)
            .with_json(&json!({"email": "j@x.io", "metadata": {"a": "1"}})),
    ));
    assert_eq!(c["metadata"]["a"], "1");
    let e = body(&post("/v1/customers", "invoice_settings[bogus]=1"));
    assert_eq!(e["error"]["param"], "invoice_settings[bogus]");
    let id = c["id"].as_str().unwrap();
    let e = get(&format!("/v1/customers/{id}?expand[]=a.b.c.d.e"));
    assert_eq!(e.status, 400);
    let e = get(&format!("/v1/customers/{id}?expand[]=email"));
    assert!(
        body(&e)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot be expanded")
    );
    let unknown = get("/v1/nope");
    assert_eq!(unknown.status, 404);
}

fn delete(path: &str) -> Response {
    call::<Stripe>(req("DELETE", path, KEY))
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// A monthly $10 price and a customer paying with `card` by default.
fn billing_setup(card: &str) -> (String, String) {
    let price = ok(post(
        "/v1/prices",
        "currency=usd&unit_amount=1000&recurring[interval]=month&product_data[name]=Gold",
    ));
    let c = ok(post("/v1/customers", "email=sub@x.io"));
    let cid = id_of(&c);
    let pm = ok(post(
        &format!("/v1/payment_methods/{card}/attach"),
        &format!("customer={cid}"),
    ));
    ok(post(
        &format!("/v1/customers/{cid}"),
        &format!("invoice_settings[default_payment_method]={}", id_of(&pm)),
    ));
    (id_of(&price), cid)
}

fn event_types() -> Vec<String> {
    ok(get("/v1/events?limit=100"))["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

const DAY_MS: i64 = 86_400_000;

#[test]
fn subscription_bills_each_period_on_twin_time() {
    wt_sdk::testing::set_now_millis(1_706_659_200_000); // 2024-01-31
    let (price, cid) = billing_setup("pm_card_visa");
    let sub = ok(post(
        "/v1/subscriptions",
        &format!(
            "customer={cid}&items[0][price]={price}&items[0][quantity]=2&expand[]=latest_invoice.payments"
        ),
    ));
    assert!(sub["id"].as_str().unwrap().starts_with("sub_"));
    assert_eq!(sub["status"], "active");
    let item = &sub["items"]["data"][0];
    assert!(item["id"].as_str().unwrap().starts_with("si_"));
    assert_eq!(item["current_period_start"], 1_706_659_200);
    assert_eq!(item["current_period_end"], 1_709_164_800); // Feb 29
    let inv = &sub["latest_invoice"];
    assert_eq!(
        (inv["status"].as_str(), inv["amount_paid"].as_i64()),
        (Some("paid"), Some(2000))
    );
    assert_eq!(inv["billing_reason"], "subscription_create");
    // A first payment that succeeds needs no follow-up update.
    let created = ok(get("/v1/events?type=customer.subscription.created"));
    assert_eq!(created["data"][0]["data"]["object"]["status"], "active");
    assert_eq!(
        ok(get("/v1/events?type=customer.subscription.updated"))["data"],
        json!([])
    );
    assert!(inv["number"].as_str().unwrap().ends_with("-0001"));
    let pi = inv["payments"]["data"][0]["payment"]["payment_intent"]
        .as_str()
        .unwrap();
    assert_eq!(
        ok(get(&format!("/v1/payment_intents/{pi}")))["status"],
        "succeeded"
    );

    // A month later, the first request renews it.
    wt_sdk::testing::advance_millis(30 * DAY_MS);
    let sid = id_of(&sub);
    let renewed = ok(get(&format!("/v1/subscriptions/{sid}")));
    assert_eq!(
        renewed["items"]["data"][0]["current_period_start"],
        1_709_164_800
    );
    assert_eq!(
        renewed["items"]["data"][0]["current_period_end"],
        1_711_843_200
    ); // Mar 31
    assert_ne!(renewed["latest_invoice"], sub["latest_invoice"]["id"]);
    let invs = ok(get(&format!("/v1/invoices?subscription={sid}")));
    assert_eq!(invs["data"].as_array().unwrap().len(), 2);
    assert_eq!(invs["data"][0]["billing_reason"], "subscription_cycle");
    assert_eq!(invs["data"][0]["status"], "paid");
    assert_eq!(invs["data"][0]["created"], 1_709_164_800);
    let types = event_types();
    assert_eq!(types.iter().filter(|t| *t == "invoice.paid").count(), 2);
    assert!(types.contains(&"customer.subscription.created".to_owned()));
    let auto = ok(get("/v1/events?type=invoice.paid&limit=1"));
    assert_eq!(auto["data"][0]["request"]["id"], Value::Null);

    // Cancel at period end: it ends at Mar 31, not before.
    let c = ok(post(
        &format!("/v1/subscriptions/{sid}"),
        "cancel_at_period_end=true",
    ));
    assert_eq!(c["cancel_at"], 1_711_843_200);
    assert_eq!(c["status"], "active");
    wt_sdk::testing::advance_millis(40 * DAY_MS);
    let ended = ok(get(&format!("/v1/subscriptions/{sid}")));
    assert_eq!(ended["status"], "canceled");
    assert_eq!(ended["ended_at"], 1_711_843_200);
    assert!(event_types().contains(&"customer.subscription.deleted".to_owned()));
    // Canceled ones leave the default list, stay under status=all.
    assert_eq!(
        ok(get("/v1/subscriptions"))["data"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        ok(get("/v1/subscriptions?status=all"))["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn trial_notice_then_first_paid_invoice() {
    wt_sdk::testing::set_now_millis(1_700_000_000_000);
    let (price, cid) = billing_setup("pm_card_visa");
    let sub = ok(post(
        "/v1/subscriptions",
        &format!(
            "customer={cid}&items[0][price]={price}&trial_period_days=7&expand[]=latest_invoice"
        ),
    ));
    assert_eq!(sub["status"], "trialing");
    assert_eq!(sub["trial_end"], 1_700_000_000 + 7 * 86_400);
    assert_eq!(sub["latest_invoice"]["amount_due"], 0);
    assert_eq!(sub["latest_invoice"]["status"], "paid");
    let sid = id_of(&sub);
    wt_sdk::testing::advance_millis(5 * DAY_MS);
    ok(get("/v1/customers"));
    let notices = ok(get("/v1/events?type=customer.subscription.trial_will_end"));
    assert_eq!(notices["data"].as_array().unwrap().len(), 1);
    assert_eq!(notices["data"][0]["created"], 1_700_000_000 + 4 * 86_400);
    assert_eq!(
        ok(get(&format!("/v1/subscriptions/{sid}")))["status"],
        "trialing"
    );
    wt_sdk::testing::advance_millis(3 * DAY_MS);
    let s = ok(get(&format!(
        "/v1/subscriptions/{sid}?expand[]=latest_invoice"
    )));
    assert_eq!(s["status"], "active");
    assert_eq!(s["latest_invoice"]["amount_paid"], 1000);
    assert_eq!(
        s["items"]["data"][0]["current_period_start"],
        1_700_000_000 + 7 * 86_400
    );
}

#[test]
fn declines_make_incomplete_then_past_due() {
    let (price, cid) = billing_setup("pm_card_chargeDeclinedInsufficientFunds");
    let sub = ok(post(
        "/v1/subscriptions",
        &format!("customer={cid}&items[0][price]={price}&expand[]=latest_invoice"),
    ));
    assert_eq!(sub["status"], "incomplete");
    let inv = &sub["latest_invoice"];
    assert_eq!(
        (inv["status"].as_str(), inv["attempt_count"].as_i64()),
        (Some("open"), Some(1))
    );
    // Paying the open invoice with a good card activates it.
    let iid = id_of(inv);
    let d = post(&format!("/v1/invoices/{iid}/pay"), "");
    assert_eq!(d.status, 402);
    assert_eq!(body(&d)["error"]["decline_code"], "insufficient_funds");
    let paid = ok(post(
        &format!("/v1/invoices/{iid}/pay"),
        "payment_method=pm_card_visa",
    ));
    assert_eq!(paid["status"], "paid");
    let sid = id_of(&sub);
    assert_eq!(
        ok(get(&format!("/v1/subscriptions/{sid}")))["status"],
        "active"
    );

    // error_if_incomplete creates nothing.
    let e = post(
        "/v1/subscriptions",
        &format!("customer={cid}&items[0][price]={price}&payment_behavior=error_if_incomplete"),
    );
    assert_eq!(e.status, 402);
    assert_eq!(
        ok(get(&format!("/v1/subscriptions?customer={cid}")))["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // The renewal fails on the declining default card: past_due.
    wt_sdk::testing::advance_millis(32 * DAY_MS);
    let s = ok(get(&format!("/v1/subscriptions/{sid}")));
    assert_eq!(s["status"], "past_due");
    assert!(event_types().contains(&"invoice.payment_failed".to_owned()));
}

#[test]
fn invoices_and_items() {
    let c = ok(post("/v1/customers", "email=inv@x.io"));
    let cid = id_of(&c);
    let ii = ok(post(
        "/v1/invoiceitems",
        &format!("customer={cid}&amount=500&currency=usd&description=Setup"),
    ));
    assert!(ii["id"].as_str().unwrap().starts_with("ii_"));
    assert_eq!(ii["invoice"], Value::Null);
    let price = ok(post(
        "/v1/prices",
        "currency=usd&unit_amount=250&product_data[name]=Pin",
    ));
    ok(post(
        "/v1/invoiceitems",
        &format!("customer={cid}&pricing[price]={}&quantity=2", id_of(&price)),
    ));
    // The default leaves pending items alone; `include` takes them.
    let empty = ok(post("/v1/invoices", &format!("customer={cid}")));
    assert_eq!(empty["total"], 0);
    let inv = ok(post(
        "/v1/invoices",
        &format!("customer={cid}&pending_invoice_items_behavior=include"),
    ));
    assert_eq!(inv["status"], "draft");
    assert_eq!(
        (inv["subtotal"].as_i64(), inv["total"].as_i64()),
        (Some(1000), Some(1000))
    );
    assert_eq!(inv["lines"]["data"].as_array().unwrap().len(), 2);
    let iid = id_of(&inv);
    let extra = ok(post(
        "/v1/invoiceitems",
        &format!("customer={cid}&amount=100&currency=usd&invoice={iid}"),
    ));
    assert_eq!(ok(get(&format!("/v1/invoices/{iid}")))["amount_due"], 1100);
    ok(delete(&format!("/v1/invoiceitems/{}", id_of(&extra))));
    let lines = ok(get(&format!("/v1/invoices/{iid}/lines?limit=1")));
    assert_eq!(
        (
            lines["data"].as_array().unwrap().len(),
            lines["has_more"].clone()
        ),
        (1, json!(true))
    );
    let upd = ok(post(&format!("/v1/invoices/{iid}"), "description=Thanks"));
    assert_eq!(upd["description"], "Thanks");
    let fin = ok(post(&format!("/v1/invoices/{iid}/finalize"), ""));
    assert_eq!(fin["status"], "open");
    assert!(fin["number"].as_str().unwrap().ends_with("-0001"));
    assert_eq!(
        fin["hosted_invoice_url"],
        format!("http://localhost/i/{iid}")
    );
    let page = call::<Stripe>(Request::new("GET", &format!("/i/{iid}")));
    assert_eq!(page.status, 200);
    assert!(page.body_text().contains(fin["number"].as_str().unwrap()));
    assert!(page.body_text().contains("$10.00"));
    assert_eq!(
        call::<Stripe>(Request::new("GET", "/i/in_nope")).status,
        404
    );
    let e = post(
        &format!("/v1/invoices/{iid}"),
        "collection_method=send_invoice&days_until_due=3",
    );
    assert_eq!(body(&e)["error"]["code"], "invoice_not_editable");
    assert_eq!(
        post(&format!("/v1/invoiceitems/{}", id_of(&ii)), "amount=1").status,
        400
    );
    // No payment method at all: 400, still open.
    assert_eq!(post(&format!("/v1/invoices/{iid}/pay"), "").status, 400);
    let d = post(
        &format!("/v1/invoices/{iid}/pay"),
        "payment_method=pm_card_visa_chargeDeclined",
    );
    assert_eq!(
        (d.status, body(&d)["error"]["type"].clone()),
        (402, json!("card_error"))
    );
    assert_eq!(ok(get(&format!("/v1/invoices/{iid}")))["status"], "open");
    let unc = ok(post(&format!("/v1/invoices/{iid}/mark_uncollectible"), ""));
    assert_eq!(unc["status"], "uncollectible");
    let v = ok(post(&format!("/v1/invoices/{iid}/void"), ""));
    assert_eq!(v["status"], "void");
    assert_eq!(post(&format!("/v1/invoices/{iid}/pay"), "").status, 400);
    assert_eq!(delete(&format!("/v1/invoices/{iid}")).status, 400);
    let gone = ok(delete(&format!("/v1/invoices/{}", id_of(&empty))));
    assert_eq!(gone["deleted"], true);
    let open = ok(get(&format!("/v1/invoices?customer={cid}&status=void")));
    assert_eq!(open["data"].as_array().unwrap().len(), 1);
    let types = event_types();
    for t in [
        "invoice.created",
        "invoice.finalized",
        "invoice.payment_failed",
        "invoice.voided",
        "invoice.marked_uncollectible",
        "invoice.deleted",
        "invoiceitem.created",
    ] {
        assert!(types.contains(&t.to_owned()), "{t}");
    }
}

#[test]
fn checkout_sessions_complete_in_every_mode() {
    let price = ok(post(
        "/v1/prices",
        "currency=usd&unit_amount=700&product_data[name]=Mug",
    ));
    let cs = ok(call::<Stripe>(
        req("POST", "/v1/checkout/sessions", KEY)
            .with_header("host", "127.0.0.1:4111")
            .with_form(&format!(
                "mode=payment&success_url=https://x.io/ok&line_items[0][price]={}&line_items[0][quantity]=3&customer_email=buyer@x.io",
                id_of(&price)
            )),
    ));
    let id = id_of(&cs);
    assert!(id.starts_with("cs_test_"));
    assert_eq!(
        (cs["amount_total"].as_i64(), cs["status"].as_str()),
        (Some(2100), Some("open"))
    );
    assert_eq!(cs["url"], format!("http://127.0.0.1:4111/c/pay/{id}"));
    let li = ok(get(&format!("/v1/checkout/sessions/{id}/line_items")));
    assert_eq!(
        (
            li["data"][0]["quantity"].as_i64(),
            li["data"][0]["description"].as_str()
        ),
        (Some(3), Some("Mug"))
    );
    let d = post(
        &format!("/v1/test_helpers/checkout/sessions/{id}/complete"),
        "payment_method=pm_card_visa_chargeDeclined",
    );
    assert_eq!(d.status, 402);
    let done = ok(post(
        &format!("/v1/test_helpers/checkout/sessions/{id}/complete"),
        "expand[]=payment_intent",
    ));
    assert_eq!(
        (done["status"].as_str(), done["payment_status"].as_str()),
        (Some("complete"), Some("paid"))
    );
    assert_eq!(done["payment_intent"]["amount_received"], 2100);
    assert_eq!(
        post(&format!("/v1/checkout/sessions/{id}/expire"), "").status,
        400
    );
    assert_eq!(
        ok(get("/v1/events?type=checkout.session.completed"))["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let monthly = ok(post(
        "/v1/prices",
        "currency=usd&unit_amount=900&recurring[interval]=month&product_data[name]=Plan",
    ));
    let e = post(
        "/v1/checkout/sessions",
        &format!("mode=payment&line_items[0][price]={}", id_of(&monthly)),
    );
    assert_eq!(e.status, 400);
    let cs = ok(post(
        "/v1/checkout/sessions",
        &format!(
            "mode=subscription&line_items[0][price]={}&line_items[1][price]={}&subscription_data[metadata][k]=v",
            id_of(&monthly),
            id_of(&price)
        ),
    ));
    let done = ok(post(
        &format!("/v1/test_helpers/checkout/sessions/{}/complete", id_of(&cs)),
        "expand[]=subscription.latest_invoice",
    ));
    let sub = &done["subscription"];
    assert_eq!(
        (sub["status"].as_str(), sub["metadata"]["k"].as_str()),
        (Some("active"), Some("v"))
    );
    assert_eq!(sub["latest_invoice"]["amount_paid"], 1600);
    assert!(done["customer"].as_str().unwrap().starts_with("cus_"));

    let cs = ok(post("/v1/checkout/sessions", "mode=setup&currency=usd"));
    let done = ok(post(
        &format!("/v1/test_helpers/checkout/sessions/{}/complete", id_of(&cs)),
        "",
    ));
    assert_eq!(done["payment_status"], "no_payment_required");
    assert!(done["setup_intent"].as_str().unwrap().starts_with("seti_"));

    // The hosted page's button pays and sends the buyer to success_url.
    let paying = ok(post(
        "/v1/checkout/sessions",
        &format!(
            "mode=payment&line_items[0][price]={}&success_url=https://x.io/ok?id={{CHECKOUT_SESSION_ID}}",
            id_of(&price)
        ),
    ));
    let pid = id_of(&paying);
    let page = call::<Stripe>(Request::new("GET", &format!("/c/pay/{pid}")));
    assert!(page.body_text().contains("Mug"));
    let paid = call::<Stripe>(Request::new("POST", &format!("/c/pay/{pid}")));
    assert_eq!(paid.status, 303);
    assert_eq!(
        paid.header("location"),
        Some(format!("https://x.io/ok?id={pid}").as_str())
    );
    assert_eq!(
        ok(get(&format!("/v1/checkout/sessions/{pid}")))["status"],
        "complete"
    );
    assert_eq!(
        call::<Stripe>(Request::new("GET", "/c/pay/cs_test_nope")).status,
        404
    );
    let open = ok(post("/v1/checkout/sessions", "mode=setup&currency=usd"));
    let expired = ok(post(
        &format!("/v1/checkout/sessions/{}/expire", id_of(&open)),
        "",
    ));
    assert_eq!(expired["status"], "expired");
    // The hosted page finds the session without a key.
    let page = call::<Stripe>(Request::new("GET", &format!("/c/pay/{}", id_of(&open))));
    assert_eq!(page.status, 200);
    assert!(page.body_text().contains("expired"));
}

#[test]
fn test_clock_drives_renewals_at_its_own_time() {
    let (price, _) = billing_setup("pm_card_visa");
    let start = 1_735_689_600; // 2025-01-01
    let tc = ok(post(
        "/v1/test_helpers/test_clocks",
        &format!("frozen_time={start}&name=t"),
    ));
    let clock = id_of(&tc);
    assert!(clock.starts_with("clock_"));
    let c = ok(post(
        "/v1/customers",
        &format!("email=clock@x.io&test_clock={clock}&payment_method=pm_card_visa"),
    ));
    let cid = id_of(&c);
    let pm = ok(get(&format!("/v1/customers/{cid}/payment_methods")))["data"][0]["id"].clone();
    ok(post(
        &format!("/v1/customers/{cid}"),
        &format!(
            "invoice_settings[default_payment_method]={}",
            pm.as_str().unwrap()
        ),
    ));
    assert_eq!(c["created"], start);
    assert_eq!(
        ok(get("/v1/customers"))["data"].as_array().unwrap().len(),
        1
    );
    let sub = ok(post(
        "/v1/subscriptions",
        &format!("customer={cid}&items[0][price]={price}"),
    ));
    assert_eq!(sub["start_date"], start);
    assert_eq!(sub["test_clock"], clock);
    let sid = id_of(&sub);
    // Twin time passing does nothing to it.
    wt_sdk::testing::advance_millis(90 * DAY_MS);
    assert_eq!(
        ok(get(&format!("/v1/subscriptions/{sid}")))["latest_invoice"],
        sub["latest_invoice"]
    );
    let feb1 = 1_738_368_000;
    let adv = ok(post(
        &format!("/v1/test_helpers/test_clocks/{clock}/advance"),
        &format!("frozen_time={}", feb1 + 3600),
    ));
    assert_eq!(adv["status"], "advancing");
    let tc = ok(get(&format!("/v1/test_helpers/test_clocks/{clock}")));
    assert_eq!(
        (tc["status"].as_str(), tc["frozen_time"].as_u64()),
        (Some("ready"), Some(feb1 + 3600))
    );
    let s = ok(get(&format!(
        "/v1/subscriptions/{sid}?expand[]=latest_invoice"
    )));
    assert_eq!(s["items"]["data"][0]["current_period_start"], feb1);
    assert_eq!(s["latest_invoice"]["status"], "paid");
    assert_eq!(s["latest_invoice"]["created"], feb1);
    assert_eq!(
        ok(get(&format!("/v1/subscriptions?test_clock={clock}")))["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        ok(get("/v1/subscriptions"))["data"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let back = post(
        &format!("/v1/test_helpers/test_clocks/{clock}/advance"),
        &format!("frozen_time={start}"),
    );
    assert_eq!(back.status, 400);
    // Two monthly intervals at most: Apr 2 is too far from Feb 1.
    let far = post(
        &format!("/v1/test_helpers/test_clocks/{clock}/advance"),
        "frozen_time=1743552000",
    );
    assert_eq!(body(&far)["error"]["param"], "frozen_time");
    assert_eq!(
        post("/v1/test_helpers/test_clocks", "frozen_time=99999999999999").status,
        400
    );
    let gone = ok(delete(&format!("/v1/test_helpers/test_clocks/{clock}")));
    assert_eq!(gone["deleted"], true);
    assert_eq!(ok(get(&format!("/v1/customers/{cid}")))["deleted"], true);
    assert_eq!(
        ok(get(&format!("/v1/subscriptions/{sid}")))["status"],
        "canceled"
    );
}

#[test]
fn subscription_items_and_validation() {
    let (price, cid) = billing_setup("pm_card_visa");
    let one_time = ok(post(
        "/v1/prices",
        "currency=usd&unit_amount=5&product_data[name]=X",
    ));
    let e = post(
        "/v1/subscriptions",
        &format!("customer={cid}&items[0][price]={}", id_of(&one_time)),
    );
    assert_eq!(body(&e)["error"]["param"], "items[0][price]");
    assert_eq!(
        post("/v1/subscriptions", &format!("customer={cid}")).status,
        400
    );
    let e = post(
        "/v1/subscriptions",
        &format!("customer={cid}&items[0][price]={price}&default_payment_method=pm_card_visa"),
    );
    assert_eq!(body(&e)["error"]["param"], "default_payment_method");
    let sub = ok(post(
        "/v1/subscriptions",
        &format!("customer={cid}&items[0][price]={price}"),
    ));
    let sid = id_of(&sub);
    let si = ok(post(
        "/v1/subscription_items",
        &format!(
            "subscription={sid}&price_data[currency]=usd&price_data[unit_amount]=300&price_data[product]={}&price_data[recurring][interval]=month&quantity=2",
            ok(get(&format!("/v1/prices/{price}")))["product"]
                .as_str()
                .unwrap()
        ),
    ));
    assert_eq!(si["quantity"], 2);
    let listed = ok(get(&format!("/v1/subscription_items?subscription={sid}")));
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);
    let siid = id_of(&si);
    assert_eq!(
        ok(post(
            &format!("/v1/subscription_items/{siid}"),
            "quantity=5"
        ))["quantity"],
        5
    );
    assert_eq!(
        ok(get(&format!("/v1/subscription_items/{siid}")))["quantity"],
        5
    );
    assert_eq!(
        ok(delete(&format!("/v1/subscription_items/{siid}")))["deleted"],
        true
    );
    let first = sub["items"]["data"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        delete(&format!("/v1/subscription_items/{first}")).status,
        400
    );
    let by_price = ok(get(&format!("/v1/subscriptions?price={price}")));
    assert_eq!(by_price["data"].as_array().unwrap().len(), 1);
    let canceled = ok(delete(&format!("/v1/subscriptions/{sid}")));
    assert_eq!(canceled["status"], "canceled");
    assert_eq!(delete(&format!("/v1/subscriptions/{sid}")).status, 400);
    let e = post(&format!("/v1/subscriptions/{sid}"), "description=x");
    assert_eq!(e.status, 400);
    ok(post(&format!("/v1/subscriptions/{sid}"), "metadata[k]=v"));
}

#[test]
fn unpaid_things_expire_on_time() {
    wt_sdk::testing::set_now_millis(1_700_000_000_000);
    let (price, cid) = billing_setup("pm_card_visa_chargeDeclined");
    let sub = ok(post(
        "/v1/subscriptions",
        &format!("customer={cid}&items[0][price]={price}"),
    ));
    assert_eq!(sub["status"], "incomplete");
    let cs = ok(post("/v1/checkout/sessions", "mode=setup&currency=usd"));
    wt_sdk::testing::advance_millis(22 * 3_600_000);
    let sid = id_of(&sub);
    assert_eq!(
        ok(get(&format!("/v1/subscriptions/{sid}")))["status"],
        "incomplete"
    );
    let cs = ok(get(&format!("/v1/checkout/sessions/{}", id_of(&cs))));
    assert_eq!(cs["status"], "open");
    wt_sdk::testing::advance_millis(2 * 3_600_000);
    let s = ok(get(&format!(
        "/v1/subscriptions/{sid}?expand[]=latest_invoice"
    )));
    assert_eq!(s["status"], "incomplete_expired");
    assert_eq!(s["latest_invoice"]["status"], "void");
    let cs = ok(get(&format!("/v1/checkout/sessions/{}", id_of(&cs))));
    assert_eq!(cs["status"], "expired");
    assert!(event_types().contains(&"checkout.session.expired".to_owned()));
}

#[test]
fn default_incomplete_and_sent_invoices() {
    let (price, cid) = billing_setup("pm_card_visa");
    let sub = ok(post(
        "/v1/subscriptions",
        &format!(
            "customer={cid}&items[0][price]={price}&payment_behavior=default_incomplete&expand[]=latest_invoice"
        ),
    ));
    assert_eq!(sub["status"], "incomplete");
    let inv = &sub["latest_invoice"];
    assert_eq!(
        (inv["status"].as_str(), inv["attempted"].as_bool()),
        (Some("open"), Some(false))
    );
    ok(post(&format!("/v1/invoices/{}/pay", id_of(inv)), ""));
    assert_eq!(
        ok(get(&format!("/v1/subscriptions/{}", id_of(&sub))))["status"],
        "active"
    );

    let sent = ok(post(
        "/v1/subscriptions",
        &format!(
            "customer={cid}&items[0][price]={price}&collection_method=send_invoice&days_until_due=7&expand[]=latest_invoice"
        ),
    ));
    assert_eq!(sent["status"], "active");
    let inv = &sent["latest_invoice"];
    assert_eq!(
        (inv["status"].as_str(), inv["collection_method"].as_str()),
        (Some("open"), Some("send_invoice"))
    );
    assert_eq!(
        inv["due_date"],
        json!(inv["created"].as_u64().unwrap() + 7 * 86_400)
    );
    let e = post(
        "/v1/subscriptions",
        &format!("customer={cid}&items[0][price]={price}&collection_method=send_invoice"),
    );
    assert_eq!(body(&e)["error"]["param"], "days_until_due");
}

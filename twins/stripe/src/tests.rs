use serde_json::{Value, json};
use wt_sdk::testing::call;
use wt_sdk::{Request, Response};

use super::Stripe;

const KEY: &str = "sk_test_unit";

fn req(method: &str, path: &str, key: &str) -> Request {
    Request::new(method, path).with_header("authorization", format!("Bearer {key}"))
}

fn post(path: &str, form: &str) -> Response {
    call::<Stripe>(req("POST", path, KEY).with_form(form))
}

fn get(path: &str) -> Response {
    call::<Stripe>(req("GET", path, KEY))
}

fn body(r: &Response) -> Value {
    r.json_body().unwrap()
}

fn ok(r: Response) -> Value {
    assert_eq!(r.status, 200, "{}", r.body_text());
    body(&r)
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

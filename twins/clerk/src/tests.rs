use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::Verifier;
use rsa::{BigUint, RsaPublicKey};
use serde_json::{Map, Value, json};
use sha2::Sha256;
use wt_sdk::testing::{self, Client, call, expect};
use wt_sdk::{Request, Response, store};

use super::Clerk;
use crate::wire;

const KEY: &str = "sk_test_unit";
const T0: u64 = 1_700_000_000_000;
const DAY: i64 = 24 * 3600 * 1000;

fn setup() {
    testing::reset();
    testing::set_now_millis(T0);
}

/// Gives the test account a signing key made once per test process: RSA
/// key generation takes seconds in a debug build.
fn seed_signing_key() {
    static STORED: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    wt_sdk::scope::enter(KEY);
    let keys = [wire::key("signing_key"), wire::key("instance_id")];
    let entries = STORED.get_or_init(|| {
        crate::jwt::signing_key().unwrap();
        keys.iter()
            .map(|k| (k.clone(), store::get(k).unwrap()))
            .collect()
    });
    for (k, v) in entries {
        store::set(k, v).unwrap();
    }
}

fn client(key: &str) -> Client<Clerk> {
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

fn ok(r: Response) -> Value {
    expect(r, 200)
}

/// Checks Clerk's error envelope and returns the first error.
fn err(r: Response, status: u16, code: &str) -> Value {
    assert_eq!(r.status, status, "{}", r.body_text());
    let b: Value = r.json_body().unwrap();
    assert!(b["clerk_trace_id"].as_str().is_some_and(|t| !t.is_empty()));
    let e = b["errors"][0].clone();
    assert_eq!(e["code"], json!(code), "{b}");
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(e["long_message"].as_str().is_some_and(|m| !m.is_empty()));
    e
}

fn user(body: Value) -> Value {
    ok(send("POST", "/v1/users", body))
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(id).collect()
}

#[test]
fn auth_errors_in_clerk_shape() {
    setup();
    err(
        call::<Clerk>(Request::new("GET", "/v1/users")),
        401,
        "authentication_invalid",
    );
    for bad in [
        "sk_test_",
        "pk_test_abc",
        "sk_prod_abc",
        "sk_test_a/b",
        "Bearer",
    ] {
        err(
            call::<Clerk>(req("GET", "/v1/users", bad)),
            401,
            "authentication_invalid",
        );
    }
    let basic =
        Request::new("GET", "/v1/users").with_header("authorization", "Basic c2tfdGVzdF8xOg==");
    err(call::<Clerk>(basic), 401, "authentication_invalid");
    ok(call::<Clerk>(req("GET", "/v1/users", "sk_live_Abc123")));
    err(get("/v1/nothing"), 404, "resource_not_found");
    err(
        call::<Clerk>(req("PUT", "/v1/users", KEY)),
        405,
        "request_method_not_allowed",
    );
    let bad_json = req("POST", "/v1/users", KEY).with_body("{nope");
    err(call::<Clerk>(bad_json), 400, "malformed_request");
}

#[test]
fn create_and_get_user_with_every_required_field() {
    setup();
    let u = user(json!({
        "email_address": ["Ada@Example.com", "ada2@example.com"],
        "phone_number": ["+15555550100"],
        "username": "Ada_L",
        "password": "correct horse",
        "first_name": "Ada", "last_name": "Lovelace", "external_id": "ext-1",
        "public_metadata": {"plan": "pro"}, "private_metadata": {"n": 1},
        "unsafe_metadata": {"theme": "dark"},
    }));
    assert!(id(&u).starts_with("user_") && id(&u).len() == 32);
    assert_eq!(u["object"], "user");
    assert_eq!(u["username"], "ada_l");
    assert_eq!(u["primary_email_address_id"], u["email_addresses"][0]["id"]);
    assert_eq!(u["primary_phone_number_id"], u["phone_numbers"][0]["id"]);
    assert_eq!(
        u["email_addresses"][0]["verification"]["status"],
        "verified"
    );
    assert_eq!(
        u["email_addresses"][0]["verification"]["object"],
        "verification_admin"
    );
    assert_eq!(
        (u["created_at"].as_u64(), u["updated_at"].as_u64()),
        (Some(T0), Some(T0))
    );
    assert_eq!(u["password_enabled"], true);
    assert_eq!(u["private_metadata"], json!({"n": 1}));
    for field in [
        "external_id",
        "primary_web3_wallet_id",
        "has_image",
        "web3_wallets",
        "passkeys",
        "two_factor_enabled",
        "totp_enabled",
        "backup_code_enabled",
        "mfa_enabled_at",
        "mfa_disabled_at",
        "external_accounts",
        "saml_accounts",
        "enterprise_accounts",
        "last_sign_in_at",
        "banned",
        "locked",
        "lockout_expires_in_seconds",
        "verification_attempts_remaining",
        "delete_self_enabled",
        "create_organization_enabled",
        "last_active_at",
        "legal_accepted_at",
    ] {
        assert!(u.get(field).is_some(), "{field} missing");
    }
    assert_eq!(ok(get(&format!("/v1/users/{}", id(&u)))), u);
    err(get("/v1/users/user_nope"), 404, "resource_not_found");
    // No password: not enabled; TOTP and backup codes turn on 2FA.
    let v = user(
        json!({"username": "grace", "totp_secret": "JBSWY3DPEHPK3PXP", "backup_codes": ["a1"]}),
    );
    assert_eq!(v["password_enabled"], false);
    assert_eq!(
        (&v["two_factor_enabled"], &v["mfa_enabled_at"]),
        (&json!(true), &json!(T0))
    );
}

#[test]
fn user_validation_errors() {
    setup();
    user(
        json!({"email_address": ["taken@example.com"], "username": "taken", "phone_number": ["+15555550100"]}),
    );
    let cases = [
        (
            json!({"email_address": ["nope"]}),
            "form_param_format_invalid",
            "email_address",
        ),
        (
            json!({"email_address": ["TAKEN@example.com"]}),
            "form_identifier_exists",
            "email_address",
        ),
        (
            json!({"email_address": ["a@x.io", "A@x.io"]}),
            "form_param_format_invalid",
            "email_address",
        ),
        (
            json!({"phone_number": ["5555"]}),
            "form_param_format_invalid",
            "phone_number",
        ),
        (
            json!({"phone_number": ["+15555550100"]}),
            "form_identifier_exists",
            "phone_number",
        ),
        (
            json!({"username": "abc"}),
            "form_username_invalid_length",
            "username",
        ),
        (
            json!({"username": "bad name"}),
            "form_username_invalid_character",
            "username",
        ),
        (
            json!({"username": "TAKEN"}),
            "form_identifier_exists",
            "username",
        ),
        (
            json!({"username": "okay", "password": "short"}),
            "form_password_length_too_short",
            "password",
        ),
        (
            json!({"username": "okay", "password": "x".repeat(73)}),
            "form_password_length_too_long",
            "password",
        ),
        (
            json!({"username": "okay", "bogus": 1}),
            "form_param_unknown",
            "bogus",
        ),
        (
            json!({"username": "okay", "public_metadata": "x"}),
            "form_param_format_invalid",
            "public_metadata",
        ),
        (
            json!({"username": "okay", "first_name": 5}),
            "form_param_format_invalid",
            "first_name",
        ),
        (
            json!({"username": "okay", "created_at": "yesterday"}),
            "form_param_format_invalid",
            "created_at",
        ),
        (
            json!({"username": "okay", "password_digest": "$2a$x"}),
            "form_param_missing",
            "password_hasher",
        ),
    ];
    for (body, code, param) in cases {
        let e = err(send("POST", "/v1/users", body.clone()), 422, code);
        assert_eq!(e["meta"]["param_name"], param, "{body}");
    }
    err(
        send("POST", "/v1/users", json!({})),
        422,
        "form_data_missing",
    );
    // With the requirement skipped, a user needs no identifier.
    user(json!({"skip_user_requirement": true, "first_name": "anon"}));
    // Nothing was half-created: the taken identifiers still have one owner.
    assert_eq!(ok(get("/v1/users/count"))["total_count"], 2);
}

#[test]
fn list_filters_order_paging_and_count() {
    setup();
    let mut made = Vec::new();
    for (i, (first, email)) in [("Carol", "c@x.io"), ("alice", "a@y.io"), ("Bob", "b@x.io")]
        .into_iter()
        .enumerate()
    {
        testing::advance_millis(1000);
        made.push(user(json!({
            "email_address": [email], "first_name": first, "external_id": format!("e{i}"),
            "username": format!("user{i}x"),
        })));
    }
    let (c, a, b) = (id(&made[0]), id(&made[1]), id(&made[2]));
    let (c, a, b) = (c.as_str(), a.as_str(), b.as_str());
    assert_eq!(ids(&ok(get("/v1/users"))), [b, a, c]);
    assert_eq!(ids(&ok(get("/v1/users?order_by=%2Bcreated_at"))), [c, a, b]);
    assert_eq!(ids(&ok(get("/v1/users?order_by=%2Bfirst_name"))), [a, b, c]);
    assert_eq!(
        ids(&ok(get("/v1/users?order_by=-email_address"))),
        [c, b, a]
    );
    assert_eq!(ids(&ok(get("/v1/users?limit=1&offset=1"))), [a]);
    assert_eq!(
        ids(&ok(get(
            "/v1/users?email_address=A@Y.io&email_address=b@x.io"
        ))),
        [b, a]
    );
    assert_eq!(ids(&ok(get("/v1/users?external_id=e0"))), [c]);
    assert_eq!(
        ids(&ok(get(&format!("/v1/users?user_id={a}&user_id={c}")))),
        [a, c]
    );
    assert_eq!(ids(&ok(get("/v1/users?username=USER2X"))), [b]);
    assert_eq!(ids(&ok(get("/v1/users?query=x.io"))), [b, c]);
    assert_eq!(ids(&ok(get("/v1/users?name_query=ALI"))), [a]);
    assert_eq!(ids(&ok(get("/v1/users?email_address_query=y.io"))), [a]);
    assert_eq!(
        ids(&ok(get(&format!(
            "/v1/users?created_at_after={}",
            T0 + 1500
        )))),
        [b, a]
    );
    assert_eq!(ok(get("/v1/users/count?query=x.io"))["total_count"], 2);
    assert_eq!(
        ok(get("/v1/users/count")),
        json!({"object": "total_count", "total_count": 3})
    );
    ok(send("POST", &format!("/v1/users/{a}/ban"), json!({})));
    assert_eq!(ids(&ok(get("/v1/users?banned=true"))), [a]);
    assert_eq!(ok(get("/v1/users/count?banned=false"))["total_count"], 2);
    for bad in [
        "limit=0",
        "limit=501",
        "offset=-1",
        "order_by=shoe_size",
        "banned=maybe",
        "created_at_after=soon",
    ] {
        err(
            get(&format!("/v1/users?{bad}")),
            422,
            "form_param_value_invalid",
        );
    }
}

#[test]
fn update_swaps_identifiers_and_checks_primary_ids() {
    setup();
    let u = user(json!({"email_address": ["one@x.io", "two@x.io"], "username": "first"}));
    let uid = id(&u);
    let path = format!("/v1/users/{uid}");
    testing::advance_millis(5000);
    let second = u["email_addresses"][1]["id"].clone();
    let up = ok(send(
        "PATCH",
        &path,
        json!({
            "username": "second", "first_name": "F", "primary_email_address_id": second,
            "notify_primary_email_address_changed": false, "public_metadata": {"k": 1},
        }),
    ));
    assert_eq!(
        (&up["username"], &up["first_name"]),
        (&json!("second"), &json!("F"))
    );
    assert_eq!(up["primary_email_address_id"], second);
    assert_eq!(up["public_metadata"], json!({"k": 1}));
    assert_eq!(up["updated_at"].as_u64(), Some(T0 + 5000));
    // The old username is free again, the new one taken.
    user(json!({"username": "first"}));
    err(
        send("POST", "/v1/users", json!({"username": "second"})),
        422,
        "form_identifier_exists",
    );
    // Null clears.
    let cleared = ok(send("PATCH", &path, json!({"first_name": null})));
    assert_eq!(cleared["first_name"], Value::Null);
    err(
        send(
            "PATCH",
            &path,
            json!({"primary_email_address_id": "idn_other"}),
        ),
        422,
        "form_param_value_invalid",
    );
    err(
        send("PATCH", &path, json!({"username": "first"})),
        422,
        "form_identifier_exists",
    );
    err(
        send("PATCH", &path, json!({"profile_image_id": "img_1"})),
        422,
        "form_param_value_invalid",
    );
    err(
        send("PATCH", &path, json!({"email_address": ["x@y.io"]})),
        422,
        "form_param_unknown",
    );
    err(
        send("PATCH", "/v1/users/user_missing", json!({})),
        404,
        "resource_not_found",
    );
}

#[test]
fn metadata_merges_deeply_and_null_deletes() {
    setup();
    let u = user(
        json!({"username": "meta", "public_metadata": {"a": {"b": 1, "c": 2}, "keep": true, "gone": 1}}),
    );
    let path = format!("/v1/users/{}/metadata", id(&u));
    let m = ok(send(
        "PATCH",
        &path,
        json!({
            "public_metadata": {"a": {"c": null, "d": {"e": 3}}, "gone": null},
            "private_metadata": {"secret": "s"},
        }),
    ));
    assert_eq!(
        m["public_metadata"],
        json!({"a": {"b": 1, "d": {"e": 3}}, "keep": true})
    );
    assert_eq!(m["private_metadata"], json!({"secret": "s"}));
    assert_eq!(m["unsafe_metadata"], json!({}));
    err(
        send("PATCH", &path, json!({"public_metadata": [1]})),
        422,
        "form_param_format_invalid",
    );
    let mut target: Map<String, Value> = serde_json::from_value(json!({"x": 1})).unwrap();
    wire::deep_merge(
        &mut target,
        serde_json::from_value(json!({"x": {"y": null, "z": 2}})).unwrap(),
    );
    assert_eq!(Value::Object(target), json!({"x": {"z": 2}}));
}

#[test]
fn ban_lock_and_delete() {
    setup();
    let u = user(json!({"email_address": ["b@x.io"], "username": "banme"}));
    let uid = id(&u);
    let s = ok(send("POST", "/v1/sessions", json!({"user_id": uid})));
    let banned = ok(send("POST", &format!("/v1/users/{uid}/ban"), json!({})));
    assert_eq!(banned["banned"], true);
    assert_eq!(
        ok(get(&format!("/v1/sessions/{}", id(&s))))["status"],
        "revoked"
    );
    err(
        send("POST", "/v1/sessions", json!({"user_id": uid})),
        403,
        "user_banned",
    );
    assert_eq!(
        ok(send("POST", &format!("/v1/users/{uid}/unban"), json!({})))["banned"],
        false
    );
    let locked = ok(send("POST", &format!("/v1/users/{uid}/lock"), json!({})));
    assert_eq!(
        (&locked["locked"], &locked["lockout_expires_in_seconds"]),
        (&json!(true), &Value::Null)
    );
    err(
        send("POST", "/v1/sessions", json!({"user_id": uid})),
        403,
        "user_locked",
    );
    assert_eq!(
        ok(send("POST", &format!("/v1/users/{uid}/unlock"), json!({})))["locked"],
        false
    );
    let s2 = ok(send("POST", "/v1/sessions", json!({"user_id": uid})));
    let org = ok(send(
        "POST",
        "/v1/organizations",
        json!({"name": "O", "created_by": uid}),
    ));
    let gone = ok(send("DELETE", &format!("/v1/users/{uid}"), json!({})));
    assert_eq!(gone, json!({"object": "user", "id": uid, "deleted": true}));
    err(get(&format!("/v1/users/{uid}")), 404, "resource_not_found");
    assert_eq!(
        ok(get(&format!("/v1/sessions/{}", id(&s2))))["status"],
        "removed"
    );
    assert_eq!(
        ok(get(&format!("/v1/organizations/{}", id(&org))))["members_count"],
        0
    );
    // Its identifiers are free again.
    user(json!({"email_address": ["b@x.io"], "username": "banme"}));
    err(
        send("DELETE", &format!("/v1/users/{uid}"), json!({})),
        404,
        "resource_not_found",
    );
}

fn decode_part(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[test]
fn sessions_and_tokens_verify_against_the_jwks() {
    setup();
    seed_signing_key();
    let u = user(json!({"username": "sess"}));
    let uid = id(&u);
    err(
        send("POST", "/v1/sessions", json!({})),
        422,
        "form_param_missing",
    );
    err(
        send("POST", "/v1/sessions", json!({"user_id": "user_x"})),
        404,
        "resource_not_found",
    );
    let s = ok(send("POST", "/v1/sessions", json!({"user_id": uid})));
    let sid = id(&s);
    assert!(sid.starts_with("sess_"));
    assert_eq!(
        (&s["status"], &s["object"]),
        (&json!("active"), &json!("session"))
    );
    assert_eq!(s["expire_at"].as_u64(), Some(T0 + 7 * DAY as u64));
    assert_eq!(
        ok(get(&format!("/v1/users/{uid}")))["last_sign_in_at"].as_u64(),
        Some(T0)
    );

    let token = ok(send(
        "POST",
        &format!("/v1/sessions/{sid}/tokens"),
        json!({"expires_in_seconds": 120}),
    ));
    assert_eq!(token["object"], "token");
    let jwt = token["jwt"].as_str().unwrap();
    let parts: Vec<&str> = jwt.split('.').collect();
    let header = decode_part(parts[0]);
    let claims = decode_part(parts[1]);
    assert_eq!(header["alg"], "RS256");
    assert_eq!((&claims["sub"], &claims["sid"]), (&json!(uid), &json!(sid)));
    assert_eq!(claims["iss"], crate::sessions::DEFAULT_ISSUER);
    assert_eq!(claims["azp"], crate::sessions::DEFAULT_AZP);
    let iat = claims["iat"].as_u64().unwrap();
    assert_eq!(claims["exp"].as_u64(), Some(iat + 120));
    assert!(iat > T0 / 1000, "wall time, not twin time");
    assert!(claims["nbf"].as_u64().unwrap() <= iat);
    // The JWKS holds the key the header names, and it verifies.
    let jwks = ok(get("/v1/jwks"));
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .unwrap()
        .clone();
    let n = BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap());
    let e = BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(jwk["e"].as_str().unwrap()).unwrap());
    let verifier = VerifyingKey::<Sha256>::new(RsaPublicKey::new(n, e).unwrap());
    let sig = Signature::try_from(URL_SAFE_NO_PAD.decode(parts[2]).unwrap().as_slice()).unwrap();
    verifier
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
        .unwrap();

    err(
        send(
            "POST",
            &format!("/v1/sessions/{sid}/tokens"),
            json!({"expires_in_seconds": 5}),
        ),
        422,
        "form_param_value_invalid",
    );
    err(
        send(
            "POST",
            &format!("/v1/sessions/{sid}/tokens/custom"),
            json!({}),
        ),
        404,
        "resource_not_found",
    );
    err(
        send("POST", "/v1/sessions/sess_nope/tokens", json!({})),
        404,
        "resource_not_found",
    );

    // Listing needs a user or client; filters by status.
    err(get("/v1/sessions"), 422, "form_param_missing");
    let s2 = ok(send("POST", "/v1/sessions", json!({"user_id": uid})));
    assert_eq!(
        ids(&ok(get(&format!("/v1/sessions?user_id={uid}")))),
        [id(&s2), sid.clone()]
    );
    let revoked = ok(send(
        "POST",
        &format!("/v1/sessions/{sid}/revoke"),
        json!({}),
    ));
    assert_eq!(revoked["status"], "revoked");
    assert_eq!(
        ids(&ok(get(&format!(
            "/v1/sessions?user_id={uid}&status=active"
        )))),
        [id(&s2)]
    );
    assert_eq!(
        ids(&ok(get(&format!(
            "/v1/sessions?client_id={}",
            s2["client_id"].as_str().unwrap()
        )))),
        [id(&s2)]
    );
    err(
        get(&format!("/v1/sessions?user_id={uid}&status=sleepy")),
        422,
        "form_param_value_invalid",
    );
    err(
        send("POST", &format!("/v1/sessions/{sid}/tokens"), json!({})),
        404,
        "resource_not_found",
    );
    // Time ends sessions: expired after 7 days, abandoned after 30.
    testing::advance_millis(8 * DAY);
    assert_eq!(
        ok(get(&format!("/v1/sessions/{}", id(&s2))))["status"],
        "expired"
    );
    err(
        send(
            "POST",
            &format!("/v1/sessions/{}/tokens", id(&s2)),
            json!({}),
        ),
        404,
        "resource_not_found",
    );
    assert_eq!(
        ids(&ok(get(&format!(
            "/v1/sessions?user_id={uid}&status=expired"
        )))),
        [id(&s2)]
    );
    testing::advance_millis(30 * DAY);
    assert_eq!(
        ok(get(&format!("/v1/sessions/{}", id(&s2))))["status"],
        "abandoned"
    );
}

#[test]
fn tokens_carry_the_active_organization() {
    setup();
    seed_signing_key();
    let uid = id(&user(json!({"username": "orgy"})));
    let other = id(&user(json!({"username": "other"})));
    let org = ok(send(
        "POST",
        "/v1/organizations",
        json!({"name": "Acme", "slug": "acme", "created_by": uid}),
    ));
    err(
        send(
            "POST",
            "/v1/sessions",
            json!({"user_id": other, "active_organization_id": id(&org)}),
        ),
        422,
        "form_param_value_invalid",
    );
    let s = ok(send(
        "POST",
        "/v1/sessions",
        json!({"user_id": uid, "active_organization_id": id(&org)}),
    ));
    assert_eq!(s["last_active_organization_id"], org["id"]);
    let jwt = ok(send(
        "POST",
        &format!("/v1/sessions/{}/tokens", id(&s)),
        json!({}),
    ))["jwt"]
        .clone();
    let claims = decode_part(jwt.as_str().unwrap().split('.').nth(1).unwrap());
    assert_eq!(
        claims["o"],
        json!({"id": id(&org), "rol": "admin", "slg": "acme"})
    );
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        60
    );
}

#[test]
fn sign_in_tokens() {
    setup();
    let uid = id(&user(json!({"username": "ticket"})));
    let t = ok(send(
        "POST",
        "/v1/sign_in_tokens",
        json!({"user_id": uid, "expires_in_seconds": 600}),
    ));
    assert!(id(&t).starts_with("sit_"));
    assert_eq!(
        (&t["status"], &t["user_id"]),
        (&json!("pending"), &json!(uid))
    );
    let ticket = t["token"].as_str().unwrap();
    assert!(
        t["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("ticket={ticket}"))
    );
    let r = ok(send(
        "POST",
        &format!("/v1/sign_in_tokens/{}/revoke", id(&t)),
        json!({}),
    ));
    assert_eq!(r["status"], "revoked");
    assert!(r.get("token").is_none(), "the ticket is shown once");
    err(
        send(
            "POST",
            &format!("/v1/sign_in_tokens/{}/revoke", id(&t)),
            json!({}),
        ),
        400,
        "sign_in_token_not_pending",
    );
    err(
        send("POST", "/v1/sign_in_tokens/sit_nope/revoke", json!({})),
        404,
        "resource_not_found",
    );
    err(
        send(
            "POST",
            "/v1/sign_in_tokens",
            json!({"user_id": "user_nope"}),
        ),
        404,
        "resource_not_found",
    );
    err(
        send("POST", "/v1/sign_in_tokens", json!({})),
        422,
        "form_param_missing",
    );
    err(
        send(
            "POST",
            "/v1/sign_in_tokens",
            json!({"user_id": uid, "expires_in_seconds": 0}),
        ),
        422,
        "form_param_value_invalid",
    );
}

#[test]
fn organizations_crud_and_listing() {
    setup();
    let uid = id(&user(json!({"username": "owner"})));
    let o = ok(send(
        "POST",
        "/v1/organizations",
        json!({"name": "Acme Corp!", "public_metadata": {"tier": 1}}),
    ));
    let oid = id(&o);
    assert!(oid.starts_with("org_"));
    assert!(o["slug"].as_str().unwrap().starts_with("acme-corp-"));
    assert_eq!(
        (&o["members_count"], &o["max_allowed_memberships"]),
        (&json!(0), &json!(5))
    );
    testing::advance_millis(1000);
    let p = ok(send(
        "POST",
        "/v1/organizations",
        json!({"name": "Beta", "slug": "beta", "created_by": uid}),
    ));
    assert_eq!(p["members_count"], 1);
    err(
        send(
            "POST",
            "/v1/organizations",
            json!({"name": "Again", "slug": "beta"}),
        ),
        422,
        "form_identifier_exists",
    );
    err(
        send(
            "POST",
            "/v1/organizations",
            json!({"name": "Bad", "slug": "Not A Slug"}),
        ),
        422,
        "form_param_format_invalid",
    );
    err(
        send("POST", "/v1/organizations", json!({})),
        422,
        "form_param_missing",
    );
    err(
        send(
            "POST",
            "/v1/organizations",
            json!({"name": "X", "created_by": "user_nope"}),
        ),
        404,
        "resource_not_found",
    );
    assert_eq!(id(&ok(get("/v1/organizations/beta"))), id(&p));
    let all = ok(get("/v1/organizations"));
    assert_eq!(
        (ids(&all["data"]), &all["total_count"]),
        (vec![id(&p), oid.clone()], &json!(2))
    );
    assert_eq!(
        ids(&ok(get("/v1/organizations?order_by=%2Bname"))["data"]),
        [oid.clone(), id(&p)]
    );
    assert_eq!(
        ids(&ok(get(&format!("/v1/organizations?user_id={uid}")))["data"]),
        [id(&p)]
    );
    assert_eq!(
        ids(&ok(get("/v1/organizations?query=acme"))["data"]),
        [oid.as_str()]
    );
    assert_eq!(
        ok(get("/v1/organizations?limit=1&offset=1"))["total_count"],
        2
    );
    let up = ok(send(
        "PATCH",
        &format!("/v1/organizations/{oid}"),
        json!({"name": "Acme", "slug": "acme", "max_allowed_memberships": 10}),
    ));
    assert_eq!(
        (&up["slug"], &up["max_allowed_memberships"]),
        (&json!("acme"), &json!(10))
    );
    ok(get("/v1/organizations/acme"));
    let merged = ok(send(
        "PATCH",
        &format!("/v1/organizations/{oid}/metadata"),
        json!({"public_metadata": {"tier": null, "x": 1}}),
    ));
    assert_eq!(merged["public_metadata"], json!({"x": 1}));
    let gone = ok(send(
        "DELETE",
        &format!("/v1/organizations/{oid}"),
        json!({}),
    ));
    assert_eq!(
        (&gone["deleted"], &gone["object"]),
        (&json!(true), &json!("organization"))
    );
    err(get("/v1/organizations/acme"), 404, "resource_not_found");
    // The slug is free again.
    ok(send(
        "POST",
        "/v1/organizations",
        json!({"name": "Acme", "slug": "acme"}),
    ));
}

#[test]
fn memberships() {
    setup();
    let org = ok(send(
        "POST",
        "/v1/organizations",
        json!({"name": "Team", "slug": "team", "max_allowed_memberships": 2}),
    ));
    let path = format!("/v1/organizations/{}/memberships", id(&org));
    let ann = id(&user(
        json!({"username": "ann1", "email_address": ["ann@x.io"], "first_name": "Ann"}),
    ));
    let bo = id(&user(json!({"username": "bo12", "first_name": "Bo"})));
    let cy = id(&user(json!({"username": "cy12"})));
    let m = ok(send(
        "POST",
        &path,
        json!({"user_id": ann, "role": "org:admin", "public_metadata": {"a": 1}}),
    ));
    assert_eq!(
        (&m["object"], &m["role"], &m["role_name"]),
        (
            &json!("organization_membership"),
            &json!("org:admin"),
            &json!("Admin")
        )
    );
    assert!(
        m["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("org:sys_memberships:manage"))
    );
    assert_eq!(m["organization"]["id"], org["id"]);
    assert_eq!(m["organization"]["members_count"], 1);
    assert_eq!(m["public_user_data"]["identifier"], "ann@x.io");
    assert_eq!(m["public_metadata"], json!({"a": 1}));
    err(
        send("POST", &path, json!({"user_id": ann, "role": "org:member"})),
        400,
        "already_a_member_in_organization",
    );
    err(
        send("POST", &path, json!({"user_id": bo, "role": "org:owner"})),
        422,
        "form_param_value_invalid",
    );
    err(
        send(
            "POST",
            &path,
            json!({"user_id": "user_nope", "role": "org:member"}),
        ),
        404,
        "resource_not_found",
    );
    testing::advance_millis(1000);
    ok(send(
        "POST",
        &path,
        json!({"user_id": bo, "role": "org:member"}),
    ));
    err(
        send("POST", &path, json!({"user_id": cy, "role": "org:member"})),
        403,
        "organization_membership_quota_exceeded",
    );
    let list = ok(get(&path));
    assert_eq!(list["total_count"], 2);
    let users_of = |v: &Value| -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                m["public_user_data"]["user_id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    assert_eq!(users_of(&list), [bo.clone(), ann.clone()]);
    assert_eq!(
        users_of(&ok(get(&format!("{path}?role=org:admin")))),
        [ann.as_str()]
    );
    assert_eq!(
        users_of(&ok(get(&format!("{path}?order_by=%2Bfirst_name")))),
        [ann.clone(), bo.clone()]
    );
    assert_eq!(
        users_of(&ok(get(&format!("{path}?query=ann@")))),
        [ann.as_str()]
    );
    let up = ok(send(
        "PATCH",
        &format!("{path}/{bo}"),
        json!({"role": "org:admin"}),
    ));
    assert_eq!(up["role"], "org:admin");
    let md = ok(send(
        "PATCH",
        &format!("{path}/{ann}/metadata"),
        json!({"public_metadata": {"a": null, "b": 2}}),
    ));
    assert_eq!(md["public_metadata"], json!({"b": 2}));
    let mine = ok(get(&format!("/v1/users/{bo}/organization_memberships")));
    assert_eq!(
        (
            mine["total_count"].clone(),
            mine["data"][0]["organization"]["slug"].clone()
        ),
        (json!(1), json!("team"))
    );
    let removed = ok(send("DELETE", &format!("{path}/{bo}"), json!({})));
    assert_eq!(removed["public_user_data"]["user_id"], bo);
    err(
        send("DELETE", &format!("{path}/{bo}"), json!({})),
        404,
        "resource_not_found",
    );
    ok(send(
        "POST",
        &path,
        json!({"user_id": cy, "role": "org:member"}),
    ));
    // Users filter by organization.
    assert_eq!(
        ids(&ok(get(&format!(
            "/v1/users?organization_id={}&order_by=%2Bcreated_at",
            id(&org)
        )))),
        [ann, cy]
    );
}

#[test]
fn invitations() {
    setup();
    user(json!({"email_address": ["member@x.io"]}));
    let inv = ok(send(
        "POST",
        "/v1/invitations",
        json!({
            "email_address": "new@x.io", "public_metadata": {"role": "beta"},
            "redirect_url": "https://app.example/welcome", "expires_in_days": 2,
        }),
    ));
    assert!(id(&inv).starts_with("inv_"));
    assert_eq!(
        (&inv["status"], &inv["revoked"]),
        (&json!("pending"), &json!(false))
    );
    assert_eq!(inv["expires_at"].as_u64(), Some(T0 + 2 * DAY as u64));
    assert!(
        inv["url"]
            .as_str()
            .unwrap()
            .contains("redirect_url=https%3A%2F%2Fapp.example%2Fwelcome")
    );
    err(
        send(
            "POST",
            "/v1/invitations",
            json!({"email_address": "NEW@x.io"}),
        ),
        400,
        "duplicate_record",
    );
    err(
        send(
            "POST",
            "/v1/invitations",
            json!({"email_address": "member@x.io"}),
        ),
        422,
        "form_identifier_exists",
    );
    ok(send(
        "POST",
        "/v1/invitations",
        json!({"email_address": "member@x.io", "ignore_existing": true}),
    ));
    err(
        send("POST", "/v1/invitations", json!({"email_address": "nope"})),
        422,
        "form_param_format_invalid",
    );
    err(
        send("POST", "/v1/invitations", json!({})),
        422,
        "form_param_missing",
    );
    err(
        send(
            "POST",
            "/v1/invitations",
            json!({"email_address": "z@x.io", "expires_in_days": 0}),
        ),
        422,
        "form_param_value_invalid",
    );
    testing::advance_millis(1000);
    let other = ok(send(
        "POST",
        "/v1/invitations",
        json!({"email_address": "other@x.io"}),
    ));
    assert_eq!(ok(get("/v1/invitations")).as_array().unwrap().len(), 3);
    assert_eq!(ids(&ok(get("/v1/invitations?query=other"))), [id(&other)]);
    let revoked = ok(send(
        "POST",
        &format!("/v1/invitations/{}/revoke", id(&other)),
        json!({}),
    ));
    assert_eq!(
        (&revoked["status"], &revoked["revoked"]),
        (&json!("revoked"), &json!(true))
    );
    err(
        send(
            "POST",
            &format!("/v1/invitations/{}/revoke", id(&other)),
            json!({}),
        ),
        400,
        "invitation_not_pending",
    );
    assert_eq!(
        ids(&ok(get("/v1/invitations?status=revoked"))),
        [id(&other)]
    );
    testing::advance_millis(3 * DAY);
    assert_eq!(ids(&ok(get("/v1/invitations?status=expired"))), [id(&inv)]);
    err(
        send(
            "POST",
            &format!("/v1/invitations/{}/revoke", id(&inv)),
            json!({}),
        ),
        400,
        "invitation_not_pending",
    );
    // Expired, it no longer blocks a new invitation.
    ok(send(
        "POST",
        "/v1/invitations",
        json!({"email_address": "new@x.io"}),
    ));
    err(
        get("/v1/invitations?status=lost"),
        422,
        "form_param_value_invalid",
    );
}

#[test]
fn accounts_are_isolated() {
    setup();
    let u = user(json!({"email_address": ["same@x.io"]}));
    let other = "sk_test_other";
    ok(send_as(
        other,
        "POST",
        "/v1/users",
        json!({"email_address": ["same@x.io"]}),
    ));
    assert_eq!(
        call::<Clerk>(req("GET", &format!("/v1/users/{}", id(&u)), other)).status,
        404
    );
    let count: Value = call::<Clerk>(req("GET", "/v1/users/count", other))
        .json_body()
        .unwrap();
    assert_eq!(count["total_count"], 1);
}

#[test]
fn helpers() {
    assert!(wire::well_formed("sk_test_abc123") && wire::well_formed("sk_live_X"));
    assert!(!wire::well_formed("sk_test_") && !wire::well_formed("sk_test_a-b"));
    assert!(
        crate::users::valid_email("a.b+c@d.co")
            && !crate::users::valid_email("a@b")
            && !crate::users::valid_email("a b@c.d")
    );
    assert!(
        crate::users::valid_phone("+447700900123")
            && !crate::users::valid_phone("+0123456789")
            && !crate::users::valid_phone("123456789")
    );
    assert_eq!(wire::percent_encode("a b/ü"), "a%20b%2F%C3%BC");
}

#[test]
fn webhook_events_are_svix_signed_when_configured() {
    setup();
    // Without a configured endpoint nothing is sent.
    let quiet = user(json!({"username": "quiet"}));
    assert!(testing::take_outbox().is_empty());
    let url = "http://127.0.0.1:9/clerk";
    let secret = wt_sdk::svix::new_secret();
    testing::set_config("webhook-url", json!(url));
    testing::set_config("webhook-secret", json!(secret));
    let u = user(json!({"username": "hooked"}));
    ok(send(
        "PATCH",
        &format!("/v1/users/{}/metadata", id(&u)),
        json!({"public_metadata": {"a": 1}}),
    ));
    let s = ok(send("POST", "/v1/sessions", json!({"user_id": id(&u)})));
    ok(send(
        "POST",
        &format!("/v1/sessions/{}/revoke", id(&s)),
        json!({}),
    ));
    let org = ok(send(
        "POST",
        "/v1/organizations",
        json!({"name": "Hooks", "created_by": id(&u)}),
    ));
    ok(send(
        "DELETE",
        &format!("/v1/users/{}", id(&quiet)),
        json!({}),
    ));
    let sent = testing::take_outbox();
    let mut kinds = Vec::new();
    for r in &sent {
        assert_eq!(r.url, url);
        let h = |n: &str| {
            r.headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        let ts: u64 = h("svix-timestamp").parse().unwrap();
        assert_eq!(
            h("svix-signature"),
            wt_sdk::svix::signature(&secret, &h("svix-id"), ts, &r.body).unwrap()
        );
        let event: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(event["object"], "event");
        assert_eq!(event["timestamp"].as_u64(), Some(T0));
        assert!(event["instance_id"].as_str().unwrap().starts_with("ins_"));
        kinds.push(event["type"].as_str().unwrap().to_owned());
        match event["type"].as_str().unwrap() {
            "user.created" => assert_eq!(event["data"]["id"], u["id"]),
            "user.updated" => assert_eq!(event["data"]["public_metadata"], json!({"a": 1})),
            "organization.created" => assert_eq!(event["data"]["id"], org["id"]),
            "user.deleted" => assert_eq!(
                event["data"],
                json!({"object": "user", "id": id(&quiet), "deleted": true})
            ),
            _ => {}
        }
    }
    assert_eq!(
        kinds,
        [
            "user.created",
            "user.updated",
            "session.created",
            "session.revoked",
            "organization.created",
            "organizationMembership.created",
            "user.deleted",
        ]
    );
    // A failed request sends nothing.
    err(
        send("POST", "/v1/users", json!({"username": "hooked"})),
        422,
        "form_identifier_exists",
    );
    assert!(testing::take_outbox().is_empty());
    // A URL without a secret sends nothing either.
    testing::set_config("webhook-secret", json!(""));
    user(json!({"username": "unsigned"}));
    assert!(testing::take_outbox().is_empty());
}

#[test]
fn jwt_templates_shape_template_tokens() {
    setup();
    seed_signing_key();
    let uid = id(&user(json!({
        "email_address": ["t@x.io"], "first_name": "Tess", "last_name": "Ter",
        "public_metadata": {"plan": "pro", "seats": 3},
    })));
    let org = ok(send(
        "POST",
        "/v1/organizations",
        json!({"name": "T", "slug": "tee", "created_by": uid}),
    ));
    let t = ok(send(
        "POST",
        "/v1/jwt_templates",
        json!({
            "name": "supabase",
            "claims": {
                "email": "{{user.primary_email_address}}",
                "plan": "{{user.public_metadata.plan}}",
                "seats": "{{user.public_metadata.seats}}",
                "hello": "Hi {{user.full_name}}!",
                "org": {"slug": "{{org.slug}}", "role": "{{org.role}}"},
                "missing": "{{user.nothing}}",
                "role": "authenticated",
            },
            "lifetime": 300, "allowed_clock_skew": 10,
        }),
    ));
    assert!(id(&t).starts_with("jtmp_"));
    assert_eq!(
        (
            &t["object"],
            &t["signing_algorithm"],
            &t["custom_signing_key"]
        ),
        (&json!("jwt_template"), &json!("RS256"), &json!(false))
    );
    assert!(t.get("signing_key").is_none());
    err(
        send(
            "POST",
            "/v1/jwt_templates",
            json!({"name": "supabase", "claims": {}}),
        ),
        422,
        "form_identifier_exists",
    );
    err(
        send(
            "POST",
            "/v1/jwt_templates",
            json!({"name": "x", "claims": {"sub": "me"}}),
        ),
        422,
        "form_param_value_invalid",
    );
    err(
        send("POST", "/v1/jwt_templates", json!({"name": "x"})),
        422,
        "form_param_missing",
    );
    err(
        send(
            "POST",
            "/v1/jwt_templates",
            json!({"name": "x", "claims": {}, "lifetime": 5}),
        ),
        422,
        "form_param_value_invalid",
    );
    err(
        send(
            "POST",
            "/v1/jwt_templates",
            json!({"name": "x", "claims": {}, "custom_signing_key": true, "signing_algorithm": "HS256"}),
        ),
        422,
        "form_param_missing",
    );

    let s = ok(send(
        "POST",
        "/v1/sessions",
        json!({"user_id": uid, "active_organization_id": id(&org)}),
    ));
    let jwt = ok(send(
        "POST",
        &format!("/v1/sessions/{}/tokens/supabase", id(&s)),
        json!({}),
    ))["jwt"]
        .clone();
    let parts: Vec<&str> = jwt.as_str().unwrap().split('.').collect();
    let claims = decode_part(parts[1]);
    assert_eq!(claims["email"], "t@x.io");
    assert_eq!(
        (&claims["plan"], &claims["seats"]),
        (&json!("pro"), &json!(3))
    );
    assert_eq!(claims["hello"], "Hi Tess Ter!");
    assert_eq!(claims["org"], json!({"slug": "tee", "role": "org:admin"}));
    assert_eq!(
        (&claims["missing"], &claims["role"]),
        (&Value::Null, &json!("authenticated"))
    );
    assert_eq!(claims["sub"], json!(uid));
    let iat = claims["iat"].as_u64().unwrap();
    assert_eq!(
        (claims["exp"].as_u64(), claims["nbf"].as_u64()),
        (Some(iat + 300), Some(iat - 10))
    );
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    assert_eq!(decode_part(parts[0])["alg"], "RS256");

    // A custom HS256 key signs with that key.
    let hs = ok(send(
        "POST",
        "/v1/jwt_templates",
        json!({
            "name": "hs", "claims": {"k": 1}, "custom_signing_key": true,
            "signing_algorithm": "HS256", "signing_key": "s3cret",
        }),
    ));
    assert_eq!(hs["signing_algorithm"], "HS256");
    let jwt = ok(send(
        "POST",
        &format!("/v1/sessions/{}/tokens/hs", id(&s)),
        json!({"expires_in_seconds": 60}),
    ))["jwt"]
        .clone();
    let parts: Vec<&str> = jwt.as_str().unwrap().split('.').collect();
    let mac =
        wt_sdk::signature::hmac_sha256(b"s3cret", format!("{}.{}", parts[0], parts[1]).as_bytes());
    assert_eq!(URL_SAFE_NO_PAD.decode(parts[2]).unwrap(), mac);
    let claims = decode_part(parts[1]);
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        60
    );

    // List, update, delete.
    assert_eq!(ids(&ok(get("/v1/jwt_templates"))), [id(&t), id(&hs)]);
    let up = ok(send(
        "PATCH",
        &format!("/v1/jwt_templates/{}", id(&hs)),
        json!({"name": "hs2", "claims": {}}),
    ));
    assert_eq!(
        (&up["name"], &up["signing_algorithm"]),
        (&json!("hs2"), &json!("RS256"))
    );
    err(
        send(
            "POST",
            &format!("/v1/sessions/{}/tokens/hs", id(&s)),
            json!({}),
        ),
        404,
        "resource_not_found",
    );
    let gone = ok(send(
        "DELETE",
        &format!("/v1/jwt_templates/{}", id(&hs)),
        json!({}),
    ));
    assert_eq!(gone["deleted"], true);
    err(
        get(&format!("/v1/jwt_templates/{}", id(&hs))),
        404,
        "resource_not_found",
    );
}

#[test]
fn email_addresses_and_phone_numbers_after_creation() {
    setup();
    let u = user(json!({"username": "idents"}));
    let uid = id(&u);
    assert_eq!(u["primary_email_address_id"], Value::Null);
    let e1 = ok(send(
        "POST",
        "/v1/email_addresses",
        json!({"user_id": uid, "email_address": "one@x.io"}),
    ));
    assert!(id(&e1).starts_with("idn_"));
    assert_eq!(e1["verification"]["status"], "verified");
    let got = ok(get(&format!("/v1/users/{uid}")));
    assert_eq!(
        got["primary_email_address_id"], e1["id"],
        "the first becomes primary"
    );
    let e2 = ok(send(
        "POST",
        "/v1/email_addresses",
        json!({"user_id": uid, "email_address": "two@x.io", "verified": false, "primary": true}),
    ));
    assert_eq!(e2["verification"], Value::Null);
    assert_eq!(
        ok(get(&format!("/v1/users/{uid}")))["primary_email_address_id"],
        e2["id"]
    );
    err(
        send(
            "POST",
            "/v1/email_addresses",
            json!({"user_id": uid, "email_address": "ONE@x.io"}),
        ),
        422,
        "form_identifier_exists",
    );
    err(
        send(
            "POST",
            "/v1/email_addresses",
            json!({"user_id": uid, "email_address": "bad"}),
        ),
        422,
        "form_param_format_invalid",
    );
    err(
        send(
            "POST",
            "/v1/email_addresses",
            json!({"user_id": "user_no", "email_address": "z@x.io"}),
        ),
        404,
        "resource_not_found",
    );
    assert_eq!(
        ok(get(&format!("/v1/email_addresses/{}", id(&e1))))["email_address"],
        "one@x.io"
    );
    let verified = ok(send(
        "PATCH",
        &format!("/v1/email_addresses/{}", id(&e2)),
        json!({"verified": true}),
    ));
    assert_eq!(verified["verification"]["status"], "verified");
    // Deleting the primary promotes the next one and frees the address.
    let gone = ok(send(
        "DELETE",
        &format!("/v1/email_addresses/{}", id(&e2)),
        json!({}),
    ));
    assert_eq!(
        gone,
        json!({"object": "email_address", "id": id(&e2), "deleted": true})
    );
    assert_eq!(
        ok(get(&format!("/v1/users/{uid}")))["primary_email_address_id"],
        e1["id"]
    );
    err(
        get(&format!("/v1/email_addresses/{}", id(&e2))),
        404,
        "resource_not_found",
    );
    user(json!({"email_address": ["two@x.io"]}));
    assert_eq!(
        ids(&ok(get("/v1/users?email_address=one@x.io"))),
        [uid.as_str()]
    );

    let p = ok(send(
        "POST",
        "/v1/phone_numbers",
        json!({"user_id": uid, "phone_number": "+15555550123", "reserved_for_second_factor": true}),
    ));
    assert_eq!(
        (&p["object"], &p["reserved_for_second_factor"]),
        (&json!("phone_number"), &json!(true))
    );
    err(
        send(
            "POST",
            "/v1/phone_numbers",
            json!({"user_id": uid, "phone_number": "12"}),
        ),
        422,
        "form_param_format_invalid",
    );
    err(
        send(
            "POST",
            "/v1/phone_numbers",
            json!({"user_id": uid, "phone_number": "+15555550123", "primary": true, "email_address": "x"}),
        ),
        422,
        "form_param_unknown",
    );
    let up = ok(send(
        "PATCH",
        &format!("/v1/phone_numbers/{}", id(&p)),
        json!({"reserved_for_second_factor": false}),
    ));
    assert_eq!(up["reserved_for_second_factor"], false);
    ok(send(
        "DELETE",
        &format!("/v1/phone_numbers/{}", id(&p)),
        json!({}),
    ));
    assert_eq!(
        ok(get(&format!("/v1/users/{uid}")))["primary_phone_number_id"],
        Value::Null
    );
}

use base64::Engine as _;
use serde_json::{Value, json};
use wt_sdk::testing::{self, Client, call};
use wt_sdk::{Request, Response, compression};

use super::PostHog;
use crate::eval::{Context, Reason, Subject, evaluate, hash, match_property};
use crate::flags::Flag;

const PHC: &str = "phc_unit_project";
const PHX: &str = "phx_unit_personal";
const T0: u64 = 1_700_000_000_000;

fn setup() {
    testing::reset();
    testing::set_now_millis(T0);
}

fn post_json(path: &str, body: &Value) -> Response {
    Client::<PostHog>::new().send_json("POST", path, body)
}

/// A personal-API-key call to the management API.
fn admin(method: &str, path: &str, body: Option<Value>) -> Response {
    let client = Client::<PostHog>::new().bearer(PHX);
    match body {
        Some(b) => client.send_json(method, path, &b),
        None => client.send(client.request(method, path)),
    }
}

fn body(r: &Response) -> Value {
    r.json_body().unwrap()
}

fn ok(r: Response) -> Value {
    assert!(r.is_success(), "{} {}", r.status, r.body_text());
    body(&r)
}

fn err(r: Response, status: u16, kind: &str, code: &str) -> Value {
    assert_eq!(r.status, status, "{}", r.body_text());
    let b = body(&r);
    assert_eq!(
        (b["type"].as_str(), b["code"].as_str()),
        (Some(kind), Some(code)),
        "{b}"
    );
    assert!(b["detail"].as_str().is_some_and(|d| !d.is_empty()));
    assert!(b.as_object().unwrap().contains_key("attr"));
    b
}

fn events(query: &str) -> Vec<Value> {
    let r = admin("GET", &format!("/api/projects/{PHC}/events/?{query}"), None);
    ok(r)["results"].as_array().unwrap().clone()
}

fn create_flag(def: Value) -> Value {
    let r = admin(
        "POST",
        &format!("/api/projects/{PHC}/feature_flags/"),
        Some(def),
    );
    assert_eq!(r.status, 201, "{}", r.body_text());
    body(&r)
}

fn flags_for(distinct_id: &str, extra: Value) -> Value {
    let mut doc = json!({"api_key": PHC, "distinct_id": distinct_id});
    for (k, v) in extra.as_object().unwrap() {
        doc[k] = v.clone();
    }
    ok(post_json("/flags/?v=4", &doc))
}

#[test]
fn hash_matches_posthogs_reference_values() {
    // Values computed with the `posthog` SDK's own `feature_flags._hash`.
    assert_eq!(
        hash("beta-feature", "some_distinct_id", ""),
        0.8000739583404769
    );
    assert_eq!(
        hash("beta-feature", "some_distinct_id", "variant"),
        0.32034111186126474
    );
    assert_eq!(hash("x", "0", ""), 0.9421320985534792);
}

#[test]
fn batch_is_stored_with_uuid_timestamp_and_person_properties() {
    setup();
    let r = post_json(
        "/batch/",
        &json!({"api_key": PHC, "sent_at": "2023-11-14T22:13:30+00:00", "batch": [
            {"event": "signed_up", "distinct_id": "u1", "uuid": "0b8bbd7c-8f4c-4d1b-9a52-6f0e8d3d9a11",
             "properties": {"plan": "pro", "$set": {"email": "u1@x.io"}},
             "timestamp": "2023-11-14T22:13:20+00:00"},
            {"event": "$pageview", "distinct_id": 42, "$set_once": {"first": "a"}},
        ]}),
    );
    assert_eq!(ok(r), json!({"status": 1}));
    let all = events("");
    assert_eq!(all.len(), 2);
    // Newest received first.
    assert_eq!(all[0]["event"], "$pageview");
    assert_eq!(all[0]["distinct_id"], "42");
    assert_eq!(all[0]["timestamp"], "2023-11-14T22:13:20.000Z");
    assert!(wt_sdk::ids::is_uuid(all[0]["uuid"].as_str().unwrap()));
    assert_eq!(all[0]["properties"]["$set_once"], json!({"first": "a"}));
    // Skew-corrected: 10 s before sent_at is 10 s before twin now.
    assert_eq!(all[1]["uuid"], "0b8bbd7c-8f4c-4d1b-9a52-6f0e8d3d9a11");
    assert_eq!(
        all[1]["timestamp"],
        wt_sdk::datetime::format_millis(T0 - 10_000)
    );
    let persons = ok(admin(
        "GET",
        &format!("/api/projects/{PHC}/persons/?distinct_id=u1"),
        None,
    ));
    assert_eq!(
        persons["results"][0]["properties"],
        json!({"email": "u1@x.io"})
    );
    assert_eq!(persons["results"][0]["distinct_ids"], json!(["u1"]));
}

#[test]
fn filters_and_dedup_by_uuid() {
    setup();
    let ev =
        json!({"event": "a", "distinct_id": "x", "uuid": "11111111-1111-4111-8111-111111111111"});
    for _ in 0..2 {
        ok(post_json(
            "/batch/",
            &json!({"api_key": PHC, "batch": [ev.clone()]}),
        ));
    }
    ok(post_json(
        "/capture/",
        &json!({"api_key": PHC, "event": "b", "distinct_id": "y"}),
    ));
    assert_eq!(events("").len(), 2);
    assert_eq!(events("event=a").len(), 1);
    assert_eq!(events("distinct_id=y")[0]["event"], "b");
    assert!(events("event=zzz").is_empty());
}

#[test]
fn events_page_with_next_links() {
    setup();
    let batch: Vec<Value> = (0..5)
        .map(|i| json!({"event": "e", "distinct_id": "d", "properties": {"i": i}}))
        .collect();
    ok(post_json(
        "/batch/",
        &json!({"api_key": PHC, "batch": batch}),
    ));
    let first = ok(admin(
        "GET",
        &format!("/api/projects/{PHC}/events/?limit=2"),
        None,
    ));
    assert_eq!(first["results"][0]["properties"]["i"], 4);
    let next = first["next"].as_str().unwrap();
    let path = next.split_once("localhost").unwrap().1;
    let second = ok(admin("GET", path, None));
    assert_eq!(second["results"][0]["properties"]["i"], 2);
    err(
        admin("GET", &format!("/api/projects/{PHC}/events/?limit=0"), None),
        400,
        "validation_error",
        "invalid_input",
    );
}

#[test]
fn gzip_and_base64_form_bodies() {
    setup();
    let doc = json!({"api_key": PHC, "batch": [{"event": "gz", "distinct_id": "a"}]});
    let gz = compression::gzip(doc.to_string().as_bytes());
    let r = call::<PostHog>(
        Request::new("POST", "/batch/")
            .with_header("content-encoding", "gzip")
            .with_body(gz.clone()),
    );
    ok(r);
    let r = call::<PostHog>(Request::new("POST", "/e/?compression=gzip-js").with_body(gz));
    ok(r);
    let b64 = base64::engine::general_purpose::STANDARD.encode(
        json!([{"event": "form", "properties": {"distinct_id": "f", "token": PHC}}]).to_string(),
    );
    let form = format!("data={}", b64.replace('+', "%2B").replace('=', "%3D"));
    ok(call::<PostHog>(
        Request::new("POST", "/e/")
            .with_header("content-type", "application/x-www-form-urlencoded")
            .with_body(form),
    ));
    assert_eq!(events("event=gz").len(), 2);
    assert_eq!(events("event=form")[0]["distinct_id"], "f");
    let corrupt = call::<PostHog>(
        Request::new("POST", "/batch/")
            .with_header("content-encoding", "gzip")
            .with_body(b"\x1f\x8bnot really".to_vec()),
    );
    err(corrupt, 400, "validation_error", "invalid_payload");
}

#[test]
fn ingestion_errors_in_posthog_shape() {
    setup();
    err(
        post_json(
            "/batch/",
            &json!({"batch": [{"event": "a", "distinct_id": "b"}]}),
        ),
        401,
        "authentication_error",
        "missing_api_key",
    );
    err(
        post_json(
            "/batch/",
            &json!({"api_key": "sk_nope", "batch": [{"event": "a", "distinct_id": "b"}]}),
        ),
        401,
        "authentication_error",
        "invalid_api_key",
    );
    for bad in [
        json!({"api_key": PHC, "batch": [{"distinct_id": "b"}]}),
        json!({"api_key": PHC, "batch": [{"event": "a"}]}),
        json!({"api_key": PHC, "batch": []}),
        json!({"api_key": PHC, "batch": [{"event": "a", "distinct_id": "b", "properties": 3}]}),
        json!({"api_key": PHC, "batch": "x"}),
    ] {
        err(
            post_json("/batch/", &bad),
            400,
            "validation_error",
            "invalid_payload",
        );
    }
    let garbage = call::<PostHog>(Request::new("POST", "/batch/").with_body("{not json"));
    err(garbage, 400, "validation_error", "invalid_payload");
    // A bad event refuses the whole batch.
    err(
        post_json(
            "/batch/",
            &json!({"api_key": PHC, "batch": [{"event": "ok", "distinct_id": "b"}, {"event": ""}]}),
        ),
        400,
        "validation_error",
        "invalid_payload",
    );
    assert!(events("").is_empty());
}

#[test]
fn identify_alias_and_set_merge_persons() {
    setup();
    let send = |ev: Value| {
        ok(post_json(
            "/batch/",
            &json!({"api_key": PHC, "batch": [ev]}),
        ))
    };
    send(
        json!({"event": "$pageview", "distinct_id": "anon", "properties": {"$set": {"a": 1, "b": 1}}}),
    );
    send(json!({"event": "x", "distinct_id": "user", "properties": {"$set": {"b": 2}}}));
    send(
        json!({"event": "$identify", "distinct_id": "user", "properties": {"$anon_distinct_id": "anon"}}),
    );
    let p = ok(admin(
        "GET",
        &format!("/api/projects/{PHC}/persons/?distinct_id=anon"),
        None,
    ));
    let person = &p["results"][0];
    assert_eq!(person["distinct_ids"], json!(["user", "anon"]));
    assert_eq!(person["properties"], json!({"a": 1, "b": 2}));
    assert_eq!(person["is_identified"], true);
    // An alias adds an id; $set_once does not overwrite; $unset removes.
    send(
        json!({"event": "$create_alias", "distinct_id": "user", "properties": {"alias": "user@x.io"}}),
    );
    send(
        json!({"event": "y", "distinct_id": "user@x.io", "properties": {"$set_once": {"a": 9, "c": 3}, "$unset": ["b"]}}),
    );
    let p = ok(admin(
        "GET",
        &format!("/api/projects/{PHC}/persons/?distinct_id=user"),
        None,
    ));
    assert_eq!(p["results"][0]["properties"], json!({"a": 1, "c": 3}));
    assert_eq!(p["results"][0]["distinct_ids"].as_array().unwrap().len(), 3);
    let all = ok(admin("GET", &format!("/api/projects/{PHC}/persons/"), None));
    assert_eq!(all["results"].as_array().unwrap().len(), 1);
    // Events of any of the person's ids are found through one of them.
    assert_eq!(events("distinct_id=anon").len(), 5);
    assert_eq!(events("distinct_id=user").len(), 5);
    let person_uuid = p["results"][0]["uuid"].as_str().unwrap().to_owned();
    assert_eq!(events(&format!("person_id={person_uuid}")).len(), 5);
    // Deleting the person frees its ids.
    let gone = admin(
        "DELETE",
        &format!("/api/projects/{PHC}/persons/{person_uuid}/"),
        None,
    );
    assert_eq!(gone.status, 204);
    err(
        admin(
            "GET",
            &format!("/api/projects/{PHC}/persons/{person_uuid}/"),
            None,
        ),
        404,
        "invalid_request",
        "not_found",
    );
    send(json!({"event": "back", "distinct_id": "anon"}));
    let p = ok(admin(
        "GET",
        &format!("/api/projects/{PHC}/persons/?distinct_id=anon"),
        None,
    ));
    assert_eq!(p["results"][0]["distinct_ids"], json!(["anon"]));
    assert_ne!(p["results"][0]["uuid"], json!(person_uuid));
    // Opting out of person processing leaves persons alone.
    send(
        json!({"event": "z", "distinct_id": "ghost", "properties": {"$process_person_profile": false, "$set": {"q": 1}}}),
    );
    let p = ok(admin(
        "GET",
        &format!("/api/projects/{PHC}/persons/?distinct_id=ghost"),
        None,
    ));
    assert!(p["results"].as_array().unwrap().is_empty());
}

#[test]
fn projects_are_isolated_and_have_numeric_ids() {
    setup();
    ok(post_json(
        "/batch/",
        &json!({"api_key": "phc_other", "batch": [{"event": "a", "distinct_id": "b"}]}),
    ));
    assert!(events("").is_empty());
    let other = ok(admin("GET", "/api/projects/phc_other/", None));
    let id = other["id"].as_u64().unwrap();
    assert_eq!(other["api_token"], "phc_other");
    let via_id = ok(admin("GET", &format!("/api/projects/{id}/events/"), None));
    assert_eq!(via_id["results"].as_array().unwrap().len(), 1);
    let current = ok(admin(
        "GET",
        "/api/projects/@current/events/?token=phc_other",
        None,
    ));
    assert_eq!(current["results"], via_id["results"]);
    err(
        admin("GET", "/api/projects/999/events/", None),
        404,
        "invalid_request",
        "not_found",
    );
}

#[test]
fn management_auth_errors() {
    setup();
    let path = format!("/api/projects/{PHC}/feature_flags/");
    err(
        call::<PostHog>(Request::new("GET", &path)),
        401,
        "authentication_error",
        "not_authenticated",
    );
    let with = |key: &str| call::<PostHog>(Request::new("GET", &path).with_bearer(key));
    err(
        with(PHC),
        401,
        "authentication_error",
        "authentication_failed",
    );
    err(
        with("phx_"),
        401,
        "authentication_error",
        "authentication_failed",
    );
    ok(with(PHX));
    ok(call::<PostHog>(Request::new(
        "GET",
        &format!("{path}?personal_api_key={PHX}"),
    )));
}

#[test]
fn flag_crud_validation_and_soft_delete() {
    setup();
    let flag = create_flag(
        json!({"key": "beta", "name": "Beta", "filters": {"groups": [{"properties": [], "rollout_percentage": 50}]}}),
    );
    assert_eq!(flag["key"], "beta");
    assert_eq!(flag["is_simple_flag"], true);
    assert_eq!(flag["rollout_percentage"], 50);
    assert_eq!(flag["active"], true);
    let id = flag["id"].as_u64().unwrap();
    let path = format!("/api/projects/{PHC}/feature_flags/{id}/");
    assert_eq!(ok(admin("GET", &path, None))["name"], "Beta");
    let b = err(
        admin(
            "POST",
            &format!("/api/projects/{PHC}/feature_flags/"),
            Some(json!({"key": "beta"})),
        ),
        400,
        "validation_error",
        "unique",
    );
    assert_eq!(b["attr"], "key");
    err(
        admin(
            "POST",
            &format!("/api/projects/{PHC}/feature_flags/"),
            Some(json!({"name": "x"})),
        ),
        400,
        "validation_error",
        "required",
    );
    err(
        admin(
            "POST",
            &format!("/api/projects/{PHC}/feature_flags/"),
            Some(json!({"key": "bad key!"})),
        ),
        400,
        "validation_error",
        "invalid_key",
    );
    for filters in [
        json!({"multivariate": {"variants": [{"key": "a", "rollout_percentage": 60}, {"key": "b", "rollout_percentage": 30}]}}),
        json!({"groups": [{"rollout_percentage": 101}]}),
        json!({"groups": [{"variant": "nope"}]}),
        json!({"payloads": {"false": "1"}}),
        json!("x"),
    ] {
        let b = err(
            admin(
                "POST",
                &format!("/api/projects/{PHC}/feature_flags/"),
                Some(json!({"key": "v", "filters": filters})),
            ),
            400,
            "validation_error",
            "invalid_input",
        );
        assert_eq!(b["attr"], "filters");
    }
    let patched = ok(admin(
        "PATCH",
        &path,
        Some(json!({"active": false, "filters": {"groups": [], "payloads": {"true": {"a": 1}}}})),
    ));
    assert_eq!(patched["active"], false);
    assert_eq!(patched["version"], 2);
    assert_eq!(patched["filters"]["payloads"]["true"], "{\"a\":1}");
    let list = ok(admin(
        "GET",
        &format!("/api/projects/{PHC}/feature_flags/"),
        None,
    ));
    assert_eq!(list["count"], 1);
    err(
        admin("DELETE", &path, None),
        405,
        "invalid_request",
        "method_not_allowed",
    );
    ok(admin("PATCH", &path, Some(json!({"deleted": true}))));
    err(
        admin("GET", &path, None),
        404,
        "invalid_request",
        "not_found",
    );
    let list = ok(admin(
        "GET",
        &format!("/api/projects/{PHC}/feature_flags/"),
        None,
    ));
    assert_eq!(list["count"], 0);
    // The key is free again.
    create_flag(json!({"key": "beta"}));
}

fn flag(filters: Value) -> Flag {
    Flag {
        id: 1,
        team_id: 1,
        key: "f".into(),
        name: String::new(),
        filters: filters.as_object().unwrap().clone(),
        active: true,
        deleted: false,
        ensure_experience_continuity: false,
        version: 1,
        tags: vec![],
        is_remote_configuration: false,
        evaluation_runtime: "all".into(),
        created_at: String::new(),
        updated_at: String::new(),
    }
}

fn subject(id: &str, person: Value) -> Subject {
    Subject {
        distinct_id: id.into(),
        person: person.as_object().unwrap().clone(),
        ..Subject::default()
    }
}

#[test]
fn rollout_follows_the_hash() {
    let f = flag(json!({"groups": [{"properties": [], "rollout_percentage": 50}]}));
    let types = Context::default();
    let mut on = 0;
    for i in 0..200 {
        let id = format!("user-{i}");
        let outcome = evaluate(&f, &subject(&id, json!({})), &types);
        assert_eq!(outcome.enabled, hash("f", &id, "") <= 0.5);
        if outcome.enabled {
            on += 1;
            assert_eq!(outcome.reason, Reason::ConditionMatch);
        } else {
            assert_eq!(outcome.reason, Reason::OutOfRolloutBound);
        }
    }
    assert!((70..130).contains(&on), "{on}");
}

#[test]
fn variants_split_by_the_variant_hash() {
    let f = flag(json!({
        "groups": [{"rollout_percentage": 100}],
        "multivariate": {"variants": [
            {"key": "a", "rollout_percentage": 20},
            {"key": "b", "rollout_percentage": 30},
            {"key": "c", "rollout_percentage": 50}]},
        "payloads": {"b": "{\"x\":1}"}
    }));
    let types = Context::default();
    for i in 0..100 {
        let id = format!("{i}");
        let h = hash("f", &id, "variant");
        let want = if h < 0.2 {
            "a"
        } else if h < 0.5 {
            "b"
        } else {
            "c"
        };
        let outcome = evaluate(&f, &subject(&id, json!({})), &types);
        assert_eq!(outcome.variant.as_deref(), Some(want));
        assert_eq!(outcome.payload.is_some(), want == "b");
    }
    // A condition's variant override wins.
    let f = flag(json!({
        "groups": [{"properties": [{"key": "email", "operator": "icontains", "value": "@corp"}], "variant": "a"}, {}],
        "multivariate": {"variants": [{"key": "a", "rollout_percentage": 0}, {"key": "b", "rollout_percentage": 100}]}
    }));
    let o = evaluate(&f, &subject("1", json!({"email": "x@CORP.com"})), &types);
    assert_eq!(
        (o.variant.as_deref(), o.condition_index),
        (Some("a"), Some(0))
    );
    let o = evaluate(&f, &subject("1", json!({"email": "x@home"})), &types);
    assert_eq!(
        (o.variant.as_deref(), o.condition_index),
        (Some("b"), Some(1))
    );
}

#[test]
fn property_operators() {
    let p = json!({"email": "Ann@Example.com", "age": 30, "plan": "pro", "n": "7"});
    let props = p.as_object().unwrap();
    let m = |f: Value| match_property(&f, props);
    assert!(m(json!({"key": "plan", "value": "PRO"})));
    assert!(m(
        json!({"key": "plan", "value": ["free", "pro"], "operator": "exact"})
    ));
    assert!(!m(
        json!({"key": "plan", "value": "pro", "operator": "is_not"})
    ));
    assert!(m(
        json!({"key": "email", "value": "example", "operator": "icontains"})
    ));
    assert!(m(
        json!({"key": "email", "value": "gmail", "operator": "not_icontains"})
    ));
    // Regexes are case-sensitive unless they say otherwise.
    assert!(m(
        json!({"key": "email", "value": "^Ann@", "operator": "regex"})
    ));
    assert!(!m(
        json!({"key": "email", "value": "^ann@", "operator": "regex"})
    ));
    assert!(m(
        json!({"key": "email", "value": "(?i)^ann@", "operator": "regex"})
    ));
    assert!(!m(
        json!({"key": "email", "value": "^Ann@", "operator": "not_regex"})
    ));
    assert!(!m(
        json!({"key": "email", "value": "(unclosed", "operator": "regex"})
    ));
    assert!(m(json!({"key": "age", "value": "29", "operator": "gt"})));
    assert!(m(json!({"key": "age", "value": 30, "operator": "gte"})));
    assert!(m(json!({"key": "n", "value": 10, "operator": "lt"})));
    assert!(!m(json!({"key": "plan", "value": 10, "operator": "lt"})));
    assert!(m(json!({"key": "age", "operator": "is_set"})));
    assert!(m(json!({"key": "missing", "operator": "is_not_set"})));
    assert!(!m(json!({"key": "missing", "value": "x"})));
    assert!(!m(json!({"key": "age", "value": 1, "operator": "bogus"})));
    assert!(!m(json!({"key": "id", "value": 3, "type": "cohort"})));
}

#[test]
fn flags_endpoint_uses_stored_and_sent_person_properties() {
    setup();
    create_flag(json!({"key": "pro-only", "filters": {
        "groups": [{"properties": [{"key": "plan", "value": "pro", "type": "person"}], "rollout_percentage": 100}],
        "payloads": {"true": "{\"limit\":10}"}}}));
    create_flag(
        json!({"key": "off", "active": false, "filters": {"groups": [{"rollout_percentage": 100}]}}),
    );
    let r = flags_for("u1", json!({}));
    assert_eq!(r["flags"]["pro-only"]["enabled"], false);
    assert_eq!(
        r["flags"]["pro-only"]["reason"]["code"],
        "no_condition_match"
    );
    assert_eq!(r["flags"]["off"]["reason"]["code"], "flag_disabled");
    assert_eq!(r["errorsWhileComputingFlags"], false);
    ok(post_json(
        "/batch/",
        &json!({"api_key": PHC, "batch": [{"event": "$set", "distinct_id": "u1", "$set": {"plan": "pro"}}]}),
    ));
    let r = flags_for("u1", json!({}));
    let rec = &r["flags"]["pro-only"];
    assert_eq!(
        (rec["enabled"].as_bool(), rec["value"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(rec["metadata"]["payload"], "{\"limit\":10}");
    assert_eq!(rec["reason"]["description"], "Matched condition set 1");
    // Sent properties override stored ones.
    let r = flags_for("u1", json!({"person_properties": {"plan": "free"}}));
    assert_eq!(r["flags"]["pro-only"]["enabled"], false);
    let r = flags_for(
        "u2",
        json!({"person_properties": {"plan": "pro"}, "flag_keys_to_evaluate": ["pro-only"]}),
    );
    assert_eq!(r["flags"].as_object().unwrap().len(), 1);
    // Legacy shapes.
    let v1 = ok(post_json(
        "/flags/?v=1",
        &json!({"api_key": PHC, "distinct_id": "u1"}),
    ));
    assert_eq!(v1["featureFlags"], json!({"pro-only": true, "off": false}));
    assert_eq!(
        v1["featureFlagPayloads"],
        json!({"pro-only": "{\"limit\":10}"})
    );
    let d1 = ok(post_json(
        "/decide/?v=1",
        &json!({"token": PHC, "distinct_id": "u1"}),
    ));
    assert_eq!(d1["featureFlags"], json!(["pro-only"]));
    let d2 = ok(post_json(
        "/decide/?v=2",
        &json!({"token": PHC, "distinct_id": "u1"}),
    ));
    assert!(d2.get("featureFlagPayloads").is_none());
    let d4 = ok(post_json(
        "/decide/?v=4",
        &json!({"token": PHC, "distinct_id": "u1"}),
    ));
    assert!(d4["flags"]["pro-only"].get("value").is_none());
    err(
        post_json("/flags/?v=4", &json!({"api_key": PHC})),
        400,
        "validation_error",
        "invalid_payload",
    );
    err(
        post_json("/flags/?v=4", &json!({"distinct_id": "x"})),
        401,
        "authentication_error",
        "missing_api_key",
    );
    err(
        post_json(
            "/flags/?v=4",
            &json!({"api_key": "phc_", "distinct_id": "x"}),
        ),
        401,
        "authentication_error",
        "invalid_api_key",
    );
}

#[test]
fn group_flags_need_their_group() {
    setup();
    ok(post_json(
        "/batch/",
        &json!({"api_key": PHC, "batch": [{"event": "$groupidentify", "distinct_id": "u",
        "properties": {"$group_type": "company", "$group_key": "acme", "$group_set": {}}}]}),
    ));
    create_flag(
        json!({"key": "g", "filters": {"aggregation_group_type_index": 0,
        "groups": [{"properties": [{"key": "size", "operator": "gt", "value": 10, "type": "group", "group_type_index": 0}], "rollout_percentage": 100}]}}),
    );
    let r = flags_for("u", json!({}));
    assert_eq!(r["flags"]["g"]["reason"]["code"], "no_group_type");
    let r = flags_for(
        "u",
        json!({"groups": {"company": "acme"}, "group_properties": {"company": {"size": 50}}}),
    );
    assert_eq!(r["flags"]["g"]["enabled"], true);
    let defs = ok(admin(
        "GET",
        &format!("/flags/definitions?token={PHC}&send_cohorts"),
        None,
    ));
    assert_eq!(defs["group_type_mapping"], json!({"0": "company"}));
}

#[test]
fn definitions_with_etag() {
    setup();
    create_flag(json!({"key": "a", "filters": {"groups": [{"rollout_percentage": 30}]}}));
    let r = admin(
        "GET",
        &format!("/api/feature_flag/local_evaluation?token={PHC}&send_cohorts"),
        None,
    );
    assert_eq!(r.status, 200);
    let etag = r.header("etag").unwrap().to_owned();
    let defs = body(&r);
    assert_eq!(defs["flags"][0]["key"], "a");
    assert_eq!(
        defs["flags"][0]["filters"]["groups"][0]["rollout_percentage"],
        30
    );
    assert_eq!(defs["cohorts"], json!({}));
    let again = call::<PostHog>(
        Request::new("GET", &format!("/flags/definitions?token={PHC}"))
            .with_bearer(PHX)
            .with_header("if-none-match", etag.clone()),
    );
    assert_eq!(again.status, 304);
    create_flag(json!({"key": "b"}));
    let changed = call::<PostHog>(
        Request::new("GET", &format!("/flags/definitions?token={PHC}"))
            .with_bearer(PHX)
            .with_header("if-none-match", etag),
    );
    assert_eq!(changed.status, 200);
    err(
        admin("GET", "/flags/definitions", None),
        400,
        "validation_error",
        "required",
    );
    err(
        call::<PostHog>(Request::new(
            "GET",
            &format!("/flags/definitions?token={PHC}"),
        )),
        401,
        "authentication_error",
        "not_authenticated",
    );
}

#[test]
fn remote_config_returns_the_payload() {
    setup();
    create_flag(json!({"key": "cfg", "is_remote_configuration": true,
        "filters": {"groups": [{"rollout_percentage": 100}], "payloads": {"true": "{\"color\":\"red\"}"}}}));
    let r = ok(admin(
        "GET",
        &format!("/api/projects/@current/feature_flags/cfg/remote_config?token={PHC}"),
        None,
    ));
    assert_eq!(r, json!("{\"color\":\"red\"}"));
    err(
        admin(
            "GET",
            &format!("/api/projects/@current/feature_flags/nope/remote_config?token={PHC}"),
            None,
        ),
        404,
        "invalid_request",
        "not_found",
    );
}

#[test]
fn unknown_routes_and_methods() {
    setup();
    err(
        call::<PostHog>(Request::new("GET", "/nope")),
        404,
        "invalid_request",
        "not_found",
    );
    let b = err(
        call::<PostHog>(Request::new("PUT", "/batch/")),
        405,
        "invalid_request",
        "method_not_allowed",
    );
    assert_eq!(b["detail"], "Method \"PUT\" not allowed.");
}

fn v1(body: &Value, key: Option<&str>, sdk_info: Option<&str>) -> Response {
    let mut req = Request::new("POST", "/i/v1/analytics/events")
        .with_header("content-type", "application/json")
        .with_body(body.to_string());
    if let Some(k) = key {
        req = req.with_bearer(k);
    }
    if let Some(s) = sdk_info {
        req = req.with_header("posthog-sdk-info", s);
    }
    call::<PostHog>(req)
}

#[test]
fn capture_v1_answers_per_event() {
    setup();
    let ok_uuid = "22222222-2222-4222-8222-222222222222";
    let bad_uuid = "33333333-3333-4333-8333-333333333333";
    let body = json!({"created_at": "2023-11-14T22:13:20+00:00", "batch": [
        {"event": "v1", "uuid": ok_uuid, "distinct_id": "d", "timestamp": "2023-11-14T22:13:19+00:00",
         "options": {"process_person_profile": true}, "session_id": "s1",
         "properties": {"$set": {"k": 1}}},
        {"event": "", "uuid": bad_uuid, "distinct_id": "d", "timestamp": "2023-11-14T22:13:19+00:00",
         "properties": {}},
    ]});
    let r = ok(v1(&body, Some(PHC), Some("posthog-python/7.91.1")));
    assert_eq!(r["results"][ok_uuid]["result"], "ok");
    assert_eq!(r["results"][bad_uuid]["result"], "drop");
    assert!(r["results"][bad_uuid]["details"].as_str().is_some());
    let stored = events("event=v1");
    assert_eq!(stored.len(), 1);
    let props = &stored[0]["properties"];
    assert_eq!(
        (props["$lib"].as_str(), props["$lib_version"].as_str()),
        (Some("posthog-python"), Some("7.91.1"))
    );
    assert_eq!(props["$session_id"], "s1");
    assert_eq!(
        stored[0]["timestamp"],
        wt_sdk::datetime::format_millis(T0 - 1000)
    );
    let person = ok(admin(
        "GET",
        &format!("/api/projects/{PHC}/persons/?distinct_id=d"),
        None,
    ));
    assert_eq!(person["results"][0]["properties"], json!({"k": 1}));
    // A retry of the same event is acknowledged and not stored twice.
    let again = ok(v1(&body, Some(PHC), Some("posthog-python/7.91.1")));
    assert_eq!(again["results"][ok_uuid]["result"], "ok");
    assert_eq!(events("event=v1").len(), 1);
    // Gzipped bodies.
    let packed = compression::gzip(
        json!({"created_at": "2023-11-14T22:13:20Z", "batch": [
        {"event": "gz1", "uuid": "44444444-4444-4444-8444-444444444444", "distinct_id": "d",
         "timestamp": "2023-11-14T22:13:20Z", "properties": {}}]})
        .to_string()
        .as_bytes(),
    );
    let r = call::<PostHog>(
        Request::new("POST", "/i/v1/analytics/events")
            .with_bearer(PHC)
            .with_header("posthog-sdk-info", "x/1")
            .with_header("content-encoding", "gzip")
            .with_body(packed),
    );
    ok(r);
    assert_eq!(events("event=gz1").len(), 1);
}

#[test]
fn capture_v1_errors() {
    setup();
    let body = json!({"created_at": "2023-11-14T22:13:20Z", "batch": []});
    err(
        v1(&body, None, Some("x/1")),
        401,
        "authentication_error",
        "missing_api_key",
    );
    err(
        v1(&body, Some("phx_nope"), Some("x/1")),
        401,
        "authentication_error",
        "invalid_api_key",
    );
    err(
        v1(&body, Some(PHC), None),
        400,
        "validation_error",
        "missing_sdk_info",
    );
    err(
        v1(&json!({"batch": []}), Some(PHC), Some("x/1")),
        400,
        "validation_error",
        "invalid_payload",
    );
    err(
        v1(
            &json!({"created_at": "2023-11-14T22:13:20Z", "batch": [{"event": "a"}]}),
            Some(PHC),
            Some("x/1"),
        ),
        400,
        "validation_error",
        "invalid_payload",
    );
    let zstd = call::<PostHog>(
        Request::new("POST", "/i/v1/analytics/events")
            .with_bearer(PHC)
            .with_header("posthog-sdk-info", "x/1")
            .with_header("content-encoding", "zstd")
            .with_body("x"),
    );
    err(zstd, 415, "validation_error", "unsupported_encoding");
    assert_eq!(
        ok(v1(&body, Some(PHC), Some("x/1"))),
        json!({"results": {}})
    );
}

fn create_cohort(def: Value) -> Value {
    let r = admin("POST", &format!("/api/projects/{PHC}/cohorts/"), Some(def));
    assert_eq!(r.status, 201, "{}", r.body_text());
    body(&r)
}

#[test]
fn cohorts_target_flags() {
    setup();
    let corp = create_cohort(
        json!({"name": "Corp", "filters": {"properties": {"type": "OR", "values": [
            {"type": "AND", "values": [{"key": "email", "operator": "icontains", "value": "@corp.io", "type": "person"}]},
            {"type": "AND", "values": [{"key": "plan", "value": "enterprise", "type": "person"},
                                       {"key": "churned", "operator": "is_set", "type": "person", "negation": true}]},
        ]}}}),
    );
    let id = corp["id"].as_u64().unwrap();
    assert_eq!(corp["is_static"], false);
    create_flag(
        json!({"key": "corp-only", "filters": {"groups": [{"properties": [
        {"key": "id", "type": "cohort", "value": id, "operator": "in"}]}]}}),
    );
    create_flag(
        json!({"key": "not-corp", "filters": {"groups": [{"properties": [
        {"key": "id", "type": "cohort", "value": id, "operator": "not_in"}]}]}}),
    );
    let eval = |props: Value| {
        let r = flags_for("u", json!({"person_properties": props}));
        (
            r["flags"]["corp-only"]["enabled"].as_bool().unwrap(),
            r["flags"]["not-corp"]["enabled"].as_bool().unwrap(),
        )
    };
    assert_eq!(eval(json!({"email": "a@CORP.io"})), (true, false));
    assert_eq!(eval(json!({"plan": "enterprise"})), (true, false));
    assert_eq!(
        eval(json!({"plan": "enterprise", "churned": true})),
        (false, true)
    );
    assert_eq!(eval(json!({"email": "a@home.io"})), (false, true));
    // Definitions carry the dynamic cohort for local evaluation.
    let defs = ok(admin(
        "GET",
        &format!("/flags/definitions?token={PHC}"),
        None,
    ));
    assert_eq!(defs["cohorts"][id.to_string()]["type"], "OR");
    // Soft delete only.
    let path = format!("/api/projects/{PHC}/cohorts/{id}/");
    err(
        admin("DELETE", &path, None),
        405,
        "invalid_request",
        "method_not_allowed",
    );
    ok(admin("PATCH", &path, Some(json!({"deleted": true}))));
    // A filter on a deleted cohort matches nobody, whichever its operator.
    assert_eq!(eval(json!({"email": "a@corp.io"})), (false, false));
    err(
        admin("GET", &path, None),
        404,
        "invalid_request",
        "not_found",
    );
    err(
        admin(
            "POST",
            &format!("/api/projects/{PHC}/cohorts/"),
            Some(json!({"name": "x"})),
        ),
        400,
        "validation_error",
        "invalid_input",
    );
    err(
        admin(
            "POST",
            &format!("/api/projects/{PHC}/cohorts/"),
            Some(json!({"name": "x", "filters": {"properties": {"type": "XOR", "values": []}}})),
        ),
        400,
        "validation_error",
        "invalid_input",
    );
    err(
        admin(
            "POST",
            &format!("/api/projects/{PHC}/cohorts/"),
            Some(json!({"filters": {}})),
        ),
        400,
        "validation_error",
        "required",
    );
}

#[test]
fn static_cohorts_are_server_only() {
    setup();
    ok(post_json(
        "/batch/",
        &json!({"api_key": PHC, "batch": [{"event": "x", "distinct_id": "vip"}, {"event": "x", "distinct_id": "pleb"}]}),
    ));
    let vip = ok(admin(
        "GET",
        &format!("/api/projects/{PHC}/persons/?distinct_id=vip"),
        None,
    ))["results"][0]["uuid"]
        .clone();
    let cohort = create_cohort(json!({"name": "VIPs", "is_static": true}));
    let id = cohort["id"].as_u64().unwrap();
    let add = format!("/api/projects/{PHC}/cohorts/{id}/add_persons_to_static_cohort/");
    ok(admin("PATCH", &add, Some(json!({"person_ids": [vip]}))));
    err(
        admin("PATCH", &add, Some(json!({"person_ids": ["nope"]}))),
        400,
        "validation_error",
        "invalid_input",
    );
    assert_eq!(
        ok(admin(
            "GET",
            &format!("/api/projects/{PHC}/cohorts/{id}/"),
            None
        ))["count"],
        1
    );
    create_flag(
        json!({"key": "vip", "filters": {"groups": [{"properties": [{"key": "id", "type": "cohort", "value": id}]}]}}),
    );
    assert_eq!(flags_for("vip", json!({}))["flags"]["vip"]["enabled"], true);
    assert_eq!(
        flags_for("pleb", json!({}))["flags"]["vip"]["enabled"],
        false
    );
    let defs = ok(admin(
        "GET",
        &format!("/flags/definitions?token={PHC}"),
        None,
    ));
    assert_eq!(defs["cohorts"], json!({}));
}

#[test]
fn flag_dependencies_and_cycles() {
    setup();
    let base = create_flag(
        json!({"key": "base", "filters": {"groups": [{"properties": [{"key": "beta", "value": "yes", "type": "person"}]}]}}),
    );
    create_flag(
        json!({"key": "multi", "filters": {"groups": [{"rollout_percentage": 100}],
        "multivariate": {"variants": [{"key": "only", "rollout_percentage": 100}]}}}),
    );
    create_flag(
        json!({"key": "needs-base", "filters": {"groups": [{"properties": [
        {"key": base["id"].to_string(), "type": "flag", "value": true, "operator": "flag_evaluates_to"}]}]}}),
    );
    create_flag(
        json!({"key": "needs-variant", "filters": {"groups": [{"properties": [
        {"key": "multi", "type": "flag", "value": "only", "operator": "flag_evaluates_to"},
        {"key": "needs-base", "type": "flag", "value": false, "operator": "flag_evaluates_to"}]}]}}),
    );
    let on = flags_for("u", json!({"person_properties": {"beta": "yes"}}));
    assert_eq!(on["flags"]["needs-base"]["enabled"], true);
    assert_eq!(on["flags"]["needs-variant"]["enabled"], false);
    let off = flags_for("u", json!({"person_properties": {"beta": "no"}}));
    assert_eq!(off["flags"]["needs-base"]["enabled"], false);
    assert_eq!(off["flags"]["needs-variant"]["enabled"], true);
    let defs = ok(admin(
        "GET",
        &format!("/flags/definitions?token={PHC}"),
        None,
    ));
    let by_key = |k: &str| {
        defs["flags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["key"] == k)
            .unwrap()
            .clone()
    };
    let dep = &by_key("needs-base")["filters"]["groups"][0]["properties"][0];
    assert_eq!(
        (dep["key"].as_str(), dep["dependency_chain"].clone()),
        (Some("base"), json!(["base"]))
    );
    let chain =
        &by_key("needs-variant")["filters"]["groups"][0]["properties"][1]["dependency_chain"];
    assert_eq!(chain, &json!(["base", "needs-base"]));
    // A cycle never matches and has an empty chain.
    create_flag(
        json!({"key": "ping", "filters": {"groups": [{"properties": [
        {"key": "pong", "type": "flag", "value": true, "operator": "flag_evaluates_to"}]}]}}),
    );
    create_flag(
        json!({"key": "pong", "filters": {"groups": [{"properties": [
        {"key": "ping", "type": "flag", "value": true, "operator": "flag_evaluates_to"}]}]}}),
    );
    let r = flags_for("u", json!({}));
    assert_eq!(
        (
            r["flags"]["ping"]["enabled"].as_bool(),
            r["flags"]["pong"]["enabled"].as_bool()
        ),
        (Some(false), Some(false))
    );
    let defs = ok(admin(
        "GET",
        &format!("/flags/definitions?token={PHC}"),
        None,
    ));
    let ping = defs["flags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "ping")
        .unwrap()
        .clone();
    assert_eq!(
        ping["filters"]["groups"][0]["properties"][0]["dependency_chain"],
        json!([])
    );
}

#[test]
fn holdouts_come_before_conditions() {
    // Computed with the SDK's `feature_flags._holdout_hash`.
    assert_eq!(
        crate::eval::holdout_hash("some_distinct_id"),
        0.7270002403585725
    );
    let all = flag(
        json!({"groups": [{"rollout_percentage": 100}], "holdout": {"id": 7, "exclusion_percentage": 100}}),
    );
    let o = evaluate(&all, &subject("anyone", json!({})), &Context::default());
    assert_eq!(
        (o.enabled, o.variant.as_deref(), o.reason),
        (true, Some("holdout-7"), Reason::HoldoutConditionValue)
    );
    let some = flag(
        json!({"groups": [{"rollout_percentage": 100}], "holdout": {"id": 3, "exclusion_percentage": 30}}),
    );
    let mut held = 0;
    for i in 0..200 {
        let id = format!("h{i}");
        let o = evaluate(&some, &subject(&id, json!({})), &Context::default());
        let in_holdout = crate::eval::holdout_hash(&id) <= 0.3;
        assert_eq!(
            o.variant.as_deref() == Some("holdout-3"),
            in_holdout,
            "{id}"
        );
        held += usize::from(in_holdout);
        assert!(o.enabled);
    }
    assert!((30..90).contains(&held), "{held}");
    setup();
    err(
        admin(
            "POST",
            &format!("/api/projects/{PHC}/feature_flags/"),
            Some(json!({"key": "h", "filters": {"holdout": {"id": "x"}}})),
        ),
        400,
        "validation_error",
        "invalid_input",
    );
}

#[test]
fn experience_continuity_keeps_the_anonymous_bucket() {
    setup();
    create_flag(
        json!({"key": "sticky", "ensure_experience_continuity": true,
        "filters": {"groups": [{"rollout_percentage": 100}],
            "multivariate": {"variants": [{"key": "a", "rollout_percentage": 50}, {"key": "b", "rollout_percentage": 50}]}}}),
    );
    create_flag(json!({"key": "loose",
        "filters": {"groups": [{"rollout_percentage": 100}],
            "multivariate": {"variants": [{"key": "a", "rollout_percentage": 50}, {"key": "b", "rollout_percentage": 50}]}}}));
    let variant = |id: &str| {
        if hash("sticky", id, "variant") < 0.5 {
            "a"
        } else {
            "b"
        }
    };
    // Pick an anonymous id and a user id that land in different variants.
    let anon = (0..100)
        .map(|i| format!("anon-{i}"))
        .find(|a| variant(a) != variant("user-1"))
        .unwrap();
    assert_eq!(
        flags_for(&anon, json!({}))["flags"]["sticky"]["variant"],
        variant(&anon)
    );
    // On login the SDK sends the old id along: the user keeps its variant,
    // and keeps it on later requests without it.
    let r = flags_for("user-1", json!({"$anon_distinct_id": anon}));
    assert_eq!(r["flags"]["sticky"]["variant"], variant(&anon));
    let loose = if hash("loose", "user-1", "variant") < 0.5 {
        "a"
    } else {
        "b"
    };
    assert_eq!(r["flags"]["loose"]["variant"], loose);
    assert_eq!(
        flags_for("user-1", json!({}))["flags"]["sticky"]["variant"],
        variant(&anon)
    );
    // A later anonymous id does not move it again.
    let r = flags_for("user-1", json!({"$anon_distinct_id": "someone-else"}));
    assert_eq!(r["flags"]["sticky"]["variant"], variant(&anon));
}

#[test]
fn cors_for_browsers() {
    setup();
    let pre = call::<PostHog>(
        Request::new("OPTIONS", "/e/")
            .with_header("origin", "https://app.example")
            .with_header("access-control-request-headers", "content-type"),
    );
    assert_eq!(pre.status, 200);
    assert_eq!(
        pre.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(
        pre.header("access-control-allow-headers"),
        Some("content-type")
    );
    let r = call::<PostHog>(
        Request::new("POST", "/flags/?v=2")
            .with_header("origin", "https://app.example")
            .with_body(json!({"token": PHC, "distinct_id": "x"}).to_string()),
    );
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    let plain = post_json(
        "/batch/",
        &json!({"api_key": PHC, "batch": [{"event": "a", "distinct_id": "b"}]}),
    );
    assert_eq!(plain.header("access-control-allow-origin"), Some("*"));
}

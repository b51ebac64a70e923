//! The embedding API, as a Rust integration test would use it.

use bytes::Bytes;
use wt_host::{Host, ServeConfig};
use wt_tests::{json, twin_path};

fn request(method: &str, uri: &str, body: &str) -> http::Request<Bytes> {
    http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Bytes::from(body.to_owned()))
        .unwrap()
}

fn body(response: &http::Response<Bytes>) -> serde_json::Value {
    json(std::str::from_utf8(response.body()).unwrap())
}

async fn host_with_hello() -> Host {
    let cache = std::env::temp_dir().join("wt-tests-embed-cache");
    let host = Host::builder().cache_dir(Some(cache)).build().unwrap();
    let info = host.add_twin_file(twin_path("hello")).await.unwrap();
    assert_eq!(info.name, "hello");
    assert_eq!(info.default_port, 4110);
    host
}

#[tokio::test]
async fn in_process_calls_need_no_socket_and_keep_state() {
    let host = host_with_hello().await;
    let created = host
        .handle(
            "hello",
            request(
                "POST",
                "/items",
                "name=widget&metadata[color]=red&tags[]=a&tags[]=b",
            ),
        )
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let item = body(&created);
    let id = item["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("item_"), "{id}");
    assert_eq!(item["metadata"]["color"], "red");
    assert_eq!(item["tags"], serde_json::json!(["a", "b"]));

    let fetched = host
        .handle("hello", request("GET", &format!("/items/{id}"), ""))
        .await
        .unwrap();
    assert_eq!(body(&fetched)["name"], "widget");

    host.reset("hello").await.unwrap();
    let gone = host
        .handle("hello", request("GET", &format!("/items/{id}"), ""))
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    assert_eq!(body(&gone)["error"]["code"], "resource_missing");
}

#[tokio::test]
async fn a_trap_in_process_is_the_same_500_as_over_http() {
    let host = host_with_hello().await;
    let trapped = host
        .handle("hello", request("GET", "/trap", ""))
        .await
        .unwrap();
    assert_eq!(trapped.status(), 500);
    assert_eq!(body(&trapped)["error"]["code"], "twin_trapped");
    let next = host.handle("hello", request("GET", "/", "")).await.unwrap();
    assert_eq!(next.status(), 200);
}

#[tokio::test]
async fn unknown_twin_is_an_error_not_a_panic() {
    let host = host_with_hello().await;
    let err = host
        .handle("nope", request("GET", "/", ""))
        .await
        .unwrap_err();
    assert!(matches!(err, wt_host::Error::NoSuchTwin(ref name) if name == "nope"));
    assert!(host.reset("nope").await.is_err());
}

#[tokio::test]
async fn serve_on_ephemeral_ports_gives_base_urls_and_shuts_down_cleanly() {
    let host = host_with_hello().await;
    let running = host.serve(ServeConfig::ephemeral()).await.unwrap();
    let base = running.base_url("hello").unwrap();
    assert_ne!(running.twin_addr("hello").unwrap().port(), 0);
    let client = reqwest::Client::new();
    let response = client.post(format!("{base}/counter")).send().await.unwrap();
    assert_eq!(json(&response.text().await.unwrap())["value"], 1);

    // The same state is visible in-process.
    let counter = host
        .handle("hello", request("GET", "/counter", ""))
        .await
        .unwrap();
    assert_eq!(body(&counter)["value"], 1);

    let addr = running.addr();
    running.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the listener is closed after shutdown"
    );
}

#[tokio::test]
async fn loading_the_same_name_twice_is_refused() {
    let host = host_with_hello().await;
    let err = host.add_twin_file(twin_path("hello")).await.unwrap_err();
    assert!(err.to_string().contains("already loaded"), "{err}");
    let copy = host
        .add_twin_file_as("hello2", twin_path("hello"))
        .await
        .unwrap();
    assert_eq!(copy.name, "hello2");
    assert_eq!(copy.described_name, "hello");
    let bad = host
        .add_twin_file_as("_wt", twin_path("hello"))
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("not a usable twin name"), "{bad}");
}

#[tokio::test]
async fn the_control_plane_answers_in_process_too() {
    let host = host_with_hello().await;
    let control = |method: &str, uri: &str, body: &str| {
        http::Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(Bytes::from(body.to_owned()))
            .unwrap()
    };
    host.handle("hello", request("POST", "/counter", ""))
        .await
        .unwrap();
    let listed = host.control(control("GET", "/_wt/twins", "")).await;
    assert_eq!(listed.status(), 200);
    let twins = body(&listed);
    assert_eq!(twins["twins"][0]["name"], "hello");
    assert_eq!(twins["twins"][0]["urls"]["own"], serde_json::Value::Null);
    // A fault, then a reset that clears it and the counter.
    let fault = host
        .control(control(
            "POST",
            "/_wt/twins/hello/faults",
            r#"{"method": "*", "path": "/counter", "status": 503, "count": 1}"#,
        ))
        .await;
    assert_eq!(fault.status(), 201, "{}", body(&fault));
    let faulted = host
        .handle("hello", request("GET", "/counter", ""))
        .await
        .unwrap();
    assert_eq!(faulted.status(), 503);
    let reset = host
        .control(control("POST", "/_wt/twins/hello/reset", ""))
        .await;
    assert_eq!(reset.status(), 200);
    let counter = host
        .handle("hello", request("GET", "/counter", ""))
        .await
        .unwrap();
    assert_eq!(body(&counter)["value"], 0);
    let unknown = host
        .control(control("GET", "/_wt/twins/nope/state", ""))
        .await;
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn a_tenant_handle_is_a_world_of_its_own_until_dropped() {
    let host = host_with_hello().await;
    let tenant = host.tenant(wt_host::TenantRequest::default()).unwrap();
    for _ in 0..2 {
        let counted = tenant
            .handle("hello", request("POST", "/counter", ""))
            .await
            .unwrap();
        assert_eq!(counted.status(), 200);
    }
    let default = host
        .handle("hello", request("GET", "/counter", ""))
        .await
        .unwrap();
    assert_eq!(body(&default)["value"], 0);

    tenant.clock().advance(86_400_000);
    let tenant_time = tenant
        .handle("hello", request("GET", "/time", ""))
        .await
        .unwrap();
    let default_time = host
        .handle("hello", request("GET", "/time", ""))
        .await
        .unwrap();
    let ahead = body(&tenant_time)["now_millis"].as_u64().unwrap()
        - body(&default_time)["now_millis"].as_u64().unwrap();
    assert!(ahead >= 86_300_000, "{ahead}");

    tenant.reset().await.unwrap();
    let counter = tenant
        .handle("hello", request("GET", "/counter", ""))
        .await
        .unwrap();
    assert_eq!(body(&counter)["value"], 0);

    let id = tenant.id().to_owned();
    assert_eq!(host.tenants().len(), 1);
    drop(tenant);
    assert!(host.tenants().is_empty());
    let gone = host
        .handle_in(&id, "hello", request("GET", "/counter", ""))
        .await;
    assert!(
        matches!(gone, Err(wt_host::Error::NoSuchTenant(_))),
        "{gone:?}"
    );
}

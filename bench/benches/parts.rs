//! The pieces under a request, each alone: compiling and loading a twin,
//! the sdk's router and form parser, the store through `hello`'s routes, and
//! HTTP on loopback against the bare hyper baseline (`baseline-hyper`).
//!
//! Needs `target/twins/hello.wasm` (`cargo xtask build-twins`). Run:
//! `cargo bench -p wt-bench --bench parts`.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};

fn hello_wasm() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/twins/hello.wasm");
    assert!(path.is_file(), "run `cargo xtask build-twins` first");
    path
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// Compile from bytes (a cold cache) and load from the precompiled cache.
fn loading(c: &mut Criterion) {
    let rt = runtime();
    let wasm = hello_wasm();
    let mut group = c.benchmark_group("load");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.bench_function("compile hello (no cache)", |b| {
        b.to_async(&rt).iter(|| async {
            let host = wt_host::Host::builder().cache_dir(None).build().unwrap();
            host.add_twin_file(&wasm).await.unwrap();
        });
    });
    let cache = std::env::temp_dir().join(format!("wt-bench-cache-{}", std::process::id()));
    rt.block_on(async {
        let host = wt_host::Host::builder()
            .cache_dir(Some(cache.clone()))
            .build()
            .unwrap();
        host.add_twin_file(&wasm).await.unwrap();
    });
    group.bench_function("new host + load hello from the precompiled cache", |b| {
        b.to_async(&rt).iter(|| async {
            let host = wt_host::Host::builder()
                .cache_dir(Some(cache.clone()))
                .build()
                .unwrap();
            host.add_twin_file(&wasm).await.unwrap();
        });
    });
    // Another twin from bytes already loaded: the code is shared.
    let host = wt_host::Host::builder()
        .cache_dir(Some(cache.clone()))
        .build()
        .unwrap();
    let n = std::sync::atomic::AtomicU64::new(0);
    group.bench_function("add another hello (shared code)", |b| {
        b.to_async(&rt).iter(|| async {
            let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            host.add_twin_file_as(&format!("h{i}"), &wasm)
                .await
                .unwrap();
        });
    });
    group.finish();
    let _ = std::fs::remove_dir_all(cache);
}

/// The sdk's router and Stripe-style form parser, natively.
fn sdk_parts(c: &mut Criterion) {
    use wt_sdk::{Error, Request, Response, Router};
    fn ok(_: &Request) -> Result<Response, Error> {
        Ok(Response::no_content())
    }
    // Built once, as twins do (a `LazyLock` per instance): the size and
    // shape of the Stripe twin's table, ninety routes over thirty resources.
    let resources: Vec<&'static str> = (0..30)
        .map(|i| &*Box::leak(format!("/v1/resource_{i:02}").into_boxed_str()))
        .collect();
    let mut router = Router::new();
    for base in &resources {
        let one: &'static str = Box::leak(format!("{base}/{{id}}").into_boxed_str());
        let action: &'static str = Box::leak(format!("{base}/{{id}}/confirm").into_boxed_str());
        router = router.get(base, ok).post(one, ok).post(action, ok);
    }
    let mut group = c.benchmark_group("sdk");
    group.bench_function("router: 90 routes, match the 2nd", |b| {
        b.iter(|| {
            let response = router.route(Request::new("POST", "/v1/resource_00/id_123"));
            assert_eq!(response.status, 204);
        });
    });
    group.bench_function("router: 90 routes, match the 90th", |b| {
        b.iter(|| {
            let response = router.route(Request::new("POST", "/v1/resource_29/id_123/confirm"));
            assert_eq!(response.status, 204);
        });
    });
    let body = "email=a%40example.com&name=Jenny+Rosen&metadata[plan]=pro&metadata[seats]=5\
                &expand[]=default_source&items[0][price]=price_1&items[0][quantity]=2";
    group.bench_function("form: a 7-field nested Stripe body", |b| {
        b.iter(|| wt_sdk::form::parse(std::hint::black_box(body)).unwrap());
    });
    group.finish();
}

/// The store through `hello`: one read, a read and a write, a 100-item scan.
fn store_via_hello(c: &mut Criterion) {
    let rt = runtime();
    let host = rt.block_on(async {
        let host = wt_host::Host::builder().cache_dir(None).build().unwrap();
        host.add_twin_file(hello_wasm()).await.unwrap();
        for i in 0..100 {
            let request = http::Request::post("/items")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Bytes::from(format!("name=item{i}")))
                .unwrap();
            assert_eq!(host.handle("hello", request).await.unwrap().status(), 200);
        }
        host
    });
    let mut group = c.benchmark_group("store_via_hello");
    for (label, method, uri) in [
        ("get: GET /counter", "GET", "/counter"),
        ("get+set: POST /counter", "POST", "/counter"),
        ("scan 100: GET /items?limit=100", "GET", "/items?limit=100"),
    ] {
        group.bench_function(label, |b| {
            b.to_async(&rt).iter(|| async {
                let request = http::Request::builder()
                    .method(method)
                    .uri(uri)
                    .body(Bytes::new())
                    .unwrap();
                assert_eq!(host.handle("hello", request).await.unwrap().status(), 200);
            });
        });
    }
    group.finish();
}

/// One keep-alive client over loopback: the bare hyper baseline, then
/// wt-host serving `hello`, both in this process on the same runtime.
fn http_loopback(c: &mut Criterion) {
    let rt = runtime();
    let baseline = PathBuf::from(env!("CARGO_BIN_EXE_baseline-hyper"));
    let mut child = std::process::Command::new(baseline)
        .arg("127.0.0.1:0")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let line = {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        line
    };
    let baseline_url = line.split_whitespace().last().unwrap().to_owned();
    let (running, _host) = rt.block_on(async {
        let host = wt_host::Host::builder().cache_dir(None).build().unwrap();
        host.add_twin_file(hello_wasm()).await.unwrap();
        let running = host.serve(wt_host::ServeConfig::ephemeral()).await.unwrap();
        (running, host)
    });
    let wt_url = running.base_url("hello").unwrap();
    let client = reqwest::Client::new();
    let mut group = c.benchmark_group("http_loopback");
    for (label, url) in [
        ("bare hyper GET /", format!("{baseline_url}/")),
        ("wt-host hello GET /", format!("{wt_url}/")),
    ] {
        group.bench_function(label, |b| {
            b.to_async(&rt).iter(|| async {
                let response = client.get(&url).send().await.unwrap();
                assert_eq!(response.status(), 200);
                response.bytes().await.unwrap();
            });
        });
    }
    group.finish();
    let _ = child.kill();
    let _ = child.wait();
    rt.block_on(running.shutdown());
}

criterion_group!(benches, loading, sdk_parts, store_via_hello, http_loopback);
criterion_main!(benches);

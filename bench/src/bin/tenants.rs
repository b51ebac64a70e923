//! What tenants cost, in-process on the six vendor twins (issue 19's
//! benchmarks; figures in bench/README.md):
//!
//! 1. create-and-first-request: make a tenant of all six twins, send its
//!    Stripe twin one request, remove it (median and p99 of warm rounds);
//! 2. leaks: RSS after 10,000 create/request/delete cycles against the
//!    start;
//! 3. memory: RSS with 1,000 live tenants whose six twins each served a
//!    request;
//! 4. throughput: 32 callers on two worker threads against one tenant, and
//!    spread over 100 tenants.
//!
//! `cargo run --release -p wt-bench --bin tenants [TWINS_DIR]` (default
//! `target/twins`, built by `cargo xtask build-twins`). Linux only (RSS is
//! read from /proc).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use wt_host::{Host, Limits, TenantRequest};

const TWINS: [&str; 6] = ["stripe", "twilio", "clerk", "resend", "posthog", "logodev"];

/// A request each twin answers with 200 (its list or health route), so
/// every twin of a tenant has served one.
fn first_request(twin: &str) -> http::Request<Bytes> {
    let (path, auth) = match twin {
        "stripe" => ("/v1/customers?limit=1", "Bearer sk_test_bench"),
        "twilio" => (
            "/2010-04-01/Accounts/AC00000000000000000000000000000000/Messages.json",
            // base64("AC000…:token")
            "Basic QUMwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDp0b2tlbg==",
        ),
        "clerk" => ("/v1/users", "Bearer sk_test_bench"),
        "resend" => ("/emails", "Bearer re_bench"),
        "posthog" => ("/api/projects/phc_bench/feature_flags/", "Bearer phx_bench"),
        _ => ("/stripe.com?token=pk_bench&size=16", ""),
    };
    let mut request = http::Request::get(path);
    if !auth.is_empty() {
        request = request.header("authorization", auth);
    }
    request.body(Bytes::new()).expect("a valid request")
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

async fn serve_one(host: &Host, tenant: &str, twin: &str) {
    let response = host
        .handle_in(tenant, twin, first_request(twin))
        .await
        .expect("the tenant exists");
    assert!(
        response.status().is_success(),
        "{twin}: {} {:?}",
        response.status(),
        response.body()
    );
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn create_and_first_request(host: &Host) {
    let mut create = Vec::new();
    let mut with_request = Vec::new();
    for round in 0..1_200 {
        let started = Instant::now();
        let summary = host
            .create_tenant(TenantRequest::default())
            .expect("a tenant");
        let created = started.elapsed();
        serve_one(host, &summary.id, "stripe").await;
        let served = started.elapsed();
        host.delete_tenant(&summary.id).await.expect("delete");
        if round >= 200 {
            create.push(created);
            with_request.push(served);
        }
    }
    create.sort();
    with_request.sort();
    println!(
        "create a tenant of six twins: median {:?}, p99 {:?}",
        percentile(&create, 0.5),
        percentile(&create, 0.99)
    );
    println!(
        "create + first request (stripe GET /v1/customers): median {:?}, p99 {:?}",
        percentile(&with_request, 0.5),
        percentile(&with_request, 0.99)
    );
}

async fn thousand_tenants(host: &Host) {
    let before = rss_mib();
    let mut ids = Vec::new();
    for _ in 0..1_000 {
        let summary = host
            .create_tenant(TenantRequest::default())
            .expect("a tenant");
        for twin in TWINS {
            serve_one(host, &summary.id, twin).await;
        }
        ids.push(summary.id);
    }
    let after = rss_mib();
    println!(
        "1,000 live tenants, 6,000 twins each having served a request: RSS {before:.0} -> {after:.0} MiB ({:.0} KiB per tenant)",
        (after - before) * 1024.0 / 1000.0
    );
    for id in ids {
        host.delete_tenant(&id).await.expect("delete");
    }
}

/// Requests per second from `callers` tasks for `secs`, spread round-robin
/// over `tenants` and three of their twins.
async fn throughput(host: &Host, tenants: &[String], callers: usize, secs: u64) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for caller in 0..callers {
        let host = host.clone();
        let tenants = tenants.to_vec();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = caller;
            while Instant::now() < stop {
                let tenant = &tenants[i % tenants.len()];
                let twin = ["stripe", "clerk", "resend"][i % 3];
                let response = host
                    .handle_in(tenant, twin, first_request(twin))
                    .await
                    .expect("the tenant exists");
                assert!(response.status().is_success());
                done.fetch_add(1, Ordering::Relaxed);
                i += 7;
            }
        }));
    }
    for task in tasks {
        task.await.expect("a caller");
    }
    done.load(Ordering::Relaxed) as f64 / secs as f64
}

async fn scaling(host: &Host) {
    let make = |n: usize| -> Vec<String> {
        (0..n)
            .map(|_| {
                host.create_tenant(TenantRequest::default())
                    .expect("a tenant")
                    .id
            })
            .collect()
    };
    let one = make(1);
    let hundred = make(100);
    // Warm every tenant's three twins first.
    for id in one.iter().chain(&hundred) {
        for twin in ["stripe", "clerk", "resend"] {
            serve_one(host, id, twin).await;
        }
    }
    let alone = throughput(host, &one, 32, 5).await;
    let spread = throughput(host, &hundred, 32, 5).await;
    println!(
        "mixed load (stripe, clerk, resend lists), 32 callers, 2 worker threads: one tenant {alone:.0} req/s, 100 tenants {spread:.0} req/s ({:.2}x)",
        spread / alone
    );
    for id in one.iter().chain(&hundred) {
        host.delete_tenant(id).await.expect("delete");
    }
}

async fn cycles(host: &Host) {
    // Settle the allocator and the instance pool first.
    for _ in 0..500 {
        let summary = host
            .create_tenant(TenantRequest::default())
            .expect("a tenant");
        serve_one(host, &summary.id, "stripe").await;
        host.delete_tenant(&summary.id).await.expect("delete");
    }
    let start = rss_mib();
    for _ in 0..10_000 {
        let summary = host
            .create_tenant(TenantRequest::default())
            .expect("a tenant");
        serve_one(host, &summary.id, "stripe").await;
        host.delete_tenant(&summary.id).await.expect("delete");
    }
    let end = rss_mib();
    println!(
        "10,000 create/request/delete cycles: RSS {start:.0} -> {end:.0} MiB ({:+.1}%)",
        (end / start - 1.0) * 100.0
    );
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/twins"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let mut limits = Limits {
            max_tenants: 2_000,
            ..Limits::default()
        };
        // WARM_INSTANCES=N measures with another warm pool than the
        // default (--warm-instances).
        if let Some(warm) = std::env::var("WARM_INSTANCES")
            .ok()
            .and_then(|w| w.parse().ok())
        {
            limits.warm_instances = warm;
        }
        println!("warm instances: {}", limits.warm_instances);
        let host = Host::builder().limits(limits).build().expect("a host");
        for twin in TWINS {
            host.add_twin_file(dir.join(format!("{twin}.wasm")))
                .await
                .unwrap_or_else(|e| panic!("{e} (run `cargo xtask build-twins`)"));
        }
        println!("loaded the six vendor twins: RSS {:.0} MiB", rss_mib());
        create_and_first_request(&host).await;
        cycles(&host).await;
        thousand_tenants(&host).await;
        scaling(&host).await;
    });
}

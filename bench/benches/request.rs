//! The in-process request path on `hello`, and the same component call on
//! bare wasmtime: the gap between the two groups is what wt's own layers cost.
//!
//! Needs `target/twins/hello.wasm` (`cargo xtask build-twins`), or
//! `WT_TWINS_DIR`. Run: `cargo bench -p wt-bench`.

#![allow(unsafe_code)] // bindgen! output in the baseline module

use std::path::PathBuf;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};

fn twin_wasm(name: &str) -> PathBuf {
    let dir = std::env::var_os("WT_TWINS_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/twins"),
        PathBuf::from,
    );
    let path = dir.join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: run `cargo xtask build-twins` first",
        path.display()
    );
    path
}

fn hello_host(rt: &tokio::runtime::Runtime, warm_instances: u32) -> wt_host::Host {
    rt.block_on(async {
        let limits = wt_host::Limits {
            warm_instances,
            ..wt_host::Limits::default()
        };
        let host = wt_host::Host::builder()
            .cache_dir(None)
            .limits(limits)
            .build()
            .unwrap();
        host.add_twin_file(twin_wasm("hello")).await.unwrap();
        host
    })
}

fn wt_in_process(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let host = hello_host(&rt, wt_host::Limits::default().warm_instances);
    let mut group = c.benchmark_group("in_process");
    group.bench_function("wt/hello GET /", |b| {
        b.to_async(&rt).iter(|| async {
            let request = http::Request::get("/").body(Bytes::new()).unwrap();
            let response = host.handle("hello", request).await.unwrap();
            assert_eq!(response.status(), 200);
        });
    });
    group.bench_function("wt/hello POST /counter", |b| {
        b.to_async(&rt).iter(|| async {
            let request = http::Request::post("/counter").body(Bytes::new()).unwrap();
            let response = host.handle("hello", request).await.unwrap();
            assert_eq!(response.status(), 200);
        });
    });
    // `--warm-instances 0`: what strict isolation costs.
    let fresh = hello_host(&rt, 0);
    group.bench_function("wt/hello GET / (fresh instance each request)", |b| {
        b.to_async(&rt).iter(|| async {
            let request = http::Request::get("/").body(Bytes::new()).unwrap();
            let response = fresh.handle("hello", request).await.unwrap();
            assert_eq!(response.status(), 200);
        });
    });
    group.finish();
}

mod baseline {
    use std::collections::BTreeMap;

    use wasmtime::component::{HasSelf, Linker, ResourceTable};
    use wasmtime::{Config, Engine, InstanceAllocationStrategy, Store};
    use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

    wasmtime::component::bindgen!({
        path: "../wit",
        world: "twin",
        exports: { default: async },
    });

    use wondertwin::twin::{clock, config, license, log, outbound, store, types};

    pub struct State {
        wasi: WasiCtx,
        table: ResourceTable,
        map: BTreeMap<String, Vec<u8>>,
    }

    impl WasiView for State {
        fn ctx(&mut self) -> WasiCtxView<'_> {
            WasiCtxView {
                ctx: &mut self.wasi,
                table: &mut self.table,
            }
        }
    }

    impl store::Host for State {
        fn get(&mut self, key: String) -> Option<Vec<u8>> {
            self.map.get(&key).cloned()
        }
        fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), store::StoreError> {
            self.map.insert(key, value);
            Ok(())
        }
        fn delete(&mut self, key: String) -> bool {
            self.map.remove(&key).is_some()
        }
        fn scan(
            &mut self,
            start: String,
            _end: Option<String>,
            limit: u32,
            _reverse: bool,
        ) -> Vec<store::Entry> {
            self.map
                .range(start..)
                .take(limit as usize)
                .map(|(k, v)| store::Entry {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect()
        }
    }
    impl clock::Host for State {
        fn now_millis(&mut self) -> u64 {
            0
        }
        fn wall_millis(&mut self) -> u64 {
            0
        }
    }
    impl log::Host for State {
        fn log(&mut self, _level: log::Level, _message: String) {}
    }
    impl outbound::Host for State {
        // `hello` sends nothing; the baseline only has to link.
        fn enqueue(
            &mut self,
            _request: outbound::OutboundRequest,
        ) -> Result<String, outbound::OutboundError> {
            Err(outbound::OutboundError::Denied("baseline".into()))
        }
    }
    impl config::Host for State {
        fn get(&mut self, _key: String) -> Option<String> {
            None
        }
    }
    impl license::Host for State {
        fn current(&mut self) -> Option<license::Claims> {
            None
        }
    }
    impl types::Host for State {}

    pub struct Bare {
        engine: Engine,
        pre: TwinPre<State>,
    }

    impl Bare {
        pub fn new(wasm: &[u8]) -> Self {
            let mut config = Config::new();
            config.allocation_strategy(InstanceAllocationStrategy::pooling());
            let engine = Engine::new(&config).unwrap();
            let component = wasmtime::component::Component::new(&engine, wasm).unwrap();
            let mut linker = Linker::new(&engine);
            wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
            Twin::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s).unwrap();
            let pre = TwinPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
            Self { engine, pre }
        }

        fn store(&self) -> Store<State> {
            let state = State {
                wasi: WasiCtx::builder().build(),
                table: ResourceTable::new(),
                map: BTreeMap::new(),
            };
            Store::new(&self.engine, state)
        }

        /// A new store and an instance, no call: the floor under every
        /// request while each request gets a fresh instance.
        pub async fn instantiate(&self) {
            let mut store = self.store();
            self.pre.instantiate_async(&mut store).await.unwrap();
        }

        pub async fn get_root(&self) -> u16 {
            let mut store = self.store();
            let twin = self.pre.instantiate_async(&mut store).await.unwrap();
            Self::call_root(&mut store, &twin).await
        }

        /// A store and instance kept for many calls.
        pub async fn warm(&self) -> (Store<State>, Twin) {
            let mut store = self.store();
            let twin = self.pre.instantiate_async(&mut store).await.unwrap();
            (store, twin)
        }

        /// `GET /` on an instance that already exists.
        pub async fn call_root(store: &mut Store<State>, twin: &Twin) -> u16 {
            let request = types::Request {
                method: "GET".into(),
                path: "/".into(),
                query: String::new(),
                headers: Vec::new(),
                body: Vec::new(),
            };
            twin.wondertwin_twin_handler()
                .call_handle(store, &request)
                .await
                .unwrap()
                .status
        }
    }
}

fn bare_wasmtime(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let bare = baseline::Bare::new(&std::fs::read(twin_wasm("hello")).unwrap());
    let mut group = c.benchmark_group("baseline");
    group.bench_function("wasmtime/hello GET /", |b| {
        b.to_async(&rt).iter(|| async {
            assert_eq!(bare.get_root().await, 200);
        });
    });
    group.bench_function("wasmtime/hello instantiate", |b| {
        b.to_async(&rt).iter(|| bare.instantiate());
    });
    // The floor once instances are reused: the component call alone.
    let (mut store, twin) = rt.block_on(bare.warm());
    group.bench_function("wasmtime/hello GET / (reused instance)", |b| {
        b.iter(|| {
            let status = rt.block_on(baseline::Bare::call_root(&mut store, &twin));
            assert_eq!(status, 200);
        });
    });
    group.finish();
}

/// The Stripe twin in-process: a retrieve and a create, with the auth,
/// idempotency-key and store work every real SDK call pays for.
fn stripe_in_process(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let key = "Bearer sk_test_bench";
    let (host, id) = rt.block_on(async {
        let host = wt_host::Host::builder().cache_dir(None).build().unwrap();
        host.add_twin_file(twin_wasm("stripe")).await.unwrap();
        let create = http::Request::post("/v1/customers")
            .header("authorization", key)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Bytes::from_static(b"email=bench%40example.com&name=Bench"))
            .unwrap();
        let created = host.handle("stripe", create).await.unwrap();
        assert_eq!(created.status(), 200);
        let body = String::from_utf8_lossy(created.body()).into_owned();
        let id = body
            .split("\"id\":\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .to_owned();
        (host, id)
    });
    let mut group = c.benchmark_group("stripe_in_process");
    let path = format!("/v1/customers/{id}");
    group.bench_function("GET /v1/customers/{id}", |b| {
        b.to_async(&rt).iter(|| async {
            let request = http::Request::get(path.as_str())
                .header("authorization", key)
                .body(Bytes::new())
                .unwrap();
            assert_eq!(host.handle("stripe", request).await.unwrap().status(), 200);
        });
    });
    // The SDK sends a fresh idempotency key with every POST. Each create
    // stores four keys, so a fast machine would reach the twin's quota
    // (1,000,000 keys) within one run: the state is reset every
    // RESET_EVERY creates, outside the timed part, and a bench never
    // accumulates state without bound.
    const RESET_EVERY: u64 = 50_000;
    let next_key = std::sync::atomic::AtomicU64::new(0);
    group.bench_function("POST /v1/customers", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (host, next_key) = (&host, &next_key);
            async move {
                let mut timed = std::time::Duration::ZERO;
                for _ in 0..iters {
                    let n = next_key.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if n > 0 && n % RESET_EVERY == 0 {
                        host.reset("stripe").await.unwrap();
                    }
                    let request = http::Request::post("/v1/customers")
                        .header("authorization", key)
                        .header("idempotency-key", format!("bench-{n}"))
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(Bytes::from_static(
                            b"email=bench%40example.com&metadata[plan]=pro",
                        ))
                        .unwrap();
                    let started = std::time::Instant::now();
                    let response = host.handle("stripe", request).await.unwrap();
                    timed += started.elapsed();
                    assert_eq!(response.status(), 200);
                }
                timed
            }
        });
    });
    group.finish();
}

criterion_group!(benches, wt_in_process, bare_wasmtime, stripe_in_process);
criterion_main!(benches);

//! A loaded twin: validated and described at load (`load`, which also
//! hands a reloaded twin's state, journal, faults, deliveries, settings and
//! clock over to its successor), then served by an instance kept warm
//! between its requests (`call`; docs/decisions.md §15). This module holds
//! what a twin is and the operations on a serving twin.

mod call;
mod load;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use wasmtime::Store;

use crate::bindings::{TwinPre, types};
use crate::cache::CacheOutcome;
use crate::capability::InstanceState;
use crate::clock::TwinClock;
use crate::faults::Faults;
use crate::instances::TwinKey;
use crate::journal::Journal;
use crate::license::Licensing;
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::outbound::{Outbound, Policy};
use crate::settings::Settings;
use crate::state::{StorageError, TwinState};

pub use call::CallError;
use call::Sandbox;
pub(crate) use load::LoadRequest;
pub use load::{LoadError, WORLD, read_file};

/// What a twin says about itself, plus what the host knows about it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TwinInfo {
    /// The name the twin is served under (its route prefix).
    pub name: String,
    /// The identity licenses name in `aud`: the registry name, or the
    /// served name.
    pub identity: String,
    /// The name the twin gave itself in `describe`.
    pub described_name: String,
    pub version: String,
    pub api_version: String,
    pub default_port: u16,
    pub license_required: bool,
    pub description: String,
    /// The idempotency header whose concurrent reuse the host refuses.
    pub idempotency_header: Option<String>,
    /// sha256 of the component bytes, hex.
    pub sha256: String,
    /// Where the component came from (a path, or `<bytes>`).
    pub source: String,
    /// Whether the native code came from the precompiled cache.
    pub cache: CacheOutcome,
    /// Time from bytes to ready, in milliseconds.
    pub load_millis: f64,
}

pub use crate::names::is_valid_name;

/// The engine, with the pool of twins' warm instances.
pub(crate) type Runtime = crate::engine::Runtime<Warm>;

/// A twin's instance with its store, parked between requests.
pub(crate) struct Warm {
    store: Store<InstanceState>,
    instance: crate::bindings::Twin,
    /// The pooling slot the instance occupies. Declared after `store` so it
    /// is given back only once the store has handed the slot back to the
    /// pooling allocator (a store drops its data before its instances).
    _slot: Option<tokio::sync::OwnedSemaphorePermit>,
    /// Requests it has answered.
    served: u32,
}

/// A fresh key for each loaded twin.
fn next_key() -> TwinKey {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A twin ready to serve.
pub struct Twin {
    info: TwinInfo,
    /// Names this twin's parked instance (a reload gets a new key).
    key: TwinKey,
    name: Arc<str>,
    pre: TwinPre<InstanceState>,
    runtime: Runtime,
    limits: Limits,
    state: TwinState,
    clock: TwinClock,
    /// Requests to one twin run one at a time: this makes its store
    /// linearizable without validation or retries (docs/decisions.md). Shared
    /// with the twin's reloaded successor, so a swap never lets two run.
    gate: Arc<tokio::sync::Mutex<()>>,
    /// Requests waiting for `gate`, bounded by `Limits::max_queued_per_twin`.
    queued: Arc<AtomicUsize>,
    journal: Arc<Journal>,
    faults: Arc<Faults>,
    outbound: Arc<Outbound>,
    policy: Arc<Policy>,
    /// The client deliveries go out through, for a fork's own queue.
    http: reqwest::Client,
    metrics: Arc<Metrics>,
    settings: Settings,
    idempotency: Option<IdempotencyGuard>,
    licensing: Arc<Licensing>,
    /// The file it was loaded from, if any: what a reload reads.
    path: Option<std::path::PathBuf>,
    /// Needs a license because its registry entry says `pro`.
    forced_license: bool,
}

/// Refuses a request that reuses an idempotency key while an earlier request
/// with that key and the same credentials is still queued or running. Only
/// the host sees requests overlap (the twin runs them one at a time), so it
/// answers with the conflict response the twin declared.
#[derive(Debug)]
struct IdempotencyGuard {
    header: String,
    status: u16,
    body: Vec<u8>,
    in_flight: std::sync::Mutex<std::collections::HashSet<(String, String)>>,
}

/// A key held for the length of one request.
pub(crate) struct HeldKey<'a> {
    guard: &'a IdempotencyGuard,
    key: (String, String),
}

impl Drop for HeldKey<'_> {
    fn drop(&mut self) {
        self.guard
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
    }
}

impl IdempotencyGuard {
    /// The same answer, with no keys held: another world's requests never
    /// conflict with this one's.
    fn fork(&self) -> Self {
        IdempotencyGuard {
            header: self.header.clone(),
            status: self.status,
            body: self.body.clone(),
            in_flight: Default::default(),
        }
    }

    /// Holds the request's key, or answers the conflict if it is held.
    fn hold(&self, request: &types::Request) -> Result<Option<HeldKey<'_>>, types::Response> {
        let header = |name: &str| {
            request
                .headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        let Some(key) = header(&self.header) else {
            return Ok(None);
        };
        // Keys are per account, and the account is the credential.
        let scope = header("authorization").unwrap_or_default();
        let key = (scope, key);
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if !in_flight.insert(key.clone()) {
            return Err(types::Response {
                status: self.status,
                headers: vec![("content-type".into(), "application/json".into())],
                body: self.body.clone(),
            });
        }
        Ok(Some(HeldKey { guard: self, key }))
    }
}

impl Drop for Twin {
    fn drop(&mut self) {
        self.runtime.instances().discard(self.key);
    }
}

impl std::fmt::Debug for Twin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Twin").field("info", &self.info).finish()
    }
}

impl Twin {
    pub fn info(&self) -> &TwinInfo {
        &self.info
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn state(&self) -> &TwinState {
        &self.state
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    pub fn outbound(&self) -> &Outbound {
        &self.outbound
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The file the twin was loaded from, if it came from one.
    pub fn path(&self) -> Option<&std::path::Path> {
        self.path.as_deref()
    }

    /// Whether a license is needed because of its registry tier.
    pub fn forced_license(&self) -> bool {
        self.forced_license
    }

    /// The twin's own clock, layered on the host's.
    pub fn clock(&self) -> &TwinClock {
        &self.clock
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Holds the request's idempotency key until the returned guard drops,
    /// or gives the twin's declared conflict answer when an earlier request
    /// with the same key and credentials is still in flight.
    pub(crate) fn hold_idempotency_key(
        &self,
        request: &types::Request,
    ) -> Result<Option<HeldKey<'_>>, types::Response> {
        match &self.idempotency {
            Some(guard) => guard.hold(request),
            None => Ok(None),
        }
    }

    /// The twin's license state right now.
    pub fn license_status(&self) -> crate::license::LicenseStatus {
        self.licensing.status(
            &self.info.identity,
            self.info.license_required,
            crate::license::unix_now(),
        )
    }

    fn storage_error(&self, err: &StorageError) -> CallError {
        CallError::Storage {
            twin: self.name.to_string(),
            message: err.to_string(),
        }
    }

    /// Drops all of the twin's state, journal and faults, waiting for the
    /// request in flight: a clean slate, as at load.
    pub async fn reset(&self) -> Result<(), CallError> {
        let _turn = self.gate.lock().await;
        // The instance may keep what it computed in its own memory: a clean
        // slate starts from a fresh one.
        self.runtime.instances().discard(self.key);
        self.journal.clear();
        self.faults.clear();
        self.outbound.cancel_all().await;
        self.settings.reset();
        self.clock.clear();
        self.state.clear().map_err(|err| self.storage_error(&err))
    }

    /// Every committed entry, read between requests.
    pub async fn export_state(&self) -> Result<Vec<(String, Vec<u8>)>, CallError> {
        let _turn = self.gate.lock().await;
        self.state.export().map_err(|err| self.storage_error(&err))
    }

    /// Replaces the state between requests, atomically.
    pub async fn import_state(&self, entries: Vec<(String, Vec<u8>)>) -> Result<(), CallError> {
        let _turn = self.gate.lock().await;
        self.runtime.instances().discard(self.key);
        self.state
            .import(entries)
            .map_err(|err| self.storage_error(&err))
    }

    /// Instantiates the twin and asks it to describe itself: proves it can
    /// still serve, without touching its state.
    pub async fn probe(&self) -> Result<(), CallError> {
        self.sandbox().describe().await.map(|_| ())
    }

    /// What its instances are made from.
    fn sandbox(&self) -> Sandbox<'_> {
        Sandbox {
            name: &self.name,
            pre: &self.pre,
            runtime: &self.runtime,
            limits: &self.limits,
            state: &self.state,
            clock: &self.clock,
            outbound: &self.outbound,
            policy: &self.policy,
            metrics: &self.metrics,
            settings: &self.settings,
        }
    }
}

/// The error chain on one line, for messages that must fit one line.
fn one_line(err: &wasmtime::Error) -> String {
    format!("{err:#}").replace('\n', " ")
}

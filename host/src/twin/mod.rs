//! A loaded twin: validated at load, then served by an instance kept warm
//! between its requests (docs/decisions.md §15).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Store, UpdateDeadline};

use crate::bindings::{TwinPre, types};
use crate::cache::{ArtifactCache, CacheOutcome};
use crate::capability::InstanceState;
use crate::clock::TwinClock;
use crate::engine::EPOCH_TICK;
use crate::faults::Faults;
use crate::instances::TwinKey;
use crate::journal::Journal;
use crate::license::Licensing;
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::outbound::{Outbound, Policy};
use crate::settings::{ConfigError, Settings};
use crate::state::{StorageError, TwinState};

/// The world's version, as twins and `wt-host version` report it.
pub const WORLD: &str = "wondertwin:twin@0.1.0";
const HANDLER_EXPORT: &str = "wondertwin:twin/handler@0.1.0";
const DESCRIBE_EXPORT: &str = "wondertwin:twin/describe@0.1.0";

/// Why a file could not be loaded as a twin. Each renders as one line that
/// starts with the file (or the name it was added under).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{source_name}: cannot read: {error}")]
    Read {
        source_name: String,
        error: std::io::Error,
    },
    #[error("{source_name}: not a WebAssembly file (it starts with {prefix:?})")]
    NotWasm { source_name: String, prefix: String },
    #[error(
        "{source_name}: is a core WebAssembly module, not a component; build twins with `--target wasm32-wasip2`"
    )]
    CoreModule { source_name: String },
    #[error("{source_name}: invalid component: {reason}")]
    Invalid { source_name: String, reason: String },
    #[error(
        "{source_name}: is a component of another world: it exports [{exports}] but a twin exports {HANDLER_EXPORT} and {DESCRIBE_EXPORT}"
    )]
    OtherWorld {
        source_name: String,
        exports: String,
    },
    #[error("{source_name}: missing export {export}")]
    MissingExport {
        source_name: String,
        export: &'static str,
    },
    #[error("{source_name}: needs an import wt does not provide: {reason}")]
    UnsupportedImport { source_name: String, reason: String },
    #[error("{source_name}: `describe` failed: {reason}")]
    Describe { source_name: String, reason: String },
    #[error("{source_name}: {error}")]
    Config {
        source_name: String,
        error: ConfigError,
    },
    #[error(
        "{source_name}: {name:?} is not a usable twin name (use 1-63 of a-z, 0-9, '-' and '_', starting with a letter; `_wt` is reserved)"
    )]
    BadName { source_name: String, name: String },
    #[error("{source_name}: a twin named {name:?} is already loaded")]
    Duplicate { source_name: String, name: String },
    #[error("{source_name}: cannot open its state at {path}: {reason}")]
    State {
        source_name: String,
        path: String,
        reason: String,
    },
}

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

/// Requests one instance serves before it is replaced by a fresh one: keeps
/// a slow leak or fragmentation in a guest's heap from building up forever.
const REQUESTS_PER_INSTANCE: u32 = 10_000;

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

/// One place in a twin's bounded queue, given back on drop.
struct QueueSlot<'a>(&'a AtomicUsize);

impl<'a> QueueSlot<'a> {
    fn take(queued: &'a AtomicUsize, max: usize) -> Option<Self> {
        queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(queued))
    }
}

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
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

/// How a call to a twin ended, when it did not return a response.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("twin '{twin}' trapped: {message}")]
    Trap { twin: String, message: String },
    #[error("twin '{twin}' did not answer within {timeout:?}")]
    Deadline { twin: String, timeout: Duration },
    #[error("twin '{twin}' could not be instantiated: {message}")]
    Instantiate { twin: String, message: String },
    #[error("twin '{twin}' could not use its state: {message}")]
    Storage { twin: String, message: String },
    #[error(
        "twin '{twin}' tried to grow its memory to {wanted} bytes, past its limit of {limit} bytes"
    )]
    Memory {
        twin: String,
        wanted: usize,
        limit: usize,
    },
    #[error("twin '{twin}' has {queued} requests waiting already; try again shortly")]
    Busy { twin: String, queued: usize },
    #[error("twin '{twin}' needs a license: {reason}")]
    Unlicensed {
        twin: String,
        code: &'static str,
        reason: String,
    },
}

/// The error the epoch callback raises to stop a twin at its deadline.
#[derive(Debug, thiserror::Error)]
#[error("request deadline exceeded")]
struct DeadlineExceeded;

/// Reads a component file.
pub fn read_file(path: &Path) -> Result<Vec<u8>, LoadError> {
    std::fs::read(path).map_err(|error| LoadError::Read {
        source_name: path.display().to_string(),
        error,
    })
}

pub(crate) struct LoadRequest<'a> {
    pub runtime: &'a Runtime,
    pub linker: &'a Linker<InstanceState>,
    pub cache: &'a ArtifactCache,
    pub limits: &'a Limits,
    pub clock: TwinClock,
    pub http: reqwest::Client,
    pub policy: Arc<Policy>,
    pub licensing: Arc<Licensing>,
    /// Whether the registry marks this twin `pro` (a license is then needed
    /// whatever its `describe` says).
    pub requires_license: bool,
    /// The identity licenses are checked against, when not the served name.
    pub identity: Option<String>,
    /// Serve under this name instead of the one `describe` gives.
    pub name: Option<String>,
    /// The file it came from, for reloads.
    pub path: Option<std::path::PathBuf>,
    /// A file path or `<bytes>`, for messages.
    pub source_name: String,
}

impl Twin {
    /// Validates, compiles (or loads from cache), links and describes a twin.
    pub(crate) async fn load(req: LoadRequest<'_>, wasm: &[u8]) -> Result<Self, LoadError> {
        let started = Instant::now();
        let source_name = req.source_name.clone();
        check_header(&source_name, wasm)?;
        let sha256 = hex::encode(Sha256::digest(wasm));
        let (component, cache) = req
            .cache
            .load(req.runtime.engine(), wasm, &sha256)
            .map_err(|err| LoadError::Invalid {
                source_name: source_name.clone(),
                reason: one_line(&err),
            })?;
        check_exports(&source_name, req.runtime, &component)?;
        let instance_pre =
            req.linker
                .instantiate_pre(&component)
                .map_err(|err| LoadError::UnsupportedImport {
                    source_name: source_name.clone(),
                    reason: one_line(&err),
                })?;
        let pre = TwinPre::new(instance_pre).map_err(|err| LoadError::Invalid {
            source_name: source_name.clone(),
            reason: one_line(&err),
        })?;

        let mut twin = Self {
            info: TwinInfo {
                name: String::new(),
                identity: String::new(),
                described_name: String::new(),
                version: String::new(),
                api_version: String::new(),
                default_port: 0,
                license_required: false,
                description: String::new(),
                idempotency_header: None,
                sha256,
                source: source_name.clone(),
                cache,
                load_millis: 0.0,
            },
            name: Arc::from(req.name.as_deref().unwrap_or("(loading)")),
            key: next_key(),
            pre,
            runtime: req.runtime.clone(),
            limits: req.limits.clone(),
            state: TwinState::default(),
            clock: req.clock,
            gate: Arc::new(tokio::sync::Mutex::new(())),
            queued: Arc::new(AtomicUsize::new(0)),
            journal: Arc::new(Journal::new(req.limits.journal_capacity)),
            faults: Arc::new(Faults::new()),
            outbound: Arc::new(Outbound::new("(loading)", req.http.clone())),
            policy: req.policy.clone(),
            http: req.http.clone(),
            metrics: Arc::default(),
            settings: Settings::from_declared("(loading)", []).expect("no settings is valid"),
            idempotency: None,
            licensing: req.licensing.clone(),
            path: req.path.clone(),
            forced_license: req.requires_license,
        };
        let described = twin.describe().await.map_err(|err| LoadError::Describe {
            source_name: source_name.clone(),
            reason: err.to_string(),
        })?;
        let described = checked_description(described).map_err(|reason| LoadError::Describe {
            source_name: source_name.clone(),
            reason,
        })?;
        let name = req.name.unwrap_or_else(|| described.name.clone());
        if !is_valid_name(&name) {
            return Err(LoadError::BadName { source_name, name });
        }
        twin.name = Arc::from(name.as_str());
        twin.outbound = Arc::new(Outbound::new(&name, twin.http.clone()));
        twin.info.identity = req.identity.unwrap_or_else(|| name.clone());
        twin.info.name = name;
        twin.info.described_name = described.name;
        twin.info.version = described.version;
        twin.info.api_version = described.api_version;
        twin.info.default_port = described.default_port;
        twin.info.license_required = described.license_required || req.requires_license;
        twin.info.description = described.description;
        twin.settings = Settings::from_declared(
            &twin.name,
            described
                .settings
                .into_iter()
                .map(|s| (s.key, s.description, s.default_value)),
        )
        .map_err(|error| LoadError::Config {
            source_name: source_name.clone(),
            error,
        })?;
        if let Some(conflict) = described.idempotency {
            twin.info.idempotency_header = Some(conflict.header.to_ascii_lowercase());
            twin.idempotency = Some(IdempotencyGuard {
                header: conflict.header.to_ascii_lowercase(),
                status: conflict.status,
                body: conflict.body.into_bytes(),
                in_flight: Default::default(),
            });
        }
        twin.info.load_millis = started.elapsed().as_secs_f64() * 1000.0;
        Ok(twin)
    }

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

    /// Takes over what `old` has built up (state, journal, faults, pending
    /// deliveries, metrics, the request gate and queue, setting values that
    /// are still declared) so a reloaded twin continues where `old` was.
    pub(crate) fn succeed(&mut self, old: &Twin) {
        self.state = old.state.clone();
        self.gate = old.gate.clone();
        self.queued = old.queued.clone();
        self.journal = old.journal.clone();
        self.faults = old.faults.clone();
        self.outbound = old.outbound.clone();
        self.metrics = old.metrics.clone();
        self.settings.carry_over(&old.settings);
    }

    /// Replaces the twin's (empty, in-memory) state before it serves: the
    /// host opens durable state only once the name is known to be free.
    pub(crate) fn set_state(&mut self, state: TwinState) {
        self.state = state;
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
        self.describe().await.map(|_| ())
    }

    async fn describe(&self) -> Result<crate::bindings::Info, CallError> {
        let mut warm = self.instantiate().await?;
        let result = warm
            .instance
            .wondertwin_twin_describe()
            .call_describe(&mut warm.store)
            .await;
        result.map_err(|err| self.classify(err, &warm.store))
    }

    /// Runs one request through the twin; its writes commit only if it
    /// returns a response.
    pub async fn call(&self, request: &types::Request) -> Result<types::Response, CallError> {
        // Checked per request against the identity the host loaded the twin
        // under (never anything from the request): an expiry takes effect at exactly `exp`, and a request that
        // got past here finishes even if the license lapses meanwhile.
        let now = crate::license::unix_now();
        let claims = if self.info.license_required {
            let claims = self
                .licensing
                .check(&self.info.identity, now)
                .map_err(|refusal| CallError::Unlicensed {
                    twin: self.name.to_string(),
                    code: refusal.code(),
                    reason: refusal.to_string(),
                })?;
            Some(claims)
        } else {
            self.licensing.covering(&self.info.identity, now)
        };
        let _waiting =
            QueueSlot::take(&self.queued, self.limits.max_queued_per_twin).ok_or_else(|| {
                CallError::Busy {
                    twin: self.name.to_string(),
                    queued: self.limits.max_queued_per_twin,
                }
            })?;
        let _turn = self.gate.lock().await;
        drop(_waiting);
        let license = claims.map(|c| crate::bindings::license::Claims {
            issuer: c.iss,
            subject: c.sub,
            audience: c.aud.names(),
            tier: c.tier.as_str().to_owned(),
            issued_at: c.iat,
            not_before: c.nbf,
            expires_at: c.exp,
            token_id: c.jti,
        });
        let mut warm = match self.runtime.instances().take(self.key) {
            Some(warm) => warm,
            None => self.instantiate().await?,
        };
        warm.store
            .data_mut()
            .begin_request(self.state.begin(), self.settings.snapshot(), license);
        warm.store.set_epoch_deadline(1);
        let result = warm
            .instance
            .wondertwin_twin_handler()
            .call_handle(&mut warm.store, request)
            .await;
        // Dropping `warm` after a trap drops the instance and its
        // transaction: nothing commits, and nothing of it serves again.
        let response = result.map_err(|err| self.classify(err, &warm.store))?;
        // The response leaves only once its writes are committed (on disk,
        // for durable state).
        let data = warm.store.data_mut();
        self.metrics.saw_memory(data.limiter.peak_memory as u64);
        let outbox = std::mem::take(&mut data.outbox);
        data.txn.commit().map_err(|err| CallError::Storage {
            twin: self.name.to_string(),
            message: err.to_string(),
        })?;
        // Only now, with the writes durable, do webhooks go out.
        self.outbound.send(outbox);
        warm.served += 1;
        if self.keeps(&warm) {
            self.runtime.instances().park(self.key, warm);
        }
        Ok(response)
    }

    /// Whether an instance that just answered may serve the next request.
    fn keeps(&self, warm: &Warm) -> bool {
        let data = warm.store.data();
        warm.served < REQUESTS_PER_INSTANCE
            // A heap past half the limit is more likely to hit it next time.
            && data.limiter.peak_memory <= self.limits.max_memory_bytes / 2
            && !data.wrote_stderr()
    }

    fn new_store(&self) -> Store<InstanceState> {
        let data = InstanceState::new(
            self.name.clone(),
            self.state.begin(),
            self.clock.clone(),
            &self.limits,
            crate::capability::Shared {
                outbound: self.outbound.clone(),
                policy: self.policy.clone(),
                metrics: self.metrics.clone(),
            },
            self.settings.snapshot(),
        );
        let mut store = Store::new(self.runtime.engine(), data);
        store.limiter(|data| &mut data.limiter);
        let max_ticks = deadline_ticks(self.limits.request_timeout);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |mut ctx| {
            let data = ctx.data_mut();
            data.ticks += 1;
            if data.ticks >= max_ticks {
                Err(wasmtime::Error::new(DeadlineExceeded))
            } else {
                // Hand the worker thread back to tokio once per tick so one
                // busy twin cannot starve the others sharing that thread.
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store
    }

    /// A fresh instance in a new store, in a pooling slot it waits for.
    async fn instantiate(&self) -> Result<Warm, CallError> {
        let slot = self.runtime.instances().slot().await;
        let mut store = self.new_store();
        let instance = self
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|err| CallError::Instantiate {
                twin: self.name.to_string(),
                message: one_line(&err),
            })?;
        Ok(Warm {
            store,
            instance,
            _slot: slot,
            served: 0,
        })
    }

    fn classify(&self, err: wasmtime::Error, store: &Store<InstanceState>) -> CallError {
        let twin = self.name.to_string();
        if let Some(storage) = err.downcast_ref::<StorageError>() {
            return CallError::Storage {
                twin,
                message: storage.to_string(),
            };
        }
        if let Some(wanted) = store.data().limiter.denied_memory_growth {
            return CallError::Memory {
                twin,
                wanted,
                limit: self.limits.max_memory_bytes,
            };
        }
        if err.downcast_ref::<DeadlineExceeded>().is_some() {
            return CallError::Deadline {
                twin,
                timeout: self.limits.request_timeout,
            };
        }
        let mut message = match err.downcast_ref::<wasmtime::Trap>() {
            Some(trap) => trap.to_string(),
            None => one_line(&err),
        };
        let stderr = store.data().stderr.contents();
        let stderr = String::from_utf8_lossy(&stderr);
        let stderr = stderr.trim();
        if !stderr.is_empty() {
            message = format!("{message}; stderr: {stderr}");
        }
        // The message goes into the 500 body and the operator's log: a
        // twin's panic text must not drive the terminal.
        let message = crate::logs::printable(&message).into_owned();
        CallError::Trap { twin, message }
    }
}

/// Settings one twin may declare: far more than any vendor's quirks, few
/// enough that loading and reloading stay instant.
pub const MAX_SETTINGS: usize = 256;
/// Bytes of one `describe` string (a description, a setting's default).
const MAX_DESCRIBE_TEXT: usize = 4096;
/// Bytes of the idempotency conflict body.
const MAX_CONFLICT_BODY: usize = 64 << 10;

/// What `describe` returned, within bounds and printable: it reaches the
/// operator's terminal (`ready` lines, `wt-host list`) and every listing.
fn checked_description(mut info: crate::bindings::Info) -> Result<crate::bindings::Info, String> {
    if info.settings.len() > MAX_SETTINGS {
        return Err(format!(
            "declares {} settings; at most {MAX_SETTINGS} are allowed",
            info.settings.len()
        ));
    }
    let text = |field: &str, value: &mut String| {
        if value.len() > MAX_DESCRIBE_TEXT {
            return Err(format!(
                "{field} is {} bytes; at most {MAX_DESCRIBE_TEXT} are allowed",
                value.len()
            ));
        }
        if let std::borrow::Cow::Owned(clean) = crate::logs::printable(value) {
            *value = clean;
        }
        Ok(())
    };
    text("name", &mut info.name)?;
    text("version", &mut info.version)?;
    text("api-version", &mut info.api_version)?;
    text("description", &mut info.description)?;
    for setting in &mut info.settings {
        text("a setting's key", &mut setting.key)?;
        text("a setting's description", &mut setting.description)?;
        text("a setting's default", &mut setting.default_value)?;
    }
    if let Some(conflict) = &info.idempotency {
        if http::HeaderName::from_bytes(conflict.header.as_bytes()).is_err() {
            return Err(format!(
                "idempotency header {:?} is not a header name",
                crate::logs::printable(&conflict.header)
            ));
        }
        if !(400..=599).contains(&conflict.status) {
            return Err(format!(
                "idempotency conflict status {} is not an error status",
                conflict.status
            ));
        }
        if conflict.body.len() > MAX_CONFLICT_BODY {
            return Err(format!(
                "the idempotency conflict body is {} bytes; at most {MAX_CONFLICT_BODY} are allowed",
                conflict.body.len()
            ));
        }
    }
    Ok(info)
}

fn deadline_ticks(timeout: Duration) -> u64 {
    let ticks = timeout.as_millis() / EPOCH_TICK.as_millis().max(1);
    u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
}

/// Tells a text file, a core module and a component apart before compiling,
/// so each gets its own message.
fn check_header(source_name: &str, wasm: &[u8]) -> Result<(), LoadError> {
    const MAGIC: &[u8] = b"\0asm";
    if !wasm.starts_with(MAGIC) || wasm.len() < 8 {
        let prefix = String::from_utf8_lossy(&wasm[..wasm.len().min(8)]).into_owned();
        return Err(LoadError::NotWasm {
            source_name: source_name.to_owned(),
            prefix,
        });
    }
    // Bytes 4..8: version and layer. Core modules are layer 0, components 1.
    if wasm[6..8] == [0, 0] {
        return Err(LoadError::CoreModule {
            source_name: source_name.to_owned(),
        });
    }
    Ok(())
}

fn check_exports(
    source_name: &str,
    runtime: &Runtime,
    component: &Component,
) -> Result<(), LoadError> {
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(runtime.engine())
        .map(|(name, _)| name.to_owned())
        .collect();
    let has = |wanted: &str| exports.iter().any(|e| e == wanted);
    match (has(HANDLER_EXPORT), has(DESCRIBE_EXPORT)) {
        (true, true) => Ok(()),
        (false, false) => Err(LoadError::OtherWorld {
            source_name: source_name.to_owned(),
            exports: exports.join(", "),
        }),
        (false, true) => Err(LoadError::MissingExport {
            source_name: source_name.to_owned(),
            export: HANDLER_EXPORT,
        }),
        (true, false) => Err(LoadError::MissingExport {
            source_name: source_name.to_owned(),
            export: DESCRIBE_EXPORT,
        }),
    }
}

/// The error chain on one line, for messages that must fit one line.
fn one_line(err: &wasmtime::Error) -> String {
    format!("{err:#}").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_check_tells_text_core_and_component_apart() {
        assert!(matches!(
            check_header("f", b"hello world"),
            Err(LoadError::NotWasm { .. })
        ));
        assert!(matches!(
            check_header("f", b"\0asm\x01\0\0\0"),
            Err(LoadError::CoreModule { .. })
        ));
        assert!(check_header("f", b"\0asm\x0d\0\x01\0").is_ok());
        assert!(matches!(
            check_header("f", b""),
            Err(LoadError::NotWasm { .. })
        ));
    }

    #[test]
    fn deadline_is_at_least_one_tick() {
        assert_eq!(deadline_ticks(Duration::from_millis(1)), 1);
        assert_eq!(deadline_ticks(Duration::from_secs(1)), 100);
    }
}

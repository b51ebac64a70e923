//! What a twin instance can reach: the world's imports, one module each
//! (`store`, `clock`, `outbound`, `config`, `license`, `log`), the memory
//! `limiter`, and WASI with nothing granted (no preopened directories, no
//! environment, no arguments, no network, stdio discarded). Rust's standard
//! library imports WASI interfaces even when a twin never uses them, so WASI
//! is linked, empty. [`InstanceState`] is the store data they all act on.

mod clock;
mod config;
mod license;
mod limiter;
mod log;
mod outbound;
mod store;

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings;
use crate::clock::TwinClock;
use crate::limits::Limits;
use crate::state::{Quota, Transaction};

pub use limiter::Limiter;

/// How much of a twin's stderr is kept per request: enough for a panic message.
const STDERR_CAPTURE_BYTES: usize = 4096;

/// What every instance of one twin shares with the twin itself.
#[derive(Clone)]
pub struct Shared {
    /// Where the deliveries it queues go.
    pub outbound: std::sync::Arc<crate::outbound::Outbound>,
    /// Which destinations it may queue deliveries to.
    pub policy: std::sync::Arc<crate::outbound::Policy>,
    /// Its counters, and its log allowance.
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
}

/// Store data of one instance. An instance may serve many requests in turn
/// (docs/decisions.md §15); [`InstanceState::begin_request`] resets what is
/// per request.
pub struct InstanceState {
    pub(crate) twin: std::sync::Arc<str>,
    pub(crate) txn: Transaction,
    pub(crate) clock: TwinClock,
    pub(crate) limiter: Limiter,
    max_value_bytes: usize,
    quota: Quota,
    /// Epoch ticks this call has used; the deadline callback counts them.
    pub(crate) ticks: u64,
    /// The twin's stderr, where Rust prints a panic's message before the
    /// trap; it goes into the 500 body so the author sees why.
    pub(crate) stderr: MemoryOutputPipe,
    /// Requests queued by this call, sent only once it commits.
    pub(crate) outbox: Vec<(String, crate::outbound::OutboundRequest)>,
    /// Bytes (URL, headers, body) of `outbox`.
    outbox_bytes: usize,
    outbound: std::sync::Arc<crate::outbound::Outbound>,
    policy: std::sync::Arc<crate::outbound::Policy>,
    /// The twin's counters, and its log allowance.
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// The twin's settings as of the start of this call.
    config: crate::settings::Snapshot,
    /// The validated license claims covering this twin, if any.
    pub(crate) license: Option<bindings::license::Claims>,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl InstanceState {
    pub fn new(
        twin: std::sync::Arc<str>,
        txn: Transaction,
        clock: TwinClock,
        limits: &Limits,
        shared: Shared,
        config: crate::settings::Snapshot,
    ) -> Self {
        let Shared {
            outbound,
            policy,
            metrics,
        } = shared;
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE_BYTES);
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            // Deny every socket address and name lookup: a twin reaches the
            // world only through imports the host controls.
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .allow_ip_name_lookup(false)
            .allow_tcp(false)
            .allow_udp(false)
            .build();
        Self {
            twin,
            txn,
            clock,
            limiter: Limiter {
                max_memory_bytes: limits.max_memory_bytes,
                denied_memory_growth: None,
                peak_memory: 0,
            },
            max_value_bytes: limits.max_value_bytes,
            quota: Quota {
                max_keys: limits.max_state_keys,
                max_bytes: limits.max_state_bytes,
            },
            ticks: 0,
            stderr,
            outbox: Vec::new(),
            outbox_bytes: 0,
            outbound,
            policy,
            metrics,
            config,
            license: None,
            wasi,
            table: ResourceTable::new(),
        }
    }
}

impl InstanceState {
    /// Readies the store for the next request: its transaction, settings,
    /// license, deadline count and memory accounting.
    pub(crate) fn begin_request(
        &mut self,
        txn: Transaction,
        config: crate::settings::Snapshot,
        license: Option<bindings::license::Claims>,
    ) {
        self.txn = txn;
        self.config = config;
        self.license = license;
        self.ticks = 0;
        self.outbox.clear();
        self.outbox_bytes = 0;
        self.limiter.denied_memory_growth = None;
    }

    /// Whether the twin wrote anything to stderr: an instance that did is
    /// not reused, so the next trap's message is that request's alone.
    pub(crate) fn wrote_stderr(&self) -> bool {
        !self.stderr.contents().is_empty()
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Adds every import of the twin world (and empty WASI) to `linker`.
pub fn add_to_linker(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    bindings::Twin::add_to_linker::<_, HasSelf<_>>(linker, |state| state)?;
    Ok(())
}

impl bindings::types::Host for InstanceState {}

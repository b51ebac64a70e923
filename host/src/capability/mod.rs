//! What a twin instance can reach: our `store`, `clock` and `log` imports, and
//! WASI with nothing granted (no preopened directories, no environment, no
//! arguments, no network, stdio discarded). Rust's standard library imports
//! WASI interfaces even when a twin never uses them, so WASI is linked, empty.

use wasmtime::ResourceLimiter;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::{self, clock, config, license, log, outbound, store};
use crate::clock::TwinClock;
use crate::limits::Limits;
use crate::state::{Quota, ScanError, SetError, Transaction};

/// Longest key a twin may store; keys are identifiers, not payloads.
pub const MAX_KEY_BYTES: usize = 1024;

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
    pub(crate) license: Option<license::Claims>,
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
        license: Option<license::Claims>,
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

/// Bounds what one instance may grow to, and remembers a refused memory
/// growth so the 500 can say the limit was the reason.
pub struct Limiter {
    max_memory_bytes: usize,
    /// The size a refused `memory.grow` asked for.
    pub(crate) denied_memory_growth: Option<usize>,
    /// The largest memory this instance was allowed to grow to: its memory
    /// size, since wasm memories never shrink.
    pub(crate) peak_memory: usize,
}

/// Table elements (function references) one instance may hold: far above
/// what any compiled twin uses, far below what would hurt the host.
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_memory_bytes {
            self.denied_memory_growth = Some(desired);
            return Ok(false);
        }
        self.peak_memory = self.peak_memory.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        64
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        16
    }
}

/// Adds every import of the twin world (and empty WASI) to `linker`.
pub fn add_to_linker(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    bindings::Twin::add_to_linker::<_, HasSelf<_>>(linker, |state| state)?;
    Ok(())
}

impl store::Host for InstanceState {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        // A storage failure traps the request: its writes are dropped and it
        // answers 500, rather than the twin acting on a read that failed.
        Ok(self.txn.get(&key)?)
    }

    fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), store::StoreError>> {
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            return Ok(Err(store::StoreError::Invalid(format!(
                "keys must be 1 to {MAX_KEY_BYTES} bytes; got {}",
                key.len()
            ))));
        }
        if value.len() > self.max_value_bytes {
            return Ok(Err(store::StoreError::QuotaExceeded(format!(
                "values are limited to {} bytes; got {}",
                self.max_value_bytes,
                value.len()
            ))));
        }
        match self.txn.set(key, value, self.quota) {
            Ok(()) => Ok(Ok(())),
            Err(SetError::Quota(message)) => Ok(Err(store::StoreError::QuotaExceeded(message))),
            Err(SetError::Storage(err)) => Err(err.into()),
        }
    }

    fn delete(&mut self, key: String) -> wasmtime::Result<bool> {
        // No such key can exist, so there is nothing to delete (or stage).
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            return Ok(false);
        }
        match self.txn.delete(&key) {
            Ok(existed) => Ok(existed),
            // `delete` has no error to give the twin: past the staging bound
            // the request traps, and none of its writes commit.
            Err(SetError::Quota(message)) => Err(wasmtime::Error::msg(message)),
            Err(SetError::Storage(err)) => Err(err.into()),
        }
    }

    fn scan(
        &mut self,
        start: String,
        end: Option<String>,
        limit: u32,
        reverse: bool,
    ) -> wasmtime::Result<Vec<store::Entry>> {
        // Bound what one call can copy into the guest at once.
        let limit = usize::try_from(limit).unwrap_or(usize::MAX).min(10_000);
        // Whatever the twin could not receive into its memory is not
        // copied out of the state either.
        let max_bytes = self.limiter.max_memory_bytes;
        match self
            .txn
            .scan_within(&start, end.as_deref(), limit, reverse, max_bytes)
        {
            Ok(entries) => Ok(entries
                .into_iter()
                .map(|(key, value)| store::Entry { key, value })
                .collect()),
            Err(ScanError::Storage(err)) => Err(err.into()),
            Err(too_large) => Err(wasmtime::Error::msg(too_large.to_string())),
        }
    }
}

impl clock::Host for InstanceState {
    fn now_millis(&mut self) -> wasmtime::Result<u64> {
        Ok(self.clock.now_millis())
    }

    fn wall_millis(&mut self) -> wasmtime::Result<u64> {
        Ok(crate::clock::wall_millis())
    }
}

impl log::Host for InstanceState {
    fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        use crate::logs::{Admission, MAX_LINE_BYTES, printable_cut};
        let twin = &*self.twin;
        match self.metrics.logs.admit() {
            Admission::Drop => return Ok(()),
            Admission::Log { dropped_before: 0 } => {}
            Admission::Log { dropped_before } => tracing::warn!(
                target: "twin",
                twin,
                dropped = dropped_before,
                "log lines dropped: the twin logged more than {} a second",
                crate::logs::LINES_PER_SECOND
            ),
        }
        let message = printable_cut(&message, MAX_LINE_BYTES);
        match level {
            log::Level::Trace => tracing::trace!(target: "twin", twin, "{message}"),
            log::Level::Debug => tracing::debug!(target: "twin", twin, "{message}"),
            log::Level::Info => tracing::info!(target: "twin", twin, "{message}"),
            log::Level::Warn => tracing::warn!(target: "twin", twin, "{message}"),
            log::Level::Error => tracing::error!(target: "twin", twin, "{message}"),
        }
        Ok(())
    }
}

impl outbound::Host for InstanceState {
    fn enqueue(
        &mut self,
        request: outbound::OutboundRequest,
    ) -> wasmtime::Result<Result<String, outbound::OutboundError>> {
        if self.outbox.len() >= crate::outbound::MAX_PER_CALL {
            return Ok(Err(outbound::OutboundError::TooMany(format!(
                "one request may queue at most {} outbound requests",
                crate::outbound::MAX_PER_CALL
            ))));
        }
        use crate::outbound::{MAX_BODY_BYTES, MAX_BYTES_PER_CALL};
        if request.body.len() > MAX_BODY_BYTES {
            return Ok(Err(outbound::OutboundError::Invalid(format!(
                "an outbound body is limited to {MAX_BODY_BYTES} bytes; got {}",
                request.body.len()
            ))));
        }
        let bytes = request.url.len()
            + request.body.len()
            + request
                .headers
                .iter()
                .map(|(n, v)| n.len() + v.len())
                .sum::<usize>();
        if self.outbox_bytes + bytes > MAX_BYTES_PER_CALL {
            return Ok(Err(outbound::OutboundError::TooMany(format!(
                "one request may queue at most {MAX_BYTES_PER_CALL} bytes of outbound requests"
            ))));
        }
        let method = request.method.to_ascii_uppercase();
        if let Err(refusal) = self.policy.check(&method, &request.url, &request.headers) {
            return Ok(Err(match refusal {
                crate::outbound::Refusal::Denied(why) => outbound::OutboundError::Denied(why),
                crate::outbound::Refusal::Invalid(why) => outbound::OutboundError::Invalid(why),
            }));
        }
        let queued_body: usize = self.outbox.iter().map(|(_, r)| r.body.len()).sum();
        if let Err(crate::outbound::Backlog(why)) =
            self.outbound.has_room(queued_body, request.body.len())
        {
            return Ok(Err(outbound::OutboundError::TooMany(why)));
        }
        self.outbox_bytes += bytes;
        let id = self.outbound.next_id();
        self.outbox.push((
            id.clone(),
            crate::outbound::OutboundRequest {
                method,
                url: request.url,
                headers: request.headers,
                body: request.body,
            },
        ));
        Ok(Ok(id))
    }
}

impl config::Host for InstanceState {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.config.get(&key).cloned())
    }
}

impl license::Host for InstanceState {
    fn current(&mut self) -> wasmtime::Result<Option<license::Claims>> {
        Ok(self.license.clone())
    }
}

impl bindings::types::Host for InstanceState {}

//! The resource limits every twin runs under.

use std::sync::Arc;
use std::time::Duration;

/// Limits applied to every twin. The defaults suit a laptop running a test
/// suite; operators packing hundreds of twins tune them down.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Linear memory one twin instance may grow to. Stripe-sized twins peak
    /// around a few MiB per request, so 64 MiB is generous yet bounded.
    pub max_memory_bytes: usize,
    /// Wall time a single request may run before it is stopped (504).
    pub request_timeout: Duration,
    /// Largest request body accepted (413 beyond).
    pub max_request_body: usize,
    /// Largest response body a twin may produce (500 beyond).
    pub max_response_body: usize,
    /// Requests that may wait for one twin while it serves another; beyond
    /// this the host answers 503 with `Retry-After` instead of queueing
    /// without bound.
    pub max_queued_per_twin: usize,
    /// Request body bytes the host holds at once, across all twins, while
    /// it reads them and while they wait for their twin: the queue is
    /// bounded in bytes, not only in requests (503 beyond).
    pub max_buffered_body_bytes: usize,
    /// Largest single value a twin may store.
    pub max_value_bytes: usize,
    /// Requests kept in each twin's journal (`/_wt/twins/{t}/requests`);
    /// 0 turns the journal off.
    pub journal_capacity: usize,
    /// Keys one twin may store in all.
    pub max_state_keys: u64,
    /// Bytes (keys plus values) one twin may store in all.
    pub max_state_bytes: u64,
    /// Instances alive at once across all twins (pooling allocator slots).
    pub max_instances: u32,
    /// Idle instances kept warm between requests, across all twins (least
    /// recently used evicted first); 0 gives every request a fresh instance.
    pub warm_instances: u32,
    /// Native stack the wasm may use, so runaway recursion traps cleanly.
    pub max_wasm_stack: usize,
    /// Tenants alive at once (`POST /_wt/tenants` beyond it answers 429).
    pub max_tenants: usize,
    /// Bytes of state each twin of a tenant may hold (the default world's
    /// twins have [`Limits::max_state_bytes`]): a tenant is a test's world,
    /// and a thousand of them share the host's memory.
    pub max_tenant_state_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_memory_bytes: 64 << 20,
            request_timeout: Duration::from_secs(30),
            max_request_body: 10 << 20,
            max_response_body: 16 << 20,
            max_queued_per_twin: 1024,
            max_buffered_body_bytes: 256 << 20,
            max_value_bytes: 1 << 20,
            journal_capacity: 1000,
            max_state_keys: 1_000_000,
            max_state_bytes: 1 << 30,
            max_instances: 1000,
            warm_instances: 128,
            max_wasm_stack: 1 << 20,
            max_tenants: 1000,
            max_tenant_state_bytes: 64 << 20,
        }
    }
}

/// The request body bytes the host may hold at once
/// ([`Limits::max_buffered_body_bytes`]), counted in KiB so
/// any budget fits a semaphore.
#[derive(Debug)]
pub(crate) struct BodyBudget {
    kib: Arc<tokio::sync::Semaphore>,
    max_bytes: usize,
}

/// Bytes taken from the budget, given back on drop.
#[derive(Debug)]
pub(crate) struct BudgetPermit(tokio::sync::OwnedSemaphorePermit);

impl BudgetPermit {
    pub(crate) fn bytes(&self) -> usize {
        self.0.num_permits() * 1024
    }

    pub(crate) fn merge(&mut self, other: BudgetPermit) {
        self.0.merge(other.0);
    }
}

impl BodyBudget {
    pub(crate) fn new(max_bytes: usize) -> Self {
        let kib = (max_bytes / 1024).min(tokio::sync::Semaphore::MAX_PERMITS);
        Self {
            kib: Arc::new(tokio::sync::Semaphore::new(kib)),
            max_bytes,
        }
    }

    /// At least `bytes` from the budget, now or not at all.
    pub(crate) fn take(&self, bytes: usize) -> Option<BudgetPermit> {
        let kib = u32::try_from(bytes.div_ceil(1024)).ok()?;
        self.kib
            .clone()
            .try_acquire_many_owned(kib)
            .ok()
            .map(BudgetPermit)
    }

    /// The budget, in bytes, for messages.
    pub(crate) fn max_bytes(&self) -> usize {
        self.max_bytes
    }
}

//! The one wasmtime `Engine` shared by every twin, and its epoch ticker.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::instances::Instances;
use crate::limits::Limits;

/// How often the epoch advances. Deadlines are counted in these ticks, and a
/// running twin yields to the async executor once per tick, so this is also
/// the longest a busy twin can hold a tokio worker thread without a break.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Which instance allocator the engine ended up with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocator {
    /// Slots reserved up front: instantiation is a few microseconds.
    Pooling,
    /// Fallback when the address-space reservation for the pool is refused
    /// (a `ulimit -v`, a small 32-bit-style VM): slower but works anywhere.
    OnDemand,
}

/// The engine plus the thread that ticks its epoch, and the pool of warm
/// instances of type `W` (the twin layer's, which this layer does not need
/// to know). Dropping the last handle stops the ticker.
pub struct Runtime<W> {
    inner: Arc<RuntimeInner<W>>,
}

impl<W> Clone for Runtime<W> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

struct RuntimeInner<W> {
    engine: Engine,
    allocator: Allocator,
    stop_ticker: Arc<AtomicBool>,
    /// One slot per pooled instance (when every slot is in use, requests
    /// wait for one instead of failing to instantiate), and the twins'
    /// warm instances parked in them.
    instances: Instances<W>,
}

impl<W> Drop for RuntimeInner<W> {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

impl<W> std::fmt::Debug for Runtime<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("allocator", &self.inner.allocator)
            .finish()
    }
}

impl<W> Runtime<W> {
    /// Builds the engine, trying the pooling allocator first.
    pub fn new(limits: &Limits) -> wasmtime::Result<Self> {
        let (engine, allocator) = match Engine::new(&base_config(limits, Some(pooling(limits)))) {
            Ok(engine) => (engine, Allocator::Pooling),
            Err(err) => {
                tracing::warn!(
                    error = %err,
                    "the pooling allocator could not reserve its address space; \
                     falling back to on-demand allocation"
                );
                (
                    Engine::new(&base_config(limits, None))?,
                    Allocator::OnDemand,
                )
            }
        };
        let stop_ticker = Arc::new(AtomicBool::new(false));
        spawn_epoch_ticker(engine.clone(), stop_ticker.clone());
        Ok(Self {
            inner: Arc::new(RuntimeInner {
                engine,
                allocator,
                stop_ticker,
                instances: Instances::new(
                    limits.max_instances as usize,
                    limits.warm_instances as usize,
                ),
            }),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub fn allocator(&self) -> Allocator {
        self.inner.allocator
    }

    /// Instance slots and parked warm instances.
    pub(crate) fn instances(&self) -> &Instances<W> {
        &self.inner.instances
    }
}

fn base_config(limits: &Limits, pool: Option<PoolingAllocationConfig>) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    // wasmtime's own compilation cache is not built in (no `cache` feature):
    // our cache module keys artifacts by the wasm digest and checks them.
    if let Some(pool) = pool {
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    // Guard against unbounded recursion well before the host's own stack.
    config.max_wasm_stack(limits.max_wasm_stack);
    // `WT_PROFILER=perfmap` writes /tmp/perf-PID.map so `perf` can name the
    // twins' compiled functions (bench/README.md, "Profiling a twin").
    if std::env::var_os("WT_PROFILER").is_some_and(|v| v == "perfmap") {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    config
}

/// Bytes of each pooled memory (and table) zeroed in place rather than
/// handed back to the kernel when an instance is dropped, so the next
/// instance in that slot does not page-fault its way through them again.
const KEEP_RESIDENT: usize = 2 << 20;

fn pooling(limits: &Limits) -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::default();
    // One slot per request in flight. Rust components instantiate a handful of
    // core modules (the program, WASI adapter shims), hence the multipliers.
    let instances = limits.max_instances;
    pool.total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(8))
        .total_memories(instances.saturating_mul(2))
        .total_tables(instances.saturating_mul(4))
        .total_stacks(instances)
        .max_memory_size(limits.max_memory_bytes)
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT);
    pool
}

/// Exactly one ticker per engine: a plain thread, so ticks keep coming even
/// when every tokio worker is busy running wasm.
fn spawn_epoch_ticker(engine: Engine, stop: Arc<AtomicBool>) {
    let spawned = std::thread::Builder::new()
        .name("wt-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        });
    if let Err(err) = spawned {
        // Without a ticker deadlines never fire, but requests still work.
        tracing::error!(error = %err, "could not start the epoch ticker; request timeouts are off");
    }
}

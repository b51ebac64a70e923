//! What one instance may grow to: memory (the limit is `--max-memory`),
//! tables, and instance counts, with a refused growth remembered so the 500
//! can say the limit was the reason.

use wasmtime::ResourceLimiter;

/// Bounds what one instance may grow to, and remembers a refused memory
/// growth so the 500 can say the limit was the reason.
pub struct Limiter {
    pub(super) max_memory_bytes: usize,
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

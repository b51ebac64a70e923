//! The `store` import: the twin's own ordered key-value space, through the
//! request's transaction, with keys, values, staged writes and scans
//! bounded (docs/SECURITY.md).

use crate::bindings::store;
use crate::state::{ScanError, SetError};

use super::InstanceState;

/// Longest key a twin may store; keys are identifiers, not payloads.
pub const MAX_KEY_BYTES: usize = 1024;

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

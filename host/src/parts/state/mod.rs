//! Each twin's key-value state, and the per-request transaction over it.
//!
//! A twin's requests run one at a time (see `docs/decisions.md`), so a
//! transaction never races another one: it is an overlay of pending writes on
//! top of the committed state, applied in one atomic batch when the handler
//! returns and dropped if it traps. That gives every request a linearizable
//! view with no validation or retry, at the cost of one core per twin.
//!
//! Where committed state lives is a [`Backend`]: memory by default (tests want
//! a clean slate and speed), or a redb file per twin with `--state-dir`.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

mod durable;
mod memory;
#[cfg(test)]
mod tests;

use durable::RedbBackend;
use memory::MemoryBackend;

/// Pending writes: `None` is a delete.
pub type Batch = BTreeMap<String, Option<Vec<u8>>>;

/// A storage failure. Reads that fail trap the request; a commit that fails
/// answers 500 and the request's writes are not applied.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct StorageError(String);

impl StorageError {
    fn from_display(err: impl std::fmt::Display) -> Self {
        Self(err.to_string())
    }
}

/// Collects entries until they hold more than `max_bytes`: the first entry
/// past the bound is kept, so a caller can tell the bound was crossed.
fn within_bytes<E>(
    entries: impl Iterator<Item = Result<(String, Vec<u8>), E>>,
    max_bytes: usize,
) -> Result<Vec<(String, Vec<u8>)>, E> {
    let mut out = Vec::new();
    let mut bytes = 0usize;
    for entry in entries {
        let (key, value) = entry?;
        bytes = bytes.saturating_add(key.len() + value.len());
        out.push((key, value));
        if bytes > max_bytes {
            break;
        }
    }
    Ok(out)
}

/// Why a scan gave nothing back.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(
        "the entries this scan asks for hold more than {max_bytes} bytes, more than the instance could receive; scan fewer at a time"
    )]
    TooLarge { max_bytes: usize },
}

/// Committed state: what a transaction reads through and commits into.
pub trait Backend: Send + Sync {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError>;
    /// The length of `key`'s value, without copying it: what a write needs
    /// for the quota.
    fn value_len(&self, key: &str) -> Result<Option<usize>, StorageError>;
    /// Like [`Transaction::scan`], on committed data only; stops early once
    /// the entries collected hold more than `max_bytes` (keys plus values).
    fn scan(
        &self,
        start: &str,
        end: Option<&str>,
        limit: usize,
        reverse: bool,
        max_bytes: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StorageError>;
    /// Applies every write atomically and durably (for a durable backend,
    /// on disk before this returns).
    fn apply(&self, batch: Batch) -> Result<(), StorageError>;
    fn clear(&self) -> Result<(), StorageError>;
    /// Keys and bytes (keys plus values) committed.
    fn usage(&self) -> Result<Usage, StorageError>;
    /// Replaces everything with `entries` in one atomic step.
    fn replace(&self, entries: Vec<(String, Vec<u8>)>) -> Result<(), StorageError>;
}

/// How much a twin stores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    pub keys: u64,
    pub bytes: u64,
}

/// What a twin may store in all.
#[derive(Debug, Clone, Copy)]
pub struct Quota {
    pub max_keys: u64,
    pub max_bytes: u64,
}

/// Why a write was refused.
#[derive(Debug, thiserror::Error)]
pub enum SetError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Quota(String),
}

/// Bytes one request may stage (keys and values written, keys deleted)
/// before it commits: a request's writes are held in memory until then, so
/// without this a twin could hold up to its whole state quota per request.
pub const MAX_STAGED_BYTES: usize = 64 << 20;

/// What a staged write holds in memory: its key, its value, and a little
/// for the map entry (so a flood of deletes counts too).
fn staged_bytes(key: &str, value: Option<&Vec<u8>>) -> usize {
    key.len() + value.map_or(0, Vec::len) + 32
}

fn entry_bytes(key: &str, value_len: usize) -> i64 {
    i64::try_from(key.len().saturating_add(value_len)).unwrap_or(i64::MAX)
}

/// Committed state of one twin. Cloning shares it.
#[derive(Clone)]
pub struct TwinState {
    backend: Arc<dyn Backend>,
}

impl Default for TwinState {
    fn default() -> Self {
        Self::in_memory()
    }
}

impl std::fmt::Debug for TwinState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwinState").finish_non_exhaustive()
    }
}

impl TwinState {
    pub fn in_memory() -> Self {
        Self {
            backend: Arc::new(MemoryBackend::default()),
        }
    }

    /// Opens (or creates) the redb file at `path`.
    pub fn durable(path: &Path) -> Result<Self, StorageError> {
        Ok(Self {
            backend: Arc::new(RedbBackend::open(path)?),
        })
    }

    /// Starts a transaction that reads this state and buffers its writes.
    pub fn begin(&self) -> Transaction {
        Transaction {
            backend: self.backend.clone(),
            writes: BTreeMap::new(),
            committed_usage: None,
            delta_keys: 0,
            delta_bytes: 0,
            staged: 0,
        }
    }

    /// Drops every key.
    pub fn clear(&self) -> Result<(), StorageError> {
        self.backend.clear()
    }

    /// Keys and bytes committed.
    pub fn usage(&self) -> Result<Usage, StorageError> {
        self.backend.usage()
    }

    /// Every committed entry, in key order.
    pub fn export(&self) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        self.backend.scan("", None, usize::MAX, false, usize::MAX)
    }

    /// Replaces the whole state atomically (seeding fixtures).
    pub fn import(&self, entries: Vec<(String, Vec<u8>)>) -> Result<(), StorageError> {
        self.backend.replace(entries)
    }
}

/// The writes of one request, not yet visible to anyone else.
pub struct Transaction {
    backend: Arc<dyn Backend>,
    writes: Batch,
    /// Read on the first write, for quota checks.
    committed_usage: Option<Usage>,
    /// What the pending writes add to the committed usage.
    delta_keys: i64,
    delta_bytes: i64,
    /// What the pending writes hold in memory, bounded by
    /// [`MAX_STAGED_BYTES`].
    staged: usize,
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("pending", &self.writes.len())
            .finish()
    }
}

impl Transaction {
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        match self.writes.get(key) {
            Some(pending) => Ok(pending.clone()),
            None => self.backend.get(key),
        }
    }

    fn value_len(&self, key: &str) -> Result<Option<usize>, StorageError> {
        match self.writes.get(key) {
            Some(pending) => Ok(pending.as_ref().map(Vec::len)),
            None => self.backend.value_len(key),
        }
    }

    /// Buffers a write unless it would take the twin past `quota`.
    pub fn set(&mut self, key: String, value: Vec<u8>, quota: Quota) -> Result<(), SetError> {
        let staged = self.staged_after(&key, Some(&value))?;
        let old = self.value_len(&key)?;
        let keys = self.delta_keys + i64::from(old.is_none());
        let bytes = self.delta_bytes + entry_bytes(&key, value.len())
            - old.map_or(0, |len| entry_bytes(&key, len));
        let committed = match self.committed_usage {
            Some(usage) => usage,
            None => *self.committed_usage.insert(self.backend.usage()?),
        };
        let total_keys = i128::from(committed.keys) + i128::from(keys);
        let total_bytes = i128::from(committed.bytes) + i128::from(bytes);
        // Writes that shrink usage are always allowed, so a twin over its
        // quota (after the quota was lowered) can still clean up.
        if keys > self.delta_keys && total_keys > i128::from(quota.max_keys) {
            return Err(SetError::Quota(format!(
                "the twin may store at most {} keys",
                quota.max_keys
            )));
        }
        if bytes > self.delta_bytes && total_bytes > i128::from(quota.max_bytes) {
            return Err(SetError::Quota(format!(
                "the twin may store at most {} bytes of keys and values",
                quota.max_bytes
            )));
        }
        self.delta_keys = keys;
        self.delta_bytes = bytes;
        self.staged = staged;
        self.writes.insert(key, Some(value));
        Ok(())
    }

    /// What `staged` would be with `key` staged as `value`, if within bounds.
    fn staged_after(&self, key: &str, value: Option<&Vec<u8>>) -> Result<usize, SetError> {
        let replaced = self
            .writes
            .get(key)
            .map_or(0, |old| staged_bytes(key, old.as_ref()));
        let staged = self.staged - replaced + staged_bytes(key, value);
        if staged > MAX_STAGED_BYTES && staged > self.staged {
            return Err(SetError::Quota(format!(
                "one request may stage at most {MAX_STAGED_BYTES} bytes of writes and deletes before it commits"
            )));
        }
        Ok(staged)
    }

    /// Deletes `key`; returns whether it existed as seen by this transaction.
    /// Deleting what is not there stages nothing.
    pub fn delete(&mut self, key: &str) -> Result<bool, SetError> {
        let Some(len) = self.value_len(key)? else {
            return Ok(false);
        };
        self.staged = self.staged_after(key, None)?;
        self.delta_keys -= 1;
        self.delta_bytes -= entry_bytes(key, len);
        self.writes.insert(key.to_owned(), None);
        Ok(true)
    }

    /// Entries with `start <= key < end` as this transaction sees them:
    /// committed entries merged with pending writes, ascending or descending,
    /// at most `limit`.
    #[cfg(test)]
    pub fn scan(
        &self,
        start: &str,
        end: Option<&str>,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(String, Vec<u8>)>, ScanError> {
        self.scan_within(start, end, limit, reverse, usize::MAX)
    }

    /// [`scan`](Self::scan), refused when the entries hold more than
    /// `max_bytes` (keys plus values): the host then holds at most that
    /// much (and one entry) of them, instead of copying out every value in
    /// the range only for the twin to run out of memory receiving them.
    pub fn scan_within(
        &self,
        start: &str,
        end: Option<&str>,
        limit: usize,
        reverse: bool,
        max_bytes: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, ScanError> {
        if limit == 0 || end.is_some_and(|end| end <= start) {
            return Ok(Vec::new());
        }
        let range = (
            Bound::Included(start),
            end.map_or(Bound::Unbounded, Bound::Excluded),
        );
        // Each pending delete can hide one committed entry, so ask the
        // backend for that many more to still fill `limit`.
        let hidden = self
            .writes
            .range::<str, _>(range)
            .filter(|(_, v)| v.is_none())
            .count();
        let committed =
            self.backend
                .scan(start, end, limit.saturating_add(hidden), reverse, max_bytes)?;
        let pending: Vec<(&String, &Option<Vec<u8>>)> = if reverse {
            self.writes.range::<str, _>(range).rev().collect()
        } else {
            self.writes.range::<str, _>(range).collect()
        };
        let merged = merge(committed, &pending, limit, reverse);
        let bytes: usize = merged.iter().map(|(k, v)| k.len() + v.len()).sum();
        if bytes > max_bytes {
            return Err(ScanError::TooLarge { max_bytes });
        }
        Ok(merged)
    }

    /// Applies every pending write at once, leaving the transaction empty
    /// (a kept instance's store holds on to it until its next request).
    pub fn commit(&mut self) -> Result<(), StorageError> {
        self.committed_usage = None;
        self.delta_keys = 0;
        self.delta_bytes = 0;
        self.staged = 0;
        if self.writes.is_empty() {
            return Ok(());
        }
        self.backend.apply(std::mem::take(&mut self.writes))
    }
}

/// Merges committed entries with pending writes, both already in scan
/// order: a pending write wins on an equal key and a pending delete hides it.
fn merge(
    committed: Vec<(String, Vec<u8>)>,
    pending: &[(&String, &Option<Vec<u8>>)],
    limit: usize,
    reverse: bool,
) -> Vec<(String, Vec<u8>)> {
    let before = |a: &str, b: &str| if reverse { a > b } else { a < b };
    let mut out = Vec::with_capacity(limit.min(committed.len() + pending.len()));
    let mut committed = committed.into_iter().peekable();
    let mut pending = pending.iter().peekable();
    while out.len() < limit {
        let take_pending = match (committed.peek(), pending.peek()) {
            (None, None) => break,
            (Some(_), None) => false,
            (None, Some(_)) => true,
            (Some((ck, _)), Some((pk, _))) => {
                if ck == *pk {
                    committed.next();
                    true
                } else {
                    before(pk, ck)
                }
            }
        };
        if take_pending {
            if let Some((key, Some(value))) = pending.next() {
                out.push(((*key).clone(), value.clone()));
            }
        } else if let Some(entry) = committed.next() {
            out.push(entry);
        }
    }
    out
}

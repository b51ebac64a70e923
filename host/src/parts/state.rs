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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

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

/// State in memory: gone when the process exits.
#[derive(Default)]
struct MemoryBackend {
    inner: Mutex<MemoryState>,
}

/// Every value behind a hash of its key, and the keys again in order.
///
/// A twin's reads and writes are mostly of single keys, and its keys share
/// long prefixes (`customers/obj/cus_…`): in a B-tree of a few hundred
/// thousand keys each lookup compared ~20 keys, each one a pointer chase
/// and a `memcmp` over the shared prefix. The hash finds a key in one probe;
/// the ordered set is walked only by scans and touched only when a key is
/// added or removed. Keys are shared between the two, not copied.
#[derive(Default)]
struct MemoryState {
    values: HashMap<Arc<str>, Vec<u8>, foldhash::fast::RandomState>,
    order: BTreeSet<Arc<str>>,
    bytes: u64,
}

impl MemoryState {
    fn from_entries(entries: Vec<(String, Vec<u8>)>) -> Self {
        let mut state = Self::default();
        for (key, value) in entries {
            state.put(key, value);
        }
        state
    }

    fn put(&mut self, key: String, value: Vec<u8>) {
        self.bytes += (key.len() + value.len()) as u64;
        if let Some(old) = self.values.get_mut(key.as_str()) {
            let old = std::mem::replace(old, value);
            self.bytes -= (key.len() + old.len()) as u64;
            return;
        }
        let key: Arc<str> = key.into();
        self.order.insert(key.clone());
        self.values.insert(key, value);
    }

    fn remove(&mut self, key: &str) {
        if let Some(old) = self.values.remove(key) {
            self.order.remove(key);
            self.bytes -= (key.len() + old.len()) as u64;
        }
    }
}

impl MemoryBackend {
    fn lock(&self) -> MutexGuard<'_, MemoryState> {
        // A poisoned lock means a panic while holding it; every mutation is
        // a single call that leaves the map consistent, so keep going.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Backend for MemoryBackend {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.lock().values.get(key).cloned())
    }

    fn value_len(&self, key: &str) -> Result<Option<usize>, StorageError> {
        Ok(self.lock().values.get(key).map(Vec::len))
    }

    fn scan(
        &self,
        start: &str,
        end: Option<&str>,
        limit: usize,
        reverse: bool,
        max_bytes: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        let state = self.lock();
        let range = state.order.range::<str, _>((
            Bound::Included(start),
            end.map_or(Bound::Unbounded, Bound::Excluded),
        ));
        let entry = |key: &Arc<str>| {
            let value = state.values.get(key).cloned().unwrap_or_default();
            (key.to_string(), value)
        };
        let keys: Box<dyn Iterator<Item = &Arc<str>>> = if reverse {
            Box::new(range.rev())
        } else {
            Box::new(range)
        };
        within_bytes::<StorageError>(keys.take(limit).map(entry).map(Ok), max_bytes)
    }

    fn apply(&self, batch: Batch) -> Result<(), StorageError> {
        let mut state = self.lock();
        for (key, value) in batch {
            match value {
                Some(value) => state.put(key, value),
                None => state.remove(&key),
            }
        }
        Ok(())
    }

    fn clear(&self) -> Result<(), StorageError> {
        *self.lock() = MemoryState::default();
        Ok(())
    }

    fn replace(&self, entries: Vec<(String, Vec<u8>)>) -> Result<(), StorageError> {
        let state = MemoryState::from_entries(entries);
        *self.lock() = state;
        Ok(())
    }

    fn usage(&self) -> Result<Usage, StorageError> {
        let state = self.lock();
        Ok(Usage {
            keys: state.values.len() as u64,
            bytes: state.bytes,
        })
    }
}

/// The twin's keys and values.
const TABLE: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("kv");
/// Bytes stored (keys plus values), kept in the same transactions as the
/// data so it is always exact; the key count is the table's own length.
const META: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");
const BYTES: &str = "bytes";

/// State in a redb file: a copy-on-write B-tree with ACID transactions and
/// fsync on commit, so a killed host restarts with every acknowledged write
/// and no half-applied request.
struct RedbBackend {
    db: redb::Database,
}

impl RedbBackend {
    fn open(path: &Path) -> Result<Self, StorageError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(StorageError::from_display)?;
        }
        let db = redb::Database::create(path).map_err(StorageError::from_display)?;
        // Create the table up front so reads never meet a missing table.
        let txn = db.begin_write().map_err(StorageError::from_display)?;
        txn.open_table(TABLE).map_err(StorageError::from_display)?;
        txn.open_table(META).map_err(StorageError::from_display)?;
        txn.commit().map_err(StorageError::from_display)?;
        Ok(Self { db })
    }

    fn read<T>(
        &self,
        f: impl FnOnce(
            &redb::ReadOnlyTable<&'static str, &'static [u8]>,
        ) -> Result<T, redb::StorageError>,
    ) -> Result<T, StorageError> {
        use redb::ReadableDatabase;
        let txn = self.db.begin_read().map_err(StorageError::from_display)?;
        let table = txn.open_table(TABLE).map_err(StorageError::from_display)?;
        f(&table).map_err(StorageError::from_display)
    }
}

impl Backend for RedbBackend {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        self.read(|table| Ok(table.get(key)?.map(|v| v.value().to_vec())))
    }

    fn value_len(&self, key: &str) -> Result<Option<usize>, StorageError> {
        self.read(|table| Ok(table.get(key)?.map(|v| v.value().len())))
    }

    fn scan(
        &self,
        start: &str,
        end: Option<&str>,
        limit: usize,
        reverse: bool,
        max_bytes: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        self.read(|table| {
            let range = match end {
                Some(end) => table.range::<&str>(start..end)?,
                None => table.range::<&str>(start..)?,
            };
            let entry = |item: Result<
                (redb::AccessGuard<'_, &str>, redb::AccessGuard<'_, &[u8]>),
                redb::StorageError,
            >| {
                item.map(|(k, v)| (k.value().to_owned(), v.value().to_vec()))
            };
            if reverse {
                within_bytes(range.rev().take(limit).map(entry), max_bytes)
            } else {
                within_bytes(range.take(limit).map(entry), max_bytes)
            }
        })
    }

    fn apply(&self, batch: Batch) -> Result<(), StorageError> {
        use redb::ReadableTable;
        let txn = self.db.begin_write().map_err(StorageError::from_display)?;
        {
            let mut table = txn.open_table(TABLE).map_err(StorageError::from_display)?;
            let mut meta = txn.open_table(META).map_err(StorageError::from_display)?;
            let mut bytes = meta
                .get(BYTES)
                .map_err(StorageError::from_display)?
                .map_or(0, |v| v.value());
            for (key, value) in &batch {
                let old = match value {
                    Some(value) => {
                        bytes += (key.len() + value.len()) as u64;
                        table.insert(key.as_str(), value.as_slice())
                    }
                    None => table.remove(key.as_str()),
                }
                .map_err(StorageError::from_display)?;
                if let Some(old) = old {
                    bytes = bytes.saturating_sub((key.len() + old.value().len()) as u64);
                }
            }
            meta.insert(BYTES, bytes)
                .map_err(StorageError::from_display)?;
        }
        // The default durability is immediate: on disk before this returns.
        txn.commit().map_err(StorageError::from_display)
    }

    fn clear(&self) -> Result<(), StorageError> {
        let txn = self.db.begin_write().map_err(StorageError::from_display)?;
        txn.delete_table(TABLE)
            .map_err(StorageError::from_display)?;
        txn.delete_table(META).map_err(StorageError::from_display)?;
        txn.open_table(TABLE).map_err(StorageError::from_display)?;
        txn.open_table(META).map_err(StorageError::from_display)?;
        txn.commit().map_err(StorageError::from_display)
    }

    fn replace(&self, entries: Vec<(String, Vec<u8>)>) -> Result<(), StorageError> {
        let txn = self.db.begin_write().map_err(StorageError::from_display)?;
        txn.delete_table(TABLE)
            .map_err(StorageError::from_display)?;
        txn.delete_table(META).map_err(StorageError::from_display)?;
        {
            let mut table = txn.open_table(TABLE).map_err(StorageError::from_display)?;
            let mut meta = txn.open_table(META).map_err(StorageError::from_display)?;
            let mut bytes = 0u64;
            for (key, value) in &entries {
                bytes += (key.len() + value.len()) as u64;
                // A key given twice keeps its last value, counted once.
                let old = table
                    .insert(key.as_str(), value.as_slice())
                    .map_err(StorageError::from_display)?;
                if let Some(old) = old {
                    bytes -= (key.len() + old.value().len()) as u64;
                }
            }
            meta.insert(BYTES, bytes)
                .map_err(StorageError::from_display)?;
        }
        txn.commit().map_err(StorageError::from_display)
    }

    fn usage(&self) -> Result<Usage, StorageError> {
        use redb::{ReadableDatabase, ReadableTableMetadata};
        let txn = self.db.begin_read().map_err(StorageError::from_display)?;
        let table = txn.open_table(TABLE).map_err(StorageError::from_display)?;
        let meta = txn.open_table(META).map_err(StorageError::from_display)?;
        let keys = table.len().map_err(StorageError::from_display)?;
        let bytes = meta
            .get(BYTES)
            .map_err(StorageError::from_display)?
            .map_or(0, |v| v.value());
        Ok(Usage { keys, bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(entries: &[(String, Vec<u8>)]) -> Vec<&str> {
        entries.iter().map(|(k, _)| k.as_str()).collect()
    }

    fn backends() -> Vec<(&'static str, TwinState, Option<tempfile::TempDir>)> {
        let dir = tempfile::tempdir().unwrap();
        let durable = TwinState::durable(&dir.path().join("t").join("state.redb")).unwrap();
        vec![
            ("memory", TwinState::in_memory(), None),
            ("redb", durable, Some(dir)),
        ]
    }

    const NO_QUOTA: Quota = Quota {
        max_keys: u64::MAX,
        max_bytes: u64::MAX,
    };

    fn seed(state: &TwinState, pairs: &[&str]) {
        let mut txn = state.begin();
        for key in pairs {
            txn.set((*key).to_owned(), key.as_bytes().to_vec(), NO_QUOTA)
                .unwrap();
        }
        txn.commit().unwrap();
    }

    #[test]
    fn reads_see_own_writes_before_commit_and_others_do_not() {
        for (name, state, _dir) in backends() {
            seed(&state, &["a"]);
            let mut txn = state.begin();
            txn.set("b".into(), b"1".to_vec(), NO_QUOTA).unwrap();
            assert!(txn.delete("a").unwrap(), "{name}");
            assert_eq!(txn.get("b").unwrap(), Some(b"1".to_vec()), "{name}");
            assert_eq!(txn.get("a").unwrap(), None, "{name}");
            let other = state.begin();
            assert_eq!(other.get("a").unwrap(), Some(b"a".to_vec()), "{name}");
            assert_eq!(other.get("b").unwrap(), None, "{name}");
            txn.commit().unwrap();
            assert_eq!(
                state.begin().get("b").unwrap(),
                Some(b"1".to_vec()),
                "{name}"
            );
            assert_eq!(state.begin().get("a").unwrap(), None, "{name}");
        }
    }

    #[test]
    fn dropped_transaction_leaves_no_trace() {
        for (name, state, _dir) in backends() {
            seed(&state, &["a"]);
            let mut txn = state.begin();
            txn.set("a".into(), b"changed".to_vec(), NO_QUOTA).unwrap();
            txn.set("z".into(), b"new".to_vec(), NO_QUOTA).unwrap();
            drop(txn);
            assert_eq!(state.usage().unwrap().keys, 1, "{name}");
            assert_eq!(
                state.begin().get("a").unwrap(),
                Some(b"a".to_vec()),
                "{name}"
            );
        }
    }

    #[test]
    fn delete_reports_existence_as_seen_by_the_transaction() {
        for (name, state, _dir) in backends() {
            seed(&state, &["a"]);
            let mut txn = state.begin();
            assert!(!txn.delete("missing").unwrap(), "{name}");
            txn.set("new".into(), vec![], NO_QUOTA).unwrap();
            assert!(txn.delete("new").unwrap(), "{name}");
            assert!(txn.delete("a").unwrap(), "{name}");
            assert!(!txn.delete("a").unwrap(), "{name}");
        }
    }

    #[test]
    fn scan_merges_pending_writes_in_both_directions() {
        for (name, state, _dir) in backends() {
            seed(&state, &["k1", "k3", "k5", "k7"]);
            let mut txn = state.begin();
            txn.set("k2".into(), b"p".to_vec(), NO_QUOTA).unwrap();
            txn.set("k5".into(), b"overwritten".to_vec(), NO_QUOTA)
                .unwrap();
            txn.delete("k3").unwrap();
            txn.set("k9".into(), b"p".to_vec(), NO_QUOTA).unwrap();

            let up = txn.scan("k", None, 100, false).unwrap();
            assert_eq!(keys(&up), ["k1", "k2", "k5", "k7", "k9"], "{name}");
            assert_eq!(up[2].1, b"overwritten", "{name}");

            let down = txn.scan("k", None, 100, true).unwrap();
            assert_eq!(keys(&down), ["k9", "k7", "k5", "k2", "k1"], "{name}");
        }
    }

    #[test]
    fn scan_honours_bounds_and_limit() {
        for (name, state, _dir) in backends() {
            seed(&state, &["a", "b", "c", "d", "e"]);
            let txn = state.begin();
            let scan = |s, e, l, r| txn.scan(s, e, l, r).unwrap();
            assert_eq!(keys(&scan("b", Some("d"), 10, false)), ["b", "c"], "{name}");
            assert_eq!(keys(&scan("b", Some("d"), 10, true)), ["c", "b"], "{name}");
            assert_eq!(keys(&scan("a", None, 2, false)), ["a", "b"], "{name}");
            assert_eq!(keys(&scan("a", None, 2, true)), ["e", "d"], "{name}");
            assert!(scan("d", Some("b"), 10, false).is_empty(), "{name}");
            assert!(scan("a", None, 0, false).is_empty(), "{name}");
        }
    }

    #[test]
    fn scan_fills_the_limit_past_pending_deletes() {
        for (name, state, _dir) in backends() {
            seed(&state, &["a", "b", "c", "d"]);
            let mut txn = state.begin();
            txn.delete("a").unwrap();
            txn.delete("b").unwrap();
            assert_eq!(
                keys(&txn.scan("", None, 2, false).unwrap()),
                ["c", "d"],
                "{name}"
            );
            assert_eq!(keys(&txn.scan("", None, 1, true).unwrap()), ["d"], "{name}");
        }
    }

    #[test]
    fn clear_drops_everything() {
        for (name, state, _dir) in backends() {
            seed(&state, &["a", "b"]);
            state.clear().unwrap();
            assert_eq!(state.usage().unwrap().keys, 0, "{name}");
            assert!(
                state.begin().scan("", None, 10, false).unwrap().is_empty(),
                "{name}"
            );
            seed(&state, &["c"]);
            assert_eq!(state.usage().unwrap().keys, 1, "{name}");
        }
    }

    #[test]
    fn usage_tracks_keys_and_bytes_through_overwrites_and_deletes() {
        for (name, state, _dir) in backends() {
            seed(&state, &["ab", "cd"]);
            assert_eq!(
                state.usage().unwrap(),
                Usage { keys: 2, bytes: 8 },
                "{name}"
            );
            let mut txn = state.begin();
            txn.set("ab".into(), b"longer".to_vec(), NO_QUOTA).unwrap();
            txn.delete("cd").unwrap();
            txn.commit().unwrap();
            assert_eq!(
                state.usage().unwrap(),
                Usage { keys: 1, bytes: 8 },
                "{name}"
            );
            state.clear().unwrap();
            assert_eq!(state.usage().unwrap(), Usage::default(), "{name}");
        }
    }

    #[test]
    fn quotas_refuse_growth_but_allow_shrinking() {
        for (name, state, _dir) in backends() {
            let quota = Quota {
                max_keys: 2,
                max_bytes: 20,
            };
            let mut txn = state.begin();
            txn.set("a".into(), vec![0; 5], quota).unwrap();
            txn.set("b".into(), vec![0; 5], quota).unwrap();
            let third = txn.set("c".into(), vec![], quota);
            assert!(
                matches!(third, Err(SetError::Quota(ref m)) if m.contains("2 keys")),
                "{name}"
            );
            let big = txn.set("a".into(), vec![0; 15], quota);
            assert!(
                matches!(big, Err(SetError::Quota(ref m)) if m.contains("20 bytes")),
                "{name}"
            );
            txn.commit().unwrap();
            // Deleting makes room again, within one transaction.
            let mut txn = state.begin();
            txn.delete("a").unwrap();
            txn.set("c".into(), vec![0; 5], quota).unwrap();
            txn.commit().unwrap();
            assert_eq!(
                state.usage().unwrap(),
                Usage { keys: 2, bytes: 12 },
                "{name}"
            );
        }
    }

    #[test]
    fn export_then_import_round_trips_exactly() {
        for (name, state, _dir) in backends() {
            seed(&state, &["b", "a", "c"]);
            let mut txn = state.begin();
            txn.set("bin".into(), vec![0, 159, 255], NO_QUOTA).unwrap();
            txn.commit().unwrap();
            let exported = state.export().unwrap();
            assert_eq!(exported.len(), 4, "{name}");
            state.import(vec![("only".into(), b"x".to_vec())]).unwrap();
            assert_eq!(
                state.usage().unwrap(),
                Usage { keys: 1, bytes: 5 },
                "{name}"
            );
            state.import(exported.clone()).unwrap();
            assert_eq!(state.export().unwrap(), exported, "{name}");
            assert_eq!(state.usage().unwrap().keys, 4, "{name}");
        }
    }

    #[test]
    fn import_of_a_repeated_key_keeps_the_last_value_counted_once() {
        for (name, state, _dir) in backends() {
            state
                .import(vec![
                    ("k".into(), b"first".to_vec()),
                    ("j".into(), b"1".to_vec()),
                    ("k".into(), b"2".to_vec()),
                ])
                .unwrap();
            assert_eq!(
                state.export().unwrap(),
                [("j".into(), b"1".to_vec()), ("k".into(), b"2".to_vec())],
                "{name}"
            );
            assert_eq!(
                state.usage().unwrap(),
                Usage { keys: 2, bytes: 4 },
                "{name}"
            );
        }
    }

    #[test]
    fn memory_reads_and_scans_agree_after_overwrites_and_deletes() {
        let state = TwinState::in_memory();
        seed(&state, &["a/1", "a/2", "a/3", "b/1"]);
        let mut txn = state.begin();
        txn.set("a/2".into(), b"two".to_vec(), NO_QUOTA).unwrap();
        txn.delete("a/3").unwrap();
        txn.set("a/0".into(), b"zero".to_vec(), NO_QUOTA).unwrap();
        txn.commit().unwrap();
        let txn = state.begin();
        assert_eq!(txn.get("a/2").unwrap(), Some(b"two".to_vec()));
        assert_eq!(txn.get("a/3").unwrap(), None);
        let scanned = txn.scan("a/", Some("a0"), 10, true).unwrap();
        assert_eq!(keys(&scanned), ["a/2", "a/1", "a/0"]);
        assert_eq!(scanned[0].1, b"two");
        assert_eq!(state.usage().unwrap().keys, 4);
    }

    #[test]
    fn durable_state_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("twin").join("state.redb");
        {
            let state = TwinState::durable(&path).unwrap();
            seed(&state, &["kept", "also"]);
            let mut txn = state.begin();
            txn.set("never".into(), b"x".to_vec(), NO_QUOTA).unwrap();
            drop(txn);
        }
        let state = TwinState::durable(&path).unwrap();
        assert_eq!(state.usage().unwrap().keys, 2);
        assert_eq!(state.begin().get("kept").unwrap(), Some(b"kept".to_vec()));
        assert_eq!(state.begin().get("never").unwrap(), None);
    }
}

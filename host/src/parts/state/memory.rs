//! State in memory: the default, for tests that want a clean slate and speed.

use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};

use super::*;

/// State in memory: gone when the process exits.
#[derive(Default)]
pub(super) struct MemoryBackend {
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

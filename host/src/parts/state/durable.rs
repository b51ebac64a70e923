//! State in a redb file per twin (`--state-dir`): survives restarts.

use std::path::Path;

use super::*;

/// The twin's keys and values.
const TABLE: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("kv");
/// Bytes stored (keys plus values), kept in the same transactions as the
/// data so it is always exact; the key count is the table's own length.
const META: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");
const BYTES: &str = "bytes";

/// State in a redb file: a copy-on-write B-tree with ACID transactions and
/// fsync on commit, so a killed host restarts with every acknowledged write
/// and no half-applied request.
pub(super) struct RedbBackend {
    db: redb::Database,
}

impl RedbBackend {
    pub(super) fn open(path: &Path) -> Result<Self, StorageError> {
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

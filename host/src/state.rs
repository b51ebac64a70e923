//! Each twin's key-value state, and the per-request transaction over it.
//!
//! A twin's requests run one at a time (see `docs/decisions.md`), so a
//! transaction never races another one: it is an overlay of pending writes on
//! top of the committed map, applied in one step when the handler returns and
//! dropped if it traps. That gives every request a linearizable view with no
//! validation or retry, at the cost of one core per twin.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

/// Committed state of one twin. Cloning shares it.
#[derive(Clone, Default)]
pub struct TwinState {
    map: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
}

impl std::fmt::Debug for TwinState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwinState")
            .field("keys", &self.lock().len())
            .finish()
    }
}

impl TwinState {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        // A poisoned lock means a panic while holding it; the map itself is
        // always left consistent (every mutation is a single call), so keep going.
        self.map
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts a transaction that reads this state and buffers its writes.
    pub fn begin(&self) -> Transaction {
        Transaction {
            state: self.clone(),
            writes: BTreeMap::new(),
        }
    }

    /// Drops every key.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Number of committed keys.
    pub fn len(&self) -> usize {
        self.lock().len()
    }
}

/// The writes of one request, not yet visible to anyone else.
#[derive(Debug)]
pub struct Transaction {
    state: TwinState,
    /// `None` is a pending delete.
    writes: BTreeMap<String, Option<Vec<u8>>>,
}

impl Transaction {
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        match self.writes.get(key) {
            Some(pending) => pending.clone(),
            None => self.state.lock().get(key).cloned(),
        }
    }

    pub fn set(&mut self, key: String, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }

    /// Deletes `key`; returns whether it existed as seen by this transaction.
    pub fn delete(&mut self, key: &str) -> bool {
        let existed = self.get(key).is_some();
        self.writes.insert(key.to_owned(), None);
        existed
    }

    /// Entries with `start <= key < end` as this transaction sees them:
    /// committed entries merged with pending writes, ascending or descending,
    /// at most `limit`.
    pub fn scan(
        &self,
        start: &str,
        end: Option<&str>,
        limit: usize,
        reverse: bool,
    ) -> Vec<(String, Vec<u8>)> {
        if limit == 0 || end.is_some_and(|end| end <= start) {
            return Vec::new();
        }
        let range = (
            Bound::Included(start),
            end.map_or(Bound::Unbounded, Bound::Excluded),
        );
        let committed = self.state.lock();
        let mut base = committed.range::<str, _>(range);
        let mut pending = self.writes.range::<str, _>(range);
        let mut out = Vec::with_capacity(limit.min(64));
        // A merge of two sorted iterators in which the pending write wins on
        // equal keys and a pending delete hides the committed entry.
        let (mut b, mut p) = if reverse {
            (base.next_back(), pending.next_back())
        } else {
            (base.next(), pending.next())
        };
        while out.len() < limit {
            let take_pending = match (b, p) {
                (None, None) => break,
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some((bk, _)), Some((pk, _))) => {
                    if bk == pk {
                        b = if reverse {
                            base.next_back()
                        } else {
                            base.next()
                        };
                        true
                    } else {
                        (pk < bk) != reverse
                    }
                }
            };
            if take_pending {
                let (k, v) = p.expect("pending entry present");
                if let Some(v) = v {
                    out.push((k.clone(), v.clone()));
                }
                p = if reverse {
                    pending.next_back()
                } else {
                    pending.next()
                };
            } else {
                let (k, v) = b.expect("committed entry present");
                out.push((k.clone(), v.clone()));
                b = if reverse {
                    base.next_back()
                } else {
                    base.next()
                };
            }
        }
        out
    }

    /// Applies every pending write at once.
    pub fn commit(self) {
        if self.writes.is_empty() {
            return;
        }
        let mut committed = self.state.lock();
        for (key, value) in self.writes {
            match value {
                Some(value) => committed.insert(key, value),
                None => committed.remove(&key),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(entries: &[(String, Vec<u8>)]) -> Vec<&str> {
        entries.iter().map(|(k, _)| k.as_str()).collect()
    }

    fn seeded(pairs: &[&str]) -> TwinState {
        let state = TwinState::default();
        let mut txn = state.begin();
        for key in pairs {
            txn.set((*key).to_owned(), key.as_bytes().to_vec());
        }
        txn.commit();
        state
    }

    #[test]
    fn reads_see_own_writes_before_commit_and_others_do_not() {
        let state = seeded(&["a"]);
        let mut txn = state.begin();
        txn.set("b".into(), b"1".to_vec());
        assert!(txn.delete("a"));
        assert_eq!(txn.get("b"), Some(b"1".to_vec()));
        assert_eq!(txn.get("a"), None);
        // Not yet committed: a second reader sees the old state.
        let other = state.begin();
        assert_eq!(other.get("a"), Some(b"a".to_vec()));
        assert_eq!(other.get("b"), None);
        txn.commit();
        assert_eq!(state.begin().get("b"), Some(b"1".to_vec()));
        assert_eq!(state.begin().get("a"), None);
    }

    #[test]
    fn dropped_transaction_leaves_no_trace() {
        let state = seeded(&["a"]);
        let mut txn = state.begin();
        txn.set("a".into(), b"changed".to_vec());
        txn.set("z".into(), b"new".to_vec());
        drop(txn);
        assert_eq!(state.len(), 1);
        assert_eq!(state.begin().get("a"), Some(b"a".to_vec()));
    }

    #[test]
    fn delete_reports_existence_as_seen_by_the_transaction() {
        let state = seeded(&["a"]);
        let mut txn = state.begin();
        assert!(!txn.delete("missing"));
        txn.set("new".into(), vec![]);
        assert!(txn.delete("new"));
        assert!(txn.delete("a"));
        assert!(!txn.delete("a"));
    }

    #[test]
    fn scan_merges_pending_writes_in_both_directions() {
        let state = seeded(&["k1", "k3", "k5", "k7"]);
        let mut txn = state.begin();
        txn.set("k2".into(), b"p".to_vec());
        txn.set("k5".into(), b"overwritten".to_vec());
        txn.delete("k3");
        txn.set("k9".into(), b"p".to_vec());

        let up = txn.scan("k", None, 100, false);
        assert_eq!(keys(&up), ["k1", "k2", "k5", "k7", "k9"]);
        assert_eq!(up[2].1, b"overwritten");

        let down = txn.scan("k", None, 100, true);
        assert_eq!(keys(&down), ["k9", "k7", "k5", "k2", "k1"]);
    }

    #[test]
    fn scan_honours_bounds_and_limit() {
        let state = seeded(&["a", "b", "c", "d", "e"]);
        let txn = state.begin();
        assert_eq!(keys(&txn.scan("b", Some("d"), 10, false)), ["b", "c"]);
        assert_eq!(keys(&txn.scan("b", Some("d"), 10, true)), ["c", "b"]);
        assert_eq!(keys(&txn.scan("a", None, 2, false)), ["a", "b"]);
        assert_eq!(keys(&txn.scan("a", None, 2, true)), ["e", "d"]);
        assert!(txn.scan("d", Some("b"), 10, false).is_empty());
        assert!(txn.scan("a", None, 0, false).is_empty());
    }

    #[test]
    fn scan_skips_pending_deletes_without_counting_them() {
        let state = seeded(&["a", "b", "c"]);
        let mut txn = state.begin();
        txn.delete("a");
        txn.delete("b");
        assert_eq!(keys(&txn.scan("", None, 1, false)), ["c"]);
    }
}

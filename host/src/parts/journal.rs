//! A bounded journal of each twin's requests and responses, so a test can
//! assert on what its code sent. Oldest entries are dropped first; bodies are
//! kept up to a few KiB each, so the journal's memory is bounded by
//! `capacity × (2 × BODY_BYTES + headers)`.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::Serialize;

/// How much of each body is kept.
pub const BODY_BYTES: usize = 4096;

/// One exchange.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Increases by one per request to this twin, from 1.
    pub seq: u64,
    /// Wall time the request arrived, milliseconds since the Unix epoch.
    pub at_millis: u64,
    pub method: String,
    pub path: String,
    pub query: String,
    pub request_headers: Vec<(String, String)>,
    /// The first `BODY_BYTES` of each body, kept as bytes and shown as
    /// (lossy) text only when someone reads the journal.
    #[serde(serialize_with = "as_text")]
    pub request_body: Vec<u8>,
    pub status: u16,
    #[serde(serialize_with = "as_text")]
    pub response_body: Vec<u8>,
    /// Whether a body was cut to `BODY_BYTES`.
    pub truncated: bool,
    pub duration_micros: u64,
}

/// The journal of one twin.
#[derive(Debug)]
pub struct Journal {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: VecDeque<Entry>,
    next_seq: u64,
}

/// Which entries to return.
#[derive(Debug, Default)]
pub struct Filter<'a> {
    pub method: Option<&'a str>,
    /// A path prefix.
    pub path: Option<&'a str>,
    /// At most this many, newest last.
    pub limit: Option<usize>,
}

impl Journal {
    /// A journal keeping at most `capacity` entries; `0` keeps none.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Inner {
                entries: VecDeque::with_capacity(capacity.min(1024)),
                next_seq: 1,
            }),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.capacity > 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records an exchange, dropping the oldest past capacity.
    pub fn record(&self, mut entry: Entry) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.lock();
        entry.seq = inner.next_seq;
        inner.next_seq += 1;
        if inner.entries.len() == self.capacity {
            inner.entries.pop_front();
        }
        inner.entries.push_back(entry);
    }

    pub fn entries(&self, filter: &Filter<'_>) -> Vec<Entry> {
        let inner = self.lock();
        let matching: Vec<&Entry> = inner
            .entries
            .iter()
            .filter(|e| {
                filter
                    .method
                    .is_none_or(|m| e.method.eq_ignore_ascii_case(m))
            })
            .filter(|e| filter.path.is_none_or(|p| e.path.starts_with(p)))
            .collect();
        let skip = filter
            .limit
            .map_or(0, |limit| matching.len().saturating_sub(limit));
        matching.into_iter().skip(skip).cloned().collect()
    }

    pub fn clear(&self) {
        self.lock().entries.clear();
    }

    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

fn as_text<S: serde::Serializer>(body: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&String::from_utf8_lossy(body))
}

/// Cuts an owned body to `BODY_BYTES` (no copy); whether it was cut.
pub fn keep_owned(mut body: Vec<u8>) -> (Vec<u8>, bool) {
    let cut = body.len() > BODY_BYTES;
    body.truncate(BODY_BYTES);
    (body, cut)
}

/// Copies at most `BODY_BYTES` of a borrowed body; whether it was cut.
pub fn keep_prefix(body: &[u8]) -> (Vec<u8>, bool) {
    (
        body[..body.len().min(BODY_BYTES)].to_vec(),
        body.len() > BODY_BYTES,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(method: &str, path: &str) -> Entry {
        Entry {
            seq: 0,
            at_millis: 0,
            method: method.into(),
            path: path.into(),
            query: String::new(),
            request_headers: vec![],
            request_body: Vec::new(),
            status: 200,
            response_body: Vec::new(),
            truncated: false,
            duration_micros: 1,
        }
    }

    #[test]
    fn keeps_the_newest_within_capacity() {
        let journal = Journal::new(3);
        for n in 0..10 {
            journal.record(entry("GET", &format!("/{n}")));
        }
        let all = journal.entries(&Filter::default());
        assert_eq!(all.len(), 3);
        assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), [8, 9, 10]);
        assert_eq!(all[2].path, "/9");
    }

    #[test]
    fn filters_by_method_path_prefix_and_limit() {
        let journal = Journal::new(10);
        journal.record(entry("GET", "/v1/customers/cus_1"));
        journal.record(entry("POST", "/v1/customers"));
        journal.record(entry("POST", "/v1/charges"));
        let posts = journal.entries(&Filter {
            method: Some("post"),
            ..Filter::default()
        });
        assert_eq!(posts.len(), 2);
        let customers = journal.entries(&Filter {
            path: Some("/v1/customers"),
            limit: Some(1),
            ..Filter::default()
        });
        assert_eq!(customers.len(), 1);
        assert_eq!(customers[0].method, "POST");
    }

    #[test]
    fn zero_capacity_records_nothing() {
        let journal = Journal::new(0);
        journal.record(entry("GET", "/"));
        assert_eq!(journal.len(), 0);
    }

    #[test]
    fn bodies_are_cut_at_the_bound() {
        let (kept, cut) = keep_owned(vec![b'a'; BODY_BYTES + 10]);
        assert!(cut);
        assert_eq!(kept.len(), BODY_BYTES);
        assert_eq!(keep_prefix(b"short"), (b"short".to_vec(), false));
        let (kept, cut) = keep_prefix(&[b'b'; BODY_BYTES + 1]);
        assert_eq!((kept.len(), cut), (BODY_BYTES, true));
    }
}

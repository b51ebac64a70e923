//! A bounded journal of each twin's requests and responses, so a test can
//! assert on what its code sent. Oldest entries are dropped first; bodies are
//! kept up to a few KiB each, so the journal's memory is bounded by
//! `capacity × (2 × BODY_BYTES + headers)`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

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
    /// Finer criteria: query, body fields, headers, status, time.
    pub matching: Option<&'a Match>,
}

/// What a recorded request must look like, every field given holding: what
/// a test asserts its code sent (`POST …/requests/verify`), WireMock's
/// `verify` for twins.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Match {
    /// The method, in any case.
    #[serde(default)]
    pub method: Option<String>,
    /// The path the twin saw; `*` spans any run of characters.
    #[serde(default)]
    pub path: Option<String>,
    /// Query parameters that must have these values.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// Body fields that must have these values: a form's keys as sent
    /// (`metadata[plan]`), a JSON body's by dotted path (`data.email`).
    #[serde(default)]
    pub body: BTreeMap<String, serde_json::Value>,
    /// Headers (any case in the name) that must have these values; the
    /// credential is `authorization`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The status the twin answered.
    #[serde(default)]
    pub status: Option<u16>,
    /// Arrived at or after (wall milliseconds).
    #[serde(default)]
    pub since_millis: Option<u64>,
    /// Arrived at or before (wall milliseconds).
    #[serde(default)]
    pub until_millis: Option<u64>,
}

impl Match {
    /// The criteria `entry` fails, each said in a few words (none: it
    /// matches). Near misses are the entries with the fewest.
    pub fn misses(&self, entry: &Entry) -> Vec<String> {
        let mut misses = Vec::new();
        if let Some(method) = &self.method
            && method != "*"
            && !entry.method.eq_ignore_ascii_case(method)
        {
            misses.push(format!("method is {}, not {method}", entry.method));
        }
        if let Some(path) = &self.path
            && !crate::faults::glob(path, &entry.path)
        {
            misses.push(format!("path is {}, not {path}", entry.path));
        }
        if let Some(status) = self.status
            && entry.status != status
        {
            misses.push(format!("status is {}, not {status}", entry.status));
        }
        if self.since_millis.is_some_and(|t| entry.at_millis < t) {
            misses.push("arrived before since_millis".to_owned());
        }
        if self.until_millis.is_some_and(|t| entry.at_millis > t) {
            misses.push("arrived after until_millis".to_owned());
        }
        if !self.query.is_empty() {
            let query: Vec<(String, String)> = form_urlencoded::parse(entry.query.as_bytes())
                .into_owned()
                .collect();
            for (name, want) in &self.query {
                let got = query
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str());
                if got != Some(want.as_str()) {
                    misses.push(format!("query {name} is {}, not {want:?}", shown(got)));
                }
            }
        }
        for (name, want) in &self.headers {
            let got = entry
                .request_headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str());
            if got != Some(want.as_str()) {
                misses.push(format!("header {name} is {}, not {want:?}", shown(got)));
            }
        }
        if !self.body.is_empty() {
            let fields = BodyFields::of(entry);
            for (name, want) in &self.body {
                if !fields.has(name, want) {
                    misses.push(format!(
                        "body {name} is {}, not {want}",
                        shown(fields.get(name).as_deref())
                    ));
                }
            }
        }
        misses
    }
}

fn shown(value: Option<&str>) -> String {
    value.map_or_else(|| "absent".to_owned(), |v| format!("{v:?}"))
}

/// A recorded request body read as fields: JSON, or a form.
enum BodyFields {
    Json(serde_json::Value),
    Form(Vec<(String, String)>),
}

impl BodyFields {
    fn of(entry: &Entry) -> BodyFields {
        let is_json = entry.request_headers.iter().any(|(k, v)| {
            k.eq_ignore_ascii_case("content-type") && v.to_ascii_lowercase().contains("json")
        });
        match serde_json::from_slice(&entry.request_body) {
            Ok(value) if is_json => BodyFields::Json(value),
            _ => BodyFields::Form(
                form_urlencoded::parse(&entry.request_body)
                    .into_owned()
                    .collect(),
            ),
        }
    }

    fn json_at(&self, path: &str) -> Option<&serde_json::Value> {
        let BodyFields::Json(value) = self else {
            return None;
        };
        path.split('.').try_fold(value, |v, key| match v {
            serde_json::Value::Array(items) => items.get(key.parse::<usize>().ok()?),
            _ => v.get(key),
        })
    }

    /// The field as text, for messages.
    fn get(&self, name: &str) -> Option<String> {
        match self {
            BodyFields::Form(pairs) => pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone()),
            BodyFields::Json(_) => self.json_at(name).map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            }),
        }
    }

    /// Whether the field holds `want`: equal JSON, or equal text (a form's
    /// values are text, so `500` matches `amount=500`).
    fn has(&self, name: &str, want: &serde_json::Value) -> bool {
        let want_text = match want {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match self {
            BodyFields::Json(_) => self
                .json_at(name)
                .is_some_and(|got| got == want || self.get(name).as_deref() == Some(&want_text)),
            BodyFields::Form(_) => self.get(name).as_deref() == Some(&want_text),
        }
    }
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
            .filter(|e| filter.matching.is_none_or(|m| m.misses(e).is_empty()))
            .collect();
        let skip = filter
            .limit
            .map_or(0, |limit| matching.len().saturating_sub(limit));
        matching.into_iter().skip(skip).cloned().collect()
    }

    pub fn clear(&self) {
        self.lock().entries.clear();
    }

    /// How many entries `matching` holds for, and the `most` nearest misses
    /// (fewest failed criteria, newest first) with what each failed.
    pub fn verify(&self, matching: &Match, most: usize) -> (usize, Vec<(Entry, Vec<String>)>) {
        let inner = self.lock();
        let mut matched = 0;
        let mut near: Vec<(Entry, Vec<String>)> = Vec::new();
        for entry in inner.entries.iter().rev() {
            let misses = matching.misses(entry);
            if misses.is_empty() {
                matched += 1;
            } else {
                near.push((entry.clone(), misses));
            }
        }
        // Stable: among equals, the newest (seen first) stays first.
        near.sort_by_key(|(_, misses)| misses.len());
        near.truncate(most);
        (matched, near)
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

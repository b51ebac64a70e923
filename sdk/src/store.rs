//! The twin's ordered key-value store, raw and typed.
//!
//! Everything a twin remembers between requests lives here. The host makes
//! each request a transaction: reads see the request's own writes, and all
//! writes commit together when the handler returns, or not at all if it
//! panics. Keys order by their UTF-8 bytes, which is what makes prefix scans
//! and the zero-padded sequence numbers of [`Collection`] work.
//!
//! The raw functions ([`get`], [`set`], [`delete`], [`scan`]) mirror the host
//! interface; [`get_json`]/[`set_json`], [`increment`] and [`Collection`] add
//! types on top. Values written by the typed helpers are JSON.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{Error, Request};

/// Most entries one [`scan`] returns, whatever `limit` asks for (the host's
/// bound on a single call).
pub const MAX_SCAN: u32 = 10_000;

/// Why a write was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The twin's key or byte quota would be exceeded; the message says which.
    QuotaExceeded(String),
    /// The key or value is not acceptable (empty or over-long key).
    Invalid(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::QuotaExceeded(m) => write!(f, "store quota exceeded: {m}"),
            StoreError::Invalid(m) => write!(f, "invalid store write: {m}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// A refused write is the twin's failure, not the client's: a 500
/// `api_error` with code `store_quota_exceeded` or `store_invalid`.
impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        let code = match e {
            StoreError::QuotaExceeded(_) => "store_quota_exceeded",
            StoreError::Invalid(_) => "store_invalid",
        };
        Error::internal(e.to_string()).with_code(code)
    }
}

/// One key and its value, as returned by [`scan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key.
    pub key: String,
    /// The raw value.
    pub value: Vec<u8>,
}

/// The value at `key`.
pub fn get(key: &str) -> Option<Vec<u8>> {
    crate::sys::store_get(key)
}

/// Sets `key` to `value`.
pub fn set(key: &str, value: &[u8]) -> Result<(), StoreError> {
    crate::sys::store_set(key, value)
}

/// Removes `key`; returns whether it existed.
pub fn delete(key: &str) -> bool {
    crate::sys::store_delete(key)
}

/// Entries with `start <= key < end` (no upper bound when `end` is `None`),
/// at most `limit` (capped at [`MAX_SCAN`]), ascending, or descending from
/// the top of the range when `reverse` is set.
pub fn scan(start: &str, end: Option<&str>, limit: u32, reverse: bool) -> Vec<Entry> {
    crate::sys::store_scan(start, end, limit, reverse)
}

/// The smallest string greater than every string starting with `prefix`, for
/// use as a scan's exclusive `end`; `None` when there is none (empty prefix
/// or all `char::MAX`).
pub fn prefix_end(prefix: &str) -> Option<String> {
    // Drop trailing `char::MAX`es, then bump the last remaining character:
    // one pass from the end, no copy of the prefix as a `Vec<char>` (every
    // list and scan asks for this).
    let mut rest = prefix;
    while let Some(last) = rest.chars().next_back() {
        rest = &rest[..rest.len() - last.len_utf8()];
        // The next scalar value after `last`, skipping the surrogate gap.
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(c as u32 + 1),
        };
        if let Some(next) = next {
            let mut end = String::with_capacity(rest.len() + next.len_utf8());
            end.push_str(rest);
            end.push(next);
            return Some(end);
        }
    }
    None
}

/// Appends `n` in decimal, zero-padded to at least `width` digits: numbers
/// written this way into keys sort as text in numeric order (sequence
/// numbers, due times). Cheaper than `format!("{n:0width$}")`, which in a
/// twin's hot path (every insert and list builds such keys) cost more than
/// the store calls around it.
pub fn push_padded(key: &mut String, n: u64, width: usize) {
    let mut digits = [0u8; 20]; // u64::MAX has 20 digits
    let mut start = digits.len();
    let mut rest = n;
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let len = digits.len() - start;
    key.extend(std::iter::repeat_n('0', width.saturating_sub(len)));
    key.extend(digits[start..].iter().map(|&d| char::from(d)));
}

/// Entries whose key starts with `prefix`; see [`scan`].
pub fn scan_prefix(prefix: &str, limit: u32, reverse: bool) -> Vec<Entry> {
    scan(prefix, prefix_end(prefix).as_deref(), limit, reverse)
}

/// The JSON value at `key`; a value that does not decode as `T` is a 500
/// (the twin wrote something else there).
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, Error> {
    get(key).map(|bytes| decode(key, &bytes)).transpose()
}

/// Stores `value` as JSON at `key`.
pub fn set_json<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<(), Error> {
    set(key, &encode(key, value)?)?;
    Ok(())
}

/// The counter at `key` (0 when unset). Counters are stored as JSON integers.
pub fn counter(key: &str) -> Result<i64, Error> {
    Ok(get_json::<i64>(key)?.unwrap_or(0))
}

/// Adds `by` to the counter at `key` and returns the new value, in exactly
/// one read and one write. Atomic because the request is a transaction.
pub fn increment(key: &str, by: i64) -> Result<i64, Error> {
    let value = counter(key)?
        .checked_add(by)
        .ok_or_else(|| Error::bad_request(format!("counter `{key}` would overflow")))?;
    set_json(key, &value)?;
    Ok(value)
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::internal(format!("stored value at `{key}` is unreadable: {e}")))
}

fn encode<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value)
        .map_err(|e| Error::internal(format!("cannot store value at `{key}`: {e}")))
}

/// Which slice of a [`Collection`] to list, with Stripe's cursor semantics:
/// `starting_after` returns the items after that id in list order,
/// `ending_before` the items just before it (still in list order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Most items to return.
    pub limit: u32,
    /// Return items after this id.
    pub starting_after: Option<String>,
    /// Return items before this id.
    pub ending_before: Option<String>,
}

impl Default for Page {
    fn default() -> Self {
        Page::first(10)
    }
}

impl Page {
    /// The first `limit` items.
    pub fn first(limit: u32) -> Self {
        Page {
            limit,
            starting_after: None,
            ending_before: None,
        }
    }

    /// Reads `limit`, `starting_after` and `ending_before` from the query
    /// string as Stripe does: `limit` defaults to `default_limit` and must be
    /// `1..=max_limit`, and only one cursor may be given. Empty values count
    /// as absent. Violations are 400s naming the parameter.
    pub fn from_query(
        request: &Request,
        default_limit: u32,
        max_limit: u32,
    ) -> Result<Page, Error> {
        let mut page = Page::first(default_limit);
        for (k, v) in crate::form::pairs(&request.query) {
            if v.is_empty() {
                continue;
            }
            match k.as_ref() {
                "limit" => {
                    let n: i64 = v.trim().parse().map_err(|_| {
                        Error::bad_request(format!("Invalid integer: {v}")).with_param("limit")
                    })?;
                    if n < 1 {
                        return Err(Error::bad_request(
                            "This value must be greater than or equal to 1.",
                        )
                        .with_param("limit"));
                    }
                    if n > i64::from(max_limit) {
                        return Err(Error::bad_request(format!(
                            "This value must be less than or equal to {max_limit}."
                        ))
                        .with_param("limit"));
                    }
                    page.limit = u32::try_from(n).unwrap_or(max_limit);
                }
                "starting_after" => page.starting_after = Some(v.into_owned()),
                "ending_before" => page.ending_before = Some(v.into_owned()),
                _ => {}
            }
        }
        if page.starting_after.is_some() && page.ending_before.is_some() {
            return Err(Error::bad_request(
                "You may only specify one of these parameters: ending_before, starting_after.",
            )
            .with_param("ending_before"));
        }
        Ok(page)
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct ListPage<T> {
    /// The items, in the requested order.
    pub items: Vec<T>,
    /// Whether more items lie beyond this page in the direction of travel
    /// (after it for `starting_after` or no cursor, before it for
    /// `ending_before`): Stripe's `has_more`.
    pub has_more: bool,
}

/// A typed set of objects under a key prefix, listed in insertion order.
///
/// Layout, so it can be inspected in a store dump:
/// * `{prefix}/obj/{id}` — `{"seq":n,"data":<T as JSON>}`
/// * `{prefix}/idx/{seq:020}/{id}` — the order index; zero padding makes key
///   order equal insertion order, so a (reverse) scan lists oldest (newest)
///   first without sorting.
/// * `{prefix}/seq` — the last sequence number handed out.
///
/// ```
/// use wt_sdk::{Collection, Page};
/// # wt_sdk::testing::reset();
/// const ITEMS: Collection<String> = Collection::new("items");
/// ITEMS.insert("a", &"first".to_owned()).unwrap();
/// ITEMS.insert("b", &"second".to_owned()).unwrap();
/// let page = ITEMS.list(&Page::first(1), true).unwrap();
/// assert_eq!((page.items, page.has_more), (vec!["second".to_owned()], true));
/// ```
pub struct Collection<T> {
    prefix: Cow<'static, str>,
    _type: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for Collection<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Collection")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl<T> Clone for Collection<T> {
    fn clone(&self) -> Self {
        Collection {
            prefix: self.prefix.clone(),
            _type: PhantomData,
        }
    }
}

#[derive(Deserialize)]
struct Stored<T> {
    seq: u64,
    data: T,
}

/// A stored object's JSON text, not decoded.
#[derive(Deserialize)]
struct StoredRaw {
    data: Box<serde_json::value::RawValue>,
}

#[derive(Serialize)]
struct StoredRef<'a, T: ?Sized> {
    seq: u64,
    data: &'a T,
}

/// Sequence numbers are zero-padded to this width so they sort as text.
const SEQ_WIDTH: usize = 20;

impl<T: Serialize + DeserializeOwned> Collection<T> {
    /// A collection under `prefix` (usable in a `const`). Prefixes of
    /// different collections must not be prefixes of one another.
    pub const fn new(prefix: &'static str) -> Self {
        Collection {
            prefix: Cow::Borrowed(prefix),
            _type: PhantomData,
        }
    }

    /// A collection under a prefix computed at run time (per-account data,
    /// say).
    pub fn with_prefix(prefix: impl Into<String>) -> Self {
        Collection {
            prefix: Cow::Owned(prefix.into()),
            _type: PhantomData,
        }
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    // Keys are built by concatenation: `format!` cost a Stripe create ~9%
    // of its guest time (the formatting machinery and a growing buffer).
    fn obj_key(&self, id: &str) -> String {
        [&*self.prefix, "/obj/", id].concat()
    }

    fn idx_prefix(&self) -> String {
        [&*self.prefix, "/idx/"].concat()
    }

    fn idx_key(&self, seq: u64, id: &str) -> String {
        let mut key = String::with_capacity(self.prefix.len() + SEQ_WIDTH + id.len() + 6);
        key.push_str(&self.prefix);
        key.push_str("/idx/");
        push_padded(&mut key, seq, SEQ_WIDTH);
        key.push('/');
        key.push_str(id);
        key
    }

    fn seq_key(&self) -> String {
        [&*self.prefix, "/seq"].concat()
    }

    fn load(&self, id: &str) -> Result<Option<Stored<T>>, Error> {
        get_json(&self.obj_key(id))
    }

    fn store<V: Serialize + ?Sized>(&self, id: &str, seq: u64, value: &V) -> Result<(), Error> {
        set_json(&self.obj_key(id), &StoredRef { seq, data: value })
    }

    /// Adds a new object at the end of the order. An id that already exists
    /// is a 400 `resource_already_exists` (ids are meant to be unique).
    pub fn insert(&self, id: &str, value: &T) -> Result<(), Error> {
        self.insert_encoded(id, value)
    }

    /// [`insert`](Self::insert) for an object already encoded as JSON (by
    /// `serde_json::value::to_raw_value`): a twin that also sends the same
    /// object in its response or an event encodes it once, not each time.
    /// The text is stored as given, so it must be what `T` would encode to.
    pub fn insert_raw(&self, id: &str, value: &serde_json::value::RawValue) -> Result<(), Error> {
        self.insert_encoded(id, value)
    }

    fn insert_encoded<V: Serialize + ?Sized>(&self, id: &str, value: &V) -> Result<(), Error> {
        if get(&self.obj_key(id)).is_some() {
            return Err(Error::bad_request(format!("Object '{id}' already exists."))
                .with_code("resource_already_exists")
                .with_param("id"));
        }
        let seq = u64::try_from(increment(&self.seq_key(), 1)?)
            .map_err(|_| Error::internal("collection sequence is negative"))?;
        self.store(id, seq, value)?;
        set(&self.idx_key(seq, id), id.as_bytes())?;
        Ok(())
    }

    /// The object with `id`.
    pub fn get(&self, id: &str) -> Result<Option<T>, Error> {
        Ok(self.load(id)?.map(|s| s.data))
    }

    /// The object with `id` as the JSON text it was stored as, without
    /// decoding it: serving it as is skips building and re-serializing a
    /// value, the bulk of a plain retrieve.
    pub fn get_raw(&self, id: &str) -> Result<Option<Box<serde_json::value::RawValue>>, Error> {
        Ok(get_json::<StoredRaw>(&self.obj_key(id))?.map(|s| s.data))
    }

    /// Whether `id` exists.
    pub fn contains(&self, id: &str) -> bool {
        get(&self.obj_key(id)).is_some()
    }

    /// Inserts or replaces; a replaced object keeps its place in the order.
    pub fn put(&self, id: &str, value: &T) -> Result<(), Error> {
        match self.load_seq(id)? {
            Some(seq) => self.store(id, seq, value),
            None => self.insert(id, value),
        }
    }

    /// Reads `id`, lets `f` change it and writes it back; `None` when absent.
    pub fn update(&self, id: &str, f: impl FnOnce(&mut T)) -> Result<Option<T>, Error> {
        let Some(Stored { seq, mut data }) = self.load(id)? else {
            return Ok(None);
        };
        f(&mut data);
        self.store(id, seq, &data)?;
        Ok(Some(data))
    }

    /// Removes `id`, returning the object it held.
    pub fn remove(&self, id: &str) -> Result<Option<T>, Error> {
        let Some(stored) = self.load(id)? else {
            return Ok(None);
        };
        delete(&self.obj_key(id));
        delete(&self.idx_key(stored.seq, id));
        Ok(Some(stored.data))
    }

    fn load_seq(&self, id: &str) -> Result<Option<u64>, Error> {
        #[derive(Deserialize)]
        struct SeqOnly {
            seq: u64,
        }
        Ok(get_json::<SeqOnly>(&self.obj_key(id))?.map(|s| s.seq))
    }

    fn cursor_seq(&self, id: &str, param: &str) -> Result<u64, Error> {
        self.load_seq(id)?.ok_or_else(|| {
            Error::not_found(format!("No such object: '{id}'"))
                .with_code("resource_missing")
                .with_param(param)
        })
    }

    /// The index range a page reads: `(start, end, reverse, backwards)`.
    /// Each case picks the key range on the far side of the cursor and scans
    /// away from it; `backwards` marks the cases that walk against the list
    /// order and so must flip the result.
    fn cursor_range(
        &self,
        page: &Page,
        newest_first: bool,
    ) -> Result<(String, Option<String>, bool, bool), Error> {
        let base = self.idx_prefix();
        let base_end = prefix_end(&base);
        let seq_key = |seq: u64| {
            let mut key = base.clone();
            push_padded(&mut key, seq, SEQ_WIDTH);
            key
        };
        Ok(match (&page.starting_after, &page.ending_before) {
            (Some(after), _) => {
                let seq = self.cursor_seq(after, "starting_after")?;
                if newest_first {
                    (base.clone(), Some(seq_key(seq)), true, false)
                } else {
                    (seq_key(seq + 1), base_end, false, false)
                }
            }
            (None, Some(before)) => {
                let seq = self.cursor_seq(before, "ending_before")?;
                if newest_first {
                    (seq_key(seq + 1), base_end, false, true)
                } else {
                    (base.clone(), Some(seq_key(seq)), true, true)
                }
            }
            (None, None) => (base.clone(), base_end, newest_first, false),
        })
    }

    /// One page in insertion order, newest first when `newest_first`.
    ///
    /// A cursor id that does not exist is a 404 `resource_missing` naming
    /// the cursor parameter. Costs one scan plus one read per item.
    pub fn list(&self, page: &Page, newest_first: bool) -> Result<ListPage<T>, Error> {
        let base = self.idx_prefix();
        let want = page.limit.min(MAX_SCAN - 1);
        let (start, end, reverse, backwards) = self.cursor_range(page, newest_first)?;
        let mut entries = scan(&start, end.as_deref(), want + 1, reverse);
        let has_more = entries.len() > want as usize;
        entries.truncate(want as usize);
        if backwards {
            entries.reverse();
        }
        let mut items = Vec::with_capacity(entries.len());
        for entry in entries {
            let id = entry
                .key
                .get(base.len() + SEQ_WIDTH + 1..)
                .unwrap_or_default();
            if let Some(item) = self.get(id)? {
                items.push(item);
            }
        }
        Ok(ListPage { items, has_more })
    }

    /// Like [`list`](Self::list) but only items for which `keep` is true
    /// count, with the same cursors (a cursor may name an item that does not
    /// match). Walks the index in chunks from the cursor until the page is
    /// full, so a selective filter on a large collection reads more.
    pub fn list_where(
        &self,
        page: &Page,
        newest_first: bool,
        keep: impl Fn(&T) -> bool,
    ) -> Result<ListPage<T>, Error> {
        let want = page.limit.min(MAX_SCAN - 1) as usize;
        let (start, end, reverse, backwards) = self.cursor_range(page, newest_first)?;
        let mut items = Vec::new();
        let mut has_more = false;
        self.walk(start, end, reverse, |item| {
            if !keep(&item) {
                return true;
            }
            if items.len() == want {
                has_more = true;
                return false;
            }
            items.push(item);
            true
        })?;
        if backwards {
            items.reverse();
        }
        Ok(ListPage { items, has_more })
    }

    /// Every item for which `keep` is true, oldest first: the whole
    /// collection, read in chunks.
    pub fn all_where(&self, keep: impl Fn(&T) -> bool) -> Result<Vec<T>, Error> {
        let base = self.idx_prefix();
        let end = prefix_end(&base);
        let mut items = Vec::new();
        self.walk(base, end, false, |item| {
            if keep(&item) {
                items.push(item);
            }
            true
        })?;
        Ok(items)
    }

    /// Hands each item of the index range `start..end` to `visit`, in index
    /// order (descending when `reverse`), until `visit` says stop.
    fn walk(
        &self,
        mut start: String,
        mut end: Option<String>,
        reverse: bool,
        mut visit: impl FnMut(T) -> bool,
    ) -> Result<(), Error> {
        const CHUNK: u32 = 100;
        let id_at = self.idx_prefix().len() + SEQ_WIDTH + 1;
        loop {
            let entries = scan(&start, end.as_deref(), CHUNK, reverse);
            for entry in &entries {
                let id = entry.key.get(id_at..).unwrap_or_default();
                if let Some(item) = self.get(id)?
                    && !visit(item)
                {
                    return Ok(());
                }
            }
            match entries.last() {
                Some(last) if entries.len() == CHUNK as usize => {
                    if reverse {
                        end = Some(last.key.clone());
                    } else {
                        start = format!("{}\u{0}", last.key);
                    }
                }
                _ => return Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;
    use serde::{Deserialize, Serialize};

    #[test]
    fn raw_operations_and_scan_bounds() {
        testing::reset();
        for k in ["a", "b", "c", "d"] {
            set(k, k.as_bytes()).unwrap();
        }
        assert_eq!(get("b"), Some(b"b".to_vec()));
        assert!(delete("b"));
        assert!(!delete("b"));
        let keys = |v: Vec<Entry>| v.into_iter().map(|e| e.key).collect::<Vec<_>>();
        assert_eq!(keys(scan("a", Some("d"), 10, false)), ["a", "c"]);
        assert_eq!(keys(scan("a", None, 2, true)), ["d", "c"]);
        assert!(scan("d", Some("a"), 10, false).is_empty());
        assert!(scan("a", None, 0, false).is_empty());
        assert!(matches!(set("", b"x"), Err(StoreError::Invalid(_))));
        assert!(set(&"k".repeat(1025), b"x").is_err());
        let err: Error = StoreError::QuotaExceeded("keys".into()).into();
        assert_eq!(
            (err.status, err.code.as_deref()),
            (500, Some("store_quota_exceeded"))
        );
    }

    #[test]
    fn push_padded_writes_what_format_would() {
        for (n, width) in [
            (0, 20),
            (7, 20),
            (12_345, 20),
            (u64::MAX, 20),
            (5, 12),
            (12_345, 3),
            (0, 0),
        ] {
            let mut key = "p/".to_owned();
            push_padded(&mut key, n, width);
            assert_eq!(key, format!("p/{n:0width$}"), "n={n} width={width}");
        }
    }

    #[test]
    fn collection_keys_keep_their_documented_layout() {
        testing::reset();
        const THINGS: Collection<u32> = Collection::new("acct/k/things");
        THINGS.insert("a", &1).unwrap();
        THINGS.insert("b", &2).unwrap();
        let keys: Vec<String> = scan_prefix("acct/k/things/", 10, false)
            .into_iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(
            keys,
            [
                "acct/k/things/idx/00000000000000000001/a",
                "acct/k/things/idx/00000000000000000002/b",
                "acct/k/things/obj/a",
                "acct/k/things/obj/b",
                "acct/k/things/seq",
            ]
        );
    }

    #[test]
    fn prefixes() {
        assert_eq!(prefix_end("items/").as_deref(), Some("items0"));
        assert_eq!(prefix_end(""), None);
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(prefix_end("\u{10FFFF}\u{10FFFF}"), None);
        assert_eq!(prefix_end("é\u{10FFFF}").as_deref(), Some("ê"));
        testing::reset();
        for k in ["p/1", "p/2", "p0", "q"] {
            set(k, b"").unwrap();
        }
        let got: Vec<_> = scan_prefix("p/", 10, false)
            .into_iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(got, ["p/1", "p/2"]);
    }

    #[test]
    fn json_values_and_counters() {
        testing::reset();
        set_json("j", &vec![1, 2]).unwrap();
        assert_eq!(get_json::<Vec<i32>>("j").unwrap(), Some(vec![1, 2]));
        assert_eq!(get_json::<i32>("missing").unwrap(), None);
        assert_eq!(get_json::<i32>("j").unwrap_err().status, 500);
        assert_eq!(counter("c").unwrap(), 0);
        assert_eq!(increment("c", 5).unwrap(), 5);
        assert_eq!(increment("c", -2).unwrap(), 3);
        assert_eq!(get("c"), Some(b"3".to_vec()));
        set_json("c", &i64::MAX).unwrap();
        assert_eq!(increment("c", 1).unwrap_err().status, 400);
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
    struct Thing {
        n: u32,
    }

    const THINGS: Collection<Thing> = Collection::new("things");

    fn ns(page: &ListPage<Thing>) -> Vec<u32> {
        page.items.iter().map(|t| t.n).collect()
    }

    fn seed(count: u32) {
        testing::reset();
        for n in 1..=count {
            THINGS.insert(&format!("t{n}"), &Thing { n }).unwrap();
        }
    }

    #[test]
    fn all_where_walks_past_one_chunk_in_order() {
        seed(250);
        let even = THINGS.all_where(|t| t.n % 2 == 0).unwrap();
        assert_eq!(even.len(), 125);
        assert!(even.iter().map(|t| t.n).eq((2..=250).step_by(2)));
        assert_eq!(THINGS.all_where(|_| true).unwrap().len(), 250);
    }

    #[test]
    fn raw_get_is_the_stored_json_byte_for_byte() {
        seed(2);
        let raw = THINGS.get_raw("t2").unwrap().unwrap();
        assert_eq!(raw.get(), serde_json::to_string(&Thing { n: 2 }).unwrap());
        assert!(THINGS.get_raw("zz").unwrap().is_none());
    }

    #[test]
    fn raw_insert_is_an_insert_of_the_encoded_value() {
        seed(1);
        let encoded = serde_json::value::to_raw_value(&Thing { n: 2 }).unwrap();
        THINGS.insert_raw("t2", &encoded).unwrap();
        assert_eq!(THINGS.get("t2").unwrap().map(|t| t.n), Some(2));
        assert_eq!(THINGS.get_raw("t2").unwrap().unwrap().get(), encoded.get());
        let page = THINGS.list(&Page::first(10), false).unwrap();
        assert_eq!(ns(&page), [1, 2]);
        let again = THINGS.insert_raw("t2", &encoded).unwrap_err();
        assert_eq!(again.code.as_deref(), Some("resource_already_exists"));
    }

    #[test]
    fn crud_keeps_order_and_layout() {
        seed(3);
        assert_eq!(THINGS.get("t2").unwrap(), Some(Thing { n: 2 }));
        assert!(THINGS.contains("t2"));
        assert_eq!(
            THINGS
                .insert("t2", &Thing { n: 9 })
                .unwrap_err()
                .code
                .as_deref(),
            Some("resource_already_exists")
        );
        // Replacing keeps the place in the order.
        THINGS.put("t1", &Thing { n: 10 }).unwrap();
        THINGS.put("t4", &Thing { n: 4 }).unwrap();
        assert_eq!(
            THINGS.update("t2", |t| t.n = 20).unwrap(),
            Some(Thing { n: 20 })
        );
        assert_eq!(THINGS.update("zz", |t| t.n = 0).unwrap(), None);
        let all = THINGS.list(&Page::first(100), false).unwrap();
        assert_eq!((ns(&all), all.has_more), (vec![10, 20, 3, 4], false));
        assert_eq!(THINGS.remove("t3").unwrap(), Some(Thing { n: 3 }));
        assert_eq!(THINGS.remove("t3").unwrap(), None);
        assert_eq!(
            ns(&THINGS.list(&Page::first(100), true).unwrap()),
            [4, 20, 10]
        );
        assert_eq!(
            testing::store_keys()
                .into_iter()
                .find(|k| k.starts_with("things/idx/"))
                .as_deref(),
            Some("things/idx/00000000000000000001/t1")
        );
        assert_eq!(get("things/seq"), Some(b"4".to_vec()));
        assert!(get("things/obj/t4").is_some());
    }

    #[test]
    fn newest_first_pagination_both_ways() {
        seed(5);
        let page = |after: Option<&str>, before: Option<&str>| {
            THINGS
                .list(
                    &Page {
                        limit: 2,
                        starting_after: after.map(Into::into),
                        ending_before: before.map(Into::into),
                    },
                    true,
                )
                .unwrap()
        };
        let p1 = page(None, None);
        assert_eq!((ns(&p1), p1.has_more), (vec![5, 4], true));
        let p2 = page(Some("t4"), None);
        assert_eq!((ns(&p2), p2.has_more), (vec![3, 2], true));
        let p3 = page(Some("t2"), None);
        assert_eq!((ns(&p3), p3.has_more), (vec![1], false));
        // Walking back: items newer than the cursor, closest first, still
        // newest-first on the page.
        let b1 = page(None, Some("t1"));
        assert_eq!((ns(&b1), b1.has_more), (vec![3, 2], true));
        let b2 = page(None, Some("t3"));
        assert_eq!((ns(&b2), b2.has_more), (vec![5, 4], false));
        let b3 = page(None, Some("t4"));
        assert_eq!((ns(&b3), b3.has_more), (vec![5], false));
    }

    #[test]
    fn oldest_first_pagination_both_ways() {
        seed(5);
        let page = |after: Option<&str>, before: Option<&str>| {
            let p = Page {
                limit: 2,
                starting_after: after.map(Into::into),
                ending_before: before.map(Into::into),
            };
            let l = THINGS.list(&p, false).unwrap();
            (ns(&l), l.has_more)
        };
        assert_eq!(page(None, None), (vec![1, 2], true));
        assert_eq!(page(Some("t2"), None), (vec![3, 4], true));
        assert_eq!(page(Some("t4"), None), (vec![5], false));
        assert_eq!(page(None, Some("t5")), (vec![3, 4], true));
        assert_eq!(page(None, Some("t3")), (vec![1, 2], false));
    }

    #[test]
    fn filtered_listing_pages_over_chunks() {
        seed(250);
        let even = |t: &Thing| t.n.is_multiple_of(2);
        let p = |after: Option<&str>, before: Option<&str>, newest| {
            let page = Page {
                limit: 3,
                starting_after: after.map(Into::into),
                ending_before: before.map(Into::into),
            };
            let l = THINGS.list_where(&page, newest, even).unwrap();
            (ns(&l), l.has_more)
        };
        assert_eq!(p(None, None, true), (vec![250, 248, 246], true));
        assert_eq!(p(Some("t247"), None, true), (vec![246, 244, 242], true));
        assert_eq!(p(Some("t6"), None, true), (vec![4, 2], false));
        assert_eq!(p(None, Some("t245"), true), (vec![250, 248, 246], false));
        assert_eq!(p(None, Some("t3"), true), (vec![8, 6, 4], true));
        assert_eq!(p(None, None, false), (vec![2, 4, 6], true));
        assert_eq!(p(Some("t240"), None, false), (vec![242, 244, 246], true));
        let all = THINGS
            .list_where(&Page::first(200), false, |t| t.n > 100)
            .unwrap();
        assert_eq!((all.items.len(), all.has_more), (150, false));
        assert_eq!(all.items[0].n, 101);
    }

    #[test]
    fn listing_edge_cases() {
        seed(0);
        let empty = THINGS.list(&Page::default(), true).unwrap();
        assert!(empty.items.is_empty() && !empty.has_more);
        seed(2);
        let zero = THINGS.list(&Page::first(0), true).unwrap();
        assert!(zero.items.is_empty() && zero.has_more);
        let missing = THINGS
            .list(
                &Page {
                    starting_after: Some("nope".into()),
                    ..Page::first(2)
                },
                true,
            )
            .unwrap_err();
        assert_eq!(
            (missing.status, missing.param.as_deref()),
            (404, Some("starting_after"))
        );
        // Other collections and neighbouring prefixes do not leak in.
        let other: Collection<Thing> = Collection::with_prefix("thingsx");
        other.insert("o", &Thing { n: 99 }).unwrap();
        assert_eq!(ns(&THINGS.list(&Page::first(10), true).unwrap()), [2, 1]);
        assert_eq!(other.prefix(), "thingsx");
        assert!(format!("{:?}", other.clone()).contains("thingsx"));
    }

    #[test]
    fn page_from_query() {
        let q = |s: &str| Page::from_query(&Request::new("GET", &format!("/x?{s}")), 10, 100);
        assert_eq!(q("").unwrap(), Page::first(10));
        assert_eq!(
            q("limit=3&starting_after=a").unwrap(),
            Page {
                starting_after: Some("a".into()),
                ..Page::first(3)
            }
        );
        assert_eq!(
            q("limit=&ending_before=b")
                .unwrap()
                .ending_before
                .as_deref(),
            Some("b")
        );
        for bad in ["limit=0", "limit=101", "limit=x", "limit=-1"] {
            let e = q(bad).unwrap_err();
            assert_eq!(
                (e.status, e.param.as_deref()),
                (400, Some("limit")),
                "{bad}"
            );
        }
        assert_eq!(
            q("starting_after=a&ending_before=b").unwrap_err().status,
            400
        );
    }
}

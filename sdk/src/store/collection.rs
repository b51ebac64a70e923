//! Typed collections: objects kept under a prefix in insertion order, and
//! listed a page at a time with cursor pagination.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::*;
use crate::Request;

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

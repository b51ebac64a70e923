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

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;

mod collection;
#[cfg(test)]
mod tests;

pub use collection::{Collection, ListPage, Page};

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

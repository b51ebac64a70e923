//! The seam between the sdk and whoever runs it.
//!
//! On `wasm32` every call goes to the host's WIT imports. Everywhere else the
//! generated import stubs would only hit `unreachable!()`, so the calls go to
//! a thread-local in-memory stand-in instead; [`crate::testing`] drives it.
//! Each function here is the one place its import is called, which keeps the
//! rest of the sdk identical on both targets.

use crate::license::Claims;
use crate::log::Level;
use crate::outbound::{OutboundError, OutboundRequest};
use crate::store::{Entry, StoreError};

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::{Claims, Entry, Level, OutboundError, OutboundRequest, StoreError};
    use crate::__bindings::wondertwin::twin::{clock, config, license, log, outbound, store};

    pub(crate) fn config_get(key: &str) -> Option<String> {
        config::get(key)
    }

    pub(crate) fn license_claims() -> Option<Claims> {
        license::current().map(|c| Claims {
            issuer: c.issuer,
            subject: c.subject,
            audience: c.audience,
            tier: c.tier,
            issued_at: c.issued_at,
            not_before: c.not_before,
            expires_at: c.expires_at,
            token_id: c.token_id,
        })
    }

    pub(crate) fn outbound_enqueue(request: OutboundRequest) -> Result<String, OutboundError> {
        outbound::enqueue(&outbound::OutboundRequest {
            method: request.method,
            url: request.url,
            headers: request.headers,
            body: request.body,
        })
        .map_err(|e| match e {
            outbound::OutboundError::Denied(m) => OutboundError::Denied(m),
            outbound::OutboundError::Invalid(m) => OutboundError::Invalid(m),
            outbound::OutboundError::TooMany(m) => OutboundError::TooMany(m),
        })
    }

    pub(crate) fn store_get(key: &str) -> Option<Vec<u8>> {
        store::get(key)
    }

    pub(crate) fn store_set(key: &str, value: &[u8]) -> Result<(), StoreError> {
        store::set(key, value).map_err(|e| match e {
            store::StoreError::QuotaExceeded(m) => StoreError::QuotaExceeded(m),
            store::StoreError::Invalid(m) => StoreError::Invalid(m),
        })
    }

    pub(crate) fn store_delete(key: &str) -> bool {
        store::delete(key)
    }

    pub(crate) fn store_scan(
        start: &str,
        end: Option<&str>,
        limit: u32,
        reverse: bool,
    ) -> Vec<Entry> {
        store::scan(start, end, limit, reverse)
            .into_iter()
            .map(|e| Entry {
                key: e.key,
                value: e.value,
            })
            .collect()
    }

    pub(crate) fn now_millis() -> u64 {
        clock::now_millis()
    }

    pub(crate) fn wall_millis() -> u64 {
        clock::wall_millis()
    }

    pub(crate) fn log(level: Level, message: &str) {
        let level = match level {
            Level::Trace => log::Level::Trace,
            Level::Debug => log::Level::Debug,
            Level::Info => log::Level::Info,
            Level::Warn => log::Level::Warn,
            Level::Error => log::Level::Error,
        };
        log::log(level, message);
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod imp {
    use super::{Claims, Entry, Level, OutboundError, OutboundRequest, StoreError};
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::ops::Bound;
    use std::time::{SystemTime, UNIX_EPOCH};

    /// Same bounds the host enforces, so a twin that passes its native tests
    /// does not trip over them once deployed.
    pub(crate) const MAX_KEY_BYTES: usize = 1024;
    pub(crate) const MAX_SCAN: usize = 10_000;

    /// Everything the host would hold for one twin.
    #[derive(Default)]
    pub(crate) struct Native {
        pub(crate) store: BTreeMap<String, Vec<u8>>,
        /// `Some` freezes twin time at that instant.
        pub(crate) now: Option<u64>,
        pub(crate) logs: Vec<(Level, String)>,
        /// Requests queued with `outbound::enqueue`, as the host would send them.
        pub(crate) outbox: Vec<OutboundRequest>,
        /// Setting values as JSON text: the declared defaults of the twin
        /// under test, overridden by `testing::set_config`.
        pub(crate) config: BTreeMap<String, String>,
        pub(crate) license: Option<Claims>,
    }

    pub(crate) fn config_get(key: &str) -> Option<String> {
        with(|n| n.config.get(key).cloned())
    }

    pub(crate) fn license_claims() -> Option<Claims> {
        with(|n| n.license.clone())
    }

    pub(crate) fn outbound_enqueue(request: OutboundRequest) -> Result<String, OutboundError> {
        // The host's policy, reduced to what a unit test can check: an
        // absolute http URL (the host also limits destinations).
        if !request.url.starts_with("http://") {
            return Err(OutboundError::Invalid(format!(
                "{:?} is not an absolute http:// URL",
                request.url
            )));
        }
        with(|n| {
            n.outbox.push(request);
            Ok(format!("dlv_{}", n.outbox.len()))
        })
    }

    thread_local! {
        // Thread-local because the test harness runs each test on its own
        // thread: tests get isolated state without any setup.
        pub(crate) static NATIVE: RefCell<Native> = RefCell::new(Native::default());
    }

    pub(crate) fn with<R>(f: impl FnOnce(&mut Native) -> R) -> R {
        NATIVE.with(|n| f(&mut n.borrow_mut()))
    }

    pub(crate) fn store_get(key: &str) -> Option<Vec<u8>> {
        with(|n| n.store.get(key).cloned())
    }

    pub(crate) fn store_set(key: &str, value: &[u8]) -> Result<(), StoreError> {
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            return Err(StoreError::Invalid(format!(
                "keys must be 1 to {MAX_KEY_BYTES} bytes; got {}",
                key.len()
            )));
        }
        with(|n| n.store.insert(key.to_owned(), value.to_vec()));
        Ok(())
    }

    pub(crate) fn store_delete(key: &str) -> bool {
        with(|n| n.store.remove(key).is_some())
    }

    pub(crate) fn store_scan(
        start: &str,
        end: Option<&str>,
        limit: u32,
        reverse: bool,
    ) -> Vec<Entry> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX).min(MAX_SCAN);
        if limit == 0 || end.is_some_and(|end| end <= start) {
            return Vec::new();
        }
        let range = (
            Bound::Included(start),
            end.map_or(Bound::Unbounded, Bound::Excluded),
        );
        let entry = |(k, v): (&String, &Vec<u8>)| Entry {
            key: k.clone(),
            value: v.clone(),
        };
        with(|n| {
            let it = n.store.range::<str, _>(range);
            if reverse {
                it.rev().take(limit).map(entry).collect()
            } else {
                it.take(limit).map(entry).collect()
            }
        })
    }

    pub(crate) fn now_millis() -> u64 {
        with(|n| n.now).unwrap_or_else(wall_millis)
    }

    pub(crate) fn wall_millis() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }

    pub(crate) fn log(level: Level, message: &str) {
        // Printed so the test harness shows it for failing tests, and kept so
        // tests can assert on it.
        eprintln!("[{}] {message}", level.as_str());
        with(|n| n.logs.push((level, message.to_owned())));
    }
}

pub(crate) use imp::*;

//! Idempotent replay of write requests (`Idempotency-Key`).
//!
//! A client that retries a write with the same key must get the first
//! answer again, not a second side effect. [`Replays`] keeps each saved
//! answer under a scope (usually the account) and the key, together with a
//! [`fingerprint`] of the request that produced it, so the same key reused
//! for *different* parameters can be refused.
//!
//! On the hot path this costs one store read ([`Replays::lookup`]) and, when
//! the twin decides the answer is worth keeping, one write
//! ([`Replays::save`]). Which answers to keep is the twin's policy (Stripe
//! keeps successes and card declines but not validation failures), and so
//! is how long ([`Replays::expiring_after`]: Resend forgets keys after a
//! day). [`Replays::serve`] is the whole flow in one call.
//!
//! ```
//! use wt_sdk::idempotency::{Lookup, Replays, fingerprint};
//! use wt_sdk::{Request, Response};
//!
//! let replays = Replays::new("acct/a/idem");
//! let req = Request::new("POST", "/v1/things").with_form("a=1");
//! let fp = fingerprint(&req);
//! assert!(matches!(replays.lookup("k1", &fp).unwrap(), Lookup::Fresh));
//! replays.save("k1", &fp, &Response::ok(&1)).unwrap();
//! assert!(matches!(replays.lookup("k1", &fp).unwrap(), Lookup::Replay(_)));
//! assert!(matches!(replays.lookup("k1", "other").unwrap(), Lookup::Mismatch));
//! ```

use serde::{Deserialize, Serialize};

use crate::store::{get_json, set_json};
use crate::{Error, Request, Response};

/// Saved answers under one scope (a store key prefix such as
/// `acct/{account}/idem`).
#[derive(Debug, Clone)]
pub struct Replays {
    prefix: String,
    /// Twin-time milliseconds after which a saved answer is forgotten.
    ttl_millis: Option<u64>,
}

/// What [`Replays::serve`] did with a request.
#[derive(Debug)]
pub enum Served {
    /// The saved answer to the same request, sent again.
    Replayed(Response),
    /// The key was used for a different request: the twin answers with its
    /// vendor's error.
    Mismatch,
    /// The request was handled (and its answer saved if the twin keeps it).
    Handled(Response),
}

/// What [`Replays::lookup`] found.
#[derive(Debug)]
pub enum Lookup {
    /// No answer saved under this key: handle the request.
    Fresh,
    /// The saved answer to the same request; send it again.
    Replay(Response),
    /// The key was used for a different request.
    Mismatch,
}

#[derive(Serialize, Deserialize)]
struct Saved {
    fingerprint: String,
    /// Twin time when saved; absent in answers saved before expiry existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    saved_at: Option<u64>,
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Replays {
    /// Replays stored under `prefix/…`.
    pub fn new(prefix: impl Into<String>) -> Self {
        Replays {
            prefix: prefix.into(),
            ttl_millis: None,
        }
    }

    /// Forgets each saved answer `millis` of twin time after it was saved,
    /// so the key can be used afresh (moving the twin's clock moves this).
    pub fn expiring_after(mut self, millis: u64) -> Self {
        self.ttl_millis = Some(millis);
        self
    }

    /// The whole flow: replays the saved answer to `key` if the request is
    /// the same, reports a mismatch if it is not, and otherwise hands the
    /// request to `handle` and saves its answer when `keep` says so.
    ///
    /// ```
    /// use wt_sdk::idempotency::{Replays, Served};
    /// use wt_sdk::{Request, Response};
    ///
    /// let replays = Replays::new("acct/a/idem");
    /// let request = || Request::new("POST", "/v1/things").with_form("a=1");
    /// let handle = |_: Request| Response::ok(&"created");
    /// let keep = |r: &Response| r.is_success();
    /// assert!(matches!(replays.serve("k", request(), keep, handle).unwrap(), Served::Handled(_)));
    /// assert!(matches!(replays.serve("k", request(), keep, handle).unwrap(), Served::Replayed(_)));
    /// let other = Request::new("POST", "/v1/things").with_form("a=2");
    /// assert!(matches!(replays.serve("k", other, keep, handle).unwrap(), Served::Mismatch));
    /// ```
    pub fn serve(
        &self,
        key: &str,
        request: Request,
        keep: impl FnOnce(&Response) -> bool,
        handle: impl FnOnce(Request) -> Response,
    ) -> Result<Served, Error> {
        let fingerprint = fingerprint(&request);
        Ok(match self.lookup(key, &fingerprint)? {
            Lookup::Replay(response) => Served::Replayed(response),
            Lookup::Mismatch => Served::Mismatch,
            Lookup::Fresh => {
                let response = handle(request);
                if keep(&response) {
                    self.save(key, &fingerprint, &response)?;
                }
                Served::Handled(response)
            }
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}/{key}", self.prefix)
    }

    /// Looks `key` up (one store read).
    pub fn lookup(&self, key: &str, fingerprint: &str) -> Result<Lookup, Error> {
        Ok(match get_json::<Saved>(&self.key(key))? {
            None => Lookup::Fresh,
            Some(saved) if self.expired(&saved) => Lookup::Fresh,
            Some(saved) if saved.fingerprint != fingerprint => Lookup::Mismatch,
            Some(saved) => Lookup::Replay(Response {
                status: saved.status,
                headers: saved.headers,
                body: saved.body.into_bytes(),
            }),
        })
    }

    /// Saves `response` as the answer to `key` (one store write). Bodies are
    /// kept as text: invalid UTF-8 is replaced, which JSON APIs never send.
    pub fn save(&self, key: &str, fingerprint: &str, response: &Response) -> Result<(), Error> {
        let saved = Saved {
            fingerprint: fingerprint.to_owned(),
            saved_at: self.ttl_millis.map(|_| crate::clock::now_millis()),
            status: response.status,
            headers: response.headers.clone(),
            body: String::from_utf8_lossy(&response.body).into_owned(),
        };
        set_json(&self.key(key), &saved)
    }

    fn expired(&self, saved: &Saved) -> bool {
        match (self.ttl_millis, saved.saved_at) {
            (Some(ttl), Some(at)) => crate::clock::now_millis() >= at.saturating_add(ttl),
            _ => false,
        }
    }
}

/// A short digest of what makes two requests "the same": method, path,
/// query and body (not the headers, which carry retry counters and
/// telemetry). 128 bits of FNV-1a, hex; not cryptographic, which is fine for
/// telling a client's own requests apart.
pub fn fingerprint(request: &Request) -> String {
    let mut a = Fnv::new(0xcbf2_9ce4_8422_2325);
    let mut b = Fnv::new(0x6c62_272e_07bb_0142);
    for part in [
        request.method.as_str().as_bytes(),
        request.path.as_bytes(),
        request.query.as_bytes(),
        &request.body,
    ] {
        a.write(part);
        a.write(&[0xff]);
        b.write(part);
        b.write(&[0xfe]);
    }
    format!("{:016x}{:016x}", a.0, b.0)
}

struct Fnv(u64);

impl Fnv {
    fn new(seed: u64) -> Self {
        Fnv(seed)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn fingerprints_differ_by_content() {
        let a = Request::new("POST", "/x").with_form("a=1");
        let same = Request::new("POST", "/x")
            .with_form("a=1")
            .with_header("x-retry", "2");
        let other = Request::new("POST", "/x").with_form("a=2");
        assert_eq!(fingerprint(&a), fingerprint(&same));
        assert_ne!(fingerprint(&a), fingerprint(&other));
        assert_ne!(
            fingerprint(&a),
            fingerprint(&Request::new("POST", "/y").with_form("a=1"))
        );
        assert_eq!(fingerprint(&a).len(), 32);
    }

    #[test]
    fn save_lookup_replay_and_scopes() {
        testing::reset();
        let one = Replays::new("acct/1/idem");
        let two = Replays::new("acct/2/idem");
        assert!(matches!(one.lookup("k", "f").unwrap(), Lookup::Fresh));
        let resp = Response::json(402, &serde_json::json!({"e": 1})).with_header("x-a", "b");
        one.save("k", "f", &resp).unwrap();
        match one.lookup("k", "f").unwrap() {
            Lookup::Replay(r) => {
                assert_eq!((r.status, r.body.clone()), (402, resp.body.clone()));
                assert_eq!(r.header("x-a"), Some("b"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(one.lookup("k", "g").unwrap(), Lookup::Mismatch));
        assert!(matches!(two.lookup("k", "f").unwrap(), Lookup::Fresh));
        assert_eq!(testing::store_keys(), ["acct/1/idem/k"]);
    }

    #[test]
    fn expiring_answers_are_forgotten_at_their_ttl_of_twin_time() {
        testing::reset();
        testing::set_now_millis(1_000);
        let replays = Replays::new("acct/1/idem").expiring_after(500);
        replays.save("k", "f", &Response::ok(&1)).unwrap();
        testing::set_now_millis(1_499);
        assert!(matches!(
            replays.lookup("k", "f").unwrap(),
            Lookup::Replay(_)
        ));
        assert!(matches!(
            replays.lookup("k", "g").unwrap(),
            Lookup::Mismatch
        ));
        testing::set_now_millis(1_500);
        assert!(matches!(replays.lookup("k", "g").unwrap(), Lookup::Fresh));
        // Without a TTL, answers are kept for good.
        let forever = Replays::new("acct/1/idem");
        assert!(matches!(
            forever.lookup("k", "f").unwrap(),
            Lookup::Replay(_)
        ));
    }

    #[test]
    fn serve_keeps_only_what_the_twin_keeps() {
        testing::reset();
        let replays = Replays::new("acct/1/idem");
        let request = || Request::new("POST", "/v1/x").with_form("a=1");
        let refused = |_: Request| Response::json(400, &serde_json::json!({"e": "bad"}));
        let keep = |r: &Response| r.is_success();
        assert!(matches!(
            replays.serve("k", request(), keep, refused).unwrap(),
            Served::Handled(r) if r.status == 400
        ));
        // Not kept: a corrected retry with the same key is handled afresh.
        let ok = |_: Request| Response::ok(&1);
        assert!(
            matches!(replays.serve("k", request(), keep, ok).unwrap(), Served::Handled(r) if r.status == 200)
        );
        assert!(
            matches!(replays.serve("k", request(), keep, refused).unwrap(), Served::Replayed(r) if r.status == 200)
        );
    }
}

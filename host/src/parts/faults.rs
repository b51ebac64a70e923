//! Injected faults: make a twin answer an error, answer late, or drop the
//! connection, for requests that match a method and a path pattern, at a
//! rate and for a count. What a test needs to exercise its retry paths.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A fault as a test writes it (`POST /_wt/twins/{t}/faults`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Only this method (any when absent or `*`).
    pub method: Option<String>,
    /// A path pattern where `*` matches any run of characters, `/` included:
    /// `/v1/transfers/*`, `*/refunds`. Any path when absent.
    pub path: Option<String>,
    /// Answer with this status instead of calling the twin.
    pub status: Option<u16>,
    /// The body to answer with (JSON, or a string sent as-is).
    pub body: Option<serde_json::Value>,
    /// Wait this long first (`"250ms"`, `"2s"`), then answer (or call the twin).
    pub latency: Option<String>,
    /// Close the connection without answering.
    #[serde(default)]
    pub drop: bool,
    /// Share of matching requests affected, 0 to 1 (default 1).
    pub rate: Option<f64>,
    /// Affect this many requests, then remove the fault (default: no limit).
    pub count: Option<u64>,
}

/// A fault in force.
#[derive(Debug, Clone, Serialize)]
pub struct Fault {
    pub id: u64,
    pub method: Option<String>,
    pub path: Option<String>,
    pub status: Option<u16>,
    pub body: Option<serde_json::Value>,
    pub latency_millis: Option<u64>,
    pub drop: bool,
    pub rate: f64,
    /// Requests still to affect; `None` for no limit.
    pub remaining: Option<u64>,
    /// Requests affected so far.
    pub hits: u64,
}

/// What to do with one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    pub fault: u64,
    pub latency: Option<Duration>,
    /// Answer with this instead of calling the twin.
    pub respond: Option<(u16, Vec<u8>, bool)>,
    pub drop: bool,
}

/// The faults of one twin.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<Vec<Fault>>,
    next_id: AtomicU64,
    /// xorshift state for `rate`.
    dice: AtomicU64,
}

impl Fault {
    fn matches(&self, method: &str, path: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m == "*" || m.eq_ignore_ascii_case(method))
            && self.path.as_deref().is_none_or(|p| glob(p, path))
    }
}

impl Faults {
    pub fn new() -> Self {
        Self {
            rules: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            dice: AtomicU64::new(crate::clock::wall_millis() | 1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Fault>> {
        self.rules.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Validates and installs a fault.
    pub fn add(&self, spec: FaultSpec) -> Result<Fault, String> {
        let latency = spec
            .latency
            .as_deref()
            .map(crate::units::parse_duration)
            .transpose()
            .map_err(|e| format!("latency: {e}"))?;
        // A 1xx is not a final answer (a 101 would hand the connection
        // over), so a fault answers with 200-599 like a twin does.
        if let Some(status) = spec.status
            && !(200..=599).contains(&status)
        {
            return Err(format!(
                "status {status} is not a final HTTP status (200-599)"
            ));
        }
        let rate = spec.rate.unwrap_or(1.0);
        if !(0.0..=1.0).contains(&rate) {
            return Err(format!("rate {rate} is not between 0 and 1"));
        }
        if spec.status.is_none() && latency.is_none() && !spec.drop {
            return Err("a fault needs a status, a latency, or drop".into());
        }
        if spec.count == Some(0) {
            return Err("count must be at least 1".into());
        }
        let fault = Fault {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            method: spec.method,
            path: spec.path,
            status: spec.status,
            body: spec.body,
            latency_millis: latency.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            drop: spec.drop,
            rate,
            remaining: spec.count,
            hits: 0,
        };
        self.lock().push(fault.clone());
        Ok(fault)
    }

    pub fn list(&self) -> Vec<Fault> {
        self.lock().clone()
    }

    /// Removes one fault; whether it existed.
    pub fn remove(&self, id: u64) -> bool {
        let mut rules = self.lock();
        let before = rules.len();
        rules.retain(|f| f.id != id);
        rules.len() != before
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    /// The first fault that matches and fires for this request, counted.
    pub fn pick(&self, method: &str, path: &str) -> Option<Action> {
        let mut rules = self.lock();
        if rules.is_empty() {
            return None;
        }
        let index = rules
            .iter()
            .position(|f| f.matches(method, path) && (f.rate >= 1.0 || self.roll() < f.rate))?;
        let fault = &mut rules[index];
        fault.hits += 1;
        let action = Action {
            fault: fault.id,
            latency: fault.latency_millis.map(Duration::from_millis),
            respond: fault.status.map(|status| match &fault.body {
                Some(serde_json::Value::String(text)) => (status, text.clone().into_bytes(), false),
                Some(json) => (status, json.to_string().into_bytes(), true),
                None => (status, Vec::new(), false),
            }),
            drop: fault.drop,
        };
        if let Some(remaining) = &mut fault.remaining {
            *remaining -= 1;
            if *remaining == 0 {
                rules.remove(index);
            }
        }
        Some(action)
    }

    /// A uniform draw in [0, 1).
    fn roll(&self) -> f64 {
        let mut x = self.dice.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.dice.store(x, Ordering::Relaxed);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `*` matches any run of characters, `/` included; everything else is literal.
/// Whether `text` matches `pattern`, where `*` spans any run of characters
/// (`/` included) and a pattern without `*` must equal the text.
pub fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> FaultSpec {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn glob_spans_segments() {
        assert!(glob("/v1/transfers/*", "/v1/transfers/tr_1/reversals"));
        assert!(glob("*/refunds", "/v1/charges/ch_1/refunds"));
        assert!(glob("/v1/*/x/*", "/v1/a/b/x/c"));
        assert!(glob("/exact", "/exact"));
        assert!(!glob("/exact", "/exact/more"));
        assert!(!glob("/v1/transfers/*", "/v1/charges"));
        assert!(!glob("/a*a", "/a"));
    }

    #[test]
    fn count_limits_then_the_fault_disappears() {
        let faults = Faults::new();
        faults
            .add(spec(
                serde_json::json!({"method": "post", "path": "/v1/*", "status": 503, "count": 2}),
            ))
            .unwrap();
        assert!(faults.pick("GET", "/v1/x").is_none(), "method must match");
        assert_eq!(
            faults.pick("POST", "/v1/x").unwrap().respond.unwrap().0,
            503
        );
        assert!(faults.pick("POST", "/v1/y").is_some());
        assert!(faults.pick("POST", "/v1/z").is_none());
        assert!(faults.list().is_empty());
    }

    #[test]
    fn a_star_method_matches_any_method() {
        let faults = Faults::new();
        faults
            .add(spec(serde_json::json!({"method": "*", "status": 503})))
            .unwrap();
        assert!(faults.pick("GET", "/a").is_some());
        assert!(faults.pick("DELETE", "/b").is_some());
    }

    #[test]
    fn rate_affects_about_that_share() {
        let faults = Faults::new();
        faults
            .add(spec(serde_json::json!({"status": 500, "rate": 0.25})))
            .unwrap();
        let hits = (0..4000)
            .filter(|_| faults.pick("GET", "/").is_some())
            .count();
        assert!((700..1300).contains(&hits), "{hits}");
    }

    #[test]
    fn bad_specs_are_refused_with_a_reason() {
        let faults = Faults::new();
        for (bad, why) in [
            (serde_json::json!({"path": "/"}), "needs a status"),
            (serde_json::json!({"status": 42}), "not a final HTTP status"),
            (
                serde_json::json!({"status": 101}),
                "not a final HTTP status",
            ),
            (
                serde_json::json!({"status": 500, "rate": 2.0}),
                "between 0 and 1",
            ),
            (serde_json::json!({"latency": "soon"}), "latency"),
            (serde_json::json!({"status": 500, "count": 0}), "at least 1"),
        ] {
            let err = faults.add(spec(bad)).unwrap_err();
            assert!(err.contains(why), "{err}");
        }
    }

    #[test]
    fn string_bodies_are_sent_as_is_and_json_as_json() {
        let faults = Faults::new();
        faults
            .add(spec(
                serde_json::json!({"path": "/a", "status": 500, "body": "oops"}),
            ))
            .unwrap();
        faults
            .add(spec(serde_json::json!({"path": "/b", "status": 402, "body": {"error": {"type": "card_error"}}})))
            .unwrap();
        assert_eq!(
            faults.pick("GET", "/a").unwrap().respond,
            Some((500, b"oops".to_vec(), false))
        );
        let (status, body, is_json) = faults.pick("GET", "/b").unwrap().respond.unwrap();
        assert_eq!((status, is_json), (402, true));
        assert!(String::from_utf8(body).unwrap().contains("card_error"));
    }
}

//! Per-twin counters for `GET /_wt/metrics`, in Prometheus' text format.
//! Plain atomics: recording is a handful of relaxed adds on the request path.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Latency bucket bounds in microseconds.
const BUCKETS_MICROS: [u64; 12] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
];

/// How a request ended, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The twin (or an injected fault) answered with this status.
    Answered(u16),
    Trap,
    Deadline,
    Memory,
    Busy,
}

#[derive(Debug, Default)]
pub struct Metrics {
    by_class: [AtomicU64; 5],
    traps: AtomicU64,
    deadlines: AtomicU64,
    memory_kills: AtomicU64,
    busy: AtomicU64,
    buckets: [AtomicU64; BUCKETS_MICROS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
    peak_memory: AtomicU64,
    /// The twin's log allowance; what it dropped is a metric.
    pub(crate) logs: crate::logs::LogBudget,
}

impl Metrics {
    pub fn record(&self, ending: Ending, status: u16, took: Duration) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
        let counter = match ending {
            Ending::Answered(_) => None,
            Ending::Trap => Some(&self.traps),
            Ending::Deadline => Some(&self.deadlines),
            Ending::Memory => Some(&self.memory_kills),
            Ending::Busy => Some(&self.busy),
        };
        if let Some(counter) = counter {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        if let Some(bucket) = BUCKETS_MICROS.iter().position(|b| micros <= *b) {
            self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Notes an instance's linear memory size.
    pub fn saw_memory(&self, bytes: u64) {
        self.peak_memory.fetch_max(bytes, Ordering::Relaxed);
    }
}

/// The tenant series: how many live, and how many were ever made and
/// expired. Counts only, never a label per tenant id, so the series stay
/// three however many tenants come and go.
pub fn render_tenants(live: usize, created: u64, expired: u64) -> String {
    format!(
        "# HELP wt_tenants Tenants alive now.\n# TYPE wt_tenants gauge\nwt_tenants {live}\n\
         # HELP wt_tenants_created_total Tenants made.\n# TYPE wt_tenants_created_total counter\nwt_tenants_created_total {created}\n\
         # HELP wt_tenants_expired_total Tenants removed because their time to live passed.\n# TYPE wt_tenants_expired_total counter\nwt_tenants_expired_total {expired}\n"
    )
}

/// Renders every twin's metrics.
pub fn render<'a>(twins: impl Iterator<Item = (&'a str, &'a Metrics)>) -> String {
    let twins: Vec<_> = twins.collect();
    let mut out = String::new();
    let counter = |out: &mut String, name: &str, help: &str, value: &dyn Fn(&Metrics) -> u64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (twin, m) in &twins {
            let _ = writeln!(out, "{name}{{twin=\"{twin}\"}} {}", value(m));
        }
    };
    let _ = writeln!(
        out,
        "# HELP wt_requests_total Requests answered, by status class.\n# TYPE wt_requests_total counter"
    );
    for (twin, m) in &twins {
        for (i, class) in ["1xx", "2xx", "3xx", "4xx", "5xx"].iter().enumerate() {
            let _ = writeln!(
                out,
                "wt_requests_total{{twin=\"{twin}\",class=\"{class}\"}} {}",
                m.by_class[i].load(Ordering::Relaxed)
            );
        }
    }
    counter(
        &mut out,
        "wt_traps_total",
        "Requests that ended in a trap.",
        &|m| m.traps.load(Ordering::Relaxed),
    );
    counter(
        &mut out,
        "wt_deadline_kills_total",
        "Requests stopped at the request timeout.",
        &|m| m.deadlines.load(Ordering::Relaxed),
    );
    counter(
        &mut out,
        "wt_memory_kills_total",
        "Requests stopped at the memory limit.",
        &|m| m.memory_kills.load(Ordering::Relaxed),
    );
    counter(
        &mut out,
        "wt_log_lines_dropped_total",
        "Log lines a twin wrote past its allowance (100 a second, bursts of 1000).",
        &|m| m.logs.dropped(),
    );
    counter(
        &mut out,
        "wt_busy_rejections_total",
        "Requests turned away with 503 because the queue was full.",
        &|m| m.busy.load(Ordering::Relaxed),
    );
    let _ = writeln!(
        out,
        "# HELP wt_request_duration_seconds Time to answer, host included.\n# TYPE wt_request_duration_seconds histogram"
    );
    for (twin, m) in &twins {
        let mut cumulative = 0;
        for (i, bound) in BUCKETS_MICROS.iter().enumerate() {
            cumulative += m.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "wt_request_duration_seconds_bucket{{twin=\"{twin}\",le=\"{}\"}} {cumulative}",
                *bound as f64 / 1e6
            );
        }
        let count = m.count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "wt_request_duration_seconds_bucket{{twin=\"{twin}\",le=\"+Inf\"}} {count}\n\
             wt_request_duration_seconds_sum{{twin=\"{twin}\"}} {}\n\
             wt_request_duration_seconds_count{{twin=\"{twin}\"}} {count}",
            m.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
    }
    let _ = writeln!(
        out,
        "# HELP wt_instance_memory_peak_bytes Largest linear memory any instance of the twin reached.\n# TYPE wt_instance_memory_peak_bytes gauge"
    );
    for (twin, m) in &twins {
        let _ = writeln!(
            out,
            "wt_instance_memory_peak_bytes{{twin=\"{twin}\"}} {}",
            m.peak_memory.load(Ordering::Relaxed)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        let m = Metrics::default();
        m.record(Ending::Answered(200), 200, Duration::from_micros(80));
        m.record(Ending::Answered(404), 404, Duration::from_micros(3_000));
        m.record(Ending::Trap, 500, Duration::from_millis(2));
        m.saw_memory(1 << 20);
        let text = render([("hello", &m)].into_iter());
        assert!(text.contains("wt_requests_total{twin=\"hello\",class=\"2xx\"} 1"));
        assert!(text.contains("wt_requests_total{twin=\"hello\",class=\"5xx\"} 1"));
        assert!(text.contains("wt_traps_total{twin=\"hello\"} 1"));
        assert!(
            text.contains("wt_request_duration_seconds_bucket{twin=\"hello\",le=\"0.0001\"} 1")
        );
        assert!(text.contains("wt_request_duration_seconds_bucket{twin=\"hello\",le=\"0.005\"} 3"));
        assert!(text.contains("wt_request_duration_seconds_count{twin=\"hello\"} 3"));
        assert!(text.contains("wt_instance_memory_peak_bytes{twin=\"hello\"} 1048576"));
    }
}

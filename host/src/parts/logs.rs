//! What a twin says on its way to the operator's terminal and log files: its
//! `log` lines, its panic messages, its `describe` strings. All of it is
//! untrusted text, so it is made printable (no escape sequence reaches a
//! terminal, no newline forges a log line) and a twin's `log` lines are
//! rate-limited, with the lines dropped counted in `/_wt/metrics`.

use std::borrow::Cow;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Lines a twin may log per second, sustained.
pub const LINES_PER_SECOND: u64 = 100;
/// Lines a twin may log at once before the rate applies.
const BURST_LINES: u64 = 1000;
/// A line's worth of tokens: the bucket counts millionths of a line, so a
/// microsecond refills `LINES_PER_SECOND` of them, in integers.
const LINE: u64 = 1_000_000;
/// Bytes of one log line that are kept; the rest is cut and counted.
pub const MAX_LINE_BYTES: usize = 4096;

/// `text` with every control character (newlines, tabs and escape sequences
/// included) and every bidirectional override written as a `\u{..}`-style
/// escape, so it prints as one inert line. Borrowed when nothing needed it.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if needs_escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        // Bidirectional embeddings, overrides and isolates reorder what a
        // terminal shows ("Trojan Source").
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// [`printable`], cut to at most `max` bytes (on a character boundary) with
/// a note of how much was cut.
pub fn printable_cut(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return printable(text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let kept = printable(&text[..end]);
    Cow::Owned(format!("{kept}… ({} more bytes cut)", text.len() - end))
}

/// One twin's allowance of log lines: a token bucket that refills at
/// [`LINES_PER_SECOND`] up to [`BURST_LINES`].
#[derive(Debug)]
pub struct LogBudget {
    bucket: Mutex<Bucket>,
    dropped: AtomicU64,
}

#[derive(Debug)]
struct Bucket {
    /// Millionths of a line.
    tokens: u64,
    refilled: Instant,
    /// Lines dropped since a line last got through.
    unreported: u64,
}

/// The verdict on one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Log it; `dropped_before` lines were dropped since the last one that
    /// was logged (say so first).
    Log {
        dropped_before: u64,
    },
    Drop,
}

impl Default for LogBudget {
    fn default() -> Self {
        Self {
            bucket: Mutex::new(Bucket {
                tokens: BURST_LINES * LINE,
                refilled: Instant::now(),
                unreported: 0,
            }),
            dropped: AtomicU64::new(0),
        }
    }
}

impl LogBudget {
    /// Takes one line from the allowance, if there is one.
    pub fn admit(&self) -> Admission {
        self.admit_at(Instant::now())
    }

    fn admit_at(&self, now: Instant) -> Admission {
        let mut bucket = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        let micros = now.saturating_duration_since(bucket.refilled).as_micros();
        let refill = u64::try_from(micros)
            .unwrap_or(u64::MAX)
            .saturating_mul(LINES_PER_SECOND);
        bucket.tokens = bucket.tokens.saturating_add(refill).min(BURST_LINES * LINE);
        bucket.refilled = now;
        if bucket.tokens >= LINE {
            bucket.tokens -= LINE;
            let dropped_before = std::mem::take(&mut bucket.unreported);
            Admission::Log { dropped_before }
        } else {
            bucket.unreported += 1;
            self.dropped.fetch_add(1, Ordering::Relaxed);
            Admission::Drop
        }
    }

    /// Lines dropped since the twin was loaded.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn control_characters_and_bidi_overrides_are_escaped() {
        assert!(matches!(printable("plain text ü"), Cow::Borrowed(_)));
        assert_eq!(printable("a\nb"), "a\\nb");
        assert_eq!(
            printable("\u{1b}[2J\u{1b}]0;pwned\u{7}"),
            "\\u{1b}[2J\\u{1b}]0;pwned\\u{7}"
        );
        assert_eq!(printable("x\r\ty"), "x\\r\\ty");
        assert_eq!(printable("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(printable("a\u{202e}b"), "a\\u{202e}b");
        assert!(!printable("\u{0}\u{7f}").chars().any(char::is_control));
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        let text = "é".repeat(10);
        let cut = printable_cut(&text, 5);
        assert!(cut.starts_with("éé…"), "{cut}");
        assert!(cut.ends_with("(16 more bytes cut)"), "{cut}");
        assert_eq!(printable_cut("short", 5), "short");
    }

    #[test]
    fn the_budget_allows_a_burst_then_the_rate_and_counts_drops() {
        let budget = LogBudget::default();
        let start = Instant::now();
        for _ in 0..1000 {
            assert!(matches!(budget.admit_at(start), Admission::Log { .. }));
        }
        assert_eq!(budget.admit_at(start), Admission::Drop);
        assert_eq!(budget.admit_at(start), Admission::Drop);
        assert_eq!(budget.dropped(), 2);
        // A tenth of a second later, ten more lines, the first one saying
        // that two were dropped.
        let later = start + Duration::from_millis(100);
        assert_eq!(budget.admit_at(later), Admission::Log { dropped_before: 2 });
        for _ in 0..9 {
            assert_eq!(budget.admit_at(later), Admission::Log { dropped_before: 0 });
        }
        assert_eq!(budget.admit_at(later), Admission::Drop);
    }
}

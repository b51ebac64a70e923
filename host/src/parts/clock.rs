//! Twin time: real time unless the host freezes or moves it.
//!
//! The host has one global clock, so "advance 24h" moves the whole simulated
//! world together. Each twin reads a clock layered on top of it: its own
//! offset and freeze point apply on top of the global time, so one twin can
//! be moved or frozen alone while global moves still reach it. Offsets and
//! freeze points are atomics, so reading a clock on the request path takes
//! no lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Real wall time in milliseconds since the Unix epoch.
pub fn wall_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A handle to a twin clock; clones share it.
#[derive(Debug, Clone, Default)]
pub struct TwinClock {
    inner: Arc<ClockInner>,
}

#[derive(Debug, Default)]
struct ClockInner {
    /// Milliseconds added to the base time.
    offset_millis: AtomicI64,
    /// Non-zero: time stands still at this instant.
    frozen_at: AtomicU64,
    /// The clock this one is layered on; real time when none.
    parent: Option<TwinClock>,
}

impl TwinClock {
    /// A clock that follows `parent` until moved or frozen itself.
    pub fn layered(parent: TwinClock) -> Self {
        Self {
            inner: Arc::new(ClockInner {
                parent: Some(parent),
                ..ClockInner::default()
            }),
        }
    }

    /// The time this clock's offset applies to.
    fn base_millis(&self) -> u64 {
        match &self.inner.parent {
            Some(parent) => parent.now_millis(),
            None => wall_millis(),
        }
    }

    /// Twin time in milliseconds since the Unix epoch.
    pub fn now_millis(&self) -> u64 {
        let frozen = self.inner.frozen_at.load(Ordering::Acquire);
        if frozen != 0 {
            return frozen;
        }
        let offset = self.inner.offset_millis.load(Ordering::Acquire);
        self.base_millis().saturating_add_signed(offset)
    }

    /// Follows the base time again: no offset, not frozen.
    pub fn clear(&self) {
        self.inner.frozen_at.store(0, Ordering::Release);
        self.inner.offset_millis.store(0, Ordering::Release);
    }

    /// This clock's own offset from the base time, in milliseconds.
    pub fn offset_millis(&self) -> i64 {
        if self.is_frozen() {
            let now = i128::from(self.now_millis());
            return i64::try_from(now - i128::from(self.base_millis())).unwrap_or(0);
        }
        self.inner.offset_millis.load(Ordering::Acquire)
    }

    /// Moves twin time forward (or back, for a negative value).
    pub fn advance(&self, millis: i64) {
        let frozen = self.inner.frozen_at.load(Ordering::Acquire);
        if frozen != 0 {
            self.inner.frozen_at.store(
                frozen.saturating_add_signed(millis).max(1),
                Ordering::Release,
            );
        } else {
            self.inner.offset_millis.fetch_add(millis, Ordering::AcqRel);
        }
    }

    /// Jumps to an absolute twin time, frozen or running.
    pub fn set_millis(&self, millis: u64) {
        if self.is_frozen() {
            self.inner.frozen_at.store(millis.max(1), Ordering::Release);
        } else {
            let offset =
                i64::try_from(i128::from(millis) - i128::from(self.base_millis())).unwrap_or(0);
            self.inner.offset_millis.store(offset, Ordering::Release);
        }
    }

    /// Stops time at its current reading.
    pub fn freeze(&self) {
        let now = self.now_millis().max(1);
        self.inner.frozen_at.store(now, Ordering::Release);
    }

    /// Lets time run again from where it stands.
    pub fn unfreeze(&self) {
        let frozen = self.inner.frozen_at.swap(0, Ordering::AcqRel);
        if frozen != 0 {
            let offset =
                i64::try_from(i128::from(frozen) - i128::from(self.base_millis())).unwrap_or(0);
            self.inner.offset_millis.store(offset, Ordering::Release);
        }
    }

    /// Whether time is frozen.
    pub fn is_frozen(&self) -> bool {
        self.inner.frozen_at.load(Ordering::Acquire) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_moves_time_forward() {
        let clock = TwinClock::default();
        let before = clock.now_millis();
        clock.advance(86_400_000);
        assert!(clock.now_millis() >= before + 86_400_000);
    }

    #[test]
    fn set_jumps_to_an_absolute_time_frozen_or_running() {
        let clock = TwinClock::default();
        clock.set_millis(4_102_444_800_000); // 2100-01-01
        assert!(clock.now_millis() >= 4_102_444_800_000);
        clock.freeze();
        clock.set_millis(1_000);
        assert_eq!(clock.now_millis(), 1_000);
    }

    #[test]
    fn a_layered_clock_follows_its_parent_plus_its_own_moves() {
        let global = TwinClock::default();
        global.freeze();
        global.set_millis(1_000_000);
        let twin = TwinClock::layered(global.clone());
        assert_eq!(twin.now_millis(), 1_000_000);
        twin.advance(500);
        assert_eq!(twin.now_millis(), 1_000_500);
        global.advance(1_000);
        assert_eq!(twin.now_millis(), 1_001_500, "global moves reach it");
        twin.freeze();
        global.advance(1_000);
        assert_eq!(twin.now_millis(), 1_001_500, "frozen on its own");
        twin.unfreeze();
        assert_eq!(twin.now_millis(), 1_001_500);
        assert_eq!(twin.offset_millis(), -500);
        twin.clear();
        assert_eq!(twin.now_millis(), global.now_millis());
    }

    #[test]
    fn frozen_time_stands_still_until_advanced_or_unfrozen() {
        let clock = TwinClock::default();
        clock.freeze();
        let at = clock.now_millis();
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(clock.now_millis(), at);
        clock.advance(1000);
        assert_eq!(clock.now_millis(), at + 1000);
        clock.unfreeze();
        assert!(!clock.is_frozen());
        assert!(clock.now_millis() >= at + 1000);
    }
}

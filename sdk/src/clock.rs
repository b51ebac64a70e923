//! Time as the twin sees it.
//!
//! Use [`now_millis`]/[`now_secs`] for everything the API exposes (`created`
//! timestamps, trial ends, expiries): the host can freeze and advance twin
//! time so tests need not wait. Use [`wall_millis`] only where a client
//! checks against the real clock, such as webhook signature timestamps.

/// Twin time in milliseconds since the Unix epoch.
pub fn now_millis() -> u64 {
    crate::sys::now_millis()
}

/// Twin time in whole seconds since the Unix epoch (what most vendor APIs
/// put in `created`).
pub fn now_secs() -> u64 {
    now_millis() / 1000
}

/// Real wall-clock time in milliseconds since the Unix epoch, unaffected by
/// the host freezing or advancing twin time.
pub fn wall_millis() -> u64 {
    crate::sys::wall_millis()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn twin_time_follows_the_test_clock_and_wall_time_does_not() {
        testing::reset();
        let wall = wall_millis();
        assert!(now_millis() >= wall);
        testing::set_now_millis(1_700_000_123_456);
        assert_eq!(now_millis(), 1_700_000_123_456);
        assert_eq!(now_secs(), 1_700_000_123);
        testing::advance_millis(1_000);
        assert_eq!(now_secs(), 1_700_000_124);
        assert!(wall_millis() >= wall);
        testing::use_real_time();
        assert!(now_millis() >= wall);
    }
}

//! Logging through the host, which tags every line with the twin's name.
//!
//! Twins cannot print: their stdout is discarded. Use the functions
//! (`log::info("…")`) or the formatting macros (`log::info!("{x}")`), which
//! live side by side in this module.
//!
//! ```
//! use wt_sdk::log;
//! log::info("started");
//! log::warn!("{} retries left", 2);
//! ```

use std::fmt;

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something looks wrong but the request goes on.
    Warn,
    /// Something failed.
    Error,
}

impl Level {
    /// Lower-case name: `"info"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Logs `message` at `level`.
pub fn log(level: Level, message: &str) {
    crate::sys::log(level, message);
}

/// Logs at trace level.
pub fn trace(message: impl AsRef<str>) {
    log(Level::Trace, message.as_ref());
}

/// Logs at debug level.
pub fn debug(message: impl AsRef<str>) {
    log(Level::Debug, message.as_ref());
}

/// Logs at info level.
pub fn info(message: impl AsRef<str>) {
    log(Level::Info, message.as_ref());
}

/// Logs at warn level.
pub fn warn(message: impl AsRef<str>) {
    log(Level::Warn, message.as_ref());
}

/// Logs at error level.
pub fn error(message: impl AsRef<str>) {
    log(Level::Error, message.as_ref());
}

#[doc(hidden)]
#[macro_export]
macro_rules! __wt_log_trace {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Trace, &::std::format!($($arg)*)) };
}
#[doc(hidden)]
#[macro_export]
macro_rules! __wt_log_debug {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Debug, &::std::format!($($arg)*)) };
}
#[doc(hidden)]
#[macro_export]
macro_rules! __wt_log_info {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Info, &::std::format!($($arg)*)) };
}
#[doc(hidden)]
#[macro_export]
macro_rules! __wt_log_warn {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Warn, &::std::format!($($arg)*)) };
}
#[doc(hidden)]
#[macro_export]
macro_rules! __wt_log_error {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Error, &::std::format!($($arg)*)) };
}

/// `format!`-style debug logging: `log::debug!("{x}")`.
pub use crate::__wt_log_debug as debug;
/// `format!`-style error logging: `log::error!("{x}")`.
pub use crate::__wt_log_error as error;
/// `format!`-style info logging: `log::info!("{x}")`.
pub use crate::__wt_log_info as info;
/// `format!`-style trace logging: `log::trace!("{x}")`.
pub use crate::__wt_log_trace as trace;
/// `format!`-style warn logging: `log::warn!("{x}")`.
pub use crate::__wt_log_warn as warn;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn functions_and_macros_both_log() {
        testing::reset();
        info("plain");
        crate::log::warn!("formatted {}", 7);
        error(String::from("owned"));
        assert_eq!(
            testing::take_logs(),
            vec![
                (Level::Info, "plain".to_owned()),
                (Level::Warn, "formatted 7".to_owned()),
                (Level::Error, "owned".to_owned()),
            ]
        );
        assert!(testing::take_logs().is_empty());
    }
}

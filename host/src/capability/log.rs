//! The `log` import: a twin's lines, made printable, cut to a line's bound
//! and counted against its allowance (`crate::logs`).

use crate::bindings::log;

use super::InstanceState;

impl log::Host for InstanceState {
    fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        use crate::logs::{Admission, MAX_LINE_BYTES, printable_cut};
        let twin = &*self.twin;
        match self.metrics.logs.admit() {
            Admission::Drop => return Ok(()),
            Admission::Log { dropped_before: 0 } => {}
            Admission::Log { dropped_before } => tracing::warn!(
                target: "twin",
                twin,
                dropped = dropped_before,
                "log lines dropped: the twin logged more than {} a second",
                crate::logs::LINES_PER_SECOND
            ),
        }
        let message = printable_cut(&message, MAX_LINE_BYTES);
        match level {
            log::Level::Trace => tracing::trace!(target: "twin", twin, "{message}"),
            log::Level::Debug => tracing::debug!(target: "twin", twin, "{message}"),
            log::Level::Info => tracing::info!(target: "twin", twin, "{message}"),
            log::Level::Warn => tracing::warn!(target: "twin", twin, "{message}"),
            log::Level::Error => tracing::error!(target: "twin", twin, "{message}"),
        }
        Ok(())
    }
}

//! Layer 1: the twin-independent pieces each capability and the twin are built from: state backends and transactions, twin time, settings, the journal, faults, licenses, outbound delivery, log budgets, metrics.

pub mod clock;
pub(crate) mod faults;
pub(crate) mod framing;
pub(crate) mod journal;
pub mod license;
pub(crate) mod logs;
pub(crate) mod metrics;
pub(crate) mod outbound;
pub mod settings;
pub(crate) mod state;

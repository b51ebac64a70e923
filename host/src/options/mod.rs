//! Layer 0: what an operator configures (limits, units, `wt.toml`) and what a twin may be called.

pub(crate) mod limits;
pub(crate) mod names;
pub mod project;
pub mod units;

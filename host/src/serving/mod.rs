//! Layer 6: the listeners and routing, who is asking (`caller`), and the `/_wt/` control plane.

pub(crate) mod caller;
pub(crate) mod control;
pub(crate) mod server;

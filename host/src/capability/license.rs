//! The `license` import: the verified claims the twin is served under.

use crate::bindings::license;

use super::InstanceState;

impl license::Host for InstanceState {
    fn current(&mut self) -> wasmtime::Result<Option<license::Claims>> {
        Ok(self.license.clone())
    }
}

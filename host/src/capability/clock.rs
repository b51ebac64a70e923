//! The `clock` import: twin time (the host can freeze and move it) and real
//! wall time.

use crate::bindings::clock;

use super::InstanceState;

impl clock::Host for InstanceState {
    fn now_millis(&mut self) -> wasmtime::Result<u64> {
        Ok(self.clock.now_millis())
    }

    fn wall_millis(&mut self) -> wasmtime::Result<u64> {
        Ok(crate::clock::wall_millis())
    }
}

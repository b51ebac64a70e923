//! The `config` import: the settings the twin declared, as the operator
//! set them when the request began.

use crate::bindings::config;

use super::InstanceState;

impl config::Host for InstanceState {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.config.get(&key).cloned())
    }
}

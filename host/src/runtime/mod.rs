//! Layer 1: the wasmtime engine and its epoch ticker, the pool of warm instances, the generated bindings, the precompiled cache.

pub(crate) mod bindings;
pub(crate) mod cache;
pub(crate) mod engine;
pub(crate) mod instances;

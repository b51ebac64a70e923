//! The one `bindgen!` for the twin world. Everything else in the crate uses
//! these types through this module, so a WIT change shows up in one place.

#![allow(unsafe_code, missing_docs, clippy::all)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "twin",
    imports: { default: trappable },
    exports: { default: async },
});

pub use exports::wondertwin::twin::describe::Info;
pub use wondertwin::twin::{clock, config, license, log, outbound, store, types};

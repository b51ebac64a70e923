//! The end-to-end tests, one module per area, in one test binary: each
//! binary links the host, an HTTP client and tokio, so fifteen binaries
//! cost fifteen links and ~1.6 GB of disk in `target/debug/deps`.
//! `cargo test -p wt-tests --test e2e fuzz::` runs one area.

mod boundary;
mod control;
mod durability;
mod embed;
mod fuzz;
mod instances;
mod license;
mod lifecycle;
mod operations;
mod outbound;
mod project;
mod registry;
mod release;
mod run;
mod sandbox;
mod settings;
mod tenants;

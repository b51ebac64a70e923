//! The rest of [`Host`](crate::Host)'s methods, by job, beside the facade
//! in `lib.rs`: loading and reloading twins, and tenants. Layer 5, with
//! `lib.rs`.

mod loading;
mod tenants;

pub use tenants::Tenant;

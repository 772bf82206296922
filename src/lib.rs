//! A JWT-validating proxy-wasm filter for Envoy.
//!
//! Everything but `filter` is plain Rust that never touches the host, so it is
//! tested natively; `filter` is the thin proxy-wasm glue.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unreachable
    )
)]

pub mod authz;
pub mod case;
pub mod claim_header;
pub mod config;
pub mod crypto;
pub mod decision;
pub mod decision_log;
pub mod diag;
pub mod effects;
pub mod error;
pub mod extract;
pub mod header_name;
mod json_read;
pub mod keys;
pub mod matcher;
pub mod metrics;
pub mod policy;
pub mod remote_jwks;
#[cfg(feature = "revocation")]
pub mod revocation;
#[cfg(feature = "revocation")]
pub mod revocation_feeds;
pub mod route;
pub mod sender;
pub mod shared_data;
mod strict_json;
pub mod token;
pub mod token_cache;
pub mod warning;

// Native tooling (config checker and converter for `jwt-filter-check`); not in the wasm.
#[cfg(not(target_arch = "wasm32"))]
pub mod checker;
#[cfg(not(target_arch = "wasm32"))]
pub mod convert;

// A fake of Envoy's shared data for native tests and the mesh simulation; not in the wasm.
#[cfg(not(target_arch = "wasm32"))]
pub mod fake_shared;

#[cfg(test)]
#[path = "testutil/tests.rs"]
mod testutil;

// One fake Envoy host for the native tests of the key lifecycle and the feeds.
#[cfg(test)]
mod test_host;

#[cfg(target_arch = "wasm32")]
mod filter;

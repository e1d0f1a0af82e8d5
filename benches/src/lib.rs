//! Fixtures for the benchmarks of tigress, and the statistics its load generator reports.
//!
//! The criterion benchmark in `benches/ratchet.rs` runs the same Signal operations through three
//! [`ratchet::Party`] implementations side by side: raw libsignal over its in-memory store, the
//! protocol core over its durable sled store, and the core behind the share message encoding.
//! `cargo xtask bench` runs it and prints the table; `cargo xtask load` runs the `tigress-load`
//! binary against a relay.

#![deny(unsafe_code)]

pub mod ratchet;
pub mod stats;

//! Rust types generated from the protobuf definitions in `proto/`.
//!
//! - [`relay::v1`]: the relay's gRPC API (messages always; tonic clients and servers with the
//!   default `grpc` feature).
//! - [`share::v1`]: the end-to-end share messages that travel inside Signal ciphertexts.
//!
//! Nothing here is written by hand except these re-exports.

#![allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]

/// The relay API, package `tigress.relay.v1`.
pub mod relay {
    /// Version 1 of the relay API.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/tigress.relay.v1.rs"));
    }
}

/// End-to-end share messages, package `tigress.share.v1`.
pub mod share {
    /// Version 1 of the share messages.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/tigress.share.v1.rs"));
    }
}

/// The encoded `FileDescriptorSet` of every file in `proto/`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/tigress_descriptor.bin"));

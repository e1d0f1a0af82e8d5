//! Generates the Rust types for `proto/` with tonic-prost-build.

// A build script reports failure by panicking with a message for the person building.
#![allow(clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

fn main() {
    let proto_root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let protos = [
        proto_root.join("tigress/relay/v1/relay.proto"),
        proto_root.join("tigress/share/v1/share.proto"),
    ];
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));

    if std::env::var_os("PROTOC").is_none() && which_protoc().is_none() {
        panic!(
            "protoc not found: build through `cargo xtask`, which sets PROTOC to a vendored \
             protoc, or set PROTOC to a protoc binary (for example `export PROTOC=$(cargo xtask protoc)`)"
        );
    }

    // Without the `grpc` feature only the messages are generated, so that the protocol core
    // does not depend on tonic.
    let grpc = std::env::var_os("CARGO_FEATURE_GRPC").is_some();
    tonic_prost_build::configure()
        .build_client(grpc)
        .build_server(grpc)
        .file_descriptor_set_path(out_dir.join("tigress_descriptor.bin"))
        .compile_protos(&protos, std::slice::from_ref(&proto_root))
        .unwrap_or_else(|error| panic!("failed to compile {}: {error}", proto_root.display()));

    for proto in &protos {
        println!("cargo:rerun-if-changed={}", proto.display());
    }
    println!("cargo:rerun-if-env-changed=PROTOC");
}

/// Finds `protoc` on PATH, as prost-build would.
fn which_protoc() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|folder| folder.join("protoc"))
        .find(|candidate| candidate.is_file())
}

//! Generates the protobuf code of cairn-kv from `proto/`:
//! the etcd v3 messages (packages `mvccpb`, `authpb`, `etcdserverpb`; messages
//! only, the etcd services are generated in cairn-etcd) and cairn's own
//! server-to-server service (package `cairnpeer`; client and server).

use std::io;

/// A prost config that runs the vendored protoc, so building needs no system
/// protoc. (Passed to prost directly rather than through `PROTOC`, because
/// `std::env::set_var` is `unsafe` in edition 2024.)
fn config() -> io::Result<tonic_prost_build::Config> {
    let protoc = protoc_bin_vendored::protoc_bin_path().map_err(io::Error::other)?;
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);
    Ok(config)
}

fn main() -> io::Result<()> {
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-changed=build.rs");

    tonic_prost_build::configure()
        .build_server(false)
        .build_client(false)
        .emit_rerun_if_changed(false)
        .compile_with_config(
            config()?,
            &[
                "proto/mvccpb/kv.proto",
                "proto/authpb/auth.proto",
                "proto/etcdserverpb/rpc.proto",
                "proto/cairnpb/log.proto",
            ],
            &["proto"],
        )?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .emit_rerun_if_changed(false)
        .compile_with_config(config()?, &["proto/raftpb/peer.proto"], &["proto"])?;

    Ok(())
}

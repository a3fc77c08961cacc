//! Generates the tonic client and server code for the etcd v3 gRPC services
//! (KV, Watch, Lease, Cluster, Maintenance, Auth) from cairn-kv's
//! `proto/etcdserverpb/rpc.proto`. The messages are not generated again: they
//! are taken from `cairn_kv::pb` through `extern_path`.

use std::io;

const PROTO_ROOT: &str = "../kv/proto";

fn main() -> io::Result<()> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    println!("cargo:rerun-if-changed=build.rs");

    // The vendored protoc, passed to prost directly rather than through
    // `PROTOC` (`std::env::set_var` is `unsafe` in edition 2024).
    let protoc = protoc_bin_vendored::protoc_bin_path().map_err(io::Error::other)?;
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .emit_rerun_if_changed(false)
        .extern_path(".etcdserverpb", "::cairn_kv::pb::etcdserverpb")
        .extern_path(".mvccpb", "::cairn_kv::pb::mvccpb")
        .extern_path(".authpb", "::cairn_kv::pb::authpb")
        .compile_with_config(
            config,
            &[format!("{PROTO_ROOT}/etcdserverpb/rpc.proto")],
            &[PROTO_ROOT.to_owned()],
        )
}

//! Protobuf types generated from `proto/` by `build.rs`.
//!
//! - [`mvccpb`], [`authpb`], [`etcdserverpb`]: the etcd v3 wire messages
//!   (the etcd gRPC services themselves are generated in cairn-etcd).
//! - [`cairnpeer`]: cairn's server-to-server `Peer` service, client and server;
//!   its payloads are opaque bytes encoded by the store.

/// etcd's MVCC messages: `KeyValue` and `Event`.
#[allow(missing_docs, clippy::all, clippy::pedantic, clippy::nursery)]
pub mod mvccpb {
    tonic::include_proto!("mvccpb");
}

/// etcd's auth messages: `User`, `Permission`, `Role`.
#[allow(missing_docs, clippy::all, clippy::pedantic, clippy::nursery)]
pub mod authpb {
    tonic::include_proto!("authpb");
}

/// etcd v3 API request and response messages (package `etcdserverpb`).
#[allow(missing_docs, clippy::all, clippy::pedantic, clippy::nursery)]
pub mod etcdserverpb {
    tonic::include_proto!("etcdserverpb");
}

/// cairn's server-to-server transport: the `Peer` service and its `Blob`.
#[allow(missing_docs, clippy::all, clippy::pedantic, clippy::nursery)]
pub mod cairnpeer {
    tonic::include_proto!("cairnpeer");
}

/// cairn's records in the Raft log: batches of etcd writes and their results.
#[allow(missing_docs, clippy::all, clippy::pedantic, clippy::nursery)]
pub mod cairnpb {
    tonic::include_proto!("cairnpb");
}

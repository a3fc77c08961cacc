//! cairn-etcd: the etcd v3 gRPC API (KV, Watch, Lease, Cluster, Maintenance and the gRPC health
//! service) served over a [`cairn_kv::Store`].
//!
//! Each service is a thin translation: requests go to the store, the store's answers and errors
//! come back in etcd's wire format with etcd's status codes and messages, so etcdctl, client-go
//! and kube-apiserver cannot tell cairn from etcd for what they use. What this crate does not do:
//! keep any data itself, replicate, or authenticate users (the Auth service is not served, as in
//! kine; clients are authenticated by the transport).

pub mod rpc;

mod authority;
mod cluster;
mod header;
mod hpack;
mod kv;
mod lease;
mod maintenance;
mod server;
mod status;
mod watch;

pub use maintenance::VERSION;
pub use server::{EtcdServerConfig, serve};
pub use status::to_status;

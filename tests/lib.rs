//! End-to-end test harness for cairn: real processes driven by real clients.
//!
//! This crate owns the machinery the test targets beside it share: starting cairn servers and
//! Debian's etcd as child processes (killed by PID and reaped on drop, temp dirs removed), the
//! `etcdctl` wrapper, the choice of targets (real etcd always, cairn when its binary exists), the
//! register workload recorder and the linearizability checker. It does not test anything itself
//! apart from the checker's unit tests; the tests are the `[[test]]` targets listed in `Cargo.toml`.
//!
//! Every etcd conformance test takes an endpoint and runs once against real etcd (which validates
//! the test) and once against cairn.

pub mod cairn_cluster;
pub mod cairn_server;
pub mod client;
pub mod ctr;
pub mod etcd_server;
pub mod etcdctl;
pub mod hollow;
pub mod kubectl;
pub mod linearizability;
pub mod ports;
pub mod process;
pub mod target;
pub mod workload;

pub use cairn_cluster::Cluster;
pub use cairn_server::{Server, ServerOpts};
pub use client::{connect, expect_grpc_error};
pub use etcd_server::EtcdServer;
pub use etcdctl::{OutputExt, etcdctl, etcdctl_with_input};
pub use target::{Endpoint, Target, run_on, targets};

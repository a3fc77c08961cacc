//! cairn-kv: cairn's replicated, etcd-compatible key-value store.
//!
//! Each server runs one member: an openraft node whose log, vote and state machine live in one
//! redb database. The state machine is etcd's data model (revisions, per-key versions, leases,
//! history with compaction, watches). [`Store`] is the handle the etcd gRPC API (cairn-etcd) and
//! the server's join endpoints use. What it does not do: serve gRPC to clients, or know anything
//! about Kubernetes.

pub mod pb;

mod config;
mod error;
mod forward;
mod history;
mod keyrange;
mod lease;
mod log_store;
mod mvcc;
mod network;
mod peer_service;
mod raft_types;
mod snapshot;
mod state_machine;
mod store;
mod tables;
mod watch;

pub use config::{Config, PeerTls};
pub use error::{Error, Result};
pub use keyrange::{KeyRange, prefix_end};
pub use lease::{MAX_TTL, MIN_TTL};
pub use log_store::LogStore;
pub use mvcc::{RevisionEvents, validate_txn};
pub use raft_types::{Member, NodeId, TypeConfig};
pub use state_machine::StateMachine;
pub use store::{MemberInfo, Store, StoreStatus, restore};
pub use watch::{WatchEvent, WatchSpec, Watcher};

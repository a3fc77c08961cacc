//! The store's configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::raft_types::Member;

/// Mutual-TLS material for server-to-server traffic, signed by the cluster CA.
#[derive(Clone)]
pub struct PeerTls {
    /// The cluster CA certificate (PEM): the only issuer peers trust.
    pub ca_pem: String,
    /// This member's certificate (PEM), for both serving and client authentication.
    pub cert_pem: String,
    /// Its private key (PEM).
    pub key_pem: String,
}

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerTls { .. }")
    }
}

/// How a member's store runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The database file.
    pub db_path: PathBuf,
    /// The cluster's ID (the same on every member).
    pub cluster_id: u64,
    /// How others reach this member.
    pub member: Member,
    /// Where the peer service listens.
    pub peer_listen: SocketAddr,
    /// Peer mTLS; `None` only in tests of the store itself.
    pub peer_tls: Option<PeerTls>,
    /// Raft heartbeat interval.
    pub heartbeat: Duration,
    /// Raft election timeout: a random value between these.
    pub election_timeout: (Duration, Duration),
    /// Build a snapshot (and purge the log) after this many entries.
    pub snapshot_threshold: u64,
    /// Automatic compaction keeps this much history; zero turns it off.
    pub compaction_retention: Duration,
    /// The largest request accepted, in bytes (etcd: 1.5 MiB).
    pub max_request_bytes: usize,
    /// The most operations in one transaction list (etcd: 128).
    pub max_txn_ops: usize,
    /// How long a request may wait for Raft.
    pub request_timeout: Duration,
}

impl Config {
    /// A configuration with etcd-like defaults.
    pub fn new(db_path: PathBuf, cluster_id: u64, member: Member, peer_listen: SocketAddr) -> Self {
        Config {
            db_path,
            cluster_id,
            member,
            peer_listen,
            peer_tls: None,
            heartbeat: Duration::from_millis(100),
            election_timeout: (Duration::from_millis(300), Duration::from_millis(600)),
            snapshot_threshold: 100_000,
            compaction_retention: Duration::from_secs(300),
            max_request_bytes: 3 * 512 * 1024,
            max_txn_ops: 128,
            request_timeout: Duration::from_secs(7),
        }
    }

    /// Checks that the settings make sense together.
    pub fn validate(&self) -> Result<()> {
        let (lo, hi) = self.election_timeout;
        if self.heartbeat.is_zero() || lo <= self.heartbeat || hi <= lo {
            return Err(Error::InvalidArgument(
                "election timeout must exceed the heartbeat and its maximum its minimum".into(),
            ));
        }
        if self.snapshot_threshold == 0 {
            return Err(Error::InvalidArgument(
                "snapshot threshold must be positive".into(),
            ));
        }
        Ok(())
    }

    /// The Raft log's directory, beside the database (`state.redb` → `state.wal/`).
    pub fn wal_dir(&self) -> PathBuf {
        self.db_path.with_extension("wal")
    }

    pub(crate) fn raft_config(&self) -> Result<openraft::Config> {
        let c = openraft::Config {
            cluster_name: format!("cairn-{:016x}", self.cluster_id),
            heartbeat_interval: self.heartbeat.as_millis() as u64,
            election_timeout_min: self.election_timeout.0.as_millis() as u64,
            election_timeout_max: self.election_timeout.1.as_millis() as u64,
            install_snapshot_timeout: 10_000,
            snapshot_max_chunk_size: 1024 * 1024,
            max_payload_entries: 256,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.snapshot_threshold),
            max_in_snapshot_log_to_keep: self.snapshot_threshold.min(1000),
            purge_batch_size: 256,
            ..Default::default()
        };
        c.validate()
            .map_err(|e| Error::InvalidArgument(e.to_string()))
    }
}

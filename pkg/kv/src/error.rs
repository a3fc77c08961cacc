//! The store's errors. Messages are etcd's own, word for word, because etcd clients (etcdctl,
//! client-go, kube-apiserver) match on them; the etcd gRPC layer maps each to etcd's status code.

use crate::raft_types::NodeId;

/// A store error.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Error {
    /// A read or watch asked for a revision that compaction has removed.
    #[error("etcdserver: mvcc: required revision has been compacted")]
    Compacted {
        /// The store's compacted revision.
        compact_revision: i64,
    },
    /// A read asked for a revision the store has not reached.
    #[error("etcdserver: mvcc: required revision is a future revision")]
    FutureRevision,
    /// The request exceeds the size limit (1.5 MiB by default).
    #[error("etcdserver: request is too large")]
    RequestTooLarge,
    /// A transaction has more operations than allowed (128 by default).
    #[error("etcdserver: too many operations in txn request")]
    TooManyOps,
    /// A transaction writes one key twice.
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    /// The key of a request is empty.
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    /// A put with `ignore_value` also carries a value.
    #[error("etcdserver: value is provided")]
    ValueProvided,
    /// A put with `ignore_lease` also carries a lease.
    #[error("etcdserver: lease is provided")]
    LeaseProvided,
    /// `ignore_value`/`ignore_lease` on a key that does not exist.
    #[error("etcdserver: key not found")]
    KeyNotFound,
    /// The lease does not exist (never granted, revoked or expired).
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    /// A lease with the requested ID exists already.
    #[error("etcdserver: lease already exists")]
    LeaseExists,
    /// The lease TTL asked for is larger than allowed.
    #[error("etcdserver: too large lease TTL")]
    LeaseTtlTooLarge,
    /// No leader is known; the cluster may be electing one or has lost quorum.
    #[error("etcdserver: no leader")]
    NoLeader,
    /// This member is not the leader and could not reach it.
    #[error("etcdserver: leader changed")]
    LeaderChanged,
    /// The request did not finish in time; it may or may not have taken effect.
    #[error("etcdserver: request timed out")]
    Timeout,
    /// The member is shutting down.
    #[error("etcdserver: server stopped")]
    Stopped,
    /// A learner serves only serializable reads and status.
    #[error("etcdserver: rpc not supported for learner")]
    Learner,
    /// The member ID is not in the cluster.
    #[error("etcdserver: member not found")]
    MemberNotFound {
        /// The ID asked for.
        id: NodeId,
    },
    /// The peer URL is used by another member.
    #[error("etcdserver: Peer URLs already exists")]
    PeerUrlExists,
    /// The learner is not yet caught up with the leader.
    #[error("etcdserver: can only promote a learner member which is in sync with leader")]
    LearnerNotReady,
    /// The member is not a learner.
    #[error("etcdserver: can only promote a learner member")]
    NotLearner,
    /// A membership change was refused by Raft.
    #[error("etcdserver: unhealthy cluster: {reason}")]
    Membership {
        /// Raft's reason.
        reason: String,
    },
    /// Invalid input that etcd would refuse with InvalidArgument.
    #[error("{0}")]
    InvalidArgument(String),
    /// The data directory or the database cannot be used.
    #[error("{0}")]
    Open(String),
    /// The local disk or database failed.
    #[error("storage: {0}")]
    Storage(String),
    /// Talking to another member failed.
    #[error("peer: {0}")]
    Peer(String),
}

/// The store's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<redb::Error> for Error {
    fn from(e: redb::Error) -> Self {
        Error::Storage(e.to_string())
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Storage(redb::Error::from(e).to_string())
            }
        }
    )*};
}
from_redb!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::DatabaseError,
    redb::SetDurabilityError
);

/// Refusals decided while applying a log entry. They are recorded in the entry's result by number,
/// so the numbers are part of the log format and must never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Refusal {
    Compacted = 1,
    FutureRevision = 2,
    LeaseNotFound = 3,
    LeaseExists = 4,
    KeyNotFound = 5,
}

impl Refusal {
    pub(crate) fn from_error(e: &Error) -> Option<Refusal> {
        Some(match e {
            Error::Compacted { .. } => Refusal::Compacted,
            Error::FutureRevision => Refusal::FutureRevision,
            Error::LeaseNotFound => Refusal::LeaseNotFound,
            Error::LeaseExists => Refusal::LeaseExists,
            Error::KeyNotFound => Refusal::KeyNotFound,
            _ => return None,
        })
    }

    pub(crate) fn into_error(kind: u32, detail: &str) -> Error {
        match kind {
            1 => Error::Compacted {
                compact_revision: detail.parse().unwrap_or(0),
            },
            2 => Error::FutureRevision,
            3 => Error::LeaseNotFound,
            4 => Error::LeaseExists,
            5 => Error::KeyNotFound,
            _ => Error::Storage(format!("unknown refusal {kind}: {detail}")),
        }
    }
}

//! The `ResponseHeader` every etcd response carries: which cluster and member answered, at which
//! store revision, in which Raft term.

use cairn_kv::Store;
use cairn_kv::pb::etcdserverpb::ResponseHeader;

/// A header for a response at the store's current revision.
pub(crate) fn now(store: &Store) -> ResponseHeader {
    let status = store.status();
    with_term(store, status.revision, status.raft_term)
}

/// A header with a Raft term the caller already knows (the watch stream caches it).
pub(crate) fn with_term(store: &Store, revision: i64, raft_term: u64) -> ResponseHeader {
    ResponseHeader {
        cluster_id: store.cluster_id(),
        member_id: store.id(),
        revision,
        raft_term,
    }
}

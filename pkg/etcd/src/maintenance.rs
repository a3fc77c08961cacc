//! The Maintenance service: status, snapshots, hashes, and the operator calls etcdctl makes
//! (defragment, alarms) that have nothing to do in cairn.

use std::pin::Pin;

use cairn_kv::Store;
use cairn_kv::pb::etcdserverpb::{
    AlarmRequest, AlarmResponse, DefragmentRequest, DefragmentResponse, DowngradeRequest,
    DowngradeResponse, HashKvRequest, HashKvResponse, HashRequest, HashResponse, MoveLeaderRequest,
    MoveLeaderResponse, SnapshotRequest, SnapshotResponse, StatusRequest, StatusResponse,
};
use futures::Stream;
use tonic::{Request, Response, Status};

use crate::header;
use crate::rpc::etcdserverpb::maintenance_server::Maintenance;
use crate::status::to_status;

/// The etcd version cairn reports. kube-apiserver reads it from `Status` and turns on
/// `RequestWatchProgress` only from 3.5.13 (3.4.31) on; cairn implements what 3.5 serves.
pub const VERSION: &str = "3.5.16";

/// The size of each snapshot message, as in etcd.
const SNAPSHOT_CHUNK: usize = 32 * 1024;

/// Serves `etcdserverpb.Maintenance`.
pub(crate) struct MaintenanceService {
    store: Store,
}

impl MaintenanceService {
    pub(crate) fn new(store: Store) -> Self {
        MaintenanceService { store }
    }
}

type SnapshotStream = Pin<Box<dyn Stream<Item = Result<SnapshotResponse, Status>> + Send>>;

/// Cuts a snapshot into etcd's messages: `remaining_bytes` counts what follows each one, and
/// only the first carries the header.
fn snapshot_messages(
    bytes: Vec<u8>,
    first_header: cairn_kv::pb::etcdserverpb::ResponseHeader,
) -> Vec<SnapshotResponse> {
    let total = bytes.len();
    let mut sent = 0;
    let mut header = Some(first_header);
    let mut out = Vec::with_capacity(total.div_ceil(SNAPSHOT_CHUNK).max(1));
    for chunk in bytes.chunks(SNAPSHOT_CHUNK) {
        sent += chunk.len();
        out.push(SnapshotResponse {
            header: header.take(),
            remaining_bytes: (total - sent) as u64,
            blob: chunk.to_vec(),
            version: String::new(),
        });
    }
    if out.is_empty() {
        out.push(SnapshotResponse {
            header,
            ..Default::default()
        });
    }
    out
}

#[tonic::async_trait]
impl Maintenance for MaintenanceService {
    /// No alarm is ever raised: cairn has no space quota, and corruption stops the store
    /// instead. Activating or deactivating one is accepted and changes nothing.
    async fn alarm(&self, _: Request<AlarmRequest>) -> Result<Response<AlarmResponse>, Status> {
        Ok(Response::new(AlarmResponse {
            header: Some(header::now(&self.store)),
            alarms: Vec::new(),
        }))
    }

    async fn status(&self, _: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        let s = self.store.status();
        Ok(Response::new(StatusResponse {
            header: Some(header::with_term(&self.store, s.revision, s.raft_term)),
            version: VERSION.to_owned(),
            db_size: s.db_size,
            leader: s.leader,
            raft_index: s.raft_index,
            raft_term: s.raft_term,
            raft_applied_index: s.raft_applied_index,
            errors: Vec::new(),
            // redb does not report its free pages cheaply; the file size is an upper bound.
            db_size_in_use: s.db_size,
            is_learner: s.is_learner,
            ..Default::default()
        }))
    }

    /// Succeeds without doing anything: redb reuses the pages that compaction frees, so the file
    /// does not keep growing the way bbolt's does, and there is nothing to rewrite.
    async fn defragment(
        &self,
        _: Request<DefragmentRequest>,
    ) -> Result<Response<DefragmentResponse>, Status> {
        Ok(Response::new(DefragmentResponse {
            header: Some(header::now(&self.store)),
        }))
    }

    /// The key space's hash at the current revision (etcd hashes its whole database file; the
    /// store's key-space hash serves the same purpose of comparing members).
    async fn hash(&self, _: Request<HashRequest>) -> Result<Response<HashResponse>, Status> {
        let (hash, _, _) = self.store.hash_kv(0).await.map_err(to_status)?;
        Ok(Response::new(HashResponse {
            header: Some(header::now(&self.store)),
            hash,
        }))
    }

    async fn hash_kv(
        &self,
        request: Request<HashKvRequest>,
    ) -> Result<Response<HashKvResponse>, Status> {
        let revision = request.into_inner().revision;
        let (hash, hash_revision, compact_revision) =
            self.store.hash_kv(revision).await.map_err(to_status)?;
        Ok(Response::new(HashKvResponse {
            header: Some(header::now(&self.store)),
            hash,
            compact_revision,
            hash_revision,
        }))
    }

    type SnapshotStream = SnapshotStream;

    async fn snapshot(
        &self,
        _: Request<SnapshotRequest>,
    ) -> Result<Response<Self::SnapshotStream>, Status> {
        let first = header::now(&self.store);
        let bytes = self.store.snapshot().await.map_err(to_status)?;
        let messages = snapshot_messages(bytes, first);
        Ok(Response::new(Box::pin(futures::stream::iter(
            messages.into_iter().map(Ok),
        ))))
    }

    async fn move_leader(
        &self,
        _: Request<MoveLeaderRequest>,
    ) -> Result<Response<MoveLeaderResponse>, Status> {
        Err(Status::unimplemented(
            "cairn: moving the leader is not supported",
        ))
    }

    async fn downgrade(
        &self,
        _: Request<DowngradeRequest>,
    ) -> Result<Response<DowngradeResponse>, Status> {
        Err(Status::unimplemented("cairn: downgrades are not supported"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_chunks_count_down() {
        let h = cairn_kv::pb::etcdserverpb::ResponseHeader {
            revision: 7,
            ..Default::default()
        };
        let m = snapshot_messages(vec![1; SNAPSHOT_CHUNK * 2 + 5], h);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].remaining_bytes, (SNAPSHOT_CHUNK + 5) as u64);
        assert_eq!(m[2].remaining_bytes, 0);
        assert_eq!(m[2].blob.len(), 5);
        assert!(m[0].header.is_some() && m[1].header.is_none());
        let empty = snapshot_messages(Vec::new(), h);
        assert_eq!(empty.len(), 1);
        assert!(empty[0].header.is_some());
    }
}

//! The KV service: Range, Put, DeleteRange, Txn and Compact, each one store call.

use cairn_kv::Store;
use cairn_kv::pb::etcdserverpb::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, PutRequest,
    PutResponse, RangeRequest, RangeResponse, TxnRequest, TxnResponse,
};
use tonic::{Request, Response, Status};

use crate::rpc::etcdserverpb::kv_server::Kv;
use crate::status::to_status;

/// Serves `etcdserverpb.KV`.
pub(crate) struct KvService {
    store: Store,
}

impl KvService {
    pub(crate) fn new(store: Store) -> Self {
        KvService { store }
    }
}

#[tonic::async_trait]
impl Kv for KvService {
    async fn range(
        &self,
        request: Request<RangeRequest>,
    ) -> Result<Response<RangeResponse>, Status> {
        self.store
            .range(request.into_inner())
            .await
            .map(Response::new)
            .map_err(to_status)
    }

    async fn put(&self, request: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        self.store
            .put(request.into_inner())
            .await
            .map(Response::new)
            .map_err(to_status)
    }

    async fn delete_range(
        &self,
        request: Request<DeleteRangeRequest>,
    ) -> Result<Response<DeleteRangeResponse>, Status> {
        self.store
            .delete_range(request.into_inner())
            .await
            .map(Response::new)
            .map_err(to_status)
    }

    async fn txn(&self, request: Request<TxnRequest>) -> Result<Response<TxnResponse>, Status> {
        self.store
            .txn(request.into_inner())
            .await
            .map(Response::new)
            .map_err(to_status)
    }

    /// Compacts logically. `physical` asks to wait until the old revisions are gone from disk;
    /// the store removes them in the background, and nothing can read them once the logical
    /// compaction is applied, so the answer does not wait.
    async fn compact(
        &self,
        request: Request<CompactionRequest>,
    ) -> Result<Response<CompactionResponse>, Status> {
        let revision = request.into_inner().revision;
        self.store
            .compact(revision)
            .await
            .map(Response::new)
            .map_err(to_status)
    }
}

//! The Lease service: grant, revoke, keep-alive (a bidirectional stream, one answer per request,
//! in order), time-to-live and the list of leases.

use std::pin::Pin;

use cairn_kv::Store;
use cairn_kv::pb::etcdserverpb::{
    LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse,
    LeaseLeasesRequest, LeaseLeasesResponse, LeaseRevokeRequest, LeaseRevokeResponse,
    LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
};
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use crate::rpc::etcdserverpb::lease_server::Lease;
use crate::status::{stopped, to_status};

/// Serves `etcdserverpb.Lease`.
pub(crate) struct LeaseService {
    store: Store,
    stopping: CancellationToken,
}

impl LeaseService {
    pub(crate) fn new(store: Store, stopping: CancellationToken) -> Self {
        LeaseService { store, stopping }
    }
}

type KeepAliveStream = Pin<Box<dyn Stream<Item = Result<LeaseKeepAliveResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Lease for LeaseService {
    async fn lease_grant(
        &self,
        request: Request<LeaseGrantRequest>,
    ) -> Result<Response<LeaseGrantResponse>, Status> {
        let req = request.into_inner();
        self.store
            .lease_grant(req.id, req.ttl)
            .await
            .map(Response::new)
            .map_err(to_status)
    }

    async fn lease_revoke(
        &self,
        request: Request<LeaseRevokeRequest>,
    ) -> Result<Response<LeaseRevokeResponse>, Status> {
        self.store
            .lease_revoke(request.into_inner().id)
            .await
            .map(Response::new)
            .map_err(to_status)
    }

    type LeaseKeepAliveStream = KeepAliveStream;

    /// Renews each lease asked for, answering in request order. An unknown lease is answered
    /// with TTL 0, as etcd does; any other error ends the stream with that error.
    async fn lease_keep_alive(
        &self,
        request: Request<Streaming<LeaseKeepAliveRequest>>,
    ) -> Result<Response<Self::LeaseKeepAliveStream>, Status> {
        let mut incoming = request.into_inner();
        let (tx, rx) = mpsc::channel(16);
        let store = self.store.clone();
        let stopping = self.stopping.clone();
        tokio::spawn(async move {
            loop {
                let req = tokio::select! {
                    _ = tx.closed() => return,
                    _ = stopping.cancelled() => {
                        let _ = tx.send(Err(stopped())).await;
                        return;
                    }
                    req = incoming.next() => match req {
                        Some(Ok(req)) => req,
                        // The client closed its side or went away.
                        Some(Err(_)) | None => return,
                    },
                };
                let answer = store.lease_keep_alive(req.id).await.map_err(to_status);
                let failed = answer.is_err();
                if tx.send(answer).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn lease_time_to_live(
        &self,
        request: Request<LeaseTimeToLiveRequest>,
    ) -> Result<Response<LeaseTimeToLiveResponse>, Status> {
        let req = request.into_inner();
        self.store
            .lease_time_to_live(req.id, req.keys)
            .await
            .map(Response::new)
            .map_err(to_status)
    }

    async fn lease_leases(
        &self,
        _: Request<LeaseLeasesRequest>,
    ) -> Result<Response<LeaseLeasesResponse>, Status> {
        self.store
            .lease_leases()
            .await
            .map(Response::new)
            .map_err(to_status)
    }
}

//! The server side of server-to-server traffic: openraft's RPCs and leader calls from other
//! members, on the Raft port, over mutual TLS signed by the cluster CA.

use std::sync::Arc;

use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status};

use crate::forward::LeaderCall;
use crate::network::MAX_PEER_MESSAGE;
use crate::pb::cairnpeer::{Blob, peer_server};
use crate::raft_types::{NodeId, TypeConfig};
use crate::store::Inner;
use crate::tables;

struct PeerService {
    inner: Arc<Inner>,
}

fn decode<T: serde::de::DeserializeOwned>(b: &Blob) -> Result<T, Status> {
    tables::decode(&b.data).map_err(|e| Status::invalid_argument(e.to_string()))
}

fn reply<T: serde::Serialize>(v: &T) -> Result<Response<Blob>, Status> {
    tables::encode(v)
        .map(|data| Response::new(Blob { data }))
        .map_err(|e| Status::internal(e.to_string()))
}

#[tonic::async_trait]
impl peer_server::Peer for PeerService {
    async fn append_entries(&self, req: Request<Blob>) -> Result<Response<Blob>, Status> {
        let rpc: AppendEntriesRequest<TypeConfig> = decode(req.get_ref())?;
        reply(&self.inner.raft.append_entries(rpc).await)
    }

    async fn vote(&self, req: Request<Blob>) -> Result<Response<Blob>, Status> {
        let rpc: VoteRequest<NodeId> = decode(req.get_ref())?;
        reply(&self.inner.raft.vote(rpc).await)
    }

    async fn install_snapshot(&self, req: Request<Blob>) -> Result<Response<Blob>, Status> {
        let rpc: InstallSnapshotRequest<TypeConfig> = decode(req.get_ref())?;
        reply(&self.inner.raft.install_snapshot(rpc).await)
    }

    async fn forward(&self, req: Request<Blob>) -> Result<Response<Blob>, Status> {
        let call: LeaderCall = decode(req.get_ref())?;
        reply(&self.inner.serve_leader_call(call).await)
    }
}

/// Serves the peer service on `listener` until the store shuts down.
pub(crate) async fn serve(inner: Arc<Inner>, listener: tokio::net::TcpListener) {
    let shutdown = inner.shutdown_token();
    let mut server = Server::builder();
    if let Some(tls) = &inner.config.peer_tls {
        let tls = ServerTlsConfig::new()
            .identity(Identity::from_pem(&tls.cert_pem, &tls.key_pem))
            .client_ca_root(Certificate::from_pem(&tls.ca_pem));
        server = match server.tls_config(tls) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "peer TLS configuration rejected");
                return;
            }
        };
    }
    let service = peer_server::PeerServer::new(PeerService { inner })
        .max_decoding_message_size(MAX_PEER_MESSAGE)
        .max_encoding_message_size(MAX_PEER_MESSAGE);
    let res = server
        .add_service(service)
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown.cancelled_owned(),
        )
        .await;
    if let Err(e) = res {
        tracing::error!(error = %e, "peer service stopped");
    }
}

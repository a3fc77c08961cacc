//! The client side of server-to-server traffic: openraft's RPCs and calls to the leader, over
//! gRPC with mutual TLS signed by the cluster CA. One lazily connected channel per peer address.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::config::PeerTls;
use crate::error::{Error, Result};
use crate::forward::{LeaderCall, LeaderReply};
use crate::pb::cairnpeer::{Blob, peer_client::PeerClient};
use crate::raft_types::{Member, NodeId, TypeConfig};
use crate::tables;

/// The largest peer message (a snapshot chunk or a batch of entries).
pub(crate) const MAX_PEER_MESSAGE: usize = 64 * 1024 * 1024;

/// Channels to the other members, shared by Raft replication and leader calls.
#[derive(Clone)]
pub(crate) struct Peers {
    tls: Option<Arc<PeerTls>>,
    channels: Arc<Mutex<HashMap<String, PeerClient<Channel>>>>,
}

impl Peers {
    pub(crate) fn new(tls: Option<PeerTls>) -> Self {
        Peers {
            tls: tls.map(Arc::new),
            channels: Arc::default(),
        }
    }

    /// A client for the peer at `url`, connecting on first use.
    pub(crate) fn client(&self, url: &str) -> Result<PeerClient<Channel>> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = channels.get(url) {
            return Ok(c.clone());
        }
        let bad = |e: tonic::transport::Error| Error::Peer(format!("{url}: {e}"));
        let mut endpoint = Endpoint::from_shared(url.to_string())
            .map_err(bad)?
            .connect_timeout(Duration::from_secs(1))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10));
        if let Some(tls) = &self.tls {
            endpoint = endpoint
                .tls_config(
                    ClientTlsConfig::new()
                        .ca_certificate(Certificate::from_pem(&tls.ca_pem))
                        .identity(Identity::from_pem(&tls.cert_pem, &tls.key_pem)),
                )
                .map_err(bad)?;
        }
        let client = PeerClient::new(endpoint.connect_lazy())
            .max_decoding_message_size(MAX_PEER_MESSAGE)
            .max_encoding_message_size(MAX_PEER_MESSAGE);
        channels.insert(url.to_string(), client.clone());
        Ok(client)
    }

    /// Asks the leader at `url` to serve `call`.
    pub(crate) async fn call_leader(
        &self,
        url: &str,
        call: &LeaderCall,
        timeout: Duration,
    ) -> Result<LeaderReply> {
        let mut client = self.client(url)?;
        let blob = Blob {
            data: tables::encode(call)?,
        };
        let reply = tokio::time::timeout(timeout, client.forward(blob))
            .await
            .map_err(|_| Error::Timeout)?
            .map_err(|s| Error::Peer(format!("{url}: {}", s.message())))?;
        tables::decode::<Result<LeaderReply>>(&reply.into_inner().data)?
    }
}

impl RaftNetworkFactory<TypeConfig> for Peers {
    type Network = RaftPeer;

    async fn new_client(&mut self, target: NodeId, node: &Member) -> RaftPeer {
        RaftPeer {
            target,
            client: self.client(&node.peer_url),
        }
    }
}

/// The Raft connection to one member.
pub(crate) struct RaftPeer {
    target: NodeId,
    client: Result<PeerClient<Channel>>,
}

type RpcResult<T, E = openraft::error::Infallible> =
    std::result::Result<T, RPCError<NodeId, Member, RaftError<NodeId, E>>>;

impl RaftPeer {
    async fn call<Req, Resp, E>(
        &mut self,
        req: &Req,
        option: &RPCOption,
        send: impl AsyncFnOnce(
            PeerClient<Channel>,
            Blob,
        ) -> std::result::Result<tonic::Response<Blob>, tonic::Status>,
    ) -> RpcResult<Resp, E>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let client = match &self.client {
            Ok(c) => c.clone(),
            Err(e) => return Err(RPCError::Unreachable(Unreachable::new(e))),
        };
        let data = tables::encode(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let reply = match tokio::time::timeout(option.hard_ttl(), send(client, Blob { data })).await
        {
            Ok(Ok(r)) => r.into_inner(),
            Ok(Err(status)) => {
                return Err(RPCError::Unreachable(Unreachable::new(&Error::Peer(
                    status.message().to_string(),
                ))));
            }
            Err(_) => return Err(RPCError::Unreachable(Unreachable::new(&Error::Timeout))),
        };
        let res: std::result::Result<Resp, RaftError<NodeId, E>> =
            tables::decode(&reply.data).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        res.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for RaftPeer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, openraft::error::Infallible> {
        self.call(&rpc, &option, async |mut c, b| c.append_entries(b).await)
            .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        self.call(&rpc, &option, async |mut c, b| c.install_snapshot(b).await)
            .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>, openraft::error::Infallible> {
        self.call(&rpc, &option, async |mut c, b| c.vote(b).await)
            .await
    }
}

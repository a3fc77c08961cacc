//! The etcd API server: its configuration and the gRPC server that carries the services.
//!
//! Plaintext HTTP/2 unless a TLS configuration is given: the etcd port is bound to loopback by
//! default, where kube-apiserver and etcdctl on the same machine reach it.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use cairn_kv::Store;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Server, ServerTlsConfig};
use tonic_health::ServingStatus;

use crate::authority::AuthorityRewriter;
use crate::cluster::ClusterService;
use crate::kv::KvService;
use crate::lease::LeaseService;
use crate::maintenance::MaintenanceService;
use crate::rpc::etcdserverpb::cluster_server::ClusterServer;
use crate::rpc::etcdserverpb::kv_server::KvServer;
use crate::rpc::etcdserverpb::lease_server::LeaseServer;
use crate::rpc::etcdserverpb::maintenance_server::MaintenanceServer;
use crate::rpc::etcdserverpb::watch_server::WatchServer;
use crate::watch::WatchService;

/// What etcd allows on top of the request limit for gRPC framing (`grpcOverheadBytes`).
const GRPC_OVERHEAD: usize = 512 * 1024;

/// How the etcd API is served.
#[derive(Debug, Clone)]
pub struct EtcdServerConfig {
    /// Where to listen (etcd: `--listen-client-urls`); the caller binds it.
    pub listen: SocketAddr,
    /// The largest request accepted (etcd: `--max-request-bytes`, 1.5 MiB). gRPC messages may be
    /// 512 KiB larger, as in etcd; the store refuses writes above the limit itself.
    pub max_request_bytes: usize,
    /// How often a watch created with `progress_notify` hears the current revision while it is
    /// quiet (etcd: 10 minutes, settable only in its tests).
    pub progress_notify_interval: Duration,
    /// How long a connection may be idle before the server pings it (etcd:
    /// `--grpc-keepalive-interval`, 2 hours).
    pub keepalive_interval: Duration,
    /// How long the server waits for the ping's answer before closing the connection (etcd:
    /// `--grpc-keepalive-timeout`, 20 seconds).
    pub keepalive_timeout: Duration,
}

impl Default for EtcdServerConfig {
    fn default() -> Self {
        EtcdServerConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 2379)),
            max_request_bytes: 3 * 512 * 1024,
            progress_notify_interval: Duration::from_secs(600),
            keepalive_interval: Duration::from_secs(2 * 60 * 60),
            keepalive_timeout: Duration::from_secs(20),
        }
    }
}

impl EtcdServerConfig {
    /// Checks that the settings make sense.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_request_bytes == 0 {
            return Err("the request limit must be positive".into());
        }
        if self.progress_notify_interval.is_zero() {
            return Err("the progress notify interval must be positive".into());
        }
        if self.keepalive_interval.is_zero() || self.keepalive_timeout.is_zero() {
            return Err("the keepalive interval and timeout must be positive".into());
        }
        Ok(())
    }
}

/// Serves the etcd API for `store` on `listener` until `shutdown` completes. With `tls`, every
/// connection is TLS (mutual if the configuration asks for client certificates). Plaintext
/// requests whose `:authority` is a URL (etcdctl 3.4) are accepted; under TLS they are not,
/// as the rewriting sits below tonic's TLS.
///
/// Errors (a bad configuration, a failing listener) are logged; the caller's task just ends.
pub async fn serve(
    store: Store,
    listener: tokio::net::TcpListener,
    config: EtcdServerConfig,
    tls: Option<ServerTlsConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    if let Err(reason) = config.validate() {
        tracing::error!(%reason, "invalid etcd API configuration");
        return;
    }
    let limit = config.max_request_bytes + GRPC_OVERHEAD;

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_service_status("", ServingStatus::Serving).await;
    health.set_serving::<KvServer<KvService>>().await;

    // Watch and keep-alive streams never end on their own; they are ended when shutdown begins,
    // so that the server's graceful shutdown does not wait for clients to hang up.
    let stopping = CancellationToken::new();
    let shutdown = {
        let stopping = stopping.clone();
        async move {
            shutdown.await;
            stopping.cancel();
        }
    };

    let mut builder = Server::builder()
        .http2_keepalive_interval(Some(config.keepalive_interval))
        .http2_keepalive_timeout(Some(config.keepalive_timeout));
    if let Some(tls) = tls {
        builder = match builder.tls_config(tls) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "the etcd API's TLS configuration is invalid");
                return;
            }
        };
    }
    let router = builder
        .add_service(health_service)
        .add_service(KvServer::new(KvService::new(store.clone())).max_decoding_message_size(limit))
        .add_service(
            WatchServer::new(WatchService::new(
                store.clone(),
                config.progress_notify_interval,
                stopping.clone(),
            ))
            .max_decoding_message_size(limit),
        )
        .add_service(
            LeaseServer::new(LeaseService::new(store.clone(), stopping))
                .max_decoding_message_size(limit),
        )
        .add_service(
            ClusterServer::new(ClusterService::new(store.clone())).max_decoding_message_size(limit),
        )
        .add_service(
            MaintenanceServer::new(MaintenanceService::new(store)).max_decoding_message_size(limit),
        );

    let local = listener.local_addr().ok();
    tracing::debug!(address = ?local, "serving the etcd API");
    // Small responses (a put's answer behind a watch event) must not wait for Nagle's algorithm.
    // etcdctl 3.4 sends URLs as `:authority`, which the HTTP/2 server refuses: see `authority`.
    let incoming = TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .map(|accepted| accepted.map(AuthorityRewriter::new));
    if let Err(e) = router
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
    {
        tracing::error!(address = ?local, error = %e, "the etcd API server failed");
    }
}

//! The gRPC connections a row's clients share.
//!
//! Like etcd's `tools/benchmark`, many clients (tasks with one request in flight each) share a
//! few HTTP/2 connections: one per ten clients, at least one and at most [`MAX_CONNECTIONS`].
//! Connection `i` goes to endpoint `i mod nodes`, so a multi-node target gets its load spread over
//! all members (writes to followers are forwarded by the server).

use std::time::Duration;

use anyhow::{Context, Result};
use etcd_client::{Client, ConnectOptions, KvClient};

/// Upper bound on connections per row.
const MAX_CONNECTIONS: usize = 100;
/// Per-request deadline; a request that takes longer counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections for one row.
pub struct Pool {
    clients: Vec<Client>,
}

impl Pool {
    /// Number of connections `clients` concurrent clients share.
    pub fn connections_for(clients: usize) -> usize {
        (clients / 10).clamp(1, MAX_CONNECTIONS)
    }

    /// Opens [`Pool::connections_for`]`(clients)` connections over `endpoints`.
    pub async fn connect(endpoints: &[String], clients: usize) -> Result<Self> {
        let n = Self::connections_for(clients);
        let mut conns = Vec::with_capacity(n);
        for i in 0..n {
            conns.push(connect(&endpoints[i % endpoints.len()]).await?);
        }
        Ok(Self { clients: conns })
    }

    /// The KV client for client number `i`: a handle on connection `i mod connections`.
    pub fn kv(&self, i: usize) -> KvClient {
        self.clients[i % self.clients.len()].kv_client()
    }
}

/// One connection to `endpoint` (`IP:PORT`, plaintext).
pub async fn connect(endpoint: &str) -> Result<Client> {
    let options = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(REQUEST_TIMEOUT);
    Client::connect([format!("http://{endpoint}")], Some(options))
        .await
        .with_context(|| format!("connecting to {endpoint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_clients_per_connection_within_bounds() {
        assert_eq!(Pool::connections_for(1), 1);
        assert_eq!(Pool::connections_for(64), 6);
        assert_eq!(Pool::connections_for(1000), 100);
        assert_eq!(Pool::connections_for(5000), 100);
    }
}

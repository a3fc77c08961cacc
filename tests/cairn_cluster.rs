//! A cairn cluster of N servers on 127.0.0.1..N, all on the same ports.
//!
//! The first server starts alone; the others join it with `--server https://127.0.0.1:<port>` and
//! the token `cairn token` prints. Only one cluster runs at a time per test binary (a process-wide
//! lock held by [`Cluster`]): members share addresses, and failover timings are only meaningful
//! when two clusters do not compete for the machine's CPUs.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::sync::{Mutex, MutexGuard};

use crate::cairn_server::{Ports, Server, ServerOpts};
use crate::client::connect_with_timeout;
use crate::ports::loopback;

static CLUSTER_LOCK: Mutex<()> = Mutex::const_new(());

/// Takes the per-binary lock that serializes tests running cairn clusters. [`Cluster::start`]
/// takes it itself; tests that start servers by hand take it with this.
pub async fn exclusive() -> MutexGuard<'static, ()> {
    CLUSTER_LOCK.lock().await
}

/// N cairn servers forming one cluster.
#[derive(Debug)]
pub struct Cluster {
    /// The members, `nodes[i]` on 127.0.0.(i+1).
    pub nodes: Vec<Server>,
    token: String,
    _exclusive: MutexGuard<'static, ()>,
}

impl Cluster {
    /// Options for `size` members on the same fresh ports.
    pub fn member_opts(size: usize) -> Result<Vec<ServerOpts>> {
        let ips: Vec<_> = (0..size).map(loopback).collect();
        let ports = Ports::allocate(&ips)?;
        Ok((0..size).map(|i| ServerOpts::member(i, ports)).collect())
    }

    /// Starts the first server, then joins the others one by one.
    pub async fn start(size: usize) -> Result<Self> {
        Self::start_with_args(size, &[]).await
    }

    /// Like [`Cluster::start`], with extra `cairn server` arguments for every member.
    pub async fn start_with_args(size: usize, extra_args: &[&str]) -> Result<Self> {
        Self::start_with(size, |o| {
            o.extra_args = extra_args.iter().map(|a| a.to_string()).collect();
        })
        .await
    }

    /// Like [`Cluster::start`], with every member's options changed by `change` first.
    pub async fn start_with(size: usize, change: impl Fn(&mut ServerOpts)) -> Result<Self> {
        let exclusive = exclusive().await;
        let mut opts = Self::member_opts(size)?;
        for o in &mut opts {
            change(o);
        }
        let first = Server::start(opts[0].clone())
            .await
            .context("starting the first server")?;
        let token = first.token()?;
        let mut nodes = vec![first];
        for member in opts.into_iter().skip(1) {
            let name = member.name.clone();
            let member = member.joining(nodes[0].opts(), &token);
            nodes.push(
                Server::start(member)
                    .await
                    .with_context(|| format!("joining {name}"))?,
            );
        }
        Ok(Self {
            nodes,
            token,
            _exclusive: exclusive,
        })
    }

    /// The cluster token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Every member's etcd endpoint, in member order.
    pub fn endpoints(&self) -> Vec<String> {
        self.nodes.iter().map(Server::endpoint).collect()
    }

    /// Asks every running member for its status and returns the index of the one that says it is
    /// the leader (`leader == header.member_id`), polling for up to `timeout`.
    pub async fn leader(&mut self, timeout: Duration) -> Result<usize> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            for index in 0..self.nodes.len() {
                if !self.nodes[index].is_running()? {
                    continue;
                }
                if let Ok((member_id, leader)) = status(&self.nodes[index].endpoint()).await
                    && member_id == leader
                {
                    return Ok(index);
                }
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("no member reports itself leader within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// `(header.member_id, leader)` from Maintenance.Status on `endpoint`.
pub async fn status(endpoint: &str) -> Result<(u64, u64)> {
    let mut client = connect_with_timeout(endpoint, Duration::from_secs(1)).await?;
    let status = tokio::time::timeout(Duration::from_secs(2), client.status())
        .await
        .context("status timed out")??;
    let member_id = status
        .header()
        .context("status without header")?
        .member_id();
    Ok((member_id, status.leader()))
}

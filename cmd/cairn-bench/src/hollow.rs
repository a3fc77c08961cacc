//! `cairn-bench hollow-nodes`: many simulated nodes in one process, for tests and scale
//! benchmarks (kwok and kubemark are the models).
//!
//! The nodes register, keep their Leases fresh (`hollow_node`) and move the pods bound to them
//! along a pod's life without running anything (`hollow_pod`). Everything goes through the
//! API server with `cairn-client`, as a kubelet would. Killing the process stops the
//! heartbeats; SIGINT or SIGTERM prints a summary first.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use cairn_client::{Client, Config};
use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Semaphore;

use crate::hollow_node::{self, NodeShape, parse_label, parse_taint};
use crate::hollow_pod::{self, Outcome};

/// The field manager of every write, as `kubelet` is the kubelet's.
pub const FIELD_MANAGER: &str = "cairn-hollow-node";

/// Arguments of `cairn-bench hollow-nodes`.
#[derive(Debug, Parser)]
pub struct Args {
    /// Kubeconfig of the cluster the nodes join.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// How many nodes.
    #[arg(long)]
    count: usize,
    /// Nodes are named this prefix and their index.
    #[arg(long, default_value = "hollow-")]
    name_prefix: String,
    /// CPU capacity of each node.
    #[arg(long, default_value = "4")]
    cpu: String,
    /// Memory capacity of each node.
    #[arg(long, default_value = "8Gi")]
    memory: String,
    /// Pod capacity of each node.
    #[arg(long, default_value_t = 110)]
    pods: u32,
    /// A label of every node, `key=value` (repeatable).
    #[arg(long = "label", value_parser = parse_label)]
    labels: Vec<(String, String)>,
    /// A taint of every node, `key=value:Effect` or `key:Effect` (repeatable).
    #[arg(long = "taint", value_parser = parse_taint)]
    taints: Vec<k8s_openapi::api::core::v1::Taint>,
    /// Writes to the API server in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
}

/// What the nodes did, for the progress lines and the summary.
#[derive(Debug, Default)]
pub struct Stats {
    /// Pods made Running.
    pub pods_running: AtomicU64,
    /// Pods made Succeeded.
    pub pods_succeeded: AtomicU64,
    /// Pods made Failed.
    pub pods_failed: AtomicU64,
    /// Pods removed after their deletion was asked for.
    pub pods_removed: AtomicU64,
    /// Leases renewed.
    pub lease_renewals: AtomicU64,
    /// Writes that failed.
    pub errors: AtomicU64,
}

impl Stats {
    /// Counts a pod whose status was written, and says so every 1,000 pods.
    pub fn pod_handled(&self, outcome: Outcome) {
        let counter = match outcome {
            Outcome::Running => &self.pods_running,
            Outcome::Succeeded => &self.pods_succeeded,
            Outcome::Failed => &self.pods_failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let handled = self.pods_handled();
        if handled.is_multiple_of(1000) {
            println!("hollow-nodes: {handled} pods handled");
        }
    }

    fn pods_handled(&self) -> u64 {
        self.pods_running.load(Ordering::Relaxed)
            + self.pods_succeeded.load(Ordering::Relaxed)
            + self.pods_failed.load(Ordering::Relaxed)
    }
}

/// Hollow nodes run inside the calling process (the `scheduler` bench runs them beside its
/// load).
pub struct InProcess {
    /// The client every node writes through.
    pub client: Client,
    /// What the nodes look like.
    pub shape: Arc<NodeShape>,
    /// How many.
    pub count: usize,
    /// Writes in flight at once.
    pub concurrency: usize,
    /// Whether bound pods are moved along (Running, Succeeded, Failed); without it they stay
    /// as the scheduler left them.
    pub pod_status: bool,
    /// What they did.
    pub stats: Arc<Stats>,
}

impl InProcess {
    /// Registers every node (Node, status, Lease).
    pub async fn register(&self) -> Result<()> {
        hollow_node::register_all(&self.client, &self.shape, self.count, self.concurrency).await
    }

    /// Renews the Leases and handles pods; never returns.
    pub async fn run(self) {
        let writes = Arc::new(Semaphore::new(self.concurrency));
        let heartbeats = hollow_node::heartbeats(
            self.client.clone(),
            self.shape.clone(),
            self.count,
            writes.clone(),
            self.stats.clone(),
        );
        if self.pod_status {
            tokio::join!(
                heartbeats,
                hollow_pod::run(
                    self.client.clone(),
                    &self.shape,
                    self.count,
                    writes,
                    self.stats.clone()
                ),
            );
        } else {
            heartbeats.await;
        }
    }
}

/// Registers the nodes, then keeps them alive until SIGINT or SIGTERM.
pub async fn run(args: Args) -> Result<()> {
    let started = Instant::now();
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let config = Config::from_kubeconfig(&args.kubeconfig)
        .with_context(|| format!("reading {}", args.kubeconfig.display()))?
        .with_field_manager(FIELD_MANAGER);
    let client = Client::new(config)?;
    let shape = Arc::new(NodeShape {
        name_prefix: args.name_prefix,
        cpu: args.cpu,
        memory: args.memory,
        pods: args.pods,
        labels: args.labels.into_iter().collect::<BTreeMap<_, _>>(),
        taints: args.taints,
    });
    let count = args.count;
    let stats = Arc::new(Stats::default());
    let nodes = InProcess {
        client,
        shape,
        count,
        concurrency: args.concurrency.max(1),
        pod_status: true,
        stats: stats.clone(),
    };

    let work = async {
        nodes.register().await?;
        println!(
            "hollow-nodes: {count} nodes registered in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        nodes.run().await;
        anyhow::Ok(())
    };
    tokio::select! {
        result = work => result?,
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    println!(
        "hollow-nodes: {count} nodes for {:.0} s: {} pods handled ({} running, {} succeeded, \
         {} failed), {} removed, {} lease renewals, {} errors",
        started.elapsed().as_secs_f64(),
        stats.pods_handled(),
        stats.pods_running.load(Ordering::Relaxed),
        stats.pods_succeeded.load(Ordering::Relaxed),
        stats.pods_failed.load(Ordering::Relaxed),
        stats.pods_removed.load(Ordering::Relaxed),
        stats.lease_renewals.load(Ordering::Relaxed),
        stats.errors.load(Ordering::Relaxed),
    );
    Ok(())
}

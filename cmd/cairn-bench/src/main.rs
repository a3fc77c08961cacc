//! `cairn-bench`: load generators and benchmarks for cairn (not shipped).
//!
//! `cairn-bench kv` compares cairn's etcd-protocol store with etcd: it launches each on loopback,
//! runs the same put, range, compare-and-swap and watch rows against both, and prints a Markdown
//! table with throughput, latency, memory and fsync figures. `cairn-bench api` measures cairn's
//! Kubernetes API server alone (create, update, get, list, watch; the latency, list and
//! watcher-memory targets). `cairn-bench scheduler` measures the scheduler placing pods on
//! hollow nodes. `cairn-bench hollow-nodes` runs many simulated nodes in one process
//! (`hollow`). `cairn-bench runtime` compares the container runtime with runc and crun. This
//! file only parses the command line and dispatches.

mod api;
mod api_client;
mod api_report;
mod api_workloads;
mod connections;
mod driver;
mod fsync;
mod hollow;
mod hollow_node;
mod hollow_pod;
mod kv;
mod procfs;
mod report;
mod runtime;
mod scheduler;
mod stats;
mod targets;
mod workloads;

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};
use tokio::signal::unix::{SignalKind, signal};

/// Load generators and benchmarks for cairn.
#[derive(Debug, Parser)]
#[command(name = "cairn-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Compare cairn's etcd-protocol store with etcd (put, range, txn, watch).
    Kv(kv::Args),
    /// Measure cairn's Kubernetes API server (ConfigMaps and Pods: create, update, get, list,
    /// watch) against absolute targets.
    Api(api::Args),
    /// Simulated nodes: register N Nodes, keep their Leases fresh and move the pods bound to
    /// them to Running (or Succeeded/Failed) without running anything.
    HollowNodes(hollow::Args),
    /// The container runtime against runc and crun: create+start+wait+delete of a busybox
    /// `true` container, and image import against skopeo.
    Runtime(runtime::Args),
    /// Measure the scheduler of a real server: P pending pods placed on N hollow nodes
    /// (pods per second, p99 latency from creation to binding, the server's RSS).
    Scheduler(scheduler::Args),
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    // Hollow nodes run until a signal and then print a summary, so they handle signals
    // themselves.
    let command = match cli.command {
        Command::HollowNodes(args) => return hollow::run(args).await,
        command => command,
    };
    let mut terminate = signal(SignalKind::terminate())?;
    // Returning drops the running benchmark, whose servers are killed on drop.
    tokio::select! {
        result = async {
            match command {
                Command::HollowNodes(_) => unreachable!("dispatched above"),
                Command::Kv(args) => kv::run(args).await,
                Command::Api(args) => api::run(args).await,
                Command::Runtime(args) => runtime::run(args).await,
                Command::Scheduler(args) => scheduler::run(args).await,
            }
        } => result,
        _ = tokio::signal::ctrl_c() => bail!("interrupted"),
        _ = terminate.recv() => bail!("terminated"),
    }
}

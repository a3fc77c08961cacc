//! `cairn-bench`: load generators and benchmarks for cairn (not shipped).
//!
//! `cairn-bench kv` compares cairn's etcd-protocol store with etcd: it launches each on loopback,
//! runs the same put, range, compare-and-swap and watch rows against both, and prints a Markdown
//! table with throughput, latency, memory and fsync figures. `cairn-bench api` measures cairn's
//! Kubernetes API server alone (create, update, get, list, watch; the latency, list and
//! watcher-memory targets). This file only parses the command line and dispatches.

mod api;
mod api_client;
mod api_report;
mod api_workloads;
mod connections;
mod driver;
mod fsync;
mod kv;
mod procfs;
mod report;
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
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let mut terminate = signal(SignalKind::terminate())?;
    // Returning drops the running benchmark, whose servers are killed on drop.
    tokio::select! {
        result = async {
            match cli.command {
                Command::Kv(args) => kv::run(args).await,
                Command::Api(args) => api::run(args).await,
            }
        } => result,
        _ = tokio::signal::ctrl_c() => bail!("interrupted"),
        _ = terminate.recv() => bail!("terminated"),
    }
}

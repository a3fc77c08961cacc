//! `cairn-bench`: load generators and benchmarks for cairn (not shipped).
//!
//! `cairn-bench kv` compares cairn's etcd-protocol store with etcd: it launches each on loopback,
//! runs the same put, range, compare-and-swap and watch rows against both, and prints a Markdown
//! table with throughput, latency, memory and fsync figures. This file only parses the command
//! line and dispatches.

mod connections;
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
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let mut terminate = signal(SignalKind::terminate())?;
    // Returning drops the running benchmark, whose servers are killed on drop.
    tokio::select! {
        result = match cli.command { Command::Kv(args) => kv::run(args) } => result,
        _ = tokio::signal::ctrl_c() => bail!("interrupted"),
        _ = terminate.recv() => bail!("terminated"),
    }
}

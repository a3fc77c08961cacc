//! The `kv` subcommand: runs every selected row against each target in turn and prints the
//! comparison.
//!
//! Targets run one after the other, never side by side, so they do not compete for the CPUs. For
//! each target: start it, preload the keyspace, measure RSS and fsyncs at idle, run the rows
//! (sampling RSS throughout and counting fsyncs during [`FSYNC_LOAD_ROW`]), then stop it and
//! delete its data.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::connections::connect;
use crate::driver::Measured;
use crate::fsync::{self, Counter};
use crate::procfs::{self, Rss, RssSampler};
use crate::report::{self, FsyncLoad, RowFigures, RowReport, TargetReport};
use crate::targets::{Kind, LaunchConfig, Target};
use crate::workloads::{self, FSYNC_LOAD_ROW, ROWS, Row};

/// Length of the idle fsync window.
const IDLE_WINDOW: Duration = Duration::from_secs(5);
/// Pause after the preload so its writes are flushed before the idle window starts.
const SETTLE: Duration = Duration::from_secs(1);

/// Arguments of `cairn-bench kv`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The cairn binary [default: `cairn` next to this binary].
    #[arg(long, value_name = "PATH")]
    cairn_bin: Option<PathBuf>,
    /// The etcd binary to compare with.
    #[arg(long, value_name = "PATH", default_value = "/usr/bin/etcd")]
    etcd_bin: PathBuf,
    /// Nodes per cluster (1 or 3), on 127.0.0.1, 127.0.0.2 and 127.0.0.3.
    #[arg(long, default_value_t = 1, value_parser = parse_nodes)]
    nodes: usize,
    /// Run a tenth of the operations of each row.
    #[arg(long)]
    quick: bool,
    /// Rows to run, comma-separated [default: all].
    #[arg(long, value_name = "ROW,...", value_delimiter = ',', value_parser = parse_row)]
    rows: Vec<Row>,
    /// Run one target only.
    #[arg(long, value_name = "TARGET")]
    only: Option<Kind>,
}

fn parse_nodes(s: &str) -> Result<usize, String> {
    match s {
        "1" => Ok(1),
        "3" => Ok(3),
        _ => Err("must be 1 or 3".into()),
    }
}

fn parse_row(s: &str) -> Result<Row, String> {
    ROWS.iter().find(|r| r.name == s).copied().ok_or_else(|| {
        let names: Vec<_> = ROWS.iter().map(|r| r.name).collect();
        format!("unknown row; rows are {}", names.join(", "))
    })
}

/// Runs the benchmark described by `args` and prints the report to stdout (progress goes to
/// stderr).
pub async fn run(args: Args) -> Result<()> {
    let rows: Vec<Row> = if args.rows.is_empty() {
        ROWS.to_vec()
    } else {
        // Keep the canonical order whatever order they were named in.
        ROWS.iter()
            .filter(|r| args.rows.iter().any(|a| a.name == r.name))
            .copied()
            .collect()
    };
    let cairn_bin = crate::targets::cairn_bin(args.cairn_bin)?;
    let config = LaunchConfig {
        etcd_bin: args.etcd_bin,
        cairn_bin,
        nodes: args.nodes,
        port_offset: 0,
        // The store against the store: etcd runs no control plane either.
        store_only: true,
    };
    let kinds = match args.only {
        Some(kind) => vec![kind],
        None => vec![Kind::Etcd, Kind::Cairn],
    };
    for &kind in &kinds {
        if !config.bin(kind).is_file() {
            bail!(
                "{kind} binary {} not found (pass --{kind}-bin, or --only to skip it)",
                config.bin(kind).display()
            );
        }
    }
    let load_before = procfs::load_average();
    let counter = Counter::probe().await;
    eprintln!("fsync counter: {counter}");

    let mut reports = Vec::new();
    for kind in kinds {
        eprintln!("starting {kind} ({} node(s))", config.nodes);
        let target = kind.start(&config).await?;
        let result = bench_target(target, &rows, args.quick, &counter).await?;
        reports.push(result);
    }
    report::print(&report::Run {
        nodes: config.nodes,
        quick: args.quick,
        counter: &counter,
        rows: &rows,
        targets: &reports,
        load: (load_before, procfs::load_average()),
    });
    Ok(())
}

/// Runs `rows` against a started target and stops it, whatever happened.
async fn bench_target(
    mut target: Target,
    rows: &[Row],
    quick: bool,
    counter: &Counter,
) -> Result<TargetReport> {
    let result = bench_started(&mut target, rows, quick, counter).await;
    let stopped = target.stop().await;
    let report = result?;
    stopped?;
    Ok(report)
}

async fn bench_started(
    target: &mut Target,
    rows: &[Row],
    quick: bool,
    counter: &Counter,
) -> Result<TargetReport> {
    let kind = target.kind();
    let endpoints = target.endpoints();
    let pids = target.pids();
    let version = server_version(&endpoints[0]).await;

    eprintln!("{kind}: preloading {} keys", workloads::KEYSPACE);
    workloads::preload(&endpoints).await?;
    tokio::time::sleep(SETTLE).await;
    let rss_idle = procfs::total_rss(&pids)?;
    eprintln!("{kind}: counting fsyncs at idle for {IDLE_WINDOW:?}");
    let fsync_idle = counter
        .count_for(&pids, IDLE_WINDOW)
        .await
        .map_err(|e| format!("{e:#}"));

    let mut row_reports = Vec::new();
    let mut fsync_load = None;
    for row in rows {
        target.check_alive()?;
        let ops = row.ops(quick);
        let count_fsyncs = row.name == FSYNC_LOAD_ROW;
        let window = if count_fsyncs && counter.under_load() {
            Some(counter.start(&pids).await)
        } else {
            None
        };
        let sampler = RssSampler::start(pids.clone());
        let cpu_before = procfs::total_cpu_time(&pids)?;
        let written_before = procfs::total_write_bytes(&pids)?;
        let measured = workloads::run(row.workload, &endpoints, ops).await;
        let cpu = procfs::total_cpu_time(&pids)?.saturating_sub(cpu_before);
        let written = procfs::total_write_bytes(&pids)?.saturating_sub(written_before);
        let rss = sampler.finish().await.unwrap_or_default();
        if count_fsyncs {
            fsync_load = Some(match window {
                Some(window) => finish_window(window, &measured).await,
                None => Err(match counter {
                    Counter::Strace { .. } => {
                        "unavailable: strace would perturb the load, idle figure only".into()
                    }
                    _ => "unavailable".into(),
                }),
            });
        }
        let outcome = measured
            .map(|m| RowFigures::new(&m, rss, cpu, written))
            .map_err(|e| format!("{e:#}"));
        match &outcome {
            Ok(f) => eprintln!("{kind} {}: {f}", row.name),
            Err(e) => eprintln!("{kind} {}: failed: {e}", row.name),
        }
        row_reports.push(RowReport {
            name: row.name,
            outcome,
        });
    }
    target.check_alive()?;
    Ok(TargetReport {
        kind,
        version,
        rss_idle: Rss {
            end: rss_idle,
            max: rss_idle,
        },
        fsync_idle,
        fsync_load,
        rows: row_reports,
    })
}

async fn finish_window(
    window: Result<fsync::Window>,
    measured: &Result<Measured>,
) -> Result<FsyncLoad, String> {
    let count = window
        .map_err(|e| format!("{e:#}"))?
        .finish()
        .await
        .map_err(|e| format!("{e:#}"))?;
    let puts = measured.as_ref().map_or(0, |m| m.ok);
    Ok(FsyncLoad { count, puts })
}

/// The version a member reports through the Maintenance Status call, if it implements it.
async fn server_version(endpoint: &str) -> Option<String> {
    let mut client = connect(endpoint).await.ok()?;
    let status = client.status().await.ok()?;
    Some(status.version().to_owned())
}

//! The `api` subcommand: measures cairn's Kubernetes API server (create, update, get, list and
//! watch of ConfigMaps and Pods at several concurrencies, plus the targets) and prints the
//! report.
//!
//! Each level in `--objects` gets a fresh single-node server: start it, wait for its admin
//! kubeconfig and `/version`, preload N ConfigMaps and N Pods, then run the rows one after the
//! other, sampling the server's RSS and CPU around each, and stop it. No anchor server runs: the
//! figures are absolute.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::api_client::ApiClient;
use crate::api_report::{self, LevelReport, RowReport};
use crate::api_workloads::{self, Level, Row};
use crate::procfs::{self, RssSampler};
use crate::report::RowFigures;
use crate::targets::{Kind, LaunchConfig, Target};

/// Added to the ports `kv` uses (API on 16543), so the two benchmarks can run side by side and
/// a test server on 16443 does not stop this one.
const PORT_OFFSET: u16 = 100;
/// How long the API may take to answer after the store is ready.
const API_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause after the preload so its writes are flushed before the idle RSS is taken.
const SETTLE: Duration = Duration::from_secs(1);

/// Arguments of `cairn-bench api`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The cairn binary [default: `cairn` next to this binary].
    #[arg(long, value_name = "PATH")]
    cairn_bin: Option<PathBuf>,
    /// Run a tenth of the operations of each row (the idle watchers are never cut).
    #[arg(long)]
    quick: bool,
    /// Rows to run, comma-separated [default: all].
    #[arg(long, value_name = "ROW,...", value_delimiter = ',', value_parser = parse_row)]
    rows: Vec<Row>,
    /// Levels to run: a fresh server with this many ConfigMaps and this many Pods each.
    #[arg(
        long,
        value_name = "N,...",
        value_delimiter = ',',
        default_value = "10000,100000"
    )]
    objects: Vec<u64>,
}

fn parse_row(s: &str) -> Result<Row, String> {
    let rows = Row::all();
    rows.iter().find(|r| r.name() == s).copied().ok_or_else(|| {
        let names: Vec<_> = rows.iter().map(Row::name).collect();
        format!("unknown row; rows are {}", names.join(", "))
    })
}

/// Runs the benchmark described by `args` and prints the report to stdout (progress goes to
/// stderr).
pub async fn run(args: Args) -> Result<()> {
    let rows: Vec<Row> = Row::all()
        .into_iter()
        .filter(|r| args.rows.is_empty() || args.rows.contains(r))
        .collect();
    if args.objects.contains(&0) {
        bail!("--objects must be positive");
    }
    let cairn_bin = crate::targets::cairn_bin(args.cairn_bin)?;
    let config = LaunchConfig::one_cairn(cairn_bin, PORT_OFFSET);
    let load_before = procfs::load_average();
    let mut levels = Vec::new();
    let mut version = None;
    for &objects in &args.objects {
        eprintln!("starting cairn for {objects} ConfigMaps and {objects} Pods");
        let mut target = Kind::Cairn.start(&config).await?;
        let result = bench_level(&mut target, &rows, objects, args.quick).await;
        let stopped = target.stop().await;
        let (level, v) = result?;
        stopped?;
        version = version.or(v);
        levels.push(level);
    }
    api_report::print(&api_report::Run {
        quick: args.quick,
        version,
        rows: &rows,
        levels: &levels,
        load: (load_before, procfs::load_average()),
    });
    Ok(())
}

/// Preloads a started server and runs `rows` against it.
async fn bench_level(
    target: &mut Target,
    rows: &[Row],
    objects: u64,
    quick: bool,
) -> Result<(LevelReport, Option<String>)> {
    let pids = target.pids();
    let (client, version) = wait_for_api(target).await?;
    eprintln!("cairn {}: preloading", version.as_deref().unwrap_or("?"));
    let (level, preload) = Level::preload(client, pids.clone(), objects).await?;
    eprintln!(
        "preloaded {objects} ConfigMaps and {objects} Pods in {:.1} s",
        preload.as_secs_f64()
    );
    tokio::time::sleep(SETTLE).await;
    let rss_idle = procfs::total_rss(&pids)?;

    let mut reports = Vec::new();
    for row in rows {
        target.check_alive()?;
        let ops = row.ops(quick);
        let sampler = RssSampler::start(pids.clone());
        let cpu_before = procfs::total_cpu_time(&pids)?;
        let written_before = procfs::total_write_bytes(&pids)?;
        let outcome = api_workloads::run(row, &level, ops).await;
        let cpu = procfs::total_cpu_time(&pids)?.saturating_sub(cpu_before);
        let written = procfs::total_write_bytes(&pids)?.saturating_sub(written_before);
        let rss = sampler.finish().await.unwrap_or_default();
        let report = match outcome {
            Ok(o) => RowReport {
                row: *row,
                outcome: Ok(RowFigures::new(&o.measured, rss, cpu, written)),
                first_error: o.measured.first_error,
                rss_added: o.rss_added,
            },
            Err(e) => RowReport {
                row: *row,
                outcome: Err(format!("{e:#}")),
                first_error: None,
                rss_added: None,
            },
        };
        match &report.outcome {
            Ok(f) => eprintln!("{objects} {}: {f}", row.name()),
            Err(e) => eprintln!("{objects} {}: failed: {e}", row.name()),
        }
        if let Some(e) = &report.first_error {
            eprintln!("  first error: {e}");
        }
        reports.push(report);
    }
    target.check_alive()?;
    Ok((
        LevelReport {
            objects,
            preload,
            rss_idle,
            rows: reports,
        },
        version,
    ))
}

/// Waits for the server's admin kubeconfig and for `/version` to answer over it; returns the
/// client and the server's `gitVersion`.
async fn wait_for_api(target: &mut Target) -> Result<(ApiClient, Option<String>)> {
    let path = target.kubeconfig(0);
    let started = Instant::now();
    let mut last_error = String::from("no kubeconfig yet");
    while started.elapsed() < API_READY_TIMEOUT {
        target.check_alive()?;
        if path.is_file() {
            match try_version(&path).await {
                Ok(ready) => return Ok(ready),
                Err(e) => last_error = format!("{e:#}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the API did not answer within {API_READY_TIMEOUT:?}: {last_error}")
}

async fn try_version(kubeconfig: &std::path::Path) -> Result<(ApiClient, Option<String>)> {
    let client = ApiClient::from_kubeconfig(kubeconfig)?;
    let body = client.connect().await?.get("/version").await?;
    let version: serde_json::Value = serde_json::from_slice(&body)?;
    let git = version["gitVersion"].as_str().map(str::to_owned);
    Ok((client, git))
}

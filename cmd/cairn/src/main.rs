//! `cairn`: parse the command line (with the config file and `CAIRN_*` variables), set up
//! logging, and dispatch to the subcommand.

mod cli;
mod config_file;
mod ctr;
mod data_dir;
mod https;
mod join;
mod kubeconfig;
mod server;
mod snapshot_cmd;

use anyhow::Result;
use clap::Parser;
use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, Command, SnapshotCommand};

// The API server allocates and frees many small JSON values per request from several
// threads; glibc's malloc spent about a third of the server's CPU on that in the scheduler
// benchmark (docs/benchmarks.md). Built without transparent huge pages (`no_thp`): mimalloc
// would otherwise advise them on its arenas, so that each first touch zeroes 2 MiB; a
// three-node server's RSS was 149 MiB with them and 109 MiB without at the same QPS, and a
// short-lived `cairn ctr` spent 8% of its CPU clearing such pages.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Cancels `token` on SIGINT or SIGTERM; a second signal exits at once.
fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        token.cancel();
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        std::process::exit(130);
    });
}

fn main() {
    if let Err(e) = run() {
        eprintln!("cairn: {e:#}");
        std::process::exit(1);
    }
}

fn init_logging(filter: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn run() -> Result<()> {
    let args = config_file::merged_args(std::env::args_os().collect())?;
    let cli = Cli::parse_from(args);
    // libcontainer reports routine facts (the cgroup manager chosen, controllers this host
    // lacks) at info and warn; a command line tool shows only errors by default, and not
    // libcontainer's own error lines: each failure also comes back as an error that cairn
    // reports with its context (and some are races it handles, such as a container that ended
    // while it was being killed).
    let tool_filter = if cli.log == crate::cli::DEFAULT_LOG {
        "error,libcontainer=off,libcgroups=off"
    } else {
        &cli.log
    };
    // The runtime's commands run without tokio: the shim must stay single-threaded, and the
    // container calls block anyway.
    let cli = match cli.command {
        Command::Shim(args) => {
            // A start shim's stderr is its log file beside the container; an exec shim's is
            // the stderr of `ctr exec`, a tool's.
            init_logging(if args.is_exec() {
                tool_filter
            } else {
                &cli.log
            });
            std::process::exit(ctr::shim(args))
        }
        Command::Ctr(args) => {
            init_logging(tool_filter);
            std::process::exit(ctr::ctr(args)?)
        }
        command => Cli { command, ..cli },
    };
    init_logging(&cli.log);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Server(args) => {
                let shutdown = CancellationToken::new();
                cancel_on_signal(shutdown.clone());
                server::run(*args, shutdown).await
            }
            Command::Token(args) => server::print_token(&args.data_dir),
            Command::EtcdSnapshot(SnapshotCommand::Save { file, etcd_address }) => {
                snapshot_cmd::save(&file, etcd_address).await
            }
            Command::EtcdSnapshot(SnapshotCommand::Restore { file, data_dir }) => {
                snapshot_cmd::restore(&file, &data_dir)
            }
            Command::Ctr(_) | Command::Shim(_) => unreachable!("dispatched above"),
        }
    })
}

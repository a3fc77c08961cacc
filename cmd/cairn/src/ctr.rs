//! `cairn ctr` (images and containers on this node, like k3s's `ctr`/`crictl`) and the hidden
//! `cairn shim` the runtime re-executes. Parsing and printing only; the work is cairn-runtime's.
//! Neither starts a tokio runtime: the shim must stay single-threaded.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use cairn_runtime::container::{self, Follow, State};
use cairn_runtime::registries::Registries;
use cairn_runtime::spec::{self, Settings};
use cairn_runtime::{Paths, archive, image::ImageStore, sandbox};
use clap::{Args, Subcommand};
use nix::sys::signal::Signal;

/// Flags every `cairn ctr` command takes.
#[derive(Debug, Args)]
pub struct CtrArgs {
    /// Where the node keeps its state (images under DATA/agent/images).
    #[arg(long, env = "CAIRN_DATA_DIR", default_value = "/var/lib/cairn")]
    pub data_dir: PathBuf,
    /// Where volatile runtime state lives (gone after a reboot).
    #[arg(long, env = "CAIRN_RUN_DIR", default_value = "/run/cairn")]
    pub run_dir: PathBuf,
    /// Registry mirrors, credentials and TLS settings (k3s's registries.yaml format).
    #[arg(
        long,
        env = "CAIRN_PRIVATE_REGISTRY",
        default_value = "/etc/cairn/registries.yaml"
    )]
    pub private_registry: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: CtrCommand,
}

/// `cairn ctr` subcommands.
#[derive(Debug, Subcommand)]
pub enum CtrCommand {
    /// Manage images.
    #[command(subcommand)]
    Images(ImagesCommand),
    /// Create and start a container from an image.
    Run(RunArgs),
    /// List containers.
    Ps,
    /// Manage pod sandboxes: network, IPC and UTS namespaces (under RUN/netns, ipcns, utsns).
    #[command(subcommand)]
    Sandbox(SandboxCommand),
    /// Print a container's log (stdout and stderr).
    Logs {
        /// Keep printing until the container ends.
        #[arg(long, short)]
        follow: bool,
        /// The container.
        name: String,
    },
    /// Run a command in a running container, with this command's stdin; exits with its exit
    /// code.
    Exec {
        /// Give the command a terminal (this one in raw mode, when stdin is a terminal).
        #[arg(long, short)]
        tty: bool,
        /// The container.
        name: String,
        /// The command and its arguments.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Stop a container: SIGTERM, then SIGKILL after the grace period.
    Stop {
        /// How long to wait after SIGTERM.
        #[arg(long, short = 't', default_value = "10s", value_parser = crate::cli::parse_duration)]
        timeout: Duration,
        /// The container.
        name: String,
    },
    /// Send a signal to a container's processes.
    Kill {
        /// The signal (name or number).
        #[arg(long, short, default_value = "SIGKILL")]
        signal: String,
        /// The container.
        name: String,
    },
    /// Remove a stopped container.
    Rm {
        /// Kill it first if it runs.
        #[arg(long, short)]
        force: bool,
        /// The containers.
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// `cairn ctr sandbox` subcommands.
#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Create a sandbox containers join with `run --sandbox NAME`; prints its network
    /// namespace's path.
    Create {
        /// Its hostname (default: its name).
        #[arg(long)]
        hostname: Option<String>,
        /// Its name.
        name: String,
    },
    /// Remove a sandbox.
    Rm {
        /// Its name.
        name: String,
    },
    /// List sandboxes.
    Ls,
}

/// `cairn ctr images` subcommands.
#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// Pull images from their registries (or mirrors) for this machine's platform.
    Pull {
        /// Image names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Import air-gap tarballs (docker-archive or oci-archive; plain, gzip or zstd).
    Import {
        /// The tarballs.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List images.
    Ls,
    /// Remove images (and the blobs and snapshots only they used).
    Rm {
        /// Names or ids.
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// `cairn ctr run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Remove the container when it ends (attached runs only).
    #[arg(long)]
    rm: bool,
    /// Start it and return instead of printing its output and waiting.
    #[arg(long, short)]
    detach: bool,
    /// Environment variables (K=V), over the image's.
    #[arg(long = "env", short = 'e')]
    env: Vec<String>,
    /// Working directory.
    #[arg(long)]
    cwd: Option<String>,
    /// uid[:gid] or name[:group].
    #[arg(long, short)]
    user: Option<String>,
    /// Memory limit (e.g. 64Mi).
    #[arg(long, value_parser = |s: &str| spec::parse_memory(s).map_err(|e| e.to_string()))]
    memory: Option<u64>,
    /// CPU limit (e.g. 0.5).
    #[arg(long, value_parser = |s: &str| spec::parse_cpus(s).map_err(|e| e.to_string()))]
    cpus: Option<u64>,
    /// Maximum number of processes.
    #[arg(long)]
    pids: Option<i64>,
    /// Join this sandbox's network, IPC and UTS namespaces (see `cairn ctr sandbox create`).
    #[arg(long)]
    sandbox: Option<String>,
    /// The seccomp filter: `default` (cairn's profile) or `unconfined`.
    #[arg(long, default_value = "default")]
    seccomp: cairn_runtime::seccomp::Profile,
    /// The image (name or id).
    image: String,
    /// The container's name.
    name: String,
    /// The command (default: the image's).
    #[arg(last = true)]
    command: Vec<String>,
}

/// `cairn shim` (hidden): the runtime re-executes the binary as this.
#[derive(Debug, Args)]
pub struct ShimArgs {
    /// The node's data directory.
    #[arg(long)]
    data_dir: PathBuf,
    /// The run directory.
    #[arg(long)]
    run_dir: PathBuf,
    /// What to run.
    #[command(subcommand)]
    command: ShimCommand,
}

/// Shim modes.
#[derive(Debug, Subcommand)]
pub enum ShimCommand {
    /// Create, start and supervise a container.
    Start {
        /// The container.
        name: String,
    },
    /// Run a process in a running container.
    Exec {
        /// On a new pseudo-terminal.
        #[arg(long)]
        tty: bool,
        /// The container.
        name: String,
        /// The command.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
}

impl ShimArgs {
    /// Whether this is an exec shim (whose stdio is its caller's).
    pub fn is_exec(&self) -> bool {
        matches!(self.command, ShimCommand::Exec { .. })
    }
}

/// Runs the shim; returns its exit code.
pub fn shim(args: ShimArgs) -> i32 {
    let paths = Paths::new(&args.data_dir, &args.run_dir);
    match args.command {
        ShimCommand::Start { name } => cairn_runtime::shim::run_start(&paths, &name),
        ShimCommand::Exec { tty, name, command } => {
            cairn_runtime::shim::run_exec(&paths, &name, &command, tty)
        }
    }
}

/// Runs a `cairn ctr` command; returns the exit code.
pub fn ctr(args: CtrArgs) -> Result<i32> {
    let paths = Paths::new(&args.data_dir, &args.run_dir);
    // Opening the runtime: end containers whose shim is gone, forget dead sandboxes, import
    // air-gap tarballs new in DATA/agent/images/.
    for (what, e) in cairn_runtime::recovery::reconcile(&paths).failed {
        eprintln!(
            "cairn: warning: recovering {what}: {}",
            cairn_runtime::shim::chain(&e)
        );
    }
    match cairn_runtime::airgap::import_new(&paths) {
        Ok(imported) => {
            for i in imported {
                match i.outcome {
                    Ok(images) => {
                        eprintln!("cairn: imported {} from {}", images.join(", "), i.file)
                    }
                    Err(why) => eprintln!("cairn: warning: air-gap tarball {}: {why}", i.file),
                }
            }
        }
        Err(e) => eprintln!(
            "cairn: warning: air-gap images: {}",
            cairn_runtime::shim::chain(&e)
        ),
    }
    let exe = std::env::current_exe().context("finding the cairn binary")?;
    let mut out = std::io::stdout().lock();
    match args.command {
        CtrCommand::Images(ImagesCommand::Import { files }) => {
            for file in files {
                let records = archive::import(&paths, &file)
                    .with_context(|| format!("importing {}", file.display()))?;
                for r in records {
                    writeln!(out, "{} {}", r.name, r.config)?;
                }
            }
        }
        CtrCommand::Images(ImagesCommand::Pull { names }) => {
            let registries = Registries::load(&args.private_registry)?;
            let _ = rustls::crypto::ring::default_provider().install_default();
            // Only pulls need async IO; a current-thread runtime keeps this process simple.
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            for name in names {
                let r = rt
                    .block_on(cairn_runtime::pull::pull(&paths, &registries, &name))
                    .with_context(|| format!("pulling {name}"))?;
                writeln!(out, "{} {}", r.name, r.config)?;
            }
        }
        CtrCommand::Images(ImagesCommand::Ls) => {
            writeln!(out, "{:<50} {:<14} {:>10}", "IMAGE", "IMAGE ID", "SIZE")?;
            for r in ImageStore::new(&paths).list()? {
                writeln!(
                    out,
                    "{:<50} {:<14} {:>10}",
                    r.name,
                    r.config.short(),
                    human(r.size)
                )?;
            }
        }
        CtrCommand::Images(ImagesCommand::Rm { names }) => {
            let in_use: Vec<(String, String)> = container::list(&paths)?
                .into_iter()
                .map(|i| (i.record.name, i.record.image))
                .collect();
            for name in names {
                let r = ImageStore::new(&paths).remove(&name, &in_use)?;
                writeln!(out, "deleted {}", r.name)?;
            }
        }
        CtrCommand::Run(run) => {
            // A shim forked from this process must not inherit a held lock on stdout.
            drop(out);
            return run_container(&paths, &exe, run);
        }
        CtrCommand::Ps => {
            writeln!(out, "{:<20} {:<13} {:<40} STATUS", "NAME", "ID", "IMAGE")?;
            for i in container::list(&paths)? {
                let status = match &i.state {
                    State::Created => "created".to_string(),
                    State::Running(r) => format!("running (pid {})", r.pid),
                    State::Exited(s) if s.unknown_exit.is_some() => format!(
                        "exited ({}, unknown: {})",
                        s.exit_code,
                        s.unknown_exit.as_deref().unwrap_or_default()
                    ),
                    State::Exited(s) if s.oom_killed => {
                        format!("exited ({}, OOMKilled)", s.exit_code)
                    }
                    State::Exited(s) => format!("exited ({})", s.exit_code),
                    State::Unknown(_) => "unknown (shim gone)".to_string(),
                };
                writeln!(
                    out,
                    "{:<20} {:<13} {:<40} {status}",
                    i.record.name, i.record.id, i.record.image
                )?;
            }
        }
        CtrCommand::Sandbox(SandboxCommand::Create { hostname, name }) => {
            let path = sandbox::create(&paths, &name, hostname.as_deref())?;
            writeln!(out, "{}", path.display())?;
        }
        CtrCommand::Sandbox(SandboxCommand::Rm { name }) => sandbox::remove(&paths, &name)?,
        CtrCommand::Sandbox(SandboxCommand::Ls) => {
            for name in sandbox::list(&paths) {
                writeln!(out, "{name}")?;
            }
        }
        CtrCommand::Logs { follow, name } => {
            drop(out);
            let follow = if follow { Follow::Watch } else { Follow::No };
            container::copy_logs(
                &paths,
                &name,
                follow,
                &mut std::io::stdout(),
                &mut std::io::stderr(),
            )?;
        }
        CtrCommand::Exec { tty, name, command } => {
            drop(out);
            return Ok(container::exec(&paths, &name, &exe, &command, tty)?);
        }
        CtrCommand::Stop { timeout, name } => {
            let s = container::stop(&paths, &name, timeout)?;
            writeln!(out, "{name} exited ({})", s.exit_code)?;
        }
        CtrCommand::Kill { signal, name } => {
            let sig = parse_signal(&signal)?;
            container::kill(&paths, &name, sig, sig == Signal::SIGKILL)?;
        }
        CtrCommand::Rm { force, names } => {
            for name in names {
                container::remove(&paths, &name, force)?;
                writeln!(out, "{name}")?;
            }
        }
    }
    Ok(0)
}

fn run_container(paths: &Paths, exe: &std::path::Path, run: RunArgs) -> Result<i32> {
    if run.rm && run.detach {
        bail!("--rm and --detach cannot be combined");
    }
    if let Some(name) = &run.sandbox {
        sandbox::namespaces(paths, name)?;
    }
    let settings = Settings {
        args: run.command,
        env: run.env,
        cwd: run.cwd,
        user: run.user,
        memory: run.memory,
        milli_cpus: run.cpus,
        pids: run.pids,
        sandbox: run.sandbox,
        auto_remove: run.rm,
        seccomp: run.seccomp,
    };
    container::create(paths, &run.name, &run.image, settings)?;
    let started = match container::start(paths, &run.name, exe) {
        Ok(started) => started,
        Err(e) => {
            let _ = container::remove(paths, &run.name, true);
            return Err(e.into());
        }
    };
    if run.detach {
        println!("{}", run.name);
        return Ok(0);
    }
    let status = container::copy_logs(
        paths,
        &run.name,
        Follow::Started(&started),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    )?;
    let code = match status {
        Some(s) => {
            if s.oom_killed {
                eprintln!("cairn: container {} was OOM-killed", run.name);
            }
            s.exit_code
        }
        None => bail!("the shim of {} ended without recording an exit", run.name),
    };
    if run.rm {
        container::remove(paths, &run.name, false)?;
    }
    Ok(code)
}

fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).with_context(|| format!("unknown signal {s}"));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>()
        .with_context(|| format!("unknown signal {s}"))
}

fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

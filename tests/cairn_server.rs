//! One `cairn server` process, started as a user would start it.
//!
//! [`Server`] owns a temp dir holding the data dir and the logs, builds the command line from
//! [`ServerOpts`] following the CLI contract (`cairn server --data-dir --bind-address
//! --https-listen-port --raft-port --etcd-address [--token] [--server] [--node-name]
//! [--disable-agent]`), and is ready once a Get on its etcd endpoint answers. Dropping it kills
//! the process by PID and removes the temp dir.
//!
//! Where the binary is found is decided by [`cairn_binary`]: `$CAIRN_BIN`, else
//! `<workspace>/target/debug/cairn`. `cargo test -p cairn-tests` does not build it; run
//! `cargo build -p cairn` first.

use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tempfile::TempDir;

use crate::client::wait_ready;
use crate::ports::{free_port_block, loopback};
use crate::process::Process;

/// How long a cairn server may take to serve its first Get (a debug build joining a cluster).
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Path of the cairn binary under test: `$CAIRN_BIN` if set, else the workspace's debug build.
pub fn cairn_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("CAIRN_BIN") {
        return PathBuf::from(path);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives inside the workspace")
        .join("target/debug/cairn")
}

/// The ports a cairn server listens on. Members of one cluster use the same ports on their own
/// loopback addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ports {
    /// `--https-listen-port`: the supervisor/API port joining servers dial with `--server`.
    pub https: u16,
    /// `--raft-port`: peer traffic.
    pub raft: u16,
    /// Port of `--etcd-address`: the etcd v3 gRPC API.
    pub etcd: u16,
}

impl Ports {
    /// Finds ports free on all of `ips`.
    pub fn allocate(ips: &[Ipv4Addr]) -> Result<Self> {
        let block = free_port_block(ips, 3)?;
        Ok(Self {
            https: block[0],
            raft: block[1],
            etcd: block[2],
        })
    }
}

/// What to start: one member's address, ports and how it joins.
#[derive(Clone, Debug)]
pub struct ServerOpts {
    /// `--node-name`.
    pub name: String,
    /// `--bind-address` (and the advertised address).
    pub ip: Ipv4Addr,
    /// Listening ports.
    pub ports: Ports,
    /// `--token`: the cluster token (joining servers need it; the first server may omit it).
    pub token: Option<String>,
    /// `--server`: the URL of an existing server to join.
    pub server: Option<String>,
    /// Extra arguments appended verbatim.
    pub extra_args: Vec<String>,
    /// Run the scheduler and the controller manager (off by default: their Lease renewals
    /// write to the store every two seconds, which the etcd conformance tests must not see).
    pub control_loops: bool,
}

impl ServerOpts {
    /// A single server on 127.0.0.1 with fresh ports.
    pub fn single() -> Result<Self> {
        let ip = loopback(0);
        Ok(Self::member(0, Ports::allocate(&[ip])?))
    }

    /// Member `index` (0-based) of a cluster: `node-<index+1>` on `127.0.0.<index+1>`.
    pub fn member(index: usize, ports: Ports) -> Self {
        Self {
            name: format!("node-{}", index + 1),
            ip: loopback(index),
            ports,
            token: None,
            server: None,
            extra_args: Vec::new(),
            control_loops: false,
        }
    }

    /// This member joining the cluster of `first` (its https URL) with `token`.
    pub fn joining(mut self, first: &ServerOpts, token: &str) -> Self {
        self.server = Some(first.https_url());
        self.token = Some(token.to_owned());
        self
    }

    /// `https://ip:https-port`, the value other servers pass as `--server`.
    pub fn https_url(&self) -> String {
        format!("https://{}:{}", self.ip, self.ports.https)
    }

    /// `ip:etcd-port`, the value of `--etcd-address`.
    pub fn etcd_address(&self) -> String {
        format!("{}:{}", self.ip, self.ports.etcd)
    }

    fn args(&self, data_dir: &Path) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "server".into(),
            "--data-dir".into(),
            data_dir.into(),
            "--bind-address".into(),
            self.ip.to_string().into(),
            "--https-listen-port".into(),
            self.ports.https.to_string().into(),
            "--raft-port".into(),
            self.ports.raft.to_string().into(),
            "--etcd-address".into(),
            self.etcd_address().into(),
            "--node-name".into(),
            self.name.clone().into(),
            "--disable-agent".into(),
            "--write-kubeconfig".into(),
            data_dir.join("kubeconfig.yaml").into(),
        ];
        if !self.control_loops {
            args.push("--disable-scheduler".into());
            args.push("--disable-controller-manager".into());
        }
        if let Some(token) = &self.token {
            args.extend(["--token".into(), token.into()]);
        }
        if let Some(server) = &self.server {
            args.extend(["--server".into(), server.into()]);
        }
        args.extend(self.extra_args.iter().map(OsString::from));
        args
    }
}

/// A running (or stopped) cairn server with its own temp dir.
#[derive(Debug)]
pub struct Server {
    opts: ServerOpts,
    data_dir: PathBuf,
    // Declared before `dir` so the process is killed (and its logs printed) before the temp dir
    // is removed: fields drop in declaration order.
    process: Process,
    dir: TempDir,
}

impl Server {
    /// Creates the temp dir and the process description without starting anything.
    pub fn create(opts: ServerOpts) -> Result<Self> {
        let binary = cairn_binary();
        if !binary.exists() {
            bail!(
                "cairn binary not found at {} (build it with `cargo build -p cairn` or set CAIRN_BIN)",
                binary.display()
            );
        }
        let dir = tempfile::Builder::new()
            .prefix(&format!("cairn-test-{}-", opts.name))
            .tempdir()?;
        let data_dir = dir.path().join("data");
        std::fs::create_dir_all(&data_dir)?;
        let process = Process::new(
            format!("cairn {} ({})", opts.name, opts.ip),
            binary,
            opts.args(&data_dir),
            dir.path(),
        );
        Ok(Self {
            opts,
            data_dir,
            process,
            dir,
        })
    }

    /// Starts a server and waits until its etcd endpoint answers.
    pub async fn start(opts: ServerOpts) -> Result<Self> {
        let mut server = Self::create(opts)?;
        server.spawn()?;
        server.wait_ready().await?;
        Ok(server)
    }

    /// Starts the process without waiting for readiness.
    pub fn spawn(&mut self) -> Result<()> {
        self.process.set_args(self.opts.args(&self.data_dir));
        self.process.spawn()
    }

    /// Waits until a Get on the etcd endpoint answers; fails early if the process exits.
    pub async fn wait_ready(&mut self) -> Result<()> {
        let endpoint = self.endpoint();
        let process = &mut self.process;
        wait_ready(&endpoint, READY_TIMEOUT, || {
            match process.try_exit_status()? {
                Some(status) => bail!(
                    "{} exited with {status} before it was ready",
                    process.name()
                ),
                None => Ok(()),
            }
        })
        .await
    }

    /// SIGKILL by PID and reap.
    pub fn kill9(&mut self) {
        self.process.kill9();
    }

    /// Kills the server if it runs, starts it again on the same data dir and waits for readiness.
    pub async fn restart(&mut self) -> Result<()> {
        self.kill9();
        self.spawn()?;
        self.wait_ready().await
    }

    /// Deletes everything in the data dir; the server must be stopped.
    pub fn wipe_data(&mut self) -> Result<()> {
        if self.process.is_running()? {
            bail!(
                "{} is running; stop it before wiping its data",
                self.opts.name
            );
        }
        std::fs::remove_dir_all(&self.data_dir)?;
        std::fs::create_dir_all(&self.data_dir)?;
        Ok(())
    }

    /// Changes how the next start joins (for re-adding a removed member).
    pub fn opts_mut(&mut self) -> &mut ServerOpts {
        &mut self.opts
    }

    /// The options this server was started with.
    pub fn opts(&self) -> &ServerOpts {
        &self.opts
    }

    /// `http://ip:port` of the etcd API.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.opts.etcd_address())
    }

    /// The data dir passed as `--data-dir`.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The admin kubeconfig the server wrote (`--write-kubeconfig`). The server writes it
    /// (atomically) once the store is up and the system namespaces exist, a moment after its
    /// etcd endpoint answers, which is when `start` returns; so this waits for the file (up to a
    /// minute, then returns the path for the caller's read to fail on).
    pub fn kubeconfig(&self) -> PathBuf {
        let path = self.data_dir.join("kubeconfig.yaml");
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !path.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        path
    }

    /// The temp dir holding the data dir and logs; scratch files may go here too.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The cluster token, printed by `cairn token --data-dir DIR`.
    pub fn token(&self) -> Result<String> {
        let output = Command::new(cairn_binary())
            .arg("token")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .output()
            .context("running cairn token")?;
        if !output.status.success() {
            bail!(
                "cairn token failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let token = String::from_utf8(output.stdout)?.trim().to_owned();
        if token.is_empty() {
            bail!("cairn token printed nothing");
        }
        Ok(token)
    }

    /// Whether the process runs.
    pub fn is_running(&mut self) -> Result<bool> {
        self.process.is_running()
    }

    /// Waits for the process to exit on its own.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        self.process.wait_exit(timeout).await
    }

    /// All of the server's stderr so far.
    pub fn stderr(&self) -> String {
        self.process.stderr()
    }
}

/// Runs `cairn <args>` to completion (for `etcd-snapshot save/restore`), failing on a non-zero exit.
pub fn run_cairn(args: &[&str]) -> Result<String> {
    let output = Command::new(cairn_binary())
        .args(args)
        .output()
        .with_context(|| format!("running cairn {args:?}"))?;
    if !output.status.success() {
        bail!(
            "cairn {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

//! The servers under test: launching etcd or cairn on loopback, waiting until they serve, and
//! stopping them.
//!
//! A [`Target`] is a running cluster of one or three nodes with its own temporary data directory;
//! the workloads only see its client endpoints and the bench only its PIDs. etcd and cairn differ
//! only in how a node is launched ([`Kind::launch`]); readiness, liveness and shutdown are shared.
//! Nodes listen on 127.0.0.1, 127.0.0.2 and 127.0.0.3 with the same ports, which stay clear of both
//! servers' defaults so an etcd or k3s already running on this machine is not touched (and move by
//! [`LaunchConfig::port_offset`]). cairn nodes write their admin kubeconfig into their data
//! directory.

use std::fmt;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use etcd_client::{Client, ConnectOptions};
use tokio::process::{Child, Command};

/// etcd's client port (its default is 2379).
const ETCD_CLIENT_PORT: u16 = 23790;
/// etcd's peer port (its default is 2380).
const ETCD_PEER_PORT: u16 = 23800;
/// cairn's Kubernetes API port.
const CAIRN_HTTPS_PORT: u16 = 16443;
/// cairn's Raft port.
const CAIRN_RAFT_PORT: u16 = 12380;
/// cairn's etcd-protocol port.
const CAIRN_ETCD_PORT: u16 = 12379;

/// The admin kubeconfig a cairn node writes into its data directory.
const KUBECONFIG: &str = "kubeconfig.yaml";

/// How long a node may take to serve a linearizable read after it was started.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a node gets to exit after `SIGTERM` before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Which server a target runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Debian's etcd.
    Etcd,
    /// cairn's embedded store, through `cairn server`.
    Cairn,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Etcd => "etcd",
            Kind::Cairn => "cairn",
        })
    }
}

/// The cairn binary to run: `given` (`--cairn-bin`), else the `cairn` beside this benchmark.
pub fn cairn_bin(given: Option<PathBuf>) -> Result<PathBuf> {
    match given {
        Some(path) => Ok(path),
        None => Ok(std::env::current_exe()
            .context("locating this binary")?
            .with_file_name("cairn")),
    }
}

/// Where the server binaries are and how many nodes to run.
#[derive(Debug, Clone)]
pub struct LaunchConfig {
    /// The etcd binary.
    pub etcd_bin: PathBuf,
    /// The cairn binary.
    pub cairn_bin: PathBuf,
    /// Nodes per cluster: 1 or 3.
    pub nodes: usize,
    /// Added to every port, so that benchmarks (or a benchmark and someone's test server) that
    /// would otherwise collide can run side by side.
    pub port_offset: u16,
    /// Run cairn as a store only, as etcd is: without the scheduler and the controller manager
    /// (whose leader-election leases are writes of their own). The API server stays; it has
    /// no switch and watches only `/registry/`.
    pub store_only: bool,
}

impl LaunchConfig {
    /// One cairn server (no etcd) with ports moved by `port_offset`: the API benchmarks.
    pub fn one_cairn(cairn_bin: PathBuf, port_offset: u16) -> Self {
        Self {
            etcd_bin: PathBuf::new(),
            cairn_bin,
            nodes: 1,
            port_offset,
            store_only: false,
        }
    }

    /// The binary that runs `kind`.
    pub fn bin(&self, kind: Kind) -> &Path {
        match kind {
            Kind::Etcd => &self.etcd_bin,
            Kind::Cairn => &self.cairn_bin,
        }
    }
}

/// One server process.
struct Node {
    child: Child,
    pid: u32,
    endpoint: String,
    log: PathBuf,
}

/// A running cluster and the temporary directory holding its data and logs.
pub struct Target {
    kind: Kind,
    nodes: Vec<Node>,
    dir: tempfile::TempDir,
}

impl Kind {
    /// Starts a cluster of `config.nodes` nodes and waits until every node serves a linearizable
    /// read.
    pub async fn start(self, config: &LaunchConfig) -> Result<Target> {
        let bin = config.bin(self);
        if !bin.is_file() {
            bail!("{self} binary {} not found", bin.display());
        }
        for i in 0..config.nodes {
            for port in self.ports(config.port_offset) {
                ensure_free(&node_ip(i), port)?;
            }
        }
        let dir = tempfile::Builder::new()
            .prefix(&format!("cairn-bench-{self}-"))
            .tempdir()
            .context("creating a temporary data directory")?;
        let mut target = Target {
            kind: self,
            nodes: Vec::new(),
            dir,
        };
        match self {
            // etcd members must all be up to elect a leader, so they start together.
            Kind::Etcd => {
                for i in 0..config.nodes {
                    let node = target.spawn(config, i, None)?;
                    target.nodes.push(node);
                }
                for i in 0..config.nodes {
                    target.wait_ready(i).await?;
                }
            }
            // cairn's first server bootstraps the cluster and writes the join token; the others
            // join one at a time, as k3s recommends for embedded etcd.
            Kind::Cairn => {
                let node = target.spawn(config, 0, None)?;
                target.nodes.push(node);
                target.wait_ready(0).await?;
                if config.nodes > 1 {
                    let token = target.wait_token().await?;
                    for i in 1..config.nodes {
                        let node = target.spawn(config, i, Some(&token))?;
                        target.nodes.push(node);
                        target.wait_ready(i).await?;
                    }
                }
            }
        }
        Ok(target)
    }

    fn ports(self, offset: u16) -> Vec<u16> {
        let ports = match self {
            Kind::Etcd => vec![ETCD_CLIENT_PORT, ETCD_PEER_PORT],
            Kind::Cairn => vec![CAIRN_HTTPS_PORT, CAIRN_RAFT_PORT, CAIRN_ETCD_PORT],
        };
        ports.into_iter().map(|p| p + offset).collect()
    }

    fn client_port(self, offset: u16) -> u16 {
        offset
            + match self {
                Kind::Etcd => ETCD_CLIENT_PORT,
                Kind::Cairn => CAIRN_ETCD_PORT,
            }
    }

    /// The command line of node `i` (0-based) with data under `data`.
    fn launch(self, config: &LaunchConfig, i: usize, data: &Path, token: Option<&str>) -> Command {
        let ip = node_ip(i);
        let offset = config.port_offset;
        let mut cmd = Command::new(config.bin(self));
        match self {
            Kind::Etcd => {
                let peer_port = ETCD_PEER_PORT + offset;
                let cluster = (0..config.nodes)
                    .map(|n| format!("n{n}=http://{}:{peer_port}", node_ip(n)))
                    .collect::<Vec<_>>()
                    .join(",");
                let client_url = format!("http://{ip}:{}", ETCD_CLIENT_PORT + offset);
                let peer_url = format!("http://{ip}:{peer_port}");
                cmd.arg(format!("--name=n{i}"))
                    .arg(format!("--data-dir={}", data.display()))
                    .arg(format!("--listen-client-urls={client_url}"))
                    .arg(format!("--advertise-client-urls={client_url}"))
                    .arg(format!("--listen-peer-urls={peer_url}"))
                    .arg(format!("--initial-advertise-peer-urls={peer_url}"))
                    .arg(format!("--initial-cluster={cluster}"))
                    .arg("--initial-cluster-state=new")
                    .arg("--initial-cluster-token=cairn-bench")
                    .arg("--logger=zap");
                // etcd reads every flag from ETCD_* too; the package's defaults must not leak in.
                for (key, _) in std::env::vars_os() {
                    if key.to_string_lossy().starts_with("ETCD_") {
                        cmd.env_remove(key);
                    }
                }
            }
            Kind::Cairn => {
                let https_port = CAIRN_HTTPS_PORT + offset;
                cmd.arg("server")
                    .arg("--data-dir")
                    .arg(data)
                    .args(["--bind-address", &ip])
                    .args(["--https-listen-port", &https_port.to_string()])
                    .args(["--raft-port", &(CAIRN_RAFT_PORT + offset).to_string()])
                    .args([
                        "--etcd-address",
                        &format!("{ip}:{}", CAIRN_ETCD_PORT + offset),
                    ])
                    .arg("--disable-agent")
                    .arg("--write-kubeconfig")
                    .arg(data.join(KUBECONFIG));
                if config.store_only {
                    cmd.args(["--disable-scheduler", "--disable-controller-manager"]);
                }
                if let Some(token) = token {
                    cmd.args(["--server", &format!("https://{}:{https_port}", node_ip(0))])
                        .args(["--token", token]);
                }
            }
        }
        cmd
    }
}

impl Target {
    /// Which server this is.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Client endpoints (`IP:PORT`, plaintext gRPC), one per node.
    pub fn endpoints(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.endpoint.clone()).collect()
    }

    /// The admin kubeconfig node `i` wrote (cairn only; it may not exist yet right after start).
    pub fn kubeconfig(&self, i: usize) -> PathBuf {
        self.node_dir(i).join(KUBECONFIG)
    }

    /// PIDs of the server processes.
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().map(|n| n.pid).collect()
    }

    /// Errors if a server process has exited, quoting the end of its log.
    pub fn check_alive(&mut self) -> Result<()> {
        for node in &mut self.nodes {
            if let Some(status) = node.child.try_wait()? {
                bail!(
                    "{} node {} exited ({status}); log tail:\n{}",
                    self.kind,
                    node.endpoint,
                    log_tail(&node.log)
                );
            }
        }
        Ok(())
    }

    /// Stops every node (`SIGTERM`, then `SIGKILL` after [`STOP_TIMEOUT`]) and removes the data.
    pub async fn stop(mut self) -> Result<()> {
        for node in &self.nodes {
            if let Err(e) = Command::new("kill")
                .args(["-TERM", &node.pid.to_string()])
                .status()
                .await
            {
                eprintln!("kill -TERM {}: {e}", node.pid);
            }
        }
        for node in &mut self.nodes {
            if tokio::time::timeout(STOP_TIMEOUT, node.child.wait())
                .await
                .is_err()
            {
                eprintln!("{} {} ignored SIGTERM; killing it", self.kind, node.pid);
                node.child.kill().await?;
            }
        }
        self.dir.close().context("removing the data directory")
    }

    fn spawn(&self, config: &LaunchConfig, i: usize, token: Option<&str>) -> Result<Node> {
        let data = self.node_dir(i);
        std::fs::create_dir_all(&data)?;
        let log = self.dir.path().join(format!("n{i}.log"));
        let out = std::fs::File::create(&log)?;
        let mut cmd = self.kind.launch(config, i, &data, token);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", config.bin(self.kind).display()))?;
        let pid = child.id().context("server exited at once")?;
        Ok(Node {
            child,
            pid,
            endpoint: format!(
                "{}:{}",
                node_ip(i),
                self.kind.client_port(config.port_offset)
            ),
            log,
        })
    }

    fn node_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("n{i}"))
    }

    /// Polls node `i` with a linearizable Get (which needs an elected leader and an applied log)
    /// until it answers.
    async fn wait_ready(&mut self, i: usize) -> Result<()> {
        let started = Instant::now();
        let endpoint = self.nodes[i].endpoint.clone();
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(1))
            .with_timeout(Duration::from_secs(2));
        let mut last_error = String::from("not tried");
        while started.elapsed() < READY_TIMEOUT {
            self.check_alive()?;
            match Client::connect([format!("http://{endpoint}")], Some(options.clone())).await {
                Ok(mut client) => match client.get("cairn-bench/ready", None).await {
                    Ok(_) => {
                        eprintln!(
                            "{} node {endpoint} ready after {:.1} s",
                            self.kind,
                            started.elapsed().as_secs_f64()
                        );
                        return Ok(());
                    }
                    Err(e) => last_error = e.to_string(),
                },
                Err(e) => last_error = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "{} node {endpoint} not ready after {READY_TIMEOUT:?} (last error: {last_error}); log tail:\n{}",
            self.kind,
            log_tail(&self.nodes[i].log)
        )
    }

    /// Waits for the first cairn server's join token (`DATA/server/token`).
    async fn wait_token(&mut self) -> Result<String> {
        let path = self.node_dir(0).join("server").join("token");
        let started = Instant::now();
        while started.elapsed() < READY_TIMEOUT {
            self.check_alive()?;
            if let Ok(token) = std::fs::read_to_string(&path) {
                let token = token.trim();
                if !token.is_empty() {
                    return Ok(token.to_owned());
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "no join token at {} after {READY_TIMEOUT:?}",
            path.display()
        )
    }
}

/// Loopback address of node `i`: 127.0.0.1, 127.0.0.2, ...
fn node_ip(i: usize) -> String {
    format!("127.0.0.{}", i + 1)
}

/// Refuses to start if something already listens where a node would, so the bench never
/// measures a server it did not launch.
fn ensure_free(ip: &str, port: u16) -> Result<()> {
    TcpListener::bind((ip, port)).map(drop).with_context(|| {
        format!("{ip}:{port} is already in use (is another etcd or cairn running?)")
    })
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

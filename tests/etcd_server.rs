//! One real etcd (Debian's `/usr/bin/etcd`, 3.4) as a single-member cluster on 127.0.0.1.
//!
//! It is the reference every conformance test is first validated against. It is started, killed
//! and restarted exactly like [`crate::Server`], with a temp dir for data and logs. The progress
//! notify interval is set to 5 s, the value k3s gives its embedded etcd.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};
use tempfile::TempDir;

use crate::client::wait_ready;
use crate::ports::{free_port_block, loopback};
use crate::process::Process;

/// Debian's etcd server binary.
pub const ETCD_BIN: &str = "/usr/bin/etcd";

const NAME: &str = "etcd-1";

/// A single-member etcd cluster.
#[derive(Debug)]
pub struct EtcdServer {
    client_port: u16,
    peer_port: u16,
    data_dir: PathBuf,
    // Before `dir`: the process is killed before the temp dir is removed.
    process: Process,
    dir: TempDir,
}

impl EtcdServer {
    /// Allocates ports and a temp dir without starting etcd (so a snapshot can be restored into
    /// [`EtcdServer::data_dir`] first).
    pub fn create() -> Result<Self> {
        if !Path::new(ETCD_BIN).exists() {
            bail!("{ETCD_BIN} not found: apt-get install -y etcd-server etcd-client");
        }
        let ports = free_port_block(&[loopback(0)], 2)?;
        let dir = tempfile::Builder::new().prefix("etcd-test-").tempdir()?;
        let data_dir = dir.path().join("data");
        let mut server = Self {
            client_port: ports[0],
            peer_port: ports[1],
            data_dir,
            process: Process::new(NAME, ETCD_BIN, Vec::new(), dir.path()),
            dir,
        };
        server.process.set_args(server.args());
        Ok(server)
    }

    /// Starts etcd and waits until it answers a Get.
    pub async fn start() -> Result<Self> {
        let mut server = Self::create()?;
        server.spawn()?;
        server.wait_ready().await?;
        Ok(server)
    }

    fn args(&self) -> Vec<OsString> {
        let client = self.endpoint();
        let peer = self.peer_url();
        [
            "--name",
            NAME,
            "--data-dir",
            &self.data_dir.to_string_lossy(),
            "--listen-client-urls",
            &client,
            "--advertise-client-urls",
            &client,
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
            "--initial-cluster",
            &self.initial_cluster(),
            "--experimental-watch-progress-notify-interval",
            "5s",
        ]
        .into_iter()
        .map(OsString::from)
        .collect()
    }

    /// Starts the process without waiting.
    pub fn spawn(&mut self) -> Result<()> {
        self.process.spawn()
    }

    /// Waits until a Get answers; fails early if etcd exits.
    pub async fn wait_ready(&mut self) -> Result<()> {
        let endpoint = self.endpoint();
        let process = &mut self.process;
        wait_ready(&endpoint, Duration::from_secs(30), || {
            match process.try_exit_status()? {
                Some(status) => bail!("etcd exited with {status} before it was ready"),
                None => Ok(()),
            }
        })
        .await
    }

    /// SIGKILL by PID and reap.
    pub fn kill9(&mut self) {
        self.process.kill9();
    }

    /// Kills etcd if it runs, starts it again on the same data dir and waits for readiness.
    pub async fn restart(&mut self) -> Result<()> {
        self.kill9();
        self.spawn()?;
        self.wait_ready().await
    }

    /// `http://127.0.0.1:<client port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}:{}", loopback(0), self.client_port)
    }

    /// `http://127.0.0.1:<peer port>`.
    pub fn peer_url(&self) -> String {
        format!("http://{}:{}", loopback(0), self.peer_port)
    }

    /// The member name.
    pub fn name(&self) -> &str {
        NAME
    }

    /// `name=peer-url`, as `--initial-cluster` and `etcdctl snapshot restore` take it.
    pub fn initial_cluster(&self) -> String {
        format!("{NAME}={}", self.peer_url())
    }

    /// The data dir (absent until etcd first starts or a snapshot is restored into it).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The temp dir; scratch files may go here.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

//! Running `cairn-bench hollow-nodes` (simulated nodes) beside a test server, as a child
//! process killed by PID when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, ensure};

use crate::cairn_server::{Server, cairn_binary};

/// The `cairn-bench` binary built beside the cairn binary the tests run.
pub fn bench_binary() -> PathBuf {
    cairn_binary()
        .parent()
        .expect("the cairn binary is in a directory")
        .join("cairn-bench")
}

/// A `cairn-bench hollow-nodes` process, killed by PID when dropped; its stdout goes to a file.
pub struct HollowNodes {
    child: Child,
    stdout: PathBuf,
    _dir: tempfile::TempDir,
}

impl HollowNodes {
    /// Starts hollow nodes for `server` (its admin kubeconfig) with `args`.
    pub fn start(server: &Server, args: &[&str]) -> Result<Self> {
        let binary = bench_binary();
        ensure!(
            binary.exists(),
            "cairn-bench not found at {} (build it with `cargo build -p cairn-bench`)",
            binary.display()
        );
        let kubeconfig = server.kubeconfig();
        let dir = tempfile::tempdir()?;
        let stdout = dir.path().join("stdout");
        let child = Command::new(&binary)
            .arg("hollow-nodes")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout)?)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        Ok(Self {
            child,
            stdout,
            _dir: dir,
        })
    }

    /// Sends SIGTERM to the process (by PID), waits for it and returns what it printed.
    pub fn terminate(&mut self) -> Result<String> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        ensure!(status.success(), "kill -TERM failed");
        let exit = self.child.wait()?;
        ensure!(exit.success(), "hollow-nodes exited with {exit}");
        Ok(std::fs::read_to_string(&self.stdout)?)
    }
}

impl Drop for HollowNodes {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

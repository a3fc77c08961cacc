//! Running Debian's `etcdctl` (3.4, API v3) against an endpoint.
//!
//! `etcdctl` is a client kube operators actually use, so the tests drive cairn with it exactly as
//! they drive etcd. It runs synchronously; tests that call it use a multi-threaded runtime so
//! that other tasks (watches) keep running meanwhile.

use std::process::{Command, Output, Stdio};

use anyhow::{Context, Result, bail};

/// Debian's etcdctl binary.
pub const ETCDCTL_BIN: &str = "/usr/bin/etcdctl";

fn command(endpoint: &str, args: &[&str]) -> Command {
    let mut command = Command::new(ETCDCTL_BIN);
    command
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .arg("--dial-timeout=5s")
        .arg("--command-timeout=10s")
        .args(args);
    command
}

/// Runs `etcdctl --endpoints=<endpoint> <args>` and returns its output, whatever the exit code.
pub fn etcdctl(endpoint: &str, args: &[&str]) -> Result<Output> {
    command(endpoint, args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running etcdctl {args:?}"))
}

/// Like [`etcdctl`] with `input` on stdin (for `txn` and for values too large for argv).
pub fn etcdctl_with_input(endpoint: &str, args: &[&str], input: &[u8]) -> Result<Output> {
    crate::process::output_with_input(&mut command(endpoint, args), input)
        .with_context(|| format!("running etcdctl {args:?}"))
}

/// Checking an etcdctl result.
pub trait OutputExt {
    /// Fails (showing stdout and stderr) unless the command succeeded; returns stdout.
    fn expect_success(&self) -> Result<String>;
    /// Fails unless the command failed; returns stderr.
    fn expect_failure(&self) -> Result<String>;
    /// Parses stdout as JSON (`-w json`) after checking success.
    fn json(&self) -> Result<serde_json::Value>;
}

impl OutputExt for Output {
    fn expect_success(&self) -> Result<String> {
        let stdout = String::from_utf8_lossy(&self.stdout).into_owned();
        if !self.status.success() {
            bail!(
                "etcdctl failed ({}):\nstdout: {stdout}\nstderr: {}",
                self.status,
                String::from_utf8_lossy(&self.stderr)
            );
        }
        Ok(stdout)
    }

    fn expect_failure(&self) -> Result<String> {
        let stderr = String::from_utf8_lossy(&self.stderr).into_owned();
        if self.status.success() {
            bail!(
                "etcdctl succeeded but should have failed:\nstdout: {}\nstderr: {stderr}",
                String::from_utf8_lossy(&self.stdout)
            );
        }
        Ok(stderr)
    }

    fn json(&self) -> Result<serde_json::Value> {
        let stdout = self.expect_success()?;
        serde_json::from_str(&stdout)
            .with_context(|| format!("etcdctl output is not JSON: {stdout}"))
    }
}

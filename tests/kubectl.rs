//! Running the real kubectl binaries (`kubectl.1.27` … `kubectl.1.33`, installed beside the
//! binary `/usr/bin/kubectl` links to) against a server, each with its own discovery cache.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use anyhow::{Context, Result, bail};

/// The oldest and the newest kubectl the tests drive.
pub const VERSIONS: [&str; 2] = ["1.27", "1.33"];

/// The directory holding `kubectl.1.27` … `kubectl.1.33`.
pub fn kubectl_dir() -> Result<PathBuf> {
    let target = std::fs::canonicalize("/usr/bin/kubectl").context("resolve /usr/bin/kubectl")?;
    Ok(target
        .parent()
        .context("kubectl has no directory")?
        .to_path_buf())
}

/// One kubectl version with a kubeconfig.
#[derive(Debug, Clone)]
pub struct Kubectl {
    binary: PathBuf,
    kubeconfig: PathBuf,
    cache_dir: PathBuf,
    /// The version (`1.27`).
    pub version: String,
}

impl Kubectl {
    /// `kubectl.<version>` using `kubeconfig`, caching discovery under `scratch`.
    pub fn new(version: &str, kubeconfig: &Path, scratch: &Path) -> Result<Kubectl> {
        let binary = kubectl_dir()?.join(format!("kubectl.{version}"));
        if !binary.exists() {
            bail!("{} is not installed", binary.display());
        }
        Ok(Kubectl {
            binary,
            kubeconfig: kubeconfig.to_path_buf(),
            cache_dir: scratch.join(format!("kube-cache-{version}")),
            version: version.to_string(),
        })
    }

    /// The same kubectl with another kubeconfig.
    pub fn with_kubeconfig(&self, kubeconfig: &Path) -> Kubectl {
        Kubectl {
            kubeconfig: kubeconfig.to_path_buf(),
            ..self.clone()
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache_dir)
            .arg("--request-timeout=20s")
            .args(args)
            .env_remove("KUBECONFIG");
        c
    }

    /// Runs kubectl and returns its output, whatever the exit code.
    pub fn run(&self, args: &[&str]) -> Result<Output> {
        self.command(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running kubectl.{} {args:?}", self.version))
    }

    /// Runs kubectl with `input` on stdin (`-f -`).
    pub fn run_with_input(&self, args: &[&str], input: &str) -> Result<Output> {
        crate::process::output_with_input(&mut self.command(args), input.as_bytes())
            .with_context(|| format!("running kubectl.{} {args:?}", self.version))
    }

    /// Runs kubectl, failing unless it succeeds; returns stdout.
    pub fn ok(&self, args: &[&str]) -> Result<String> {
        check(&self.version, args, self.run(args)?, true)
    }

    /// Runs kubectl with stdin, failing unless it succeeds; returns stdout.
    pub fn ok_with_input(&self, args: &[&str], input: &str) -> Result<String> {
        check(&self.version, args, self.run_with_input(args, input)?, true)
    }

    /// Runs kubectl, failing unless it fails; returns stderr.
    pub fn fails(&self, args: &[&str]) -> Result<String> {
        check(&self.version, args, self.run(args)?, false)
    }

    /// Runs kubectl with stdin, failing unless it fails; returns stderr.
    pub fn fails_with_input(&self, args: &[&str], input: &str) -> Result<String> {
        check(
            &self.version,
            args,
            self.run_with_input(args, input)?,
            false,
        )
    }

    /// Starts a long-running kubectl (`get -w`) with its stdout piped.
    pub fn spawn(&self, args: &[&str]) -> Result<Child> {
        self.command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("running kubectl.{} {args:?}", self.version))
    }
}

fn check(version: &str, args: &[&str], out: Output, want_success: bool) -> Result<String> {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() != want_success {
        bail!(
            "kubectl.{version} {args:?} {} ({}):\nstdout: {stdout}\nstderr: {stderr}",
            if want_success { "failed" } else { "succeeded" },
            out.status
        );
    }
    Ok(if want_success { stdout } else { stderr })
}

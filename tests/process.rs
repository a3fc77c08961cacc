//! A child process owned by a test.
//!
//! [`Process`] starts a program with its stdout and stderr appended to two log files, can kill it
//! with SIGKILL and start it again with the same arguments, and on drop kills it by PID, reaps it
//! and prints the tail of its logs. libtest only shows a test's captured output when the test
//! fails, so the logs appear exactly when they are needed.
//!
//! It does not know what the program is; readiness checks live with the servers that use it.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Runs `cmd` to its end with `input` on its stdin (then closed), capturing stdout and stderr.
/// The input is written from a thread so that a large one cannot deadlock against a full
/// stdout pipe; a program may exit (closing stdin) before reading all of it.
pub fn output_with_input(cmd: &mut Command, input: &[u8]) -> std::io::Result<std::process::Output> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output()?;
    let _ = writer.join();
    Ok(output)
}

/// Lines of each log printed when a process is dropped.
const LOG_TAIL_LINES: usize = 300;

/// A program run as a child process, restartable, killed and reaped on drop.
#[derive(Debug)]
pub struct Process {
    name: String,
    program: PathBuf,
    args: Vec<OsString>,
    stdout_log: PathBuf,
    stderr_log: PathBuf,
    child: Option<Child>,
    starts: u32,
}

impl Process {
    /// Describes a process whose logs go to `<log_dir>/<name>.stdout.log` and `.stderr.log`.
    /// Nothing is started until [`Process::spawn`].
    pub fn new(
        name: impl Into<String>,
        program: impl Into<PathBuf>,
        args: Vec<OsString>,
        log_dir: &Path,
    ) -> Self {
        let name = name.into();
        Self {
            stdout_log: log_dir.join(format!("{name}.stdout.log")),
            stderr_log: log_dir.join(format!("{name}.stderr.log")),
            name,
            program: program.into(),
            args,
            child: None,
            starts: 0,
        }
    }

    /// The name given at construction, used in log headers.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Replaces the arguments used by the next [`Process::spawn`].
    pub fn set_args(&mut self, args: Vec<OsString>) {
        self.args = args;
    }

    /// Starts the program. Fails if it is already running.
    pub fn spawn(&mut self) -> Result<()> {
        if self.is_running()? {
            bail!("{} is already running", self.name);
        }
        self.starts += 1;
        let stdout = self.open_log(&self.stdout_log)?;
        let stderr = self.open_log(&self.stderr_log)?;
        let child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("spawning {} ({})", self.name, self.program.display()))?;
        self.child = Some(child);
        Ok(())
    }

    fn open_log(&self, path: &Path) -> Result<File> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        writeln!(
            file,
            "==== start #{} of {}: {} {} ====",
            self.starts,
            self.name,
            self.program.display(),
            self.args
                .iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" ")
        )?;
        Ok(file)
    }

    /// The PID of the running process, if any.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process was started and has not exited (it is reaped if it has).
    pub fn is_running(&mut self) -> Result<bool> {
        Ok(self.try_exit_status()?.is_none() && self.child.is_some())
    }

    /// The exit status if the process has exited, `None` while it runs or if it was never started.
    pub fn try_exit_status(&mut self) -> Result<Option<ExitStatus>> {
        match self.child.as_mut() {
            None => Ok(None),
            Some(child) => child
                .try_wait()
                .with_context(|| format!("polling {}", self.name)),
        }
    }

    /// Waits up to `timeout` for the process to exit on its own and returns its status.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.child.is_none() {
                bail!("{} was never started", self.name);
            }
            if let Some(status) = self.try_exit_status()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                bail!("{} still running after {timeout:?}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends SIGKILL by PID and reaps the process. A no-op if it is not running.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            // kill() is SIGKILL on Unix; it fails only if the process was already reaped.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Everything the process wrote to stdout, over all its starts.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout_log).unwrap_or_default()
    }

    /// Everything the process wrote to stderr, over all its starts.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    /// Prints the tail of both logs to stderr (captured by libtest, shown if the test fails).
    pub fn print_logs(&self) {
        for (stream, text) in [("stdout", self.stdout()), ("stderr", self.stderr())] {
            let lines: Vec<&str> = text.lines().collect();
            let skip = lines.len().saturating_sub(LOG_TAIL_LINES);
            eprintln!(
                "---- {} {stream} (last {} of {} lines) ----",
                self.name,
                lines.len() - skip,
                lines.len()
            );
            for line in &lines[skip..] {
                eprintln!("{line}");
            }
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill9();
        if self.starts > 0 {
            self.print_logs();
        }
    }
}

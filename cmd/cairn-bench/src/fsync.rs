//! Counting the `fsync` and `fdatasync` calls of the benchmarked servers.
//!
//! The preferred counter is `perf stat` on the `syscalls:sys_enter_fsync` and
//! `syscalls:sys_enter_fdatasync` tracepoints: the kernel only increments a counter per call, so
//! the servers run at nearly full speed and the figure can be taken under load. If those
//! tracepoints are unusable (no `perf`, no `CONFIG_FTRACE_SYSCALLS`, no permission), `strace -c`
//! is the fallback. It stops the traced threads at every traced call and so would distort a loaded
//! server; it is used for the idle window only, and the under-load figure is reported as
//! unavailable.
//!
//! Both tools attach to every thread of the given processes (`-p`, and `-f` for strace) and stop
//! when sent `SIGINT`, printing their totals to stderr.

use std::fmt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::process::{Child, Command};

/// The tracepoints `perf` counts.
const PERF_EVENTS: &str = "syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync";

/// Time given to the tool to attach before the window counts as started.
const ATTACH_GRACE: Duration = Duration::from_millis(300);

/// How fsyncs are counted on this machine.
#[derive(Debug, Clone)]
pub enum Counter {
    /// `perf stat` on syscall tracepoints: usable idle and under load.
    Perf,
    /// `strace -c`: idle only. Holds why `perf` was not usable.
    Strace {
        /// Why the perf probe failed.
        perf_error: String,
    },
    /// Neither tool works; holds why.
    Unavailable(String),
}

/// fsync + fdatasync calls counted over a window.
#[derive(Debug, Clone, Copy)]
pub struct Count {
    /// Number of calls.
    pub calls: u64,
    /// Length of the window.
    pub elapsed: Duration,
}

impl Count {
    /// Calls per second over the window.
    pub fn per_second(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }
}

/// A counting tool attached to the servers; [`Window::finish`] stops it and reads the count.
pub struct Window {
    child: Child,
    started: Instant,
    parse: fn(&str) -> Result<u64>,
}

impl Counter {
    /// Finds the most faithful counter that works here: runs `perf stat` on the tracepoints
    /// around `true`, then checks for `strace`.
    pub async fn probe() -> Self {
        let perf_error = match probe_perf().await {
            Ok(()) => return Counter::Perf,
            Err(e) => format!("{e:#}"),
        };
        match Command::new("strace")
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
        {
            Ok(s) if s.success() => Counter::Strace { perf_error },
            _ => Counter::Unavailable(format!("{perf_error}; strace not found either")),
        }
    }

    /// Whether counting under load is faithful with this counter.
    pub fn under_load(&self) -> bool {
        matches!(self, Counter::Perf)
    }

    /// Attaches to `pids` and starts counting. Errors if the counter is unavailable.
    pub async fn start(&self, pids: &[u32]) -> Result<Window> {
        let pid_list = pids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let (mut cmd, parse): (Command, fn(&str) -> Result<u64>) = match self {
            Counter::Perf => {
                let mut cmd = Command::new("perf");
                cmd.args(["stat", "-x,", "-e", PERF_EVENTS, "-p", &pid_list]);
                (cmd, parse_perf)
            }
            Counter::Strace { .. } => {
                let mut cmd = Command::new("strace");
                cmd.args(["-f", "-c", "-e", "trace=fsync,fdatasync"]);
                for pid in pids {
                    cmd.args(["-p", &pid.to_string()]);
                }
                (cmd, parse_strace)
            }
            Counter::Unavailable(why) => bail!("fsync counting unavailable: {why}"),
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {self}"))?;
        tokio::time::sleep(ATTACH_GRACE).await;
        Ok(Window {
            child,
            started: Instant::now(),
            parse,
        })
    }

    /// Counts over a fixed window of `length` in which the caller does nothing.
    pub async fn count_for(&self, pids: &[u32], length: Duration) -> Result<Count> {
        let window = self.start(pids).await?;
        tokio::time::sleep(length).await;
        window.finish().await
    }
}

impl fmt::Display for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Counter::Perf => write!(f, "perf stat -e {PERF_EVENTS} -p PIDS"),
            Counter::Strace { .. } => write!(f, "strace -f -c -e trace=fsync,fdatasync -p PID..."),
            Counter::Unavailable(_) => write!(f, "no fsync counter"),
        }
    }
}

impl Window {
    /// Stops the tool with `SIGINT` and returns what it counted since [`Counter::start`].
    pub async fn finish(self) -> Result<Count> {
        let elapsed = self.started.elapsed();
        let pid = self.child.id().context("fsync counter exited early")?;
        let status = Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .await
            .context("running kill -INT")?;
        if !status.success() {
            bail!("kill -INT {pid} failed: {status}");
        }
        let output = tokio::time::timeout(Duration::from_secs(10), self.child.wait_with_output())
            .await
            .context("fsync counter did not stop after SIGINT")??;
        let stderr = String::from_utf8_lossy(&output.stderr);
        let calls = (self.parse)(&stderr)
            .with_context(|| format!("reading fsync counter output: {}", stderr.trim()))?;
        Ok(Count { calls, elapsed })
    }
}

async fn probe_perf() -> Result<()> {
    let output = Command::new("perf")
        .args(["stat", "-x,", "-e", PERF_EVENTS, "--", "true"])
        .stdin(Stdio::null())
        .output()
        .await
        .context("running perf")?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!("perf stat failed ({}): {}", output.status, stderr.trim());
    }
    parse_perf(&stderr).with_context(|| format!("perf stat output: {}", stderr.trim()))?;
    Ok(())
}

/// Sums the counts of `perf stat -x,` output: lines `COUNT,UNIT,EVENT,...`.
fn parse_perf(out: &str) -> Result<u64> {
    let mut total = 0;
    let mut seen = 0;
    for line in out.lines() {
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() < 3 || !fields[2].starts_with("syscalls:sys_enter_") {
            continue;
        }
        match fields[0].parse::<u64>() {
            Ok(n) => total += n,
            Err(_) => bail!("event {} was {}", fields[2], fields[0]),
        }
        seen += 1;
    }
    if seen != 2 {
        bail!("expected 2 events, found {seen}");
    }
    Ok(total)
}

/// Sums the `calls` column of the fsync and fdatasync rows of an `strace -c` summary.
fn parse_strace(out: &str) -> Result<u64> {
    let mut total = 0;
    let mut table = false;
    for line in out.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.first() == Some(&"%") {
            table = true;
            continue;
        }
        if let (true, Some(&name)) = (table, fields.last())
            && (name == "fsync" || name == "fdatasync")
            && fields.len() >= 5
        {
            total += fields[3]
                .parse::<u64>()
                .with_context(|| format!("calls column of {line:?}"))?;
        }
    }
    // strace prints no table at all when no traced call happened.
    if !table && !out.contains(" detached") {
        bail!("no strace summary table");
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_perf_csv() {
        let out = "123,,syscalls:sys_enter_fsync,100,100.00,,\n7,,syscalls:sys_enter_fdatasync,100,100.00,,\n";
        assert_eq!(parse_perf(out).unwrap(), 130);
        let not_counted = "<not counted>,,syscalls:sys_enter_fsync,0,100.00,,\n\
                           <not counted>,,syscalls:sys_enter_fdatasync,0,100.00,,\n";
        assert!(parse_perf(not_counted).is_err());
        assert!(parse_perf("event syntax error\n").is_err());
    }

    #[test]
    fn parses_strace_summary() {
        let out = "strace: Process 10 attached with 3 threads\n\
            strace: Process 10 detached\n\
            % time     seconds  usecs/call     calls    errors syscall\n\
            ------ ----------- ----------- --------- --------- ----------------\n\
             90.00    0.000900          90        10           fdatasync\n\
             10.00    0.000100          50         2         1 fsync\n\
            ------ ----------- ----------- --------- --------- ----------------\n\
            100.00    0.001000          83        12         1 total\n";
        assert_eq!(parse_strace(out).unwrap(), 12);
        let empty = "% time     seconds  usecs/call     calls    errors syscall\n\
            ------ ----------- ----------- --------- --------- ----------------\n\
            100.00    0.000000           0         0           total\n";
        assert_eq!(parse_strace(empty).unwrap(), 0);
        assert!(
            parse_strace("strace: attach: ptrace(PTRACE_SEIZE, 1): Operation not permitted\n")
                .is_err()
        );
    }
}

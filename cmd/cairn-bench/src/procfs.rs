//! What `/proc` says about the benchmarked servers and the machine: resident memory
//! (`/proc/PID/status`, `VmRSS`), CPU time (`/proc/PID/stat`) and load (`/proc/loadavg`).
//!
//! A [`RssSampler`] polls the RSS sum over a target's processes while a row runs, so the report can
//! give both the figure at the end of the row and the highest one seen.

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How often a running row samples RSS.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// Resident set size of one process in bytes.
pub fn rss_bytes(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_vm_rss(&status).ok_or_else(|| anyhow!("no VmRSS line in {path}"))
}

/// Sum of [`rss_bytes`] over `pids`.
pub fn total_rss(pids: &[u32]) -> Result<u64> {
    pids.iter().map(|&pid| rss_bytes(pid)).sum()
}

/// User plus system CPU time one process has used so far.
pub fn cpu_time(pid: u32) -> Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let ticks = parse_cpu_ticks(&stat).ok_or_else(|| anyhow!("malformed {path}"))?;
    Ok(Duration::from_secs(ticks) / USER_HZ)
}

/// Sum of [`cpu_time`] over `pids`.
pub fn total_cpu_time(pids: &[u32]) -> Result<Duration> {
    pids.iter().map(|&pid| cpu_time(pid)).sum()
}

/// Bytes one process has caused to be written to storage so far (`write_bytes` of
/// `/proc/PID/io`: counted when page-cache pages are dirtied, so un-synced writes count too).
pub fn write_bytes(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/io");
    let io = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow!("no write_bytes in {path}"))
}

/// Sum of [`write_bytes`] over `pids`.
pub fn total_write_bytes(pids: &[u32]) -> Result<u64> {
    pids.iter().map(|&pid| write_bytes(pid)).sum()
}

/// The 1-minute load average, a hint of how much else competes for the CPUs.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Clock ticks per second of `/proc/PID/stat` times (`USER_HZ`, 100 on every Linux port we run on).
const USER_HZ: u32 = 100;

/// `utime + stime` in ticks: fields 14 and 15, counted after the parenthesised command name (which
/// may itself contain spaces and parentheses).
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut fields = line.split_whitespace().skip(1);
    let value: u64 = fields.next()?.parse().ok()?;
    match fields.next()? {
        "kB" => Some(value * 1024),
        _ => None,
    }
}

/// RSS over one row: the last sample and the largest.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rss {
    /// Sampled once the row finished.
    pub end: u64,
    /// Largest sample taken while the row ran (including `end`).
    pub max: u64,
}

/// Samples [`total_rss`] in the background until [`RssSampler::finish`].
pub struct RssSampler {
    pids: Vec<u32>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<u64>,
}

impl RssSampler {
    /// Starts sampling the processes `pids`.
    pub fn start(pids: Vec<u32>) -> Self {
        let (stop, mut stopped) = oneshot::channel();
        let sampled = pids.clone();
        let task = tokio::spawn(async move {
            let mut max = 0;
            let mut tick = tokio::time::interval(SAMPLE_EVERY);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        // A process that died is reported by the caller; here it just stops counting.
                        max = max.max(total_rss(&sampled).unwrap_or(0));
                    }
                    _ = &mut stopped => return max,
                }
            }
        });
        Self { pids, stop, task }
    }

    /// Stops sampling and takes the end-of-row sample.
    pub async fn finish(self) -> Result<Rss> {
        let _ = self.stop.send(());
        let max = self.task.await.context("RSS sampler task")?;
        let end = total_rss(&self.pids)?;
        Ok(Rss {
            end,
            max: max.max(end),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vm_rss() {
        let status = "Name:\tetcd\nVmPeak:\t  1000 kB\nVmRSS:\t   23456 kB\nRssAnon:\t 1 kB\n";
        assert_eq!(parse_vm_rss(status), Some(23456 * 1024));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
    }

    #[test]
    fn parses_cpu_ticks() {
        let stat = "42 (my (odd) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 17 0 0 20 0 1 0 5 0 0";
        assert_eq!(parse_cpu_ticks(stat), Some(267));
    }

    #[test]
    fn reads_own_rss() {
        assert!(rss_bytes(std::process::id()).unwrap() > 0);
    }
}

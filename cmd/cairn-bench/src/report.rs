//! The figures kept per target and row, and the Markdown report printed at the end of a `kv` run;
//! its number formats are shared with the `api` report.

use std::fmt;
use std::time::Duration;

use crate::driver::Measured;
use crate::fsync::{Count, Counter};
use crate::procfs::Rss;
use crate::stats::Summary;
use crate::targets::Kind;
use crate::workloads::{FSYNC_LOAD_ROW, Row};

/// Everything one run measured.
pub struct Run<'a> {
    /// Nodes per cluster.
    pub nodes: usize,
    /// Whether rows ran a tenth of their operations.
    pub quick: bool,
    /// How fsyncs were counted.
    pub counter: &'a Counter,
    /// The rows that ran, in order.
    pub rows: &'a [Row],
    /// One report per target, in the order they ran.
    pub targets: &'a [TargetReport],
    /// 1-minute load average before and after the run.
    pub load: (Option<f64>, Option<f64>),
}

/// What one target measured.
pub struct TargetReport {
    /// Which server.
    pub kind: Kind,
    /// Version from the Status call, if the server answers it.
    pub version: Option<String>,
    /// RSS after the preload, before any row.
    pub rss_idle: Rss,
    /// fsyncs over the idle window, or why they could not be counted.
    pub fsync_idle: Result<Count, String>,
    /// fsyncs during [`FSYNC_LOAD_ROW`]; `None` if that row did not run.
    pub fsync_load: Option<Result<FsyncLoad, String>>,
    /// One entry per row run.
    pub rows: Vec<RowReport>,
}

/// fsyncs counted while a put row ran.
pub struct FsyncLoad {
    /// The count and its window.
    pub count: Count,
    /// Puts that succeeded in the window.
    pub puts: u64,
}

/// One row of one target.
pub struct RowReport {
    /// The row's name.
    pub name: &'static str,
    /// Its figures, or the error that stopped it.
    pub outcome: Result<RowFigures, String>,
}

/// The figures of a row that ran.
pub struct RowFigures {
    /// Successful operations per second.
    pub qps: f64,
    /// Latencies of the successful operations.
    pub latency: Summary,
    /// Failed operations.
    pub errors: u64,
    /// Compare-and-swap conflicts retried.
    pub retries: u64,
    /// Server RSS over the row.
    pub rss: Rss,
    /// CPU time the server processes used during the row.
    pub server_cpu: Duration,
    /// Bytes the server processes wrote to storage during the row.
    pub disk_written: u64,
    /// Wall time of the row.
    pub elapsed: Duration,
    /// Operations that succeeded.
    pub ok: u64,
}

impl RowFigures {
    /// Summarises a measured row.
    pub fn new(m: &Measured, rss: Rss, server_cpu: Duration, disk_written: u64) -> Self {
        Self {
            qps: m.qps(),
            latency: m.latencies.clone().summary(),
            errors: m.errors,
            retries: m.retries,
            rss,
            server_cpu,
            disk_written,
            elapsed: m.elapsed,
            ok: m.ok,
        }
    }

    /// Server CPU time per successful operation, in microseconds.
    pub fn cpu_us_per_op(&self) -> f64 {
        self.server_cpu.as_secs_f64() * 1e6 / self.ok.max(1) as f64
    }

    /// Bytes written to storage per successful operation.
    pub fn bytes_per_op(&self) -> f64 {
        self.disk_written as f64 / self.ok.max(1) as f64
    }

    /// Server CPU use over the row, in percent of one CPU.
    pub fn cpu_percent(&self) -> f64 {
        self.server_cpu.as_secs_f64() * 100.0 / self.elapsed.as_secs_f64()
    }
}

impl fmt::Display for RowFigures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ops/s, p50 {} ms, p99 {} ms, max {} ms, RSS {} MiB, server CPU {:.0} us/op ({:.0} %)",
            thousands(self.qps),
            ms(self.latency.p50),
            ms(self.latency.p99),
            ms(self.latency.max),
            mib(self.rss),
            self.cpu_us_per_op(),
            self.cpu_percent(),
        )?;
        if self.errors > 0 {
            write!(f, ", {} errors", self.errors)?;
        }
        if self.retries > 0 {
            write!(f, ", {} CAS conflicts", self.retries)?;
        }
        Ok(())
    }
}

/// Prints the report to stdout.
pub fn print(run: &Run<'_>) {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = |l: Option<f64>| l.map_or("?".into(), |l| format!("{l:.2}"));
    println!(
        "## cairn-bench kv: {} node(s), {} run, {cpus} CPUs shared by client and servers, \
         load average {} before / {} after\n",
        run.nodes,
        if run.quick { "quick" } else { "full" },
        load(run.load.0),
        load(run.load.1),
    );
    let etcd = run.targets.iter().find(|t| t.kind == Kind::Etcd);
    let cairn = run.targets.iter().find(|t| t.kind == Kind::Cairn);
    println!(
        "| row | etcd QPS | cairn QPS | ratio cairn/etcd | etcd p50/p99 (ms) | cairn p50/p99 (ms) | etcd RSS end/max (MiB) | cairn RSS end/max (MiB) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for row in run.rows {
        let e = figures(etcd, row.name);
        let c = figures(cairn, row.name);
        let ratio = match (e, c) {
            (Some(Ok(e)), Some(Ok(c))) if e.qps > 0.0 => format!("{:.2}", c.qps / e.qps),
            _ => "—".into(),
        };
        println!(
            "| {} | {} | {} | {ratio} | {} | {} | {} | {} |",
            row.name,
            cell(e, |f| thousands(f.qps)),
            cell(c, |f| thousands(f.qps)),
            cell(e, |f| format!(
                "{}/{}",
                ms(f.latency.p50),
                ms(f.latency.p99)
            )),
            cell(c, |f| format!(
                "{}/{}",
                ms(f.latency.p50),
                ms(f.latency.p99)
            )),
            cell(e, |f| mib(f.rss)),
            cell(c, |f| mib(f.rss)),
        );
    }

    println!(
        "\nServer CPU (user + system of the server processes, from /proc/PID/stat) per operation \
         and as % of one CPU, and bytes written to storage per operation (write_bytes of \
         /proc/PID/io):\n"
    );
    println!(
        "| row | etcd CPU µs/op | cairn CPU µs/op | etcd CPU % | cairn CPU % | etcd bytes written/op | cairn bytes written/op |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for row in run.rows {
        let e = figures(etcd, row.name);
        let c = figures(cairn, row.name);
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.name,
            cell(e, |f| format!("{:.0}", f.cpu_us_per_op())),
            cell(c, |f| format!("{:.0}", f.cpu_us_per_op())),
            cell(e, |f| format!("{:.0}", f.cpu_percent())),
            cell(c, |f| format!("{:.0}", f.cpu_percent())),
            cell(e, |f| format!("{:.0}", f.bytes_per_op())),
            cell(c, |f| format!("{:.0}", f.bytes_per_op())),
        );
    }

    println!(
        "\nfsync + fdatasync calls of the server process(es), counted with `{}`:",
        run.counter
    );
    if let Counter::Strace { perf_error } = run.counter {
        println!(
            "- perf tracepoints unusable ({perf_error}); strace used for the idle window only"
        );
    }
    for t in run.targets {
        let idle = match &t.fsync_idle {
            Ok(c) => format!(
                "{:.1}/s ({} in {:.1} s)",
                c.per_second(),
                c.calls,
                c.elapsed.as_secs_f64()
            ),
            Err(e) => format!("unavailable ({e})"),
        };
        let load = match &t.fsync_load {
            None => format!("not measured ({FSYNC_LOAD_ROW} did not run)"),
            Some(Err(e)) => e.clone(),
            Some(Ok(l)) => format!(
                "{}/s ({} in {:.1} s, {:.3} per put, {:.1} puts per fsync)",
                thousands(l.count.per_second()),
                l.count.calls,
                l.count.elapsed.as_secs_f64(),
                l.count.calls as f64 / l.puts.max(1) as f64,
                l.puts as f64 / l.count.calls.max(1) as f64,
            ),
        };
        println!(
            "- {}: idle {idle}; under {FSYNC_LOAD_ROW} load {load}",
            t.kind
        );
    }

    println!("\nNotes:");
    for t in run.targets {
        println!(
            "- {} {}: RSS after preload {} MiB",
            t.kind,
            t.version.as_deref().unwrap_or("(Status not answered)"),
            t.rss_idle.end / (1 << 20),
        );
        for r in &t.rows {
            match &r.outcome {
                Err(e) => println!("- {} {}: failed: {e}", t.kind, r.name),
                Ok(f) if f.errors > 0 || f.retries > 0 => println!(
                    "- {} {}: {} failed operations, {} CAS conflicts retried",
                    t.kind, r.name, f.errors, f.retries
                ),
                Ok(_) => {}
            }
        }
    }
    for row in run.rows {
        println!(
            "- {}: {}, {} ops",
            row.name,
            row.shape(),
            thousands(row.ops(run.quick) as f64)
        );
    }
    println!(
        "- 8-byte keys, 256-byte values; put/range on a preloaded keyspace of {} keys; \
         txn-cas = Get + Txn(If mod_revision==R Then Put Else Get) retried on conflict, \
         latency and QPS per completed update; watch-latency = Put start to event arrival",
        thousands(crate::workloads::KEYSPACE as f64),
    );
}

fn figures<'a>(
    target: Option<&'a TargetReport>,
    row: &str,
) -> Option<&'a Result<RowFigures, String>> {
    target?
        .rows
        .iter()
        .find(|r| r.name == row)
        .map(|r| &r.outcome)
}

/// A table cell: the figure, `error` for a failed row, `—` for a row that did not run.
pub fn cell(
    figures: Option<&Result<RowFigures, String>>,
    show: impl Fn(&RowFigures) -> String,
) -> String {
    match figures {
        None => "—".into(),
        Some(Err(_)) => "error".into(),
        Some(Ok(f)) => show(f),
    }
}

/// Milliseconds with two decimals below 10 ms, one above.
pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2}")
    } else {
        format!("{ms:.1}")
    }
}

/// RSS end/max in MiB.
pub fn mib(rss: Rss) -> String {
    format!("{}/{}", rss.end / (1 << 20), rss.max / (1 << 20))
}

/// `12345.6` as `12,346`.
pub fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(13550.2), "13,550");
        assert_eq!(thousands(1234567.0), "1,234,567");
        assert_eq!(ms(Duration::from_micros(360)), "0.36");
        assert_eq!(ms(Duration::from_micros(51_460)), "51.5");
    }
}

//! The figures an `api` run keeps per level and row, and the Markdown report: one column per
//! level (objects stored) for throughput, latency and server resources, then the targets
//! with whether each is met.

use std::time::Duration;

use crate::api_workloads::{IDLE_WATCHERS, MUTATING_RATE, Row, Workload};
use crate::report::{RowFigures, cell, mib, ms, thousands};

/// p99 of mutating calls at [`MUTATING_RATE`] must stay below this.
const MUTATING_P99_TARGET: Duration = Duration::from_millis(25);
/// A full list of [`LIST_TARGET_PODS`] pods must take less than this.
const LIST_TARGET: Duration = Duration::from_secs(1);
/// The pod count the list target is stated for.
const LIST_TARGET_PODS: u64 = 10_000;
/// RSS the idle watchers may add, in bytes (50 MB).
const WATCHERS_RSS_TARGET: i64 = 50_000_000;

/// Everything one run measured.
pub struct Run<'a> {
    /// Whether rows ran a tenth of their operations.
    pub quick: bool,
    /// The server's `gitVersion`, if `/version` answered.
    pub version: Option<String>,
    /// The rows that ran, in order.
    pub rows: &'a [Row],
    /// One report per level, in the order they ran.
    pub levels: &'a [LevelReport],
    /// 1-minute load average before and after the run.
    pub load: (Option<f64>, Option<f64>),
}

/// What one level (a fresh server with `objects` ConfigMaps and `objects` Pods) measured.
pub struct LevelReport {
    /// Objects of each kind preloaded.
    pub objects: u64,
    /// Time the preload took.
    pub preload: Duration,
    /// Server RSS after the preload, before any row, in bytes.
    pub rss_idle: u64,
    /// One entry per row run.
    pub rows: Vec<RowReport>,
}

/// One row of one level.
pub struct RowReport {
    /// The row.
    pub row: Row,
    /// Its figures, or the error that stopped it.
    pub outcome: Result<RowFigures, String>,
    /// The first failed operation's error, if any failed.
    pub first_error: Option<String>,
    /// For the idle-watchers row: RSS added by the open watchers, in bytes.
    pub rss_added: Option<i64>,
}

impl LevelReport {
    fn row(&self, row: &Row) -> Option<&RowReport> {
        self.rows.iter().find(|r| r.row == *row)
    }

    fn figures(&self, row: &Row) -> Option<&Result<RowFigures, String>> {
        self.row(row).map(|r| &r.outcome)
    }

    fn label(&self) -> String {
        short(self.objects)
    }
}

/// `10000` as `10k`.
fn short(n: u64) -> String {
    if n >= 1000 && n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

/// Prints the report to stdout.
pub fn print(run: &Run<'_>) {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = |l: Option<f64>| l.map_or("?".into(), |l| format!("{l:.2}"));
    println!(
        "## cairn-bench api: cairn {}, 1 node, {} run, {cpus} CPUs shared by client and server, \
         load average {} before / {} after\n",
        run.version.as_deref().unwrap_or("(version unknown)"),
        if run.quick { "quick" } else { "full" },
        load(run.load.0),
        load(run.load.1),
    );
    println!(
        "Columns per level: N ConfigMaps and N Pods stored in namespace `default` \
         (N = {}).\n",
        run.levels
            .iter()
            .map(|l| thousands(l.objects as f64))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let mut header = String::from("| row |");
    let mut align = String::from("|---|");
    for what in ["ops/s", "p50/p99 (ms)", "RSS end/max (MiB)"] {
        for l in run.levels {
            header.push_str(&format!(" {what} {} |", l.label()));
            align.push_str("---:|");
        }
    }
    println!("{header}\n{align}");
    for row in run.rows {
        let mut line = format!("| {} |", row.name());
        for l in run.levels {
            line.push_str(&format!(
                " {} |",
                cell(l.figures(row), |f| thousands(f.qps))
            ));
        }
        for l in run.levels {
            line.push_str(&format!(
                " {} |",
                cell(l.figures(row), |f| format!(
                    "{}/{}",
                    ms(f.latency.p50),
                    ms(f.latency.p99)
                ))
            ));
        }
        for l in run.levels {
            line.push_str(&format!(" {} |", cell(l.figures(row), |f| mib(f.rss))));
        }
        println!("{line}");
    }

    println!(
        "\nServer CPU (user + system, from /proc/PID/stat) per successful operation and as % of \
         one CPU, and bytes written to storage per operation (write_bytes of /proc/PID/io):\n"
    );
    let mut header = String::from("| row |");
    let mut align = String::from("|---|");
    for what in ["CPU µs/op", "CPU %", "bytes written/op"] {
        for l in run.levels {
            header.push_str(&format!(" {what} {} |", l.label()));
            align.push_str("---:|");
        }
    }
    println!("{header}\n{align}");
    for row in run.rows {
        let mut line = format!("| {} |", row.name());
        let columns: [fn(&RowFigures) -> String; 3] = [
            |f| format!("{:.0}", f.cpu_us_per_op()),
            |f| format!("{:.0}", f.cpu_percent()),
            |f| format!("{:.0}", f.bytes_per_op()),
        ];
        for show in columns {
            for l in run.levels {
                line.push_str(&format!(" {} |", cell(l.figures(row), show)));
            }
        }
        println!("{line}");
    }

    print_targets(run);

    println!("\nNotes:");
    for l in run.levels {
        println!(
            "- {}: preload of {} ConfigMaps and {} Pods took {:.1} s ({} objects/s); RSS after it {} MiB",
            l.label(),
            thousands(l.objects as f64),
            thousands(l.objects as f64),
            l.preload.as_secs_f64(),
            thousands(2.0 * l.objects as f64 / l.preload.as_secs_f64()),
            l.rss_idle >> 20,
        );
        for r in &l.rows {
            match &r.outcome {
                Err(e) => println!("- {} {}: failed: {e}", l.label(), r.row.name()),
                Ok(f) if f.errors > 0 || f.retries > 0 => println!(
                    "- {} {}: {} failed operations, {} conflicts retried{}",
                    l.label(),
                    r.row.name(),
                    f.errors,
                    f.retries,
                    r.first_error
                        .as_ref()
                        .map_or(String::new(), |e| format!("; first error: {e}")),
                ),
                Ok(_) => {}
            }
        }
    }
    for row in run.rows {
        let unit = match row.workload {
            Workload::Watch => "writes",
            Workload::IdleWatchers => "watchers",
            _ => "ops",
        };
        println!(
            "- {}: {}, {} {unit}",
            row.name(),
            row.shape(),
            thousands(row.ops(run.quick) as f64)
        );
    }
    println!(
        "- watch rows: ops/s counts events delivered (writes × watchers when none is lost), \
         latency from the start of the update's PUT to the event's arrival; \
         pods-watchers-{IDLE_WATCHERS}: latency is one pod update's delivery to each watcher, \
         ops/s is watchers over the row's time (not a rate); \
         mutating-{MUTATING_RATE}ps: latency from each request's scheduled start (no coordinated \
         omission); HTTP/2 over TLS with the admin client certificate throughout"
    );
}

fn print_targets(run: &Run<'_>) {
    println!("\nTargets (absolute: no k3s or kube-apiserver to compare with on this machine):\n");
    println!("| target | measured | met |");
    println!("|---|---|---|");

    let mutating = run.rows.iter().find(|r| r.workload == Workload::Mutating);
    let figures: Vec<_> = run
        .levels
        .iter()
        .filter_map(|l| {
            let f = l.figures(mutating?)?.as_ref().ok()?;
            Some((l.label(), f.latency.p99, f.errors, f.ok))
        })
        .collect();
    let measured = figures
        .iter()
        .map(|(label, p99, errors, ok)| {
            let failed = if *errors > 0 {
                format!(", {errors} of {} failed", errors + ok)
            } else {
                String::new()
            };
            format!("p99 {} ms at {label}{failed}", ms(*p99))
        })
        .collect::<Vec<_>>()
        .join("; ");
    let met = figures
        .iter()
        .all(|(_, p99, errors, _)| *p99 < MUTATING_P99_TARGET && *errors == 0);
    println!(
        "| (a) p99 of mutating calls at {MUTATING_RATE} writes/s, open loop, one node < {} ms | {} | {} |",
        MUTATING_P99_TARGET.as_millis(),
        or_dash(&measured),
        verdict(!figures.is_empty(), met)
    );

    let list_row = run.rows.iter().find(|r| {
        r.workload == Workload::ListAll && r.resource == crate::api_workloads::Resource::Pods
    });
    let at_target = run
        .levels
        .iter()
        .find(|l| l.objects == LIST_TARGET_PODS)
        .and_then(|l| l.figures(list_row?)?.as_ref().ok());
    let others: Vec<String> = run
        .levels
        .iter()
        .filter(|l| l.objects != LIST_TARGET_PODS)
        .filter_map(|l| {
            let f = l.figures(list_row?)?.as_ref().ok()?;
            Some(format!(
                "{} pods: median {} ms, slowest {} ms",
                thousands(l.objects as f64),
                ms(f.latency.p50),
                ms(f.latency.max)
            ))
        })
        .collect();
    let mut measured = at_target.map_or("no level of 10,000 pods ran".into(), |f| {
        format!(
            "median {} ms, slowest of {}: {} ms",
            ms(f.latency.p50),
            f.ok,
            ms(f.latency.max)
        )
    });
    if !others.is_empty() {
        measured = format!("{measured}; also {}", others.join("; "));
    }
    println!(
        "| (b) full list of {} pods as JSON < {} s | {} | {} |",
        thousands(LIST_TARGET_PODS as f64),
        LIST_TARGET.as_secs(),
        measured,
        verdict(
            at_target.is_some(),
            at_target.is_some_and(|f| f.latency.max < LIST_TARGET && f.errors == 0)
        )
    );

    let watchers_row = run
        .rows
        .iter()
        .find(|r| r.workload == Workload::IdleWatchers);
    let added: Vec<_> = run
        .levels
        .iter()
        .filter_map(|l| {
            let r = l.row(watchers_row?)?;
            let f = r.outcome.as_ref().ok()?;
            Some((l.label(), r.rss_added?, f.ok))
        })
        .collect();
    let measured = added
        .iter()
        .map(|(label, bytes, live)| {
            format!(
                "{:.1} MiB at {label} ({live} of {IDLE_WATCHERS} got the next event)",
                *bytes as f64 / f64::from(1 << 20)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let met = added
        .iter()
        .all(|(_, bytes, live)| *bytes < WATCHERS_RSS_TARGET && *live == IDLE_WATCHERS as u64);
    println!(
        "| (c) RSS added by {IDLE_WATCHERS} idle pod watchers (HTTP/2 streams) < 50 MB | {} | {} |",
        or_dash(&measured),
        verdict(!added.is_empty(), met)
    );
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "—" } else { s }
}

fn verdict(measured: bool, met: bool) -> &'static str {
    match (measured, met) {
        (false, _) => "not measured",
        (true, true) => "met",
        (true, false) => "**not met**",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_levels() {
        assert_eq!(short(10_000), "10k");
        assert_eq!(short(100_000), "100k");
        assert_eq!(short(2_500), "2500");
        assert_eq!(short(500), "500");
    }
}

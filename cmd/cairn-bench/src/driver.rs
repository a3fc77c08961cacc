//! The load drivers the `kv` and `api` rows share, and what they measure.
//!
//! [`closed_loop`]: a fixed number of clients, each keeping one request in flight and taking
//! operation numbers from a shared counter until the row's count is done, so every target does the
//! same work. Latency runs from the request's start, which is right for throughput rows but hides
//! queueing when the server stalls (coordinated omission).
//!
//! [`open_loop`]: operations start on a fixed schedule whatever the server does, each as its own
//! task, and latency runs from the operation's *scheduled* time, so a stall shows up in the
//! latency of every request that should have been sent during it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::task::JoinSet;

use crate::stats::Latencies;

/// One operation; the future yields the number of retries (conflicts) it needed.
pub type Op = Pin<Box<dyn Future<Output = Result<u32>> + Send>>;

/// What running a row measured.
#[derive(Debug, Default)]
pub struct Measured {
    /// Operations that succeeded.
    pub ok: u64,
    /// Operations that failed (error or timeout).
    pub errors: u64,
    /// Retries after conflicts, zero for rows without compare-and-swap.
    pub retries: u64,
    /// Wall time of the row.
    pub elapsed: Duration,
    /// Latency of each successful operation.
    pub latencies: Latencies,
    /// The first error seen, for the report's notes.
    pub first_error: Option<String>,
}

impl Measured {
    /// Successful operations per second.
    pub fn qps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    /// Counts one operation's outcome; `latency` is recorded only for a success.
    fn record(&mut self, outcome: Result<u32>, latency: Duration) {
        match outcome {
            Ok(retries) => {
                self.latencies.record(latency);
                self.ok += 1;
                self.retries += u64::from(retries);
            }
            Err(e) => {
                self.errors += 1;
                if self.first_error.is_none() {
                    self.first_error = Some(format!("{e:#}"));
                }
            }
        }
    }

    /// Adds another task's share of the same row.
    fn merge(&mut self, other: Measured) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.retries += other.retries;
        self.latencies.merge(other.latencies);
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Runs `ops` operations with one client task per handle, each one request at a time; client `c`
/// passes `handles[c]` (a clone) to every operation it runs.
pub async fn closed_loop<H, F>(handles: Vec<H>, ops: u64, op: F) -> Result<Measured>
where
    H: Clone + Send + 'static,
    F: Fn(H, u64) -> Op + Send + Sync + 'static,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for handle in handles {
        let (op, next) = (op.clone(), next.clone());
        tasks.spawn(async move {
            let mut m = Measured::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= ops {
                    return m;
                }
                let t = Instant::now();
                let outcome = op(handle.clone(), i).await;
                m.record(outcome, t.elapsed());
            }
        });
    }
    let mut total = Measured::default();
    while let Some(m) = tasks.join_next().await {
        total.merge(m.context("client task panicked")?);
    }
    total.elapsed = started.elapsed();
    if total.ok == 0 && ops > 0 {
        bail!(
            "all {ops} operations failed (first error: {})",
            total.first_error.as_deref().unwrap_or("none")
        );
    }
    Ok(total)
}

/// Starts operation `i` at `i / rate` seconds after the start, as its own task with
/// `handles[i mod handles]`, however many are still in flight; latency is measured from the
/// scheduled start. `elapsed` is the time until the last operation finished.
pub async fn open_loop<H, F>(handles: Vec<H>, rate: u64, ops: u64, op: F) -> Result<Measured>
where
    H: Clone + Send + 'static,
    F: Fn(H, u64) -> Op + Send + Sync + 'static,
{
    assert!(
        !handles.is_empty() && rate > 0,
        "an open loop needs handles and a rate"
    );
    let interval = Duration::from_secs(1).as_nanos() as f64 / rate as f64;
    let started = tokio::time::Instant::now();
    let mut tasks = JoinSet::new();
    let mut total = Measured::default();
    for i in 0..ops {
        let scheduled = started + Duration::from_nanos((i as f64 * interval) as u64);
        tokio::time::sleep_until(scheduled).await;
        let fut = op(handles[(i % handles.len() as u64) as usize].clone(), i);
        tasks.spawn(async move {
            let outcome = fut.await;
            (outcome, scheduled.elapsed())
        });
        // Collect what has finished so the set stays small.
        while let Some(done) = tasks.try_join_next() {
            let (outcome, latency) = done.context("operation task panicked")?;
            total.record(outcome, latency);
        }
    }
    while let Some(done) = tasks.join_next().await {
        let (outcome, latency) = done.context("operation task panicked")?;
        total.record(outcome, latency);
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn closed_loop_runs_every_operation_once() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = seen.clone();
        let m = closed_loop(vec![(); 4], 100, move |(), i| {
            let record = record.clone();
            Box::pin(async move {
                record.lock().unwrap().push(i);
                if i % 10 == 0 {
                    bail!("op {i} fails")
                }
                Ok(1)
            })
        })
        .await
        .unwrap();
        let mut seen = seen.lock().unwrap().clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
        assert_eq!((m.ok, m.errors, m.retries), (90, 10, 90));
        assert!(m.first_error.unwrap().starts_with("op "));
    }

    #[tokio::test]
    async fn open_loop_does_not_wait_for_slow_operations() {
        // Every operation takes 50 ms; at 100/s, one after the other would take 500 ms.
        let m = open_loop(vec![()], 100, 10, |(), _| {
            Box::pin(async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok(0)
            })
        })
        .await
        .unwrap();
        assert_eq!(m.ok, 10);
        assert!(m.elapsed < Duration::from_millis(400), "{:?}", m.elapsed);
        assert!(m.latencies.summary().p50 >= Duration::from_millis(50));
    }
}

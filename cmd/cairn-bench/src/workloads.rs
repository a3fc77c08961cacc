//! The rows of the `kv` benchmark and the load generators that run them.
//!
//! Most rows are closed-loop ([`driver::closed_loop`]): `clients` tasks each keep one request in
//! flight until the row's fixed count is done, so every target does the same work. The watch row
//! is open-loop instead: one writer at a modest fixed rate, so the figure is propagation latency
//! rather than queueing.
//!
//! Keys are 8 bytes and values 256 bytes. Rows use disjoint key prefixes: `k` for put and range
//! (a keyspace of [`KEYSPACE`], preloaded so every Get finds its key), `t` for the
//! compare-and-swap row and `w/` for the watched keys.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use etcd_client::{
    Compare, CompareOp, EventType, GetOptions, KvClient, Txn, TxnOp, TxnOpResponse, WatchOptions,
};
use rand::{Rng, RngCore};

use crate::connections::{Pool, connect};
use crate::driver::{self, Measured, Op};
use crate::stats::Latencies;

/// Distinct keys the put and range rows use.
pub const KEYSPACE: u64 = 10_000;
/// Distinct keys of the compare-and-swap row.
const CAS_KEYS: u64 = 1_000;
/// Value size in bytes.
const VALUE_SIZE: usize = 256;
/// Clients that preload keys (not measured).
const PRELOAD_CLIENTS: usize = 64;
/// Writes per second in the watch row.
const WATCH_RATE: u64 = 500;
/// How long the watcher waits for an event before giving up on the rest.
const WATCH_EVENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Retries of one compare-and-swap before the update counts as failed.
const CAS_MAX_RETRIES: u32 = 100;

/// What a row does.
#[derive(Debug, Clone, Copy)]
pub enum Workload {
    /// Put a random key of the keyspace.
    Put {
        /// Concurrent clients.
        clients: usize,
    },
    /// Get one random key of the keyspace.
    Range {
        /// Concurrent clients.
        clients: usize,
        /// Linearizable (through the leader's read index) or serializable (member-local).
        linearizable: bool,
    },
    /// Kubernetes' `GuaranteedUpdate`: Get a key, then
    /// `Txn(If mod_revision == R Then Put Else Get)`, retrying with the revision the Else branch
    /// returned until it succeeds. One operation is one successful update.
    CasTxn {
        /// Concurrent clients.
        clients: usize,
    },
    /// One watcher on a prefix and one writer; latency from before the Put to the event's arrival.
    WatchLatency,
}

/// One line of the report.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    /// Name used by `--rows` and in the table.
    pub name: &'static str,
    /// What the row runs.
    pub workload: Workload,
    /// Operations in a full run; `--quick` takes a tenth.
    pub ops: u64,
}

/// Every row, in the order they run.
pub const ROWS: &[Row] = &[
    row("put-1", Workload::Put { clients: 1 }, 10_000),
    row("put-64", Workload::Put { clients: 64 }, 100_000),
    row("put-1000", Workload::Put { clients: 1000 }, 100_000),
    row("range-lin-1", range(1, true), 10_000),
    row("range-ser-1", range(1, false), 10_000),
    row("range-lin-64", range(64, true), 100_000),
    row("range-ser-64", range(64, false), 100_000),
    row("txn-cas-64", Workload::CasTxn { clients: 64 }, 20_000),
    row("watch-latency", Workload::WatchLatency, 3_000),
];

/// The row whose put load the under-load fsync figure is taken during.
pub const FSYNC_LOAD_ROW: &str = "put-64";

const fn row(name: &'static str, workload: Workload, ops: u64) -> Row {
    Row {
        name,
        workload,
        ops,
    }
}

const fn range(clients: usize, linearizable: bool) -> Workload {
    Workload::Range {
        clients,
        linearizable,
    }
}

impl Row {
    /// Operations to run: all, or a tenth with `quick`.
    pub fn ops(&self, quick: bool) -> u64 {
        if quick { self.ops / 10 } else { self.ops }
    }

    /// A short description of clients and connections for the report.
    pub fn shape(&self) -> String {
        match self.workload {
            Workload::Put { clients }
            | Workload::Range { clients, .. }
            | Workload::CasTxn { clients } => {
                let conns = Pool::connections_for(clients);
                format!(
                    "{clients} client{} / {conns} connection{}",
                    plural(clients),
                    plural(conns)
                )
            }
            Workload::WatchLatency => format!("1 watcher + 1 writer at {WATCH_RATE}/s"),
        }
    }
}

/// Writes every key of the keyspace once, so range rows always find their key.
pub async fn preload(endpoints: &[String]) -> Result<()> {
    let value = random_value();
    let m = closed_loop(endpoints, PRELOAD_CLIENTS, KEYSPACE, move |mut kv, i| {
        let value = value.clone();
        Box::pin(async move {
            kv.put(kv_key(i), value, None).await?;
            Ok(0)
        })
    })
    .await?;
    ensure!(
        m.errors == 0,
        "{} of {KEYSPACE} preload puts failed",
        m.errors
    );
    Ok(())
}

/// Runs `ops` operations of `workload` against `endpoints`.
pub async fn run(workload: Workload, endpoints: &[String], ops: u64) -> Result<Measured> {
    match workload {
        Workload::Put { clients } => {
            let value = random_value();
            closed_loop(endpoints, clients, ops, move |mut kv, _| {
                let key = kv_key(rand::rng().random_range(0..KEYSPACE));
                let value = value.clone();
                Box::pin(async move {
                    kv.put(key, value, None).await?;
                    Ok(0)
                })
            })
            .await
        }
        Workload::Range {
            clients,
            linearizable,
        } => {
            closed_loop(endpoints, clients, ops, move |mut kv, _| {
                let key = kv_key(rand::rng().random_range(0..KEYSPACE));
                let options = (!linearizable).then(|| GetOptions::new().with_serializable());
                Box::pin(async move {
                    let resp = kv.get(key, options).await?;
                    ensure!(resp.kvs().len() == 1, "key missing");
                    Ok(0)
                })
            })
            .await
        }
        Workload::CasTxn { clients } => {
            let value = random_value();
            let preload_value = value.clone();
            let m = closed_loop(endpoints, clients, CAS_KEYS, move |mut kv, i| {
                let value = preload_value.clone();
                Box::pin(async move {
                    kv.put(cas_key(i), value, None).await?;
                    Ok(0)
                })
            })
            .await?;
            ensure!(
                m.errors == 0,
                "{} of {CAS_KEYS} CAS preload puts failed",
                m.errors
            );
            closed_loop(endpoints, clients, ops, move |kv, _| {
                let key = cas_key(rand::rng().random_range(0..CAS_KEYS));
                Box::pin(guaranteed_update(kv, key, value.clone()))
            })
            .await
        }
        Workload::WatchLatency => watch_latency(endpoints, ops).await,
    }
}

/// Runs `ops` operations with `clients` tasks over a [`Pool`] of connections to `endpoints`.
async fn closed_loop<F>(endpoints: &[String], clients: usize, ops: u64, op: F) -> Result<Measured>
where
    F: Fn(KvClient, u64) -> Op + Send + Sync + 'static,
{
    let pool = Pool::connect(endpoints, clients).await?;
    let handles = (0..clients).map(|c| pool.kv(c)).collect();
    driver::closed_loop(handles, ops, op).await
}

/// Kubernetes' optimistic update of one object; yields the number of conflicts it retried.
async fn guaranteed_update(mut kv: KvClient, key: Vec<u8>, value: Vec<u8>) -> Result<u32> {
    let current = kv.get(key.clone(), None).await?;
    let mut revision = current.kvs().first().map_or(0, |kv| kv.mod_revision());
    for retries in 0..=CAS_MAX_RETRIES {
        let txn = Txn::new()
            .when([Compare::mod_revision(
                key.clone(),
                CompareOp::Equal,
                revision,
            )])
            .and_then([TxnOp::put(key.clone(), value.clone(), None)])
            .or_else([TxnOp::get(key.clone(), None)]);
        let resp = kv.txn(txn).await?;
        if resp.succeeded() {
            return Ok(retries);
        }
        revision = match resp.op_responses().first() {
            Some(TxnOpResponse::Get(get)) => get.kvs().first().map_or(0, |kv| kv.mod_revision()),
            other => bail!("unexpected Else response {other:?}"),
        };
    }
    bail!("gave up after {CAS_MAX_RETRIES} conflicts")
}

/// One watcher on `w/` and one writer on another connection to the same member, writing at
/// [`WATCH_RATE`]; each value carries its send time, taken just before the Put.
async fn watch_latency(endpoints: &[String], samples: u64) -> Result<Measured> {
    let endpoint = &endpoints[0];
    let mut watcher = connect(endpoint).await?;
    let mut writer = connect(endpoint).await?.kv_client();
    let mut stream = watcher
        .watch("w/", Some(WatchOptions::new().with_prefix()))
        .await
        .context("creating the watch")?;
    let created = stream.message().await?.context("watch stream closed")?;
    ensure!(
        created.created(),
        "first watch response was not the creation"
    );

    let base = Instant::now();
    let reader = tokio::spawn(async move {
        let mut latencies = Latencies::default();
        while (latencies.len() as u64) < samples {
            let Ok(Ok(Some(resp))) =
                tokio::time::timeout(WATCH_EVENT_TIMEOUT, stream.message()).await
            else {
                break;
            };
            let arrived = base.elapsed();
            for event in resp.events() {
                let Some(kv) = event.kv() else { continue };
                if event.event_type() != EventType::Put || kv.value().len() < 8 {
                    continue;
                }
                let sent = u64::from_le_bytes(kv.value()[..8].try_into().expect("8 bytes"));
                latencies.record(arrived.saturating_sub(Duration::from_nanos(sent)));
            }
        }
        latencies
    });

    let mut tick = tokio::time::interval(Duration::from_secs(1) / WATCH_RATE as u32);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut errors = 0;
    let started = Instant::now();
    for i in 0..samples {
        tick.tick().await;
        let mut value = random_value();
        let sent = u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        value[..8].copy_from_slice(&sent.to_le_bytes());
        if writer
            .put(format!("w/{:06}", i % 1_000_000), value, None)
            .await
            .is_err()
        {
            errors += 1;
        }
    }
    let latencies = reader.await.context("watcher task panicked")?;
    let elapsed = started.elapsed();
    let ok = latencies.len() as u64;
    Ok(Measured {
        ok,
        errors: errors.max(samples - ok),
        elapsed,
        latencies,
        ..Measured::default()
    })
}

/// Key `i` of the put/range keyspace: `k` and seven digits.
fn kv_key(i: u64) -> Vec<u8> {
    format!("k{i:07}").into_bytes()
}

/// Key `i` of the compare-and-swap keyspace: `t` and seven digits.
fn cas_key(i: u64) -> Vec<u8> {
    format!("t{i:07}").into_bytes()
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn random_value() -> Vec<u8> {
    let mut value = vec![0; VALUE_SIZE];
    rand::rng().fill_bytes(&mut value);
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_eight_bytes() {
        assert_eq!(kv_key(KEYSPACE - 1).len(), 8);
        assert_eq!(cas_key(CAS_KEYS - 1).len(), 8);
        assert_eq!(format!("w/{:06}", 999_999).len(), 8);
    }

    #[test]
    fn row_names_are_unique_and_include_the_fsync_row() {
        let mut names: Vec<_> = ROWS.iter().map(|r| r.name).collect();
        assert!(names.contains(&FSYNC_LOAD_ROW));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ROWS.len());
    }
}

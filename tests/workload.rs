//! The register workload: concurrent clients doing put / get / compare-and-swap on a few keys
//! through etcd-client, recording every operation for the linearizability checker.
//!
//! Rules from etcd's robustness tests (store notes §4.3): each client has one request
//! outstanding at a time, every written value is unique, and nothing is retried (a retried write
//! could apply twice and break the history). A request that times out or fails after it may
//! have been sent is recorded with an unknown outcome; one that failed to connect never reached a
//! server and is left out.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use etcd_client::{Client, Compare, CompareOp, Txn, TxnOp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::client::{connect_with_timeout, is_connect_error};
use crate::linearizability::{Expected, Op, OpResult, Operation};

/// Shape of the workload.
#[derive(Clone, Debug)]
pub struct WorkloadConfig {
    /// Concurrent clients; client `i` talks to `endpoints[i % endpoints.len()]`.
    pub clients: usize,
    /// Keys `<prefix>0 ..`.
    pub keys: usize,
    /// Key prefix.
    pub prefix: String,
    /// How long to run.
    pub duration: Duration,
    /// Per-request deadline; a request past it has an unknown outcome.
    pub request_timeout: Duration,
    /// Seed of the random choices (printed so a run can be repeated).
    pub seed: u64,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        Self {
            clients: 8,
            keys: 5,
            prefix: "lin/k".into(),
            duration: Duration::from_secs(20),
            request_timeout: Duration::from_secs(1),
            seed: rand::random(),
        }
    }
}

/// Counts over a recorded history.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Operations with a known result.
    pub ok: usize,
    /// Operations with an unknown outcome.
    pub unknown: usize,
    /// Successful compare-and-swaps.
    pub cas_succeeded: usize,
}

/// Counts the outcomes in `history`.
pub fn summarize(history: &[Operation]) -> Summary {
    let mut summary = Summary::default();
    for operation in history {
        match operation.result {
            OpResult::Unknown => summary.unknown += 1,
            OpResult::Cas {
                succeeded: true, ..
            } => {
                summary.ok += 1;
                summary.cas_succeeded += 1;
            }
            _ => summary.ok += 1,
        }
    }
    summary
}

/// Runs the workload against `endpoints` and returns the history of all clients.
pub async fn run(endpoints: Vec<String>, config: WorkloadConfig) -> Result<Vec<Operation>> {
    let mut tasks = Vec::new();
    for client in 0..config.clients {
        let endpoint = endpoints[client % endpoints.len()].clone();
        let config = config.clone();
        tasks.push(tokio::spawn(async move {
            run_client(client, endpoint, config).await
        }));
    }
    let mut history = Vec::new();
    for task in tasks {
        history.extend(task.await.context("workload client panicked")??);
    }
    Ok(history)
}

/// The last `(value, mod_revision)` a client saw for a key: what its next CAS compares against.
type Observed = (Option<String>, i64);

async fn run_client(id: usize, endpoint: String, config: WorkloadConfig) -> Result<Vec<Operation>> {
    let mut rng = StdRng::seed_from_u64(config.seed.wrapping_add(id as u64));
    let mut client = connect_with_timeout(&endpoint, config.request_timeout).await?;
    let mut observed: HashMap<String, Observed> = HashMap::new();
    let mut history = Vec::new();
    let start = Instant::now();
    let mut sequence = 0u64;
    while start.elapsed() < config.duration {
        sequence += 1;
        let key = format!("{}{}", config.prefix, rng.random_range(0..config.keys));
        let value = format!("c{id}.{sequence}");
        let op = match rng.random_range(0..10) {
            0..=3 => Op::Get,
            4..=6 => Op::Put { value },
            _ => {
                let (seen, revision) = observed.get(&key).cloned().unwrap_or((None, 0));
                let expected = match seen {
                    Some(seen) if rng.random_bool(0.5) => Expected::Value(seen),
                    _ => Expected::ModRevision(revision),
                };
                Op::Cas {
                    expected,
                    new: value,
                }
            }
        };
        let call_instant = Instant::now();
        let outcome =
            tokio::time::timeout(config.request_timeout, execute(&mut client, &key, &op)).await;
        let return_instant = Instant::now();
        let result = match outcome {
            Ok(Ok(result)) => result,
            Ok(Err(error)) if is_connect_error(&error) => {
                // Never sent: it certainly had no effect, so it is not part of the history.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            Ok(Err(_)) | Err(_) => OpResult::Unknown,
        };
        match (&op, &result) {
            (
                Op::Get,
                OpResult::Get {
                    value,
                    mod_revision,
                },
            ) => {
                observed.insert(key.clone(), (value.clone(), *mod_revision));
            }
            (Op::Put { value }, OpResult::Put { revision })
            | (
                Op::Cas { new: value, .. },
                OpResult::Cas {
                    succeeded: true,
                    revision,
                },
            ) => {
                observed.insert(key.clone(), (Some(value.clone()), *revision));
            }
            _ => {}
        }
        let failed = result == OpResult::Unknown;
        history.push(Operation {
            client: id,
            key,
            call_instant,
            return_instant,
            op,
            result,
        });
        if failed {
            // Not a retry (the next operation is a fresh random one): just no busy loop while a
            // member is down.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(history)
}

async fn execute(client: &mut Client, key: &str, op: &Op) -> Result<OpResult, etcd_client::Error> {
    Ok(match op {
        Op::Get => {
            let response = client.get(key, None).await?;
            match response.kvs().first() {
                Some(kv) => OpResult::Get {
                    value: Some(String::from_utf8_lossy(kv.value()).into_owned()),
                    mod_revision: kv.mod_revision(),
                },
                None => OpResult::Get {
                    value: None,
                    mod_revision: 0,
                },
            }
        }
        Op::Put { value } => {
            let response = client.put(key, value.as_str(), None).await?;
            OpResult::Put {
                revision: response.header().map_or(0, |h| h.revision()),
            }
        }
        Op::Cas { expected, new } => {
            let compare = match expected {
                Expected::ModRevision(revision) => {
                    Compare::mod_revision(key, CompareOp::Equal, *revision)
                }
                Expected::Value(value) => Compare::value(key, CompareOp::Equal, value.as_str()),
            };
            let txn = Txn::new()
                .when([compare])
                .and_then([TxnOp::put(key, new.as_str(), None)]);
            let response = client.txn(txn).await?;
            OpResult::Cas {
                succeeded: response.succeeded(),
                revision: response.header().map_or(0, |h| h.revision()),
            }
        }
    })
}

//! cairn-scheduler: where a pod should run. This crate's core is a pure function,
//! [`schedule`], of a cluster [`Snapshot`] and a pod: it runs upstream kube-scheduler's
//! default filter plugins (NodeUnschedulable, NodeName, TaintToleration, NodeAffinity,
//! NodePorts, NodeResourcesFit, PodTopologySpread, InterPodAffinity) and score plugins with
//! their weights, and returns the chosen node or, when none fits, upstream's reasons. No
//! IO, no async. The loop that watches, queues and binds through the API ([`run()`], in
//! `run.rs`) is the crate's only IO and calls the core.
//!
//! Like upstream, when the cluster has 100 nodes or more only
//! [`num_feasible_nodes_to_find`] feasible nodes are looked for, starting where the previous
//! search stopped (the snapshot keeps that index), so each pod costs a bounded amount.
//! Among nodes with the highest total score the one with the smallest hash of
//! (pod `namespace/name`, node name) wins: deterministic, yet a series of equal pods spreads.

pub mod filters;
pub mod incoming;
pub mod message;
pub mod queue;
pub mod resources;
pub mod run;
pub mod scores;
pub mod snapshot;
pub mod terms;

#[cfg(test)]
mod schedule_tests;
#[cfg(test)]
mod testing;

use k8s_openapi::api::core::v1::Pod;

pub use message::Unschedulable;
pub use run::{SCHEDULER_NAME, run};
pub use snapshot::{Snapshot, SnapshotError};

use filters::{Failure, PreFiltered};
use incoming::Incoming;
use snapshot::NodeInfo;

/// Below this many nodes every node is examined (upstream's `minFeasibleNodesToFind`).
const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// The adaptive percentage never drops below this.
const MIN_FEASIBLE_NODES_PERCENTAGE: usize = 5;

/// Where a pod goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The chosen node.
    pub node: String,
    /// Its weighted total score.
    pub score: i64,
    /// How many feasible nodes were scored.
    pub feasible: usize,
    /// How many nodes were filtered.
    pub examined: usize,
}

/// Upstream's `numFeasibleNodesToFind` with the adaptive percentage: all nodes below 100,
/// else `max(100, n × max(5, 50 − n/125) / 100)`.
pub fn num_feasible_nodes_to_find(nodes: usize) -> usize {
    if nodes < MIN_FEASIBLE_NODES_TO_FIND {
        return nodes;
    }
    let percentage = 50usize
        .saturating_sub(nodes / 125)
        .max(MIN_FEASIBLE_NODES_PERCENTAGE);
    (nodes * percentage / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// Picks a node for `pod`, or says why none fits. Advances the snapshot's search start by
/// the nodes examined (the only state it touches); the same snapshot state and pod always
/// give the same answer.
pub fn schedule(snapshot: &Snapshot, pod: &Pod) -> Result<Placement, Unschedulable> {
    let live = snapshot.live();
    let all = snapshot.all();
    let n = live.len();
    if n == 0 {
        return Err(Unschedulable {
            nodes: 0,
            reasons: Default::default(),
        });
    }
    let incoming = Incoming::new(pod);
    let pre = PreFiltered {
        spread: filters::pod_topology_spread::prefilter(&incoming, snapshot),
        affinity: filters::inter_pod_affinity::prefilter(&incoming, snapshot),
    };
    let to_find = num_feasible_nodes_to_find(n);
    let start = snapshot.start_index() % n;
    let mut feasible: Vec<&NodeInfo> = Vec::with_capacity(to_find);
    let mut failures: Vec<(&NodeInfo, Failure)> = Vec::new();
    let mut examined = 0;
    for k in 0..n {
        let node = &all[live[(start + k) % n]];
        examined += 1;
        match filters::run(&incoming, &pre, node) {
            Ok(()) => {
                feasible.push(node);
                if feasible.len() >= to_find {
                    break;
                }
            }
            Err(failure) => failures.push((node, failure)),
        }
    }
    snapshot.advance_start(examined);
    if feasible.is_empty() {
        let mut err = Unschedulable {
            nodes: n,
            reasons: Default::default(),
        };
        for (node, failure) in failures {
            failure.reasons(node, &incoming, |r| err.add(r));
        }
        return Err(err);
    }
    let totals = if feasible.len() == 1 {
        vec![0]
    } else {
        scores::total(&incoming, snapshot, &feasible)
    };
    // Highest score wins; among equal scores the smallest tie hash. One pass, and a node's
    // hash is computed only when its score reaches the best so far.
    let mut best: Option<(&NodeInfo, i64, u64)> = None;
    for (&node, &score) in feasible.iter().zip(&totals) {
        if best.is_some_and(|(_, s, _)| score < s) {
            continue;
        }
        let h = tie_hash(&incoming.key, &node.name);
        if best.is_none_or(|(_, s, bh)| score > s || h < bh) {
            best = Some((node, score, h));
        }
    }
    let best = best
        .map(|(node, score, _)| (node.name.clone(), score))
        .unwrap_or_default();
    Ok(Placement {
        node: best.0,
        score: best.1,
        feasible: feasible.len(),
        examined,
    })
}

/// FNV-1a of the pod key and node name: a fixed, seedless hash so that ties break the same
/// way in every process.
fn tie_hash(pod: &str, node: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in pod.bytes().chain([0]).chain(node.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

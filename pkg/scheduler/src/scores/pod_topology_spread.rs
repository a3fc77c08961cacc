//! PodTopologySpread (score, weight 2): for the pod's `ScheduleAnyway` constraints, or the
//! system defaults (`hostname` maxSkew 3, `zone` maxSkew 5) when it has none, nodes whose
//! domains hold fewer matching pods score higher. Each constraint adds `count × ln(domains +
//! 2) + maxSkew − 1`; the sums are inverted into 0–100 as upstream does. Domain counts other
//! than the hostname's span every node whose domain a candidate shares; hostname counts are
//! the candidate's own pods.

use std::collections::HashMap;

use super::MAX_NODE_SCORE;
use crate::filters::pod_topology_spread::includes;
use crate::incoming::{Incoming, LABEL_HOSTNAME, SpreadConstraint};
use crate::snapshot::{NodeInfo, Snapshot};

fn matching_pods(c: &SpreadConstraint, incoming: &Incoming<'_>, node: &NodeInfo) -> i64 {
    node.pods
        .iter()
        .filter(|p| c.counts(&p.pod, incoming.namespace))
        .count() as i64
}

/// Scores `nodes` into `out`; false when the pod has no soft constraints.
pub fn score(
    incoming: &Incoming<'_>,
    snapshot: &Snapshot,
    nodes: &[&NodeInfo],
    out: &mut [i64],
) -> bool {
    let soft: Vec<&SpreadConstraint> = incoming.spread.iter().filter(|c| !c.hard).collect();
    if soft.is_empty() {
        return false;
    }
    let require_all = !incoming.spread_system_defaulted;
    let has_all = |node: &NodeInfo| {
        let labels = node.labels();
        soft.iter().all(|c| labels.contains_key(&c.topology_key))
    };
    let mut ignored = vec![false; nodes.len()];
    let mut counts: Vec<HashMap<&str, i64>> = vec![HashMap::new(); soft.len()];
    for (i, node) in nodes.iter().enumerate() {
        if require_all && !has_all(node) {
            ignored[i] = true;
            continue;
        }
        for (c, counts) in soft.iter().zip(counts.iter_mut()) {
            if c.topology_key == LABEL_HOSTNAME {
                continue;
            }
            if let Some(v) = node.labels().get(&c.topology_key) {
                counts.entry(v.as_str()).or_insert(0);
            }
        }
    }
    let candidates = ignored.iter().filter(|i| !**i).count();
    let weights: Vec<f64> = soft
        .iter()
        .zip(&counts)
        .map(|(c, counts)| {
            let size = if c.topology_key == LABEL_HOSTNAME {
                candidates
            } else {
                counts.len()
            };
            ((size + 2) as f64).ln()
        })
        .collect();
    if counts.iter().any(|c| !c.is_empty()) {
        for node in snapshot.nodes() {
            if require_all && !has_all(node) {
                continue;
            }
            let mut affinity_ok = None;
            for (c, counts) in soft.iter().zip(counts.iter_mut()) {
                let Some(v) = node.labels().get(&c.topology_key) else {
                    continue;
                };
                let Some(count) = counts.get_mut(v.as_str()) else {
                    continue;
                };
                if includes(c, incoming, node, &mut affinity_ok) {
                    *count += matching_pods(c, incoming, node);
                }
            }
        }
    }
    for (i, node) in nodes.iter().enumerate() {
        if ignored[i] {
            continue;
        }
        let mut sum = 0f64;
        for ((c, counts), w) in soft.iter().zip(&counts).zip(&weights) {
            let Some(v) = node.labels().get(&c.topology_key) else {
                continue;
            };
            let count = if c.topology_key == LABEL_HOSTNAME {
                matching_pods(c, incoming, node)
            } else {
                counts.get(v.as_str()).copied().unwrap_or(0)
            };
            sum += count as f64 * w + (c.max_skew - 1) as f64;
        }
        out[i] = sum.round() as i64;
    }
    // Normalize: fewer is better; ignored nodes get 0.
    let (mut min, mut max) = (i64::MAX, 0i64);
    for (s, ignored) in out.iter().zip(&ignored) {
        if !ignored {
            min = min.min(*s);
            max = max.max(*s);
        }
    }
    for (s, ignored) in out.iter_mut().zip(&ignored) {
        *s = if *ignored {
            0
        } else if max == 0 {
            MAX_NODE_SCORE
        } else {
            MAX_NODE_SCORE * (max + min - *s) / max
        };
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{labelled_pod, node_with_labels, owned, snapshot_with};

    #[test]
    fn system_defaults_spread_owned_pods_across_hosts() {
        let host = |n: &'static str| node_with_labels(n, &[(LABEL_HOSTNAME, n)]);
        let s = snapshot_with(
            vec![host("a"), host("b"), host("c")],
            vec![
                ("a", owned(labelled_pod("x", &[("app", "web")]))),
                ("a", owned(labelled_pod("y", &[("app", "web")]))),
                ("b", owned(labelled_pod("z", &[("app", "web")]))),
            ],
        );
        let p = owned(labelled_pod("p", &[("app", "web")]));
        let incoming = Incoming::new(&p);
        assert!(incoming.spread_system_defaulted);
        let nodes: Vec<&NodeInfo> = s.nodes().collect();
        let mut out = [0; 3];
        assert!(score(&incoming, &s, &nodes, &mut out));
        assert!(out[2] > out[1] && out[1] > out[0], "{out:?}");
        // A pod without owner is not spread by default.
        let lone = labelled_pod("q", &[("app", "web")]);
        assert!(!score(&Incoming::new(&lone), &s, &nodes, &mut out));
    }
}

//! The score plugins, one file each, and how their scores combine: each plugin scores the
//! feasible nodes, normalizes to 0–100 as upstream does, and the weighted sum is the node's
//! total (weights from upstream's default profile).

pub mod balanced_allocation;
pub mod image_locality;
pub mod inter_pod_affinity;
pub mod least_allocated;
pub mod node_affinity;
pub mod pod_topology_spread;
pub mod taint_toleration;

use crate::incoming::Incoming;
use crate::snapshot::{NodeInfo, Snapshot};

/// The highest score a plugin gives a node.
pub const MAX_NODE_SCORE: i64 = 100;

/// Upstream's `DefaultNormalizeScore`: scale so the highest becomes 100 (all 0 stay 0), and
/// with `reverse` subtract from 100 (all 0 become 100).
pub fn default_normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    for s in scores.iter_mut() {
        if max == 0 {
            if reverse {
                *s = MAX_NODE_SCORE;
            }
            continue;
        }
        *s = MAX_NODE_SCORE * *s / max;
        if reverse {
            *s = MAX_NODE_SCORE - *s;
        }
    }
}

/// The weighted total of every plugin's normalized score for each of `nodes`.
pub fn total(incoming: &Incoming<'_>, snapshot: &Snapshot, nodes: &[&NodeInfo]) -> Vec<i64> {
    let mut totals = vec![0i64; nodes.len()];
    let mut scores = vec![0i64; nodes.len()];
    let mut add = |weight: i64, scores: &[i64]| {
        for (t, s) in totals.iter_mut().zip(scores) {
            *t += weight * s;
        }
    };
    if taint_toleration::score(incoming, nodes, &mut scores) {
        add(3, &scores);
    }
    if node_affinity::score(incoming, nodes, &mut scores) {
        add(2, &scores);
    }
    if pod_topology_spread::score(incoming, snapshot, nodes, &mut scores) {
        add(2, &scores);
    }
    if inter_pod_affinity::score(incoming, snapshot, nodes, &mut scores) {
        add(2, &scores);
    }
    least_allocated::score(incoming, nodes, &mut scores);
    add(1, &scores);
    if balanced_allocation::score(incoming, nodes, &mut scores) {
        add(1, &scores);
    }
    image_locality::score(incoming, snapshot, nodes, &mut scores);
    add(1, &scores);
    totals
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_normalize_table() {
        let cases: [(&[i64], bool, &[i64]); 4] = [
            (&[0, 0], false, &[0, 0]),
            (&[0, 0], true, &[100, 100]),
            (&[1, 2, 4], false, &[25, 50, 100]),
            (&[1, 2, 4], true, &[75, 50, 0]),
        ];
        for (input, reverse, want) in cases {
            let mut s = input.to_vec();
            default_normalize(&mut s, reverse);
            assert_eq!(s, want);
        }
    }
}

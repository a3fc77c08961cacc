//! NodeResourcesFit's LeastAllocated score (weight 1): for cpu and memory (weight 1 each),
//! `(allocatable − requested) × 100 / allocatable` after placing the pod, averaged. Requests
//! here use upstream's defaults for containers that request nothing (100m cpu, 200Mi memory)
//! so that best-effort pods still spread. Already 0–100: no normalization.

use super::MAX_NODE_SCORE;
use crate::incoming::Incoming;
use crate::snapshot::NodeInfo;

fn least_requested(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

/// Scores `nodes` into `out`.
pub fn score(incoming: &Incoming<'_>, nodes: &[&NodeInfo], out: &mut [i64]) {
    let r = &incoming.requests;
    for (node, s) in nodes.iter().zip(out.iter_mut()) {
        let resources = [
            (
                node.allocatable.milli_cpu,
                node.non_zero_milli_cpu + r.non_zero_milli_cpu,
            ),
            (
                node.allocatable.memory,
                node.non_zero_memory + r.non_zero_memory,
            ),
        ];
        let (mut sum, mut weights) = (0, 0);
        for (alloc, req) in resources {
            if alloc == 0 {
                continue;
            }
            sum += least_requested(req, alloc);
            weights += 1;
        }
        *s = if weights == 0 { 0 } else { sum / weights };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod, pod_requesting};

    #[test]
    fn emptier_nodes_score_higher() {
        let big = node("big", "4", "8Gi");
        let small = node("small", "2", "4Gi");
        let p = pod_requesting("p", "1", "2Gi");
        let mut out = [0; 2];
        score(&Incoming::new(&p), &[&big, &small], &mut out);
        // big: cpu 75, memory 75; small: cpu 50, memory 50.
        assert_eq!(out, [75, 50]);
        // A best-effort pod counts as 100m and 200Mi.
        let q = pod("q");
        score(&Incoming::new(&q), &[&big, &small], &mut out);
        assert_eq!(out, [(97 + 97) / 2, (95 + 95) / 2]);
    }
}

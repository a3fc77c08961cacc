//! NodeResourcesBalancedAllocation (score, weight 1): nodes whose cpu and memory would be
//! used in similar fractions after placing the pod score higher: `(1 − std) × 100` of the
//! fractions (capped at 1). Uses exact requests; pods requesting nothing are skipped, as
//! upstream skips best-effort pods.

use super::MAX_NODE_SCORE;
use crate::incoming::Incoming;
use crate::snapshot::NodeInfo;

/// Scores `nodes` into `out`; false when the pod requests neither cpu nor memory.
pub fn score(incoming: &Incoming<'_>, nodes: &[&NodeInfo], out: &mut [i64]) -> bool {
    let r = &incoming.requests.exact;
    if r.milli_cpu == 0 && r.memory == 0 {
        return false;
    }
    for (node, s) in nodes.iter().zip(out.iter_mut()) {
        let resources = [
            (
                node.allocatable.milli_cpu,
                node.requested.milli_cpu + r.milli_cpu,
            ),
            (node.allocatable.memory, node.requested.memory + r.memory),
        ];
        let mut fractions = [0f64; 2];
        let mut n = 0;
        for (alloc, req) in resources {
            if alloc == 0 {
                continue;
            }
            fractions[n] = (req as f64 / alloc as f64).min(1.0);
            n += 1;
        }
        let std = if n == 2 {
            ((fractions[0] - fractions[1]) / 2.0).abs()
        } else {
            0.0
        };
        *s = ((1.0 - std) * MAX_NODE_SCORE as f64) as i64;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod, pod_requesting};

    #[test]
    fn balanced_use_scores_higher() {
        let a = node("a", "4", "4Gi");
        let b = node("b", "4", "16Gi");
        let p = pod_requesting("p", "2", "2Gi");
        let mut out = [0; 2];
        assert!(score(&Incoming::new(&p), &[&a, &b], &mut out));
        // a: 0.5 and 0.5 → 100; b: 0.5 and 0.125 → std 0.1875 → 81.
        assert_eq!(out, [100, 81]);
        assert!(!score(&Incoming::new(&pod("q")), &[&a, &b], &mut out));
    }
}

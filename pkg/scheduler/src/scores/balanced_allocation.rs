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
    use crate::snapshot::Snapshot;
    use crate::testing::{node, pod, pod_requesting, snapshot_with};

    /// Node cpu, node memory, pods already there (cpu, memory), the pod (cpu, memory), score.
    type Case = (
        &'static str,
        &'static str,
        &'static [(&'static str, &'static str)],
        (&'static str, &'static str),
        i64,
    );

    #[test]
    fn balanced_use_scores_higher() {
        let cases: [Case; 7] = [
            // 0.5 and 0.5: perfectly balanced.
            ("4", "4Gi", &[], ("2", "2Gi"), 100),
            // 0.5 and 0.125: std 0.1875 → 81.
            ("4", "16Gi", &[], ("2", "2Gi"), 81),
            // cpu only: 0.25 and 0 → std 0.125 → 87.
            ("4", "4Gi", &[], ("1", "0"), 87),
            // Existing pods count: (1 + 1)/4 and (3 + 1)/8 → 0.5 and 0.5.
            ("4", "8Gi", &[("1", "3Gi")], ("1", "1Gi"), 100),
            // Existing pods tip the balance: (3 + 1)/4 = 1 and 1/8 → std 0.4375 → 56.
            ("4", "8Gi", &[("3", "0")], ("1", "1Gi"), 56),
            // Fractions are capped at 1: cpu 8/4 → 1, memory 0.5 → std 0.25 → 75.
            ("4", "8Gi", &[], ("8", "4Gi"), 75),
            // The most unbalanced: 1 and 0 → 50.
            ("1", "100Gi", &[], ("1", "0"), 50),
        ];
        for (cpu, memory, existing, (pod_cpu, pod_memory), want) in cases {
            let pods = existing
                .iter()
                .enumerate()
                .map(|(i, (c, m))| ("n", pod_requesting(&format!("e{i}"), c, m)))
                .collect();
            let s: Snapshot = snapshot_with(vec![node("n", cpu, memory)], pods);
            let nodes: Vec<&NodeInfo> = s.nodes().collect();
            let p = pod_requesting("p", pod_cpu, pod_memory);
            let mut out = [0];
            assert!(score(&Incoming::new(&p), &nodes, &mut out));
            assert_eq!(
                out[0], want,
                "node {cpu}/{memory} with {existing:?}, pod {pod_cpu}/{pod_memory}"
            );
        }
    }

    #[test]
    fn pods_requesting_nothing_are_not_scored() {
        let a = node("a", "4", "4Gi");
        let mut out = [0];
        assert!(!score(&Incoming::new(&pod("q")), &[&a], &mut out));
    }
}

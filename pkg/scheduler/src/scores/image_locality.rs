//! ImageLocality (score, weight 1): nodes that already hold the pod's images score higher,
//! each image's size scaled by the share of nodes holding it (so an image everywhere adds
//! little), the sum clamped between 23 MiB and 1000 MiB per container and mapped to 0–100.

use super::MAX_NODE_SCORE;
use crate::incoming::Incoming;
use crate::snapshot::{NodeInfo, Snapshot};

const MIB: i64 = 1024 * 1024;
const MIN_THRESHOLD: i64 = 23 * MIB;
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MIB;

/// Scores `nodes` into `out`.
pub fn score(incoming: &Incoming<'_>, snapshot: &Snapshot, nodes: &[&NodeInfo], out: &mut [i64]) {
    let total_nodes = snapshot.nodes().len().max(1) as f64;
    let max_threshold = MAX_CONTAINER_THRESHOLD * incoming.containers.max(1) as i64;
    for (node, s) in nodes.iter().zip(out.iter_mut()) {
        let mut sum: i64 = 0;
        for image in &incoming.images {
            if let Some(&size) = node.images.get(image) {
                let spread = snapshot.image(image).map_or(1, |i| i.nodes) as f64 / total_nodes;
                sum += (size as f64 * spread) as i64;
            }
        }
        let sum = sum.clamp(MIN_THRESHOLD, max_threshold);
        *s = MAX_NODE_SCORE * (sum - MIN_THRESHOLD) / (max_threshold - MIN_THRESHOLD);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node_with_image, pod_with_image, snapshot_with};

    #[test]
    fn nodes_with_the_image_score_higher() {
        let s = snapshot_with(
            vec![
                node_with_image("a", "registry/app:1", 500 * MIB),
                node_with_image("b", "other:1", 500 * MIB),
            ],
            vec![],
        );
        let p = pod_with_image("p", "registry/app:1");
        let nodes: Vec<&NodeInfo> = s.nodes().collect();
        let mut out = [0; 2];
        score(&Incoming::new(&p), &s, &nodes, &mut out);
        // 500 MiB × 1/2 nodes = 250 MiB → (250 − 23) × 100 / (1000 − 23) = 23.
        assert_eq!(out, [23, 0]);
    }
}

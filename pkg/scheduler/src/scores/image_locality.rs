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
    use crate::testing::{node, node_with_image, pod_with_image, snapshot_with};

    #[test]
    fn nodes_with_the_image_score_higher() {
        // (images on the first node, nodes in the cluster with the image, pod image, score)
        // Scores are for the first node; the others hold the image or not as given.
        let cases: [(&str, i64, usize, usize, &str, i64); 7] = [
            // 500 MiB × 1/2 nodes = 250 MiB → (250 − 23) × 100 / (1000 − 23) = 23.
            ("registry/app:1", 500, 1, 2, "registry/app:1", 23),
            // On every node the image counts fully: 500 → (500 − 23) × 100 / 977 = 48.
            ("registry/app:1", 500, 2, 2, "registry/app:1", 48),
            // Below the 23 MiB floor: 0.
            ("registry/app:1", 40, 1, 2, "registry/app:1", 0),
            // Above the 1000 MiB ceiling of one container: 100.
            ("registry/app:1", 4000, 2, 2, "registry/app:1", 100),
            // Another image: 0.
            ("other:1", 500, 1, 2, "registry/app:1", 0),
            // No tag means :latest on both sides.
            ("app:latest", 500, 1, 1, "app", 48),
            // A tag is not :latest.
            ("app:latest", 500, 1, 1, "app:2", 0),
        ];
        for (image, mib, holding, total, wanted, want) in cases {
            let nodes = (0..total)
                .map(|i| {
                    let name = format!("n{i}");
                    if i < holding {
                        node_with_image(&name, image, mib * MIB)
                    } else {
                        node(&name, "4", "8Gi")
                    }
                })
                .collect();
            let s = snapshot_with(nodes, vec![]);
            let p = pod_with_image("p", wanted);
            let nodes: Vec<&NodeInfo> = s.nodes().collect();
            let mut out = vec![0; nodes.len()];
            score(&Incoming::new(&p), &s, &nodes, &mut out);
            assert_eq!(
                out[0], want,
                "{image} of {mib} MiB on {holding}/{total} nodes, pod wants {wanted}"
            );
        }
    }

    #[test]
    fn the_ceiling_grows_with_the_containers() {
        let s = snapshot_with(vec![node_with_image("a", "big:1", 1500 * MIB)], vec![]);
        let mut p = pod_with_image("p", "big:1");
        let second = p.spec.as_ref().unwrap().containers[0].clone();
        p.spec
            .as_mut()
            .unwrap()
            .containers
            .push(k8s_openapi::api::core::v1::Container {
                name: "second".into(),
                image: Some("small:1".into()),
                ..second
            });
        let nodes: Vec<&NodeInfo> = s.nodes().collect();
        let mut out = [0];
        score(&Incoming::new(&p), &s, &nodes, &mut out);
        // 1500 MiB against a ceiling of 2 × 1000 MiB: (1500 − 23) × 100 / (2000 − 23) = 74.
        assert_eq!(out, [74]);
    }
}

//! InterPodAffinity (score, weight 2): per topology domain, the weights of the pod's
//! preferred affinity terms matching pods there, minus those of its preferred anti-affinity
//! terms; plus, symmetrically, existing pods' preferred (anti-)affinity and required affinity
//! (weight 1, upstream's `hardPodAffinityWeight`) selecting the pod. Min-max normalized to
//! 0–100. Only pods with affinity terms are visited unless the pod has preferred terms.

use std::collections::HashMap;

use super::MAX_NODE_SCORE;
use crate::incoming::Incoming;
use crate::snapshot::{NodeInfo, PodInfo, Snapshot};

/// Upstream's default `hardPodAffinityWeight`.
const HARD_POD_AFFINITY_WEIGHT: i64 = 1;

type Scores<'a> = HashMap<&'a str, HashMap<&'a str, i64>>;

fn add<'a>(scores: &mut Scores<'a>, node: &'a NodeInfo, key: &str, weight: i64) {
    if let Some((k, v)) = node.labels().get_key_value(key) {
        *scores.entry(k).or_default().entry(v).or_default() += weight;
    }
}

fn process<'a>(
    incoming: &Incoming<'_>,
    snapshot: &Snapshot,
    scores: &mut Scores<'a>,
    node: &'a NodeInfo,
    existing: &PodInfo,
) {
    let ns = snapshot.namespace_labels();
    for wt in &incoming.terms.preferred_affinity {
        if wt.term.matches(&existing.pod, ns) {
            add(scores, node, &wt.term.topology_key, wt.weight);
        }
    }
    for wt in &incoming.terms.preferred_anti_affinity {
        if wt.term.matches(&existing.pod, ns) {
            add(scores, node, &wt.term.topology_key, -wt.weight);
        }
    }
    for t in &existing.terms.required_affinity {
        if t.matches(incoming.pod, ns) {
            add(scores, node, &t.topology_key, HARD_POD_AFFINITY_WEIGHT);
        }
    }
    for wt in &existing.terms.preferred_affinity {
        if wt.term.matches(incoming.pod, ns) {
            add(scores, node, &wt.term.topology_key, wt.weight);
        }
    }
    for wt in &existing.terms.preferred_anti_affinity {
        if wt.term.matches(incoming.pod, ns) {
            add(scores, node, &wt.term.topology_key, -wt.weight);
        }
    }
}

/// Scores `nodes` into `out`; false when no term anywhere can contribute.
pub fn score(
    incoming: &Incoming<'_>,
    snapshot: &Snapshot,
    nodes: &[&NodeInfo],
    out: &mut [i64],
) -> bool {
    let terms = &incoming.terms;
    let has_preferred =
        !terms.preferred_affinity.is_empty() || !terms.preferred_anti_affinity.is_empty();
    if !has_preferred && !snapshot.has_pods_with_affinity() {
        return false;
    }
    let mut scores: Scores<'_> = HashMap::new();
    for node in snapshot.nodes() {
        if node.labels().is_empty() {
            continue;
        }
        if has_preferred {
            for existing in &node.pods {
                process(incoming, snapshot, &mut scores, node, existing);
            }
        } else {
            for &i in &node.pods_with_affinity {
                process(incoming, snapshot, &mut scores, node, &node.pods[i]);
            }
        }
    }
    if scores.is_empty() {
        return false;
    }
    for (node, s) in nodes.iter().zip(out.iter_mut()) {
        let labels = node.labels();
        *s = scores
            .iter()
            .filter_map(|(k, values)| labels.get(*k).and_then(|v| values.get(v.as_str())))
            .sum();
    }
    let min = out.iter().copied().min().unwrap_or(0);
    let max = out.iter().copied().max().unwrap_or(0);
    let diff = max - min;
    for s in out.iter_mut() {
        *s = if diff > 0 {
            (MAX_NODE_SCORE as f64 * ((*s - min) as f64 / diff as f64)) as i64
        } else {
            0
        };
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{labelled_pod, node_with_labels, preferred_pod_affinity, snapshot_with};

    #[test]
    fn preferred_affinity_and_anti_affinity_order_nodes() {
        let s = snapshot_with(
            vec![
                node_with_labels("a", &[("zone", "a")]),
                node_with_labels("b", &[("zone", "b")]),
                node_with_labels("c", &[("zone", "c")]),
            ],
            vec![
                ("a", labelled_pod("cache", &[("app", "cache")])),
                ("c", labelled_pod("noisy", &[("app", "noisy")])),
            ],
        );
        let mut p = labelled_pod("web", &[("app", "web")]);
        p.spec.as_mut().unwrap().affinity = Some(preferred_pod_affinity(
            &[(50, "zone", "app", "cache")],
            &[(50, "zone", "app", "noisy")],
        ));
        let nodes: Vec<&NodeInfo> = s.nodes().collect();
        let mut out = [0; 3];
        assert!(score(&Incoming::new(&p), &s, &nodes, &mut out));
        assert_eq!(out, [100, 50, 0]);
    }
}

//! NodeAffinity (score, weight 2): the sum of the weights of the pod's preferred node
//! affinity terms a node matches, normalized so the best node gets 100.

use super::default_normalize;
use crate::filters::node_affinity::term_matches;
use crate::incoming::Incoming;
use crate::snapshot::NodeInfo;

/// Scores `nodes` into `out`; false (no contribution) when the pod has no preferred terms.
pub fn score(incoming: &Incoming<'_>, nodes: &[&NodeInfo], out: &mut [i64]) -> bool {
    let preferred = incoming
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_deref()
        })
        .unwrap_or_default();
    if preferred.is_empty() {
        return false;
    }
    for (node, s) in nodes.iter().zip(out.iter_mut()) {
        *s = preferred
            .iter()
            .filter(|t| t.weight != 0 && term_matches(&t.preference, &node.name, node.labels()))
            .map(|t| i64::from(t.weight))
            .sum();
    }
    default_normalize(out, false);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node_with_labels, pod, preferred_node_affinity};

    #[test]
    fn matching_weights_add_up() {
        let a = node_with_labels("a", &[("disk", "ssd"), ("zone", "1")]);
        let b = node_with_labels("b", &[("disk", "ssd")]);
        let c = node_with_labels("c", &[]);
        let mut p = pod("p");
        p.spec.as_mut().unwrap().affinity = Some(preferred_node_affinity(&[
            (30, "disk", "ssd"),
            (10, "zone", "1"),
        ]));
        let mut out = [0; 3];
        assert!(score(&Incoming::new(&p), &[&a, &b, &c], &mut out));
        assert_eq!(out, [100, 75, 0]);
    }
}

//! PodTopologySpread (filter): for each `DoNotSchedule` constraint, placing the pod in the
//! node's domain must keep `matching pods in the domain + 1 (if the pod matches itself) −
//! the smallest count over all eligible domains` within `maxSkew`; the smallest count is 0
//! while fewer than `minDomains` domains exist. Domains and counts come from the nodes that
//! carry every constraint's topology key and pass the constraint's node inclusion policies
//! (`nodeAffinityPolicy` Honor and `nodeTaintsPolicy` Ignore by default), computed once per
//! pod by [`prefilter`].

use std::collections::HashMap;

use super::Failure;
use super::node_affinity::required_matches;
use super::taint_toleration::first_untolerated;
use crate::incoming::{Incoming, SpreadConstraint};
use crate::snapshot::{NodeInfo, Snapshot};
use crate::terms::labels;

/// Upstream's reason when a node lacks a topology key.
pub const REASON_MISSING_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";
/// Upstream's reason when the skew would be exceeded.
pub const REASON_SKEW: &str = "node(s) didn't match pod topology spread constraints";

/// Counts for one hard constraint.
#[derive(Debug)]
struct Counted<'a> {
    constraint: &'a SpreadConstraint,
    /// Matching pods per domain (topology value), every eligible domain present.
    counts: HashMap<&'a str, i64>,
    /// The smallest count, taking `minDomains` into account.
    min: i64,
    /// 1 when the incoming pod matches the constraint's selector.
    self_match: i64,
}

/// The hard constraints of the incoming pod with their cluster-wide counts.
#[derive(Debug, Default)]
pub struct FilterState<'a> {
    constraints: Vec<Counted<'a>>,
}

/// Whether a node passes a constraint's node inclusion policies.
pub fn includes(
    c: &SpreadConstraint,
    incoming: &Incoming<'_>,
    node: &NodeInfo,
    affinity_ok: &mut Option<bool>,
) -> bool {
    if c.honor_node_affinity
        && !*affinity_ok.get_or_insert_with(|| required_matches(incoming.pod, node))
    {
        return false;
    }
    !(c.honor_node_taints && first_untolerated(incoming.tolerations, &node.taints).is_some())
}

/// Counts matching pods per domain for the pod's `DoNotSchedule` constraints.
pub fn prefilter<'a>(incoming: &'a Incoming<'_>, snapshot: &'a Snapshot) -> FilterState<'a> {
    let hard: Vec<&SpreadConstraint> = incoming.spread.iter().filter(|c| c.hard).collect();
    if hard.is_empty() {
        return FilterState::default();
    }
    let mut counts: Vec<HashMap<&str, i64>> = vec![HashMap::new(); hard.len()];
    for node in snapshot.nodes() {
        let node_labels = node.labels();
        if !hard
            .iter()
            .all(|c| node_labels.contains_key(&c.topology_key))
        {
            continue;
        }
        let mut affinity_ok = None;
        for (c, counts) in hard.iter().zip(counts.iter_mut()) {
            if !includes(c, incoming, node, &mut affinity_ok) {
                continue;
            }
            let value = node_labels[&c.topology_key].as_str();
            let n = node
                .pods
                .iter()
                .filter(|p| c.counts(&p.pod, incoming.namespace))
                .count() as i64;
            *counts.entry(value).or_default() += n;
        }
    }
    let pod_labels = labels(incoming.pod);
    let constraints = hard
        .into_iter()
        .zip(counts)
        .map(|(constraint, counts)| {
            let min = if (counts.len() as i64) < constraint.min_domains {
                0
            } else {
                counts.values().copied().min().unwrap_or(i64::MAX)
            };
            let self_match = constraint
                .selector
                .as_ref()
                .is_some_and(|s| s.matches(pod_labels));
            Counted {
                constraint,
                counts,
                min,
                self_match: i64::from(self_match),
            }
        })
        .collect();
    FilterState { constraints }
}

/// Fails a node that lacks a topology key or whose domain would exceed a maxSkew.
pub fn filter(
    _incoming: &Incoming<'_>,
    state: &FilterState<'_>,
    node: &NodeInfo,
) -> Result<(), Failure> {
    let node_labels = node.labels();
    for c in &state.constraints {
        let Some(value) = node_labels.get(&c.constraint.topology_key) else {
            return Err(Failure::SpreadMissingLabel);
        };
        let matching = c.counts.get(value.as_str()).copied().unwrap_or(0);
        if matching.saturating_add(c.self_match).saturating_sub(c.min) > c.constraint.max_skew {
            return Err(Failure::SpreadSkew);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{labelled_pod, node_with_labels, snapshot_with, spread};

    fn zones() -> Vec<NodeInfo> {
        vec![
            node_with_labels("a1", &[("zone", "a")]),
            node_with_labels("a2", &[("zone", "a")]),
            node_with_labels("b1", &[("zone", "b")]),
            node_with_labels("nolabel", &[]),
        ]
    }

    #[test]
    fn skew_table() {
        // Zone a has 2 matching pods, zone b has 0; maxSkew 1.
        let snapshot = snapshot_with(
            zones(),
            vec![
                ("a1", labelled_pod("x", &[("app", "web")])),
                ("a2", labelled_pod("y", &[("app", "web")])),
                ("b1", labelled_pod("z", &[("app", "db")])),
            ],
        );
        let mut p = labelled_pod("p", &[("app", "web")]);
        p.spec.as_mut().unwrap().topology_spread_constraints = Some(vec![spread(
            "zone",
            1,
            "DoNotSchedule",
            &[("app", "web")],
            None,
        )]);
        let incoming = Incoming::new(&p);
        let state = prefilter(&incoming, &snapshot);
        let at = |n: &str| filter(&incoming, &state, snapshot.node(n).unwrap());
        assert_eq!(at("a1"), Err(Failure::SpreadSkew));
        assert_eq!(at("b1"), Ok(()));
        assert_eq!(at("nolabel"), Err(Failure::SpreadMissingLabel));
    }

    #[test]
    fn min_domains_counts_missing_domains_as_zero() {
        let snapshot = snapshot_with(
            zones(),
            vec![
                ("a1", labelled_pod("x", &[("app", "web")])),
                ("b1", labelled_pod("y", &[("app", "web")])),
            ],
        );
        let mut p = labelled_pod("p", &[("app", "web")]);
        p.spec.as_mut().unwrap().topology_spread_constraints = Some(vec![spread(
            "zone",
            1,
            "DoNotSchedule",
            &[("app", "web")],
            Some(3),
        )]);
        let incoming = Incoming::new(&p);
        let state = prefilter(&incoming, &snapshot);
        // Two domains < minDomains 3: the global minimum is 0, so 1 + 1 - 0 > 1 everywhere.
        assert_eq!(
            filter(&incoming, &state, snapshot.node("a2").unwrap()),
            Err(Failure::SpreadSkew)
        );
        assert_eq!(
            filter(&incoming, &state, snapshot.node("b1").unwrap()),
            Err(Failure::SpreadSkew)
        );
    }

    #[test]
    fn node_affinity_policy_excludes_unselected_nodes_from_domains() {
        let snapshot = snapshot_with(
            vec![
                node_with_labels("a1", &[("zone", "a"), ("pool", "x")]),
                node_with_labels("b1", &[("zone", "b"), ("pool", "y")]),
            ],
            vec![("a1", labelled_pod("x", &[("app", "web")]))],
        );
        let mut p = labelled_pod("p", &[("app", "web")]);
        let spec = p.spec.as_mut().unwrap();
        spec.topology_spread_constraints = Some(vec![spread(
            "zone",
            1,
            "DoNotSchedule",
            &[("app", "web")],
            None,
        )]);
        spec.node_selector = Some([("pool".into(), "x".into())].into());
        let incoming = Incoming::new(&p);
        let state = prefilter(&incoming, &snapshot);
        // Zone b is not a domain (pool y is not selected): only zone a counts, min is 1.
        assert_eq!(
            filter(&incoming, &state, snapshot.node("a1").unwrap()),
            Ok(())
        );
    }
}

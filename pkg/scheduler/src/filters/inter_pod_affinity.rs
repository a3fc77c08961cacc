//! InterPodAffinity (filter): the pod's required affinity terms must each find a matching pod
//! in the node's domain (or, for the first pod of a group that matches its own terms, no
//! matching pod anywhere); its required anti-affinity terms must find none; and no existing
//! pod's required anti-affinity may select it within the node's domain. The counts per
//! (topology key, value) are computed once per pod by [`prefilter`], visiting every pod only
//! when the incoming pod has required terms and otherwise only pods with anti-affinity.

use std::collections::HashMap;

use super::Failure;
use crate::incoming::Incoming;
use crate::snapshot::{NodeInfo, Snapshot};
use crate::terms::AffinityTerm;

/// Upstream's reason for unmet required affinity.
pub const REASON_AFFINITY: &str = "node(s) didn't match pod affinity rules";
/// Upstream's reason for unmet required anti-affinity.
pub const REASON_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
/// Upstream's reason when an existing pod's anti-affinity forbids the pod.
pub const REASON_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";

type Domain<'a> = (&'a str, &'a str);

/// Counts per topology domain.
#[derive(Debug, Default)]
pub struct FilterState<'a> {
    required_affinity: &'a [AffinityTerm],
    required_anti_affinity: &'a [AffinityTerm],
    /// Domains holding pods that match all of the incoming pod's affinity terms.
    affinity: HashMap<Domain<'a>, i64>,
    /// Domains holding pods that match one of its anti-affinity terms.
    anti_affinity: HashMap<Domain<'a>, i64>,
    /// Domains whose existing pods' anti-affinity selects the incoming pod.
    existing_anti_affinity: HashMap<Domain<'a>, i64>,
    /// Whether the incoming pod matches all its own affinity terms.
    self_matches: bool,
}

/// Counts the domains the filter needs.
pub fn prefilter<'a>(incoming: &'a Incoming<'_>, snapshot: &'a Snapshot) -> FilterState<'a> {
    let namespaces = snapshot.namespace_labels();
    let terms = &incoming.terms;
    let mut state = FilterState {
        required_affinity: &terms.required_affinity,
        required_anti_affinity: &terms.required_anti_affinity,
        self_matches: terms
            .required_affinity
            .iter()
            .all(|t| t.matches(incoming.pod, namespaces)),
        ..FilterState::default()
    };
    if snapshot.has_pods_with_required_anti_affinity() {
        for node in snapshot.nodes() {
            let labels = node.labels();
            for &i in &node.pods_with_required_anti_affinity {
                for term in &node.pods[i].terms.required_anti_affinity {
                    if let Some((k, v)) = labels.get_key_value(&term.topology_key)
                        && term.matches(incoming.pod, namespaces)
                    {
                        *state.existing_anti_affinity.entry((k, v)).or_default() += 1;
                    }
                }
            }
        }
    }
    if terms.required_affinity.is_empty() && terms.required_anti_affinity.is_empty() {
        return state;
    }
    for node in snapshot.nodes() {
        let labels = node.labels();
        for existing in &node.pods {
            let pod = &existing.pod;
            if !terms.required_affinity.is_empty()
                && terms
                    .required_affinity
                    .iter()
                    .all(|t| t.matches(pod, namespaces))
            {
                for t in &terms.required_affinity {
                    if let Some((k, v)) = labels.get_key_value(&t.topology_key) {
                        *state.affinity.entry((k, v)).or_default() += 1;
                    }
                }
            }
            for t in &terms.required_anti_affinity {
                if let Some((k, v)) = labels.get_key_value(&t.topology_key)
                    && t.matches(pod, namespaces)
                {
                    *state.anti_affinity.entry((k, v)).or_default() += 1;
                }
            }
        }
    }
    state
}

fn count(map: &HashMap<Domain<'_>, i64>, key: &str, value: &str) -> i64 {
    map.get(&(key, value)).copied().unwrap_or(0)
}

/// Fails a node that breaks required affinity, anti-affinity or existing pods' anti-affinity.
pub fn filter(state: &FilterState<'_>, node: &NodeInfo) -> Result<(), Failure> {
    let labels = node.labels();
    if !state.required_affinity.is_empty() {
        let mut pods_exist = true;
        for t in state.required_affinity {
            let Some(v) = labels.get(&t.topology_key) else {
                return Err(Failure::PodAffinity);
            };
            if count(&state.affinity, &t.topology_key, v) <= 0 {
                pods_exist = false;
            }
        }
        let first_of_group = state.affinity.is_empty() && state.self_matches;
        if !(pods_exist || first_of_group) {
            return Err(Failure::PodAffinity);
        }
    }
    for t in state.required_anti_affinity {
        if let Some(v) = labels.get(&t.topology_key)
            && count(&state.anti_affinity, &t.topology_key, v) > 0
        {
            return Err(Failure::PodAntiAffinity);
        }
    }
    if !state.existing_anti_affinity.is_empty()
        && labels
            .iter()
            .any(|(k, v)| count(&state.existing_anti_affinity, k, v) > 0)
    {
        return Err(Failure::ExistingPodsAntiAffinity);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{labelled_pod, node_with_labels, pod_affinity, snapshot_with};

    fn cluster() -> Snapshot {
        snapshot_with(
            vec![
                node_with_labels("a1", &[("zone", "a"), ("kubernetes.io/hostname", "a1")]),
                node_with_labels("a2", &[("zone", "a"), ("kubernetes.io/hostname", "a2")]),
                node_with_labels("b1", &[("zone", "b"), ("kubernetes.io/hostname", "b1")]),
            ],
            vec![("a1", labelled_pod("cache", &[("app", "cache")]))],
        )
    }

    #[test]
    fn required_affinity_needs_a_matching_pod_in_the_domain() {
        let s = cluster();
        let mut p = labelled_pod("web", &[("app", "web")]);
        p.spec.as_mut().unwrap().affinity = Some(pod_affinity(true, "zone", &[("app", "cache")]));
        let incoming = Incoming::new(&p);
        let state = prefilter(&incoming, &s);
        assert_eq!(filter(&state, s.node("a1").unwrap()), Ok(()));
        assert_eq!(filter(&state, s.node("a2").unwrap()), Ok(()));
        assert_eq!(
            filter(&state, s.node("b1").unwrap()),
            Err(Failure::PodAffinity)
        );
    }

    #[test]
    fn first_pod_of_a_self_affine_group_is_allowed() {
        let s = cluster();
        let mut p = labelled_pod("web", &[("app", "web")]);
        p.spec.as_mut().unwrap().affinity = Some(pod_affinity(true, "zone", &[("app", "web")]));
        let incoming = Incoming::new(&p);
        let state = prefilter(&incoming, &s);
        assert_eq!(filter(&state, s.node("b1").unwrap()), Ok(()));
    }

    #[test]
    fn required_anti_affinity_and_existing_anti_affinity() {
        let s = cluster();
        let mut p = labelled_pod("web", &[("app", "web")]);
        p.spec.as_mut().unwrap().affinity = Some(pod_affinity(
            false,
            "kubernetes.io/hostname",
            &[("app", "cache")],
        ));
        let incoming = Incoming::new(&p);
        let state = prefilter(&incoming, &s);
        assert_eq!(
            filter(&state, s.node("a1").unwrap()),
            Err(Failure::PodAntiAffinity)
        );
        assert_eq!(filter(&state, s.node("a2").unwrap()), Ok(()));

        // An existing pod in zone a that repels app=web.
        let mut guard = labelled_pod("guard", &[("app", "guard")]);
        guard.spec.as_mut().unwrap().affinity =
            Some(pod_affinity(false, "zone", &[("app", "web")]));
        let mut s = cluster();
        s.assume(&guard, "a2").unwrap();
        let plain = labelled_pod("web", &[("app", "web")]);
        let incoming = Incoming::new(&plain);
        let state = prefilter(&incoming, &s);
        assert_eq!(
            filter(&state, s.node("a1").unwrap()),
            Err(Failure::ExistingPodsAntiAffinity)
        );
        assert_eq!(filter(&state, s.node("b1").unwrap()), Ok(()));
    }
}

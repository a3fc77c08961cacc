//! NodeAffinity (filter): the pod's `nodeSelector` and its required node affinity must both
//! match the node. The matching itself is cairn-api's (`node_selection`), shared with the
//! NodeAffinity score, PodTopologySpread's `nodeAffinityPolicy` and the DaemonSet controller.

pub use cairn_api::node_selection::term_matches;
use k8s_openapi::api::core::v1::Pod;

use super::Failure;
use crate::incoming::Incoming;
use crate::snapshot::NodeInfo;

/// Upstream's reason.
pub const REASON: &str = "node(s) didn't match Pod's node affinity/selector";

/// Upstream's `RequiredNodeAffinity.Match`: the nodeSelector's labels, and at least one
/// required term when the pod has required node affinity.
pub fn required_matches(pod: &Pod, node: &NodeInfo) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return true;
    };
    let selector = spec.node_selector.as_ref().filter(|s| !s.is_empty());
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    // Most pods ask for neither: then the node (cold in the cache at thousands of nodes) is
    // not read at all.
    if selector.is_none() && required.is_none() {
        return true;
    }
    cairn_api::node_selection::selects(spec, &node.name, node.labels())
}

/// Fails a node the pod's nodeSelector or required node affinity excludes.
pub fn filter(incoming: &Incoming<'_>, node: &NodeInfo) -> Result<(), Failure> {
    if required_matches(incoming.pod, node) {
        Ok(())
    } else {
        Err(Failure::NodeAffinity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node_with_labels, pod, required_node_affinity};
    use k8s_openapi::api::core::v1::NodeSelectorRequirement as R;
    use k8s_openapi::api::core::v1::NodeSelectorTerm;

    fn req(key: &str, op: &str, values: &[&str]) -> R {
        R {
            key: key.into(),
            operator: op.into(),
            values: Some(values.iter().map(|v| v.to_string()).collect()),
        }
    }

    #[test]
    fn operators_table() {
        let n = node_with_labels("n1", &[("zone", "a"), ("cores", "8")]);
        let cases = [
            (req("zone", "In", &["a", "b"]), true),
            (req("zone", "In", &["b"]), false),
            (req("zone", "NotIn", &["b"]), true),
            (req("missing", "NotIn", &["b"]), true),
            (req("zone", "NotIn", &["a"]), false),
            (req("zone", "Exists", &[]), true),
            (req("missing", "Exists", &[]), false),
            (req("missing", "DoesNotExist", &[]), true),
            (req("cores", "Gt", &["4"]), true),
            (req("cores", "Gt", &["8"]), false),
            (req("cores", "Lt", &["16"]), true),
            (req("zone", "Lt", &["16"]), false),
        ];
        for (r, want) in cases {
            let term = NodeSelectorTerm {
                match_expressions: Some(vec![r.clone()]),
                match_fields: None,
            };
            assert_eq!(term_matches(&term, "n1", n.labels()), want, "{r:?}");
        }
        let fields = NodeSelectorTerm {
            match_expressions: None,
            match_fields: Some(vec![req("metadata.name", "In", &["n1"])]),
        };
        assert!(term_matches(&fields, "n1", n.labels()));
        assert!(!term_matches(&fields, "n2", n.labels()));
        assert!(!term_matches(
            &NodeSelectorTerm::default(),
            "n1",
            n.labels()
        ));
    }

    #[test]
    fn node_selector_and_required_terms_both_apply() {
        let n = node_with_labels("n1", &[("disk", "ssd"), ("zone", "a")]);
        let mut p = pod("p");
        p.spec.as_mut().unwrap().node_selector = Some([("disk".into(), "ssd".into())].into());
        assert_eq!(filter(&Incoming::new(&p), &n), Ok(()));
        p.spec.as_mut().unwrap().affinity =
            Some(required_node_affinity(vec![req("zone", "In", &["b"])]));
        assert_eq!(filter(&Incoming::new(&p), &n), Err(Failure::NodeAffinity));
        p.spec.as_mut().unwrap().affinity =
            Some(required_node_affinity(vec![req("zone", "In", &["a"])]));
        assert_eq!(filter(&Incoming::new(&p), &n), Ok(()));
        p.spec.as_mut().unwrap().node_selector = Some([("disk".into(), "hdd".into())].into());
        assert_eq!(filter(&Incoming::new(&p), &n), Err(Failure::NodeAffinity));
    }
}

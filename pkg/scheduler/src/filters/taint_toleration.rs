//! TaintToleration (filter): a node's NoSchedule and NoExecute taints must all be tolerated.
//! The toleration matching is cairn-api's (`node_selection`), shared with NodeUnschedulable,
//! PodTopologySpread's `nodeTaintsPolicy`, the PreferNoSchedule score and the controllers.

pub use cairn_api::node_selection::{tolerated, tolerates};
use k8s_openapi::api::core::v1::{Taint, Toleration};

use super::Failure;
use crate::incoming::Incoming;
use crate::snapshot::NodeInfo;

/// Upstream's reason for a taint: `node(s) had untolerated taint {key: value}`.
pub fn reason(taint: &Taint) -> String {
    format!(
        "node(s) had untolerated taint {{{}: {}}}",
        taint.key,
        taint.value.as_deref().unwrap_or_default()
    )
}

/// The index of the first NoSchedule or NoExecute taint of `taints` not tolerated.
pub fn first_untolerated(tolerations: &[Toleration], taints: &[Taint]) -> Option<usize> {
    taints.iter().position(|taint| {
        matches!(taint.effect.as_str(), "NoSchedule" | "NoExecute")
            && !tolerated(tolerations, taint)
    })
}

/// Fails a node with an untolerated NoSchedule or NoExecute taint.
pub fn filter(incoming: &Incoming<'_>, node: &NodeInfo) -> Result<(), Failure> {
    match first_untolerated(incoming.tolerations, &node.taints) {
        Some(i) => Err(Failure::UntoleratedTaint(i)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod, taint, toleration};

    #[test]
    fn toleration_matching_table() {
        let t = taint("k", "v", "NoSchedule");
        let cases = [
            (toleration("k", "Equal", "v", "NoSchedule"), true),
            (toleration("k", "", "v", ""), true),
            (toleration("k", "Equal", "w", "NoSchedule"), false),
            (toleration("k", "Exists", "", ""), true),
            (toleration("", "Exists", "", ""), true),
            (toleration("k", "Exists", "", "NoExecute"), false),
            (toleration("other", "Exists", "", ""), false),
        ];
        for (tol, want) in cases {
            assert_eq!(tolerates(&tol, &t), want, "{tol:?}");
        }
    }

    #[test]
    fn filter_reports_the_first_untolerated_hard_taint() {
        let mut n = node("n1", "1", "1Gi");
        n.taints = vec![
            taint("soft", "", "PreferNoSchedule"),
            taint("node-role.kubernetes.io/control-plane", "", "NoSchedule"),
        ];
        let p = pod("p");
        let incoming = Incoming::new(&p);
        assert_eq!(filter(&incoming, &n), Err(Failure::UntoleratedTaint(1)));
        assert_eq!(
            reason(&n.taints[1]),
            "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"
        );
        let mut q = pod("q");
        q.spec.as_mut().unwrap().tolerations = Some(vec![toleration(
            "node-role.kubernetes.io/control-plane",
            "Exists",
            "",
            "NoSchedule",
        )]);
        assert_eq!(filter(&Incoming::new(&q), &n), Ok(()));
    }
}

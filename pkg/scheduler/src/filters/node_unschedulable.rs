//! NodeUnschedulable: a cordoned node (`spec.unschedulable`) takes only pods that tolerate
//! the `node.kubernetes.io/unschedulable:NoSchedule` taint.

use k8s_openapi::api::core::v1::Taint;

use super::Failure;
use super::taint_toleration::tolerated;
use crate::incoming::Incoming;
use crate::snapshot::NodeInfo;

/// Upstream's reason.
pub const REASON: &str = "node(s) were unschedulable";

/// The taint a cordoned node implies.
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// Fails a cordoned node unless the pod tolerates it.
pub fn filter(incoming: &Incoming<'_>, node: &NodeInfo) -> Result<(), Failure> {
    if !node.unschedulable {
        return Ok(());
    }
    let taint = Taint {
        key: TAINT_UNSCHEDULABLE.to_string(),
        effect: "NoSchedule".to_string(),
        ..Default::default()
    };
    if tolerated(incoming.tolerations, &taint) {
        Ok(())
    } else {
        Err(Failure::Unschedulable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod};
    use k8s_openapi::api::core::v1::Toleration;

    #[test]
    fn cordoned_nodes_take_only_tolerating_pods() {
        let mut cordoned = node("n1", "4", "8Gi");
        cordoned.unschedulable = true;
        let plain = pod("p");
        assert_eq!(
            filter(&Incoming::new(&plain), &cordoned),
            Err(Failure::Unschedulable)
        );
        assert_eq!(
            filter(&Incoming::new(&plain), &node("n2", "4", "8Gi")),
            Ok(())
        );
        let mut tolerating = pod("q");
        tolerating.spec.as_mut().unwrap().tolerations = Some(vec![Toleration {
            key: Some(TAINT_UNSCHEDULABLE.into()),
            operator: Some("Exists".into()),
            effect: Some("NoSchedule".into()),
            ..Default::default()
        }]);
        assert_eq!(filter(&Incoming::new(&tolerating), &cordoned), Ok(()));
    }
}

//! NodeName: a pod that names its node (`spec.nodeName`) fits only there.

use super::Failure;
use crate::incoming::Incoming;
use crate::snapshot::NodeInfo;

/// Upstream's reason.
pub const REASON: &str = "node(s) didn't match the requested node name";

/// Fails every node but the named one.
pub fn filter(incoming: &Incoming<'_>, node: &NodeInfo) -> Result<(), Failure> {
    match incoming.node_name {
        Some(name) if name != node.name => Err(Failure::NodeName),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod};

    #[test]
    fn only_the_named_node_fits() {
        let mut p = pod("p");
        p.spec.as_mut().unwrap().node_name = Some("n2".into());
        let incoming = Incoming::new(&p);
        assert_eq!(
            filter(&incoming, &node("n1", "1", "1Gi")),
            Err(Failure::NodeName)
        );
        assert_eq!(filter(&incoming, &node("n2", "1", "1Gi")), Ok(()));
        assert_eq!(
            filter(&Incoming::new(&pod("q")), &node("n1", "1", "1Gi")),
            Ok(())
        );
    }
}

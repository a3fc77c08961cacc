//! NodePorts: a pod's host ports must be free on the node (same protocol and port conflict
//! when either binds all addresses or both bind the same one).

use super::Failure;
use crate::incoming::Incoming;
use crate::snapshot::NodeInfo;

/// Upstream's reason.
pub const REASON: &str = "node(s) didn't have free ports for the requested pod ports";

/// Fails a node where one of the pod's host ports is taken.
pub fn filter(incoming: &Incoming<'_>, node: &NodeInfo) -> Result<(), Failure> {
    let taken = incoming
        .host_ports
        .iter()
        .any(|want| node.host_ports.iter().any(|used| want.conflicts(used)));
    if taken {
        Err(Failure::NodePorts)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::HostPort;
    use crate::testing::{node, pod_with_host_port};

    #[test]
    fn conflicts_table() {
        let hp = |proto: &str, ip: &str, port| HostPort {
            protocol: proto.into(),
            ip: ip.into(),
            port,
        };
        let cases = [
            (hp("TCP", "0.0.0.0", 80), hp("TCP", "10.0.0.1", 80), true),
            (hp("TCP", "10.0.0.2", 80), hp("TCP", "10.0.0.1", 80), false),
            (hp("TCP", "10.0.0.1", 80), hp("TCP", "10.0.0.1", 80), true),
            (hp("UDP", "0.0.0.0", 80), hp("TCP", "0.0.0.0", 80), false),
            (hp("TCP", "0.0.0.0", 81), hp("TCP", "0.0.0.0", 80), false),
        ];
        for (a, b, want) in cases {
            assert_eq!(a.conflicts(&b), want, "{a:?} {b:?}");
        }
    }

    #[test]
    fn taken_port_fails() {
        let mut n = node("n1", "1", "1Gi");
        n.host_ports.push(HostPort {
            protocol: "TCP".into(),
            ip: "0.0.0.0".into(),
            port: 8080,
        });
        let p = pod_with_host_port("p", 8080);
        assert_eq!(filter(&Incoming::new(&p), &n), Err(Failure::NodePorts));
        let q = pod_with_host_port("q", 8081);
        assert_eq!(filter(&Incoming::new(&q), &n), Ok(()));
    }
}

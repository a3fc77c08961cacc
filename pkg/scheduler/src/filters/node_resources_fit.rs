//! NodeResourcesFit (filter): the pod's requests must fit in what the node's allocatable
//! leaves after the requests of the pods already there, resource by resource, and the node
//! must have room for one more pod. Every short resource is reported, as upstream does.

use super::Failure;
use crate::incoming::Incoming;
use crate::snapshot::NodeInfo;

/// Which resources a node is short of: flags for the fixed ones and a bit per extended
/// resource, indexed like the incoming pod's `requests.exact.scalar` (the first 64).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shortage {
    /// `Too many pods`.
    pub pods: bool,
    /// `Insufficient cpu`.
    pub cpu: bool,
    /// `Insufficient memory`.
    pub memory: bool,
    /// `Insufficient ephemeral-storage`.
    pub ephemeral_storage: bool,
    /// `Insufficient <name>` for the pod's i-th extended resource.
    pub scalar: u64,
}

impl Shortage {
    fn any(&self) -> bool {
        self.pods || self.cpu || self.memory || self.ephemeral_storage || self.scalar != 0
    }

    /// Upstream's reason texts.
    pub fn reasons(&self, incoming: &Incoming<'_>, mut each: impl FnMut(String)) {
        let fixed = [
            (self.pods, "Too many pods"),
            (self.cpu, "Insufficient cpu"),
            (self.memory, "Insufficient memory"),
            (self.ephemeral_storage, "Insufficient ephemeral-storage"),
        ];
        for (short, text) in fixed {
            if short {
                each(text.to_string());
            }
        }
        for (i, (name, _)) in incoming.requests.exact.scalar.iter().enumerate().take(64) {
            if self.scalar & (1 << i) != 0 {
                each(format!("Insufficient {name}"));
            }
        }
    }
}

/// Fails a node that cannot hold the pod's requests or one more pod.
pub fn filter(incoming: &Incoming<'_>, node: &NodeInfo) -> Result<(), Failure> {
    let want = &incoming.requests.exact;
    let alloc = &node.allocatable;
    let used = &node.requested;
    let mut s = Shortage {
        pods: node.pods.len() as i64 + 1 > alloc.pods,
        ..Shortage::default()
    };
    let short = |want: i64, alloc: i64, used: i64| want > 0 && want > alloc - used;
    s.cpu = short(want.milli_cpu, alloc.milli_cpu, used.milli_cpu);
    s.memory = short(want.memory, alloc.memory, used.memory);
    s.ephemeral_storage = short(
        want.ephemeral_storage,
        alloc.ephemeral_storage,
        used.ephemeral_storage,
    );
    for (i, (name, amount)) in want.scalar.iter().enumerate().take(64) {
        if short(*amount, alloc.scalar(name), used.scalar(name)) {
            s.scalar |= 1 << i;
        }
    }
    if s.any() {
        Err(Failure::Resources(s))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod_requesting, snapshot_with};

    fn reasons(incoming: &Incoming<'_>, f: Failure) -> Vec<String> {
        let mut out = Vec::new();
        let n = node("x", "1", "1Gi");
        f.reasons(&n, incoming, |r| out.push(r));
        out
    }

    #[test]
    fn fit_table() {
        // (node cpu, node memory, pod cpu, pod memory, expected reasons)
        let cases: [(&str, &str, &str, &str, &[&str]); 5] = [
            ("2", "4Gi", "1", "1Gi", &[]),
            ("2", "4Gi", "3", "1Gi", &["Insufficient cpu"]),
            ("2", "4Gi", "1", "5Gi", &["Insufficient memory"]),
            (
                "2",
                "4Gi",
                "2500m",
                "5Gi",
                &["Insufficient cpu", "Insufficient memory"],
            ),
            ("2", "4Gi", "2", "4Gi", &[]),
        ];
        for (ncpu, nmem, pcpu, pmem, want) in cases {
            let n = node("n", ncpu, nmem);
            let p = pod_requesting("p", pcpu, pmem);
            let incoming = Incoming::new(&p);
            let got = match filter(&incoming, &n) {
                Ok(()) => Vec::new(),
                Err(f) => reasons(&incoming, f),
            };
            assert_eq!(got, want, "{ncpu} {nmem} {pcpu} {pmem}");
        }
    }

    #[test]
    fn existing_requests_and_pod_count_are_accounted() {
        let snapshot = snapshot_with(
            vec![node("n1", "2", "4Gi")],
            vec![("n1", pod_requesting("a", "1500m", "1Gi"))],
        );
        let n = snapshot.node("n1").unwrap();
        let p = pod_requesting("p", "600m", "1Gi");
        let incoming = Incoming::new(&p);
        assert_eq!(
            reasons(&incoming, filter(&incoming, n).unwrap_err()),
            ["Insufficient cpu"]
        );

        let mut full = node("n2", "2", "4Gi");
        full.allocatable.pods = 0;
        let q = pod_requesting("q", "0", "0");
        let incoming = Incoming::new(&q);
        assert_eq!(
            reasons(&incoming, filter(&incoming, &full).unwrap_err()),
            ["Too many pods"]
        );
    }

    #[test]
    fn extended_resources_are_checked() {
        let n = node("n", "2", "4Gi");
        let mut p = pod_requesting("p", "1", "1Gi");
        p.spec.as_mut().unwrap().containers[0]
            .resources
            .as_mut()
            .unwrap()
            .requests
            .as_mut()
            .unwrap()
            .insert(
                "example.com/gpu".into(),
                k8s_openapi::apimachinery::pkg::api::resource::Quantity("1".into()),
            );
        let incoming = Incoming::new(&p);
        assert_eq!(
            reasons(&incoming, filter(&incoming, &n).unwrap_err()),
            ["Insufficient example.com/gpu"]
        );
    }
}

//! Why a pod fits nowhere, in upstream's words: [`Unschedulable`] counts, per reason, the
//! nodes that gave it and prints kube-scheduler 1.33's `FitError` message, e.g.
//! `0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {…}.`
//! (entries `"<count> <reason>"` sorted as strings). Upstream appends the preemption
//! plugin's verdict (`preemption: 0/3 nodes are available: …`); preemption is not part of
//! this core, so neither is that suffix.

use std::collections::BTreeMap;
use std::fmt;

/// No node can take the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unschedulable {
    /// How many nodes the cluster has.
    pub nodes: usize,
    /// Reason text → number of nodes that failed with it.
    pub reasons: BTreeMap<String, usize>,
}

impl Unschedulable {
    /// Counts one more node failing for `reason`.
    pub fn add(&mut self, reason: String) {
        *self.reasons.entry(reason).or_default() += 1;
    }
}

impl fmt::Display for Unschedulable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nodes == 0 {
            return f.write_str("no nodes available to schedule pods");
        }
        write!(f, "0/{} nodes are available:", self.nodes)?;
        let mut entries: Vec<String> = self
            .reasons
            .iter()
            .map(|(reason, count)| format!("{count} {reason}"))
            .collect();
        entries.sort();
        if !entries.is_empty() {
            write!(f, " {}.", entries.join(", "))?;
        }
        Ok(())
    }
}

impl std::error::Error for Unschedulable {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_shape() {
        let mut u = Unschedulable {
            nodes: 3,
            reasons: BTreeMap::new(),
        };
        u.add("node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }".into());
        u.add("Insufficient cpu".into());
        u.add("node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }".into());
        assert_eq!(
            u.to_string(),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint \
             {node-role.kubernetes.io/control-plane: }."
        );
    }

    #[test]
    fn entries_sort_as_strings_count_first() {
        let mut u = Unschedulable {
            nodes: 12,
            reasons: BTreeMap::new(),
        };
        for _ in 0..10 {
            u.add("node(s) were unschedulable".into());
        }
        u.add("Too many pods".into());
        u.add("Insufficient memory".into());
        assert_eq!(
            u.to_string(),
            "0/12 nodes are available: 1 Insufficient memory, 1 Too many pods, \
             10 node(s) were unschedulable."
        );
        let none = Unschedulable {
            nodes: 0,
            reasons: BTreeMap::new(),
        };
        assert_eq!(none.to_string(), "no nodes available to schedule pods");
    }
}

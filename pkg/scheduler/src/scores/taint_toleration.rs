//! TaintToleration (score, weight 3): fewer PreferNoSchedule taints the pod does not tolerate
//! score higher; counts are normalized and reversed.

use super::default_normalize;
use crate::filters::taint_toleration::tolerates;
use crate::incoming::Incoming;
use crate::snapshot::NodeInfo;

/// Scores `nodes` into `out`; always applies.
pub fn score(incoming: &Incoming<'_>, nodes: &[&NodeInfo], out: &mut [i64]) -> bool {
    // Only tolerations with no effect or PreferNoSchedule count, as upstream.
    let tolerations = incoming
        .tolerations
        .iter()
        .filter(|t| matches!(t.effect.as_deref(), None | Some("" | "PreferNoSchedule")));
    for (node, s) in nodes.iter().zip(out.iter_mut()) {
        *s = node
            .taints
            .iter()
            .filter(|taint| taint.effect == "PreferNoSchedule")
            .filter(|taint| !tolerations.clone().any(|t| tolerates(t, taint)))
            .count() as i64;
    }
    default_normalize(out, true);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod, taint};

    #[test]
    fn fewer_untolerated_soft_taints_score_higher() {
        let mut a = node("a", "1", "1Gi");
        a.taints = vec![
            taint("x", "", "PreferNoSchedule"),
            taint("y", "", "PreferNoSchedule"),
        ];
        let mut b = node("b", "1", "1Gi");
        b.taints = vec![taint("x", "", "PreferNoSchedule")];
        let c = node("c", "1", "1Gi");
        let p = pod("p");
        let mut out = [0; 3];
        score(&Incoming::new(&p), &[&a, &b, &c], &mut out);
        assert_eq!(out, [0, 50, 100]);
    }
}

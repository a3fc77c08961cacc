//! A Job's `podFailurePolicy`, as upstream's Job controller reads it: the first rule that
//! matches a failed pod decides what its failure means. A rule matches on the exit codes of
//! its terminated containers (init containers first; a zero exit code never matches, with
//! `In` or `NotIn`; `containerName` narrows it to one container) or on the pod's conditions.

use k8s_openapi::api::batch::v1::{PodFailurePolicy, PodFailurePolicyRule};
use k8s_openapi::api::core::v1::Pod;

use crate::meta;

/// What a failed pod's failure means for its Job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Counts toward `backoffLimit` (no rule matched, or a `Count` rule did).
    Count,
    /// Does not count; the pod is replaced.
    Ignore,
    /// The Job fails at once, with this message.
    FailJob(String),
}

/// What `policy` makes of the failure of `pod`.
pub fn judge(policy: Option<&PodFailurePolicy>, pod: &Pod) -> Verdict {
    let Some(policy) = policy else {
        return Verdict::Count;
    };
    for (i, rule) in policy.rules.iter().enumerate() {
        let Some(why) = matching(rule, pod) else {
            continue;
        };
        return match rule.action.as_str() {
            "Ignore" => Verdict::Ignore,
            "FailJob" => Verdict::FailJob(format!("{why} matching FailJob rule at index {i}")),
            // Count, and FailIndex (per-index back-off limits are not built).
            _ => Verdict::Count,
        };
    }
    Verdict::Count
}

/// How `rule` matches `pod`, in upstream's words, if it does.
fn matching(rule: &PodFailurePolicyRule, pod: &Pod) -> Option<String> {
    let who = format!(
        "{}/{}",
        meta::namespace(&pod.metadata),
        meta::name(&pod.metadata)
    );
    let status = pod.status.as_ref()?;
    if let Some(codes) = &rule.on_exit_codes {
        let statuses = status
            .init_container_statuses
            .iter()
            .flatten()
            .chain(status.container_statuses.iter().flatten());
        for c in statuses {
            if codes.container_name.as_ref().is_some_and(|n| *n != c.name) {
                continue;
            }
            let Some(code) = c
                .state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .map(|t| t.exit_code)
            else {
                continue;
            };
            let listed = codes.values.contains(&code);
            let hit = code != 0
                && if codes.operator == "In" {
                    listed
                } else {
                    !listed
                };
            if hit {
                return Some(format!(
                    "Container {} for pod {who} failed with exit code {code}",
                    c.name
                ));
            }
        }
        return None;
    }
    let conditions = status.conditions.as_deref().unwrap_or_default();
    rule.on_pod_conditions.iter().flatten().find_map(|want| {
        let wanted_status = if want.status.is_empty() {
            "True"
        } else {
            want.status.as_str()
        };
        conditions
            .iter()
            .any(|c| c.type_ == want.type_ && c.status == wanted_status)
            .then(|| format!("Pod {who} has condition {}", want.type_))
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn failed_pod(exit_codes: &[(&str, i32)], conditions: &[(&str, &str)]) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "status": {
                "phase": "Failed",
                "containerStatuses": exit_codes.iter().map(|(name, code)| json!({
                    "name": name, "image": "i", "imageID": "", "ready": false,
                    "restartCount": 0, "state": {"terminated": {"exitCode": code}}
                })).collect::<Vec<_>>(),
                "conditions": conditions.iter().map(|(t, s)| json!({"type": t, "status": s})).collect::<Vec<_>>(),
            }
        }))
        .unwrap()
    }

    fn policy(rules: serde_json::Value) -> PodFailurePolicy {
        serde_json::from_value(json!({ "rules": rules })).unwrap()
    }

    #[test]
    fn the_first_matching_rule_decides() {
        let p = policy(json!([
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}},
            {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1]}},
        ]));
        assert_eq!(
            judge(Some(&p), &failed_pod(&[("main", 42)], &[])),
            Verdict::FailJob(
                "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1"
                    .into()
            )
        );
        assert_eq!(
            judge(
                Some(&p),
                &failed_pod(&[("main", 42)], &[("DisruptionTarget", "True")])
            ),
            Verdict::Ignore
        );
        assert_eq!(
            judge(Some(&p), &failed_pod(&[("main", 1)], &[])),
            Verdict::Count
        );
        assert_eq!(
            judge(None, &failed_pod(&[("main", 42)], &[])),
            Verdict::Count
        );
    }

    #[test]
    fn exit_code_zero_never_matches_and_container_names_narrow() {
        let not_in = policy(json!([
            {"action": "FailJob", "onExitCodes": {"operator": "NotIn", "values": [1]}},
        ]));
        assert_eq!(
            judge(Some(&not_in), &failed_pod(&[("a", 0), ("b", 1)], &[])),
            Verdict::Count
        );
        let named = policy(json!([
            {"action": "FailJob", "onExitCodes": {"containerName": "b", "operator": "In", "values": [3]}},
        ]));
        assert_eq!(
            judge(Some(&named), &failed_pod(&[("a", 3), ("b", 1)], &[])),
            Verdict::Count
        );
        assert!(matches!(
            judge(Some(&named), &failed_pod(&[("a", 1), ("b", 3)], &[])),
            Verdict::FailJob(_)
        ));
    }
}

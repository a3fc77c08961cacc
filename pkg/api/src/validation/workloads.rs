//! The apps workloads: Deployment, ReplicaSet, StatefulSet and DaemonSet, as upstream's
//! `pkg/apis/apps/validation` and the apps strategies check them. They share one shape: a
//! non-empty selector that matches the pod template's labels, a template whose pods restart
//! `Always`, counts that are not negative, and a selector that never changes. Their
//! ControllerRevisions carry data that never changes and a revision that is not negative.

use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, DaemonSetUpdateStrategy, Deployment, DeploymentStrategy,
    ReplicaSet, StatefulSet, StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::pods::{restart_policy, validate_pod_template};
use super::{Cause, render, validate_labels};
use crate::labels::Selector;
use crate::names::{check_dns1123_label, check_qualified_name};

const IMMUTABLE: &str = "field is immutable";

/// A count that may not be negative: `Invalid value: -1: must be greater than or equal to 0`.
pub fn non_negative(value: Option<i64>, path: &str) -> Vec<Cause> {
    match value {
        Some(v) if v < 0 => vec![Cause::invalid_int(
            path,
            v,
            "must be greater than or equal to 0",
        )],
        _ => Vec::new(),
    }
}

/// A Deployment.
pub fn validate_deployment(d: &Deployment) -> Vec<Cause> {
    let Some(spec) = &d.spec else {
        return vec![Cause::required("spec.selector", "")];
    };
    let mut causes = non_negative(spec.replicas.map(i64::from), "spec.replicas");
    causes.extend(selector_and_template(
        Some(&spec.selector),
        &spec.template,
        "deployment",
    ));
    causes.extend(template_restarts_always(&spec.template, "ReplicaSet"));
    if let Some(strategy) = &spec.strategy {
        causes.extend(deployment_strategy(strategy, "spec.strategy"));
    }
    let min_ready = spec.min_ready_seconds.map(i64::from);
    causes.extend(non_negative(min_ready, "spec.minReadySeconds"));
    causes.extend(non_negative(
        spec.revision_history_limit.map(i64::from),
        "spec.revisionHistoryLimit",
    ));
    if let Some(deadline) = spec.progress_deadline_seconds.map(i64::from) {
        causes.extend(non_negative(Some(deadline), "spec.progressDeadlineSeconds"));
        if deadline <= min_ready.unwrap_or(0) {
            causes.push(Cause::invalid_int(
                "spec.progressDeadlineSeconds",
                deadline,
                "must be greater than minReadySeconds",
            ));
        }
    }
    causes
}

/// A ReplicaSet.
pub fn validate_replica_set(rs: &ReplicaSet) -> Vec<Cause> {
    let Some(spec) = &rs.spec else {
        return vec![Cause::required("spec.selector", "")];
    };
    let mut causes = non_negative(spec.replicas.map(i64::from), "spec.replicas");
    causes.extend(non_negative(
        spec.min_ready_seconds.map(i64::from),
        "spec.minReadySeconds",
    ));
    let template = spec.template.clone().unwrap_or_default();
    // Upstream calls this selector empty "for deployment" for ReplicaSets too.
    causes.extend(selector_and_template(
        Some(&spec.selector),
        &template,
        "deployment",
    ));
    causes.extend(template_restarts_always(&template, "ReplicaSet"));
    causes
}

/// A StatefulSet.
pub fn validate_stateful_set(s: &StatefulSet) -> Vec<Cause> {
    let Some(spec) = &s.spec else {
        return vec![Cause::required("spec.selector", "")];
    };
    let mut causes = Vec::new();
    match spec.pod_management_policy.as_deref() {
        None | Some("OrderedReady" | "Parallel") => {}
        Some("") => causes.push(Cause::required("spec.podManagementPolicy", "")),
        Some(other) => causes.push(Cause::invalid(
            "spec.podManagementPolicy",
            other,
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    if let Some(strategy) = &spec.update_strategy {
        causes.extend(stateful_set_strategy(strategy));
    }
    if let Some(name) = spec.service_name.as_deref().filter(|n| !n.is_empty()) {
        causes.extend(
            check_dns1123_label(name)
                .iter()
                .map(|p| Cause::invalid("spec.serviceName", name, p)),
        );
    }
    causes.extend(non_negative(spec.replicas.map(i64::from), "spec.replicas"));
    causes.extend(non_negative(
        spec.min_ready_seconds.map(i64::from),
        "spec.minReadySeconds",
    ));
    causes.extend(selector_and_template(
        Some(&spec.selector),
        &spec.template,
        "statefulset",
    ));
    causes.extend(template_restarts_always(&spec.template, "StatefulSet"));
    causes
}

/// A DaemonSet.
pub fn validate_daemon_set(ds: &DaemonSet) -> Vec<Cause> {
    let Some(spec) = &ds.spec else {
        return vec![Cause::required("spec.selector", "")];
    };
    let mut causes = selector_and_template(Some(&spec.selector), &spec.template, "daemonset");
    causes.extend(template_restarts_always(&spec.template, "DaemonSet"));
    causes.extend(non_negative(
        spec.min_ready_seconds.map(i64::from),
        "spec.minReadySeconds",
    ));
    if let Some(strategy) = &spec.update_strategy {
        causes.extend(daemon_set_strategy(strategy));
    }
    causes.extend(non_negative(
        spec.revision_history_limit.map(i64::from),
        "spec.revisionHistoryLimit",
    ));
    causes
}

/// A selector present, valid and not empty, a template whose labels it matches, and the
/// template itself. `kind` words the empty-selector message (`…is invalid for deployment`).
pub fn selector_and_template(
    selector: Option<&LabelSelector>,
    template: &PodTemplateSpec,
    kind: &str,
) -> Vec<Cause> {
    let mut causes = Vec::new();
    match selector {
        None => causes.push(Cause::required("spec.selector", "")),
        Some(selector) => {
            causes.extend(validate_label_selector(selector, "spec.selector"));
            let labels = selector.match_labels.as_ref().map_or(0, |m| m.len());
            let expressions = selector.match_expressions.as_ref().map_or(0, Vec::len);
            if labels + expressions == 0 {
                causes.push(Cause::invalid_rendered(
                    "spec.selector",
                    &render::label_selector(selector),
                    &format!("empty selector is invalid for {kind}"),
                ));
            }
            causes.extend(template_matches(selector, template));
        }
    }
    causes.extend(validate_pod_template(template, "spec.template"));
    causes
}

/// The template's labels must be selected by a non-empty selector.
fn template_matches(selector: &LabelSelector, template: &PodTemplateSpec) -> Vec<Cause> {
    let Ok(parsed) = Selector::try_from(selector) else {
        return vec![Cause::invalid_rendered(
            "spec.selector",
            &render::label_selector(selector),
            "invalid label selector",
        )];
    };
    let labels = template.metadata.as_ref().and_then(|m| m.labels.as_ref());
    let empty = Default::default();
    if parsed.is_empty() || parsed.matches(labels.unwrap_or(&empty)) {
        return Vec::new();
    }
    vec![Cause::invalid_rendered(
        "spec.template.metadata.labels",
        &render::string_map(labels),
        "`selector` does not match template `labels`",
    )]
}

/// Upstream's `ValidateLabelSelector`: valid keys and values, operators with the values
/// they need.
pub fn validate_label_selector(selector: &LabelSelector, path: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    if let Some(labels) = &selector.match_labels {
        causes.extend(validate_labels(labels, &format!("{path}.matchLabels")));
    }
    for (i, r) in selector.match_expressions.iter().flatten().enumerate() {
        let at = format!("{path}.matchExpressions[{i}]");
        let has_values = r.values.as_ref().is_some_and(|v| !v.is_empty());
        match r.operator.as_str() {
            "In" | "NotIn" if !has_values => causes.push(Cause::required(
                format!("{at}.values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "Exists" | "DoesNotExist" if has_values => causes.push(Cause::forbidden(
                format!("{at}.values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => causes.push(Cause::invalid(
                format!("{at}.operator"),
                other,
                "not a valid selector operator",
            )),
        }
        causes.extend(
            check_qualified_name(&r.key)
                .iter()
                .map(|p| Cause::invalid(format!("{at}.key"), &r.key, p)),
        );
    }
    causes
}

/// Controllers' pods restart `Always` and have no active deadline.
fn template_restarts_always(template: &PodTemplateSpec, kind: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    let policy = restart_policy(template);
    if policy != "Always" {
        causes.push(Cause::not_supported(
            "spec.template.spec.restartPolicy",
            policy,
            &["Always"],
        ));
    }
    let deadline = template
        .spec
        .as_ref()
        .and_then(|s| s.active_deadline_seconds);
    if deadline.is_some() {
        causes.push(Cause::forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            &format!("activeDeadlineSeconds in {kind} is not Supported"),
        ));
    }
    causes
}

fn deployment_strategy(strategy: &DeploymentStrategy, path: &str) -> Vec<Cause> {
    match strategy.type_.as_deref().unwrap_or("RollingUpdate") {
        "Recreate" if strategy.rolling_update.is_some() => vec![Cause::forbidden(
            format!("{path}.rollingUpdate"),
            "may not be specified when strategy `type` is 'Recreate'",
        )],
        "Recreate" => Vec::new(),
        "RollingUpdate" => {
            let Some(ru) = &strategy.rolling_update else {
                return Vec::new();
            };
            let at = format!("{path}.rollingUpdate");
            let surge = ru
                .max_surge
                .clone()
                .unwrap_or(IntOrString::String("25%".into()));
            let unavailable = ru
                .max_unavailable
                .clone()
                .unwrap_or(IntOrString::String("25%".into()));
            let mut causes = int_or_percent(&unavailable, &format!("{at}.maxUnavailable"));
            causes.extend(int_or_percent(&surge, &format!("{at}.maxSurge")));
            if amount(&unavailable) == 0 && amount(&surge) == 0 {
                causes.push(Cause::invalid_rendered(
                    format!("{at}.maxUnavailable"),
                    &render::int_or_string(&unavailable),
                    "may not be 0 when `maxSurge` is 0",
                ));
            }
            causes.extend(at_most_100_percent(
                &unavailable,
                &format!("{at}.maxUnavailable"),
            ));
            causes
        }
        other => vec![Cause::not_supported(
            format!("{path}.type"),
            other,
            &["Recreate", "RollingUpdate"],
        )],
    }
}

fn daemon_set_strategy(strategy: &DaemonSetUpdateStrategy) -> Vec<Cause> {
    let path = "spec.updateStrategy";
    match strategy.type_.as_deref().unwrap_or("RollingUpdate") {
        "OnDelete" => Vec::new(),
        "RollingUpdate" => {
            let Some(ru) = &strategy.rolling_update else {
                return vec![Cause::required(format!("{path}.rollingUpdate"), "")];
            };
            let at = format!("{path}.rollingUpdate");
            let unavailable = ru.max_unavailable.clone().unwrap_or(IntOrString::Int(1));
            let surge = ru.max_surge.clone().unwrap_or(IntOrString::Int(0));
            let mut causes = int_or_percent(&unavailable, &format!("{at}.maxUnavailable"));
            causes.extend(int_or_percent(&surge, &format!("{at}.maxSurge")));
            causes.extend(at_most_100_percent(
                &unavailable,
                &format!("{at}.maxUnavailable"),
            ));
            causes.extend(at_most_100_percent(&surge, &format!("{at}.maxSurge")));
            match (amount(&unavailable) != 0, amount(&surge) != 0) {
                (true, true) => causes.push(Cause::invalid_rendered(
                    format!("{at}.maxSurge"),
                    &render::int_or_string(&surge),
                    "may not be set when maxUnavailable is non-zero",
                )),
                (false, false) => causes.push(Cause::required(
                    format!("{at}.maxUnavailable"),
                    "cannot be 0 when maxSurge is 0",
                )),
                _ => {}
            }
            causes
        }
        other => vec![Cause::not_supported(
            format!("{path}.type"),
            other,
            &["RollingUpdate", "OnDelete"],
        )],
    }
}

fn stateful_set_strategy(strategy: &StatefulSetUpdateStrategy) -> Vec<Cause> {
    let path = "spec.updateStrategy";
    match strategy.type_.as_deref().unwrap_or("RollingUpdate") {
        "OnDelete" if strategy.rolling_update.is_some() => vec![Cause::invalid_rendered(
            format!("{path}.rollingUpdate"),
            "apps.RollingUpdateStatefulSetStrategy{…}",
            "only allowed for updateStrategy 'RollingUpdate'",
        )],
        "OnDelete" => Vec::new(),
        "RollingUpdate" => {
            let Some(ru) = &strategy.rolling_update else {
                return Vec::new();
            };
            let at = format!("{path}.rollingUpdate");
            let mut causes = non_negative(ru.partition.map(i64::from), &format!("{at}.partition"));
            if let Some(unavailable) = &ru.max_unavailable {
                let p = format!("{at}.maxUnavailable");
                causes.extend(int_or_percent(unavailable, &p));
                if amount(unavailable) == 0 {
                    let rendered = render::int_or_string(unavailable);
                    causes.push(Cause::invalid_rendered(&p, &rendered, "cannot be 0"));
                }
                causes.extend(at_most_100_percent(unavailable, &p));
            }
            causes
        }
        other => vec![Cause::invalid(
            path,
            other,
            "must be 'RollingUpdate' or 'OnDelete'",
        )],
    }
}

/// An int or a percentage (`25%`), not negative.
fn int_or_percent(value: &IntOrString, path: &str) -> Vec<Cause> {
    match value {
        IntOrString::Int(i) => non_negative(Some(i64::from(*i)), path),
        IntOrString::String(s) if percent(s).is_none() => vec![Cause::invalid_rendered(
            path,
            &render::int_or_string(value),
            "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
        )],
        IntOrString::String(_) => Vec::new(),
    }
}

fn at_most_100_percent(value: &IntOrString, path: &str) -> Vec<Cause> {
    match value {
        IntOrString::String(s) if percent(s).is_some_and(|p| p > 100) => {
            vec![Cause::invalid_rendered(
                path,
                &render::int_or_string(value),
                "must not be greater than 100%",
            )]
        }
        _ => Vec::new(),
    }
}

fn percent(text: &str) -> Option<u64> {
    let digits = text.strip_suffix('%')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The number an int-or-percent stands for, as upstream's zero checks read it.
fn amount(value: &IntOrString) -> i64 {
    match value {
        IntOrString::Int(i) => i64::from(*i),
        IntOrString::String(s) => percent(s).map_or(0, |p| p as i64),
    }
}

/// The selector may not change (`spec.selector: Invalid value: v1.LabelSelector{…}: field is
/// immutable`).
pub fn selector_unchanged(new: Option<&LabelSelector>, old: Option<&LabelSelector>) -> Vec<Cause> {
    if new == old {
        return Vec::new();
    }
    let rendered = new.map_or_else(|| "null".to_string(), render::label_selector);
    vec![Cause::invalid_rendered(
        "spec.selector",
        &rendered,
        IMMUTABLE,
    )]
}

/// A StatefulSet may change only its replicas, ordinals, template, update strategy,
/// retention policy and minReadySeconds.
pub fn validate_stateful_set_update(new: &StatefulSet, old: &StatefulSet) -> Vec<Cause> {
    let (Some(new_spec), Some(old_spec)) = (&new.spec, &old.spec) else {
        return Vec::new();
    };
    let mut munged = new_spec.clone();
    munged.replicas = old_spec.replicas;
    munged.ordinals.clone_from(&old_spec.ordinals);
    munged.template.clone_from(&old_spec.template);
    munged.update_strategy.clone_from(&old_spec.update_strategy);
    munged
        .persistent_volume_claim_retention_policy
        .clone_from(&old_spec.persistent_volume_claim_retention_policy);
    munged.min_ready_seconds = old_spec.min_ready_seconds;
    if &munged == old_spec {
        return Vec::new();
    }
    vec![Cause::forbidden(
        "spec",
        "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
    )]
}

/// A ControllerRevision: data is required, the revision not negative.
pub fn validate_controller_revision(r: &ControllerRevision) -> Vec<Cause> {
    let mut causes = non_negative(Some(r.revision), "revision");
    if r.data.is_none() {
        causes.push(Cause::required("data", ""));
    }
    causes
}

/// A ControllerRevision's data never changes.
pub fn validate_controller_revision_update(
    new: &ControllerRevision,
    old: &ControllerRevision,
) -> Vec<Cause> {
    if new.data == old.data {
        return Vec::new();
    }
    vec![Cause::invalid_rendered(
        "data",
        "runtime.RawExtension{…}",
        IMMUTABLE,
    )]
}

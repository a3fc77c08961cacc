//! Pod specs, wherever they appear: in a Pod and in the template of every workload. Upstream's
//! `ValidatePodSpec` in the parts users meet: containers (names, images, ports, environment,
//! volume mounts, resources), volumes, restart and DNS policies, tolerations, and the few
//! fields a running Pod may change (`ValidatePodUpdate`).
//!
//! Fields that have a default are checked as that default when unset, so a spec reads the
//! same before and after defaulting.

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, Pod, PodSpec, PodTemplateSpec, ResourceRequirements,
    Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;
use serde_json::Value;

use super::{Cause, validate_annotations, validate_labels};
use crate::names::{check_dns1123_label, check_dns1123_subdomain, check_qualified_name};
use crate::quantity::Quantity;

/// The message of a forbidden Pod update, as upstream words it.
pub const POD_UPDATE_FORBIDDEN: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
const DNS_POLICIES: &[&str] = &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const TAINT_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];
const PORT_RANGE: &str = "must be between 1 and 65535, inclusive";

/// A Pod: its spec at `spec`.
pub fn validate_pod(pod: &Pod) -> Vec<Cause> {
    match &pod.spec {
        Some(spec) => validate_pod_spec(spec, "spec"),
        None => vec![Cause::required("spec.containers", "")],
    }
}

/// A workload's pod template at `path`: its labels, annotations and spec.
pub fn validate_pod_template(template: &PodTemplateSpec, path: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    if let Some(meta) = &template.metadata {
        if let Some(labels) = &meta.labels {
            causes.extend(validate_labels(labels, &format!("{path}.metadata.labels")));
        }
        if let Some(annotations) = &meta.annotations {
            causes.extend(validate_annotations(
                annotations,
                &format!("{path}.metadata.annotations"),
            ));
        }
    }
    match &template.spec {
        Some(spec) => causes.extend(validate_pod_spec(spec, &format!("{path}.spec"))),
        None => causes.push(Cause::required(format!("{path}.spec.containers"), "")),
    }
    causes
}

/// The restart policy a template's spec has or will be defaulted to.
pub fn restart_policy(template: &PodTemplateSpec) -> &str {
    template
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always")
}

/// A pod spec at `path` (`spec`, `spec.template.spec`).
pub fn validate_pod_spec(spec: &PodSpec, path: &str) -> Vec<Cause> {
    let mut causes = validate_volumes(spec.volumes.as_deref().unwrap_or_default(), path);
    let volumes: HashSet<&str> = spec
        .volumes
        .iter()
        .flatten()
        .map(|v| v.name.as_str())
        .collect();
    let mut names = HashSet::new();
    if spec.containers.is_empty() {
        causes.push(Cause::required(format!("{path}.containers"), ""));
    }
    for (i, c) in spec.containers.iter().enumerate() {
        let at = format!("{path}.containers[{i}]");
        causes.extend(validate_container(c, &at, &volumes, &mut names));
    }
    for (i, c) in spec.init_containers.iter().flatten().enumerate() {
        let at = format!("{path}.initContainers[{i}]");
        causes.extend(validate_container(c, &at, &volumes, &mut names));
    }
    causes.extend(one_of(
        spec.restart_policy.as_deref(),
        RESTART_POLICIES,
        &format!("{path}.restartPolicy"),
    ));
    causes.extend(one_of(
        spec.dns_policy.as_deref(),
        DNS_POLICIES,
        &format!("{path}.dnsPolicy"),
    ));
    causes.extend(validate_scheduling_fields(spec, path));
    causes.extend(validate_tolerations(
        spec.tolerations.as_deref().unwrap_or_default(),
        &format!("{path}.tolerations"),
    ));
    causes
}

/// An enumerated field: unset passes (it has a default), empty is required, others must be
/// listed.
fn one_of(value: Option<&str>, allowed: &[&str], path: &str) -> Vec<Cause> {
    match value {
        None => Vec::new(),
        Some("") => vec![Cause::required(path, "")],
        Some(v) if allowed.contains(&v) => Vec::new(),
        Some(v) => vec![Cause::not_supported(path, v, allowed)],
    }
}

/// Node name, service account, host and subdomain names, node selector, deadline.
fn validate_scheduling_fields(spec: &PodSpec, path: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    let named = [
        (
            "nodeName",
            &spec.node_name,
            check_dns1123_subdomain as fn(&str) -> Vec<String>,
        ),
        (
            "serviceAccountName",
            &spec.service_account_name,
            check_dns1123_subdomain,
        ),
        ("hostname", &spec.hostname, check_dns1123_label),
        ("subdomain", &spec.subdomain, check_dns1123_label),
    ];
    for (field, value, check) in named {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            let at = format!("{path}.{field}");
            causes.extend(check(v).iter().map(|p| Cause::invalid(&at, v, p)));
        }
    }
    if let Some(selector) = &spec.node_selector {
        causes.extend(validate_labels(selector, &format!("{path}.nodeSelector")));
    }
    if let Some(deadline) = spec.active_deadline_seconds
        && !(1..=i64::from(i32::MAX)).contains(&deadline)
    {
        causes.push(Cause::invalid_int(
            format!("{path}.activeDeadlineSeconds"),
            deadline,
            "must be between 1 and 2147483647, inclusive",
        ));
    }
    causes
}

fn validate_volumes(volumes: &[Volume], path: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    let mut seen = HashSet::new();
    for (i, volume) in volumes.iter().enumerate() {
        let at = format!("{path}.volumes[{i}]");
        let name = volume.name.as_str();
        if name.is_empty() {
            causes.push(Cause::required(format!("{at}.name"), ""));
        } else {
            causes.extend(
                check_dns1123_label(name)
                    .iter()
                    .map(|p| Cause::invalid(format!("{at}.name"), name, p)),
            );
            if !seen.insert(name) {
                causes.push(Cause::duplicate(format!("{at}.name"), &super::quote(name)));
            }
        }
        causes.extend(validate_volume_source(volume, &at));
    }
    causes
}

/// Exactly one source (`emptyDir`, `configMap`, …) per volume.
fn validate_volume_source(volume: &Volume, path: &str) -> Vec<Cause> {
    let encoded = serde_json::to_value(volume).unwrap_or_default();
    let sources: Vec<&String> = encoded
        .as_object()
        .into_iter()
        .flat_map(|o| o.keys())
        .filter(|k| *k != "name")
        .collect();
    match sources.as_slice() {
        [] => vec![Cause::required(path, "must specify a volume type")],
        [_] => Vec::new(),
        [_, extra, ..] => vec![Cause::forbidden(
            format!("{path}.{extra}"),
            "may not specify more than 1 volume type",
        )],
    }
}

fn validate_container(
    c: &Container,
    path: &str,
    volumes: &HashSet<&str>,
    names: &mut HashSet<String>,
) -> Vec<Cause> {
    let mut causes = validate_container_name(&c.name, path, names);
    match c.image.as_deref() {
        None | Some("") => causes.push(Cause::required(format!("{path}.image"), "")),
        Some(image) if image.trim() != image => causes.push(Cause::invalid(
            format!("{path}.image"),
            image,
            "must not have leading or trailing whitespace",
        )),
        Some(_) => {}
    }
    causes.extend(validate_ports(
        c.ports.as_deref().unwrap_or_default(),
        &format!("{path}.ports"),
    ));
    causes.extend(validate_env(
        c.env.as_deref().unwrap_or_default(),
        &format!("{path}.env"),
    ));
    causes.extend(validate_volume_mounts(
        c.volume_mounts.as_deref().unwrap_or_default(),
        volumes,
        &format!("{path}.volumeMounts"),
    ));
    if let Some(resources) = &c.resources {
        causes.extend(validate_resources(resources, &format!("{path}.resources")));
    }
    causes
}

/// Container names are DNS-1123 labels, unique across init and regular containers.
fn validate_container_name(name: &str, path: &str, names: &mut HashSet<String>) -> Vec<Cause> {
    let at = format!("{path}.name");
    if name.is_empty() {
        return vec![Cause::required(at, "")];
    }
    let mut causes: Vec<Cause> = check_dns1123_label(name)
        .iter()
        .map(|p| Cause::invalid(&at, name, p))
        .collect();
    if !names.insert(name.to_string()) {
        causes.push(Cause::duplicate(at, &super::quote(name)));
    }
    causes
}

fn validate_ports(ports: &[ContainerPort], path: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    let mut names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let at = format!("{path}[{i}]");
        if let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) {
            causes.extend(
                check_port_name(name)
                    .iter()
                    .map(|p| Cause::invalid(format!("{at}.name"), name, p)),
            );
            if !names.insert(name) {
                causes.push(Cause::duplicate(format!("{at}.name"), &super::quote(name)));
            }
        }
        if port.container_port == 0 {
            causes.push(Cause::required(format!("{at}.containerPort"), ""));
        } else {
            causes.extend(check_port(
                port.container_port,
                &format!("{at}.containerPort"),
            ));
        }
        if let Some(host_port) = port.host_port.filter(|p| *p != 0) {
            causes.extend(check_port(host_port, &format!("{at}.hostPort")));
        }
        causes.extend(validate_protocol(
            port.protocol.as_deref(),
            &format!("{at}.protocol"),
        ));
    }
    causes
}

/// A port number is 1–65535.
pub fn check_port(port: i32, path: &str) -> Vec<Cause> {
    if (1..=65535).contains(&port) {
        Vec::new()
    } else {
        vec![Cause::invalid_int(path, i64::from(port), PORT_RANGE)]
    }
}

/// A port's protocol: TCP (the default), UDP or SCTP.
pub fn validate_protocol(protocol: Option<&str>, path: &str) -> Vec<Cause> {
    one_of(protocol, PROTOCOLS, path)
}

/// Upstream's `IsValidPortName`: an IANA service name.
pub fn check_port_name(name: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if name.len() > 15 {
        problems.push("must be no more than 15 characters".to_string());
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        problems.push(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string(),
        );
    }
    if !name.bytes().any(|b| b.is_ascii_lowercase()) {
        problems.push("must contain at least one letter (a-z)".to_string());
    }
    if name.contains("--") {
        problems.push("must not contain consecutive hyphens".to_string());
    }
    if name.starts_with('-') || name.ends_with('-') {
        problems.push("must not begin or end with a hyphen".to_string());
    }
    problems
}

fn validate_env(env: &[EnvVar], path: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    for (i, var) in env.iter().enumerate() {
        let at = format!("{path}[{i}]");
        if var.name.is_empty() {
            causes.push(Cause::required(format!("{at}.name"), ""));
        } else if !var
            .name
            .bytes()
            .all(|b| (0x20..=0x7e).contains(&b) && b != b'=')
        {
            causes.push(Cause::invalid(
                format!("{at}.name"),
                &var.name,
                "a valid environment variable name must consist only of printable ASCII characters other than '='",
            ));
        }
        let has_value = var.value.as_deref().is_some_and(|v| !v.is_empty());
        if has_value && var.value_from.is_some() {
            causes.push(Cause::invalid(
                format!("{at}.valueFrom"),
                "",
                "may not be specified when `value` is not empty",
            ));
        }
    }
    causes
}

fn validate_volume_mounts(
    mounts: &[VolumeMount],
    volumes: &HashSet<&str>,
    path: &str,
) -> Vec<Cause> {
    let mut causes = Vec::new();
    let mut mount_paths = HashSet::new();
    for (i, mount) in mounts.iter().enumerate() {
        let at = format!("{path}[{i}]");
        if mount.name.is_empty() {
            causes.push(Cause::required(format!("{at}.name"), ""));
        }
        if !volumes.contains(mount.name.as_str()) {
            causes.push(Cause::not_found(format!("{at}.name"), &mount.name));
        }
        if mount.mount_path.is_empty() {
            causes.push(Cause::required(format!("{at}.mountPath"), ""));
        }
        if !mount_paths.insert(mount.mount_path.as_str()) {
            causes.push(Cause::invalid(
                format!("{at}.mountPath"),
                &mount.mount_path,
                "must be unique",
            ));
        }
    }
    causes
}

/// Quantities parse and are not negative; a request is at most its limit.
fn validate_resources(resources: &ResourceRequirements, path: &str) -> Vec<Cause> {
    let empty = BTreeMap::new();
    let (limits, mut causes) = quantities(
        resources.limits.as_ref().unwrap_or(&empty),
        &format!("{path}.limits"),
    );
    let (requests, request_causes) = quantities(
        resources.requests.as_ref().unwrap_or(&empty),
        &format!("{path}.requests"),
    );
    causes.extend(request_causes);
    for (name, request) in &requests {
        if let Some(limit) = limits.get(name)
            && request > limit
        {
            causes.push(Cause::invalid(
                format!("{path}.requests"),
                &request.to_string(),
                &format!("must be less than or equal to {name} limit of {limit}"),
            ));
        }
    }
    causes
}

/// The parsed, non-negative quantities of a resource list and the causes of the others.
fn quantities<'a>(
    list: &'a BTreeMap<String, ApiQuantity>,
    path: &str,
) -> (BTreeMap<&'a str, Quantity>, Vec<Cause>) {
    let mut parsed = BTreeMap::new();
    let mut causes = Vec::new();
    for (name, text) in list {
        let at = format!("{path}[{name}]");
        match Quantity::parse(&text.0) {
            Err(e) => causes.push(Cause::invalid(at, &text.0, &e.to_string())),
            Ok(q) if q.is_negative() => causes.push(Cause::invalid(
                at,
                &q.to_string(),
                "must be greater than or equal to 0",
            )),
            Ok(q) => {
                parsed.insert(name.as_str(), q);
            }
        }
    }
    (parsed, causes)
}

fn validate_tolerations(tolerations: &[Toleration], path: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    for (i, t) in tolerations.iter().enumerate() {
        causes.extend(validate_toleration(t, &format!("{path}[{i}]")));
    }
    causes
}

fn validate_toleration(t: &Toleration, path: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    let key = t.key.as_deref().unwrap_or_default();
    let operator = t.operator.as_deref().unwrap_or_default();
    let effect = t.effect.as_deref().unwrap_or_default();
    let value = t.value.as_deref().unwrap_or_default();
    let operator_path = format!("{path}.operator");
    if !key.is_empty() {
        causes.extend(
            check_qualified_name(key)
                .iter()
                .map(|p| Cause::invalid(format!("{path}.key"), key, p)),
        );
    } else if operator != "Exists" {
        causes.push(Cause::invalid(
            &operator_path,
            operator,
            "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
        ));
    }
    if t.toleration_seconds.is_some() && effect != "NoExecute" {
        causes.push(Cause::invalid(
            format!("{path}.effect"),
            effect,
            "effect must be 'NoExecute' when `tolerationSeconds` is set",
        ));
    }
    match operator {
        "" | "Equal" => causes.extend(
            crate::names::check_label_value(value)
                .iter()
                .map(|p| Cause::invalid(&operator_path, value, p)),
        ),
        "Exists" if !value.is_empty() => causes.push(Cause::invalid_rendered(
            &operator_path,
            &render_toleration(t),
            "value must be empty when `operator` is 'Exists'",
        )),
        "Exists" => {}
        other => causes.push(Cause::not_supported(
            &operator_path,
            other,
            &["Equal", "Exists"],
        )),
    }
    if !effect.is_empty() && !TAINT_EFFECTS.contains(&effect) {
        causes.push(Cause::not_supported(
            format!("{path}.effect"),
            effect,
            TAINT_EFFECTS,
        ));
    }
    causes
}

fn render_toleration(t: &Toleration) -> String {
    let seconds = match t.toleration_seconds {
        Some(s) => format!("(*int64)({s})"),
        None => "(*int64)(nil)".to_string(),
    };
    let q = |v: &Option<String>| super::quote(v.as_deref().unwrap_or_default());
    format!(
        "core.Toleration{{Key:{}, Operator:{}, Value:{}, Effect:{}, TolerationSeconds:{seconds}}}",
        q(&t.key),
        q(&t.operator),
        q(&t.value),
        q(&t.effect)
    )
}

/// What a Pod update may change: container images, a shorter active deadline, added
/// tolerations, a negative grace period raised to 1, and a node name that was unset (binding
/// sets it once). Anything else is `spec: Forbidden`.
pub fn validate_pod_update(new: &Pod, old: &Pod) -> Vec<Cause> {
    let (Some(new_spec), Some(old_spec)) = (&new.spec, &old.spec) else {
        return Vec::new();
    };
    if new_spec.containers.len() != old_spec.containers.len()
        || new_spec.init_containers.as_ref().map_or(0, Vec::len)
            != old_spec.init_containers.as_ref().map_or(0, Vec::len)
    {
        return vec![Cause::forbidden(
            "spec.containers",
            "pod updates may not add or remove containers",
        )];
    }
    let mut causes = validate_deadline_update(new_spec, old_spec);
    causes.extend(validate_toleration_update(new_spec, old_spec));
    if munged(new_spec, old_spec) != serde_json::to_value(old_spec).unwrap_or_default() {
        causes.push(Cause::forbidden("spec", POD_UPDATE_FORBIDDEN));
    }
    causes
}

fn validate_deadline_update(new: &PodSpec, old: &PodSpec) -> Vec<Cause> {
    let path = "spec.activeDeadlineSeconds";
    match (new.active_deadline_seconds, old.active_deadline_seconds) {
        (Some(n), _) if n < 0 => vec![Cause::invalid_int(
            path,
            n,
            "must be between 0 and 2147483647, inclusive",
        )],
        (Some(n), Some(o)) if n > o => vec![Cause::invalid_int(
            path,
            n,
            "must be less than or equal to previous value",
        )],
        (None, Some(_)) => vec![Cause::invalid(
            path,
            "null",
            "must not update from a positive integer to nil value",
        )],
        _ => Vec::new(),
    }
}

/// Every old toleration must still be there, `tolerationSeconds` aside.
fn validate_toleration_update(new: &PodSpec, old: &PodSpec) -> Vec<Cause> {
    let new_list = new.tolerations.as_deref().unwrap_or_default();
    let kept = old.tolerations.iter().flatten().all(|o| {
        new_list.iter().any(|n| {
            let mut o = o.clone();
            o.toleration_seconds = n.toleration_seconds;
            &o == n
        })
    });
    if kept {
        Vec::new()
    } else {
        vec![Cause::forbidden(
            "spec.tolerations",
            "existing toleration can not be modified except its tolerationSeconds",
        )]
    }
}

/// The new spec with every field a Pod update may change put back to its old value.
fn munged(new: &PodSpec, old: &PodSpec) -> Value {
    let mut spec = new.clone();
    for (c, o) in spec.containers.iter_mut().zip(&old.containers) {
        c.image.clone_from(&o.image);
    }
    let old_init = old.init_containers.iter().flatten();
    for (c, o) in spec.init_containers.iter_mut().flatten().zip(old_init) {
        c.image.clone_from(&o.image);
    }
    spec.active_deadline_seconds = old.active_deadline_seconds;
    spec.tolerations.clone_from(&old.tolerations);
    let negative_to_one = old.termination_grace_period_seconds.is_some_and(|g| g < 0)
        && new.termination_grace_period_seconds == Some(1);
    if negative_to_one {
        spec.termination_grace_period_seconds = old.termination_grace_period_seconds;
    }
    if old.node_name.as_deref().unwrap_or_default().is_empty() {
        spec.node_name.clone_from(&old.node_name);
    }
    serde_json::to_value(spec).unwrap_or_default()
}

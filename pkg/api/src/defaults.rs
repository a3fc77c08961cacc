//! Defaulting as upstream does it when it decodes an object (`SetDefaults_*`), plus what its
//! default admission plugins fill into a new Pod (service account, priority, the not-ready and
//! unreachable tolerations). Applied to typed k8s-openapi objects; idempotent.

use k8s_openapi::api::{apps, authorization, batch, coordination, core, discovery, events};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Fills the defaults of a kind.
pub trait Defaults {
    /// Sets every defaulted field that is unset.
    fn apply_defaults(&mut self) {}
}

fn set<T>(field: &mut Option<T>, value: T) {
    if field.is_none() {
        *field = Some(value);
    }
}

fn set_str(field: &mut Option<String>, value: &str) {
    set(field, value.to_string());
}

/// `Always` for `:latest` or untagged images, `IfNotPresent` otherwise.
pub fn image_pull_policy(image: &str) -> &'static str {
    let name = image.rsplit('/').next().unwrap_or(image);
    let tagged = name.contains(':') && !name.ends_with(":latest");
    if tagged || image.contains('@') {
        "IfNotPresent"
    } else {
        "Always"
    }
}

fn container(c: &mut core::v1::Container) {
    if let Some(image) = &c.image {
        let policy = image_pull_policy(image);
        set_str(&mut c.image_pull_policy, policy);
    }
    set_str(&mut c.termination_message_path, "/dev/termination-log");
    set_str(&mut c.termination_message_policy, "File");
    set(&mut c.resources, Default::default());
    for p in c.ports.iter_mut().flatten() {
        set_str(&mut p.protocol, "TCP");
    }
    for probe in [
        &mut c.liveness_probe,
        &mut c.readiness_probe,
        &mut c.startup_probe,
    ]
    .into_iter()
    .flatten()
    {
        set(&mut probe.timeout_seconds, 1);
        set(&mut probe.period_seconds, 10);
        set(&mut probe.success_threshold, 1);
        set(&mut probe.failure_threshold, 3);
    }
}

/// The defaults of a pod spec, in a Pod or in a template.
fn pod_spec(spec: &mut core::v1::PodSpec) {
    set_str(&mut spec.restart_policy, "Always");
    set_str(&mut spec.dns_policy, "ClusterFirst");
    set_str(&mut spec.scheduler_name, "default-scheduler");
    set(&mut spec.termination_grace_period_seconds, 30);
    set(&mut spec.security_context, Default::default());
    set(&mut spec.enable_service_links, true);
    spec.containers.iter_mut().for_each(container);
    spec.init_containers
        .iter_mut()
        .flatten()
        .for_each(container);
}

fn template(t: &mut core::v1::PodTemplateSpec) {
    if let Some(spec) = &mut t.spec {
        pod_spec(spec);
    }
}

/// The toleration upstream's DefaultTolerationSeconds admission adds for a taint.
fn default_toleration(key: &str) -> core::v1::Toleration {
    core::v1::Toleration {
        key: Some(key.to_string()),
        operator: Some("Exists".into()),
        effect: Some("NoExecute".into()),
        toleration_seconds: Some(300),
        value: None,
    }
}

impl Defaults for core::v1::Pod {
    fn apply_defaults(&mut self) {
        let Some(spec) = &mut self.spec else {
            return;
        };
        pod_spec(spec);
        // What upstream's admission fills into every new pod.
        set_str(&mut spec.service_account_name, "default");
        spec.service_account = spec.service_account_name.clone();
        set(&mut spec.priority, 0);
        set_str(&mut spec.preemption_policy, "PreemptLowerPriority");
        let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
        for key in [
            "node.kubernetes.io/not-ready",
            "node.kubernetes.io/unreachable",
        ] {
            let covered = tolerations.iter().any(|t| {
                t.key.as_deref() == Some(key)
                    && matches!(t.effect.as_deref(), None | Some("NoExecute"))
            });
            if !covered {
                tolerations.push(default_toleration(key));
            }
        }
    }
}

impl Defaults for core::v1::Namespace {
    fn apply_defaults(&mut self) {
        // Upstream labels every namespace with its own name.
        if let Some(name) = self.metadata.name.clone() {
            self.metadata
                .labels
                .get_or_insert_with(Default::default)
                .insert("kubernetes.io/metadata.name".into(), name);
        }
    }
}

impl Defaults for core::v1::Service {
    fn apply_defaults(&mut self) {
        let Some(spec) = &mut self.spec else {
            return;
        };
        set_str(&mut spec.type_, "ClusterIP");
        set_str(&mut spec.session_affinity, "None");
        if spec.type_.as_deref() != Some("ExternalName") {
            set_str(&mut spec.internal_traffic_policy, "Cluster");
        }
        for p in spec.ports.iter_mut().flatten() {
            set_str(&mut p.protocol, "TCP");
            set(&mut p.target_port, IntOrString::Int(p.port));
        }
    }
}

impl Defaults for core::v1::Secret {
    fn apply_defaults(&mut self) {
        set_str(&mut self.type_, "Opaque");
    }
}

impl Defaults for apps::v1::Deployment {
    fn apply_defaults(&mut self) {
        let Some(spec) = &mut self.spec else {
            return;
        };
        set(&mut spec.replicas, 1);
        let strategy = spec.strategy.get_or_insert_with(Default::default);
        set_str(&mut strategy.type_, "RollingUpdate");
        if strategy.type_.as_deref() == Some("RollingUpdate") {
            let ru = strategy.rolling_update.get_or_insert_with(Default::default);
            set(&mut ru.max_unavailable, IntOrString::String("25%".into()));
            set(&mut ru.max_surge, IntOrString::String("25%".into()));
        }
        set(&mut spec.revision_history_limit, 10);
        set(&mut spec.progress_deadline_seconds, 600);
        template(&mut spec.template);
    }
}

impl Defaults for apps::v1::ReplicaSet {
    fn apply_defaults(&mut self) {
        if let Some(spec) = &mut self.spec {
            set(&mut spec.replicas, 1);
            if let Some(t) = &mut spec.template {
                template(t);
            }
        }
    }
}

impl Defaults for apps::v1::StatefulSet {
    fn apply_defaults(&mut self) {
        let Some(spec) = &mut self.spec else {
            return;
        };
        set(&mut spec.replicas, 1);
        set_str(&mut spec.pod_management_policy, "OrderedReady");
        let strategy = spec.update_strategy.get_or_insert_with(Default::default);
        set_str(&mut strategy.type_, "RollingUpdate");
        if strategy.type_.as_deref() == Some("RollingUpdate") {
            let ru = strategy.rolling_update.get_or_insert_with(Default::default);
            set(&mut ru.partition, 0);
        }
        set(&mut spec.revision_history_limit, 10);
        let retention = spec
            .persistent_volume_claim_retention_policy
            .get_or_insert_with(Default::default);
        set_str(&mut retention.when_deleted, "Retain");
        set_str(&mut retention.when_scaled, "Retain");
        template(&mut spec.template);
    }
}

impl Defaults for apps::v1::DaemonSet {
    fn apply_defaults(&mut self) {
        let Some(spec) = &mut self.spec else {
            return;
        };
        let strategy = spec.update_strategy.get_or_insert_with(Default::default);
        set_str(&mut strategy.type_, "RollingUpdate");
        if strategy.type_.as_deref() == Some("RollingUpdate") {
            let ru = strategy.rolling_update.get_or_insert_with(Default::default);
            set(&mut ru.max_unavailable, IntOrString::Int(1));
            set(&mut ru.max_surge, IntOrString::Int(0));
        }
        set(&mut spec.revision_history_limit, 10);
        template(&mut spec.template);
    }
}

impl Defaults for batch::v1::Job {
    fn apply_defaults(&mut self) {
        let Some(spec) = &mut self.spec else {
            return;
        };
        if spec.completions.is_none() && spec.parallelism.is_none() {
            spec.completions = Some(1);
        }
        set(&mut spec.parallelism, 1);
        set(&mut spec.backoff_limit, 6);
        set_str(&mut spec.completion_mode, "NonIndexed");
        set(&mut spec.suspend, false);
        set(&mut spec.manual_selector, false);
        if spec.pod_failure_policy.is_none() {
            set_str(&mut spec.pod_replacement_policy, "TerminatingOrFailed");
        }
        template(&mut spec.template);
    }
}

impl Defaults for batch::v1::CronJob {
    fn apply_defaults(&mut self) {
        let Some(spec) = &mut self.spec else {
            return;
        };
        set_str(&mut spec.concurrency_policy, "Allow");
        set(&mut spec.suspend, false);
        set(&mut spec.successful_jobs_history_limit, 3);
        set(&mut spec.failed_jobs_history_limit, 1);
        if let Some(job) = &mut spec.job_template.spec {
            set(&mut job.backoff_limit, 6);
            set_str(&mut job.completion_mode, "NonIndexed");
            set(&mut job.suspend, false);
            template(&mut job.template);
        }
    }
}

impl Defaults for core::v1::Node {}
impl Defaults for core::v1::Endpoints {}
impl Defaults for core::v1::ConfigMap {}
impl Defaults for core::v1::ServiceAccount {}
impl Defaults for core::v1::Event {}
impl Defaults for coordination::v1::Lease {}
impl Defaults for apps::v1::ControllerRevision {}
impl Defaults for discovery::v1::EndpointSlice {}
impl Defaults for events::v1::Event {}
impl Defaults for authorization::v1::SelfSubjectAccessReview {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_follows_the_tag() {
        assert_eq!(image_pull_policy("nginx"), "Always");
        assert_eq!(image_pull_policy("nginx:latest"), "Always");
        assert_eq!(image_pull_policy("nginx:1.27"), "IfNotPresent");
        assert_eq!(image_pull_policy("127.0.0.1:5000/busybox"), "Always");
        assert_eq!(
            image_pull_policy("127.0.0.1:5000/busybox:1"),
            "IfNotPresent"
        );
        assert_eq!(image_pull_policy("busybox@sha256:abcd"), "IfNotPresent");
    }

    #[test]
    fn a_pod_gets_upstreams_defaults_once() {
        let mut pod: core::v1::Pod = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}
        }))
        .unwrap();
        pod.apply_defaults();
        pod.apply_defaults();
        let spec = pod.spec.unwrap();
        assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
        assert_eq!(spec.scheduler_name.as_deref(), Some("default-scheduler"));
        assert_eq!(spec.termination_grace_period_seconds, Some(30));
        assert_eq!(spec.tolerations.unwrap().len(), 2);
        assert_eq!(
            spec.containers[0].image_pull_policy.as_deref(),
            Some("Always")
        );
    }
}

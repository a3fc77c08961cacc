//! Which rules a resource's objects follow. [`validate_create`] runs the metadata checks
//! every object gets and the kind's own rules; [`validate_update`] runs the same on the new
//! object and adds what may not change. Objects are read through their k8s-openapi types.

use k8s_openapi::Metadata;
use k8s_openapi::api::{apps, batch, coordination, core, discovery};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{
    Cause, batch as batch_rules, cluster, config, endpoints, events, pods, services,
    validate_object_meta, workloads,
};
use crate::Resource;
use crate::typed::decode;

/// The causes that make `obj` an invalid new object of `resource`: its metadata (as
/// [`validate_object_meta`]) and its kind's rules. Fields left unset are checked as their
/// defaults would be, so the object may be checked before or after defaulting.
pub fn validate_create(resource: &Resource, obj: &Value) -> Vec<Cause> {
    check(resource, None, obj)
}

/// The causes that make `new` an invalid replacement for `old`: everything
/// [`validate_create`] checks on `new`, then the kind's immutable fields.
pub fn validate_update(resource: &Resource, old: &Value, new: &Value) -> Vec<Cause> {
    check(resource, Some(old), new)
}

/// A kind's own rules.
trait Rules: DeserializeOwned + Metadata<Ty = ObjectMeta> {
    /// The rules of a valid object.
    fn create(&self) -> Vec<Cause> {
        Vec::new()
    }

    /// What may not change from `old`.
    fn update(&self, _old: &Self) -> Vec<Cause> {
        Vec::new()
    }
}

impl Rules for core::v1::Pod {
    fn create(&self) -> Vec<Cause> {
        pods::validate_pod(self)
    }
    fn update(&self, old: &Self) -> Vec<Cause> {
        pods::validate_pod_update(self, old)
    }
}

impl Rules for core::v1::Service {
    fn create(&self) -> Vec<Cause> {
        services::validate_service(self)
    }
    fn update(&self, old: &Self) -> Vec<Cause> {
        services::validate_service_update(self, old)
    }
}

impl Rules for core::v1::ConfigMap {
    fn create(&self) -> Vec<Cause> {
        config::validate_config_map(self)
    }
    fn update(&self, old: &Self) -> Vec<Cause> {
        config::validate_config_map_update(self, old)
    }
}

impl Rules for core::v1::Secret {
    fn create(&self) -> Vec<Cause> {
        config::validate_secret(self)
    }
    fn update(&self, old: &Self) -> Vec<Cause> {
        config::validate_secret_update(self, old)
    }
}

impl Rules for core::v1::Namespace {
    fn create(&self) -> Vec<Cause> {
        cluster::validate_namespace(self)
    }
}

impl Rules for core::v1::Node {
    fn create(&self) -> Vec<Cause> {
        cluster::validate_node(self)
    }
    fn update(&self, old: &Self) -> Vec<Cause> {
        cluster::validate_node_update(self, old)
    }
}

impl Rules for core::v1::Endpoints {}
impl Rules for core::v1::ServiceAccount {}

impl Rules for coordination::v1::Lease {
    fn create(&self) -> Vec<Cause> {
        cluster::validate_lease(self)
    }
}

impl Rules for apps::v1::ControllerRevision {
    fn create(&self) -> Vec<Cause> {
        workloads::validate_controller_revision(self)
    }
    fn update(&self, old: &Self) -> Vec<Cause> {
        workloads::validate_controller_revision_update(self, old)
    }
}

impl Rules for discovery::v1::EndpointSlice {
    fn create(&self) -> Vec<Cause> {
        endpoints::validate_endpoint_slice(self)
    }
    fn update(&self, old: &Self) -> Vec<Cause> {
        endpoints::validate_endpoint_slice_update(self, old)
    }
}

impl Rules for apps::v1::Deployment {
    fn create(&self) -> Vec<Cause> {
        workloads::validate_deployment(self)
    }
    fn update(&self, old: &Self) -> Vec<Cause> {
        let selector = |d: &Self| d.spec.as_ref().map(|s| s.selector.clone());
        workloads::selector_unchanged(selector(self).as_ref(), selector(old).as_ref())
    }
}

impl Rules for apps::v1::ReplicaSet {
    fn create(&self) -> Vec<Cause> {
        workloads::validate_replica_set(self)
    }
    fn update(&self, old: &Self) -> Vec<Cause> {
        let selector = |r: &Self| r.spec.as_ref().map(|s| s.selector.clone());
        workloads::selector_unchanged(selector(self).as_ref(), selector(old).as_ref())
    }
}

impl Rules for apps::v1::DaemonSet {
    fn create(&self) -> Vec<Cause> {
        workloads::validate_daemon_set(self)
    }
    fn update(&self, old: &Self) -> Vec<Cause> {
        let selector = |d: &Self| d.spec.as_ref().map(|s| s.selector.clone());
        workloads::selector_unchanged(selector(self).as_ref(), selector(old).as_ref())
    }
}

impl Rules for apps::v1::StatefulSet {
    fn create(&self) -> Vec<Cause> {
        workloads::validate_stateful_set(self)
    }
    fn update(&self, old: &Self) -> Vec<Cause> {
        workloads::validate_stateful_set_update(self, old)
    }
}

impl Rules for batch::v1::Job {
    fn create(&self) -> Vec<Cause> {
        batch_rules::validate_job(self)
    }
    fn update(&self, old: &Self) -> Vec<Cause> {
        batch_rules::validate_job_update(self, old)
    }
}

impl Rules for batch::v1::CronJob {
    fn create(&self) -> Vec<Cause> {
        batch_rules::validate_cron_job(self)
    }
}

fn check(resource: &Resource, old: Option<&Value>, new: &Value) -> Vec<Cause> {
    match (resource.api_version, resource.kind) {
        ("v1", "Pod") => typed::<core::v1::Pod>(resource, old, new),
        ("v1", "Service") => typed::<core::v1::Service>(resource, old, new),
        ("v1", "ConfigMap") => typed::<core::v1::ConfigMap>(resource, old, new),
        ("v1", "Secret") => typed::<core::v1::Secret>(resource, old, new),
        ("v1", "Namespace") => typed::<core::v1::Namespace>(resource, old, new),
        ("v1", "Node") => typed::<core::v1::Node>(resource, old, new),
        ("v1", "Endpoints") => typed::<core::v1::Endpoints>(resource, old, new),
        ("v1", "ServiceAccount") => typed::<core::v1::ServiceAccount>(resource, old, new),
        ("v1", "Event") => core_event(resource, new),
        ("events.k8s.io/v1", "Event") => events_event(resource, old, new),
        ("apps/v1", "Deployment") => typed::<apps::v1::Deployment>(resource, old, new),
        ("apps/v1", "ReplicaSet") => typed::<apps::v1::ReplicaSet>(resource, old, new),
        ("apps/v1", "StatefulSet") => typed::<apps::v1::StatefulSet>(resource, old, new),
        ("apps/v1", "DaemonSet") => typed::<apps::v1::DaemonSet>(resource, old, new),
        ("apps/v1", "ControllerRevision") => {
            typed::<apps::v1::ControllerRevision>(resource, old, new)
        }
        ("batch/v1", "Job") => typed::<batch::v1::Job>(resource, old, new),
        ("batch/v1", "CronJob") => typed::<batch::v1::CronJob>(resource, old, new),
        ("coordination.k8s.io/v1", "Lease") => typed::<coordination::v1::Lease>(resource, old, new),
        ("discovery.k8s.io/v1", "EndpointSlice") => {
            typed::<discovery::v1::EndpointSlice>(resource, old, new)
        }
        _ => untyped(resource, new),
    }
}

/// Metadata, the kind's rules, and with an old object its update rules.
fn typed<T: Rules>(resource: &Resource, old: Option<&Value>, new: &Value) -> Vec<Cause> {
    let (new, missing) = fill_missing(resource, new);
    let new_obj: T = match decode(&new) {
        Ok(obj) => obj,
        Err(e) => return vec![undecodable(resource, &e.0)],
    };
    let mut causes = validate_object_meta(new_obj.metadata(), resource);
    causes.extend(new_obj.create());
    // A missing field was filled in to decode; its other complaints are noise.
    causes.retain(|c| !missing.iter().any(|m| c.field == m.field));
    if let Some(old) = old {
        match decode::<T>(&fill_missing(resource, old).0) {
            Ok(old_obj) => causes.extend(new_obj.update(&old_obj)),
            Err(e) => causes.push(undecodable(resource, &e.0)),
        }
    }
    let mut all = missing;
    all.extend(causes);
    all
}

/// A field that may be missing: the object holding it (`""` for the root), its name, what to
/// fill in, and whether upstream calls it required.
type Missing = (&'static str, &'static str, fn() -> Value, bool);

/// Fields the k8s-openapi types require but upstream's Go types leave zero when absent:
/// filled in (`{}`, `""`) so the object decodes, and, where upstream has a pointer that must
/// be set, reported as required.
fn fill_missing(resource: &Resource, obj: &Value) -> (Value, Vec<Cause>) {
    let fields: &[Missing] = match resource.kind {
        "Deployment" | "StatefulSet" | "DaemonSet" => &[
            ("spec", "selector", || json!({}), true),
            ("spec", "template", || json!({}), false),
        ],
        "ReplicaSet" => &[("spec", "selector", || json!({}), true)],
        "ControllerRevision" => &[("", "revision", || json!(0), false)],
        "Job" => &[("spec", "template", || json!({}), false)],
        "CronJob" => &[
            ("spec", "schedule", || json!(""), false),
            ("spec", "jobTemplate", || json!({}), false),
        ],
        "EndpointSlice" => &[
            ("", "addressType", || json!(""), false),
            ("", "endpoints", || json!([]), false),
        ],
        _ => &[],
    };
    let mut obj = obj.clone();
    let mut causes = Vec::new();
    for (parent, field, filler, required) in fields {
        let holder = if parent.is_empty() {
            obj.as_object_mut()
        } else {
            obj.get_mut(*parent).and_then(Value::as_object_mut)
        };
        let Some(holder) = holder else { continue };
        if holder.get(*field).is_none_or(Value::is_null) {
            holder.insert((*field).to_string(), filler());
            if *required {
                let path = [*parent, *field].join(".");
                causes.push(Cause::required(path.trim_start_matches('.'), ""));
            }
        }
    }
    (obj, causes)
}

/// Kinds without a type here (reviews): their metadata only.
fn untyped(resource: &Resource, obj: &Value) -> Vec<Cause> {
    match decode::<ObjectMeta>(obj.get("metadata").unwrap_or(&Value::Null)) {
        Ok(meta) => validate_object_meta(&meta, resource),
        Err(e) => vec![undecodable(resource, &e.0)],
    }
}

fn undecodable(resource: &Resource, error: &str) -> Cause {
    Cause::invalid(
        "",
        resource.kind,
        &format!("cannot be read as a {}: {error}", resource.kind),
    )
}

/// A core event's object: the event in core form, `involvedObject` required.
fn core_form(obj: &Value) -> (Value, Vec<Cause>) {
    let mut obj = obj.clone();
    let mut causes = Vec::new();
    if let Some(map) = obj.as_object_mut()
        && map.get("involvedObject").is_none_or(Value::is_null)
    {
        causes.push(Cause::required("involvedObject", ""));
        map.insert("involvedObject".into(), json!({}));
    }
    (obj, causes)
}

/// A core `v1` Event: metadata and the legacy rules, on create and update alike.
fn core_event(resource: &Resource, obj: &Value) -> Vec<Cause> {
    let (obj, mut causes) = core_form(obj);
    match decode::<core::v1::Event>(&obj) {
        Ok(event) => {
            causes.extend(validate_object_meta(&event.metadata, resource));
            causes.extend(events::validate_legacy(&event));
        }
        Err(e) => causes.push(undecodable(resource, &e.0)),
    }
    causes
}

/// An `events.k8s.io/v1` Event, checked in core form: the legacy rules, then the strict
/// rules of a create or the fixed fields of an update.
fn events_event(resource: &Resource, old: Option<&Value>, new: &Value) -> Vec<Cause> {
    let (core_new, mut causes) = core_form(&crate::events::events_v1_to_event_v1(new));
    let event = match decode::<core::v1::Event>(&core_new) {
        Ok(event) => event,
        Err(e) => return vec![undecodable(resource, &e.0)],
    };
    causes.extend(validate_object_meta(&event.metadata, resource));
    causes.extend(events::validate_legacy(&event));
    match old {
        None => causes.extend(events::validate_strict(&event)),
        Some(old) => {
            let core_old = crate::events::events_v1_to_event_v1(old);
            causes.extend(events::validate_strict_update(&core_new, &core_old, &event));
        }
    }
    causes
}

//! What the server decides about an object on create and update, per kind, as upstream's
//! registry strategies do: system metadata (uid, creation time, generation), status reset on
//! create, status and main resource written separately, immutable metadata kept.

use cairn_api::Resource;
use serde_json::{Value, json};

use cairn_api::validation::Cause;

use crate::error::{ApiError, ApiResult};
use crate::object;

/// Whether the kind counts `metadata.generation` up on spec changes.
pub fn tracks_generation(resource: &Resource) -> bool {
    matches!(resource.group, "apps" | "batch")
}

/// The status a new object starts with, when the kind resets it on create.
fn initial_status(resource: &Resource, obj: &Value) -> Option<Value> {
    match (resource.group, resource.kind) {
        ("", "Pod") => Some(json!({"phase": "Pending", "qosClass": qos_class(obj)})),
        ("", "Namespace") => Some(json!({"phase": "Active"})),
        ("", "Service") => Some(json!({"loadBalancer": {}})),
        ("", "Node") => None,
        _ if resource.has_status() => Some(json!({})),
        _ => None,
    }
}

/// The pod's QoS class from its containers' requests and limits.
fn qos_class(pod: &Value) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .flat_map(|k| pod["spec"][k].as_array().into_iter().flatten())
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &containers {
        let requests = &c["resources"]["requests"];
        let limits = &c["resources"]["limits"];
        for r in ["cpu", "memory"] {
            let (req, lim) = (&requests[r], &limits[r]);
            if !req.is_null() || !lim.is_null() {
                any = true;
            }
            if lim.is_null() || (!req.is_null() && req != lim) {
                guaranteed = false;
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

/// Fills the system metadata of a new object and resets what a create may not set.
pub fn prepare_create(resource: &Resource, obj: &mut Value) {
    let meta = object::meta_mut(obj);
    meta.insert("uid".into(), json!(object::new_uid()));
    meta.insert("creationTimestamp".into(), json!(object::now()));
    for field in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        meta.remove(field);
    }
    if tracks_generation(resource) {
        meta.insert("generation".into(), json!(1));
    } else {
        meta.remove("generation");
    }
    if let Some(status) = initial_status(resource, obj) {
        obj["status"] = status;
    }
    if resource.kind == "Namespace" && resource.group.is_empty() {
        obj["spec"]["finalizers"] = json!(["kubernetes"]);
    }
    if resource.kind == "Job" && resource.group == "batch" {
        generate_job_selector(obj);
    }
}

/// Upstream's Job `generateSelector`: unless `manualSelector` is set, the pods of a Job carry
/// its uid and name as labels and the Job selects them by uid.
fn generate_job_selector(obj: &mut Value) {
    if obj["spec"]["manualSelector"] == json!(true) || !obj["spec"].is_object() {
        return;
    }
    let uid = object::meta_str(obj, "uid").unwrap_or_default().to_string();
    let name = object::name(obj).unwrap_or_default().to_string();
    let template = &mut obj["spec"]["template"];
    if !template["metadata"].is_object() {
        template["metadata"] = json!({});
    }
    if !template["metadata"]["labels"].is_object() {
        template["metadata"]["labels"] = json!({});
    }
    let labels = &mut template["metadata"]["labels"];
    for (key, value) in [
        ("batch.kubernetes.io/controller-uid", &uid),
        ("controller-uid", &uid),
        ("batch.kubernetes.io/job-name", &name),
        ("job-name", &name),
    ] {
        if labels[key].is_null() {
            labels[key] = json!(value);
        }
    }
    if obj["spec"]["selector"].is_null() {
        obj["spec"]["selector"] =
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
    }
}

/// Metadata a client cannot change once the object exists.
const IMMUTABLE_META: &[&str] = &[
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "namespace",
    "name",
];

/// Prepares an update of the object itself (`status` false) or of its status subresource.
pub fn prepare_update(resource: &Resource, old: &Value, new: &mut Value, status: bool) {
    if status {
        let status = new.get("status").cloned();
        let rv = object::meta_str(new, "resourceVersion").map(str::to_string);
        *new = old.clone();
        match status {
            Some(s) => new["status"] = s,
            None => {
                if let Some(o) = new.as_object_mut() {
                    o.remove("status");
                }
            }
        }
        if let Some(rv) = rv {
            object::meta_mut(new).insert("resourceVersion".into(), json!(rv));
        }
        return;
    }
    let old_meta = old.get("metadata").cloned().unwrap_or_default();
    let meta = object::meta_mut(new);
    for field in IMMUTABLE_META {
        match old_meta.get(*field) {
            Some(v) => meta.insert((*field).to_string(), v.clone()),
            None => meta.remove(*field),
        };
    }
    if resource.has_status() {
        match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(o) = new.as_object_mut() {
                    o.remove("status");
                }
            }
        }
    }
    // A Service's allocated cluster IPs stay when an update leaves them out.
    if resource.kind == "Service" && resource.group.is_empty() {
        for field in ["clusterIP", "clusterIPs"] {
            if new["spec"].get(field).is_none()
                && let Some(v) = old["spec"].get(field)
            {
                new["spec"][field] = v.clone();
            }
        }
    }
    if tracks_generation(resource) && old.get("spec") != new.get("spec") {
        let generation = old_meta["generation"].as_i64().unwrap_or(1) + 1;
        object::meta_mut(new).insert("generation".into(), json!(generation));
    }
}

/// Whether an update changes nothing but the resourceVersion a client echoed back.
pub fn is_noop(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
            m.remove("managedFields");
        }
        v
    };
    strip(old) == strip(new)
}

/// Refuses an object whose causes say it is invalid.
pub fn check(resource: &Resource, obj: &Value, causes: Vec<Cause>) -> ApiResult<()> {
    if causes.is_empty() {
        return Ok(());
    }
    Err(ApiError::invalid(
        resource.kind,
        resource.group,
        object::name(obj).unwrap_or_default(),
        causes,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(group: &str, version: &str, plural: &str) -> &'static Resource {
        cairn_api::resources::find(group, version, plural).unwrap()
    }

    #[test]
    fn generation_counts_spec_changes_only() {
        let deploy = res("apps", "v1", "deployments");
        let mut old = json!({"metadata": {"name": "d"}, "spec": {"replicas": 1}});
        prepare_create(deploy, &mut old);
        assert_eq!(old["metadata"]["generation"], 1);
        assert_eq!(old["status"], json!({}));
        let mut new = old.clone();
        new["spec"]["replicas"] = json!(2);
        new["status"] = json!({"replicas": 9});
        prepare_update(deploy, &old, &mut new, false);
        assert_eq!(new["metadata"]["generation"], 2);
        assert_eq!(
            new["status"],
            json!({}),
            "status is written through /status only"
        );
        let mut labels_only = old.clone();
        labels_only["metadata"]["labels"] = json!({"a": "b"});
        prepare_update(deploy, &old, &mut labels_only, false);
        assert_eq!(labels_only["metadata"]["generation"], 1);
    }

    #[test]
    fn status_updates_touch_only_status() {
        let pods = res("", "v1", "pods");
        let old = json!({"metadata": {"name": "p", "labels": {"a": "b"}}, "spec": {"nodeName": "n"}, "status": {"phase": "Pending"}});
        let mut new = json!({"metadata": {"name": "p", "labels": {}}, "spec": {"nodeName": "x"}, "status": {"phase": "Running"}});
        prepare_update(pods, &old, &mut new, true);
        assert_eq!(new["spec"]["nodeName"], "n");
        assert_eq!(new["metadata"]["labels"]["a"], "b");
        assert_eq!(new["status"]["phase"], "Running");
    }

    #[test]
    fn qos_classes() {
        let pod = |res: Value| json!({"spec": {"containers": [{"resources": res}]}});
        assert_eq!(qos_class(&pod(json!({}))), "BestEffort");
        assert_eq!(
            qos_class(&pod(json!({"limits": {"cpu": "1", "memory": "1Gi"}}))),
            "Guaranteed"
        );
        assert_eq!(
            qos_class(&pod(json!({"requests": {"cpu": "1"}}))),
            "Burstable"
        );
    }
}

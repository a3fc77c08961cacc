use serde_json::json;

use super::*;
use crate::resources::find;

const T0: &str = "2024-05-01T10:00:00Z";
const T1: &str = "2024-05-01T11:00:00Z";

fn configmaps() -> &'static Resource {
    find("", "v1", "configmaps").unwrap()
}

fn req<'a>(manager: &'a str, now: &'a str) -> Request<'a> {
    Request {
        manager,
        subresource: None,
        now,
    }
}

#[test]
fn default_managers_come_from_the_user_agent() {
    assert_eq!(
        default_manager("kubectl/v1.33.0 (linux/amd64) kubernetes/8adc0f0"),
        "kubectl"
    );
    assert_eq!(default_manager("kube-rs/0.99"), "kube-rs");
    assert_eq!(default_manager("curl"), "curl");
    assert_eq!(default_manager(""), "");
    assert_eq!(default_manager(&"x".repeat(200)).len(), 128);
}

#[test]
fn creates_and_updates_are_recorded() {
    let cm = configmaps();
    let mut created = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "d", "labels": {"a": "1"}}, "data": {"k": "v"}});
    record_update(cm, None, &mut created, &req("kubectl-create", T0));
    assert_eq!(
        created["metadata"]["managedFields"],
        json!([{
            "manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": T0,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {".": {}, "f:k": {}}, "f:metadata": {"f:labels": {".": {}, "f:a": {}}}}
        }])
    );
    let mut edited = created.clone();
    edited["data"]["k"] = json!("w");
    edited["data"]["n"] = json!("new");
    record_update(cm, Some(&created), &mut edited, &req("kubectl-edit", T1));
    let entries = decode(&edited).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].manager.name, "kubectl-create");
    assert_eq!(
        entries[0].fields.to_json(),
        r#"{"f:data":{},"f:metadata":{"f:labels":{".":{},"f:a":{}}}}"#
    );
    assert_eq!(
        entries[1].fields.to_json(),
        r#"{"f:data":{"f:k":{},"f:n":{}}}"#
    );
    // An update that changes nothing leaves the entries (and their times) alone.
    let mut same = edited.clone();
    record_update(
        cm,
        Some(&edited),
        &mut same,
        &req("kubectl-edit", "2030-01-01T00:00:00Z"),
    );
    assert_eq!(same, edited);
}

#[test]
fn clients_may_write_or_reset_managed_fields() {
    let cm = configmaps();
    let mut created = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "uid": "u"}, "data": {"k": "v"}});
    record_update(cm, None, &mut created, &req("a", T0));
    let mut reset = created.clone();
    reset["metadata"]["managedFields"] = json!([]);
    record_update(cm, Some(&created), &mut reset, &req("a", T1));
    assert!(reset["metadata"].get("managedFields").is_none());
    // Nothing is tracked again until the next apply.
    let mut later = reset.clone();
    later["data"]["k"] = json!("w");
    record_update(cm, Some(&reset), &mut later, &req("b", T1));
    assert!(later["metadata"].get("managedFields").is_none());
    // A valid list sent by the client replaces the stored one.
    let mut written = created.clone();
    written["metadata"]["managedFields"] = json!([{"manager": "someone", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:k": {}}}}]);
    record_update(cm, Some(&created), &mut written, &req("a", T1));
    let entries = decode(&written).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].manager.name, "someone");
    // An invalid one is ignored.
    let mut invalid = created.clone();
    invalid["metadata"]["managedFields"] = json!([{"manager": "x", "operation": "Delete"}]);
    record_update(cm, Some(&created), &mut invalid, &req("a", T1));
    assert_eq!(decode(&invalid).unwrap(), decode(&created).unwrap());
}

#[test]
fn create_does_not_own_always_present_structs() {
    let deploy = find("apps", "v1", "deployments").unwrap();
    let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"replicas": 1, "strategy": {"rollingUpdate": {"maxSurge": 1}}, "template": {"spec": {"containers": [{"name": "c"}]}}},
        "status": {"replicas": 0}});
    record_update(deploy, None, &mut d, &req("kubectl-create", T0));
    assert_eq!(
        d["metadata"]["managedFields"][0]["fieldsV1"],
        json!({"f:spec": {"f:replicas": {}, "f:strategy": {"f:rollingUpdate": {".": {}, "f:maxSurge": {}}},
            "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:name": {}}}}}}})
    );
}

#[test]
fn update_managers_are_capped() {
    let cm = configmaps();
    let mut obj =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}});
    record_update(cm, None, &mut obj, &req("m0", "2024-01-01T00:00:00Z"));
    for i in 1..=12 {
        let mut next = obj.clone();
        next["data"][format!("k{i}")] = json!("v");
        record_update(
            cm,
            Some(&obj),
            &mut next,
            &req(&format!("m{i}"), &format!("2024-01-01T00:00:{i:02}Z")),
        );
        obj = next;
    }
    let entries = decode(&obj).unwrap();
    assert_eq!(entries.len(), MAX_UPDATE_MANAGERS);
    let ancient = entries
        .iter()
        .find(|e| e.manager.name == "ancient-changes")
        .unwrap();
    assert_eq!(
        ancient.fields.to_json(),
        r#"{"f:data":{".":{},"f:k1":{},"f:k2":{},"f:k3":{}}}"#
    );
}

#[test]
fn of_object_and_manager_descriptions() {
    let cm = configmaps();
    let set = of_object(
        cm,
        &json!({"metadata": {"name": "c", "managedFields": []}, "data": {"k": "v"}}),
    );
    assert_eq!(
        set.to_json(),
        r#"{"f:data":{"f:k":{}},"f:metadata":{"f:name":{}}}"#
    );
    let m = Manager {
        name: "kubelet".into(),
        operation: Operation::Update,
        api_version: "v1".into(),
        subresource: "status".into(),
    };
    assert_eq!(
        m.describe(),
        r#""kubelet" with subresource "status" using v1"#
    );
}

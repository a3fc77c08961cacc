use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::managed_fields::{decode, record_update};
use crate::resources::find;

const T0: &str = "2024-05-01T10:00:00Z";
const T1: &str = "2024-05-01T11:00:00Z";

fn deployments() -> &'static Resource {
    find("apps", "v1", "deployments").unwrap()
}

fn pods() -> &'static Resource {
    find("", "v1", "pods").unwrap()
}

fn req<'a>(manager: &'a str, now: &'a str) -> Request<'a> {
    Request {
        manager,
        subresource: None,
        now,
    }
}

fn config(replicas: u32, labels: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}]}
            }
        }
    })
}

fn fields_of(object: &Value, manager: &str) -> String {
    decode(object)
        .unwrap()
        .into_iter()
        .find(|e| e.manager.name == manager)
        .map(|e| e.fields.to_json())
        .unwrap_or_default()
}

#[test]
fn kubectl_server_side_apply_flow() {
    let d = deployments();
    let first = config(2, json!({"app": "web", "tier": "front"}));
    let live = apply(d, None, &first, &req("kubectl", T0), false).unwrap();
    assert_eq!(live["spec"]["replicas"], 2);
    assert_eq!(
        live["metadata"]["managedFields"],
        json!([{
            "manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": T0,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {"f:app": {}, "f:tier": {}}},
                "f:spec": {"f:replicas": {}, "f:selector": {}, "f:template": {
                    "f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {
                        ".": {}, "f:image": {}, "f:name": {},
                        "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}
                    }}}
                }}
            }
        }])
    );

    // The same configuration again changes nothing, not even the time.
    let again = apply(d, Some(&live), &first, &req("kubectl", T1), false).unwrap();
    assert_eq!(again, live);

    // A new replica count, and a label dropped from the configuration.
    let second = config(3, json!({"app": "web"}));
    let live = apply(d, Some(&live), &second, &req("kubectl", T1), false).unwrap();
    assert_eq!(live["spec"]["replicas"], 3);
    assert_eq!(live["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(live["metadata"]["managedFields"][0]["time"], T1);

    // Another applier changing replicas conflicts; forcing takes the field over.
    let mut other = config(5, json!({"app": "web"}));
    other["spec"]
        .as_object_mut()
        .unwrap()
        .retain(|k, _| k == "replicas");
    other["metadata"].as_object_mut().unwrap().remove("labels");
    let err = apply(d, Some(&live), &other, &req("hpa", T1), false).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Apply failed with 1 conflict: conflict with "kubectl": .spec.replicas"#
    );
    let forced = apply(d, Some(&live), &other, &req("hpa", T1), true).unwrap();
    assert_eq!(forced["spec"]["replicas"], 5);
    assert_eq!(fields_of(&forced, "hpa"), r#"{"f:spec":{"f:replicas":{}}}"#);
    assert!(!fields_of(&forced, "kubectl").contains("f:replicas"));

    // kubectl no longer owns replicas: applying without it leaves hpa's value alone.
    let mut without = second.clone();
    without["spec"].as_object_mut().unwrap().remove("replicas");
    let after = apply(d, Some(&forced), &without, &req("kubectl", T1), false).unwrap();
    assert_eq!(after["spec"]["replicas"], 5);
}

#[test]
fn removed_fields_stay_when_another_manager_owns_them() {
    let d = deployments();
    let live = apply(
        d,
        None,
        &config(1, json!({"app": "web", "team": "a"})),
        &req("kubectl", T0),
        false,
    )
    .unwrap();
    let label = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"team": "a"}}});
    let live = apply(d, Some(&live), &label, &req("labeller", T0), false).unwrap();
    let live = apply(
        d,
        Some(&live),
        &config(1, json!({"app": "web"})),
        &req("kubectl", T1),
        false,
    )
    .unwrap();
    assert_eq!(
        live["metadata"]["labels"],
        json!({"app": "web", "team": "a"})
    );
}

#[test]
fn client_side_apply_then_server_side_apply() {
    let d = deployments();
    // kubectl apply (client-side): a create by kubectl-client-side-apply with the annotation.
    let mut created = config(2, json!({"app": "web"}));
    let last = crate::managed_fields::go_json(&created) + "\n";
    created["metadata"]["annotations"] = json!({last_applied::ANNOTATION: last});
    record_update(d, None, &mut created, &req("kubectl-client-side-apply", T0));
    assert!(fields_of(&created, "kubectl-client-side-apply").contains("f:replicas"));

    // Another field manager applying a new replica count conflicts.
    let err = apply(
        d,
        Some(&created),
        &config(3, json!({"app": "web"})),
        &req("argocd", T1),
        false,
    )
    .unwrap_err();
    let ApplyError::Conflicts(conflicts) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        err.to_string(),
        r#"Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas"#
    );
    assert_eq!(
        conflict_causes(conflicts),
        [json!({
            "reason": "FieldManagerConflict",
            "message": "conflict with \"kubectl-client-side-apply\" using apps/v1",
            "field": ".spec.replicas"
        })]
    );

    // kubectl apply --server-side takes over its own client-side fields without conflicts
    // and rewrites the annotation.
    let live = apply(
        d,
        Some(&created),
        &config(3, json!({"app": "web"})),
        &req("kubectl", T1),
        false,
    )
    .unwrap();
    assert_eq!(live["spec"]["replicas"], 3);
    assert!(!fields_of(&live, "kubectl-client-side-apply").contains("f:replicas"));
    let annotation = live["metadata"]["annotations"][last_applied::ANNOTATION]
        .as_str()
        .unwrap();
    assert!(annotation.contains(r#""replicas":3"#) && annotation.ends_with('\n'));

    // Unless the live value moved away from the last-applied one.
    let mut scaled = created.clone();
    scaled["spec"]["replicas"] = json!(7);
    record_update(
        d,
        Some(&created),
        &mut scaled,
        &req("kubectl-client-side-apply", T1),
    );
    let err = apply(
        d,
        Some(&scaled),
        &config(3, json!({"app": "web"})),
        &req("kubectl", T1),
        false,
    )
    .unwrap_err();
    assert!(err.to_string().ends_with(".spec.replicas"), "{err}");
}

#[test]
fn status_writers_do_not_conflict_with_appliers() {
    let d = deployments();
    let live = apply(
        d,
        None,
        &config(2, json!({"app": "web"})),
        &req("kubectl", T0),
        false,
    )
    .unwrap();
    let mut with_status = live.clone();
    with_status["status"] =
        json!({"replicas": 2, "conditions": [{"type": "Available", "status": "True"}]});
    let status = Request {
        manager: "kube-controller-manager",
        subresource: Some("status"),
        now: T1,
    };
    record_update(d, Some(&live), &mut with_status, &status);
    let entries = decode(&with_status).unwrap();
    let controller = entries
        .iter()
        .find(|e| e.manager.name == "kube-controller-manager")
        .unwrap();
    assert_eq!(controller.manager.subresource, "status");
    assert_eq!(
        controller.fields.to_json(),
        r#"{"f:status":{"f:conditions":{".":{},"k:{\"type\":\"Available\"}":{".":{},"f:status":{},"f:type":{}}},"f:replicas":{}}}"#
    );
    assert_eq!(
        with_status["metadata"]["managedFields"][1]["subresource"],
        "status"
    );
    let reapplied = apply(
        d,
        Some(&with_status),
        &config(4, json!({"app": "web"})),
        &req("kubectl", T1),
        false,
    )
    .unwrap();
    assert_eq!(reapplied["spec"]["replicas"], 4);
    assert_eq!(reapplied["status"]["replicas"], 2);
}

fn pod(containers: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "finalizers": ["a/x"]}, "spec": {"containers": containers}})
}

#[test]
fn map_lists_sets_and_atomic_lists() {
    let p = pods();
    let live = apply(p, None, &pod(json!([
        {"name": "web", "image": "nginx", "args": ["-a", "-b"], "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}]},
    ])), &req("kubectl", T0), false).unwrap();
    // A sidecar applied by another manager merges in by name; a finalizer joins the set.
    let mut sidecar = pod(json!([{"name": "log", "image": "busybox"}]));
    sidecar["metadata"]["finalizers"] = json!(["b/y"]);
    let live = apply(p, Some(&live), &sidecar, &req("injector", T0), false).unwrap();
    let names: Vec<&str> = live["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web", "log"]);
    assert_eq!(live["metadata"]["finalizers"], json!(["a/x", "b/y"]));
    assert!(fields_of(&live, "injector").contains(r#""f:finalizers":{"v:\"b/y\"":{}}"#));
    // The first manager drops a port (keyed by port and protocol) and replaces args whole.
    let live = apply(
        p,
        Some(&live),
        &pod(json!([
            {"name": "web", "image": "nginx", "args": ["-c"], "ports": [{"containerPort": 80}]},
        ])),
        &req("kubectl", T1),
        false,
    )
    .unwrap();
    let web = &live["spec"]["containers"][0];
    assert_eq!(web["args"], json!(["-c"]));
    assert_eq!(web["ports"], json!([{"containerPort": 80}]));
    assert_eq!(live["spec"]["containers"][1]["name"], "log");
    let owned = fields_of(&live, "kubectl");
    assert!(
        owned.contains(
            r#""k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{}}"#
        ),
        "{owned}"
    );
    assert!(owned.contains(r#""f:args":{}"#));
    // Changing another manager's container image conflicts at the item's field.
    let err = apply(
        p,
        Some(&live),
        &pod(json!([{"name": "log", "image": "alpine"}])),
        &req("kubectl", T1),
        false,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Apply failed with 1 conflict: conflict with "injector": .spec.containers[name="log"].image"#
    );
}

#[test]
fn several_conflicts_are_listed_by_manager() {
    let d = deployments();
    let live = apply(
        d,
        None,
        &config(2, json!({"app": "web"})),
        &req("a", T0),
        false,
    )
    .unwrap();
    let mut c = config(3, json!({"app": "other"}));
    c["spec"]["template"]["spec"]["containers"][0]["image"] = json!("httpd");
    let err = apply(d, Some(&live), &c, &req("b", T1), false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 3 conflicts: conflicts with \"a\":\n- .metadata.labels.app\n- .spec.replicas\n- .spec.template.spec.containers[name=\"web\"].image"
    );
}

#[test]
fn objects_never_applied_are_owned_before_first_apply() {
    let d = deployments();
    let mut live = config(1, json!({"app": "web"}));
    live["metadata"]["uid"] = json!("u1");
    let applied = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 2}});
    let err = apply(d, Some(&live), &applied, &req("kubectl", T0), false).unwrap_err();
    assert!(
        err.to_string()
            .contains(r#""before-first-apply" using apps/v1: .spec.replicas"#),
        "{err}"
    );
}

#[test]
fn bad_configurations_are_refused() {
    let d = deployments();
    let mut wrong = config(1, json!({}));
    wrong["apiVersion"] = json!("apps/v1beta1");
    assert!(
        matches!(apply(d, None, &wrong, &req("k", T0), false), Err(ApplyError::BadRequest(m)) if m.contains("Incorrect version"))
    );
    let mut managed = config(1, json!({}));
    managed["metadata"]["managedFields"] = json!([]);
    assert_eq!(
        apply(d, None, &managed, &req("k", T0), false)
            .unwrap_err()
            .to_string(),
        "metadata.managedFields must be nil"
    );
    let mut dup = config(1, json!({}));
    dup["spec"]["template"]["spec"]["containers"] = json!([{"name": "a"}, {"name": "a"}]);
    assert!(matches!(
        apply(d, None, &dup, &req("k", T0), false),
        Err(ApplyError::Invalid(_))
    ));
}

fn label_sets() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(("[a-d]", "[xy]"), 0..4)
}

proptest! {
    #[test]
    fn applying_twice_is_a_no_op(labels in label_sets(), replicas in 0u32..4) {
        let d = deployments();
        let labels: serde_json::Map<String, Value> = labels.into_iter().map(|(k, v)| (k, v.into())).collect();
        let c = config(replicas, Value::Object(labels));
        let once = apply(d, None, &c, &req("kubectl", T0), false).unwrap();
        let twice = apply(d, Some(&once), &c, &req("kubectl", T1), false).unwrap();
        prop_assert_eq!(&once, &twice);
    }

    #[test]
    fn an_applier_ends_up_with_exactly_its_labels(before in label_sets(), after in label_sets()) {
        let d = deployments();
        let to_map = |l: Vec<(String, String)>| -> serde_json::Map<String, Value> { l.into_iter().map(|(k, v)| (k, v.into())).collect() };
        let (before, after) = (to_map(before), to_map(after));
        let live = apply(d, None, &config(1, Value::Object(before)), &req("kubectl", T0), false).unwrap();
        let live = apply(d, Some(&live), &config(1, Value::Object(after.clone())), &req("kubectl", T1), false).unwrap();
        let labels = live["metadata"].get("labels").cloned().unwrap_or(json!({}));
        prop_assert_eq!(labels, Value::Object(after));
    }
}

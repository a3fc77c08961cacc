//! Table tests of [`validate_create`] and [`validate_update`]: one valid object per kind, then
//! one change at a time and the exact causes upstream reports for it.

use serde_json::{Value, json};

use super::{validate_create, validate_update};
use crate::resources::by_kind;

/// Applies a JSON merge patch (RFC 7386) to a copy of `base`.
fn merged(base: &Value, patch: &Value) -> Value {
    let mut out = base.clone();
    merge(&mut out, patch);
    out
}

fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let map = target.as_object_mut().unwrap();
    for (k, v) in patch {
        if v.is_null() {
            map.remove(k);
        } else {
            merge(map.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

fn causes_of(obj: &Value) -> Vec<String> {
    let resource = by_kind(
        obj["apiVersion"].as_str().unwrap(),
        obj["kind"].as_str().unwrap(),
    )
    .expect("served kind");
    validate_create(resource, obj)
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn update_causes(old: &Value, new: &Value) -> Vec<String> {
    let resource = by_kind(
        old["apiVersion"].as_str().unwrap(),
        old["kind"].as_str().unwrap(),
    )
    .expect("served kind");
    validate_update(resource, old, new)
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// Checks `base` is valid and each (patch, causes) row gives exactly those causes.
fn table(base: &Value, rows: &[(Value, &[&str])]) {
    assert_eq!(
        causes_of(base),
        Vec::<String>::new(),
        "the base object is valid"
    );
    for (patch, expected) in rows {
        let obj = merged(base, patch);
        assert_eq!(causes_of(&obj), *expected, "patch {patch}");
    }
}

fn update_table(base: &Value, rows: &[(Value, &[&str])]) {
    assert_eq!(
        update_causes(base, base),
        Vec::<String>::new(),
        "no change is valid"
    );
    for (patch, expected) in rows {
        let new = merged(base, patch);
        assert_eq!(update_causes(base, &new), *expected, "patch {patch}");
    }
}

fn pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "containers": [{
                "name": "web", "image": "nginx:1.27",
                "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
                "env": [{"name": "MODE", "value": "prod"}],
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "1.5Gi"}}
            }],
            "initContainers": [{"name": "init", "image": "busybox"}],
            "volumes": [{"name": "data", "emptyDir": {}}],
            "restartPolicy": "Always",
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]
        }
    })
}

#[test]
fn pods() {
    let container = |patch: Value| {
        let mut c = pod()["spec"]["containers"][0].clone();
        merge(&mut c, &patch);
        json!({"spec": {"containers": [c]}})
    };
    table(
        &pod(),
        &[
            (
                json!({"spec": {"containers": []}}),
                &["spec.containers: Required value"],
            ),
            (
                container(json!({"image": null})),
                &["spec.containers[0].image: Required value"],
            ),
            (
                container(json!({"image": " nginx"})),
                &[
                    "spec.containers[0].image: Invalid value: \" nginx\": must not have leading or trailing whitespace",
                ],
            ),
            (
                container(json!({"name": ""})),
                &["spec.containers[0].name: Required value"],
            ),
            (
                container(json!({"name": "Web"})),
                &[
                    "spec.containers[0].name: Invalid value: \"Web\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
                ],
            ),
            (
                json!({"spec": {"initContainers": [{"name": "web", "image": "busybox"}]}}),
                &["spec.initContainers[0].name: Duplicate value: \"web\""],
            ),
            (
                container(json!({"ports": [{"containerPort": 70000, "protocol": "TCP"}]})),
                &[
                    "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
                ],
            ),
            (
                container(json!({"ports": [{"containerPort": 0}]})),
                &["spec.containers[0].ports[0].containerPort: Required value"],
            ),
            (
                container(json!({"ports": [{"containerPort": 53, "protocol": "ICMP"}]})),
                &[
                    "spec.containers[0].ports[0].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
                ],
            ),
            (
                container(
                    json!({"ports": [{"name": "http", "containerPort": 80}, {"name": "http", "containerPort": 81}]}),
                ),
                &["spec.containers[0].ports[1].name: Duplicate value: \"http\""],
            ),
            (
                container(json!({"ports": [{"name": "web_port", "containerPort": 80}]})),
                &[
                    "spec.containers[0].ports[0].name: Invalid value: \"web_port\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
                ],
            ),
            (
                json!({"spec": {"restartPolicy": "Sometimes"}}),
                &[
                    "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
                ],
            ),
            (
                container(json!({"env": [{"name": "A=B", "value": "x"}, {"name": ""}]})),
                &[
                    "spec.containers[0].env[0].name: Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='",
                    "spec.containers[0].env[1].name: Required value",
                ],
            ),
            (
                container(json!({"volumeMounts": [{"name": "cache", "mountPath": "/cache"}]})),
                &["spec.containers[0].volumeMounts[0].name: Not found: \"cache\""],
            ),
            (
                container(
                    json!({"volumeMounts": [{"name": "data", "mountPath": "/d"}, {"name": "data", "mountPath": "/d"}]}),
                ),
                &[
                    "spec.containers[0].volumeMounts[1].mountPath: Invalid value: \"/d\": must be unique",
                ],
            ),
            (
                json!({"spec": {"volumes": [{"name": "data", "emptyDir": {}}, {"name": "data", "emptyDir": {}}]}}),
                &["spec.volumes[1].name: Duplicate value: \"data\""],
            ),
            (
                json!({"spec": {"volumes": [{"name": "data"}]}}),
                &["spec.volumes[0]: Required value: must specify a volume type"],
            ),
            (
                container(json!({"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}})),
                &[
                    "spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1",
                ],
            ),
            (
                container(
                    json!({"resources": {"requests": {"memory": "2Gi"}, "limits": {"memory": "1536Mi"}}}),
                ),
                &[
                    "spec.containers[0].resources.requests: Invalid value: \"2Gi\": must be less than or equal to memory limit of 1536Mi",
                ],
            ),
            (
                container(
                    json!({"resources": {"requests": {"cpu": "-1"}, "limits": {"cpu": "lots"}}}),
                ),
                &[
                    "spec.containers[0].resources.limits[cpu]: Invalid value: \"lots\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                    "spec.containers[0].resources.requests[cpu]: Invalid value: \"-1\": must be greater than or equal to 0",
                ],
            ),
            (
                json!({"spec": {"tolerations": [{"key": "k", "operator": "Maybe"}]}}),
                &[
                    "spec.tolerations[0].operator: Unsupported value: \"Maybe\": supported values: \"Equal\", \"Exists\"",
                ],
            ),
            (
                json!({"spec": {"activeDeadlineSeconds": 0}}),
                &[
                    "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive",
                ],
            ),
        ],
    );
}

#[test]
fn pod_updates() {
    let mut base = pod();
    base["spec"]["activeDeadlineSeconds"] = json!(600);
    base["spec"]["terminationGracePeriodSeconds"] = json!(30);
    let forbidden = "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";
    let mut images = pod()["spec"].clone();
    images["containers"][0]["image"] = json!("nginx:1.28");
    images["initContainers"][0]["image"] = json!("busybox:1.37");
    let mut ports = pod()["spec"]["containers"].clone();
    ports[0]["ports"][0]["containerPort"] = json!(8080);
    let tolerations = json!([
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60},
        {"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}
    ]);
    update_table(
        &base,
        &[
            (
                json!({"spec": {"containers": images["containers"], "initContainers": images["initContainers"]}}),
                &[],
            ),
            (json!({"spec": {"activeDeadlineSeconds": 300}}), &[]),
            (json!({"spec": {"tolerations": tolerations}}), &[]),
            (json!({"spec": {"nodeName": "node-1"}}), &[]),
            (json!({"spec": {"containers": ports}}), &[forbidden]),
            (
                json!({"spec": {"terminationGracePeriodSeconds": 5}}),
                &[forbidden],
            ),
            (json!({"metadata": {"labels": {"app": "web"}}}), &[]),
            (
                json!({"spec": {"activeDeadlineSeconds": 900}}),
                &[
                    "spec.activeDeadlineSeconds: Invalid value: 900: must be less than or equal to previous value",
                ],
            ),
            (
                json!({"spec": {"activeDeadlineSeconds": null}}),
                &[
                    "spec.activeDeadlineSeconds: Invalid value: \"null\": must not update from a positive integer to nil value",
                ],
            ),
            (
                json!({"spec": {"tolerations": []}}),
                &[
                    "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds",
                ],
            ),
            (
                json!({"spec": {"containers": [pod()["spec"]["containers"][0], {"name": "b", "image": "b"}]}}),
                &["spec.containers: Forbidden: pod updates may not add or remove containers"],
            ),
        ],
    );
    let mut bound = base.clone();
    bound["spec"]["nodeName"] = json!("node-1");
    let moved = merged(&bound, &json!({"spec": {"nodeName": "node-2"}}));
    assert_eq!(update_causes(&bound, &moved), [forbidden]);
}

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]}
            },
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
        }
    })
}

#[test]
fn deployments() {
    table(
        &deployment(),
        &[
            (
                json!({"spec": {"template": {"metadata": {"labels": {"app": "x"}}}}}),
                &[
                    "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"x\"}: `selector` does not match template `labels`",
                ],
            ),
            (
                json!({"spec": {"selector": {"matchLabels": null}}}),
                &[
                    "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment",
                ],
            ),
            (
                json!({"spec": {"selector": null}}),
                &["spec.selector: Required value"],
            ),
            (
                json!({"spec": {"replicas": -1}}),
                &["spec.replicas: Invalid value: -1: must be greater than or equal to 0"],
            ),
            (
                json!({"spec": {"template": {"spec": {"restartPolicy": "Never"}}}}),
                &[
                    "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
                ],
            ),
            (
                json!({"spec": {"strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}}}),
                &[
                    "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"0%\"}: may not be 0 when `maxSurge` is 0",
                ],
            ),
            (
                json!({"spec": {"strategy": {"rollingUpdate": {"maxUnavailable": "lots"}}}}),
                &[
                    "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"lots\"}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
                ],
            ),
            (
                json!({"spec": {"strategy": {"rollingUpdate": {"maxUnavailable": "150%"}}}}),
                &[
                    "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"150%\"}: must not be greater than 100%",
                ],
            ),
            (
                json!({"spec": {"strategy": {"type": "Recreate"}}}),
                &[
                    "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'",
                ],
            ),
            (
                json!({"spec": {"strategy": {"type": "BlueGreen", "rollingUpdate": null}}}),
                &[
                    "spec.strategy.type: Unsupported value: \"BlueGreen\": supported values: \"Recreate\", \"RollingUpdate\"",
                ],
            ),
            (
                json!({"spec": {"progressDeadlineSeconds": 5, "minReadySeconds": 10}}),
                &[
                    "spec.progressDeadlineSeconds: Invalid value: 5: must be greater than minReadySeconds",
                ],
            ),
            (
                json!({"spec": {"template": {"spec": {"containers": [{"name": "web"}]}}}}),
                &["spec.template.spec.containers[0].image: Required value"],
            ),
        ],
    );
    update_table(
        &deployment(),
        &[
            (json!({"spec": {"replicas": 5}}), &[]),
            (
                json!({"spec": {"selector": {"matchLabels": {"app": "web2"}}, "template": {"metadata": {"labels": {"app": "web2"}}}}}),
                &[
                    "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web2\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable",
                ],
            ),
        ],
    );
}

#[test]
fn replica_sets_daemon_sets_and_stateful_sets() {
    let rs = merged(
        &deployment(),
        &json!({"kind": "ReplicaSet", "spec": {"strategy": null}}),
    );
    table(
        &rs,
        &[(
            json!({"spec": {"selector": {"matchExpressions": [{"key": "app", "operator": "In"}]}}}),
            &[
                "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
                "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web\"}, MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:\"app\", Operator:\"In\", Values:[]string(nil)}}}: invalid label selector",
            ],
        )],
    );
    let ds = merged(
        &rs,
        &json!({"kind": "DaemonSet", "spec": {"replicas": null, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}}}),
    );
    table(
        &ds,
        &[
            (
                json!({"spec": {"updateStrategy": {"rollingUpdate": {"maxUnavailable": 0}}}}),
                &[
                    "spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0",
                ],
            ),
            (
                json!({"spec": {"updateStrategy": {"rollingUpdate": {"maxSurge": 1}}}}),
                &[
                    "spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{Type:0, IntVal:1, StrVal:\"\"}: may not be set when maxUnavailable is non-zero",
                ],
            ),
            (
                json!({"spec": {"selector": {"matchLabels": null}}}),
                &[
                    "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for daemonset",
                ],
            ),
        ],
    );
    let sts = merged(
        &rs,
        &json!({"kind": "StatefulSet", "spec": {"serviceName": "web", "podManagementPolicy": "OrderedReady"}}),
    );
    table(
        &sts,
        &[
            (
                json!({"spec": {"podManagementPolicy": "Random"}}),
                &[
                    "spec.podManagementPolicy: Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'",
                ],
            ),
            (
                json!({"spec": {"serviceName": "Web.Svc"}}),
                &[
                    "spec.serviceName: Invalid value: \"Web.Svc\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
                ],
            ),
            (
                json!({"spec": {"template": {"spec": {"activeDeadlineSeconds": 10}}}}),
                &[
                    "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in StatefulSet is not Supported",
                ],
            ),
        ],
    );
    update_table(
        &sts,
        &[
            (json!({"spec": {"replicas": 3, "minReadySeconds": 5}}), &[]),
            (
                json!({"spec": {"serviceName": "other"}}),
                &[
                    "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
                ],
            ),
        ],
    );
}

fn job() -> Value {
    json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "pi", "namespace": "default"},
        "spec": {
            "completions": 1, "parallelism": 1, "backoffLimit": 6,
            "template": {"spec": {"containers": [{"name": "pi", "image": "perl"}], "restartPolicy": "Never"}}
        }
    })
}

#[test]
fn jobs() {
    table(
        &job(),
        &[
            (
                json!({"spec": {"template": {"spec": {"restartPolicy": "Always"}}}}),
                &[
                    "spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\"",
                ],
            ),
            (
                json!({"spec": {"completions": -1, "backoffLimit": -2}}),
                &[
                    "spec.completions: Invalid value: -1: must be greater than or equal to 0",
                    "spec.backoffLimit: Invalid value: -2: must be greater than or equal to 0",
                ],
            ),
            (
                json!({"spec": {"selector": {"matchLabels": {"job": "pi"}}}}),
                &[
                    "spec.template.metadata.labels: Invalid value: map[string]string(nil): `selector` does not match template `labels`",
                ],
            ),
            (
                json!({"spec": {"manualSelector": true}}),
                &["spec.selector: Required value"],
            ),
            (
                json!({"spec": {"completionMode": "Indexed", "completions": 5, "parallelism": 2}}),
                &[],
            ),
            (
                json!({"spec": {"completionMode": "Indexed", "completions": null}}),
                &["spec.completions: Required value: when completion mode is Indexed"],
            ),
            (
                json!({"spec": {"completionMode": "Sometimes"}}),
                &[
                    "spec.completionMode: Unsupported value: \"Sometimes\": supported values: \"NonIndexed\", \"Indexed\"",
                ],
            ),
            (
                json!({"spec": {"podFailurePolicy": {"rules": [
                    {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}},
                    {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
                ]}}}),
                &[],
            ),
            (
                json!({"spec": {"podFailurePolicy": {"rules": [
                    {"action": "Retry", "onExitCodes": {"operator": "In", "containerName": "nope", "values": [3, 0, 3]}},
                    {"action": "Count"},
                ]}}}),
                &[
                    "spec.podFailurePolicy.rules[0].action: Unsupported value: \"Retry\": supported values: \"Count\", \"FailIndex\", \"FailJob\", \"Ignore\"",
                    "spec.podFailurePolicy.rules[0].onExitCodes.containerName: Invalid value: \"nope\": must be one of the container or initContainer names in the pod template",
                    "spec.podFailurePolicy.rules[0].onExitCodes.values[1]: Invalid value: 0: must not be 0 for the In operator",
                    "spec.podFailurePolicy.rules[0].onExitCodes.values[2]: Duplicate value: 3",
                    "spec.podFailurePolicy.rules[0].onExitCodes.values: Invalid value: []int32{3, 0, 3}: must be ordered",
                    "spec.podFailurePolicy.rules[1]: Invalid value: specifying one of OnExitCodes and OnPodConditions is required",
                ],
            ),
            (
                json!({"spec": {
                    "podFailurePolicy": {"rules": [{"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [1]}}]},
                    "template": {"spec": {"restartPolicy": "OnFailure"}},
                }}),
                &[
                    "spec.podFailurePolicy.rules[0].action: Invalid value: \"FailIndex\": requires the backoffLimitPerIndex to be set",
                    "spec.template.spec.restartPolicy: Invalid value: \"OnFailure\": only \"Never\" is supported when podFailurePolicy is specified",
                ],
            ),
        ],
    );
    update_table(
        &job(),
        &[
            (json!({"spec": {"parallelism": 3}}), &[]),
            (
                json!({"spec": {"completions": 3}}),
                &["spec.completions: Invalid value: 3: field is immutable"],
            ),
            (
                json!({"spec": {"template": {"spec": {"containers": [{"name": "pi", "image": "perl:5"}]}}}}),
                &["spec.template: Invalid value: core.PodTemplateSpec{…}: field is immutable"],
            ),
        ],
    );
}

#[test]
fn cron_jobs() {
    let cj = json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "hourly", "namespace": "default"},
        "spec": {
            "schedule": "0 * * * *", "concurrencyPolicy": "Forbid",
            "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}], "restartPolicy": "OnFailure"}}}}
        }
    });
    let long = "a".repeat(53);
    let too_long =
        format!("metadata.name: Invalid value: \"{long}\": must be no more than 52 characters");
    table(
        &cj,
        &[
            (
                json!({"spec": {"schedule": ""}}),
                &["spec.schedule: Required value"],
            ),
            (
                json!({"spec": {"schedule": "0 * * *"}}),
                &[
                    "spec.schedule: Invalid value: \"0 * * *\": expected exactly 5 fields, found 4: [0 * * *]",
                ],
            ),
            (
                json!({"spec": {"schedule": "61 * * * *"}}),
                &[
                    "spec.schedule: Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61",
                ],
            ),
            (json!({"spec": {"schedule": "@daily"}}), &[]),
            (
                json!({"spec": {"schedule": "*/10 9-17 * jan-jun mon,wed,fri"}}),
                &[],
            ),
            (
                json!({"spec": {"schedule": "TZ=UTC 0 * * * *"}}),
                &[
                    "spec.schedule: Invalid value: \"TZ=UTC 0 * * * *\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
                ],
            ),
            (json!({"spec": {"timeZone": "Europe/Paris"}}), &[]),
            (
                json!({"spec": {"timeZone": "Mars/Olympus"}}),
                &["spec.timeZone: Invalid value: \"Mars/Olympus\": unknown time zone Mars/Olympus"],
            ),
            (
                json!({"spec": {"concurrencyPolicy": "Sometimes"}}),
                &[
                    "spec.concurrencyPolicy: Unsupported value: \"Sometimes\": supported values: \"Allow\", \"Forbid\", \"Replace\"",
                ],
            ),
            (json!({"metadata": {"name": long}}), &[too_long.as_str()]),
            (
                json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Always"}}}}}}),
                &[
                    "spec.jobTemplate.spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\"",
                ],
            ),
        ],
    );
}

fn service() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "type": "ClusterIP", "clusterIP": "10.43.0.10", "clusterIPs": ["10.43.0.10"],
            "selector": {"app": "web"},
            "ports": [
                {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                {"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"}
            ]
        }
    })
}

#[test]
fn services() {
    table(
        &service(),
        &[
            (
                json!({"spec": {"ports": []}}),
                &["spec.ports: Required value"],
            ),
            (
                json!({"spec": {"ports": [], "clusterIP": "None", "clusterIPs": ["None"]}}),
                &[],
            ),
            (
                json!({"spec": {"ports": [], "type": "ExternalName", "externalName": "db.example.com", "clusterIP": null, "clusterIPs": null}}),
                &[],
            ),
            (
                json!({"spec": {"ports": [{"port": 80}, {"port": 81}]}}),
                &[
                    "spec.ports[0].name: Required value",
                    "spec.ports[1].name: Required value",
                ],
            ),
            (
                json!({"spec": {"ports": [{"name": "a", "port": 80}, {"name": "a", "port": 81}]}}),
                &["spec.ports[1].name: Duplicate value: \"a\""],
            ),
            (
                json!({"spec": {"ports": [{"port": 0}]}}),
                &["spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"],
            ),
            (
                json!({"spec": {"type": "Magic"}}),
                &[
                    "spec.type: Unsupported value: \"Magic\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
                ],
            ),
            (
                json!({"spec": {"ports": [{"port": 80, "nodePort": 30080}]}}),
                &["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"],
            ),
        ],
    );
    update_table(
        &service(),
        &[
            (json!({"spec": {"selector": {"app": "web2"}}}), &[]),
            (
                json!({"spec": {"clusterIP": null, "clusterIPs": null}}),
                &[],
            ),
            (
                json!({"spec": {"clusterIP": "10.43.0.11", "clusterIPs": ["10.43.0.11"]}}),
                &[
                    "spec.clusterIPs[0]: Invalid value: []string{\"10.43.0.11\"}: may not change once set",
                ],
            ),
        ],
    );
    let unallocated = merged(
        &service(),
        &json!({"spec": {"clusterIP": null, "clusterIPs": null}}),
    );
    assert_eq!(
        update_causes(&unallocated, &service()),
        Vec::<String>::new()
    );
}

#[test]
fn config_maps_and_secrets() {
    let cm = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cfg", "namespace": "default"},
        "data": {"app.properties": "a=b", "MODE": "prod"},
        "binaryData": {"logo.png": "iVBORw0K"}
    });
    table(
        &cm,
        &[
            (
                json!({"data": {"bad key": "x"}}),
                &[
                    "data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                ],
            ),
            (
                json!({"data": {"..x": "x"}}),
                &["data[..x]: Invalid value: \"..x\": must not start with '..'"],
            ),
            (
                json!({"data": {"logo.png": "x"}}),
                &[
                    "data[logo.png]: Invalid value: \"logo.png\": duplicate of key present in binaryData",
                ],
            ),
            (
                json!({"data": {"big": "x".repeat(1024 * 1024)}}),
                &[": Too long: must have at most 1048576 bytes"],
            ),
        ],
    );
    let frozen = merged(&cm, &json!({"immutable": true}));
    update_table(
        &frozen,
        &[
            (json!({"metadata": {"labels": {"a": "b"}}}), &[]),
            (
                json!({"data": {"MODE": "dev"}}),
                &["data: Forbidden: field is immutable when `immutable` is set"],
            ),
            (
                json!({"immutable": false}),
                &["immutable: Forbidden: field is immutable when `immutable` is set"],
            ),
        ],
    );
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "tls", "namespace": "default"},
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": "Y2VydA==", "tls.key": "a2V5"}
    });
    table(
        &secret,
        &[
            (
                json!({"data": {"tls.key": null}}),
                &["data[tls.key]: Required value"],
            ),
            (
                json!({"stringData": {"bad/key": "x"}}),
                &[
                    "data[bad/key]: Invalid value: \"bad/key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                ],
            ),
        ],
    );
    update_table(
        &merged(&secret, &json!({"immutable": true})),
        &[
            (
                json!({"type": "Opaque"}),
                &["type: Invalid value: \"Opaque\": field is immutable"],
            ),
            (
                json!({"stringData": {"tls.key": "new"}}),
                &["data: Forbidden: field is immutable when `immutable` is set"],
            ),
        ],
    );
}

#[test]
fn namespaces_nodes_and_leases() {
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}, "spec": {"finalizers": ["kubernetes"]}});
    table(
        &ns,
        &[(
            json!({"spec": {"finalizers": ["custom"]}}),
            &[
                "spec.finalizers[0]: Invalid value: \"custom\": name is neither a standard finalizer name nor is it fully qualified",
            ],
        )],
    );
    let node = json!({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"},
        "spec": {"podCIDRs": ["10.42.0.0/24"], "taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]}
    });
    table(
        &node,
        &[
            (
                json!({"spec": {"taints": [{"key": "k", "effect": "Sometimes"}]}}),
                &[
                    "spec.taints[0].effect: Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"",
                ],
            ),
            (
                json!({"spec": {"taints": [{"key": "k", "value": "a", "effect": "NoSchedule"}, {"key": "k", "value": "b", "effect": "NoSchedule"}]}}),
                &[
                    "spec.taints[1]: Duplicate value: core.Taint{Key:\"k\", Value:\"b\", Effect:\"NoSchedule\", TimeAdded:<nil>}: taints must be unique by key and effect pair",
                ],
            ),
            (
                json!({"spec": {"taints": [{"key": "k", "effect": ""}]}}),
                &["spec.taints[0].effect: Required value"],
            ),
        ],
    );
    update_table(
        &node,
        &[(
            json!({"spec": {"podCIDRs": ["10.42.1.0/24"]}}),
            &[
                "spec.podCIDRs: Forbidden: node updates may not change podCIDR except from \"\" to valid",
            ],
        )],
    );
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "node-1", "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40}
    });
    table(
        &lease,
        &[(
            json!({"spec": {"leaseDurationSeconds": 0, "leaseTransitions": -1}}),
            &[
                "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
                "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0",
            ],
        )],
    );
}

#[test]
fn events_both_ways() {
    let core = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "web.17a", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default"},
        "reason": "Started", "message": "Started container web", "type": "Normal",
        "source": {"component": "kubelet", "host": "node-1"}, "count": 1
    });
    table(
        &core,
        &[
            (
                json!({"involvedObject": null}),
                &["involvedObject: Required value"],
            ),
            (
                json!({"involvedObject": {"namespace": "other"}}),
                &[
                    "involvedObject.namespace: Invalid value: \"other\": does not match event.namespace",
                ],
            ),
        ],
    );
    let events = json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "web.17b", "namespace": "default"},
        "eventTime": "2024-01-01T00:00:00.000000Z",
        "regarding": {"kind": "Pod", "name": "web", "namespace": "default"},
        "reason": "Scheduled", "note": "assigned", "type": "Normal", "action": "Binding",
        "reportingController": "default-scheduler", "reportingInstance": "server-1"
    });
    table(
        &events,
        &[
            (
                json!({"reportingController": "", "action": null}),
                &[
                    "reportingController: Required value",
                    "reportingController: Invalid value: \"\": name part must be non-empty",
                    "reportingController: Invalid value: \"\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
                    "action: Required value",
                ],
            ),
            (
                json!({"type": "Odd"}),
                &["type: Invalid value: \"\": has invalid value: Odd"],
            ),
            (
                json!({"deprecatedCount": 3}),
                &["count: Invalid value: \"\": needs to be unset"],
            ),
            (
                json!({"series": {"count": 1, "lastObservedTime": "2024-01-01T00:00:00.000000Z"}}),
                &["series.count: Invalid value: \"\": should be at least 2"],
            ),
        ],
    );
    update_table(
        &events,
        &[
            (
                json!({"series": {"count": 2, "lastObservedTime": "2024-01-01T00:01:00.000000Z"}}),
                &[],
            ),
            (
                json!({"note": "changed"}),
                &["message: Invalid value: \"changed\": field is immutable"],
            ),
        ],
    );
}

#[test]
fn endpoint_slices() {
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "web-abc", "namespace": "default"},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.42.0.5"]}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
    });
    table(
        &slice,
        &[
            (
                json!({"addressType": "IPv5"}),
                &[
                    "addressType: Unsupported value: \"IPv5\": supported values: \"FQDN\", \"IPv4\", \"IPv6\"",
                ],
            ),
            (
                json!({"addressType": null}),
                &["addressType: Required value"],
            ),
            (
                json!({"endpoints": [{"addresses": ["fe80::1"]}]}),
                &[
                    "endpoints[0].addresses[0]: Invalid value: \"fe80::1\": must be a valid IPv4 address",
                ],
            ),
        ],
    );
    update_table(
        &slice,
        &[(
            json!({"addressType": "IPv6", "endpoints": [{"addresses": ["fe80::1"]}]}),
            &["addressType: Invalid value: \"IPv6\": field is immutable"],
        )],
    );
}

#[test]
fn kinds_without_rules_get_their_metadata_checked() {
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "Bad", "namespace": "default"}});
    let causes = causes_of(&sa);
    assert_eq!(causes.len(), 1);
    assert!(
        causes[0].starts_with("metadata.name: Invalid value: \"Bad\""),
        "{causes:?}"
    );
}

#[test]
fn controller_revisions() {
    let revision = json!({"apiVersion": "apps/v1", "kind": "ControllerRevision",
        "metadata": {"name": "web-5d4f8", "namespace": "default"},
        "revision": 2, "data": {"spec": {"template": {"$patch": "replace"}}}});
    table(
        &revision,
        &[
            (
                json!({"revision": -1}),
                &["revision: Invalid value: -1: must be greater than or equal to 0"],
            ),
            (json!({"data": null}), &["data: Required value"]),
        ],
    );
    update_table(
        &revision,
        &[
            (json!({"revision": 3}), &[]),
            (
                json!({"data": {"spec": {"template": {"metadata": {"labels": {"app": "x"}}}}}}),
                &["data: Invalid value: runtime.RawExtension{…}: field is immutable"],
            ),
        ],
    );
}

//! Shape tests of the generated documents: what kubectl looks for in each.

use std::sync::LazyLock;

use serde_json::{Value, json};

use super::*;
use crate::resources::RESOURCES;

static V3: LazyLock<BTreeMap<String, Value>> = LazyLock::new(v3_documents);
static V2: LazyLock<Value> = LazyLock::new(v2_json);

#[test]
fn v3_root_lists_every_group_version_with_a_stable_hash() {
    assert_eq!(
        V3.keys().cloned().collect::<BTreeSet<_>>(),
        group_version_keys()
    );
    assert!(V3.contains_key("api/v1"));
    assert!(V3.contains_key("apis/apps/v1"));
    let root = v3_root(&V3);
    let url = root["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap();
    let hash = url.strip_prefix("/openapi/v3/apis/apps/v1?hash=").unwrap();
    assert_eq!(hash.len(), 128);
    assert!(
        hash.chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    );
    assert_eq!(
        v3_root(&v3_documents()),
        root,
        "generation is deterministic"
    );
}

/// What `supportsQueryParamV3` checks: a PATCH with the kind's GVK and `fieldValidation`.
fn patch_supports_field_validation(paths: &Value, gvk: Value, param_name: &str) -> bool {
    paths.as_object().unwrap().values().any(|item| {
        let patch = &item["patch"];
        patch["x-kubernetes-group-version-kind"] == gvk
            && patch["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p["name"] == param_name)
    })
}

#[test]
fn every_listable_kind_has_a_validating_patch_in_v3_and_v2() {
    for r in RESOURCES.iter().filter(|r| r.is_stored()) {
        let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
        let key = r.group_version();
        let key = if r.group.is_empty() {
            format!("api/{key}")
        } else {
            format!("apis/{key}")
        };
        let doc = &V3[&key];
        assert!(
            patch_supports_field_validation(&doc["paths"], gvk.clone(), "fieldValidation"),
            "v3 {}",
            r.kind
        );
        assert!(
            patch_supports_field_validation(&V2["paths"], gvk, "fieldValidation"),
            "v2 {}",
            r.kind
        );
    }
}

#[test]
fn every_served_kind_schema_carries_its_gvk() {
    for r in RESOURCES {
        let key = if r.group.is_empty() {
            format!("api/{}", r.version)
        } else {
            format!("apis/{}", r.api_version)
        };
        let schemas = V3[&key]["components"]["schemas"].as_object().unwrap();
        let want = json!([{"group": r.group, "kind": r.kind, "version": r.version}]);
        let found = schemas
            .values()
            .any(|s| s["x-kubernetes-group-version-kind"] == want);
        assert!(found, "v3 {key} has no schema for {}", r.kind);
        let found = V2["definitions"]
            .as_object()
            .unwrap()
            .values()
            .any(|s| s["x-kubernetes-group-version-kind"] == want);
        assert!(found, "v2 has no definition for {}", r.kind);
    }
}

/// Follows `path` (property names) from a schema through `$ref`/`allOf` in `schemas`.
fn walk<'a>(schemas: &'a Value, root: &str, path: &[&str]) -> &'a Value {
    let resolve = |s: &'a Value| -> &'a Value {
        let reference = s["$ref"]
            .as_str()
            .or_else(|| s["allOf"][0]["$ref"].as_str());
        match reference {
            Some(r) => &schemas[r.rsplit('/').next().unwrap()],
            None => s,
        }
    };
    let mut current = &schemas[root];
    for (i, name) in path.iter().enumerate() {
        let field = &resolve(current)["properties"][*name];
        if i + 1 == path.len() {
            return field;
        }
        current = field;
    }
    current
}

#[test]
fn explain_pod_spec_node_name() {
    let schemas = &V3["api/v1"]["components"]["schemas"];
    let node_name = walk(schemas, "io.k8s.api.core.v1.Pod", &["spec", "nodeName"]);
    assert_eq!(node_name["type"], "string");
    assert!(node_name["description"].as_str().unwrap().contains("node"));
    let containers = walk(schemas, "io.k8s.api.core.v1.Pod", &["spec", "containers"]);
    assert_eq!(
        containers["items"]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.Container"
    );
    let v2_node_name = walk(
        &V2["definitions"],
        "io.k8s.api.core.v1.Pod",
        &["spec", "nodeName"],
    );
    assert_eq!(v2_node_name, node_name);
}

#[test]
fn v3_documents_are_self_contained() {
    for (key, doc) in V3.iter() {
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for part in text.split("\"#/components/schemas/").skip(1) {
            let name = &part[..part.find('"').unwrap()];
            assert!(schemas.contains_key(name), "{key} refers to missing {name}");
        }
        assert!(!text.contains("#/definitions/"), "{key} has a v2 reference");
        assert_eq!(doc["openapi"], "3.0.0");
    }
    assert!(
        !V3["apis/apps/v1"]["components"]["schemas"]
            .as_object()
            .unwrap()
            .contains_key("io.k8s.api.core.v1.Node")
    );
}

#[test]
fn v2_protobuf_decodes_back() {
    let bytes = v2_protobuf(&V2);
    let doc = decode_v2_protobuf(&bytes).unwrap();
    assert_eq!(doc.swagger, "2.0");
    assert_eq!(doc.info.as_ref().unwrap().title, "Kubernetes");
    let defs = &doc.definitions.as_ref().unwrap().additional_properties;
    assert_eq!(defs.len(), V2["definitions"].as_object().unwrap().len());
    let pod = defs
        .iter()
        .find(|d| d.name == "io.k8s.api.core.v1.Pod")
        .unwrap()
        .value
        .as_ref()
        .unwrap();
    let gvk = pod
        .vendor_extension
        .iter()
        .find(|e| e.name == "x-kubernetes-group-version-kind")
        .unwrap();
    let gvk: Value = serde_json::from_str(&gvk.value.as_ref().unwrap().yaml).unwrap();
    assert_eq!(gvk, json!([{"group": "", "kind": "Pod", "version": "v1"}]));
    let spec = pod
        .properties
        .as_ref()
        .unwrap()
        .additional_properties
        .iter()
        .find(|p| p.name == "spec")
        .unwrap();
    assert_eq!(
        spec.value.as_ref().unwrap().r#ref,
        "#/definitions/io.k8s.api.core.v1.PodSpec"
    );

    let paths = &doc.paths.as_ref().unwrap().path;
    let item = paths
        .iter()
        .find(|p| p.name == "/api/v1/namespaces/{namespace}/pods/{name}")
        .unwrap();
    let patch = item.value.as_ref().unwrap().patch.as_ref().unwrap();
    let ext = patch
        .vendor_extension
        .iter()
        .find(|e| e.name == "x-kubernetes-group-version-kind")
        .unwrap();
    let gvk: Value = serde_json::from_str(&ext.value.as_ref().unwrap().yaml).unwrap();
    assert_eq!(gvk["kind"], "Pod");
    let names: Vec<String> = patch
        .parameters
        .iter()
        .filter_map(|p| match &p.oneof {
            Some(gnostic::ParametersItemOneof::Parameter(gnostic::Parameter {
                oneof: Some(gnostic::ParameterOneof::NonBodyParameter(n)),
            })) => match &n.oneof {
                Some(gnostic::NonBodyParameterOneof::QueryParameterSubSchema(q)) => {
                    Some(q.name.clone())
                }
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert!(names.contains(&"fieldValidation".to_string()), "{names:?}");
}

#[test]
fn v2_protobuf_starts_like_the_minimal_document_kubectl_accepted() {
    let bytes = v2_protobuf(
        &json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.33.1"}}),
    );
    let mut want = vec![0x0a, 0x03];
    want.extend(b"2.0");
    want.extend([0x12, 0x15, 0x0a, 0x0a]);
    want.extend(b"Kubernetes");
    want.extend([0x12, 0x07]);
    want.extend(b"v1.33.1");
    assert!(bytes.starts_with(&want), "{bytes:02x?}");
}

#[test]
fn arrays_have_items_and_references_resolve_in_v2() {
    // kubectl's proto model parser rejects arrays without items and unknown references.
    fn check(value: &Value, defs: &serde_json::Map<String, Value>) {
        match value {
            Value::Object(map) => {
                if map.get("type") == Some(&json!("array")) {
                    assert!(map.contains_key("items"), "array without items: {value}");
                }
                if let Some(Value::String(r)) = map.get("$ref") {
                    assert!(
                        defs.contains_key(r.trim_start_matches("#/definitions/")),
                        "{r}"
                    );
                }
                map.values().for_each(|v| check(v, defs));
            }
            Value::Array(items) => items.iter().for_each(|v| check(v, defs)),
            _ => {}
        }
    }
    let defs = V2["definitions"].as_object().unwrap();
    check(&V2, defs);
}

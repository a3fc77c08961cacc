//! The schema definitions of the served kinds, generated from the k8s-openapi types'
//! `schemars` implementations and shaped as upstream publishes them: named by Go package
//! path (`io.k8s.api.core.v1.Pod`), each kind and list carrying
//! `x-kubernetes-group-version-kind`, and Quantity / IntOrString typed as upstream types
//! them in each OpenAPI version.
//!
//! Definitions are produced once in the Swagger 2.0 form (`#/definitions/…` references with
//! sibling descriptions); [`to_v3`] rewrites one into the OpenAPI 3.0 form.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::{apps, authorization, batch, coordination, core, discovery, events};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{DeleteOptions, ListMeta, Patch, Status};
use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

use crate::resources::{RESOURCES, Resource};
use crate::schema::{ListStrategy, Schema};

/// The definition name of metav1 Status.
pub const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
/// The definition name of metav1 DeleteOptions.
pub const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
/// The definition name of metav1 Patch (the body of every PATCH).
pub const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
const GVK: &str = "x-kubernetes-group-version-kind";

/// Adds `T`'s schema (and everything it references) to the generator; returns its name.
type AddSchema = fn(&mut SchemaGenerator) -> String;

fn add<T: JsonSchema>(generator: &mut SchemaGenerator) -> String {
    generator.subschema_for::<T>();
    T::schema_name().into_owned()
}

/// The k8s-openapi type of the objects of a served resource.
fn type_of(resource: &Resource) -> Option<AddSchema> {
    let add: AddSchema = match (resource.api_version, resource.kind) {
        ("v1", "Namespace") => add::<core::v1::Namespace>,
        ("v1", "Node") => add::<core::v1::Node>,
        ("v1", "Pod") => add::<core::v1::Pod>,
        ("v1", "Service") => add::<core::v1::Service>,
        ("v1", "Endpoints") => add::<core::v1::Endpoints>,
        ("v1", "ConfigMap") => add::<core::v1::ConfigMap>,
        ("v1", "Secret") => add::<core::v1::Secret>,
        ("v1", "ServiceAccount") => add::<core::v1::ServiceAccount>,
        ("v1", "Event") => add::<core::v1::Event>,
        ("apps/v1", "Deployment") => add::<apps::v1::Deployment>,
        ("apps/v1", "ReplicaSet") => add::<apps::v1::ReplicaSet>,
        ("apps/v1", "StatefulSet") => add::<apps::v1::StatefulSet>,
        ("apps/v1", "DaemonSet") => add::<apps::v1::DaemonSet>,
        ("apps/v1", "ControllerRevision") => add::<apps::v1::ControllerRevision>,
        ("batch/v1", "Job") => add::<batch::v1::Job>,
        ("batch/v1", "CronJob") => add::<batch::v1::CronJob>,
        ("coordination.k8s.io/v1", "Lease") => add::<coordination::v1::Lease>,
        ("discovery.k8s.io/v1", "EndpointSlice") => add::<discovery::v1::EndpointSlice>,
        ("events.k8s.io/v1", "Event") => add::<events::v1::Event>,
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => {
            add::<authorization::v1::SelfSubjectAccessReview>
        }
        _ => return None,
    };
    Some(add)
}

/// The schema names of one served resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindSchemas {
    /// The resource.
    pub resource: &'static Resource,
    /// Its kind's definition (`io.k8s.api.core.v1.Pod`).
    pub kind: String,
    /// Its list kind's definition (`io.k8s.api.core.v1.PodList`), when it can be listed.
    pub list: Option<String>,
}

/// Every definition reachable from the served kinds, in the Swagger 2.0 form.
#[derive(Debug, Clone)]
pub struct Definitions {
    /// The definitions by name.
    pub schemas: BTreeMap<String, Value>,
    /// The served resources with their schema names, in `RESOURCES` order.
    pub kinds: Vec<KindSchemas>,
}

/// Generates the definitions of every served resource that has a k8s-openapi type.
pub fn definitions() -> Definitions {
    let mut generator = SchemaSettings::draft07()
        .with(|s| {
            s.meta_schema = None;
            s.transforms.clear();
        })
        .into_generator();
    let mut kinds = Vec::new();
    for resource in RESOURCES {
        let Some(add_type) = type_of(resource) else {
            continue;
        };
        let kind = add_type(&mut generator);
        let list = (!resource.list_kind.is_empty()).then(|| list_name(&kind, resource.list_kind));
        kinds.push(KindSchemas {
            resource,
            kind,
            list,
        });
    }
    for add_type in [
        add::<Status>,
        add::<DeleteOptions>,
        add::<Patch>,
        add::<ListMeta>,
    ] {
        add_type(&mut generator);
    }
    let mut schemas: BTreeMap<String, Value> =
        generator.take_definitions(false).into_iter().collect();
    for k in &kinds {
        let gvk = gvk_list(&[k.resource.group], k.resource.version, k.resource.kind);
        set_extension(&mut schemas, &k.kind, gvk);
        if let Some(list) = &k.list {
            schemas.insert(list.clone(), list_schema(&k.kind, k.resource));
        }
    }
    for k in &kinds {
        for (path, strategy) in Schema::of(k.resource).lists() {
            annotate_list(&mut schemas, &k.kind, &path, strategy);
        }
    }
    set_extension(&mut schemas, STATUS, gvk_list(&[""], "v1", "Status"));
    let groups: BTreeSet<&str> = kinds.iter().map(|k| k.resource.group).collect();
    let groups: Vec<&str> = groups.into_iter().collect();
    set_extension(
        &mut schemas,
        DELETE_OPTIONS,
        gvk_list(&groups, "v1", "DeleteOptions"),
    );
    v2_scalars(&mut schemas);
    Definitions { schemas, kinds }
}

/// The definition a property refers to: directly, through its items, or wrapped in `allOf`.
fn referenced(property: &Value) -> Option<&str> {
    property
        .get("$ref")
        .or_else(|| property.get("items").and_then(|i| i.get("$ref")))
        .or_else(|| property.pointer("/allOf/0/$ref"))
        .and_then(Value::as_str)
        .map(ref_name)
}

/// Marks the list at `path` below the definition `root` with its strategic-merge-patch
/// strategy (`x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`), which kubectl
/// reads to compute `apply` patches. Definitions are shared, so the mark is on the property
/// of the type that holds the list (every `Container`'s `ports`).
fn annotate_list(
    schemas: &mut BTreeMap<String, Value>,
    root: &str,
    path: &str,
    strategy: ListStrategy,
) {
    let mut definition = root.to_string();
    let mut fields = path.split('.').peekable();
    while let Some(field) = fields.next() {
        let Some(property) = schemas
            .get(&definition)
            .and_then(|d| d.get("properties"))
            .and_then(|p| p.get(field))
        else {
            return;
        };
        if fields.peek().is_some() {
            match referenced(property) {
                Some(next) => definition = next.to_string(),
                None => return,
            }
            continue;
        }
        let Some(property) = schemas
            .get_mut(&definition)
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(field))
        else {
            return;
        };
        property["x-kubernetes-patch-strategy"] = json!("merge");
        if let ListStrategy::MergeByKey(key) = strategy {
            property["x-kubernetes-patch-merge-key"] = json!(key);
        }
    }
}

/// `io.k8s.api.core.v1.Pod` → `io.k8s.api.core.v1.PodList`.
fn list_name(kind: &str, list_kind: &str) -> String {
    match kind.rsplit_once('.') {
        Some((package, _)) => format!("{package}.{list_kind}"),
        None => list_kind.to_string(),
    }
}

/// The `x-kubernetes-group-version-kind` value of a definition: one entry per group.
fn gvk_list(groups: &[&str], version: &str, kind: &str) -> Value {
    groups
        .iter()
        .map(|group| json!({"group": group, "kind": kind, "version": version}))
        .collect()
}

fn set_extension(schemas: &mut BTreeMap<String, Value>, name: &str, value: Value) {
    if let Some(Value::Object(schema)) = schemas.get_mut(name) {
        schema.insert(GVK.into(), value);
    }
}

/// The schema of `<Kind>List`, which k8s-openapi models as a generic type without a schema.
fn list_schema(kind: &str, resource: &Resource) -> Value {
    json!({
        "description": format!("{} is a list of {} objects.", resource.list_kind, resource.kind),
        "type": "object",
        "properties": {
            "apiVersion": {"description": "APIVersion defines the versioned schema of this representation of an object.", "type": "string"},
            "kind": {"description": "Kind is a string value representing the REST resource this object represents.", "type": "string"},
            "items": {"description": format!("The {} objects.", resource.kind), "type": "array", "items": {"$ref": format!("#/definitions/{kind}")}},
            "metadata": {"$ref": format!("#/definitions/{LIST_META}"), "description": "Standard list metadata."},
        },
        "required": ["items"],
        GVK: gvk_list(&[resource.group], resource.version, resource.list_kind),
    })
}

/// Quantity and IntOrString as Swagger 2.0 documents them upstream: strings, the latter
/// with the `int-or-string` format clients special-case.
fn v2_scalars(schemas: &mut BTreeMap<String, Value>) {
    if let Some(Value::Object(q)) = schemas.get_mut(QUANTITY) {
        q.insert("type".into(), "string".into());
    }
    if let Some(Value::Object(i)) = schemas.get_mut(INT_OR_STRING) {
        i.insert("type".into(), "string".into());
        i.insert("format".into(), "int-or-string".into());
    }
}

/// The names of every definition `roots` reach through `$ref`s, the roots included.
pub fn reachable(
    schemas: &BTreeMap<String, Value>,
    roots: impl IntoIterator<Item = String>,
) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<String> = roots.into_iter().collect();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(schema) = schemas.get(&name) {
            collect_refs(schema, &mut todo);
        }
    }
    seen
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(ref_name(r).to_string());
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// The definition name a `$ref` points at.
pub fn ref_name(reference: &str) -> &str {
    reference.rsplit('/').next().unwrap_or(reference)
}

/// One definition in the OpenAPI 3.0 form: `#/components/schemas/…` references, a reference
/// with siblings (a field's description) wrapped in `allOf` as upstream does, and Quantity /
/// IntOrString as `oneOf` their two JSON types.
pub fn to_v3(name: &str, schema: &Value) -> Value {
    let mut schema = rewrite_refs(schema);
    if let Value::Object(map) = &mut schema {
        let one_of = match name {
            QUANTITY => Some(json!([{"type": "string"}, {"type": "number"}])),
            INT_OR_STRING => Some(json!([{"type": "integer"}, {"type": "string"}])),
            _ => None,
        };
        if let Some(one_of) = one_of {
            map.remove("type");
            map.insert("oneOf".into(), one_of);
        }
    }
    schema
}

fn rewrite_refs(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out: Map<String, Value> = map
                .iter()
                .map(|(k, v)| (k.clone(), rewrite_refs(v)))
                .collect();
            if let Some(Value::String(r)) = out.remove("$ref") {
                let reference = json!({"$ref": format!("#/components/schemas/{}", ref_name(&r))});
                if out.is_empty() {
                    return reference;
                }
                out.insert("allOf".into(), json!([reference]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(rewrite_refs).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_kind_and_list_has_its_gvk() {
        let defs = definitions();
        assert_eq!(defs.kinds.len(), RESOURCES.len());
        for k in &defs.kinds {
            let r = k.resource;
            let gvk = &defs.schemas[&k.kind][GVK];
            assert_eq!(
                gvk,
                &json!([{"group": r.group, "kind": r.kind, "version": r.version}]),
                "{}",
                k.kind
            );
            if let Some(list) = &k.list {
                assert_eq!(defs.schemas[list][GVK][0]["kind"], r.list_kind);
            }
        }
        assert_eq!(defs.kinds[2].kind, "io.k8s.api.core.v1.Pod");
        assert_eq!(
            defs.kinds[2].list.as_deref(),
            Some("io.k8s.api.core.v1.PodList")
        );
    }

    #[test]
    fn merge_keys_reach_shared_definitions() {
        let defs = definitions().schemas;
        let containers = &defs["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
        let ports = &defs["io.k8s.api.core.v1.Container"]["properties"]["ports"];
        assert_eq!(ports["x-kubernetes-patch-merge-key"], "containerPort");
        let finalizers =
            &defs["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]["finalizers"];
        assert_eq!(finalizers["x-kubernetes-patch-strategy"], "merge");
        let tolerations = &defs["io.k8s.api.core.v1.PodSpec"]["properties"]["tolerations"];
        assert!(tolerations.get("x-kubernetes-patch-strategy").is_none());
    }

    #[test]
    fn every_reference_resolves() {
        let defs = definitions();
        let mut refs = Vec::new();
        defs.schemas
            .values()
            .for_each(|s| collect_refs(s, &mut refs));
        for r in refs {
            assert!(
                defs.schemas.contains_key(&r),
                "{r} is referenced but not defined"
            );
        }
        assert!(
            defs.schemas
                .contains_key("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
        );
    }

    #[test]
    fn pod_spec_node_name_has_its_description() {
        let defs = definitions();
        let pod = &defs.schemas["io.k8s.api.core.v1.Pod"];
        assert_eq!(
            pod["properties"]["spec"]["$ref"],
            "#/definitions/io.k8s.api.core.v1.PodSpec"
        );
        let node_name = &defs.schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["nodeName"];
        assert_eq!(node_name["type"], "string");
        assert!(
            node_name["description"]
                .as_str()
                .unwrap()
                .contains("indicates in which node this pod is scheduled")
        );
    }

    #[test]
    fn v3_wraps_described_references() {
        let defs = definitions();
        let pod = to_v3(
            "io.k8s.api.core.v1.Pod",
            &defs.schemas["io.k8s.api.core.v1.Pod"],
        );
        let spec = &pod["properties"]["spec"];
        assert_eq!(
            spec["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.api.core.v1.PodSpec"
        );
        assert!(spec["description"].is_string());
        let q = to_v3(QUANTITY, &defs.schemas[QUANTITY]);
        assert!(q.get("type").is_none());
        assert_eq!(q["oneOf"][1]["type"], "number");
        assert_eq!(defs.schemas[INT_OR_STRING]["format"], "int-or-string");
    }

    #[test]
    fn reachable_follows_references() {
        let defs = definitions();
        let names = reachable(
            &defs.schemas,
            ["io.k8s.api.coordination.v1.Lease".to_string()],
        );
        assert!(names.contains("io.k8s.api.coordination.v1.LeaseSpec"));
        assert!(names.contains("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
        assert!(!names.contains("io.k8s.api.core.v1.PodSpec"));
    }
}

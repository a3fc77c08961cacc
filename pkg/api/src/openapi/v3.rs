//! The OpenAPI 3.0 documents, one per served group-version, as `/openapi/v3/<gv>` serves
//! them: the group-version's paths and every schema they reach, under
//! `components.schemas` with `#/components/schemas/…` references.

use serde_json::{Map, Value, json};

use super::paths::{self, Location, Operation, PATCH_TYPES, Param, PathItem, resource_paths};
use super::schemas::{Definitions, reachable, to_v3};
use super::{SPEC_TITLE, SPEC_VERSION};

/// The media types responses may have.
const PRODUCES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];

/// The document of the resources at `index`es of `defs.kinds` (one group-version).
pub fn document(defs: &Definitions, kinds: &[usize]) -> Value {
    let mut paths = Map::new();
    let mut roots = Vec::new();
    for &i in kinds {
        for item in resource_paths(&defs.kinds[i]) {
            for op in &item.operations {
                roots.extend(op.body.iter().map(|b| b.schema.clone()));
                roots.extend(op.responses.iter().map(|(_, s)| s.clone()));
            }
            paths.insert(item.path.clone(), path_item(&item));
        }
    }
    let schemas: Map<String, Value> = reachable(&defs.schemas, roots)
        .into_iter()
        .filter_map(|name| {
            let schema = defs.schemas.get(&name)?;
            Some((name.clone(), to_v3(&name, schema)))
        })
        .collect();
    json!({
        "openapi": "3.0.0",
        "info": {"title": SPEC_TITLE, "version": SPEC_VERSION},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"BearerToken": {"type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header"}},
        },
    })
}

fn path_item(item: &PathItem) -> Value {
    paths::path_item(item, param, operation)
}

fn operation(op: &Operation, item: &PathItem) -> Value {
    let (group, version, kind) = item.gvk;
    let tag = paths::tag(group, version);
    let mut responses = Map::new();
    for (code, schema) in &op.responses {
        let reference = json!({"schema": {"$ref": format!("#/components/schemas/{schema}")}});
        let mut types: Vec<&str> = PRODUCES.to_vec();
        if op.watchable {
            types.extend([
                "application/json;stream=watch",
                "application/vnd.kubernetes.protobuf;stream=watch",
            ]);
        }
        let content: Map<String, Value> = types
            .into_iter()
            .map(|t| (t.to_string(), reference.clone()))
            .collect();
        responses.insert(
            code.to_string(),
            json!({"description": description(*code), "content": content}),
        );
    }
    responses.insert("401".into(), json!({"description": "Unauthorized"}));
    let mut out = json!({
        "tags": [tag],
        "description": op.description,
        "operationId": op.id,
        "responses": responses,
        "x-kubernetes-action": op.action,
        "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": kind},
    });
    if !op.params.is_empty() {
        out["parameters"] = op.params.iter().map(param).collect();
    }
    if let Some(body) = &op.body {
        let reference =
            json!({"schema": {"$ref": format!("#/components/schemas/{}", body.schema)}});
        let types: &[&str] = if body.patch { PATCH_TYPES } else { &["*/*"] };
        let content: Map<String, Value> = types
            .iter()
            .map(|t| (t.to_string(), reference.clone()))
            .collect();
        out["requestBody"] = json!({"content": content, "required": body.patch || op.action != "delete" && op.action != "deletecollection"});
    }
    out
}

/// The text of a response code.
pub fn description(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        _ => "Unauthorized",
    }
}

fn param(p: &Param) -> Value {
    let mut out = json!({
        "name": p.name,
        "in": match p.location { Location::Path => "path", Location::Query => "query" },
        "description": p.description,
        "schema": {"type": p.kind, "uniqueItems": true},
    });
    if p.location == Location::Path {
        out["required"] = true.into();
    }
    out
}

//! The Swagger 2.0 document of everything served, as `/openapi/v2` serves it in JSON (and,
//! through [`super::gnostic`], in protobuf): `definitions` with `#/definitions/…`
//! references and the paths of every resource.

use serde_json::{Map, Value, json};

use super::paths::{self, Location, Operation, PATCH_TYPES, Param, PathItem, resource_paths};
use super::schemas::Definitions;
use super::v3::description;
use super::{SPEC_TITLE, SPEC_VERSION};

/// The whole document.
pub fn document(defs: &Definitions) -> Value {
    let mut paths = Map::new();
    for k in &defs.kinds {
        for item in resource_paths(k) {
            paths.insert(item.path.clone(), path_item(&item));
        }
    }
    json!({
        "swagger": "2.0",
        "info": {"title": SPEC_TITLE, "version": SPEC_VERSION},
        "paths": paths,
        "definitions": defs.schemas,
        "securityDefinitions": {"BearerToken": {"type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header"}},
        "security": [{"BearerToken": []}],
    })
}

fn path_item(item: &PathItem) -> Value {
    paths::path_item(item, param, operation)
}

fn operation(op: &Operation, item: &PathItem) -> Value {
    let (group, version, kind) = item.gvk;
    let tag = paths::tag(group, version);
    let mut produces = vec![
        "application/json",
        "application/yaml",
        "application/vnd.kubernetes.protobuf",
    ];
    if op.watchable {
        produces.extend([
            "application/json;stream=watch",
            "application/vnd.kubernetes.protobuf;stream=watch",
        ]);
    }
    let mut responses = Map::new();
    for (code, schema) in &op.responses {
        let schema = json!({"$ref": format!("#/definitions/{schema}")});
        responses.insert(
            code.to_string(),
            json!({"description": description(*code), "schema": schema}),
        );
    }
    responses.insert("401".into(), json!({"description": "Unauthorized"}));
    let mut parameters: Vec<Value> = Vec::new();
    if let Some(body) = &op.body {
        parameters.push(json!({
            "name": "body", "in": "body", "required": body.patch || op.action != "delete" && op.action != "deletecollection",
            "schema": {"$ref": format!("#/definitions/{}", body.schema)},
        }));
    }
    parameters.extend(op.params.iter().map(param));
    let consumes: Vec<&str> = match &op.body {
        Some(body) if body.patch => PATCH_TYPES.to_vec(),
        _ => vec!["*/*"],
    };
    let mut out = json!({
        "description": op.description,
        "consumes": consumes,
        "produces": produces,
        "schemes": ["https"],
        "tags": [tag],
        "operationId": op.id,
        "responses": responses,
        "x-kubernetes-action": op.action,
        "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": kind},
    });
    if !parameters.is_empty() {
        out["parameters"] = parameters.into();
    }
    out
}

fn param(p: &Param) -> Value {
    let mut out = json!({
        "uniqueItems": true,
        "type": p.kind,
        "description": p.description,
        "name": p.name,
        "in": match p.location { Location::Path => "path", Location::Query => "query" },
    });
    if p.location == Location::Path {
        out["required"] = true.into();
    }
    out
}

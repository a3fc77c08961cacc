//! `meta.k8s.io` Tables: the rows `kubectl get` prints, computed on the server.

use serde_json::{Value, json};

/// The media type of a Table response.
pub fn content_type(version: &str) -> String {
    format!("application/json;as=Table;v={version};g=meta.k8s.io")
}

/// A Table of `objects`; `list_meta` is the list's metadata (resourceVersion, continue).
// TODO(merge): per-kind columns from cairn-api's printers.
pub fn of_resource(
    resource: &cairn_api::Resource,
    version: &str,
    objects: &[Value],
    list_meta: Option<&Value>,
) -> Value {
    let _ = resource;
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            json!({
                "cells": [o["metadata"]["name"], o["metadata"]["creationTimestamp"]],
                "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]},
            })
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": format!("meta.k8s.io/{version}"),
        "metadata": list_meta.cloned().unwrap_or_else(|| json!({})),
        "columnDefinitions": [
            {"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0},
            {"name": "Created At", "type": "date", "format": "", "description": "Created", "priority": 0},
        ],
        "rows": rows,
    })
}

//! `meta.k8s.io` Tables: the rows `kubectl get` prints, computed on the server by cairn-api's
//! printers, with the list's metadata.

use cairn_api::Resource;
use cairn_api::printers::{self, IncludeObject};
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::request::Query;

/// The media type of a Table response.
pub fn content_type(version: &str) -> String {
    format!("application/json;as=Table;v={version};g=meta.k8s.io")
}

/// What rows carry besides cells, from `includeObject`.
pub fn include_object(query: &Query) -> IncludeObject {
    query
        .get("includeObject")
        .and_then(IncludeObject::parse)
        .unwrap_or_default()
}

/// A Table of `objects`; `list_meta` is the list's metadata (resourceVersion, continue).
pub fn of_resource(
    resource: &Resource,
    version: &str,
    objects: &[Value],
    list_meta: Option<&Value>,
    include: IncludeObject,
) -> ApiResult<Value> {
    let mut table = printers::table(resource, objects, jiff::Timestamp::now(), include)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    table["apiVersion"] = Value::from(format!("meta.k8s.io/{version}"));
    if let Some(meta) = list_meta {
        table["metadata"] = meta.clone();
    }
    Ok(table)
}

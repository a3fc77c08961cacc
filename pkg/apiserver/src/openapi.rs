//! The OpenAPI documents kubectl fetches to validate manifests (`/openapi/v2`, `/openapi/v3`).

use http::{HeaderMap, Response, StatusCode};

use crate::error::{ApiError, ApiResult};
use crate::negotiate;
use crate::response::{self, Body};

/// The smallest OpenAPI v2 document kubectl accepts, in gnostic's protobuf encoding:
/// `swagger` (field 1) and `info` (field 2: title 1, version 2).
// TODO(merge): the generated documents of cairn-api replace this.
fn minimal_v2_protobuf() -> Vec<u8> {
    let title = b"Kubernetes";
    let version = crate::KUBERNETES_GIT_VERSION.as_bytes();
    let mut info = vec![0x0a, title.len() as u8];
    info.extend_from_slice(title);
    info.push(0x12);
    info.push(version.len() as u8);
    info.extend_from_slice(version);
    let mut doc = vec![0x0a, 3];
    doc.extend_from_slice(b"2.0");
    doc.push(0x12);
    doc.push(info.len() as u8);
    doc.extend_from_slice(&info);
    doc
}

/// Serves `/openapi/…`.
pub fn serve(path: &str, headers: &HeaderMap) -> ApiResult<Response<Body>> {
    match path {
        "/openapi/v2" if negotiate::wants_protobuf(headers) => Ok(response::with_type(
            StatusCode::OK,
            "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
            minimal_v2_protobuf(),
        )),
        "/openapi/v2" => Ok(response::json(
            StatusCode::OK,
            &serde_json::json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": crate::KUBERNETES_GIT_VERSION}, "paths": {}, "definitions": {}}),
        )),
        _ => Err(ApiError::no_route()),
    }
}

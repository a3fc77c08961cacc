//! Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`), which kubectl
//! 1.32 and later sends for its create generators.

use serde_json::Value;

use crate::error::{ApiError, ApiResult};

/// Decodes a protobuf body into the object's JSON form.
// TODO: decode the `k8s\0` envelope for the served kinds.
pub fn decode(_body: &[u8]) -> ApiResult<Value> {
    Err(ApiError::unsupported_media_type(
        "application/vnd.kubernetes.protobuf",
    ))
}

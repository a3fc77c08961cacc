//! Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`), which kubectl
//! 1.32 and later sends for its create generators, `auth can-i` and `drain`: decoded by
//! cairn-api into the JSON form every handler works on.

use serde_json::Value;

use crate::error::{ApiError, ApiResult};

/// Decodes a protobuf body into the object's JSON form.
pub fn decode(body: &[u8]) -> ApiResult<Value> {
    cairn_api::protobuf::decode(body).map_err(|e| match e {
        cairn_api::protobuf::ProtobufError::UnsupportedKind { .. } => {
            ApiError::unsupported_media_type(cairn_api::protobuf::MEDIA_TYPE)
        }
        other => ApiError::bad_request(format!("the request body is not valid: {other}")),
    })
}

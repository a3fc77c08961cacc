//! The OpenAPI documents kubectl fetches to validate manifests and to explain fields:
//! `/openapi/v2` (JSON, or gnostic protobuf when asked, as kubectl 1.27 and 1.28 ask) and
//! `/openapi/v3` with one document per group-version. Generated once, on first use, from the
//! k8s-openapi types by cairn-api.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use bytes::Bytes;
use cairn_api::openapi;
use http::{HeaderMap, Response, StatusCode};
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::negotiate;
use crate::response::{self, Body};

/// The documents, encoded once.
struct Documents {
    v2_json: Bytes,
    v2_protobuf: Bytes,
    v3_root: Bytes,
    v3: BTreeMap<String, Bytes>,
}

fn documents() -> &'static Documents {
    static DOCS: OnceLock<Documents> = OnceLock::new();
    DOCS.get_or_init(|| {
        let v2 = openapi::v2_json();
        let v3 = openapi::v3_documents();
        let encode = |v: &Value| Bytes::from(serde_json::to_vec(v).unwrap_or_default());
        Documents {
            v2_protobuf: Bytes::from(openapi::v2_protobuf(&v2)),
            v2_json: encode(&v2),
            v3_root: encode(&openapi::v3_root(&v3)),
            v3: v3.iter().map(|(k, v)| (k.clone(), encode(v))).collect(),
        }
    })
}

/// Serves `/openapi/…`.
pub fn serve(path: &str, headers: &HeaderMap) -> ApiResult<Response<Body>> {
    let docs = documents();
    let json = |b: &Bytes| response::with_type(StatusCode::OK, "application/json", b.clone());
    match path {
        "/openapi/v2" if negotiate::wants_protobuf(headers) => Ok(response::with_type(
            StatusCode::OK,
            openapi::V2_PROTOBUF_CONTENT_TYPE,
            docs.v2_protobuf.clone(),
        )),
        "/openapi/v2" => Ok(json(&docs.v2_json)),
        "/openapi/v3" | "/openapi/v3/" => Ok(json(&docs.v3_root)),
        p => p
            .strip_prefix("/openapi/v3/")
            .and_then(|gv| docs.v3.get(gv))
            .map(json)
            .ok_or_else(ApiError::no_route),
    }
}

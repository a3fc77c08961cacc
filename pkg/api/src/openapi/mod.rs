//! The OpenAPI documents of the served API, generated from the k8s-openapi types (their
//! `schemars` implementations) rather than copied from upstream:
//!
//! - [`v3_documents`]: one OpenAPI 3.0 document per group-version (`api/v1`,
//!   `apis/apps/v1`, …), served at `/openapi/v3/<gv>`;
//! - [`v3_root`]: the `/openapi/v3` index pointing at them with a `?hash=` of each;
//! - [`v2_json`]: the Swagger 2.0 document of everything, served at `/openapi/v2`;
//! - [`v2_protobuf`]: that document as gnostic's protobuf `Document`, which kubectl 1.27
//!   and 1.28 require for `apply` and `create -f` validation.
//!
//! kubectl uses the documents to decide whether the server validates fields itself (a
//! PATCH operation with `x-kubernetes-group-version-kind` and a `fieldValidation`
//! parameter), for `kubectl explain`, and (1.27/1.28) to check field names client-side.
//!
//! Generation is pure and takes a moment; the caller computes the documents once and keeps
//! them. The documents leave out what k8s-openapi does not carry: the strategic-merge-patch
//! extensions (`x-kubernetes-patch-merge-key`, `x-kubernetes-patch-strategy`) and defaults.

mod gnostic;
mod paths;
mod schemas;
mod v2;
mod v3;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha512};

pub use gnostic::{Document as GnosticDocument, decode as decode_v2_protobuf};
pub use schemas::{Definitions, KindSchemas, definitions};

/// The `info.title` of every document.
pub const SPEC_TITLE: &str = "Kubernetes";

/// The `info.version` of every document: the Kubernetes release whose types (k8s-openapi's
/// `v1_33` feature) the documents describe.
pub const SPEC_VERSION: &str = "v1.33.0";

/// The media type kubectl asks `/openapi/v2` for, and the one the protobuf answer carries.
pub const V2_PROTOBUF_ACCEPT: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

/// The `Content-Type` of a protobuf `/openapi/v2` answer.
pub const V2_PROTOBUF_CONTENT_TYPE: &str =
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// The OpenAPI 3.0 document of each served group-version, keyed by its path under
/// `/openapi/v3/` (`api/v1`, `apis/apps/v1`).
pub fn v3_documents() -> BTreeMap<String, Value> {
    let defs = definitions();
    let mut by_group_version: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, k) in defs.kinds.iter().enumerate() {
        let key = paths::prefix(k.resource)
            .trim_start_matches('/')
            .to_string();
        by_group_version.entry(key).or_default().push(i);
    }
    by_group_version
        .into_iter()
        .map(|(key, kinds)| (key, v3::document(&defs, &kinds)))
        .collect()
}

/// The `/openapi/v3` index: `{"paths": {"api/v1": {"serverRelativeURL":
/// "/openapi/v3/api/v1?hash=…"}, …}}`, the hash being [`content_hash`] of each document.
pub fn v3_root(documents: &BTreeMap<String, Value>) -> Value {
    let paths: Map<String, Value> = documents
        .iter()
        .map(|(key, doc)| {
            let url = format!("/openapi/v3/{key}?hash={}", content_hash(doc));
            (key.clone(), json!({"serverRelativeURL": url}))
        })
        .collect();
    json!({"paths": paths})
}

/// The Swagger 2.0 document of every served resource.
pub fn v2_json() -> Value {
    v2::document(&definitions())
}

/// The Swagger 2.0 document `v2` (from [`v2_json`]) as a gnostic `openapi.v2.Document`.
pub fn v2_protobuf(v2: &Value) -> Vec<u8> {
    gnostic::encode(v2)
}

/// The hash that versions a document in `?hash=` and its ETag: the SHA-512 of its compact
/// JSON text, in upper-case hexadecimal (the form upstream uses). Stable for a given
/// document because serde_json writes object keys in a fixed order.
pub fn content_hash(doc: &Value) -> String {
    let digest = Sha512::digest(doc.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02X}")).collect()
}

/// The served group-versions, as keys of [`v3_documents`].
pub fn group_version_keys() -> BTreeSet<String> {
    crate::resources::RESOURCES
        .iter()
        .map(|r| paths::prefix(r).trim_start_matches('/').to_string())
        .collect()
}

#[cfg(test)]
mod tests;

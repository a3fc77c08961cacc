//! Content negotiation: which representation the client asked for in `Accept` (plain JSON, a
//! `meta.k8s.io` Table, aggregated discovery) and what a request body is (`Content-Type`).

use http::HeaderMap;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};

/// One media range of an `Accept` header, with its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MediaRange {
    essence: String,
    params: Vec<(String, String)>,
}

impl MediaRange {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn accept(headers: &HeaderMap) -> Vec<MediaRange> {
    headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|range| {
            let mut parts = range.split(';').map(str::trim);
            let essence = parts.next().unwrap_or_default().to_ascii_lowercase();
            let params = parts
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect();
            MediaRange { essence, params }
        })
        .collect()
}

/// The representation of objects and lists a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Representation {
    /// The objects themselves.
    Object,
    /// A `meta.k8s.io` Table of the given version (`v1` or `v1beta1`).
    Table(&'static str),
}

/// The representation the first acceptable media range asks for.
pub fn representation(headers: &HeaderMap) -> Representation {
    for range in accept(headers) {
        match (range.param("as"), range.param("g"), range.param("v")) {
            (Some("Table"), Some("meta.k8s.io"), Some("v1")) => {
                return Representation::Table("v1");
            }
            (Some("Table"), Some("meta.k8s.io"), Some("v1beta1")) => {
                return Representation::Table("v1beta1");
            }
            (Some(_), _, _) => continue,
            (None, _, _) => return Representation::Object,
        }
    }
    Representation::Object
}

/// The aggregated discovery version asked for (`v2` or `v2beta1`), if the client asked for it
/// before plain JSON.
pub fn aggregated_discovery(headers: &HeaderMap) -> Option<&'static str> {
    for range in accept(headers) {
        match (range.param("as"), range.param("g"), range.param("v")) {
            (Some("APIGroupDiscoveryList"), Some("apidiscovery.k8s.io"), Some("v2")) => {
                return Some("v2");
            }
            (Some("APIGroupDiscoveryList"), Some("apidiscovery.k8s.io"), Some("v2beta1")) => {
                return Some("v2beta1");
            }
            (Some(_), _, _) => continue,
            (None, _, _) => return None,
        }
    }
    None
}

/// Whether the client prefers protobuf (for the OpenAPI v2 document).
pub fn wants_protobuf(headers: &HeaderMap) -> bool {
    accept(headers)
        .first()
        .is_some_and(|r| r.essence.contains("protobuf"))
}

/// What a request body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyType {
    /// `application/json`.
    Json,
    /// `application/yaml`.
    Yaml,
    /// `application/vnd.kubernetes.protobuf`.
    Protobuf,
    /// `application/json-patch+json` (RFC 6902).
    JsonPatch,
    /// `application/merge-patch+json` (RFC 7386).
    MergePatch,
    /// `application/strategic-merge-patch+json`.
    StrategicMergePatch,
    /// `application/apply-patch+yaml` (server-side apply).
    ApplyPatch,
}

/// The type of a request body from its `Content-Type` (JSON when absent).
pub fn body_type(headers: &HeaderMap) -> ApiResult<BodyType> {
    let raw = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let essence = raw
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    Ok(match essence.as_str() {
        "" | "application/json" | "*/*" => BodyType::Json,
        "application/yaml" | "application/x-yaml" | "text/yaml" => BodyType::Yaml,
        "application/vnd.kubernetes.protobuf" => BodyType::Protobuf,
        "application/json-patch+json" => BodyType::JsonPatch,
        "application/merge-patch+json" => BodyType::MergePatch,
        "application/strategic-merge-patch+json" => BodyType::StrategicMergePatch,
        "application/apply-patch+yaml" | "application/apply-patch+json" => BodyType::ApplyPatch,
        _ => return Err(ApiError::unsupported_media_type(raw)),
    })
}

/// Parses a JSON or YAML document.
pub fn parse_document(body: &[u8], yaml: bool) -> ApiResult<Value> {
    let parsed = if yaml {
        serde_yaml::from_slice::<Value>(body).map_err(|e| e.to_string())
    } else {
        serde_json::from_slice::<Value>(body).map_err(|e| e.to_string())
    };
    parsed.map_err(|e| ApiError::bad_request(format!("the request body is not valid: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(accept: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::ACCEPT, accept.parse().unwrap());
        h
    }

    #[test]
    fn kubectl_accept_headers() {
        let table = headers(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
        );
        assert_eq!(representation(&table), Representation::Table("v1"));
        assert_eq!(
            representation(&headers("application/json")),
            Representation::Object
        );
        assert_eq!(representation(&HeaderMap::new()), Representation::Object);
        let v2 = headers(
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json",
        );
        assert_eq!(aggregated_discovery(&v2), Some("v2"));
        let beta = headers(
            "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json",
        );
        assert_eq!(aggregated_discovery(&beta), Some("v2beta1"));
        assert_eq!(
            aggregated_discovery(&headers("application/json, */*")),
            None
        );
        assert!(wants_protobuf(&headers(
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
        )));
    }
}

//! `SelfSubjectAccessReview`: what `kubectl auth can-i` asks. Answered from the authorizer's
//! rules; nothing is stored.

use http::{Response, StatusCode};
use serde_json::{Value, json};

use crate::authz;
use crate::call::Call;
use crate::error::{ApiError, ApiResult};
use crate::request::ResourceRequest;
use crate::response::{self, Body};

/// `POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews`.
pub fn create(call: &Call<'_>) -> ApiResult<Response<Body>> {
    let mut review = call.body_value()?;
    let spec = &review["spec"];
    let allowed = if let Some(attrs) = spec.get("resourceAttributes").filter(|a| a.is_object()) {
        let s = |k: &str| attrs[k].as_str().unwrap_or_default().to_string();
        let verb = s("verb");
        let r = ResourceRequest {
            group: s("group"),
            version: s("version"),
            namespace: Some(s("namespace")).filter(|n| !n.is_empty()),
            resource: s("resource"),
            name: Some(s("name")).filter(|n| !n.is_empty()),
            subresource: Some(s("subresource")).filter(|n| !n.is_empty()),
            verb: static_verb(&verb),
        };
        authz::would_allow(&call.user, &r)
    } else if let Some(attrs) = spec.get("nonResourceAttributes").filter(|a| a.is_object()) {
        let path = attrs["path"].as_str().unwrap_or_default();
        let method = match attrs["verb"].as_str().unwrap_or_default() {
            "get" => http::Method::GET,
            _ => http::Method::POST,
        };
        authz::authorize_path(&call.user, &method, path).is_ok()
    } else {
        return Err(ApiError::bad_request(
            "exactly one of spec.resourceAttributes and spec.nonResourceAttributes must be set",
        ));
    };
    review["apiVersion"] = json!("authorization.k8s.io/v1");
    review["kind"] = json!("SelfSubjectAccessReview");
    review["status"] = json!({"allowed": allowed});
    if review.get("metadata").is_none_or(Value::is_null) {
        review["metadata"] = json!({});
    }
    Ok(response::json(StatusCode::CREATED, &review))
}

/// The verbs the authorizer knows; anything else is never allowed to non-masters.
fn static_verb(verb: &str) -> &'static str {
    match verb {
        "get" => "get",
        "list" => "list",
        "watch" => "watch",
        "create" => "create",
        "update" => "update",
        "patch" => "patch",
        "delete" => "delete",
        "deletecollection" => "deletecollection",
        "*" => "*",
        _ => "unknown",
    }
}

//! Errors as the Kubernetes API reports them: a `metav1.Status` with upstream's reason, code and
//! message shape, which kubectl prints as `Error from server (Reason): message`.

use cairn_api::validation::Cause;
use serde_json::{Value, json};

/// An API error: what the client is told.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct ApiError {
    /// The HTTP status code.
    pub code: u16,
    /// The machine-readable reason (`NotFound`, `Conflict`, …).
    pub reason: &'static str,
    /// The human-readable message.
    pub message: String,
    /// `details` of the Status, when there are any.
    pub details: Option<Value>,
}

/// How long a client is asked to wait before retrying a request the store could not serve.
const RETRY_AFTER_SECONDS: u32 = 1;

/// The result of a handler.
pub type ApiResult<T> = std::result::Result<T, ApiError>;

fn details(kind: &str, name: &str, group: &str) -> Value {
    let mut d = json!({ "name": name, "kind": kind });
    if !group.is_empty() {
        d["group"] = json!(group);
    }
    d
}

/// A resource named in an error: its plural and group (`deployments.apps`).
#[derive(Debug, Clone, Copy)]
pub struct Named<'a> {
    /// The plural.
    pub plural: &'a str,
    /// The group; empty for core.
    pub group: &'a str,
}

impl Named<'_> {
    fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

impl From<&cairn_api::Resource> for Named<'static> {
    fn from(r: &cairn_api::Resource) -> Named<'static> {
        Named {
            plural: r.plural,
            group: r.group,
        }
    }
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, details: Value) -> ApiError {
        self.details = Some(details);
        self
    }

    /// 404: `pods "x" not found`.
    pub fn not_found(what: Named<'_>, name: &str) -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", what.qualified()),
        )
        .with_details(details(what.plural, name, what.group))
    }

    /// 404 for a path that names nothing served.
    pub fn no_route() -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(json!({}))
    }

    /// 409: `pods "x" already exists`.
    pub fn already_exists(what: Named<'_>, name: &str) -> ApiError {
        ApiError::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", what.qualified()),
        )
        .with_details(details(what.plural, name, what.group))
    }

    /// 409: the object changed since the client read it.
    pub fn conflict(what: Named<'_>, name: &str, why: &str) -> ApiError {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                what.qualified()
            ),
        )
        .with_details(details(what.plural, name, what.group))
    }

    /// 409 because the resourceVersion given is not the current one.
    pub fn stale(what: Named<'_>, name: &str) -> ApiError {
        ApiError::conflict(
            what,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422: `Deployment.apps "x" is invalid: [spec.replicas: Invalid value: -1: …]`.
    pub fn invalid(kind: &str, group: &str, name: &str, causes: Vec<Cause>) -> ApiError {
        let qualified = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let message = cairn_api::validation::invalid_message(&qualified, name, &causes);
        let mut d = details(kind, name, group);
        d["causes"] = serde_json::to_value(&causes).unwrap_or_default();
        ApiError::new(422, "Invalid", message).with_details(d)
    }

    /// 409 for a server-side apply whose fields other managers own.
    pub fn apply_conflict(message: String, causes: Vec<Value>) -> ApiError {
        ApiError::new(409, "Conflict", message).with_details(json!({ "causes": causes }))
    }

    /// 422 with a message and no field causes.
    pub fn unprocessable(message: impl Into<String>) -> ApiError {
        ApiError::new(422, "Invalid", message)
    }

    /// 400 with a message.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message)
    }

    /// 401.
    pub fn unauthorized() -> ApiError {
        ApiError::new(401, "Unauthorized", "Unauthorized")
    }

    /// 403 with upstream's message.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(403, "Forbidden", message)
    }

    /// 405.
    pub fn method_not_allowed(verb: &str) -> ApiError {
        ApiError::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({verb})"),
        )
        .with_details(json!({}))
    }

    /// 415.
    pub fn unsupported_media_type(content_type: &str) -> ApiError {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {content_type:?})"
            ),
        )
    }

    /// 413.
    pub fn too_large() -> ApiError {
        ApiError::new(
            413,
            "RequestEntityTooLarge",
            "Request entity too large: limit is 3145728",
        )
    }

    /// 410: a watch or list asked for a version compaction has removed.
    pub fn expired(message: impl Into<String>) -> ApiError {
        ApiError::new(410, "Expired", message)
    }

    /// 504: the store did not answer in time.
    pub fn timeout(message: impl Into<String>) -> ApiError {
        ApiError::new(504, "Timeout", message)
    }

    /// 503 with `Retry-After`: the store has no reachable leader right now (an election, a
    /// dead member); clients such as kubectl retry by themselves.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(503, "ServiceUnavailable", message)
            .with_details(json!({ "retryAfterSeconds": RETRY_AFTER_SECONDS }))
    }

    /// Seconds a client should wait before retrying, when it should.
    pub fn retry_after(&self) -> Option<u32> {
        (self.code == 503).then_some(RETRY_AFTER_SECONDS)
    }

    /// 500.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(500, "InternalError", message)
    }

    /// The `metav1.Status` the client receives.
    pub fn status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }
}

impl From<cairn_kv::Error> for ApiError {
    fn from(e: cairn_kv::Error) -> ApiError {
        match e {
            cairn_kv::Error::Compacted { compact_revision } => ApiError::expired(format!(
                "The resourceVersion for the provided list is too old (compacted at {compact_revision})"
            )),
            cairn_kv::Error::RequestTooLarge => ApiError::too_large(),
            cairn_kv::Error::Timeout => ApiError::timeout(format!("{e}")),
            cairn_kv::Error::NoLeader
            | cairn_kv::Error::LeaderChanged
            | cairn_kv::Error::Stopped
            | cairn_kv::Error::Peer(_) => ApiError::unavailable(format!(
                "the store cannot serve this request now ({e}); retry"
            )),
            other => ApiError::internal(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_reads_like_upstream() {
        let e = ApiError::not_found(
            Named {
                plural: "deployments",
                group: "apps",
            },
            "web",
        );
        let s = e.status();
        assert_eq!(s["message"], "deployments.apps \"web\" not found");
        assert_eq!(s["code"], 404);
        assert_eq!(s["details"]["group"], "apps");
    }
}

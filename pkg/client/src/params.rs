//! Query parameters and bodies of calls: list, watch, patch and delete options, and the
//! query-string encoding they share.

use serde::Serialize;

/// Options of a list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListParams {
    /// A label selector, such as `app=web,tier!=db`.
    pub label_selector: Option<String>,
    /// A field selector, such as `spec.nodeName=node-1`.
    pub field_selector: Option<String>,
    /// The most items to return; the rest is fetched with the list's `continue` token.
    pub limit: Option<u32>,
    /// The `continue` token of the previous page.
    pub continue_token: Option<String>,
    /// `0` for whatever the server has cached, empty or absent for a consistent read, a
    /// revision for a read at least as new (or exactly that one on a continued list).
    pub resource_version: Option<String>,
}

impl ListParams {
    /// Selects by labels.
    pub fn labels(mut self, selector: &str) -> Self {
        self.label_selector = Some(selector.to_string());
        self
    }

    /// Selects by fields.
    pub fn fields(mut self, selector: &str) -> Self {
        self.field_selector = Some(selector.to_string());
        self
    }

    /// Pages by `limit` items.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    pub(crate) fn query(&self, query: &mut Query) {
        query.opt("labelSelector", self.label_selector.as_deref());
        query.opt("fieldSelector", self.field_selector.as_deref());
        query.opt("limit", self.limit.map(|l| l.to_string()).as_deref());
        query.opt("continue", self.continue_token.as_deref());
        query.opt("resourceVersion", self.resource_version.as_deref());
    }
}

/// Options of a watch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchParams {
    /// A label selector.
    pub label_selector: Option<String>,
    /// A field selector.
    pub field_selector: Option<String>,
    /// How long the server keeps the watch open before ending it cleanly.
    pub timeout_seconds: Option<u32>,
    /// Ask for `BOOKMARK` events carrying the latest resourceVersion.
    pub allow_bookmarks: bool,
}

impl WatchParams {
    /// Selects by labels.
    pub fn labels(mut self, selector: &str) -> Self {
        self.label_selector = Some(selector.to_string());
        self
    }

    /// Selects by fields.
    pub fn fields(mut self, selector: &str) -> Self {
        self.field_selector = Some(selector.to_string());
        self
    }

    /// The list parameters selecting the same objects.
    pub fn to_list(&self) -> ListParams {
        ListParams {
            label_selector: self.label_selector.clone(),
            field_selector: self.field_selector.clone(),
            ..ListParams::default()
        }
    }

    pub(crate) fn query(&self, query: &mut Query, resource_version: &str) {
        query.pair("watch", "true");
        query.opt("labelSelector", self.label_selector.as_deref());
        query.opt("fieldSelector", self.field_selector.as_deref());
        query.opt(
            "timeoutSeconds",
            self.timeout_seconds.map(|t| t.to_string()).as_deref(),
        );
        if self.allow_bookmarks {
            query.pair("allowWatchBookmarks", "true");
        }
        if !resource_version.is_empty() {
            query.pair("resourceVersion", resource_version);
        }
    }
}

/// A patch and its kind, which is the request's content type.
#[derive(Debug, Clone, PartialEq)]
pub enum Patch {
    /// A JSON merge patch (RFC 7386).
    Merge(serde_json::Value),
    /// A strategic merge patch (lists merged by their keys).
    Strategic(serde_json::Value),
    /// A JSON patch (RFC 6902): an array of operations.
    Json(serde_json::Value),
    /// Server-side apply of a whole intent, owned by `manager`.
    Apply {
        /// The field manager owning the applied fields.
        manager: String,
        /// Take fields over from other managers instead of failing with a conflict.
        force: bool,
        /// The applied object (with `apiVersion` and `kind`).
        body: serde_json::Value,
    },
}

impl Patch {
    pub(crate) fn content_type(&self) -> &'static str {
        match self {
            Patch::Merge(_) => "application/merge-patch+json",
            Patch::Strategic(_) => "application/strategic-merge-patch+json",
            Patch::Json(_) => "application/json-patch+json",
            // JSON is YAML, so the body is sent as JSON.
            Patch::Apply { .. } => "application/apply-patch+yaml",
        }
    }

    pub(crate) fn body(&self) -> &serde_json::Value {
        match self {
            Patch::Merge(v) | Patch::Strategic(v) | Patch::Json(v) => v,
            Patch::Apply { body, .. } => body,
        }
    }
}

/// Options of a delete (the `DeleteOptions` body).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteParams {
    /// Seconds before the object is removed; 0 deletes at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grace_period_seconds: Option<i64>,
    /// What happens to dependents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub propagation_policy: Option<PropagationPolicy>,
    /// Delete only if the object still has this uid and/or resourceVersion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preconditions: Option<Preconditions>,
}

/// How a delete treats the object's dependents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PropagationPolicy {
    /// Dependents are left without this owner.
    Orphan,
    /// The object goes now; the garbage collector removes dependents afterwards.
    Background,
    /// Dependents go first, then the object.
    Foreground,
}

/// Conditions a delete checks first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Preconditions {
    /// The object's uid must be this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// The object's resourceVersion must be this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
}

/// A query string being built, percent-encoded.
#[derive(Debug, Default)]
pub(crate) struct Query(String);

impl Query {
    pub(crate) fn pair(&mut self, key: &str, value: &str) {
        self.0.push(if self.0.is_empty() { '?' } else { '&' });
        self.0.push_str(key);
        self.0.push('=');
        encode_into(&mut self.0, value);
    }

    pub(crate) fn opt(&mut self, key: &str, value: Option<&str>) {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            self.pair(key, value);
        }
    }

    pub(crate) fn finish(self) -> String {
        self.0
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode_into(out: &mut String, value: &str) {
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_are_percent_encoded() {
        let mut query = Query::default();
        ListParams::default()
            .labels("app in (a,b),tier!=db")
            .limit(10)
            .query(&mut query);
        assert_eq!(
            query.finish(),
            "?labelSelector=app%20in%20%28a%2Cb%29%2Ctier%21%3Ddb&limit=10"
        );
    }

    #[test]
    fn watch_query_has_bookmarks_timeout_and_version() {
        let mut query = Query::default();
        let params = WatchParams {
            timeout_seconds: Some(300),
            allow_bookmarks: true,
            ..WatchParams::default()
        };
        params.query(&mut query, "42");
        assert_eq!(
            query.finish(),
            "?watch=true&timeoutSeconds=300&allowWatchBookmarks=true&resourceVersion=42"
        );
    }

    #[test]
    fn delete_options_serialize_like_upstream() {
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            propagation_policy: Some(PropagationPolicy::Foreground),
            preconditions: Some(Preconditions {
                uid: None,
                resource_version: Some("7".into()),
            }),
        };
        assert_eq!(
            serde_json::to_value(&params).unwrap(),
            serde_json::json!({"gracePeriodSeconds": 0, "propagationPolicy": "Foreground",
                               "preconditions": {"resourceVersion": "7"}})
        );
    }
}

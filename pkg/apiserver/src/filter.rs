//! Which objects a list or watch returns: its label and field selectors, applied to an object.

use cairn_api::Resource;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::object;
use crate::request::Query;

/// A request's selectors.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    labels: Vec<(String, bool, String)>,
    fields: Vec<(String, bool, String)>,
}

// TODO(merge): the selectors of cairn-api replace these equality-only parsers.
fn parse_terms(s: &str, what: &str) -> ApiResult<Vec<(String, bool, String)>> {
    let mut out = Vec::new();
    for term in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let (k, eq, v) = if let Some((k, v)) = term.split_once("!=") {
            (k, false, v)
        } else if let Some((k, v)) = term.split_once("==") {
            (k, true, v)
        } else if let Some((k, v)) = term.split_once('=') {
            (k, true, v)
        } else {
            return Err(ApiError::bad_request(format!(
                "unable to parse requirement: invalid {what} selector: {term}"
            )));
        };
        out.push((k.trim().to_string(), eq, v.trim().to_string()));
    }
    Ok(out)
}

impl Filter {
    /// The selectors of a request.
    pub fn from_query(query: &Query) -> ApiResult<Filter> {
        Ok(Filter {
            labels: parse_terms(query.get("labelSelector").unwrap_or_default(), "label")?,
            fields: parse_terms(query.get("fieldSelector").unwrap_or_default(), "field")?,
        })
    }

    /// Whether the filter selects everything.
    pub fn is_everything(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }

    /// Whether `obj` is selected.
    pub fn matches(&self, resource: &Resource, obj: &Value) -> bool {
        let labels = object::labels(obj);
        let labels_ok = self
            .labels
            .iter()
            .all(|(k, eq, v)| (labels.get(k) == Some(v)) == *eq);
        labels_ok
            && self.fields.iter().all(|(k, eq, v)| {
                let actual = field(resource, obj, k);
                (actual.as_deref().unwrap_or("") == v) == *eq
            })
    }
}

fn field(_resource: &Resource, obj: &Value, path: &str) -> Option<String> {
    let pointer = format!("/{}", path.replace('.', "/"));
    match obj.pointer(&pointer)? {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

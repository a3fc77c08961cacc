//! Which objects a list or watch returns: its label and field selectors (cairn-api's), applied
//! to an object.

use cairn_api::Resource;
use cairn_api::fields::{self, FieldSelector};
use cairn_api::labels::Selector;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::object;
use crate::request::Query;

/// A request's selectors.
#[derive(Debug, Clone)]
pub struct Filter {
    labels: Selector,
    fields: FieldSelector,
}

impl Filter {
    /// The selectors of a request for `resource`; unsupported fields are a bad request.
    pub fn from_query(resource: &Resource, query: &Query) -> ApiResult<Filter> {
        let labels = Selector::parse(query.get("labelSelector").unwrap_or_default())
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let fields = FieldSelector::parse(query.get("fieldSelector").unwrap_or_default())
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        fields
            .check_supported(resource)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok(Filter { labels, fields })
    }

    /// Whether the filter selects everything.
    pub fn is_everything(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }

    /// Whether a cached object is selected.
    pub fn matches_entry(&self, entry: &crate::watch_cache::Entry) -> bool {
        (self.labels.is_empty() || self.labels.matches(&entry.labels))
            && (self.fields.is_empty() || self.fields.matches(&entry.fields))
    }

    /// Whether `obj` is selected.
    pub fn matches(&self, resource: &Resource, obj: &Value) -> bool {
        (self.labels.is_empty() || self.labels.matches(&object::labels(obj)))
            && (self.fields.is_empty()
                || self
                    .fields
                    .matches(&fields::selectable_fields(resource, obj)))
    }
}

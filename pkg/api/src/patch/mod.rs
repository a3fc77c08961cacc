//! Patches as the API server applies them to a stored object: JSON Patch (RFC 6902),
//! JSON Merge Patch (RFC 7386) and Kubernetes' strategic merge patch for the built-in kinds.
//! Each takes the stored object and the patch as JSON and returns the patched object; none
//! validates the result (the API server decodes and validates it like an update).
//!
//! Server-side apply (`application/apply-patch+yaml`) is not a patch in this sense: it is
//! [`crate::apply`].

pub mod json_patch;
pub mod merge_patch;
pub mod strategic;

use serde_json::Value;

use crate::Resource;

/// Why a patch could not be applied. The API server answers most as 422 Unprocessable Entity
/// (a failed `test` as 422 too, a malformed patch document as 400 Bad Request).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch document is not shaped as its patch type requires.
    #[error("invalid patch: {0}")]
    Malformed(String),
    /// A JSON Patch operation other than add, remove, replace, move, copy and test.
    #[error("unexpected kind: {0}")]
    UnknownOperation(String),
    /// A JSON pointer that does not start with `/` or has a bad `~` escape.
    #[error("invalid json pointer: {0:?}")]
    InvalidPointer(String),
    /// A JSON Patch operation's location does not exist in the document.
    #[error("{op} operation does not apply: doc is missing path: {path:?}: missing value")]
    MissingPath {
        /// The operation.
        op: &'static str,
        /// The pointer that was not found.
        path: String,
    },
    /// An array index that is not a number, has leading zeros, or is out of range.
    #[error("unable to access invalid index: {index}: invalid index referenced")]
    InvalidIndex {
        /// The index as written.
        index: String,
    },
    /// A JSON Patch `test` found another value.
    #[error("testing value {path} failed: test failed")]
    TestFailed {
        /// The pointer tested.
        path: String,
    },
    /// A JSON Patch `move` into a child of its own source.
    #[error("move operation does not apply: {path:?} is inside its source {from:?}")]
    MoveIntoItself {
        /// The source pointer.
        from: String,
        /// The destination pointer.
        path: String,
    },
    /// A strategic merge patch or the object it patches is not a JSON object.
    #[error("strategic merge patch and object must both be json objects")]
    NotAnObject,
    /// A list item lacks the list's merge key.
    #[error("map: {item} does not contain declared merge key: {key}")]
    NoMergeKey {
        /// The item, as JSON.
        item: String,
        /// The merge key.
        key: &'static str,
    },
    /// A `$patch` directive other than replace, delete (and merge in a map).
    #[error("unknown patch type: {directive} in map: {map}")]
    UnknownDirective {
        /// The directive's value, as JSON.
        directive: String,
        /// The map holding it, as JSON.
        map: String,
    },
    /// `$patch: merge` inside a list.
    #[error("merging lists cannot yet be specified in the patch")]
    MergeDirectiveInList,
    /// A `$retainKeys`, `$deleteFromPrimitiveList/` or `$setElementOrder/` directive of the
    /// wrong shape; names which.
    #[error("invalid patch format of {0}")]
    BadDirective(&'static str),
    /// The items of a list in the patch are not in the order its `$setElementOrder` gives.
    #[error("the order in patch list {patch} doesn't match $setElementOrder list {order}")]
    OrderMismatch {
        /// The patch list, as JSON.
        patch: String,
        /// The order list, as JSON.
        order: String,
    },
    /// A merged list holds a list.
    #[error("lists of lists are not supported")]
    ListOfLists,
    /// A merged list mixes maps and primitives, or primitives of different types.
    #[error("list element types are not identical: {0}")]
    MixedList(String),
    /// A field the patch merges as a list is something else in the object or the patch.
    #[error("expected a list at {0}")]
    NotAList(String),
}

/// The kinds of patch a PATCH request can carry, by its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json`: RFC 6902 operations.
    Json,
    /// `application/merge-patch+json`: RFC 7386.
    Merge,
    /// `application/strategic-merge-patch+json`: Kubernetes' strategic merge patch.
    StrategicMerge,
}

impl PatchType {
    /// The patch type of a request's `Content-Type` (parameters such as `charset` ignored).
    pub fn from_content_type(content_type: &str) -> Option<PatchType> {
        let media_type = content_type.split(';').next().unwrap_or_default().trim();
        match media_type {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::StrategicMerge),
            _ => None,
        }
    }

    /// The media type of this patch type.
    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::Json => "application/json-patch+json",
            PatchType::Merge => "application/merge-patch+json",
            PatchType::StrategicMerge => "application/strategic-merge-patch+json",
        }
    }
}

/// Applies `patch` of `patch_type` to `original`, an object of `resource`.
pub fn apply(
    patch_type: PatchType,
    resource: &Resource,
    original: &Value,
    patch: &Value,
) -> Result<Value, PatchError> {
    match patch_type {
        PatchType::Json => json_patch::apply(original, patch),
        PatchType::Merge => Ok(merge_patch::apply(original, patch)),
        PatchType::StrategicMerge => strategic::apply(resource, original, patch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::find;
    use serde_json::json;

    #[test]
    fn content_types_choose_the_patch() {
        assert_eq!(
            PatchType::from_content_type("application/json-patch+json"),
            Some(PatchType::Json)
        );
        assert_eq!(
            PatchType::from_content_type("application/merge-patch+json; charset=utf-8"),
            Some(PatchType::Merge)
        );
        assert_eq!(
            PatchType::from_content_type("application/strategic-merge-patch+json"),
            Some(PatchType::StrategicMerge)
        );
        assert_eq!(
            PatchType::from_content_type("application/apply-patch+yaml"),
            None
        );
        for t in [PatchType::Json, PatchType::Merge, PatchType::StrategicMerge] {
            assert_eq!(PatchType::from_content_type(t.content_type()), Some(t));
        }
    }

    #[test]
    fn the_three_types_differ_on_lists() {
        let cm = find("", "v1", "configmaps").unwrap();
        let pods = find("", "v1", "pods").unwrap();
        let pod = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}});
        let patch = json!({"spec": {"containers": [{"name": "b", "image": "z"}]}});
        let merged = apply(PatchType::Merge, cm, &pod, &patch).unwrap();
        assert_eq!(merged["spec"]["containers"].as_array().unwrap().len(), 1);
        let strategic = apply(PatchType::StrategicMerge, pods, &pod, &patch).unwrap();
        assert_eq!(
            strategic["spec"]["containers"],
            json!([{"name": "a", "image": "x"}, {"name": "b", "image": "z"}])
        );
        let ops = json!([{"op": "replace", "path": "/spec/containers/1/image", "value": "z"}]);
        assert_eq!(apply(PatchType::Json, pods, &pod, &ops).unwrap(), strategic);
    }
}

//! The bridge from client-side apply: `kubectl apply` without `--server-side` records the
//! configuration in the `kubectl.kubernetes.io/last-applied-configuration` annotation and its
//! fields are owned by `kubectl-client-side-apply`. When the manager `kubectl` applies
//! server-side, conflicts on fields that still hold their last-applied values are forced (the
//! user is taking over their own fields), and the annotation is rewritten to the new
//! configuration so that a later client-side apply still computes the right patch.

use serde_json::Value;

use crate::managed_fields::{FieldSet, Walker};

/// The field manager kubectl uses for `apply --server-side`.
pub(super) const KUBECTL: &str = "kubectl";

/// The annotation client-side apply keeps.
pub const ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

fn annotation(object: &Value) -> Option<&str> {
    object
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(ANNOTATION))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The fields of the last-applied configuration whose values `live` still has.
pub(super) fn allowed_conflicts(walker: &Walker, live: &Value) -> FieldSet {
    let Some(last) = annotation(live).and_then(|s| serde_json::from_str::<Value>(s).ok()) else {
        return FieldSet::new();
    };
    if last.get("apiVersion") != live.get("apiVersion") {
        return FieldSet::new();
    }
    let changes = walker.compare(&last, live);
    walker
        .field_set(&last)
        .difference(&changes.modified)
        .difference(&changes.added)
        .difference(&changes.removed)
}

/// Rewrites the annotation, when `object` has one, to `applied` without it, encoded as
/// upstream encodes it (compact, keys sorted, a trailing newline).
pub(super) fn update(object: &mut Value, applied: &Value) {
    if annotation(object).is_none() {
        return;
    }
    let mut config = applied.clone();
    if let Some(annotations) = config
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.remove(ANNOTATION);
    }
    let encoded = format!("{}\n", crate::managed_fields::go_json(&config));
    if let Some(annotations) = object
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.insert(ANNOTATION.into(), Value::String(encoded));
    }
}

//! What controllers read and write in object metadata: keys, owner references (the
//! controller reference in particular), label selectors and times.

use std::collections::BTreeMap;

use cairn_api::labels::Selector;
use cairn_client::ObjectKey;
use jiff::Timestamp;
use k8s_openapi::Resource;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, ObjectMeta, OwnerReference, Time,
};

use crate::error::{Error, Result};

/// The key of an object.
pub fn key(meta: &ObjectMeta) -> ObjectKey {
    ObjectKey::of(meta)
}

/// The object's namespace (empty for cluster-scoped objects).
pub fn namespace(meta: &ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or_default()
}

/// The object's name.
pub fn name(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}

/// The object's uid.
pub fn uid(meta: &ObjectMeta) -> &str {
    meta.uid.as_deref().unwrap_or_default()
}

/// Whether the object is being deleted.
pub fn is_deleting(meta: &ObjectMeta) -> bool {
    meta.deletion_timestamp.is_some()
}

/// The object's labels (empty when it has none).
pub fn labels(meta: &ObjectMeta) -> &BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    meta.labels.as_ref().unwrap_or(&EMPTY)
}

/// The object's annotation `key`.
pub fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

/// The owner reference marked `controller: true`, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
}

/// Whether `owner` (by uid) is the controller of the object `meta` describes.
pub fn is_controlled_by(meta: &ObjectMeta, owner: &ObjectMeta) -> bool {
    controller_of(meta).is_some_and(|r| r.uid == uid(owner))
}

/// The controller reference an object of kind `K` puts on what it creates.
pub fn controller_ref<K: Resource>(owner: &ObjectMeta) -> OwnerReference {
    OwnerReference {
        api_version: K::API_VERSION.to_string(),
        kind: K::KIND.to_string(),
        name: name(owner).to_string(),
        uid: uid(owner).to_string(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The selector of a workload: `None` when it has none (which selects nothing).
pub fn selector(selector: Option<&LabelSelector>) -> Result<Option<Selector>> {
    selector
        .map(Selector::try_from)
        .transpose()
        .map_err(|e| Error::Invalid(format!("invalid selector: {e}")))
}

/// Whether `selector` (an absent one selects nothing, an empty one everything) selects
/// `labels`.
pub fn selects(selector: Option<&Selector>, labels: &BTreeMap<String, String>) -> bool {
    selector.is_some_and(|s| s.matches(labels))
}

/// A time as the API writes it.
pub fn time(at: Timestamp) -> Time {
    Time(at)
}

/// Now, truncated to whole seconds as the API's times are.
pub fn now() -> Timestamp {
    Timestamp::from_second(Timestamp::now().as_second()).unwrap_or_else(|_| Timestamp::now())
}

/// The numeric form of a resourceVersion (cairn's are store revisions).
pub fn revision(meta: &ObjectMeta) -> u64 {
    meta.resource_version
        .as_deref()
        .and_then(|rv| rv.parse().ok())
        .unwrap_or(0)
}

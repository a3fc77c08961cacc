//! Reading and setting an object's metadata on its JSON form (`serde_json::Value`), which is how
//! the API server handles every kind alike.

use serde_json::{Map, Value, json};

/// The object's `metadata`, created if missing.
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = json!({});
    }
    let root = obj.as_object_mut().expect("object");
    let meta = root.entry("metadata").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    meta.as_object_mut().expect("metadata object")
}

/// A string field of `metadata`.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

/// The object's name.
pub fn name(obj: &Value) -> Option<&str> {
    meta_str(obj, "name").filter(|n| !n.is_empty())
}

/// The object's namespace.
pub fn namespace(obj: &Value) -> Option<&str> {
    meta_str(obj, "namespace").filter(|n| !n.is_empty())
}

/// The object's `resourceVersion` as a revision; 0 when absent.
pub fn resource_version(obj: &Value) -> Result<i64, String> {
    match meta_str(obj, "resourceVersion") {
        None | Some("") => Ok(0),
        Some(v) => parse_resource_version(v),
    }
}

/// Parses a `resourceVersion` the way upstream's etcd3 storage does.
pub fn parse_resource_version(v: &str) -> Result<i64, String> {
    v.parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| format!("invalid resource version: {v:?}"))
}

/// Sets `metadata.resourceVersion`.
pub fn set_resource_version(obj: &mut Value, revision: i64) {
    if obj.is_null() {
        return;
    }
    meta_mut(obj).insert("resourceVersion".into(), json!(revision.to_string()));
}

/// The object's labels.
pub fn labels(obj: &Value) -> std::collections::BTreeMap<String, String> {
    obj.get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The object's finalizers.
pub fn finalizers(obj: &Value) -> Vec<String> {
    obj.get("metadata")
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether something still holds the object's deletion: a finalizer in its metadata, or, for
/// a namespace, one in its spec (removed through `namespaces/NAME/finalize`).
pub fn deletion_blocked(obj: &Value) -> bool {
    let spec_finalizers = obj["kind"] == "Namespace"
        && obj["spec"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
    !finalizers(obj).is_empty() || spec_finalizers
}

/// Whether the object is being deleted.
pub fn is_deleting(obj: &Value) -> bool {
    meta_str(obj, "deletionTimestamp").is_some()
}

/// The current time as a Kubernetes `Time` string (`2026-11-25T15:30:00Z`).
pub fn now() -> String {
    format_time(jiff::Timestamp::now())
}

/// A timestamp as a Kubernetes `Time` string.
pub fn format_time(t: jiff::Timestamp) -> String {
    serde_json::to_value(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t))
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A random UUID (version 4), as object UIDs are.
pub fn new_uid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The suffix upstream appends to a `generateName`: five characters from an alphabet without
/// vowels or look-alikes.
pub fn name_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trip() {
        let mut o = json!({"kind": "Pod"});
        set_resource_version(&mut o, 42);
        assert_eq!(resource_version(&o), Ok(42));
        assert_eq!(name(&o), None);
        meta_mut(&mut o).insert("name".into(), json!("web"));
        assert_eq!(name(&o), Some("web"));
        assert!(resource_version(&json!({"metadata": {"resourceVersion": "x"}})).is_err());
    }

    #[test]
    fn uids_and_suffixes_look_like_upstream() {
        let u = new_uid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_eq!(name_suffix().len(), 5);
        assert!(now().ends_with('Z'));
    }
}

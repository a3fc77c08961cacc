//! `metadata.managedFields` as kube-apiserver keeps it: which field manager owns which fields
//! of an object, recorded as FieldsV1 sets per manager, operation (`Apply` or `Update`), API
//! version and subresource. This module reads and writes the entries and records ordinary
//! writes (create, update, patch) with [`record_update`]; server-side apply, which reads
//! ownership to merge and to find conflicts, is [`crate::apply`].
//!
//! Like upstream's field manager: the fields a write changed become its manager's (in its
//! `Update` entry) and stop being anyone else's; identity fields (`apiVersion`, `kind`,
//! `metadata.name`, `uid`, `resourceVersion`, …) are never owned; writes to the main resource of
//! a kind with a `status` subresource own nothing under `status`, and writes to `status` own
//! nothing else; more than ten `Update` entries are folded, oldest first, into `ancient-changes`.
//! Not modelled: most of the Go zero values upstream compares a created object against (cairn
//! knows the top-level structs, pod templates and container lists), and conversion between API
//! versions (each served kind has one).

mod path;
mod set;
mod walk;

use serde_json::{Map, Value, json};

pub(crate) use path::go_json;
pub use path::{Path, PathElement};
pub use set::FieldSet;
pub(crate) use walk::{Comparison, Walker};

use crate::Resource;
use crate::schema::Schema;

/// The most `Update` entries an object keeps before the oldest are folded together.
pub const MAX_UPDATE_MANAGERS: usize = 10;

/// The manager that owns the fields of an object that was never applied, on its first apply.
pub const BEFORE_FIRST_APPLY: &str = "before-first-apply";

/// The kind of write an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Create, update or patch.
    Update,
}

impl Operation {
    /// The name in `managedFields` entries.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// Who wrote: the identity of a `managedFields` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manager {
    /// The field manager's name (`kubectl`, `kube-controller-manager`).
    pub name: String,
    /// How it wrote.
    pub operation: Operation,
    /// The API version it wrote in.
    pub api_version: String,
    /// The subresource it wrote to; empty for the resource itself.
    pub subresource: String,
}

impl Manager {
    /// Whether both name the same entry; an applier is the same whatever its API version.
    pub fn same(&self, other: &Manager) -> bool {
        self.name == other.name
            && self.operation == other.operation
            && self.subresource == other.subresource
            && (self.operation == Operation::Apply || self.api_version == other.api_version)
    }

    /// How conflicts name the manager: `"kubectl-client-side-apply" using apps/v1` for an
    /// updater, `"kubectl"` for an applier, with `with subresource "status"` when it wrote one.
    pub fn describe(&self) -> String {
        let mut out = format!("{:?}", self.name);
        if !self.subresource.is_empty() {
            out.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == Operation::Update {
            out.push_str(&format!(" using {}", self.api_version));
        }
        out
    }
}

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Whose fields these are.
    pub manager: Manager,
    /// When it last changed the object (RFC 3339), when known.
    pub time: Option<String>,
    /// The fields it owns.
    pub fields: FieldSet,
}

impl Entry {
    /// The entry as the object carries it.
    pub fn to_value(&self) -> Value {
        let mut entry = json!({
            "manager": self.manager.name,
            "operation": self.manager.operation.as_str(),
            "apiVersion": self.manager.api_version,
            "fieldsType": "FieldsV1",
            "fieldsV1": self.fields.to_fields_v1(),
        });
        if let Some(time) = &self.time {
            entry["time"] = json!(time);
        }
        if !self.manager.subresource.is_empty() {
            entry["subresource"] = json!(self.manager.subresource);
        }
        entry
    }

    /// Reads an entry, checked as upstream checks it.
    pub fn from_value(value: &Value) -> Result<Entry, String> {
        let text = |field: &str| value.get(field).and_then(Value::as_str).unwrap_or_default();
        let operation = match text("operation") {
            "Apply" => Operation::Apply,
            "Update" => Operation::Update,
            _ => return Err("operation must be `Apply` or `Update`".into()),
        };
        if text("apiVersion").is_empty() {
            return Err("apiVersion must not be empty".into());
        }
        match text("fieldsType") {
            "FieldsV1" => {}
            "" => return Err("missing fieldsType in managed fields entry".into()),
            other => {
                return Err(format!(
                    "invalid fieldsType {other:?} in managed fields entry"
                ));
            }
        }
        let fields = match value.get("fieldsV1") {
            Some(v) => FieldSet::from_fields_v1(v)?,
            None => FieldSet::new(),
        };
        Ok(Entry {
            manager: Manager {
                name: text("manager").to_string(),
                operation,
                api_version: text("apiVersion").to_string(),
                subresource: text("subresource").to_string(),
            },
            time: value.get("time").and_then(Value::as_str).map(String::from),
            fields,
        })
    }
}

/// The entries of `object`'s `metadata.managedFields` (none when it has none).
pub fn decode(object: &Value) -> Result<Vec<Entry>, String> {
    match object.pointer("/metadata/managedFields") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(entries)) => entries.iter().map(Entry::from_value).collect(),
        Some(other) => Err(format!("managedFields must be a list, got {other}")),
    }
}

/// Writes `entries` into `object`'s metadata in upstream's order (appliers first, then by
/// time, manager, API version and subresource); no entries removes the field.
pub fn encode(object: &mut Value, mut entries: Vec<Entry>) {
    entries.sort_by(|a, b| {
        let key = |e: &Entry| {
            (
                e.manager.operation,
                e.time.clone().unwrap_or_default(),
                e.manager.name.clone(),
                e.manager.api_version.clone(),
                e.manager.subresource.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    let Some(root) = object.as_object_mut() else {
        return;
    };
    let metadata = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(metadata) = metadata.as_object_mut() else {
        return;
    };
    if entries.is_empty() {
        metadata.remove("managedFields");
    } else {
        let values = entries.iter().map(Entry::to_value).collect();
        metadata.insert("managedFields".into(), Value::Array(values));
    }
}

/// Removes `metadata.managedFields` from `object`.
pub(crate) fn take(object: &mut Value) -> Option<Value> {
    object
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .and_then(|m| m.remove("managedFields"))
}

/// Who is writing, where and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The field manager (`fieldManager`, or [`default_manager`] of the User-Agent).
    pub manager: &'a str,
    /// The subresource written to (`status`), if any.
    pub subresource: Option<&'a str>,
    /// The time of the write, RFC 3339 (`2024-05-01T10:00:00Z`).
    pub now: &'a str,
}

impl Request<'_> {
    pub(crate) fn identity(&self, resource: &Resource, operation: Operation) -> Manager {
        Manager {
            name: if self.manager.is_empty() {
                "unknown".into()
            } else {
                self.manager.to_string()
            },
            operation,
            api_version: resource.api_version.to_string(),
            subresource: self.subresource.unwrap_or_default().to_string(),
        }
    }
}

/// The field manager upstream names a write without `fieldManager` after: its User-Agent up
/// to the first `/` (`kubectl/v1.33.0 (linux/amd64) kubernetes/abc` → `kubectl`), without
/// unprintable characters, at most 128 bytes.
pub fn default_manager(user_agent: &str) -> String {
    let prefix = user_agent.split('/').next().unwrap_or_default();
    let mut out = String::new();
    for c in prefix.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > 128 {
            break;
        }
        out.push(c);
    }
    out
}

/// Every field present in `object` (its `managedFields` aside), following the kind's list
/// types: what an applier of `object` would own.
pub fn of_object(resource: &Resource, object: &Value) -> FieldSet {
    let mut object = object.clone();
    take(&mut object);
    Walker {
        schema: Schema::of(resource),
    }
    .field_set(&object)
}

/// The fields no manager owns: type and identity metadata, which every write carries.
pub(crate) fn strip_identity(set: &FieldSet) -> FieldSet {
    let mut identity = FieldSet::new();
    for field in ["apiVersion", "kind", "metadata"] {
        identity.insert(&[PathElement::field(field)]);
    }
    for field in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ] {
        identity.insert(&[PathElement::field("metadata"), PathElement::field(field)]);
    }
    set.difference(&identity)
}

/// The part of `set` a write to `subresource` of `resource` may own: only `status` when writing
/// status, everything but `status` when writing a resource that has a status subresource.
pub(crate) fn writable(resource: &Resource, subresource: Option<&str>, set: &FieldSet) -> FieldSet {
    let status = PathElement::field("status");
    let mut only_status = FieldSet::new();
    if set.has_member(&status) {
        only_status.insert(std::slice::from_ref(&status));
    }
    if let Some(below) = set.child(&status) {
        only_status.insert_below(status, below.clone());
    }
    match subresource {
        Some("status") => only_status,
        None if resource.has_status() => set.difference(&only_status),
        _ => set.clone(),
    }
}

/// Applies `writable` to each set of a comparison.
pub(crate) fn writable_changes(
    resource: &Resource,
    subresource: Option<&str>,
    c: Comparison,
) -> Comparison {
    Comparison {
        added: writable(resource, subresource, &c.added),
        modified: writable(resource, subresource, &c.modified),
        removed: writable(resource, subresource, &c.removed),
    }
}

/// Fields Go always has, even empty, in every object: non-pointer structs, and lists without
/// `omitempty` (null). Upstream compares a created object with the zero value of its type,
/// where these exist, so they are never among the fields a write adds.
const ALWAYS_PRESENT: &[&str] = &[
    "metadata",
    "spec",
    "status",
    "spec.containers",
    "spec.strategy",
    "spec.updateStrategy",
    "spec.template",
    "spec.template.metadata",
    "spec.template.spec",
    "spec.template.spec.containers",
    "spec.jobTemplate",
    "spec.jobTemplate.metadata",
    "spec.jobTemplate.spec",
    "spec.jobTemplate.spec.template",
    "spec.jobTemplate.spec.template.metadata",
    "spec.jobTemplate.spec.template.spec",
    "spec.jobTemplate.spec.template.spec.containers",
];

/// `old` with an empty object or list at each [`ALWAYS_PRESENT`] path where `new` has one.
pub(crate) fn with_zero_values(mut old: Value, new: &Value) -> Value {
    for path in ALWAYS_PRESENT {
        let pointer: String = path.split('.').map(|f| format!("/{f}")).collect();
        let empty = match new.pointer(&pointer) {
            Some(Value::Object(_)) => Value::Object(Map::new()),
            Some(Value::Array(_)) => Value::Array(Vec::new()),
            _ => continue,
        };
        let mut at = &mut old;
        let fields: Vec<&str> = path.split('.').collect();
        for (i, field) in fields.iter().enumerate() {
            let Some(map) = at.as_object_mut() else {
                break;
            };
            let fill = if i + 1 == fields.len() {
                empty.clone()
            } else {
                Value::Object(Map::new())
            };
            at = map.entry(*field).or_insert(fill);
        }
    }
    old
}

/// Takes ownership away from every entry but `keep`: of the fields a write changed
/// (`modified ∪ added`, which were conflicts) and of the fields it removed. Entries left empty
/// are dropped. Returns, per entry that lost changed fields, the fields it lost.
pub(crate) fn disown(
    entries: &mut Vec<Entry>,
    keep: Option<&Manager>,
    changes: &Comparison,
) -> Vec<(Manager, FieldSet)> {
    let changed = changes.modified.union(&changes.added);
    let mut lost = Vec::new();
    for entry in entries.iter_mut() {
        if keep.is_some_and(|m| m.same(&entry.manager)) {
            continue;
        }
        let conflict = entry.fields.intersection(&changed);
        if !conflict.is_empty() {
            lost.push((entry.manager.clone(), conflict.clone()));
        }
        entry.fields = entry
            .fields
            .difference(&conflict)
            .difference(&changes.removed);
    }
    entries.retain(|e| !e.fields.is_empty());
    lost
}

/// The entry of `manager`, if there is one.
pub(crate) fn position(entries: &[Entry], manager: &Manager) -> Option<usize> {
    entries.iter().position(|e| e.manager.same(manager))
}

/// Records an ordinary write (create: `old` is `None`; update; patch) in `new`'s
/// `managedFields`, as upstream's field manager does:
///
/// - the entries start from `new`'s own `managedFields` when the request set a valid,
///   non-empty list (a client may write them), from `[]` when it sent `[]` (a reset), and
///   otherwise from `old`'s; writes to a subresource always start from `old`'s;
/// - the fields that differ between `old` and `new` (all of them on create) become
///   `request.manager`'s, merged into its `Update` entry (timestamped `now`), and leave every
///   other entry;
/// - an existing object without entries is not tracked (upstream does not start tracking on
///   update), so a reset stays reset.
pub fn record_update(resource: &Resource, old: Option<&Value>, new: &mut Value, request: &Request) {
    let sent = take(new);
    let from_old = || old.map(decode).and_then(Result::ok).unwrap_or_default();
    let mut entries = match (&sent, request.subresource) {
        (Some(Value::Array(list)), None) if list.is_empty() => Vec::new(),
        (Some(sent), None) => match decode(&json!({"metadata": {"managedFields": sent}})) {
            Ok(entries) if !entries.is_empty() => entries,
            _ => from_old(),
        },
        _ => from_old(),
    };
    if entries.is_empty() && old.is_some() {
        return;
    }
    let walker = Walker {
        schema: Schema::of(resource),
    };
    let mut before = old.cloned().unwrap_or_else(|| json!({}));
    take(&mut before);
    let changes = walker.compare(&with_zero_values(before, new), new);
    let changes = writable_changes(resource, request.subresource, changes);
    let me = request.identity(resource, Operation::Update);
    disown(&mut entries, None, &changes);
    let owned = strip_identity(&changes.modified.union(&changes.added));
    if !owned.is_empty() {
        match position(&entries, &me) {
            Some(i) => {
                entries[i].fields = entries[i].fields.union(&owned);
                entries[i].time = Some(request.now.to_string());
            }
            None => entries.push(Entry {
                manager: me,
                time: Some(request.now.to_string()),
                fields: owned,
            }),
        }
    }
    cap_update_managers(&mut entries);
    encode(new, entries);
}

/// Folds the oldest `Update` entries into `ancient-changes` until at most
/// [`MAX_UPDATE_MANAGERS`] are left.
fn cap_update_managers(entries: &mut Vec<Entry>) {
    let count = |entries: &[Entry]| {
        entries
            .iter()
            .filter(|e| e.manager.operation == Operation::Update)
            .count()
    };
    while count(entries) > MAX_UPDATE_MANAGERS {
        let oldest = entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.manager.operation == Operation::Update)
            .filter(|(_, e)| e.manager.name != "ancient-changes")
            .min_by_key(|(_, e)| (e.time.clone().unwrap_or_default(), e.manager.name.clone()))
            .map(|(i, _)| i);
        let Some(oldest) = oldest else {
            return;
        };
        let folded = entries.remove(oldest);
        let bucket = Manager {
            name: "ancient-changes".into(),
            subresource: String::new(),
            ..folded.manager.clone()
        };
        match position(entries, &bucket) {
            Some(i) => {
                entries[i].fields = entries[i].fields.union(&folded.fields);
                entries[i].time = folded.time;
            }
            None => entries.push(Entry {
                manager: bucket,
                ..folded
            }),
        }
    }
}

#[cfg(test)]
mod tests;

//! Server-side apply (`PATCH` with `application/apply-patch+yaml`) as kube-apiserver does it:
//! the applied configuration is merged into the live object following the kind's list types
//! (the crate's merge schema), fields the manager applied last time but no longer applies are
//! removed unless another manager owns them, and a change to a field another manager owns is
//! a conflict unless forced. Ownership is read from and written to `metadata.managedFields`
//! ([`crate::managed_fields`]).
//!
//! Upstream's wrappers are kept: an object with no `managedFields` first has its fields given to
//! `before-first-apply`; the manager `kubectl` may take over fields from client-side apply
//! without conflicts where the object still matches its `last-applied-configuration`, and
//! keeps that annotation in step. The API server decodes the YAML body, picks the manager and
//! the subresource's part of the result, and answers conflicts with [`ApplyError`]'s
//! [`conflict_message`] and [`conflict_causes`].

mod conflict;
mod last_applied;

use serde_json::{Value, json};

pub use conflict::{Conflict, conflict_causes, conflict_message};

use crate::Resource;
use crate::managed_fields::{
    self, BEFORE_FIRST_APPLY, Entry, FieldSet, Manager, Operation, Request, Walker,
};
use crate::schema::Schema;

/// Why an apply was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// Fields the configuration changes are owned by other managers (409 Conflict).
    #[error("{}", conflict_message(.0))]
    Conflicts(Vec<Conflict>),
    /// The configuration is not an object of the resource (400 Bad Request).
    #[error("{0}")]
    BadRequest(String),
    /// The configuration breaks the kind's list types: a key missing, an item twice (422).
    #[error("{0}")]
    Invalid(String),
    /// The live object's `managedFields` cannot be read (500).
    #[error("failed to decode managed fields: {0}")]
    ManagedFields(String),
}

/// `applied` (a decoded apply configuration) applied to `live` (`None` creates) by
/// `request.manager`: the merged object with its `managedFields` updated. With `force`,
/// conflicting fields change owner instead of failing. When nothing changes, the result equals
/// `live` (the API server then skips the write).
pub fn apply(
    resource: &Resource,
    live: Option<&Value>,
    applied: &Value,
    request: &Request,
    force: bool,
) -> Result<Value, ApplyError> {
    check_config(resource, applied)?;
    let walker = Walker {
        schema: Schema::of(resource),
    };
    walker.check(applied).map_err(ApplyError::Invalid)?;
    let mut live = live.cloned().unwrap_or_else(|| json!({}));
    let mut entries = managed_fields::decode(&live).map_err(ApplyError::ManagedFields)?;
    managed_fields::take(&mut live);
    if entries.is_empty() {
        entries = owned_before_first_apply(resource, &walker, &live, request);
    }
    let me = request.identity(resource, Operation::Apply);
    let step = Step {
        resource,
        walker,
        live: &live,
        applied,
        me: &me,
        subresource: request.subresource,
    };
    let (merged, entries) = match step.run(entries.clone(), force) {
        Err(conflicts) if me.name == last_applied::KUBECTL && !force => {
            let allowed = last_applied::allowed_conflicts(&walker, &live);
            let left: Vec<Conflict> = conflicts
                .into_iter()
                .filter(|c| !allowed.contains(&c.path.0))
                .collect();
            if !left.is_empty() {
                return Err(ApplyError::Conflicts(left));
            }
            step.run(entries, true)
        }
        other => other,
    }
    .map_err(ApplyError::Conflicts)?;
    Ok(finish(&live, merged, entries, &me, applied, request.now))
}

/// Upstream's checks of the configuration itself.
fn check_config(resource: &Resource, applied: &Value) -> Result<(), ApplyError> {
    if !applied.is_object() {
        return Err(ApplyError::BadRequest(
            "the apply configuration must be an object".into(),
        ));
    }
    let api_version = applied.get("apiVersion").and_then(Value::as_str);
    if api_version != Some(resource.api_version) {
        return Err(ApplyError::BadRequest(format!(
            "Incorrect version specified in apply patch. Specified patch version: {}, expected: {}",
            api_version.unwrap_or_default(),
            resource.api_version
        )));
    }
    if applied.get("kind").and_then(Value::as_str) != Some(resource.kind) {
        return Err(ApplyError::BadRequest(format!(
            "the apply configuration's kind must be {}",
            resource.kind
        )));
    }
    if applied
        .pointer("/metadata/managedFields")
        .is_some_and(|v| !v.is_null())
    {
        return Err(ApplyError::BadRequest(
            "metadata.managedFields must be nil".into(),
        ));
    }
    Ok(())
}

/// The fields of a live object nobody owns yet, given to `before-first-apply`.
fn owned_before_first_apply(
    resource: &Resource,
    walker: &Walker,
    live: &Value,
    request: &Request,
) -> Vec<Entry> {
    let all = walker.compare(&json!({}), live);
    let fields = managed_fields::strip_identity(&managed_fields::writable(
        resource,
        request.subresource,
        &all.added,
    ));
    if fields.is_empty() {
        return Vec::new();
    }
    vec![Entry {
        manager: Manager {
            name: BEFORE_FIRST_APPLY.into(),
            operation: Operation::Update,
            api_version: resource.api_version.into(),
            subresource: request.subresource.unwrap_or_default().into(),
        },
        time: None,
        fields,
    }]
}

/// One application of a configuration (upstream's `Updater.Apply`).
struct Step<'a> {
    resource: &'a Resource,
    walker: Walker,
    live: &'a Value,
    applied: &'a Value,
    me: &'a Manager,
    subresource: Option<&'a str>,
}

impl Step<'_> {
    /// The merged, pruned object and the new entries, or the conflicts.
    fn run(
        &self,
        mut entries: Vec<Entry>,
        force: bool,
    ) -> Result<(Value, Vec<Entry>), Vec<Conflict>> {
        let merged = self.walker.merge(self.live, self.applied);
        let applied = managed_fields::writable(
            self.resource,
            self.subresource,
            &self.walker.field_set(self.applied),
        );
        let last = match managed_fields::position(&entries, self.me) {
            Some(i) => std::mem::replace(&mut entries[i].fields, applied),
            None => {
                entries.push(Entry {
                    manager: self.me.clone(),
                    time: None,
                    fields: applied,
                });
                FieldSet::new()
            }
        };
        let merged = self.prune(merged, &entries, &last);
        let changes = managed_fields::writable_changes(
            self.resource,
            self.subresource,
            self.walker.compare(self.live, &merged),
        );
        let mut after = entries.clone();
        let lost = managed_fields::disown(&mut after, Some(self.me), &changes);
        if !force && !lost.is_empty() {
            return Err(conflict::from_lost(lost));
        }
        for entry in after.iter_mut().filter(|e| e.manager.same(self.me)) {
            entry.fields = managed_fields::strip_identity(&entry.fields);
        }
        after.retain(|e| !e.fields.is_empty());
        Ok((merged, after))
    }

    /// Removes what the manager applied last time (`last`) and no longer applies, unless some
    /// manager owns it; fields nobody owned stay (upstream's `prune`).
    fn prune(&self, merged: Value, entries: &[Entry], last: &FieldSet) -> Value {
        if last.is_empty() {
            return merged;
        }
        let w = &self.walker;
        let last = last.with_fields_as_members();
        let fields = |v: &Value| w.field_set(v).with_fields_as_members();
        let pruned = w.remove(&merged, &last);
        let owned = entries
            .iter()
            .fold(FieldSet::new(), |acc, e| acc.union(&e.fields))
            .with_fields_as_members();
        let all = fields(&merged);
        let pruned = w.remove(&merged, &all.difference(&fields(&pruned).union(&owned)));
        let removed = all.difference(&fields(&pruned)).intersection(&last);
        w.remove(&merged, &removed)
    }
}

/// The object to store: nulls dropped, `kubectl`'s last-applied annotation kept in step, the
/// applier's entry timestamped when the object changed, and the entries written.
fn finish(
    live: &Value,
    mut merged: Value,
    mut entries: Vec<Entry>,
    me: &Manager,
    applied: &Value,
    now: &str,
) -> Value {
    drop_nulls(&mut merged);
    if merged != *live {
        for entry in entries.iter_mut().filter(|e| e.manager.same(me)) {
            entry.time = Some(now.to_string());
        }
    }
    if me.name == last_applied::KUBECTL {
        last_applied::update(&mut merged, applied);
    }
    managed_fields::encode(&mut merged, entries);
    merged
}

/// Removes `null` fields: applying `null` gives up a field.
fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod tests;

//! Strategic merge patch as the API server applies it to the built-in kinds (upstream's
//! `strategicpatch.StrategicMergePatch` with its server options): maps merge key by key and
//! `null` deletes a key; lists merge as the kind's schema says (by a merge key, or as a set of
//! primitives) or are replaced; and the directives `$patch: replace|delete`, `$retainKeys`,
//! `$deleteFromPrimitiveList/<field>` and `$setElementOrder/<field>` steer it.
//!
//! Merged lists keep upstream's order: patch items in the patch's order (or `$setElementOrder`'s),
//! interleaved with the items only the object had in their old order. One deliberate
//! difference: content the object did not have yet is itself merged into nothing, so
//! directives and `null`s inside it are applied rather than stored verbatim.

use serde_json::{Map, Value};

use super::PatchError;
use crate::Resource;
use crate::schema::{ListStrategy, Schema};

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";

/// `original`, an object of `resource`, with the strategic merge patch `patch` applied.
pub fn apply(resource: &Resource, original: &Value, patch: &Value) -> Result<Value, PatchError> {
    let (Value::Object(original), Value::Object(patch)) = (original, patch) else {
        return Err(PatchError::NotAnObject);
    };
    let merger = Merger {
        schema: Schema::of(resource),
    };
    merger
        .merge_map(original.clone(), patch.clone(), "")
        .map(Value::Object)
}

/// One patch application: the kind's schema, consulted by the path of each list met.
struct Merger {
    schema: Schema,
}

impl Merger {
    /// Merges `patch` into `original`, the map at `path`: directives first, then each field.
    fn merge_map(
        &self,
        mut original: Map<String, Value>,
        mut patch: Map<String, Value>,
        path: &str,
    ) -> Result<Map<String, Value>, PatchError> {
        if let Some(directive) = patch.remove(DIRECTIVE) {
            return self.map_directive(directive, patch, path);
        }
        retain_keys(&mut original, &mut patch)?;
        self.set_element_orders(&mut original, &mut patch, path)?;
        // Deletions from primitive lists go first, so a patch may delete and add in one go.
        let (deletions, fields): (Vec<_>, Vec<_>) = patch
            .into_iter()
            .partition(|(key, _)| key.starts_with(DELETE_FROM_PRIMITIVE_LIST));
        for (key, values) in deletions {
            let rest = &key[DELETE_FROM_PRIMITIVE_LIST.len()..];
            delete_from_primitive_list(&mut original, rest, &values)?;
        }
        for (key, value) in fields {
            self.merge_field(&mut original, key, value, path)?;
        }
        Ok(original)
    }

    /// `$patch` in a map: `replace` takes the rest of the patch as the whole map, `delete`
    /// leaves an empty map.
    fn map_directive(
        &self,
        directive: Value,
        patch: Map<String, Value>,
        path: &str,
    ) -> Result<Map<String, Value>, PatchError> {
        match directive.as_str() {
            Some("replace") => self.merge_map(Map::new(), patch, path),
            Some("delete") => Ok(Map::new()),
            _ => Err(PatchError::UnknownDirective {
                directive: directive.to_string(),
                map: Value::Object(patch).to_string(),
            }),
        }
    }

    fn merge_field(
        &self,
        original: &mut Map<String, Value>,
        key: String,
        value: Value,
        path: &str,
    ) -> Result<(), PatchError> {
        if value.is_null() {
            original.remove(&key);
            return Ok(());
        }
        let child = child_path(path, &key);
        let merged = match (original.remove(&key), value) {
            (Some(Value::Object(o)), Value::Object(p)) => {
                Value::Object(self.merge_map(o, p, &child)?)
            }
            (Some(Value::Array(o)), Value::Array(p)) => {
                Value::Array(self.merge_list(o, p, &child)?)
            }
            (_, value) => self.fresh(value, &child)?,
        };
        original.insert(key, merged);
        Ok(())
    }

    /// A patch value where the object had nothing (or a value of another type): merged into
    /// nothing, so its directives apply and its nulls vanish.
    fn fresh(&self, value: Value, path: &str) -> Result<Value, PatchError> {
        Ok(match value {
            Value::Object(p) => Value::Object(self.merge_map(Map::new(), p, path)?),
            Value::Array(p) if self.schema.list_strategy(path).is_some() => {
                Value::Array(self.merge_list(Vec::new(), p, path)?)
            }
            other => without_nulls(other),
        })
    }

    fn merge_list(
        &self,
        original: Vec<Value>,
        patch: Vec<Value>,
        path: &str,
    ) -> Result<Vec<Value>, PatchError> {
        match self.schema.list_strategy(path) {
            None => Ok(patch),
            Some(_) if original.is_empty() && patch.is_empty() => Ok(original),
            Some(ListStrategy::MergeSet) => {
                if element_kind(&original, &patch)? == ElementKind::Object {
                    return Err(PatchError::Malformed(format!(
                        "cannot merge lists of objects without a merge key at {path}"
                    )));
                }
                Ok(merge_primitives(original, patch))
            }
            Some(ListStrategy::MergeByKey(key)) => {
                if element_kind(&original, &patch)? != ElementKind::Object {
                    return Ok(merge_primitives(original, patch));
                }
                self.merge_keyed(original, patch, key, path)
            }
        }
    }

    /// Merges a list of objects by `key`: directive items first (delete, replace), then each
    /// patch item into the original item with its key, or appended; then upstream's order.
    fn merge_keyed(
        &self,
        original: Vec<Value>,
        patch: Vec<Value>,
        key: &'static str,
        path: &str,
    ) -> Result<Vec<Value>, PatchError> {
        let (original, patch) = match split_list_directives(original, patch, key)? {
            ListPlan::Replace(items) => return self.fresh_items(items, path),
            ListPlan::Merge { original, patch } => (original, patch),
        };
        let mut merged = original.clone();
        for item in &patch {
            let value = key_value(item, key)?;
            let position = merged.iter().position(|m| m.get(key) == Some(value));
            let base = position.map_or_else(Map::new, |i| into_map(std::mem::take(&mut merged[i])));
            let next = Value::Object(self.merge_map(base, into_map(item.clone()), path)?);
            match position {
                Some(i) => merged[i] = next,
                None => merged.push(next),
            }
        }
        require_key(&merged, key)?;
        require_key(&original, key)?;
        let order = Order::Key(key);
        let (in_patch, server_only) = order.partition(merged, &patch);
        Ok(order.normalize(in_patch, server_only, &patch, &original))
    }

    fn fresh_items(&self, items: Vec<Value>, path: &str) -> Result<Vec<Value>, PatchError> {
        items
            .into_iter()
            .map(|item| match item {
                Value::Object(m) => self.merge_map(Map::new(), m, path).map(Value::Object),
                other => Ok(other),
            })
            .collect()
    }

    /// Applies every `$setElementOrder/<field>` of `patch`: merges that field's list now and
    /// orders it as the directive says, removing both from the patch.
    fn set_element_orders(
        &self,
        original: &mut Map<String, Value>,
        patch: &mut Map<String, Value>,
        path: &str,
    ) -> Result<(), PatchError> {
        let directives: Vec<String> = patch
            .keys()
            .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
            .cloned()
            .collect();
        for directive in directives {
            let order = patch.remove(&directive).expect("listed above");
            let field = directive_field(&directive, SET_ELEMENT_ORDER)
                .ok_or(PatchError::BadDirective("setElementOrder list"))?;
            let Value::Array(order) = order else {
                return Err(PatchError::BadDirective("setElementOrder list"));
            };
            let child = child_path(path, field);
            let original_list = take_list(original, field, &child)?;
            let patch_list = take_list(patch, field, &child)?;
            if original_list.is_none() && patch_list.is_none() {
                continue;
            }
            let ordered = self.ordered_list(original_list, patch_list, &order, &child)?;
            original.insert(field.to_string(), Value::Array(ordered));
        }
        Ok(())
    }

    fn ordered_list(
        &self,
        original: Option<Vec<Value>>,
        patch: Option<Vec<Value>>,
        order: &[Value],
        path: &str,
    ) -> Result<Vec<Value>, PatchError> {
        let rule = match self.schema.list_strategy(path) {
            Some(ListStrategy::MergeByKey(key)) => Order::Key(key),
            _ => Order::Value,
        };
        if let Some(patch) = &patch {
            rule.check_patch_follows(patch, order)?;
        }
        let original = original.unwrap_or_default();
        let had_items = !original.is_empty() || patch.as_ref().is_some_and(|p| !p.is_empty());
        let merged = match patch {
            Some(patch) => self.merge_list(original.clone(), patch, path)?,
            None => original.clone(),
        };
        if !had_items {
            return Ok(merged);
        }
        let rule = match (element_kind(&original, &merged)?, rule) {
            (ElementKind::Object, Order::Key(key)) => {
                require_key(&merged, key)?;
                require_key(order, key)?;
                rule
            }
            _ => Order::Value,
        };
        let (in_order, server_only) = rule.partition(merged, order);
        Ok(rule.normalize(in_order, server_only, order, &original))
    }
}

/// What a merge list's directive items ask for.
enum ListPlan {
    /// `{"$patch": "replace"}`: the list is exactly the other patch items.
    Replace(Vec<Value>),
    /// Merge the patch items (directives removed) into the original (deletions done).
    Merge {
        original: Vec<Value>,
        patch: Vec<Value>,
    },
}

fn split_list_directives(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    key: &'static str,
) -> Result<ListPlan, PatchError> {
    let mut plain = Vec::new();
    let mut replace = false;
    for item in patch {
        let Some(directive) = item.get(DIRECTIVE) else {
            plain.push(item);
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let value = key_value(&item, key)?;
                original.retain(|o| o.get(key) != Some(value));
            }
            Some("replace") => replace = true,
            Some("merge") => return Err(PatchError::MergeDirectiveInList),
            _ => {
                return Err(PatchError::UnknownDirective {
                    directive: directive.to_string(),
                    map: item.to_string(),
                });
            }
        }
    }
    Ok(if replace {
        ListPlan::Replace(plain)
    } else {
        ListPlan::Merge {
            original,
            patch: plain,
        }
    })
}

/// Set union keeping first appearances; then upstream's order.
fn merge_primitives(original: Vec<Value>, patch: Vec<Value>) -> Vec<Value> {
    let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
    for item in original.iter().chain(&patch) {
        if !merged.contains(item) {
            merged.push(item.clone());
        }
    }
    let (in_patch, server_only) = Order::Value.partition(merged, &patch);
    Order::Value.normalize(in_patch, server_only, &patch, &original)
}

/// `$deleteFromPrimitiveList/<field>: [values]`: removes those values from the field's list.
fn delete_from_primitive_list(
    original: &mut Map<String, Value>,
    rest: &str,
    values: &Value,
) -> Result<(), PatchError> {
    let bad = || PatchError::BadDirective("primitive list");
    let field = rest.strip_prefix('/').ok_or_else(bad)?;
    let Value::Array(values) = values else {
        return Err(bad());
    };
    if let Some(Value::Array(items)) = original.get_mut(field) {
        items.retain(|item| !values.contains(item));
    }
    Ok(())
}

/// `$retainKeys: [keys]`: drops the original's other keys; the patch may set only those.
fn retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<(), PatchError> {
    let Some(keys) = patch.remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let bad = || PatchError::BadDirective("retainKeys");
    let Value::Array(keys) = keys else {
        return Err(bad());
    };
    let retained = |k: &str| keys.iter().any(|r| r.as_str() == Some(k));
    let patch_sets_other_keys = patch.iter().any(|(k, v)| {
        !v.is_null()
            && !k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            && !k.starts_with(SET_ELEMENT_ORDER)
            && !retained(k)
    });
    if patch_sets_other_keys {
        return Err(bad());
    }
    original.retain(|k, _| retained(k));
    Ok(())
}

/// How list items are identified when ordering: by a merge key's value, or as themselves.
#[derive(Debug, Clone, Copy)]
enum Order {
    Key(&'static str),
    Value,
}

impl Order {
    fn identity(self, item: &Value) -> Option<&Value> {
        match self {
            Order::Key(key) => item.get(key),
            Order::Value => Some(item),
        }
    }

    fn index_in(self, list: &[Value], item: &Value) -> Option<usize> {
        let id = self.identity(item);
        list.iter().position(|other| self.identity(other) == id)
    }

    /// Splits `merged` into the items present in `by` and the others, keeping their order.
    fn partition(self, merged: Vec<Value>, by: &[Value]) -> (Vec<Value>, Vec<Value>) {
        merged
            .into_iter()
            .partition(|item| self.index_in(by, item).is_some())
    }

    /// Upstream's `normalizeElementOrder`: patch items sorted as `patch_order`, server-only
    /// items as `server_order`, then interleaved: a server-only item goes before a patch item
    /// when both were in the object and it came first there; otherwise the patch item goes
    /// first (so new items without an order land before the remaining server-only ones).
    fn normalize(
        self,
        mut in_patch: Vec<Value>,
        mut server_only: Vec<Value>,
        patch_order: &[Value],
        server_order: &[Value],
    ) -> Vec<Value> {
        self.sort_by(&mut in_patch, patch_order);
        self.sort_by(&mut server_only, server_order);
        let mut result = Vec::with_capacity(in_patch.len() + server_only.len());
        let mut patch_items = in_patch.into_iter().peekable();
        let mut server_items = server_only.into_iter().peekable();
        loop {
            let take_server = match (server_items.peek(), patch_items.peek()) {
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
                (Some(s), Some(p)) => matches!(
                    (self.index_in(server_order, s), self.index_in(server_order, p)),
                    (Some(si), Some(pi)) if si < pi
                ),
            };
            let next = if take_server {
                server_items.next()
            } else {
                patch_items.next()
            };
            result.extend(next);
        }
        result
    }

    fn sort_by(self, items: &mut [Value], order: &[Value]) {
        items.sort_by_key(|item| self.index_in(order, item).unwrap_or(usize::MAX));
    }

    /// The patch's items (deletions aside) must appear in the order list, in its order.
    fn check_patch_follows(self, patch: &[Value], order: &[Value]) -> Result<(), PatchError> {
        let mut remaining = order.iter();
        for item in patch.iter().filter(|i| i.get(DIRECTIVE).is_none()) {
            if let Order::Key(key) = self {
                key_value(item, key)?;
            }
            let id = self.identity(item);
            if !remaining.any(|o| self.identity(o) == id) {
                return Err(PatchError::OrderMismatch {
                    patch: Value::Array(patch.to_vec()).to_string(),
                    order: Value::Array(order.to_vec()).to_string(),
                });
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ElementKind {
    Empty,
    Object,
    String,
    Number,
    Bool,
    Null,
}

/// The one type of every item of both lists; upstream refuses lists of lists and mixtures.
fn element_kind(original: &[Value], patch: &[Value]) -> Result<ElementKind, PatchError> {
    let mut kind = ElementKind::Empty;
    for item in original.iter().chain(patch) {
        let this = match item {
            Value::Array(_) => return Err(PatchError::ListOfLists),
            Value::Object(_) => ElementKind::Object,
            Value::String(_) => ElementKind::String,
            Value::Number(_) => ElementKind::Number,
            Value::Bool(_) => ElementKind::Bool,
            Value::Null => ElementKind::Null,
        };
        if kind != ElementKind::Empty && kind != this {
            let lists = Value::Array(vec![
                Value::Array(original.to_vec()),
                Value::Array(patch.to_vec()),
            ]);
            return Err(PatchError::MixedList(lists.to_string()));
        }
        kind = this;
    }
    Ok(kind)
}

/// Every item must carry the merge key for the list to be ordered.
fn require_key(items: &[Value], key: &'static str) -> Result<(), PatchError> {
    items
        .iter()
        .try_for_each(|item| key_value(item, key).map(drop))
}

/// An item already known to be an object, as its map.
fn into_map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn key_value<'a>(item: &'a Value, key: &'static str) -> Result<&'a Value, PatchError> {
    item.get(key).ok_or_else(|| PatchError::NoMergeKey {
        item: item.to_string(),
        key,
    })
}

/// The field a `<prefix>/<field>` directive names.
fn directive_field<'a>(directive: &'a str, prefix: &str) -> Option<&'a str> {
    directive.strip_prefix(prefix)?.strip_prefix('/')
}

/// Removes and returns the list at `field`; absent or null is `None`, anything else an error.
fn take_list(
    map: &mut Map<String, Value>,
    field: &str,
    path: &str,
) -> Result<Option<Vec<Value>>, PatchError> {
    match map.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items)),
        Some(_) => Err(PatchError::NotAList(path.to_string())),
    }
}

fn child_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The value with every `null` map member removed, at any depth.
fn without_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::find;
    use serde_json::json;

    fn resource(group: &str, plural: &str) -> &'static Resource {
        find(group, "v1", plural).unwrap()
    }

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"},
                         "finalizers": ["a.example.com/x"]},
            "spec": {
                "replicas": 2,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {"name": "web", "image": "nginx:1",
                             "ports": [{"containerPort": 80, "protocol": "TCP"}],
                             "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                            {"name": "sidecar", "image": "busybox", "args": ["sleep", "1d"]}
                        ],
                        "tolerations": [{"key": "k", "operator": "Exists"}]
                    }
                }
            }
        })
    }

    fn patch_deploy(patch: Value) -> Result<Value, PatchError> {
        apply(resource("apps", "deployments"), &deployment(), &patch)
    }

    fn containers(obj: &Value) -> &Value {
        &obj["spec"]["template"]["spec"]["containers"]
    }

    #[test]
    fn kubectl_patch_changes_only_that_containers_image() {
        let out = patch_deploy(json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "nginx:2"}]}}}}))
        .unwrap();
        let mut expected = deployment();
        expected["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
        assert_eq!(out, expected);
    }

    #[test]
    fn patch_delete_removes_a_container() {
        let out = patch_deploy(json!({"spec": {"template": {"spec": {"containers": [
            {"name": "sidecar", "$patch": "delete"}]}}}}))
        .unwrap();
        let names: Vec<&str> = containers(&out)
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["web"]);
    }

    #[test]
    fn env_entry_removed_by_delete_directive() {
        let out = patch_deploy(json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "env": [{"name": "A", "$patch": "delete"}]}]}}}}))
        .unwrap();
        assert_eq!(
            containers(&out)[0]["env"],
            json!([{"name": "B", "value": "2"}])
        );
        assert_eq!(containers(&out)[0]["image"], "nginx:1");
    }

    #[test]
    fn set_element_order_orders_the_merged_list() {
        // kubectl apply's patch when the sidecar moves first and a third container arrives.
        let out = patch_deploy(json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "metrics"}, {"name": "web"}],
            "containers": [{"name": "metrics", "image": "prom"}]
        }}}}))
        .unwrap();
        let names: Vec<&str> = containers(&out)
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["sidecar", "metrics", "web"]);
        assert_eq!(containers(&out)[2]["image"], "nginx:1");
    }

    #[test]
    fn set_element_order_must_agree_with_the_patch() {
        let err = patch_deploy(json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
            "containers": [{"name": "sidecar", "image": "x"}, {"name": "web", "image": "y"}]
        }}}}))
        .unwrap_err();
        assert!(matches!(err, PatchError::OrderMismatch { .. }), "{err}");
    }

    #[test]
    fn new_items_without_an_order_go_first_as_upstream_puts_them() {
        let out = patch_deploy(json!({"spec": {"template": {"spec": {"containers": [
            {"name": "metrics", "image": "prom"}]}}}}))
        .unwrap();
        let names: Vec<&str> = containers(&out)
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["metrics", "web", "sidecar"]);
    }

    #[test]
    fn nested_lists_merge_by_their_own_keys() {
        let out = patch_deploy(json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web",
             "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443}],
             "env": [{"name": "B", "value": "3"}]}]}}}}))
        .unwrap();
        let web = &containers(&out)[0];
        assert_eq!(
            web["ports"],
            json!([{"containerPort": 80, "protocol": "TCP", "name": "http"}, {"containerPort": 443}])
        );
        assert_eq!(
            web["env"],
            json!([{"name": "A", "value": "1"}, {"name": "B", "value": "3"}])
        );
    }

    #[test]
    fn lists_without_a_strategy_are_replaced() {
        let out = patch_deploy(json!({"spec": {"template": {"spec": {
            "tolerations": [{"key": "other", "operator": "Exists"}],
            "containers": [{"name": "sidecar", "args": ["sleep", "2d"]}]
        }}}}))
        .unwrap();
        let spec = &out["spec"]["template"]["spec"];
        assert_eq!(
            spec["tolerations"],
            json!([{"key": "other", "operator": "Exists"}])
        );
        assert_eq!(spec["containers"][1]["args"], json!(["sleep", "2d"]));
    }

    #[test]
    fn null_deletes_a_key_and_maps_merge() {
        let out = patch_deploy(
            json!({"metadata": {"labels": {"app": null, "tier": "front"}},
                                      "spec": {"replicas": 3, "paused": null}}),
        )
        .unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"tier": "front"}));
        assert_eq!(out["spec"]["replicas"], 3);
        assert_eq!(out["spec"]["strategy"]["type"], "RollingUpdate");
    }

    #[test]
    fn retain_keys_clears_the_other_strategy_fields() {
        // kubectl apply switching a deployment to Recreate.
        let out = patch_deploy(json!({"spec": {"strategy": {
            "$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}}}))
        .unwrap();
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
        let err =
            patch_deploy(json!({"spec": {"strategy": {"$retainKeys": ["type"], "other": 1}}}))
                .unwrap_err();
        assert_eq!(err.to_string(), "invalid patch format of retainKeys");
    }

    #[test]
    fn map_directives() {
        let out =
            patch_deploy(json!({"spec": {"strategy": {"$patch": "replace", "type": "Recreate"}}}))
                .unwrap();
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
        let out = patch_deploy(json!({"metadata": {"labels": {"$patch": "delete"}}})).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({}));
        let err = patch_deploy(json!({"metadata": {"labels": {"$patch": "bogus"}}})).unwrap_err();
        assert_eq!(err.to_string(), "unknown patch type: \"bogus\" in map: {}");
    }

    #[test]
    fn list_replace_directive() {
        let out = patch_deploy(json!({"spec": {"template": {"spec": {"containers": [
            {"$patch": "replace"}, {"name": "only", "image": "x"}]}}}}))
        .unwrap();
        assert_eq!(containers(&out), &json!([{"name": "only", "image": "x"}]));
        let err = patch_deploy(json!({"spec": {"template": {"spec": {"containers": [
            {"$patch": "merge"}]}}}}))
        .unwrap_err();
        assert_eq!(err, PatchError::MergeDirectiveInList);
    }

    #[test]
    fn finalizers_merge_as_a_set_and_delete_from_primitive_list() {
        let out = patch_deploy(
            json!({"metadata": {"finalizers": ["b.example.com/y", "a.example.com/x"]}}),
        )
        .unwrap();
        assert_eq!(
            out["metadata"]["finalizers"],
            json!(["b.example.com/y", "a.example.com/x"])
        );
        let out = patch_deploy(json!({"metadata": {
            "$deleteFromPrimitiveList/finalizers": ["a.example.com/x"],
            "finalizers": ["c.example.com/z"]}}))
        .unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["c.example.com/z"]));
        let out = patch_deploy(json!({"metadata": {
            "$setElementOrder/finalizers": ["c.example.com/z", "a.example.com/x"],
            "finalizers": ["c.example.com/z"]}}))
        .unwrap();
        assert_eq!(
            out["metadata"]["finalizers"],
            json!(["c.example.com/z", "a.example.com/x"])
        );
    }

    #[test]
    fn missing_merge_key_is_an_error() {
        let err = patch_deploy(json!({"spec": {"template": {"spec": {"containers": [
            {"image": "x"}]}}}}))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "map: {\"image\":\"x\"} does not contain declared merge key: name"
        );
    }

    #[test]
    fn status_conditions_merge_by_type_for_every_kind() {
        let pod = json!({"status": {"conditions": [
            {"type": "Ready", "status": "False"}, {"type": "PodScheduled", "status": "True"}]}});
        let patch = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        let out = apply(resource("", "pods"), &pod, &patch).unwrap();
        assert_eq!(
            out["status"]["conditions"],
            json!([{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}])
        );
        let node = json!({"status": {"conditions": [{"type": "Ready", "status": "False"}],
                                     "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]}});
        let patch = json!({"status": {"addresses": [{"type": "Hostname", "address": "n1"}]}});
        let out = apply(resource("", "nodes"), &node, &patch).unwrap();
        assert_eq!(out["status"]["addresses"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn service_ports_by_port_and_owner_references_by_uid() {
        let svc = json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}]},
                         "spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}});
        let patch = json!({"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}]},
                           "spec": {"ports": [{"port": 80, "targetPort": 9090}]}});
        let out = apply(resource("", "services"), &svc, &patch).unwrap();
        assert_eq!(
            out["spec"]["ports"],
            json!([{"port": 80, "targetPort": 9090}, {"port": 443}])
        );
        assert_eq!(
            out["metadata"]["ownerReferences"].as_array().unwrap().len(),
            2
        );
    }

    #[test]
    fn new_content_is_merged_into_nothing() {
        let pod = json!({"metadata": {"name": "p"}});
        let patch = json!({"spec": {"containers": [{"name": "a", "image": "x", "command": null}],
                                    "nodeSelector": {"disk": "ssd", "zone": null}}});
        let out = apply(resource("", "pods"), &pod, &patch).unwrap();
        assert_eq!(
            out["spec"],
            json!({"containers": [{"name": "a", "image": "x"}], "nodeSelector": {"disk": "ssd"}})
        );
    }

    #[test]
    fn kubectl_apply_three_way_patch() {
        // What kubectl apply sends after the user edits image, drops env B and removes the
        // sidecar from the manifest.
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "web"}],
            "containers": [
                {"$setElementOrder/env": [{"name": "A"}], "name": "web", "image": "nginx:3",
                 "env": [{"$patch": "delete", "name": "B"}]},
                {"$patch": "delete", "name": "sidecar"}
            ]
        }}}});
        let out = patch_deploy(patch).unwrap();
        assert_eq!(
            containers(&out),
            &json!([{"name": "web", "image": "nginx:3",
                     "ports": [{"containerPort": 80, "protocol": "TCP"}],
                     "env": [{"name": "A", "value": "1"}]}])
        );
    }

    #[test]
    fn patch_and_object_must_be_objects() {
        let err = apply(resource("", "pods"), &json!({}), &json!([])).unwrap_err();
        assert_eq!(err, PatchError::NotAnObject);
    }

    fn container_lists() -> impl proptest::strategy::Strategy<Value = Vec<(String, String)>> {
        use proptest::prelude::*;
        prop::collection::btree_map("[a-e]", "[a-z]{1,3}:[0-9]", 1..5)
            .prop_map(|m| m.into_iter().collect::<Vec<_>>())
            .prop_shuffle()
    }

    proptest::proptest! {
        #[test]
        fn patching_one_image_changes_only_that_container(
            list in container_lists(),
            pick in proptest::prelude::any::<proptest::sample::Index>(),
        ) {
            let pod = json!({"spec": {"containers": list.iter()
                .map(|(name, image)| json!({"name": name, "image": image, "ports": [{"containerPort": 80}]}))
                .collect::<Vec<_>>()}});
            let target = &list[pick.index(list.len())].0;
            let patch = json!({"spec": {"containers": [{"name": target, "image": "new:1"}]}});
            let out = apply(resource("", "pods"), &pod, &patch).unwrap();
            let mut expected = pod.clone();
            for c in expected["spec"]["containers"].as_array_mut().unwrap() {
                if c["name"] == json!(target) {
                    c["image"] = json!("new:1");
                }
            }
            proptest::prop_assert_eq!(out, expected);
        }
    }
}

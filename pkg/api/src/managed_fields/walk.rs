//! Walks over objects that follow the merge schema, as structured-merge-diff's typed values
//! do: the field set of an object, the comparison of two objects, the removal of a set of
//! fields, and the merge of an applied configuration into a live object. Paths into the schema
//! are field names joined by `.` (list items add none); paths into field sets add an element
//! per field and per list item.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::path::{Path, PathElement};
use super::set::FieldSet;
use crate::schema::{ListType, MapKey, Schema, Shape};

/// What changed between two objects; a path is in at most one of the three sets.
#[derive(Debug, Clone, Default)]
pub(crate) struct Comparison {
    pub(crate) added: FieldSet,
    pub(crate) modified: FieldSet,
    pub(crate) removed: FieldSet,
}

/// The objects of one kind, walked with its schema.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Walker {
    pub(crate) schema: Schema,
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

/// The element naming `item` in a list of this type; `None` for an atomic list, or for an
/// item without a key field that has no default.
fn item_element(list: ListType, item: &Value) -> Option<PathElement> {
    match list {
        ListType::Atomic => None,
        ListType::Set => Some(PathElement::Value(item.clone())),
        ListType::Map(keys) => key_element(keys, item),
    }
}

fn key_element(keys: &[MapKey], item: &Value) -> Option<PathElement> {
    let object = item.as_object()?;
    let mut fields = Vec::with_capacity(keys.len());
    for key in keys {
        let value = match object.get(key.name) {
            Some(v) if !v.is_null() => v.clone(),
            _ => Value::from(key.default?),
        };
        fields.push((key.name.to_string(), value));
    }
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    Some(PathElement::Key(fields))
}

/// Whether a value is walked into (a granular object or list) rather than taken whole.
fn granular(shape: Shape, v: &Value) -> bool {
    match v {
        Value::Object(_) => !shape.atomic,
        Value::Array(_) => shape.list != ListType::Atomic,
        _ => false,
    }
}

fn is_empty_container(v: Option<&Value>) -> bool {
    match v {
        None => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    }
}

/// A list's items by element, in first-seen order, with every item that has that element.
struct Indexed<'a> {
    order: Vec<PathElement>,
    items: BTreeMap<PathElement, Vec<&'a Value>>,
}

fn index(list: ListType, items: &[Value]) -> Indexed<'_> {
    let mut out = Indexed {
        order: Vec::new(),
        items: BTreeMap::new(),
    };
    for item in items {
        let Some(pe) = item_element(list, item) else {
            continue;
        };
        let seen = out.items.entry(pe.clone()).or_default();
        if seen.is_empty() {
            out.order.push(pe);
        }
        seen.push(item);
    }
    out
}

impl Walker {
    fn shape(&self, path: &str) -> Shape {
        if path.is_empty() {
            return Shape::default();
        }
        self.schema.shape(path)
    }

    /// Every field of `object` (upstream's `ToFieldSet`): scalars, atomic values, empty
    /// objects and list items are members; granular objects and lists only hold their contents.
    pub(crate) fn field_set(&self, object: &Value) -> FieldSet {
        match object {
            Value::Object(m) => self.object_set(m, ""),
            _ => FieldSet::new(),
        }
    }

    fn object_set(&self, object: &Map<String, Value>, path: &str) -> FieldSet {
        let mut set = FieldSet::new();
        for (field, value) in object {
            let p = join(path, field);
            self.add_value(&mut set, PathElement::field(field), value, &p);
        }
        set
    }

    fn add_value(&self, set: &mut FieldSet, pe: PathElement, value: &Value, path: &str) {
        let shape = self.shape(path);
        match value {
            Value::Object(m) if !shape.atomic && !m.is_empty() => {
                set.insert_below(pe, self.object_set(m, path));
            }
            Value::Array(items) if shape.list != ListType::Atomic => {
                set.insert_below(pe, self.list_set(items, shape, path));
            }
            _ => set.insert_member(pe),
        }
    }

    /// A granular list's items: each a member, with its fields below it unless it is atomic
    /// or appears more than once (then upstream owns only the item).
    fn list_set(&self, items: &[Value], shape: Shape, path: &str) -> FieldSet {
        let indexed = index(shape.list, items);
        let mut set = FieldSet::new();
        for pe in indexed.order {
            let found = &indexed.items[&pe];
            if let ([Value::Object(item)], false) = (found.as_slice(), shape.atomic) {
                set.insert_below(pe.clone(), self.object_set(item, path));
            }
            set.insert_member(pe);
        }
        set
    }

    /// What `rhs` added, modified and removed compared with `lhs` (upstream's `Compare`).
    pub(crate) fn compare(&self, lhs: &Value, rhs: &Value) -> Comparison {
        let mut out = Comparison::default();
        self.compare_at(Some(lhs), Some(rhs), "", &mut Vec::new(), &mut out);
        out
    }

    fn compare_at(
        &self,
        lhs: Option<&Value>,
        rhs: Option<&Value>,
        path: &str,
        at: &mut Vec<PathElement>,
        out: &mut Comparison,
    ) {
        let shape = self.shape(path);
        let both_empty = is_empty_container(lhs) && is_empty_container(rhs);
        match (lhs, rhs) {
            (l, r) if both_empty => return leaf(l, r, at, out),
            (Some(Value::Object(_)) | None, Some(Value::Object(_)) | None) if !shape.atomic => {
                let (l, r) = (
                    lhs.and_then(Value::as_object),
                    rhs.and_then(Value::as_object),
                );
                self.compare_maps(l, r, path, at, out);
            }
            (Some(Value::Array(_)) | None, Some(Value::Array(_)) | None)
                if shape.list != ListType::Atomic =>
            {
                let (l, r) = (lhs.and_then(Value::as_array), rhs.and_then(Value::as_array));
                self.compare_lists(l, r, shape.list, path, at, out);
            }
            (l, r) => return leaf(l, r, at, out),
        }
        if lhs.is_none() {
            out.added.insert(at);
        } else if rhs.is_none() {
            out.removed.insert(at);
        }
    }

    fn compare_maps(
        &self,
        lhs: Option<&Map<String, Value>>,
        rhs: Option<&Map<String, Value>>,
        path: &str,
        at: &mut Vec<PathElement>,
        out: &mut Comparison,
    ) {
        let keys: BTreeSet<&String> = lhs
            .iter()
            .chain(rhs.iter())
            .flat_map(|m| m.keys())
            .collect();
        for key in keys {
            at.push(PathElement::field(key));
            let (l, r) = (lhs.and_then(|m| m.get(key)), rhs.and_then(|m| m.get(key)));
            self.compare_at(l, r, &join(path, key), at, out);
            at.pop();
        }
    }

    fn compare_lists(
        &self,
        lhs: Option<&Vec<Value>>,
        rhs: Option<&Vec<Value>>,
        list: ListType,
        path: &str,
        at: &mut Vec<PathElement>,
        out: &mut Comparison,
    ) {
        let l = index(list, lhs.map_or(&[][..], Vec::as_slice));
        let r = index(list, rhs.map_or(&[][..], Vec::as_slice));
        let mut order = l.order.clone();
        order.extend(
            r.order
                .iter()
                .filter(|pe| !l.items.contains_key(pe))
                .cloned(),
        );
        for pe in order {
            let no_items = Vec::new();
            let li = l.items.get(&pe).unwrap_or(&no_items);
            let ri = r.items.get(&pe).unwrap_or(&no_items);
            at.push(pe);
            match (li.len(), ri.len()) {
                (0..=1, 0..=1) => {
                    self.compare_at(li.first().copied(), ri.first().copied(), path, at, out);
                }
                (2.., 2..) if li != ri => out.modified.insert(at),
                (2.., 2..) => {}
                (2.., _) => {
                    if let Some(item) = ri.first() {
                        self.compare_at(None, Some(item), path, at, out);
                    }
                    out.removed.insert(at);
                }
                (_, _) => {
                    if let Some(item) = li.first() {
                        self.compare_at(Some(item), None, path, at, out);
                    }
                    out.added.insert(at);
                }
            }
            at.pop();
        }
    }

    /// `value` without the fields of `set` (upstream's `RemoveItems`); `None` when that
    /// empties it. Atomic values are not walked into.
    pub(crate) fn remove(&self, value: &Value, set: &FieldSet) -> Value {
        self.remove_at(value, set, "")
            .unwrap_or_else(|| Value::Object(Map::new()))
    }

    fn remove_at(&self, value: &Value, set: &FieldSet, path: &str) -> Option<Value> {
        let shape = self.shape(path);
        match value {
            Value::Object(m) if !shape.atomic && !m.is_empty() => {
                let mut out = Map::new();
                for (field, v) in m {
                    let pe = PathElement::field(field);
                    if set.has_member(&pe) {
                        continue;
                    }
                    let kept = match set.child(&pe) {
                        Some(below) => self.remove_at(v, below, &join(path, field)),
                        None => Some(v.clone()),
                    };
                    if let Some(v) = kept {
                        out.insert(field.clone(), v);
                    }
                }
                (!out.is_empty()).then_some(Value::Object(out))
            }
            Value::Array(items) if shape.list != ListType::Atomic && !items.is_empty() => {
                let mut out = Vec::new();
                for item in items {
                    let pe = item_element(shape.list, item);
                    if pe.as_ref().is_some_and(|pe| set.has_member(pe)) {
                        continue;
                    }
                    let kept = match pe.as_ref().and_then(|pe| set.child(pe)) {
                        Some(below) if !shape.atomic => self.remove_at(item, below, path),
                        _ => Some(item.clone()),
                    };
                    out.extend(kept);
                }
                (!out.is_empty()).then_some(Value::Array(out))
            }
            _ => Some(value.clone()),
        }
    }

    /// `rhs` merged into `lhs` (upstream's `Merge`): objects field by field, `set` and `map`
    /// lists item by item, everything else replaced by `rhs`.
    pub(crate) fn merge(&self, lhs: &Value, rhs: &Value) -> Value {
        self.merge_at(lhs, rhs, "")
    }

    fn merge_at(&self, lhs: &Value, rhs: &Value, path: &str) -> Value {
        let shape = self.shape(path);
        let both_empty = is_empty_container(Some(lhs)) && is_empty_container(Some(rhs));
        match (lhs, rhs) {
            _ if both_empty || !granular(shape, lhs) || !granular(shape, rhs) => rhs.clone(),
            (Value::Object(l), Value::Object(r)) => {
                let mut out = l.clone();
                for (field, rv) in r {
                    let merged = match l.get(field) {
                        Some(lv) => self.merge_at(lv, rv, &join(path, field)),
                        None => rv.clone(),
                    };
                    out.insert(field.clone(), merged);
                }
                Value::Object(out)
            }
            (Value::Array(l), Value::Array(r)) => {
                Value::Array(self.merge_lists(l, r, shape.list, path))
            }
            _ => rhs.clone(),
        }
    }

    /// Merges two granular lists in upstream's order: the live list's order, with the shared
    /// items in the applied order and new items after the applied item they follow.
    fn merge_lists(&self, lhs: &[Value], rhs: &[Value], list: ListType, path: &str) -> Vec<Value> {
        let l = index(list, lhs);
        let r = index(list, rhs);
        let mut shared = r.order.iter().filter(|pe| l.items.contains_key(*pe));
        let mut next_shared = shared.next();
        let mut merged = BTreeSet::new();
        let mut out = Vec::new();
        let (mut li, mut ri) = (0, 0);
        while li < l.order.len() || ri < r.order.len() {
            if li < l.order.len() && ri < r.order.len() {
                let pe = &l.order[li];
                if *pe == r.order[ri] {
                    merged.insert(pe);
                    out.push(self.merge_at(l.items[pe][0], r.items[pe][0], path));
                    (li, ri) = (li + 1, ri + 1);
                    next_shared = shared.next();
                    continue;
                }
                if r.items.contains_key(pe) && next_shared.is_some_and(|n| n != pe) {
                    li += 1;
                    continue;
                }
            }
            if li < l.order.len() {
                let pe = &l.order[li];
                if !r.items.contains_key(pe) {
                    out.push(l.items[pe][0].clone());
                    li += 1;
                    continue;
                }
                if merged.contains(pe) {
                    li += 1;
                }
            }
            if ri < r.order.len() {
                let pe = &r.order[ri];
                merged.insert(pe);
                let rv = r.items[pe][0];
                out.push(match l.items.get(pe).map(|v| v[0]) {
                    Some(lv) => self.merge_at(lv, rv, path),
                    None => rv.clone(),
                });
                ri += 1;
                if next_shared == Some(pe) {
                    next_shared = shared.next();
                }
            }
        }
        out
    }

    /// Checks an applied configuration as upstream does before merging it: every item of a
    /// `map` list has its keys (or their defaults), and no item appears twice.
    pub(crate) fn check(&self, applied: &Value) -> Result<(), String> {
        self.check_at(applied, "", &mut Vec::new())
    }

    fn check_at(&self, value: &Value, path: &str, at: &mut Vec<PathElement>) -> Result<(), String> {
        let shape = self.shape(path);
        match value {
            Value::Object(m) if !shape.atomic => {
                for (field, v) in m {
                    at.push(PathElement::field(field));
                    self.check_at(v, &join(path, field), at)?;
                    at.pop();
                }
                Ok(())
            }
            Value::Array(items) if shape.list != ListType::Atomic => {
                self.check_items(items, shape, path, at)
            }
            _ => Ok(()),
        }
    }

    fn check_items(
        &self,
        items: &[Value],
        shape: Shape,
        path: &str,
        at: &mut Vec<PathElement>,
    ) -> Result<(), String> {
        let mut seen = BTreeSet::new();
        for (i, item) in items.iter().enumerate() {
            let Some(pe) = item_element(shape.list, item) else {
                return Err(missing_key(shape.list, item, i, at));
            };
            if !seen.insert(pe.clone()) {
                return Err(format!(
                    "{}: duplicate entries for key {pe}",
                    Path(at.clone())
                ));
            }
            if !shape.atomic {
                at.push(pe);
                self.check_at(item, path, at)?;
                at.pop();
            }
        }
        Ok(())
    }
}

fn missing_key(list: ListType, item: &Value, i: usize, at: &[PathElement]) -> String {
    let path = Path(at.to_vec());
    let missing = match list {
        ListType::Map(keys) => keys
            .iter()
            .find(|k| k.default.is_none() && item.get(k.name).is_none_or(Value::is_null))
            .map(|k| k.name),
        _ => None,
    };
    match missing {
        Some(key) => format!(
            "{path}: element {i}: associative list with keys has an element that omits key field {key:?} (and doesn't have default value)"
        ),
        None => format!(
            "{path}: element {i}: associative list with keys has an element that is not a map"
        ),
    }
}

/// Records a leaf change.
fn leaf(lhs: Option<&Value>, rhs: Option<&Value>, at: &[PathElement], out: &mut Comparison) {
    match (lhs, rhs) {
        (None, Some(_)) => out.added.insert(at),
        (Some(_), None) => out.removed.insert(at),
        (Some(l), Some(r)) if l != r => out.modified.insert(at),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::find;
    use serde_json::json;

    fn deployments() -> Walker {
        Walker {
            schema: Schema::of(find("apps", "v1", "deployments").unwrap()),
        }
    }

    #[test]
    fn field_sets_follow_list_types() {
        let d = json!({
            "metadata": {"labels": {"app": "web"}, "finalizers": ["a"]},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"spec": {
                    "containers": [{"name": "web", "image": "nginx", "args": ["-x"], "resources": {},
                        "ports": [{"containerPort": 80}]}],
                    "tolerations": [{"key": "k"}]
                }}
            }
        });
        assert_eq!(
            deployments().field_set(&d).to_json(),
            concat!(
                r#"{"f:metadata":{"f:finalizers":{"v:\"a\"":{}},"f:labels":{"f:app":{}}},"#,
                r#""f:spec":{"f:replicas":{},"f:selector":{},"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"web\"}":{".":{},"#,
                r#""f:args":{},"f:image":{},"f:name":{},"f:ports":{"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{}}},"#,
                r#""f:resources":{}}},"f:tolerations":{}}}}}"#
            )
        );
    }

    #[test]
    fn compare_marks_new_parents() {
        let w = deployments();
        let old = json!({"spec": {"replicas": 1}});
        let new = json!({"spec": {"replicas": 2, "strategy": {"rollingUpdate": {"maxSurge": 1}}}});
        let c = w.compare(&old, &new);
        assert_eq!(c.modified.to_json(), r#"{"f:spec":{"f:replicas":{}}}"#);
        assert_eq!(
            c.added.to_json(),
            r#"{"f:spec":{"f:strategy":{".":{},"f:rollingUpdate":{".":{},"f:maxSurge":{}}}}}"#
        );
        let back = w.compare(&new, &old);
        assert_eq!(back.removed.to_json(), c.added.to_json());
    }

    #[test]
    fn merge_keeps_live_order_and_merges_by_key() {
        let w = deployments();
        let live = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "x"}, {"name": "b", "image": "y"}, {"name": "c", "image": "z"}
        ], "tolerations": [{"key": "t1"}]}}}});
        let applied = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "b", "image": "y2"}, {"name": "d", "image": "w"}
        ], "tolerations": [{"key": "t2"}]}}}});
        let merged = w.merge(&live, &applied);
        let names: Vec<&str> = merged["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
        assert_eq!(
            merged["spec"]["template"]["spec"]["containers"][1]["image"],
            "y2"
        );
        assert_eq!(
            merged["spec"]["template"]["spec"]["tolerations"],
            json!([{"key": "t2"}])
        );
    }

    #[test]
    fn remove_drops_fields_items_and_emptied_parents() {
        let w = deployments();
        let obj = json!({"metadata": {"labels": {"a": "1"}, "finalizers": ["x", "y"]}, "spec": {"replicas": 1}});
        let mut set = FieldSet::new();
        set.insert(&[
            PathElement::field("metadata"),
            PathElement::field("labels"),
            PathElement::field("a"),
        ]);
        set.insert(&[
            PathElement::field("metadata"),
            PathElement::field("finalizers"),
            PathElement::Value(json!("x")),
        ]);
        assert_eq!(
            w.remove(&obj, &set),
            json!({"metadata": {"finalizers": ["y"]}, "spec": {"replicas": 1}})
        );
    }

    #[test]
    fn check_refuses_missing_keys_and_duplicates() {
        let w = deployments();
        let missing = json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}});
        assert_eq!(
            w.check(&missing).unwrap_err(),
            r#".spec.template.spec.containers: element 0: associative list with keys has an element that omits key field "name" (and doesn't have default value)"#
        );
        let twice =
            json!({"spec": {"template": {"spec": {"containers": [{"name": "a"}, {"name": "a"}]}}}});
        assert_eq!(
            w.check(&twice).unwrap_err(),
            r#".spec.template.spec.containers: duplicate entries for key [name="a"]"#
        );
        let defaulted = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80}]}]}}}});
        assert!(w.check(&defaulted).is_ok());
    }
}

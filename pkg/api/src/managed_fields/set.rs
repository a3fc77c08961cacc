//! Sets of field paths, and their FieldsV1 encoding. A set is a tree: at each level, the
//! elements that are members (owned fields, list items) and the elements with members below
//! them. FieldsV1 writes each level as a JSON object from element names to the level below, a
//! member without children as `{}`, and a member with children as `".": {}` inside them.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::path::{Path, PathElement, go_json};

/// A set of field paths (upstream's `fieldpath.Set`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    members: BTreeSet<PathElement>,
    /// Never holds an empty set.
    children: BTreeMap<PathElement, FieldSet>,
}

impl FieldSet {
    /// The empty set.
    pub fn new() -> FieldSet {
        FieldSet::default()
    }

    /// Whether the set has no paths.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.is_empty()
    }

    /// Adds a path; the empty path is ignored.
    pub fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    /// Whether the set holds `path` itself (not merely paths below it).
    pub fn contains(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.contains(rest)),
        }
    }

    /// The paths below `element`, relative to it.
    pub fn child(&self, element: &PathElement) -> Option<&FieldSet> {
        self.children.get(element)
    }

    /// Whether `element` is a member at this level.
    pub(crate) fn has_member(&self, element: &PathElement) -> bool {
        self.members.contains(element)
    }

    /// Adds `set`'s paths below `element`.
    pub(crate) fn insert_below(&mut self, element: PathElement, set: FieldSet) {
        if !set.is_empty() {
            let child = self.children.entry(element).or_default();
            *child = child.union(&set);
        }
    }

    /// Adds `element` as a member at this level.
    pub(crate) fn insert_member(&mut self, element: PathElement) {
        self.members.insert(element);
    }

    /// The paths in either set.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (pe, set) in &other.children {
            out.insert_below(pe.clone(), set.clone());
        }
        out
    }

    /// The paths of `self` that `other` does not hold (paths below a removed one stay).
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.difference(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .filter_map(|(pe, set)| {
                let rest = match other.children.get(pe) {
                    Some(o) => set.difference(o),
                    None => set.clone(),
                };
                (!rest.is_empty()).then(|| (pe.clone(), rest))
            })
            .collect();
        FieldSet { members, children }
    }

    /// The paths in both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.intersection(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .filter_map(|(pe, set)| {
                let both = set.intersection(other.children.get(pe)?);
                (!both.is_empty()).then(|| (pe.clone(), both))
            })
            .collect();
        FieldSet { members, children }
    }

    /// The set with every field that has paths below it made a member too (upstream's
    /// `EnsureNamedFieldsAreMembers`; cairn does not tell struct fields from map keys).
    pub(crate) fn with_fields_as_members(&self) -> FieldSet {
        let mut out = FieldSet {
            members: self.members.clone(),
            children: BTreeMap::new(),
        };
        for (pe, set) in &self.children {
            if matches!(pe, PathElement::Field(_)) {
                out.members.insert(pe.clone());
            }
            out.children
                .insert(pe.clone(), set.with_fields_as_members());
        }
        out
    }

    /// Every path, in order.
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<Path>) {
        let mut elements: BTreeSet<&PathElement> = self.members.iter().collect();
        elements.extend(self.children.keys());
        for pe in elements {
            prefix.push(pe.clone());
            if self.members.contains(pe) {
                out.push(Path(prefix.clone()));
            }
            if let Some(child) = self.children.get(pe) {
                child.collect(prefix, out);
            }
            prefix.pop();
        }
    }

    /// The FieldsV1 value (`{"f:spec":{"f:replicas":{}}}`). serde_json orders object keys by
    /// name, which is upstream's order except between numeric keys of different lengths;
    /// [`FieldSet::to_json`] writes upstream's exact bytes.
    pub fn to_fields_v1(&self) -> Value {
        serde_json::from_str(&self.to_json()).unwrap_or_else(|_| Value::Object(Map::new()))
    }

    /// The FieldsV1 JSON exactly as upstream writes it: elements in upstream's order.
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.write(false, &mut out);
        out
    }

    fn write(&self, include_self: bool, out: &mut String) {
        out.push('{');
        let mut first = true;
        let mut entry = |name: &str, out: &mut String| {
            if !std::mem::take(&mut first) {
                out.push(',');
            }
            out.push_str(&go_json(&Value::String(name.to_string())));
            out.push(':');
        };
        if include_self && !self.is_empty() {
            entry(".", out);
            out.push_str("{}");
        }
        let mut elements: BTreeSet<&PathElement> = self.members.iter().collect();
        elements.extend(self.children.keys());
        for pe in elements {
            entry(&pe.to_fields_v1(), out);
            match self.children.get(pe) {
                Some(child) => child.write(self.members.contains(pe), out),
                None => out.push_str("{}"),
            }
        }
        out.push('}');
    }

    /// Parses a FieldsV1 value.
    pub fn from_fields_v1(value: &Value) -> Result<FieldSet, String> {
        let Value::Object(map) = value else {
            return Err(format!("expected a fieldsV1 object, got {value}"));
        };
        let mut set = FieldSet::new();
        for (name, below) in map {
            if name == "." {
                continue;
            }
            let pe = PathElement::from_fields_v1(name)?;
            let child = FieldSet::from_fields_v1(below)?;
            let is_member = match below {
                Value::Object(m) => m.is_empty() || m.contains_key("."),
                _ => false,
            };
            if is_member {
                set.members.insert(pe.clone());
            }
            set.insert_below(pe, child);
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DEPLOYMENT: &str = r#"{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:replicas":{},"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"web\"}":{".":{},"f:image":{},"f:ports":{"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{}},"k:{\"containerPort\":443,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{}}}}}}}}}"#;

    #[test]
    fn fields_v1_round_trips_exactly() {
        let value: Value = serde_json::from_str(DEPLOYMENT).unwrap();
        let set = FieldSet::from_fields_v1(&value).unwrap();
        assert_eq!(set.to_json(), DEPLOYMENT);
        assert_eq!(set.to_fields_v1(), value);
        let paths: Vec<String> = set.paths().iter().map(ToString::to_string).collect();
        assert_eq!(
            paths,
            [
                ".metadata.labels",
                ".metadata.labels.app",
                ".spec.replicas",
                r#".spec.template.spec.containers[name="web"]"#,
                r#".spec.template.spec.containers[name="web"].image"#,
                r#".spec.template.spec.containers[name="web"].ports[containerPort=80,protocol="TCP"]"#,
                r#".spec.template.spec.containers[name="web"].ports[containerPort=80,protocol="TCP"].containerPort"#,
                r#".spec.template.spec.containers[name="web"].ports[containerPort=443,protocol="TCP"]"#,
                r#".spec.template.spec.containers[name="web"].ports[containerPort=443,protocol="TCP"].containerPort"#,
            ]
        );
    }

    #[test]
    fn set_operations() {
        let parse = |s: &str| FieldSet::from_fields_v1(&serde_json::from_str(s).unwrap()).unwrap();
        let a = parse(r#"{"f:spec":{"f:replicas":{},"f:paused":{}}}"#);
        let b = parse(r#"{"f:spec":{"f:replicas":{},"f:minReadySeconds":{}}}"#);
        assert_eq!(
            a.union(&b).to_json(),
            r#"{"f:spec":{"f:minReadySeconds":{},"f:paused":{},"f:replicas":{}}}"#
        );
        assert_eq!(a.difference(&b).to_json(), r#"{"f:spec":{"f:paused":{}}}"#);
        assert_eq!(
            a.intersection(&b).to_json(),
            r#"{"f:spec":{"f:replicas":{}}}"#
        );
        assert!(a.difference(&a).is_empty());
        assert_eq!(FieldSet::new().to_json(), "{}");
        assert_eq!(
            a.with_fields_as_members().to_json(),
            r#"{"f:spec":{".":{},"f:paused":{},"f:replicas":{}}}"#
        );
        assert!(FieldSet::from_fields_v1(&Value::Null).is_err());
    }

    fn element() -> impl Strategy<Value = PathElement> {
        prop_oneof![
            "[a-c]{1,2}".prop_map(PathElement::Field),
            (0u16..3).prop_map(|n| PathElement::Key(vec![("k".into(), n.into())])),
            "[xy]".prop_map(|s| PathElement::Value(s.into())),
        ]
    }

    fn set() -> impl Strategy<Value = FieldSet> {
        prop::collection::vec(prop::collection::vec(element(), 1..4), 0..8).prop_map(|paths| {
            let mut set = FieldSet::new();
            for p in paths {
                set.insert(&p);
            }
            set
        })
    }

    proptest! {
        #[test]
        fn encoding_round_trips(s in set()) {
            let parsed = FieldSet::from_fields_v1(&serde_json::from_str(&s.to_json()).unwrap()).unwrap();
            prop_assert_eq!(&parsed, &s);
            prop_assert_eq!(FieldSet::from_fields_v1(&s.to_fields_v1()).unwrap(), s);
        }

        #[test]
        fn algebra(a in set(), b in set()) {
            let union = a.union(&b);
            for p in a.paths().into_iter().chain(b.paths()) {
                prop_assert!(union.contains(&p.0));
            }
            let diff = a.difference(&b);
            for p in diff.paths() {
                prop_assert!(a.contains(&p.0) && !b.contains(&p.0));
            }
            let both = a.intersection(&b);
            for p in a.paths() {
                prop_assert_eq!(both.contains(&p.0), b.contains(&p.0));
            }
            prop_assert_eq!(diff.union(&both), a.clone());
        }
    }
}

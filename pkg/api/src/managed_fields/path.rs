//! Field paths as structured-merge-diff spells them: a path is a list of elements, each a
//! field name, the key of a `map` list item, the value of a `set` item, or an index. Elements
//! order as upstream orders them (fields, then keys, then values, then indices; numbers by
//! value), which is the order FieldsV1 is written in. Their FieldsV1 names (`f:spec`,
//! `k:{"name":"web"}`, `v:"a"`, `i:0`) and their display in conflicts (`.spec`, `[name="web"]`,
//! `[="a"]`, `[0]`) are here too.

use std::cmp::Ordering;
use std::fmt;

use serde_json::{Map, Value};

/// One step of a field path.
#[derive(Debug, Clone)]
pub enum PathElement {
    /// A field of an object (`f:spec`).
    Field(String),
    /// An item of a `map` list, by the values of its key fields, in name order
    /// (`k:{"containerPort":80,"protocol":"TCP"}`).
    Key(Vec<(String, Value)>),
    /// An item of a `set` list (`v:"example.com/finalizer"`).
    Value(Value),
    /// A list item by position (`i:0`); read, never produced for the served kinds.
    Index(usize),
}

impl PathElement {
    /// A field element.
    pub fn field(name: &str) -> PathElement {
        PathElement::Field(name.to_string())
    }

    fn rank(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }

    /// The FieldsV1 name of this element.
    pub fn to_fields_v1(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(fields) => {
                let object: Map<String, Value> = fields.iter().cloned().collect();
                format!("k:{}", go_json(&Value::Object(object)))
            }
            PathElement::Value(value) => format!("v:{}", go_json(value)),
            PathElement::Index(index) => format!("i:{index}"),
        }
    }

    /// Parses a FieldsV1 name (not `.`, which stands for the parent itself).
    pub fn from_fields_v1(name: &str) -> Result<PathElement, String> {
        let invalid = || format!("invalid path element {name:?}");
        let (kind, rest) = name.split_once(':').ok_or_else(invalid)?;
        match kind {
            "f" => Ok(PathElement::Field(rest.to_string())),
            "k" => match serde_json::from_str::<Value>(rest) {
                Ok(Value::Object(fields)) => Ok(PathElement::Key(fields.into_iter().collect())),
                _ => Err(invalid()),
            },
            "v" => serde_json::from_str(rest)
                .map(PathElement::Value)
                .map_err(|_| invalid()),
            "i" => rest.parse().map(PathElement::Index).map_err(|_| invalid()),
            _ => Err(invalid()),
        }
    }
}

impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PathElement {}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => compare_fields(a, b),
            (PathElement::Value(a), PathElement::Value(b)) => compare_values(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl fmt::Display for PathElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(fields) => {
                let fields: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{k}={}", display_value(v)))
                    .collect();
                write!(f, "[{}]", fields.join(","))
            }
            PathElement::Value(value) => write!(f, "[={}]", display_value(value)),
            PathElement::Index(index) => write!(f, "[{index}]"),
        }
    }
}

/// A path from the top of an object, displayed as upstream shows it in conflicts
/// (`.spec.containers[name="web"].image`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Path(pub Vec<PathElement>);

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|pe| write!(f, "{pe}"))
    }
}

/// Key fields compare name by name, then value by value; a shorter list first.
fn compare_fields(a: &[(String, Value)], b: &[(String, Value)]) -> Ordering {
    for ((an, av), (bn, bv)) in a.iter().zip(b) {
        let c = an.cmp(bn).then_with(|| compare_values(av, bv));
        if c != Ordering::Equal {
            return c;
        }
    }
    a.len().cmp(&b.len())
}

fn type_rank(v: &Value) -> u8 {
    match v {
        Value::Number(_) => 0,
        Value::String(_) => 1,
        Value::Bool(_) => 2,
        Value::Array(_) => 3,
        Value::Object(_) => 4,
        Value::Null => 5,
    }
}

/// Upstream's value order: numbers (by value), strings, booleans, lists, maps, null.
pub(crate) fn compare_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (xv, yv) in x.iter().zip(y) {
                let c = compare_values(xv, yv);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            let x: Vec<(String, Value)> = x.clone().into_iter().collect();
            let y: Vec<(String, Value)> = y.clone().into_iter().collect();
            compare_fields(&x, &y)
        }
        _ => type_rank(a).cmp(&type_rank(b)),
    }
}

fn compare_numbers(x: &serde_json::Number, y: &serde_json::Number) -> Ordering {
    match (x.as_i64(), y.as_i64()) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
    }
}

/// A value as Go's `%v`/`%q` show it in a path: strings quoted, numbers and booleans bare.
fn display_value(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(display_value).collect();
            format!("[{}]", items.join(","))
        }
        Value::Object(fields) => fields
            .iter()
            .map(|(k, v)| format!("{k}={}", display_value(v)))
            .collect(),
        _ => v.to_string(),
    }
}

/// Compact JSON as Go's encoder writes it: object keys sorted, and `<`, `>`, `&`, U+2028 and
/// U+2029 escaped (they can only occur inside strings, so replacing them is safe).
pub(crate) fn go_json(v: &Value) -> String {
    let mut out = String::new();
    for c in v.to_string().chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(fields: Value) -> PathElement {
        let Value::Object(m) = fields else {
            unreachable!()
        };
        PathElement::Key(m.into_iter().collect())
    }

    #[test]
    fn elements_order_as_upstream() {
        let mut elements = [
            PathElement::Index(0),
            PathElement::Value(json!("a")),
            key(json!({"containerPort": 443, "protocol": "TCP"})),
            key(json!({"containerPort": 80, "protocol": "UDP"})),
            key(json!({"containerPort": 80, "protocol": "TCP"})),
            PathElement::field("spec"),
            PathElement::Value(json!(2)),
        ];
        elements.sort();
        let names: Vec<String> = elements.iter().map(PathElement::to_fields_v1).collect();
        assert_eq!(
            names,
            [
                "f:spec",
                r#"k:{"containerPort":80,"protocol":"TCP"}"#,
                r#"k:{"containerPort":80,"protocol":"UDP"}"#,
                r#"k:{"containerPort":443,"protocol":"TCP"}"#,
                "v:2",
                r#"v:"a""#,
                "i:0",
            ]
        );
    }

    #[test]
    fn names_round_trip_and_display() {
        for name in [
            "f:metadata",
            r#"k:{"name":"web"}"#,
            r#"k:{"port":53,"protocol":"UDP"}"#,
            r#"v:"example.com/x""#,
            "i:3",
        ] {
            assert_eq!(
                PathElement::from_fields_v1(name).unwrap().to_fields_v1(),
                name
            );
        }
        assert!(PathElement::from_fields_v1("x:1").is_err());
        assert!(PathElement::from_fields_v1("k:[1]").is_err());
        let path = Path(vec![
            PathElement::field("spec"),
            PathElement::field("containers"),
            key(json!({"name": "web"})),
            PathElement::field("ports"),
            key(json!({"containerPort": 80, "protocol": "TCP"})),
        ]);
        assert_eq!(
            path.to_string(),
            r#".spec.containers[name="web"].ports[containerPort=80,protocol="TCP"]"#
        );
        assert_eq!(
            PathElement::Value(json!("a<b")).to_fields_v1(),
            r#"v:"a\u003cb""#
        );
    }
}

//! JSON Patch (RFC 6902): a list of `add`, `remove`, `replace`, `move`, `copy` and `test`
//! operations at JSON Pointers (RFC 6901, `~1` for `/` and `~0` for `~`; `-` after an array's
//! last item). The operations apply in order to a copy; the first failure fails the patch.

use serde_json::{Map, Value};

use super::PatchError;

/// `doc` with the operations of `patch` (a JSON array) applied.
pub fn apply(doc: &Value, patch: &Value) -> Result<Value, PatchError> {
    let Value::Array(operations) = patch else {
        return Err(PatchError::Malformed(
            "a json patch must be a list of operations".to_string(),
        ));
    };
    let mut doc = doc.clone();
    for (index, operation) in operations.iter().enumerate() {
        apply_operation(&mut doc, index, operation)?;
    }
    Ok(doc)
}

fn apply_operation(doc: &mut Value, index: usize, operation: &Value) -> Result<(), PatchError> {
    let operation = Operation {
        index,
        fields: operation
            .as_object()
            .ok_or_else(|| PatchError::Malformed(format!("operation {index} is not an object")))?,
    };
    let op = operation.string("op")?;
    let path = operation.string("path")?;
    match op {
        "add" => add(doc, "add", path, operation.value()?.clone()),
        "remove" => remove(doc, "remove", path).map(drop),
        "replace" => replace(doc, path, operation.value()?.clone()),
        "move" => move_value(doc, operation.string("from")?, path),
        "copy" => {
            let from = operation.string("from")?;
            let value = get(doc, "copy", from)?.clone();
            add(doc, "copy", path, value)
        }
        "test" => test(doc, path, operation.value()?),
        other => Err(PatchError::UnknownOperation(other.to_string())),
    }
}

/// One operation object, for reading its members with errors that say which is missing.
struct Operation<'a> {
    index: usize,
    fields: &'a Map<String, Value>,
}

impl Operation<'_> {
    fn string(&self, name: &str) -> Result<&str, PatchError> {
        self.fields
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| {
                PatchError::Malformed(format!("operation {} has no string {name:?}", self.index))
            })
    }

    fn value(&self) -> Result<&Value, PatchError> {
        self.fields.get("value").ok_or_else(|| {
            PatchError::Malformed(format!("operation {} has no \"value\"", self.index))
        })
    }
}

/// The reference tokens of a JSON Pointer, unescaped.
fn parse_pointer(pointer: &str) -> Result<Vec<String>, PatchError> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(PatchError::InvalidPointer(pointer.to_string()));
    };
    rest.split('/')
        .map(|token| {
            unescape_token(token).ok_or_else(|| PatchError::InvalidPointer(pointer.to_string()))
        })
        .collect()
}

fn unescape_token(token: &str) -> Option<String> {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        match c {
            '~' => match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            },
            c => out.push(c),
        }
    }
    Some(out)
}

/// An array index token: digits without leading zeros, below `limit`.
fn array_index(token: &str, limit: usize) -> Result<usize, PatchError> {
    let invalid = || PatchError::InvalidIndex {
        index: token.to_string(),
    };
    let well_formed = !token.is_empty()
        && token.bytes().all(|b| b.is_ascii_digit())
        && (token == "0" || !token.starts_with('0'));
    if !well_formed {
        return Err(invalid());
    }
    token
        .parse::<usize>()
        .ok()
        .filter(|&i| i < limit)
        .ok_or_else(invalid)
}

fn get<'a>(doc: &'a Value, op: &'static str, path: &str) -> Result<&'a Value, PatchError> {
    let tokens = parse_pointer(path)?;
    let missing = || PatchError::MissingPath {
        op,
        path: path.to_string(),
    };
    let mut current = doc;
    for token in &tokens {
        current = match current {
            Value::Object(map) => map.get(token).ok_or_else(missing)?,
            Value::Array(items) => &items[array_index(token, items.len())?],
            _ => return Err(missing()),
        };
    }
    Ok(current)
}

/// The container holding the pointer's last token, and that token.
fn parent_mut<'a>(
    doc: &'a mut Value,
    op: &'static str,
    path: &str,
) -> Result<(&'a mut Value, String), PatchError> {
    let mut tokens = parse_pointer(path)?;
    let last = tokens.pop().expect("callers handle the root pointer");
    let missing = || PatchError::MissingPath {
        op,
        path: path.to_string(),
    };
    let mut current = doc;
    for token in &tokens {
        current = match current {
            Value::Object(map) => map.get_mut(token).ok_or_else(missing)?,
            Value::Array(items) => {
                let i = array_index(token, items.len())?;
                &mut items[i]
            }
            _ => return Err(missing()),
        };
    }
    Ok((current, last))
}

fn add(doc: &mut Value, op: &'static str, path: &str, value: Value) -> Result<(), PatchError> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, token) = parent_mut(doc, op, path)?;
    match parent {
        Value::Object(map) => {
            map.insert(token, value);
        }
        Value::Array(items) if token == "-" => items.push(value),
        Value::Array(items) => {
            let i = array_index(&token, items.len() + 1)?;
            items.insert(i, value);
        }
        _ => {
            return Err(PatchError::MissingPath {
                op,
                path: path.to_string(),
            });
        }
    }
    Ok(())
}

fn remove(doc: &mut Value, op: &'static str, path: &str) -> Result<Value, PatchError> {
    if path.is_empty() {
        return Ok(std::mem::take(doc));
    }
    let missing = || PatchError::MissingPath {
        op,
        path: path.to_string(),
    };
    let (parent, token) = parent_mut(doc, op, path)?;
    match parent {
        Value::Object(map) => map.remove(&token).ok_or_else(missing),
        Value::Array(items) => {
            let i = array_index(&token, items.len())?;
            Ok(items.remove(i))
        }
        _ => Err(missing()),
    }
}

fn replace(doc: &mut Value, path: &str, value: Value) -> Result<(), PatchError> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let missing = || PatchError::MissingPath {
        op: "replace",
        path: path.to_string(),
    };
    let (parent, token) = parent_mut(doc, "replace", path)?;
    let slot = match parent {
        Value::Object(map) => map.get_mut(&token).ok_or_else(missing)?,
        Value::Array(items) => {
            let i = array_index(&token, items.len())?;
            &mut items[i]
        }
        _ => return Err(missing()),
    };
    *slot = value;
    Ok(())
}

fn move_value(doc: &mut Value, from: &str, path: &str) -> Result<(), PatchError> {
    if from == path {
        return get(doc, "move", from).map(drop);
    }
    if path.starts_with(&format!("{from}/")) {
        return Err(PatchError::MoveIntoItself {
            from: from.to_string(),
            path: path.to_string(),
        });
    }
    let value = remove(doc, "move", from)?;
    add(doc, "move", path, value)
}

fn test(doc: &Value, path: &str, expected: &Value) -> Result<(), PatchError> {
    let failed = || PatchError::TestFailed {
        path: path.to_string(),
    };
    let actual = get(doc, "test", path).map_err(|_| failed())?;
    if json_equal(actual, expected) {
        Ok(())
    } else {
        Err(failed())
    }
}

/// Equality as RFC 6902 defines it for `test`: numbers by numeric value, objects regardless
/// of member order.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(doc: Value, ops: Value) -> Result<Value, String> {
        apply(&doc, &ops).map_err(|e| e.to_string())
    }

    #[test]
    fn add_replace_remove() {
        let doc = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"list": [1, 2]}});
        let ops = json!([
            {"op": "add", "path": "/metadata/labels/tier", "value": "front"},
            {"op": "replace", "path": "/metadata/labels/app", "value": "api"},
            {"op": "add", "path": "/spec/list/-", "value": 3},
            {"op": "add", "path": "/spec/list/0", "value": 0},
            {"op": "remove", "path": "/spec/list/1"},
        ]);
        assert_eq!(
            run(doc, ops).unwrap(),
            json!({"metadata": {"labels": {"app": "api", "tier": "front"}}, "spec": {"list": [0, 2, 3]}})
        );
    }

    #[test]
    fn pointer_escapes() {
        let doc = json!({"metadata": {"annotations": {"example.com/a~b": "1"}}});
        let ops = json!([
            {"op": "replace", "path": "/metadata/annotations/example.com~1a~0b", "value": "2"},
            {"op": "add", "path": "/metadata/annotations/x~1y", "value": "3"},
        ]);
        assert_eq!(
            run(doc, ops).unwrap(),
            json!({"metadata": {"annotations": {"example.com/a~b": "2", "x/y": "3"}}})
        );
        assert_eq!(
            run(
                json!({}),
                json!([{"op": "add", "path": "/a~2", "value": 1}])
            )
            .unwrap_err(),
            "invalid json pointer: \"/a~2\""
        );
        assert_eq!(
            run(json!({}), json!([{"op": "add", "path": "a", "value": 1}])).unwrap_err(),
            "invalid json pointer: \"a\""
        );
    }

    #[test]
    fn move_copy_test() {
        let doc = json!({"a": {"b": 1}, "c": [1.0]});
        let ops = json!([
            {"op": "test", "path": "/c/0", "value": 1},
            {"op": "copy", "from": "/a/b", "path": "/d"},
            {"op": "move", "from": "/a", "path": "/e"},
            {"op": "test", "path": "/e", "value": {"b": 1}},
        ]);
        assert_eq!(
            run(doc, ops).unwrap(),
            json!({"c": [1.0], "d": 1, "e": {"b": 1}})
        );
    }

    #[test]
    fn whole_document() {
        let ops = json!([{"op": "replace", "path": "", "value": {"x": 1}}]);
        assert_eq!(run(json!({"a": 1}), ops).unwrap(), json!({"x": 1}));
    }

    #[test]
    fn errors_say_what_did_not_apply() {
        let doc = json!({"spec": {"list": [1]}});
        let cases = [
            (
                json!([{"op": "add", "path": "/status/phase", "value": "x"}]),
                "add operation does not apply: doc is missing path: \"/status/phase\": missing value",
            ),
            (
                json!([{"op": "remove", "path": "/spec/x"}]),
                "remove operation does not apply: doc is missing path: \"/spec/x\": missing value",
            ),
            (
                json!([{"op": "replace", "path": "/spec/x", "value": 1}]),
                "replace operation does not apply: doc is missing path: \"/spec/x\": missing value",
            ),
            (
                json!([{"op": "remove", "path": "/spec/list/5"}]),
                "unable to access invalid index: 5: invalid index referenced",
            ),
            (
                json!([{"op": "add", "path": "/spec/list/01", "value": 1}]),
                "unable to access invalid index: 01: invalid index referenced",
            ),
            (
                json!([{"op": "test", "path": "/spec/list/0", "value": 2}]),
                "testing value /spec/list/0 failed: test failed",
            ),
            (
                json!([{"op": "move", "from": "/spec", "path": "/spec/inner"}]),
                "move operation does not apply: \"/spec/inner\" is inside its source \"/spec\"",
            ),
            (
                json!([{"op": "frobnicate", "path": "/spec"}]),
                "unexpected kind: frobnicate",
            ),
            (
                json!([{"op": "add", "path": "/spec/x"}]),
                "invalid patch: operation 0 has no \"value\"",
            ),
            (
                json!({"op": "add"}),
                "invalid patch: a json patch must be a list of operations",
            ),
        ];
        for (ops, message) in cases {
            assert_eq!(run(doc.clone(), ops).unwrap_err(), message);
        }
    }

    #[test]
    fn a_failed_operation_leaves_nothing_half_done() {
        let doc = json!({"a": 1});
        let ops = json!([
            {"op": "replace", "path": "/a", "value": 2},
            {"op": "test", "path": "/a", "value": 3},
        ]);
        assert!(apply(&doc, &ops).is_err());
        assert_eq!(doc, json!({"a": 1}));
    }
}

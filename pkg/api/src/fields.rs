//! Field selectors: the `fieldSelector` query parameter (upstream's `fields.ParseSelector`),
//! the fields each kind lets a selector use, and reading those fields out of an object.
//!
//! Syntax: comma-joined terms `field=value`, `field==value` or `field!=value`. In values, `\`
//! escapes `\`, `,` and `=`; an unescaped `,` or `=` inside a value is an error. A field
//! missing from an object compares as the empty string, as upstream's `fields.Set` does.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use crate::Resource;

/// Why a field selector was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldSelectorError {
    /// A term without an operator.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    Malformed {
        /// The whole selector.
        selector: String,
        /// The term that could not be read.
        term: String,
    },
    /// A backslash followed by something other than `\`, `,` or `=`, or at the end.
    #[error("invalid field selector: invalid escape sequence: {0}")]
    InvalidEscape(String),
    /// A `,` or `=` inside a value without a backslash.
    #[error("invalid field selector: unescaped character in value: {0}")]
    UnescapedCharacter(char),
    /// A field the kind does not let selectors use (kinds with their own selectable fields).
    #[error("field label not supported: {0}")]
    NotSupported(String),
    /// A field a core kind with only metadata fields does not support.
    #[error("field label {field:?} not supported for {kind:?}")]
    NotSupportedForKind {
        /// The field.
        field: String,
        /// The kind.
        kind: String,
    },
    /// A field a kind without its own field conversions does not know.
    #[error("{0:?} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"")]
    NotKnown(String),
}

/// How a term compares the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldOperator {
    /// `=` or `==`.
    Equals,
    /// `!=`.
    NotEquals,
}

/// One term: a field, an operator and a value (unescaped).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Term {
    /// The field's path, as `spec.nodeName`.
    pub field: String,
    /// The comparison.
    pub operator: FieldOperator,
    /// The value, with escapes removed.
    pub value: String,
}

impl Term {
    /// Whether the object's fields satisfy the term; a missing field is the empty string.
    pub fn matches(&self, fields: &BTreeMap<String, String>) -> bool {
        let actual = fields.get(&self.field).map_or("", String::as_str);
        (actual == self.value) == (self.operator == FieldOperator::Equals)
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let operator = match self.operator {
            FieldOperator::Equals => "=",
            FieldOperator::NotEquals => "!=",
        };
        write!(f, "{}{operator}{}", self.field, escape_value(&self.value))
    }
}

/// A field selector: terms that must all hold. No terms select everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct FieldSelector {
    terms: Vec<Term>,
}

impl FieldSelector {
    /// The selector that selects every object.
    pub fn everything() -> FieldSelector {
        FieldSelector::default()
    }

    /// Parses the `fieldSelector` syntax. Terms are kept sorted, as upstream sorts them.
    pub fn parse(selector: &str) -> Result<FieldSelector, FieldSelectorError> {
        let mut parts = split_terms(selector);
        parts.sort();
        let terms = parts
            .iter()
            .filter(|part| !part.is_empty())
            .map(|part| parse_term(selector, part))
            .collect::<Result<_, _>>()?;
        Ok(FieldSelector { terms })
    }

    /// Whether it has no terms, so it selects everything.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The terms, sorted.
    pub fn terms(&self) -> &[Term] {
        &self.terms
    }

    /// Whether an object with these selectable fields is selected.
    pub fn matches(&self, fields: &BTreeMap<String, String>) -> bool {
        self.terms.iter().all(|t| t.matches(fields))
    }

    /// The value `field` must equal for the selector to match, if a term pins it (the
    /// agent's `spec.nodeName=NODE` watch uses this to narrow what it reads).
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.field == field && t.operator == FieldOperator::Equals)
            .map(|t| t.value.as_str())
    }

    /// Checks that every field is one `resource` lets selectors use, with upstream's error
    /// for the first that is not (the API server answers it as 400 BadRequest).
    pub fn check_supported(&self, resource: &Resource) -> Result<(), FieldSelectorError> {
        let kind = selectable_kind(resource);
        match self
            .terms
            .iter()
            .find(|t| !kind.fields.contains(&t.field.as_str()))
        {
            None => Ok(()),
            Some(term) => Err(kind.unsupported(&term.field, resource.kind)),
        }
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, term) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{term}")?;
        }
        Ok(())
    }
}

/// Escapes `\`, `,` and `=` in a value, the inverse of parsing.
pub fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Splits at commas that are not escaped.
fn split_terms(selector: &str) -> Vec<String> {
    let mut terms = vec![String::new()];
    let mut escaped = false;
    for c in selector.chars() {
        match c {
            ',' if !escaped => terms.push(String::new()),
            _ => terms.last_mut().expect("never empty").push(c),
        }
        escaped = c == '\\' && !escaped;
    }
    terms
}

/// Splits a term at its first operator (`!=`, `==`, `=` tried in that order at each place).
fn parse_term(selector: &str, part: &str) -> Result<Term, FieldSelectorError> {
    let malformed = || FieldSelectorError::Malformed {
        selector: selector.to_string(),
        term: part.to_string(),
    };
    let (field, operator, rest) = part
        .char_indices()
        .find_map(|(i, _)| {
            operator_at(&part[i..]).map(|(op, len)| (&part[..i], op, &part[i + len..]))
        })
        .ok_or_else(malformed)?;
    Ok(Term {
        field: field.to_string(),
        operator,
        value: unescape_value(rest)?,
    })
}

fn operator_at(text: &str) -> Option<(FieldOperator, usize)> {
    if text.starts_with("!=") {
        Some((FieldOperator::NotEquals, 2))
    } else if text.starts_with("==") {
        Some((FieldOperator::Equals, 2))
    } else if text.starts_with('=') {
        Some((FieldOperator::Equals, 1))
    } else {
        None
    }
}

fn unescape_value(value: &str) -> Result<String, FieldSelectorError> {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('\\' | ',' | '=')) => out.push(e),
                Some(other) => return Err(FieldSelectorError::InvalidEscape(format!("\\{other}"))),
                None => return Err(FieldSelectorError::InvalidEscape("\\".to_string())),
            },
            ',' | '=' => return Err(FieldSelectorError::UnescapedCharacter(c)),
            _ => out.push(c),
        }
    }
    Ok(out)
}

/// How a kind's unsupported fields are reported: upstream words it three ways, depending
/// on how the kind registered its field conversions.
#[derive(Debug, Clone, Copy)]
enum Unsupported {
    /// Kinds with their own conversion (`field label not supported: x`).
    Plain,
    /// Core kinds with only metadata fields (`field label "x" not supported for "Service"`).
    ForKind,
    /// Kinds without a conversion (the default metadata-only one).
    Default,
}

/// The fields selectors may use on a kind, besides the metadata ones.
struct SelectableKind {
    fields: Vec<&'static str>,
    unsupported: Unsupported,
}

impl SelectableKind {
    fn unsupported(&self, field: &str, kind: &str) -> FieldSelectorError {
        match self.unsupported {
            Unsupported::Plain => FieldSelectorError::NotSupported(field.to_string()),
            Unsupported::ForKind => FieldSelectorError::NotSupportedForKind {
                field: field.to_string(),
                kind: kind.to_string(),
            },
            Unsupported::Default => FieldSelectorError::NotKnown(field.to_string()),
        }
    }
}

const POD_FIELDS: &[&str] = &[
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
];

const CORE_EVENT_FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];

const EVENTS_V1_FIELDS: &[&str] = &[
    "regarding.kind",
    "regarding.namespace",
    "regarding.name",
    "regarding.uid",
    "regarding.apiVersion",
    "regarding.resourceVersion",
    "regarding.fieldPath",
    "reason",
    "type",
    "reportingController",
];

/// The kind's own selectable fields (besides metadata) and how it reports others.
fn own_fields(resource: &Resource) -> (&'static [&'static str], Unsupported) {
    match (resource.group, resource.kind) {
        ("", "Pod") => (POD_FIELDS, Unsupported::Plain),
        ("", "Event") => (CORE_EVENT_FIELDS, Unsupported::Plain),
        ("events.k8s.io", "Event") => (EVENTS_V1_FIELDS, Unsupported::Plain),
        ("", "Node") => (&["spec.unschedulable"], Unsupported::Plain),
        ("", "Namespace") => (&["status.phase"], Unsupported::Plain),
        ("", "Secret") => (&["type"], Unsupported::Plain),
        ("batch", "Job") => (&["status.successful"], Unsupported::Plain),
        ("", "Endpoints" | "Service" | "ServiceAccount" | "ConfigMap") => {
            (&[], Unsupported::ForKind)
        }
        _ => (&[], Unsupported::Default),
    }
}

fn selectable_kind(resource: &Resource) -> SelectableKind {
    let (own, unsupported) = own_fields(resource);
    let mut fields = vec!["metadata.name"];
    if resource.namespaced {
        fields.push("metadata.namespace");
    }
    fields.extend_from_slice(own);
    SelectableKind {
        fields,
        unsupported,
    }
}

/// The field names selectors may use on `resource`'s objects.
pub fn supported_fields(resource: &Resource) -> Vec<&'static str> {
    selectable_kind(resource).fields
}

/// The selectable fields of `obj`, an object of `resource` as JSON, with the values a field
/// selector compares: strings as they are, booleans as `true`/`false`, counts as decimals.
pub fn selectable_fields(resource: &Resource, obj: &Value) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    let mut put = |name: &str, value: String| {
        fields.insert(name.to_string(), value);
    };
    put("metadata.name", string_at(obj, "/metadata/name"));
    if resource.namespaced {
        put("metadata.namespace", string_at(obj, "/metadata/namespace"));
    }
    match (resource.group, resource.kind) {
        ("", "Pod") => pod_fields(obj, &mut put),
        ("", "Event") => core_event_fields(obj, &mut put),
        ("events.k8s.io", "Event") => events_v1_fields(obj, &mut put),
        ("", "Node") => put("spec.unschedulable", bool_at(obj, "/spec/unschedulable")),
        ("", "Namespace") => put("status.phase", string_at(obj, "/status/phase")),
        ("", "Secret") => put("type", string_at(obj, "/type")),
        ("batch", "Job") => put("status.successful", count_at(obj, "/status/succeeded")),
        _ => {}
    }
    fields
}

fn pod_fields(obj: &Value, put: &mut impl FnMut(&str, String)) {
    for (name, pointer) in [
        ("spec.nodeName", "/spec/nodeName"),
        ("spec.restartPolicy", "/spec/restartPolicy"),
        ("spec.schedulerName", "/spec/schedulerName"),
        ("spec.serviceAccountName", "/spec/serviceAccountName"),
        ("status.phase", "/status/phase"),
        ("status.nominatedNodeName", "/status/nominatedNodeName"),
    ] {
        put(name, string_at(obj, pointer));
    }
    put("spec.hostNetwork", bool_at(obj, "/spec/hostNetwork"));
    // Upstream takes the first of status.podIPs, which mirrors status.podIP.
    let pod_ip = match obj.pointer("/status/podIPs/0/ip") {
        Some(Value::String(ip)) => ip.clone(),
        _ => string_at(obj, "/status/podIP"),
    };
    put("status.podIP", pod_ip);
}

fn core_event_fields(obj: &Value, put: &mut impl FnMut(&str, String)) {
    for field in [
        "kind",
        "namespace",
        "name",
        "uid",
        "apiVersion",
        "resourceVersion",
        "fieldPath",
    ] {
        put(
            &format!("involvedObject.{field}"),
            string_at(obj, &format!("/involvedObject/{field}")),
        );
    }
    put("reason", string_at(obj, "/reason"));
    put("type", string_at(obj, "/type"));
    let reporting = string_at(obj, "/reportingComponent");
    let source = match string_at(obj, "/source/component") {
        component if component.is_empty() => reporting.clone(),
        component => component,
    };
    put("reportingComponent", reporting);
    put("source", source);
}

fn events_v1_fields(obj: &Value, put: &mut impl FnMut(&str, String)) {
    for field in [
        "kind",
        "namespace",
        "name",
        "uid",
        "apiVersion",
        "resourceVersion",
        "fieldPath",
    ] {
        put(
            &format!("regarding.{field}"),
            string_at(obj, &format!("/regarding/{field}")),
        );
    }
    put("reason", string_at(obj, "/reason"));
    put("type", string_at(obj, "/type"));
    put(
        "reportingController",
        string_at(obj, "/reportingController"),
    );
}

fn string_at(obj: &Value, pointer: &str) -> String {
    obj.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn bool_at(obj: &Value, pointer: &str) -> String {
    obj.pointer(pointer)
        .and_then(Value::as_bool)
        .unwrap_or(false)
        .to_string()
}

fn count_at(obj: &Value, pointer: &str) -> String {
    obj.pointer(pointer)
        .and_then(Value::as_i64)
        .unwrap_or(0)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::find;
    use serde_json::json;

    fn resource(group: &str, plural: &str) -> &'static Resource {
        find(group, "v1", plural).unwrap()
    }

    #[test]
    fn parses_terms_sorted_and_unescaped() {
        let s = FieldSelector::parse("status.phase!=Running,spec.nodeName==node-1").unwrap();
        assert_eq!(s.to_string(), "spec.nodeName=node-1,status.phase!=Running");
        let s = FieldSelector::parse(r"metadata.name=a\,b\=c\\d").unwrap();
        assert_eq!(s.terms()[0].value, r"a,b=c\d");
        assert_eq!(s.to_string(), r"metadata.name=a\,b\=c\\d");
        let s = FieldSelector::parse("metadata.name=x!y").unwrap();
        assert_eq!(s.terms()[0].value, "x!y");
        assert!(FieldSelector::parse("").unwrap().is_empty());
        assert!(FieldSelector::parse(",,").unwrap().is_empty());
        let s = FieldSelector::parse("spec.nodeName=").unwrap();
        assert_eq!(s.terms()[0].value, "");
    }

    #[test]
    fn parse_errors_read_like_upstream() {
        let err = |s: &str| FieldSelector::parse(s).unwrap_err().to_string();
        assert_eq!(
            err("a=b,oops"),
            "invalid selector: 'a=b,oops'; can't understand 'oops'"
        );
        assert_eq!(
            err(r"a=b\x"),
            r"invalid field selector: invalid escape sequence: \x"
        );
        assert_eq!(
            err(r"a=b\"),
            r"invalid field selector: invalid escape sequence: \"
        );
        assert_eq!(
            err("a=b=c"),
            "invalid field selector: unescaped character in value: ="
        );
    }

    #[test]
    fn matches_missing_fields_as_empty() {
        let fields: BTreeMap<String, String> =
            [("spec.nodeName".to_string(), "node-1".to_string())].into();
        let m = |s: &str| FieldSelector::parse(s).unwrap().matches(&fields);
        assert!(m("spec.nodeName=node-1"));
        assert!(!m("spec.nodeName!=node-1"));
        assert!(m("status.phase="));
        assert!(m("status.phase!=Running"));
        assert!(!m("spec.nodeName=node-1,status.phase=Running"));
        assert!(m(""));
    }

    #[test]
    fn exact_match_for_node_watches() {
        let s = FieldSelector::parse("spec.nodeName=n1,status.phase!=Failed").unwrap();
        assert_eq!(s.requires_exact_match("spec.nodeName"), Some("n1"));
        assert_eq!(s.requires_exact_match("status.phase"), None);
    }

    #[test]
    fn pod_fields() {
        let pod = json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"nodeName": "n1", "restartPolicy": "Always", "schedulerName": "default-scheduler",
                     "serviceAccountName": "default", "hostNetwork": true},
            "status": {"phase": "Running", "podIP": "10.0.0.9", "podIPs": [{"ip": "10.0.0.9"}]}
        });
        let fields = selectable_fields(resource("", "pods"), &pod);
        let get = |k: &str| fields.get(k).map(String::as_str);
        assert_eq!(get("metadata.name"), Some("web"));
        assert_eq!(get("metadata.namespace"), Some("default"));
        assert_eq!(get("spec.nodeName"), Some("n1"));
        assert_eq!(get("spec.hostNetwork"), Some("true"));
        assert_eq!(get("status.podIP"), Some("10.0.0.9"));
        assert_eq!(get("status.nominatedNodeName"), Some(""));
        let bare = selectable_fields(resource("", "pods"), &json!({"metadata": {"name": "x"}}));
        assert_eq!(bare["spec.hostNetwork"], "false");
        assert_eq!(fields.len(), supported_fields(resource("", "pods")).len());
    }

    #[test]
    fn event_node_namespace_secret_job_fields() {
        let event = json!({
            "metadata": {"name": "e", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web", "uid": "u1"},
            "reason": "Scheduled", "type": "Normal", "reportingComponent": "cairn-scheduler"
        });
        let fields = selectable_fields(resource("", "events"), &event);
        assert_eq!(fields["involvedObject.kind"], "Pod");
        assert_eq!(fields["involvedObject.fieldPath"], "");
        assert_eq!(fields["source"], "cairn-scheduler");
        assert_eq!(fields["reportingComponent"], "cairn-scheduler");

        let event = json!({"metadata": {"name": "e"}, "regarding": {"kind": "Node", "name": "n1"},
                           "reportingController": "cairn"});
        let fields = selectable_fields(resource("events.k8s.io", "events"), &event);
        assert_eq!(fields["regarding.kind"], "Node");
        assert_eq!(fields["reportingController"], "cairn");

        let node = json!({"metadata": {"name": "n1"}, "spec": {"unschedulable": true}});
        let fields = selectable_fields(resource("", "nodes"), &node);
        assert_eq!(fields["spec.unschedulable"], "true");
        assert!(!fields.contains_key("metadata.namespace"));

        let ns = json!({"metadata": {"name": "dev"}, "status": {"phase": "Terminating"}});
        assert_eq!(
            selectable_fields(resource("", "namespaces"), &ns)["status.phase"],
            "Terminating"
        );
        let secret = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/tls"});
        assert_eq!(
            selectable_fields(resource("", "secrets"), &secret)["type"],
            "kubernetes.io/tls"
        );
        let job = json!({"metadata": {"name": "j"}, "status": {"succeeded": 2}});
        assert_eq!(
            selectable_fields(resource("batch", "jobs"), &job)["status.successful"],
            "2"
        );
        let rs = json!({"metadata": {"name": "r", "namespace": "d"}});
        assert_eq!(
            selectable_fields(resource("apps", "replicasets"), &rs).len(),
            2
        );
    }

    #[test]
    fn unsupported_fields_are_rejected_in_upstream_words() {
        let check = |group: &str, plural: &str, selector: &str| {
            FieldSelector::parse(selector)
                .unwrap()
                .check_supported(resource(group, plural))
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            check("", "pods", "spec.nodeName=n1,status.phase=Running"),
            Ok(())
        );
        assert_eq!(
            check("", "pods", "spec.foo=x"),
            Err("field label not supported: spec.foo".to_string())
        );
        assert_eq!(
            check("", "services", "spec.clusterIP=x"),
            Err("field label \"spec.clusterIP\" not supported for \"Service\"".to_string())
        );
        assert_eq!(
            check("apps", "deployments", "spec.replicas=1"),
            Err("\"spec.replicas\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"".to_string())
        );
        assert_eq!(
            check("", "nodes", "metadata.namespace=x"),
            Err("field label not supported: metadata.namespace".to_string())
        );
        assert_eq!(check("batch", "jobs", "status.successful=1"), Ok(()));
        assert_eq!(
            check("events.k8s.io", "events", "regarding.name=web"),
            Ok(())
        );
    }
}

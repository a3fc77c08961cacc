//! Validation results in the shape the API returns them, and the checks every object's
//! metadata gets. A [`Cause`] is one `metav1.StatusCause` of a `422 Invalid` answer; its
//! message reads as upstream's `field.Error` body (`Invalid value: "Foo": …`).
//!
//! The kinds' own rules (pod specs, workloads, services, …) live in the submodules, one per
//! family of kinds; [`validate_create`] and [`validate_update`] pick the rules of a resource.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use crate::Resource;
use crate::names::{check_dns1123_label, check_label_value, check_qualified_name, name_rule};

mod batch;
mod cluster;
mod config;
mod cron;
mod endpoints;
mod events;
#[cfg(test)]
mod kind_tests;
mod kinds;
mod pods;
mod render;
mod services;
mod workloads;

pub use cron::{CronError, Schedule, parse_schedule, time_zone};
pub use kinds::{validate_create, validate_update};

/// The most bytes all of an object's annotation keys and values may take together.
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// What kind of problem a cause reports (`metav1.CauseType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CauseReason {
    /// The value is malformed.
    FieldValueInvalid,
    /// A needed value is missing.
    FieldValueRequired,
    /// The value is not allowed here.
    FieldValueForbidden,
    /// The value is too long.
    FieldValueTooLong,
    /// The value is not one of the supported ones.
    FieldValueNotSupported,
    /// The value repeats one that must be unique.
    FieldValueDuplicate,
    /// The value refers to something that does not exist.
    FieldValueNotFound,
    /// The list has too many items.
    FieldValueTooMany,
}

/// One problem with a request's object, as `metav1.StatusCause`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cause {
    /// What kind of problem.
    pub reason: CauseReason,
    /// The problem in words, without the field.
    pub message: String,
    /// The field's path (`metadata.name`, `spec.containers[0].image`).
    pub field: String,
}

impl Cause {
    /// A malformed value: `Invalid value: "<value>": <detail>`.
    pub fn invalid(field: impl Into<String>, value: &str, detail: &str) -> Cause {
        Cause {
            reason: CauseReason::FieldValueInvalid,
            message: with_detail(&format!("Invalid value: {}", quote(value)), detail),
            field: field.into(),
        }
    }

    /// A missing value: `Required value[: <detail>]`.
    pub fn required(field: impl Into<String>, detail: &str) -> Cause {
        Cause {
            reason: CauseReason::FieldValueRequired,
            message: with_detail("Required value", detail),
            field: field.into(),
        }
    }

    /// A value not allowed here: `Forbidden: <detail>`.
    pub fn forbidden(field: impl Into<String>, detail: &str) -> Cause {
        Cause {
            reason: CauseReason::FieldValueForbidden,
            message: with_detail("Forbidden", detail),
            field: field.into(),
        }
    }

    /// A malformed value already written the way upstream prints it (`8080`,
    /// `map[string]string{"app":"x"}`): `Invalid value: <rendered>: <detail>`.
    pub fn invalid_rendered(field: impl Into<String>, rendered: &str, detail: &str) -> Cause {
        Cause {
            reason: CauseReason::FieldValueInvalid,
            message: with_detail(&format!("Invalid value: {rendered}"), detail),
            field: field.into(),
        }
    }

    /// A malformed value upstream does not print (`field.OmitValueType`): `Invalid value:
    /// <detail>`.
    pub fn invalid_omitted(field: impl Into<String>, detail: &str) -> Cause {
        Cause {
            reason: CauseReason::FieldValueInvalid,
            message: format!("Invalid value: {detail}"),
            field: field.into(),
        }
    }

    /// A malformed number: `Invalid value: <n>: <detail>`.
    pub fn invalid_int(field: impl Into<String>, value: i64, detail: &str) -> Cause {
        Cause::invalid_rendered(field, &value.to_string(), detail)
    }

    /// A value outside an enumeration: `Unsupported value: "<value>": supported values:
    /// "<a>", "<b>"`.
    pub fn not_supported(field: impl Into<String>, value: &str, supported: &[&str]) -> Cause {
        let listed: Vec<String> = supported.iter().map(|s| quote(s)).collect();
        let detail = if listed.is_empty() {
            String::new()
        } else {
            format!("supported values: {}", listed.join(", "))
        };
        Cause {
            reason: CauseReason::FieldValueNotSupported,
            message: with_detail(&format!("Unsupported value: {}", quote(value)), &detail),
            field: field.into(),
        }
    }

    /// A value that repeats an earlier one, written the way upstream prints it:
    /// `Duplicate value: <rendered>`.
    pub fn duplicate(field: impl Into<String>, rendered: &str) -> Cause {
        Cause {
            reason: CauseReason::FieldValueDuplicate,
            message: format!("Duplicate value: {rendered}"),
            field: field.into(),
        }
    }

    /// A reference to something that does not exist: `Not found: "<value>"`.
    pub fn not_found(field: impl Into<String>, value: &str) -> Cause {
        Cause {
            reason: CauseReason::FieldValueNotFound,
            message: format!("Not found: {}", quote(value)),
            field: field.into(),
        }
    }

    /// The same cause with `detail` appended (`Duplicate value: …: <detail>`).
    pub fn with_detail(mut self, detail: &str) -> Cause {
        self.message = with_detail(&self.message, detail);
        self
    }

    /// A value longer than `max_bytes`: `Too long: must have at most <n> bytes`.
    pub fn too_long(field: impl Into<String>, max_bytes: usize) -> Cause {
        Cause {
            reason: CauseReason::FieldValueTooLong,
            message: format!("Too long: must have at most {max_bytes} bytes"),
            field: field.into(),
        }
    }
}

impl fmt::Display for Cause {
    /// `<field>: <message>`, as upstream prints a field error.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

fn with_detail(head: &str, detail: &str) -> String {
    if detail.is_empty() {
        head.to_string()
    } else {
        format!("{head}: {detail}")
    }
}

/// A string as Go's `%q` prints it in a message.
pub(crate) fn quote(value: &str) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// The message of an Invalid status: `Pod "Foo" is invalid: <cause>` or, with several,
/// `… is invalid: [<cause>, <cause>]`.
pub fn invalid_message(kind: &str, name: &str, causes: &[Cause]) -> String {
    let listed: Vec<String> = causes.iter().map(Cause::to_string).collect();
    let errors = match listed.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    };
    format!("{kind} {} is invalid: {errors}", quote(name))
}

/// Upstream's `ValidateObjectMeta` for an object of `resource`: name or generateName present
/// and valid by the resource's name rule, namespace present and a DNS-1123 label exactly when
/// the resource is namespaced, label keys and values, annotation keys and their total size.
pub fn validate_object_meta(meta: &ObjectMeta, resource: &Resource) -> Vec<Cause> {
    let mut causes = validate_name(meta, resource);
    causes.extend(validate_namespace(meta.namespace.as_deref(), resource));
    if let Some(labels) = &meta.labels {
        causes.extend(validate_labels(labels, "metadata.labels"));
    }
    if let Some(annotations) = &meta.annotations {
        causes.extend(validate_annotations(annotations, "metadata.annotations"));
    }
    causes
}

fn validate_name(meta: &ObjectMeta, resource: &Resource) -> Vec<Cause> {
    let rule = name_rule(resource);
    let mut causes = Vec::new();
    if let Some(prefix) = meta.generate_name.as_deref().filter(|g| !g.is_empty()) {
        causes.extend(
            rule.check(prefix, true)
                .iter()
                .map(|p| Cause::invalid("metadata.generateName", prefix, p)),
        );
    }
    match meta.name.as_deref().filter(|n| !n.is_empty()) {
        None => causes.push(Cause::required(
            "metadata.name",
            "name or generateName is required",
        )),
        Some(name) => causes.extend(
            rule.check(name, false)
                .iter()
                .map(|p| Cause::invalid("metadata.name", name, p)),
        ),
    }
    causes
}

fn validate_namespace(namespace: Option<&str>, resource: &Resource) -> Vec<Cause> {
    let namespace = namespace.filter(|n| !n.is_empty());
    match (resource.namespaced, namespace) {
        (true, None) => vec![Cause::required("metadata.namespace", "")],
        (true, Some(ns)) => check_dns1123_label(ns)
            .iter()
            .map(|p| Cause::invalid("metadata.namespace", ns, p))
            .collect(),
        (false, Some(_)) => vec![Cause::forbidden(
            "metadata.namespace",
            "not allowed on this type",
        )],
        (false, None) => Vec::new(),
    }
}

/// Label keys must be qualified names and values label values; causes are reported at
/// `field` (upstream reports them at the labels map, not the key).
pub fn validate_labels(labels: &BTreeMap<String, String>, field: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    for (key, value) in labels {
        causes.extend(
            check_qualified_name(key)
                .iter()
                .map(|p| Cause::invalid(field, key, p)),
        );
        causes.extend(
            check_label_value(value)
                .iter()
                .map(|p| Cause::invalid(field, value, p)),
        );
    }
    causes
}

/// Annotation keys must be qualified names (case ignored) and all keys and values together
/// at most [`TOTAL_ANNOTATION_SIZE_LIMIT`] bytes.
pub fn validate_annotations(annotations: &BTreeMap<String, String>, field: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    for key in annotations.keys() {
        causes.extend(
            check_qualified_name(&key.to_lowercase())
                .iter()
                .map(|p| Cause::invalid(field, key, p)),
        );
    }
    let total: usize = annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        causes.push(Cause::too_long(field, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::find;
    use serde_json::json;

    fn meta(name: &str, namespace: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_string()),
            namespace: namespace.map(String::from),
            ..Default::default()
        }
    }

    fn pods() -> &'static Resource {
        find("", "v1", "pods").unwrap()
    }

    #[test]
    fn causes_serialize_as_status_causes() {
        let cause = Cause::invalid("metadata.name", "Foo", "bad");
        assert_eq!(
            serde_json::to_value(&cause).unwrap(),
            json!({"reason": "FieldValueInvalid", "message": "Invalid value: \"Foo\": bad", "field": "metadata.name"})
        );
        assert_eq!(
            Cause::required("metadata.namespace", "").message,
            "Required value"
        );
        assert_eq!(
            Cause::too_long("metadata.annotations", 262144).to_string(),
            "metadata.annotations: Too long: must have at most 262144 bytes"
        );
    }

    #[test]
    fn a_valid_pod_has_no_causes() {
        let mut m = meta("web-0", Some("default"));
        m.labels = Some([("app.kubernetes.io/name".to_string(), "web".to_string())].into());
        m.annotations = Some(
            [(
                "Example.com/Note".to_string(),
                "any value at all".to_string(),
            )]
            .into(),
        );
        assert_eq!(validate_object_meta(&m, pods()), vec![]);
    }

    #[test]
    fn an_invalid_name_reads_like_kubectl_shows_it() {
        let causes = validate_object_meta(&meta("Web", Some("default")), pods());
        assert_eq!(causes.len(), 1);
        assert_eq!(
            invalid_message("Pod", "Web", &causes),
            "Pod \"Web\" is invalid: metadata.name: Invalid value: \"Web\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        );
    }

    #[test]
    fn name_or_generate_name_is_required() {
        let causes = validate_object_meta(&ObjectMeta::default(), pods());
        assert_eq!(
            causes,
            vec![
                Cause::required("metadata.name", "name or generateName is required"),
                Cause::required("metadata.namespace", ""),
            ]
        );
        let m = ObjectMeta {
            generate_name: Some("web-".into()),
            name: Some("web-x7k2p".into()),
            namespace: Some("default".into()),
            ..Default::default()
        };
        assert_eq!(validate_object_meta(&m, pods()), vec![]);
    }

    #[test]
    fn namespaces_and_cluster_scope() {
        let nodes = find("", "v1", "nodes").unwrap();
        assert_eq!(
            validate_object_meta(&meta("n1", Some("default")), nodes),
            vec![Cause::forbidden(
                "metadata.namespace",
                "not allowed on this type"
            )]
        );
        let causes = validate_object_meta(&meta("web", Some("my.ns")), pods());
        assert_eq!(causes[0].field, "metadata.namespace");
        assert_eq!(
            causes[0].message,
            "Invalid value: \"my.ns\": must not contain dots"
        );
        let services = find("", "v1", "services").unwrap();
        let causes = validate_object_meta(&meta("1web", Some("default")), services);
        assert!(causes[0].message.contains("a DNS-1035 label"), "{causes:?}");
    }

    #[test]
    fn labels_and_annotations() {
        let mut m = meta("web", Some("default"));
        m.labels = Some([("bad key".to_string(), "bad value".to_string())].into());
        m.annotations = Some([("big".to_string(), "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT))].into());
        let causes = validate_object_meta(&m, pods());
        let summary: Vec<(&str, CauseReason)> = causes
            .iter()
            .map(|c| (c.field.as_str(), c.reason))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("metadata.labels", CauseReason::FieldValueInvalid),
                ("metadata.labels", CauseReason::FieldValueInvalid),
                ("metadata.annotations", CauseReason::FieldValueTooLong),
            ]
        );
        assert!(
            causes[0]
                .message
                .starts_with("Invalid value: \"bad key\": name part must consist")
        );
        assert!(
            causes[1]
                .message
                .starts_with("Invalid value: \"bad value\": a valid label must")
        );
    }
}

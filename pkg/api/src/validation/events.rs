//! Events, as upstream's `ValidateEventCreate`/`ValidateEventUpdate` check them. Both APIs
//! store the same object, so an `events.k8s.io/v1` Event is converted to its core form
//! ([`crate::events`]) and checked there, which is why causes name the core fields
//! (`involvedObject`, `message`), as upstream's do. Core `v1` writes get the lenient legacy
//! rules; `events.k8s.io/v1` writes the strict ones, and updates keep what happened fixed.

use k8s_openapi::api::core::v1::Event;
use serde_json::Value;

use super::Cause;
use crate::names::{check_dns1123_subdomain, check_qualified_name};

const REPORTING_INSTANCE_MAX: usize = 128;
const ACTION_MAX: usize = 128;
const REASON_MAX: usize = 128;
const NOTE_MAX: usize = 1024;

/// Fields an `events.k8s.io/v1` update may not change, as core field names.
const IMMUTABLE: &[&str] = &[
    "involvedObject",
    "reason",
    "message",
    "source",
    "firstTimestamp",
    "lastTimestamp",
    "count",
    "type",
    "eventTime",
    "action",
    "related",
    "reportingComponent",
    "reportingInstance",
];

/// The legacy rules every event passes: its namespace agrees with the object it is about,
/// and an event with an `eventTime` names its reporter, action and reason.
pub fn validate_legacy(event: &Event) -> Vec<Cause> {
    let namespace = event.metadata.namespace.as_deref().unwrap_or_default();
    let involved = event
        .involved_object
        .namespace
        .as_deref()
        .unwrap_or_default();
    let mut causes = Vec::new();
    let namespace_matches = match (event.event_time.is_some(), involved.is_empty()) {
        (false, true) => namespace.is_empty() || namespace == "default",
        (false, false) => namespace == involved,
        (true, true) => namespace == "default" || namespace == "kube-system",
        (true, false) => true,
    };
    if !namespace_matches {
        causes.push(Cause::invalid(
            "involvedObject.namespace",
            involved,
            "does not match event.namespace",
        ));
    }
    if event.event_time.is_some() {
        causes.extend(validate_reporting(event));
    }
    causes.extend(
        check_dns1123_subdomain(namespace)
            .iter()
            .map(|p| Cause::invalid("namespace", namespace, p)),
    );
    causes
}

fn validate_reporting(event: &Event) -> Vec<Cause> {
    let mut causes = Vec::new();
    let controller = event.reporting_component.as_deref().unwrap_or_default();
    if controller.is_empty() {
        causes.push(Cause::required("reportingController", ""));
    }
    causes.extend(
        check_qualified_name(controller)
            .iter()
            .map(|p| Cause::invalid("reportingController", controller, p)),
    );
    let limited = [
        (
            "reportingInstance",
            &event.reporting_instance,
            REPORTING_INSTANCE_MAX,
            true,
        ),
        ("action", &event.action, ACTION_MAX, true),
        ("reason", &event.reason, REASON_MAX, true),
        ("message", &event.message, NOTE_MAX, false),
    ];
    for (field, value, max, required) in limited {
        let value = value.as_deref().unwrap_or_default();
        if required && value.is_empty() {
            causes.push(Cause::required(field, ""));
        }
        if value.len() > max {
            causes.push(Cause::invalid(
                field,
                "",
                &format!("can have at most {max} characters"),
            ));
        }
    }
    causes
}

/// The strict rules of an `events.k8s.io/v1` create: a series of at least two, an event
/// time, a known type, and none of the deprecated fields.
pub fn validate_strict(event: &Event) -> Vec<Cause> {
    let mut causes = validate_series(event);
    if event.event_time.is_none() {
        causes.push(Cause::required("eventTime", ""));
    }
    let type_ = event.type_.as_deref().unwrap_or_default();
    if type_ != "Normal" && type_ != "Warning" {
        causes.push(Cause::invalid(
            "type",
            "",
            &format!("has invalid value: {type_}"),
        ));
    }
    let source = event.source.as_ref();
    let deprecated = [
        ("firstTimestamp", event.first_timestamp.is_some()),
        ("lastTimestamp", event.last_timestamp.is_some()),
        ("count", event.count.is_some_and(|c| c != 0)),
        (
            "source",
            source.is_some_and(|s| s.component.is_some() || s.host.is_some()),
        ),
    ];
    for (field, set) in deprecated {
        if set {
            causes.push(Cause::invalid(field, "", "needs to be unset"));
        }
    }
    causes
}

fn validate_series(event: &Event) -> Vec<Cause> {
    let Some(series) = &event.series else {
        return Vec::new();
    };
    let mut causes = Vec::new();
    if series.count.unwrap_or_default() < 2 {
        causes.push(Cause::invalid("series.count", "", "should be at least 2"));
    }
    if series.last_observed_time.is_none() {
        causes.push(Cause::required("series.lastObservedTime", ""));
    }
    causes
}

/// An `events.k8s.io/v1` update (both sides in core form): a changed series is checked again
/// and what happened may not change.
pub fn validate_strict_update(new: &Value, old: &Value, new_event: &Event) -> Vec<Cause> {
    let mut causes = Vec::new();
    if new.get("series") != old.get("series") {
        causes.extend(validate_series(new_event));
    }
    for field in IMMUTABLE {
        let (n, o) = (new.get(*field), old.get(*field));
        if n.filter(|v| !v.is_null()) == o.filter(|v| !v.is_null()) {
            continue;
        }
        let name = match *field {
            "reportingComponent" => "reportingController",
            other => other,
        };
        let rendered = match n {
            Some(Value::String(s)) => super::quote(s),
            Some(Value::Number(x)) => x.to_string(),
            Some(v) if !v.is_null() => v.to_string(),
            _ => "null".to_string(),
        };
        causes.push(Cause::invalid_rendered(
            name,
            &rendered,
            "field is immutable",
        ));
    }
    causes
}

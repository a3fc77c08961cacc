//! One event, two APIs. Upstream stores an event once and serves it both as a core `v1`
//! Event and as an `events.k8s.io/v1` Event; the two differ only in the names of their
//! fields. This module converts between them as upstream's conversion does
//! (`pkg/apis/events/v1/conversion.go`): `involvedObject` ↔ `regarding`, `message` ↔ `note`,
//! `reportingComponent` ↔ `reportingController`, `source` ↔ `deprecatedSource`,
//! `firstTimestamp`/`lastTimestamp`/`count` ↔ their `deprecated…` names; everything else
//! (`metadata`, `reason`, `type`, `action`, `eventTime`, `series`, `related`,
//! `reportingInstance`) keeps its name.
//!
//! Like upstream, the conversion does not invent values: a core event that only has
//! `source.component` keeps it under `deprecatedSource`, not as `reportingController`.
//! Which form the store keeps is the API server's choice; this module only maps.

use serde_json::{Map, Value};

/// The core `v1` Event's `apiVersion`.
pub const CORE_API_VERSION: &str = "v1";
/// The `events.k8s.io/v1` Event's `apiVersion`.
pub const EVENTS_API_VERSION: &str = "events.k8s.io/v1";

/// Field names as (core `v1`, `events.k8s.io/v1`); fields not listed are dropped, as a typed
/// conversion drops what neither type has.
const FIELDS: &[(&str, &str)] = &[
    ("metadata", "metadata"),
    ("eventTime", "eventTime"),
    ("series", "series"),
    ("reportingComponent", "reportingController"),
    ("reportingInstance", "reportingInstance"),
    ("action", "action"),
    ("reason", "reason"),
    ("involvedObject", "regarding"),
    ("related", "related"),
    ("message", "note"),
    ("type", "type"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

/// A core `v1` Event as an `events.k8s.io/v1` Event.
pub fn event_v1_to_events_v1(event: &Value) -> Value {
    convert(event, EVENTS_API_VERSION, |(core, events)| (core, events))
}

/// An `events.k8s.io/v1` Event as a core `v1` Event.
pub fn events_v1_to_event_v1(event: &Value) -> Value {
    convert(event, CORE_API_VERSION, |(core, events)| (events, core))
}

/// Copies every mapped field of `event` under its name in the other API; `direction` turns a
/// (core, events) pair into (from, to).
fn convert(
    event: &Value,
    api_version: &str,
    direction: impl Fn((&'static str, &'static str)) -> (&'static str, &'static str),
) -> Value {
    let mut out = Map::new();
    out.insert("apiVersion".into(), Value::from(api_version));
    out.insert("kind".into(), Value::from("Event"));
    for &pair in FIELDS {
        let (from, to) = direction(pair);
        if let Some(value) = event.get(from).filter(|v| !v.is_null()) {
            out.insert(to.into(), value.clone());
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn core_event() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "web.17a", "namespace": "default", "resourceVersion": "7"},
            "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web", "uid": "u1", "apiVersion": "v1", "fieldPath": "spec.containers{web}"},
            "reason": "Pulled",
            "message": "Successfully pulled image \"nginx\"",
            "source": {"component": "kubelet", "host": "node-1"},
            "firstTimestamp": "2024-01-01T00:00:00Z",
            "lastTimestamp": "2024-01-01T00:01:00Z",
            "count": 3,
            "type": "Normal",
            "eventTime": "2024-01-01T00:00:00.000001Z",
            "series": {"count": 2, "lastObservedTime": "2024-01-01T00:01:00.000000Z"},
            "action": "Pulling",
            "related": {"kind": "Node", "name": "node-1"},
            "reportingComponent": "kubelet",
            "reportingInstance": "node-1"
        })
    }

    #[test]
    fn core_fields_take_their_events_names() {
        let e = event_v1_to_events_v1(&core_event());
        assert_eq!(e["apiVersion"], "events.k8s.io/v1");
        assert_eq!(e["kind"], "Event");
        assert_eq!(e["regarding"]["name"], "web");
        assert_eq!(e["note"], "Successfully pulled image \"nginx\"");
        assert_eq!(e["reportingController"], "kubelet");
        assert_eq!(e["reportingInstance"], "node-1");
        assert_eq!(
            e["deprecatedSource"],
            json!({"component": "kubelet", "host": "node-1"})
        );
        assert_eq!(e["deprecatedFirstTimestamp"], "2024-01-01T00:00:00Z");
        assert_eq!(e["deprecatedLastTimestamp"], "2024-01-01T00:01:00Z");
        assert_eq!(e["deprecatedCount"], 3);
        assert_eq!(e["series"]["count"], 2);
        assert_eq!(e["related"]["kind"], "Node");
        assert_eq!(e["metadata"]["resourceVersion"], "7");
        for core_only in [
            "involvedObject",
            "message",
            "source",
            "count",
            "reportingComponent",
        ] {
            assert!(e.get(core_only).is_none(), "{core_only} left behind");
        }
    }

    #[test]
    fn round_trips_both_ways() {
        let core = core_event();
        assert_eq!(events_v1_to_event_v1(&event_v1_to_events_v1(&core)), core);
        let events = event_v1_to_events_v1(&core);
        assert_eq!(
            event_v1_to_events_v1(&events_v1_to_event_v1(&events)),
            events
        );
    }

    #[test]
    fn a_legacy_event_keeps_only_what_it_has() {
        let legacy = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "n.1", "namespace": "default"},
            "involvedObject": {"kind": "Node", "name": "n"},
            "reason": "Starting", "message": "Starting kubelet.",
            "source": {"component": "kubelet", "host": "n"},
            "eventTime": null, "count": 1, "type": "Normal"
        });
        let e = event_v1_to_events_v1(&legacy);
        assert!(e.get("reportingController").is_none());
        assert!(e.get("eventTime").is_none());
        assert_eq!(e["deprecatedSource"]["component"], "kubelet");
        let back = events_v1_to_event_v1(&e);
        let mut expected = legacy.clone();
        expected.as_object_mut().unwrap().remove("eventTime");
        assert_eq!(back, expected);
    }

    #[test]
    fn results_decode_as_their_types() {
        use k8s_openapi::api::{core::v1::Event as CoreEvent, events::v1::Event};
        let e: Event = serde_json::from_value(event_v1_to_events_v1(&core_event())).unwrap();
        assert_eq!(
            e.note.as_deref(),
            Some("Successfully pulled image \"nginx\"")
        );
        assert_eq!(e.deprecated_count, Some(3));
        let c: CoreEvent =
            serde_json::from_value(events_v1_to_event_v1(&serde_json::to_value(&e).unwrap()))
                .unwrap();
        assert_eq!(c.involved_object.name.as_deref(), Some("web"));
        assert_eq!(c.reporting_component.as_deref(), Some("kubelet"));
    }
}

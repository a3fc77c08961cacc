//! Events, core/v1 and events.k8s.io/v1 alike (upstream prints both through the core type):
//! when last seen, type, reason, the object (`pod/web`) and the message; the subobject,
//! source, first sighting, count and name with `-o wide`.

use k8s_openapi::api::core::v1::{Event as CoreEvent, ObjectReference};
use k8s_openapi::api::events::v1::Event as EventV1;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::duration::since;
use super::{Cells, Column, NAME, Result, decode};

/// The event columns.
pub const COLUMNS: &[Column] = &[
    Column::string("Last Seen", "How long ago the event was last seen."),
    Column::string("Type", "The type of the event: Normal or Warning."),
    Column::string(
        "Reason",
        "Why the action was taken, short and machine-readable.",
    ),
    Column::string("Object", "The object the event is about."),
    Column::string(
        "Subobject",
        "The part of the object the event is about (involvedObject.fieldPath).",
    )
    .wide(),
    Column::string(
        "Source",
        "The component (and host) that reported the event.",
    )
    .wide(),
    Column::string("Message", "A human-readable description of the event."),
    Column::string("First Seen", "How long ago the event was first seen.").wide(),
    Column::string("Count", "How many times the event has occurred.").wide(),
    Column {
        priority: 1,
        ..NAME
    },
];

/// The fields the event columns need, from either API.
#[derive(Debug, Default)]
struct EventView {
    name: String,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
    event_time: Option<Timestamp>,
    series: Option<(i32, Option<Timestamp>)>,
    count: i32,
    object: ObjectReference,
    type_: String,
    reason: String,
    message: String,
    component: String,
    host: String,
}

fn time(t: Option<Time>) -> Option<Timestamp> {
    t.map(|t| t.0)
}

fn micro(t: Option<MicroTime>) -> Option<Timestamp> {
    t.map(|t| t.0)
}

/// The cells of one core/v1 event.
pub fn core_cells(object: &Value, now: Timestamp) -> Result<Cells> {
    let e: CoreEvent = decode("Event", object)?;
    let source = e.source.unwrap_or_default();
    let view = EventView {
        name: e.metadata.name.unwrap_or_default(),
        first: time(e.first_timestamp),
        last: time(e.last_timestamp),
        event_time: micro(e.event_time),
        series: e
            .series
            .map(|s| (s.count.unwrap_or(0), micro(s.last_observed_time))),
        count: e.count.unwrap_or(0),
        object: e.involved_object,
        type_: e.type_.unwrap_or_default(),
        reason: e.reason.unwrap_or_default(),
        message: e.message.unwrap_or_default(),
        component: first_non_empty(source.component, e.reporting_component),
        host: first_non_empty(source.host, e.reporting_instance),
    };
    Ok(view.cells(now))
}

/// The cells of one events.k8s.io/v1 event.
pub fn events_v1_cells(object: &Value, now: Timestamp) -> Result<Cells> {
    let e: EventV1 = decode("Event", object)?;
    let source = e.deprecated_source.unwrap_or_default();
    let view = EventView {
        name: e.metadata.name.unwrap_or_default(),
        first: time(e.deprecated_first_timestamp),
        last: time(e.deprecated_last_timestamp),
        event_time: micro(e.event_time),
        series: e.series.map(|s| (s.count, Some(s.last_observed_time.0))),
        count: e.deprecated_count.unwrap_or(0),
        object: e.regarding.unwrap_or_default(),
        type_: e.type_.unwrap_or_default(),
        reason: e.reason.unwrap_or_default(),
        message: e.note.unwrap_or_default(),
        component: first_non_empty(source.component, e.reporting_controller),
        host: first_non_empty(source.host, e.reporting_instance),
    };
    Ok(view.cells(now))
}

fn first_non_empty(a: Option<String>, b: Option<String>) -> String {
    a.filter(|s| !s.is_empty()).or(b).unwrap_or_default()
}

impl EventView {
    fn cells(self, now: Timestamp) -> Cells {
        let first = since(self.first.or(self.event_time), now);
        let (last, count) = match self.series {
            Some((count, observed)) => (since(observed, now), count),
            None => (
                self.last
                    .map_or_else(|| first.clone(), |t| since(Some(t), now)),
                if self.count == 0 { 1 } else { self.count },
            ),
        };
        let kind = self.object.kind.unwrap_or_default().to_lowercase();
        let target = match self.object.name.filter(|n| !n.is_empty()) {
            Some(name) => format!("{kind}/{name}"),
            None => kind,
        };
        let source = if self.host.is_empty() {
            self.component
        } else {
            format!("{}, {}", self.component, self.host)
        };
        vec![
            json!(last),
            json!(self.type_),
            json!(self.reason),
            json!(target),
            json!(self.object.field_path.unwrap_or_default()),
            json!(source),
            json!(self.message.trim()),
            json!(first),
            json!(count),
            json!(self.name),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{at, cells, headers};
    use serde_json::{Value, json};

    #[test]
    fn headers_match_upstream() {
        assert_eq!(
            headers("v1", "Event"),
            [
                ("Last Seen", 0),
                ("Type", 0),
                ("Reason", 0),
                ("Object", 0),
                ("Subobject", 1),
                ("Source", 1),
                ("Message", 0),
                ("First Seen", 1),
                ("Count", 1),
                ("Name", 1)
            ]
        );
    }

    #[test]
    fn core_event() {
        let event = json!({"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "web.17a", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{web}"},
            "reason": "Pulled", "message": "Successfully pulled image \"nginx\"\n", "type": "Normal",
            "source": {"component": "kubelet", "host": "edge-1"},
            "firstTimestamp": at(-600), "lastTimestamp": at(-30), "count": 3});
        let want = json!([
            "30s",
            "Normal",
            "Pulled",
            "pod/web",
            "spec.containers{web}",
            "kubelet, edge-1",
            "Successfully pulled image \"nginx\"",
            "10m",
            3,
            "web.17a"
        ]);
        assert_eq!(Value::from(cells(event)), want);
    }

    #[test]
    fn new_style_events_use_event_time_and_series() {
        let event = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "n.1", "namespace": "kube-system"},
            "eventTime": at(-120).replace('Z', ".000000Z"),
            "regarding": {"kind": "Node", "name": "edge-1"},
            "reason": "RegisteredNode", "note": "Node edge-1 registered", "type": "Normal",
            "reportingController": "node-controller", "reportingInstance": ""});
        let row = cells(event);
        assert_eq!(row[0], "2m");
        assert_eq!(row[3], "node/edge-1");
        assert_eq!(row[5], "node-controller");
        assert_eq!(row[6], "Node edge-1 registered");
        assert_eq!(row[7], "2m");
        assert_eq!(row[8], 1);

        let series = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "n.2"},
            "eventTime": at(-900).replace('Z', ".000000Z"),
            "series": {"count": 7, "lastObservedTime": at(-10).replace('Z', ".000000Z")},
            "regarding": {"kind": "Pod"}, "type": "Warning", "reason": "BackOff"});
        let row = cells(series);
        assert_eq!(row[0], "10s");
        assert_eq!(row[3], "pod");
        assert_eq!(row[8], 7);
    }
}

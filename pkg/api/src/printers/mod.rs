//! Server-side Table printing: what `kubectl get` shows for each served kind. For every
//! resource this module knows the columns (as upstream's `pkg/printers/internalversion`
//! defines them) and how to compute a row's cells from an object, and it assembles the
//! `meta.k8s.io/v1` Table that the API server answers when a client asks for
//! `application/json;as=Table;v=v1;g=meta.k8s.io`.
//!
//! Rows always carry every column, the `-o wide` ones too (priority 1): the client picks what
//! to show, as it does against upstream. Time is a parameter so that printing stays pure.
//! The module does not fill the list metadata (resourceVersion, continue): the caller sets
//! `table["metadata"]` from the list it read.

mod core;
mod duration;
mod events;
mod format;
mod nodes;
mod pods;
mod services;
mod workloads;

use k8s_openapi::jiff::Timestamp;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::resources::Resource;

pub use duration::{human_duration, since};

/// Why a Table could not be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An object did not have the shape of its kind.
    #[error("cannot read {kind} {name:?} for printing")]
    Decode {
        /// The kind being printed.
        kind: &'static str,
        /// The object's name, when it has one.
        name: String,
        /// What the decoder said.
        #[source]
        source: serde_json::Error,
    },
}

/// The result of printing.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What each row carries besides its cells (the `includeObject` query parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// Cells only.
    None,
    /// The object's metadata as a `PartialObjectMetadata` (the server's default; kubectl
    /// needs it for `-A`, `--show-labels` and `-L`).
    #[default]
    Metadata,
    /// The whole object (kubectl asks for it with `--sort-by`).
    Object,
}

impl IncludeObject {
    /// Parses the `includeObject` query value; `None` for anything else.
    pub fn parse(value: &str) -> Option<IncludeObject> {
        match value {
            "None" => Some(IncludeObject::None),
            "Metadata" => Some(IncludeObject::Metadata),
            "Object" => Some(IncludeObject::Object),
            _ => None,
        }
    }
}

/// A column of a Table (`TableColumnDefinition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Column {
    /// The header; kubectl upper-cases it.
    pub name: &'static str,
    /// The OpenAPI type of the cells: `string`, `integer`, `boolean`, `date`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// An OpenAPI format hint: `name` for the object's name column, else empty.
    pub format: &'static str,
    /// What the column shows.
    pub description: &'static str,
    /// 0 for the default view, 1 for columns shown only with `-o wide`.
    pub priority: i32,
}

impl Column {
    /// A default-view string column.
    pub const fn string(name: &'static str, description: &'static str) -> Column {
        Column {
            name,
            kind: "string",
            format: "",
            description,
            priority: 0,
        }
    }

    /// A default-view integer column.
    pub const fn integer(name: &'static str, description: &'static str) -> Column {
        Column {
            kind: "integer",
            ..Column::string(name, description)
        }
    }

    /// A default-view boolean column.
    pub const fn boolean(name: &'static str, description: &'static str) -> Column {
        Column {
            kind: "boolean",
            ..Column::string(name, description)
        }
    }

    /// The same column, shown only with `-o wide`.
    pub const fn wide(self) -> Column {
        Column {
            priority: 1,
            ..self
        }
    }
}

/// The `Name` column every kind starts with.
pub const NAME: Column = Column {
    format: "name",
    ..Column::string(
        "Name",
        "Name must be unique within a namespace; the object's metadata.name.",
    )
};

/// The `Age` column: time since the object was created.
pub const AGE: Column = Column::string(
    "Age",
    "Time since the object was created (metadata.creationTimestamp).",
);

/// The row cells of one object, computed at `now`.
pub type Cells = Vec<Value>;

/// How one kind is printed: its columns and the function that fills a row.
#[derive(Clone, Copy)]
pub struct Printer {
    /// The columns, in order.
    pub columns: &'static [Column],
    /// The cells of one object, one per column.
    pub cells: fn(&Value, Timestamp) -> Result<Cells>,
    /// Row conditions (the `Completed` condition of finished pods).
    pub conditions: fn(&Value) -> Option<Value>,
}

impl std::fmt::Debug for Printer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Printer")
            .field("columns", &self.columns)
            .finish_non_exhaustive()
    }
}

fn no_conditions(_: &Value) -> Option<Value> {
    None
}

impl Printer {
    const fn new(
        columns: &'static [Column],
        cells: fn(&Value, Timestamp) -> Result<Cells>,
    ) -> Printer {
        Printer {
            columns,
            cells,
            conditions: no_conditions,
        }
    }
}

/// The columns of the default Table for kinds without a printer of their own.
pub const DEFAULT_COLUMNS: &[Column] = &[
    NAME,
    Column {
        kind: "date",
        ..Column::string(
            "Created At",
            "When the object was created (metadata.creationTimestamp).",
        )
    },
];

/// The default row: the name and the creation time as written in the object.
fn default_cells(object: &Value, _now: Timestamp) -> Result<Cells> {
    let created = object
        .pointer("/metadata/creationTimestamp")
        .cloned()
        .unwrap_or(Value::Null);
    Ok(vec![json!(format::name_of(object)), created])
}

/// The printer for objects of `api_version`/`kind`; the default printer for kinds without one.
pub fn printer(api_version: &str, kind: &str) -> Printer {
    match (api_version, kind) {
        ("v1", "Pod") => Printer {
            conditions: pods::conditions,
            ..Printer::new(pods::COLUMNS, pods::cells)
        },
        ("v1", "Node") => Printer::new(nodes::COLUMNS, nodes::cells),
        ("v1", "Namespace") => Printer::new(core::NAMESPACE_COLUMNS, core::namespace_cells),
        ("v1", "ConfigMap") => Printer::new(core::CONFIG_MAP_COLUMNS, core::config_map_cells),
        ("v1", "Secret") => Printer::new(core::SECRET_COLUMNS, core::secret_cells),
        ("v1", "ServiceAccount") => {
            Printer::new(core::SERVICE_ACCOUNT_COLUMNS, core::service_account_cells)
        }
        ("v1", "Service") => Printer::new(services::SERVICE_COLUMNS, services::service_cells),
        ("v1", "Endpoints") => Printer::new(services::ENDPOINTS_COLUMNS, services::endpoints_cells),
        ("discovery.k8s.io/v1", "EndpointSlice") => Printer::new(
            services::ENDPOINT_SLICE_COLUMNS,
            services::endpoint_slice_cells,
        ),
        ("v1", "Event") => Printer::new(events::COLUMNS, events::core_cells),
        ("events.k8s.io/v1", "Event") => Printer::new(events::COLUMNS, events::events_v1_cells),
        ("coordination.k8s.io/v1", "Lease") => Printer::new(core::LEASE_COLUMNS, core::lease_cells),
        ("apps/v1", "Deployment") => {
            Printer::new(workloads::DEPLOYMENT_COLUMNS, workloads::deployment_cells)
        }
        ("apps/v1", "ReplicaSet") => {
            Printer::new(workloads::REPLICA_SET_COLUMNS, workloads::replica_set_cells)
        }
        ("apps/v1", "StatefulSet") => Printer::new(
            workloads::STATEFUL_SET_COLUMNS,
            workloads::stateful_set_cells,
        ),
        ("apps/v1", "ControllerRevision") => Printer::new(
            workloads::CONTROLLER_REVISION_COLUMNS,
            workloads::controller_revision_cells,
        ),
        ("apps/v1", "DaemonSet") => {
            Printer::new(workloads::DAEMON_SET_COLUMNS, workloads::daemon_set_cells)
        }
        ("batch/v1", "Job") => Printer::new(workloads::JOB_COLUMNS, workloads::job_cells),
        ("batch/v1", "CronJob") => {
            Printer::new(workloads::CRON_JOB_COLUMNS, workloads::cron_job_cells)
        }
        _ => Printer::new(DEFAULT_COLUMNS, default_cells),
    }
}

/// The `meta.k8s.io/v1` Table of `objects` of `resource`, as at `now`. Its `metadata` is
/// empty: the caller sets the list's resourceVersion and continue token there.
pub fn table(
    resource: &Resource,
    objects: &[Value],
    now: Timestamp,
    include_object: IncludeObject,
) -> Result<Value> {
    let printer = printer(resource.api_version, resource.kind);
    let rows = objects
        .iter()
        .map(|object| row(&printer, object, now, include_object))
        .collect::<Result<Vec<_>>>()?;
    Ok(json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "columnDefinitions": printer.columns,
        "rows": rows,
    }))
}

/// One `TableRow`.
fn row(
    printer: &Printer,
    object: &Value,
    now: Timestamp,
    include_object: IncludeObject,
) -> Result<Value> {
    let mut row = Map::new();
    row.insert("cells".into(), Value::Array((printer.cells)(object, now)?));
    if let Some(conditions) = (printer.conditions)(object) {
        row.insert("conditions".into(), conditions);
    }
    match include_object {
        IncludeObject::None => {}
        IncludeObject::Metadata => {
            row.insert("object".into(), partial_object_metadata(object));
        }
        IncludeObject::Object => {
            row.insert("object".into(), object.clone());
        }
    }
    Ok(Value::Object(row))
}

/// The object's metadata as a `meta.k8s.io/v1` `PartialObjectMetadata`.
pub fn partial_object_metadata(object: &Value) -> Value {
    let metadata = object.get("metadata").cloned().unwrap_or_else(|| json!({}));
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
    })
}

/// Decodes `object` into the k8s-openapi type of its kind.
fn decode<T: serde::de::DeserializeOwned>(kind: &'static str, object: &Value) -> Result<T> {
    T::deserialize(object).map_err(|source| Error::Decode {
        kind,
        name: format::name_of(object).to_string(),
        source,
    })
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{RESOURCES, find};
    use testing::{at, now};

    #[test]
    fn every_served_kind_has_consistent_rows() {
        for resource in RESOURCES {
            let object = json!({
                "apiVersion": resource.api_version,
                "kind": resource.kind,
                "metadata": {"name": "x", "namespace": "default", "creationTimestamp": at(-30)},
            });
            let table = table(resource, &[object], now(), IncludeObject::Metadata).unwrap();
            let columns = table["columnDefinitions"].as_array().unwrap().len();
            let cells = table["rows"][0]["cells"].as_array().unwrap();
            assert_eq!(cells.len(), columns, "{}", resource.kind);
            assert!(
                cells.iter().any(|c| c == "x"),
                "{} has its name",
                resource.kind
            );
        }
    }

    #[test]
    fn rows_carry_partial_object_metadata_or_the_object() {
        let pods = find("", "v1", "pods").unwrap();
        let pod =
            json!({"metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}}});
        let table = table(
            pods,
            std::slice::from_ref(&pod),
            now(),
            IncludeObject::Metadata,
        )
        .unwrap();
        assert_eq!(table["kind"], "Table");
        assert_eq!(table["apiVersion"], "meta.k8s.io/v1");
        let object = &table["rows"][0]["object"];
        assert_eq!(object["kind"], "PartialObjectMetadata");
        assert_eq!(object["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(object["metadata"]["labels"]["app"], "web");
        let full = super::table(
            pods,
            std::slice::from_ref(&pod),
            now(),
            IncludeObject::Object,
        )
        .unwrap();
        assert_eq!(full["rows"][0]["object"], pod);
        let bare = super::table(pods, &[pod], now(), IncludeObject::None).unwrap();
        assert!(bare["rows"][0].get("object").is_none());
    }

    #[test]
    fn unknown_kinds_get_name_and_created_at() {
        let review = find("authorization.k8s.io", "v1", "selfsubjectaccessreviews").unwrap();
        let object =
            json!({"metadata": {"name": "r", "creationTimestamp": "2024-01-01T00:00:00Z"}});
        let table = table(review, &[object], now(), IncludeObject::None).unwrap();
        assert_eq!(table["columnDefinitions"][1]["name"], "Created At");
        assert_eq!(table["columnDefinitions"][1]["type"], "date");
        assert_eq!(
            table["rows"][0]["cells"],
            json!(["r", "2024-01-01T00:00:00Z"])
        );
    }

    #[test]
    fn malformed_objects_are_an_error() {
        let pods = find("", "v1", "pods").unwrap();
        let object = json!({"metadata": {"name": "bad"}, "spec": {"containers": 5}});
        let err = table(pods, &[object], now(), IncludeObject::None).unwrap_err();
        assert!(err.to_string().contains("\"bad\""), "{err}");
    }

    #[test]
    fn include_object_parses_the_query_values() {
        assert_eq!(IncludeObject::parse("None"), Some(IncludeObject::None));
        assert_eq!(IncludeObject::parse("Object"), Some(IncludeObject::Object));
        assert_eq!(
            IncludeObject::parse("Metadata"),
            Some(IncludeObject::Metadata)
        );
        assert_eq!(IncludeObject::parse("all"), None);
    }
}

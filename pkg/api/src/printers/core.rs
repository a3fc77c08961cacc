//! The small core kinds: namespaces (phase), config maps and secrets (how many keys),
//! service accounts (how many secrets) and leases (the holder).

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, ServiceAccount};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::format::age;
use super::{AGE, Cells, Column, NAME, Result, decode};

/// The namespace columns.
pub const NAMESPACE_COLUMNS: &[Column] = &[
    NAME,
    Column::string("Status", "The status of the namespace"),
    AGE,
];

/// The cells of one namespace.
pub fn namespace_cells(object: &Value, now: Timestamp) -> Result<Cells> {
    let ns: Namespace = decode("Namespace", object)?;
    let phase = ns.status.and_then(|s| s.phase).unwrap_or_default();
    Ok(vec![
        json!(ns.metadata.name.clone().unwrap_or_default()),
        json!(phase),
        age(&ns.metadata, now),
    ])
}

/// The config map columns.
pub const CONFIG_MAP_COLUMNS: &[Column] = &[
    NAME,
    Column::string(
        "Data",
        "How many keys the config map holds (data and binaryData).",
    ),
    AGE,
];

/// The cells of one config map.
pub fn config_map_cells(object: &Value, now: Timestamp) -> Result<Cells> {
    let cm: ConfigMap = decode("ConfigMap", object)?;
    let keys =
        cm.data.as_ref().map_or(0, |d| d.len()) + cm.binary_data.as_ref().map_or(0, |d| d.len());
    Ok(vec![
        json!(cm.metadata.name.clone().unwrap_or_default()),
        json!(keys),
        age(&cm.metadata, now),
    ])
}

/// The secret columns.
pub const SECRET_COLUMNS: &[Column] = &[
    NAME,
    Column::string(
        "Type",
        "The type of the secret, used to handle its data programmatically.",
    ),
    Column::string("Data", "How many keys the secret holds."),
    AGE,
];

/// The cells of one secret.
pub fn secret_cells(object: &Value, now: Timestamp) -> Result<Cells> {
    let secret: Secret = decode("Secret", object)?;
    Ok(vec![
        json!(secret.metadata.name.clone().unwrap_or_default()),
        json!(secret.type_.clone().unwrap_or_default()),
        json!(secret.data.as_ref().map_or(0, |d| d.len())),
        age(&secret.metadata, now),
    ])
}

/// The service account columns.
pub const SERVICE_ACCOUNT_COLUMNS: &[Column] = &[
    NAME,
    Column::string("Secrets", "How many secrets the service account lists."),
    AGE,
];

/// The cells of one service account.
pub fn service_account_cells(object: &Value, now: Timestamp) -> Result<Cells> {
    let sa: ServiceAccount = decode("ServiceAccount", object)?;
    Ok(vec![
        json!(sa.metadata.name.clone().unwrap_or_default()),
        json!(sa.secrets.as_ref().map_or(0, |s| s.len())),
        age(&sa.metadata, now),
    ])
}

/// The lease columns.
pub const LEASE_COLUMNS: &[Column] = &[
    NAME,
    Column::string("Holder", "The identity of the lease's current holder."),
    AGE,
];

/// The cells of one lease.
pub fn lease_cells(object: &Value, now: Timestamp) -> Result<Cells> {
    let lease: Lease = decode("Lease", object)?;
    let holder = lease
        .spec
        .and_then(|s| s.holder_identity)
        .unwrap_or_default();
    Ok(vec![
        json!(lease.metadata.name.clone().unwrap_or_default()),
        json!(holder),
        age(&lease.metadata, now),
    ])
}

#[cfg(test)]
mod tests {
    use super::super::testing::{at, cells, headers};
    use serde_json::{Value, json};

    fn object(api_version: &str, kind: &str, rest: Value) -> Value {
        let mut o = json!({"apiVersion": api_version, "kind": kind,
            "metadata": {"name": "x", "namespace": "default", "creationTimestamp": at(-45)}});
        o.as_object_mut()
            .unwrap()
            .extend(rest.as_object().unwrap().clone());
        o
    }

    #[test]
    fn namespaces_show_their_phase() {
        assert_eq!(
            headers("v1", "Namespace"),
            [("Name", 0), ("Status", 0), ("Age", 0)]
        );
        let row = cells(object(
            "v1",
            "Namespace",
            json!({"status": {"phase": "Active"}}),
        ));
        assert_eq!(row, [json!("x"), json!("Active"), json!("45s")]);
    }

    #[test]
    fn config_maps_and_secrets_count_keys() {
        let row = cells(object(
            "v1",
            "ConfigMap",
            json!({"data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}),
        ));
        assert_eq!(row, [json!("x"), json!(3), json!("45s")]);
        let row = cells(object(
            "v1",
            "Secret",
            json!({"type": "Opaque", "data": {"p": "cGFzcw=="}}),
        ));
        assert_eq!(row, [json!("x"), json!("Opaque"), json!(1), json!("45s")]);
        let row = cells(object("v1", "ServiceAccount", json!({})));
        assert_eq!(row, [json!("x"), json!(0), json!("45s")]);
    }

    #[test]
    fn leases_show_the_holder() {
        let row = cells(object(
            "coordination.k8s.io/v1",
            "Lease",
            json!({"spec": {"holderIdentity": "edge-1"}}),
        ));
        assert_eq!(row, [json!("x"), json!("edge-1"), json!("45s")]);
    }
}

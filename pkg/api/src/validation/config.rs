//! ConfigMaps and Secrets: their keys (`[-._a-zA-Z0-9]+`, at most 253 characters, not `.`,
//! `..` or starting with `..`), no key in two places, at most 1 MiB of data, the keys each
//! Secret type needs, and the `immutable: true` promise kept on update.
//!
//! A Secret's `stringData` is write-only: upstream merges it into `data` (its values win)
//! before validating, so its keys are reported under `data[…]` as upstream reports them.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};

use super::Cause;

/// The most bytes of data a ConfigMap or Secret may hold.
pub const MAX_DATA_SIZE: usize = 1024 * 1024;

const IMMUTABLE_SET: &str = "field is immutable when `immutable` is set";

/// Upstream's `IsConfigMapKey`: the problems with `key` as a ConfigMap or Secret key.
pub fn check_config_key(key: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if key.len() > 253 {
        problems.push("must be no more than 253 characters".to_string());
    }
    let valid = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    if key.is_empty() || !key.bytes().all(valid) {
        problems.push(
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
                .to_string(),
        );
    }
    match key {
        "." => problems.push("must not be '.'".to_string()),
        ".." => problems.push("must not be '..'".to_string()),
        k if k.starts_with("..") => problems.push("must not start with '..'".to_string()),
        _ => {}
    }
    problems
}

fn check_keys<'a>(keys: impl Iterator<Item = &'a String>, field: &str) -> Vec<Cause> {
    keys.flat_map(|key| {
        check_config_key(key)
            .into_iter()
            .map(move |p| Cause::invalid(format!("{field}[{key}]"), key, &p))
    })
    .collect()
}

/// A ConfigMap.
pub fn validate_config_map(cm: &ConfigMap) -> Vec<Cause> {
    let empty_data = BTreeMap::new();
    let empty_binary = BTreeMap::new();
    let data = cm.data.as_ref().unwrap_or(&empty_data);
    let binary = cm.binary_data.as_ref().unwrap_or(&empty_binary);
    let mut causes = Vec::new();
    for key in data.keys() {
        causes.extend(check_keys(std::iter::once(key), "data"));
        if binary.contains_key(key) {
            causes.push(Cause::invalid(
                format!("data[{key}]"),
                key,
                "duplicate of key present in binaryData",
            ));
        }
    }
    causes.extend(check_keys(binary.keys(), "binaryData"));
    let size: usize = data.values().map(String::len).sum::<usize>()
        + binary.values().map(|b| b.0.len()).sum::<usize>();
    if size > MAX_DATA_SIZE {
        causes.push(Cause::too_long("", MAX_DATA_SIZE));
    }
    causes
}

/// A ConfigMap update: once `immutable: true`, neither it nor the data may change.
pub fn validate_config_map_update(new: &ConfigMap, old: &ConfigMap) -> Vec<Cause> {
    if old.immutable != Some(true) {
        return Vec::new();
    }
    let mut causes = Vec::new();
    if new.immutable != Some(true) {
        causes.push(Cause::forbidden("immutable", IMMUTABLE_SET));
    }
    if new.data != old.data {
        causes.push(Cause::forbidden("data", IMMUTABLE_SET));
    }
    if new.binary_data != old.binary_data {
        causes.push(Cause::forbidden("binaryData", IMMUTABLE_SET));
    }
    causes
}

/// A Secret's data as upstream validates it: `data` with `stringData` merged over it.
fn merged_data(secret: &Secret) -> BTreeMap<&str, &[u8]> {
    let mut data: BTreeMap<&str, &[u8]> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.0.as_slice()))
        .collect();
    for (k, v) in secret.string_data.iter().flatten() {
        data.insert(k.as_str(), v.as_bytes());
    }
    data
}

/// A Secret.
pub fn validate_secret(secret: &Secret) -> Vec<Cause> {
    let data = merged_data(secret);
    let mut causes = Vec::new();
    for key in data.keys() {
        causes.extend(
            check_config_key(key)
                .iter()
                .map(|p| Cause::invalid(format!("data[{key}]"), key, p)),
        );
    }
    if data.values().map(|v| v.len()).sum::<usize>() > MAX_DATA_SIZE {
        causes.push(Cause::too_long("data", MAX_DATA_SIZE));
    }
    causes.extend(validate_secret_type(secret, &data));
    causes
}

/// The keys each well-known Secret type needs.
fn validate_secret_type(secret: &Secret, data: &BTreeMap<&str, &[u8]>) -> Vec<Cause> {
    let required = |key: &str| Cause::required(format!("data[{key}]"), "");
    match secret.type_.as_deref().unwrap_or("Opaque") {
        "kubernetes.io/service-account-token" => {
            let annotations = secret.metadata.annotations.as_ref();
            let name = annotations.and_then(|a| a.get("kubernetes.io/service-account.name"));
            if name.is_none_or(|n| n.is_empty()) {
                return vec![Cause::required(
                    "metadata.annotations[kubernetes.io/service-account.name]",
                    "",
                )];
            }
            Vec::new()
        }
        t @ ("kubernetes.io/dockercfg" | "kubernetes.io/dockerconfigjson") => {
            let key = if t.ends_with("json") {
                ".dockerconfigjson"
            } else {
                ".dockercfg"
            };
            match data.get(key) {
                None => vec![required(key)],
                Some(bytes) => match serde_json::from_slice::<serde_json::Map<_, _>>(bytes) {
                    Ok(_) => Vec::new(),
                    Err(e) => vec![Cause::invalid(
                        format!("data[{key}]"),
                        "<secret contents redacted>",
                        &e.to_string(),
                    )],
                },
            }
        }
        "kubernetes.io/basic-auth"
            if !data.contains_key("username") && !data.contains_key("password") =>
        {
            vec![required("username"), required("password")]
        }
        "kubernetes.io/ssh-auth" if data.get("ssh-privatekey").is_none_or(|v| v.is_empty()) => {
            vec![required("ssh-privatekey")]
        }
        "kubernetes.io/tls" => ["tls.crt", "tls.key"]
            .into_iter()
            .filter(|k| !data.contains_key(k))
            .map(required)
            .collect(),
        _ => Vec::new(),
    }
}

/// A Secret update: the type never changes; once `immutable: true`, neither it nor the data
/// may change.
pub fn validate_secret_update(new: &Secret, old: &Secret) -> Vec<Cause> {
    let mut causes = Vec::new();
    let (new_type, old_type) = (
        new.type_.as_deref().unwrap_or("Opaque"),
        old.type_.as_deref().unwrap_or("Opaque"),
    );
    if new_type != old_type {
        causes.push(Cause::invalid("type", new_type, "field is immutable"));
    }
    if old.immutable == Some(true) {
        if new.immutable != Some(true) {
            causes.push(Cause::forbidden("immutable", IMMUTABLE_SET));
        }
        if merged_data(new) != merged_data(old) {
            causes.push(Cause::forbidden("data", IMMUTABLE_SET));
        }
    }
    causes
}

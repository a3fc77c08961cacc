//! Test helpers: a fixed "now" and timestamps relative to it.

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use crate::resources::{Resource, by_kind};

use super::{IncludeObject, table};

/// The instant the printer tests print at.
pub fn now() -> Timestamp {
    "2024-05-01T12:00:00Z".parse().unwrap()
}

/// An RFC 3339 time `offset` seconds from [`now`] (negative: in the past).
pub fn at(offset: i64) -> String {
    (now() + SignedDuration::from_secs(offset)).to_string()
}

/// The cells of `object` (whose apiVersion and kind pick the resource), all columns.
pub fn cells(object: Value) -> Vec<Value> {
    let resource: &Resource = by_kind(
        object["apiVersion"].as_str().unwrap(),
        object["kind"].as_str().unwrap(),
    )
    .unwrap();
    let table = table(resource, &[object], now(), IncludeObject::None).unwrap();
    table["rows"][0]["cells"].as_array().unwrap().clone()
}

/// The headers of `api_version`/`kind` with their priorities.
pub fn headers(api_version: &str, kind: &str) -> Vec<(&'static str, i32)> {
    super::printer(api_version, kind)
        .columns
        .iter()
        .map(|c| (c.name, c.priority))
        .collect()
}

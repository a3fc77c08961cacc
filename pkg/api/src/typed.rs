//! Objects through their k8s-openapi types. A request body is decoded into the type of its
//! kind (which checks every field's type and drops unknown fields, as upstream's decoder does),
//! defaulted, and encoded back; the fields the type did not know are reported so that
//! `fieldValidation=Strict` can refuse them and `Warn` can mention them.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::Resource;
use crate::defaults::Defaults;

/// Why a body could not be decoded as its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// A decoded, defaulted object.
#[derive(Debug, Clone, PartialEq)]
pub struct Admitted {
    /// The object as its type encodes it.
    pub object: Value,
    /// Paths of the fields the type does not have (`.spec.foo`).
    pub unknown_fields: Vec<String>,
}

/// Runs `$body` with `$t` bound to the k8s-openapi type of `$resource`'s objects; `$none` when
/// the resource has no stored type.
macro_rules! with_type {
    ($resource:expr, $t:ident => $body:expr, $none:expr) => {{
        use k8s_openapi::api::{apps, batch, coordination, core, discovery, events};
        match ($resource.api_version, $resource.kind) {
            ("v1", "Namespace") => {
                type $t = core::v1::Namespace;
                $body
            }
            ("v1", "Node") => {
                type $t = core::v1::Node;
                $body
            }
            ("v1", "Pod") => {
                type $t = core::v1::Pod;
                $body
            }
            ("v1", "Service") => {
                type $t = core::v1::Service;
                $body
            }
            ("v1", "Endpoints") => {
                type $t = core::v1::Endpoints;
                $body
            }
            ("v1", "ConfigMap") => {
                type $t = core::v1::ConfigMap;
                $body
            }
            ("v1", "Secret") => {
                type $t = core::v1::Secret;
                $body
            }
            ("v1", "ServiceAccount") => {
                type $t = core::v1::ServiceAccount;
                $body
            }
            ("v1", "Event") => {
                type $t = core::v1::Event;
                $body
            }
            ("apps/v1", "Deployment") => {
                type $t = apps::v1::Deployment;
                $body
            }
            ("apps/v1", "ReplicaSet") => {
                type $t = apps::v1::ReplicaSet;
                $body
            }
            ("apps/v1", "StatefulSet") => {
                type $t = apps::v1::StatefulSet;
                $body
            }
            ("apps/v1", "DaemonSet") => {
                type $t = apps::v1::DaemonSet;
                $body
            }
            ("apps/v1", "ControllerRevision") => {
                type $t = apps::v1::ControllerRevision;
                $body
            }
            ("batch/v1", "Job") => {
                type $t = batch::v1::Job;
                $body
            }
            ("batch/v1", "CronJob") => {
                type $t = batch::v1::CronJob;
                $body
            }
            ("coordination.k8s.io/v1", "Lease") => {
                type $t = coordination::v1::Lease;
                $body
            }
            ("discovery.k8s.io/v1", "EndpointSlice") => {
                type $t = discovery::v1::EndpointSlice;
                $body
            }
            ("events.k8s.io/v1", "Event") => {
                type $t = events::v1::Event;
                $body
            }
            ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => {
                type $t = k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
                $body
            }
            _ => $none,
        }
    }};
}

/// Decodes `body` as an object of `resource`, applies the kind's defaults, and encodes it
/// again. `apiVersion` and `kind` are filled in when missing.
pub fn admit(resource: &Resource, mut body: Value) -> Result<Admitted, DecodeError> {
    let Some(root) = body.as_object_mut() else {
        return Err(DecodeError(format!(
            "the body of a {} must be a JSON object",
            resource.kind
        )));
    };
    root.entry("apiVersion")
        .or_insert_with(|| Value::from(resource.api_version));
    root.entry("kind")
        .or_insert_with(|| Value::from(resource.kind));
    with_type!(resource, T => round_trip::<T>(body), Ok(Admitted { object: body, unknown_fields: Vec::new() }))
}

/// Decodes `body` as `T` without defaulting: the object a caller reads back.
pub fn decode<T: DeserializeOwned>(body: &Value) -> Result<T, DecodeError> {
    T::deserialize(body).map_err(|e| DecodeError(e.to_string()))
}

fn round_trip<T>(body: Value) -> Result<Admitted, DecodeError>
where
    T: DeserializeOwned + Serialize + Defaults,
{
    let mut typed: T = decode(&body)?;
    typed.apply_defaults();
    let object = serde_json::to_value(&typed).map_err(|e| DecodeError(e.to_string()))?;
    let mut unknown_fields = Vec::new();
    unknown(&body, &object, String::new(), &mut unknown_fields);
    Ok(Admitted {
        object,
        unknown_fields,
    })
}

/// Collects the paths present in `given` but absent from `known` (its typed re-encoding).
/// Nulls are absences, not unknown fields; free-form maps (labels, data) are kept whole by the
/// types, so only fields the schema lacks show up.
fn unknown(given: &Value, known: &Value, path: String, out: &mut Vec<String>) {
    match (given, known) {
        (Value::Object(g), Value::Object(k)) => {
            for (field, value) in g {
                let p = format!("{path}.{field}");
                match k.get(field) {
                    Some(kv) => unknown(value, kv, p, out),
                    None if value.is_null() => {}
                    None if is_empty_default(value) => {}
                    None => out.push(p),
                }
            }
        }
        (Value::Array(g), Value::Array(k)) => {
            for (i, (gv, kv)) in g.iter().zip(k).enumerate() {
                unknown(gv, kv, format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// `{}` and `[]` given for an optional field the type leaves out when empty.
fn is_empty_default(v: &Value) -> bool {
    matches!(v, Value::Object(m) if m.is_empty()) || matches!(v, Value::Array(a) if a.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pods() -> &'static Resource {
        crate::resources::find("", "v1", "pods").unwrap()
    }

    #[test]
    fn unknown_fields_are_reported_and_dropped() {
        let a = admit(
            pods(),
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox", "bogus": 1}], "nope": true}}),
        )
        .unwrap();
        assert_eq!(
            a.unknown_fields,
            [".spec.containers[0].bogus", ".spec.nope"]
        );
        assert_eq!(a.object["kind"], "Pod");
        assert!(a.object["spec"].get("nope").is_none());
    }

    #[test]
    fn wrong_types_are_refused() {
        let deploy = crate::resources::find("apps", "v1", "deployments").unwrap();
        let e = admit(
            deploy,
            json!({"metadata": {"name": "d"}, "spec": {"replicas": "three", "selector": {}, "template": {}}}),
        )
        .unwrap_err();
        assert!(e.0.contains("invalid type"), "{e}");
    }
}

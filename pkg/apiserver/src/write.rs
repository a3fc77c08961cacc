//! `create`, `update` and `patch`, on objects and on their `status` and `scale` subresources,
//! and the pod `binding`. Every change goes through one compare-and-swap loop
//! ([`guaranteed_update`]) as upstream's `GuaranteedUpdate` does: read, change, write if
//! nothing changed meanwhile, otherwise read again.

use http::{HeaderValue, Response, StatusCode};
use serde_json::{Value, json};

use cairn_api::apply::{self, ApplyError, conflict_causes, conflict_message};
use cairn_api::managed_fields;
use cairn_api::patch::PatchType;
use cairn_api::validation;

use crate::call::Call;
use crate::error::{ApiError, ApiResult, Named};
use crate::negotiate::BodyType;
use crate::object;
use crate::response::Body;
use crate::storage::Written;
use crate::strategy;

/// Decodes an object for `call`'s resource: types checked, unknown fields handled as
/// `fieldValidation` asks, defaults applied. Returns the object and a warning, if any.
fn admit(call: &Call<'_>, body: Value) -> ApiResult<(Value, Option<String>)> {
    let expected = call.resource.api_version;
    if let Some(given) = body.get("apiVersion").and_then(Value::as_str)
        && given != expected
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({given}) does not match the expected API version ({expected})"
        )));
    }
    if let Some(given) = body.get("kind").and_then(Value::as_str)
        && given != call.resource.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({given}) does not match the expected kind ({})",
            call.resource.kind
        )));
    }
    let admitted = cairn_api::typed::admit(call.resource, body)
        .map_err(|e| ApiError::bad_request(format!("error decoding the request body: {e}")))?;
    let unknown = admitted.unknown_fields;
    let warning = match call.query.get("fieldValidation").unwrap_or("Warn") {
        _ if unknown.is_empty() => None,
        "Strict" => {
            let list = unknown
                .iter()
                .map(|f| format!("unknown field \"{}\"", f.trim_start_matches('.')))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(ApiError::bad_request(format!(
                "strict decoding error: {list}"
            )));
        }
        "Ignore" => None,
        "Warn" => Some(
            unknown
                .iter()
                .map(|f| format!("unknown field \"{}\"", f.trim_start_matches('.')))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        other => {
            return Err(ApiError::bad_request(format!(
                "fieldValidation: Unsupported value: \"{other}\": supported values: \"Ignore\", \"Strict\", \"Warn\""
            )));
        }
    };
    Ok((admitted.object, warning))
}

fn with_warning(mut r: Response<Body>, warning: Option<String>) -> Response<Body> {
    if let Some(w) = warning
        && let Ok(v) = HeaderValue::from_str(&format!("299 - \"{}\"", w.replace('"', "\\\"")))
    {
        r.headers_mut().insert("warning", v);
    }
    r
}

/// Checks that the namespace of a new namespaced object exists and is not being deleted.
async fn check_namespace(call: &Call<'_>, ns: &str) -> ApiResult<()> {
    let namespaces = cairn_api::resources::find("", "v1", "namespaces").expect("served");
    match call.api.storage.get(namespaces, None, ns).await? {
        None => Err(ApiError::not_found(Named::from(namespaces), ns)),
        Some(n) if object::is_deleting(&n) => Err(ApiError::forbidden(format!(
            "unable to create new content in namespace {ns} because it is being terminated"
        ))),
        Some(_) => Ok(()),
    }
}

/// The field manager of a write: `fieldManager`, or what upstream derives from the
/// User-Agent.
fn manager(call: &Call<'_>) -> String {
    match call.query.get("fieldManager") {
        Some(m) => m.to_string(),
        None => managed_fields::default_manager(
            call.headers
                .get(http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default(),
        ),
    }
}

/// Records in `new`'s managedFields which fields this write changed, for its manager.
fn record_update(call: &Call<'_>, old: Option<&Value>, new: &mut Value) {
    let manager = manager(call);
    let now = object::now();
    managed_fields::record_update(
        call.resource,
        old,
        new,
        &managed_fields::Request {
            manager: &manager,
            subresource: call.req.subresource.as_deref(),
            now: &now,
        },
    );
}

/// `POST …/RESOURCE`.
pub async fn create(call: &Call<'_>) -> ApiResult<Response<Body>> {
    let body = call.body_value()?;
    let dry_run = call.dry_run()?;
    let (mut obj, warning) = admit(call, body)?;
    record_update(call, None, &mut obj);
    create_object(call, obj, warning, dry_run).await
}

/// Stores a new, admitted object: namespace and name settled, system metadata filled,
/// validated.
async fn create_object(
    call: &Call<'_>,
    mut obj: Value,
    warning: Option<String>,
    dry_run: bool,
) -> ApiResult<Response<Body>> {
    let namespace = match (call.resource.namespaced, call.namespace()) {
        (true, Some(ns)) => {
            match object::namespace(&obj) {
                Some(given) if given != ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => {}
            }
            object::meta_mut(&mut obj).insert("namespace".into(), json!(ns));
            Some(ns.to_string())
        }
        (true, None) => {
            return Err(ApiError::bad_request(
                "the namespace of the object must be given in the URL",
            ));
        }
        (false, _) => {
            object::meta_mut(&mut obj).remove("namespace");
            None
        }
    };
    if object::name(&obj).is_none()
        && let Some(prefix) = object::meta_str(&obj, "generateName").map(str::to_string)
    {
        let name = format!("{prefix}{}", object::name_suffix());
        object::meta_mut(&mut obj).insert("name".into(), json!(name));
    }
    strategy::prepare_create(call.resource, &mut obj);
    strategy::check(
        call.resource,
        &obj,
        validation::validate_create(call.resource, &obj),
    )?;
    if let Some(ns) = &namespace {
        check_namespace(call, ns).await?;
    }
    let name = object::name(&obj).unwrap_or_default().to_string();
    if dry_run {
        if call
            .api
            .storage
            .get(call.resource, namespace.as_deref(), &name)
            .await?
            .is_some()
        {
            return Err(ApiError::already_exists(Named::from(call.resource), &name));
        }
        return Ok(with_warning(
            call.respond_object(StatusCode::CREATED, &obj),
            warning,
        ));
    }
    match call
        .api
        .storage
        .create(call.resource, namespace.as_deref(), &name, &obj)
        .await?
    {
        Written::Done(stored) => Ok(with_warning(
            call.respond_object(StatusCode::CREATED, &stored),
            warning,
        )),
        Written::Refused(_) => Err(ApiError::already_exists(Named::from(call.resource), &name)),
    }
}

/// What a change does to the current object.
pub enum Change {
    /// Replace it with this object.
    Put(Value),
    /// Delete it.
    Delete,
}

/// Reads the object, computes the change, and writes it if the object did not change in
/// between; retries on a concurrent change unless `precondition` (a client's
/// resourceVersion) pins the version. Returns the object written (or deleted) and whether
/// anything was written.
pub async fn guaranteed_update<F>(
    call: &Call<'_>,
    dry_run: bool,
    mut change: F,
) -> ApiResult<(Value, bool)>
where
    F: FnMut(&Value) -> ApiResult<Change>,
{
    let name = call.name()?.to_string();
    let storage = &call.api.storage;
    let ns = call.namespace();
    let mut current = call.current().await?;
    loop {
        let revision = object::resource_version(&current).map_err(ApiError::internal)?;
        let written = match change(&current)? {
            Change::Put(new) if strategy::is_noop(&current, &new) => return Ok((current, false)),
            _ if dry_run => return Ok((current, false)),
            Change::Put(new) => {
                storage
                    .update(call.resource, ns, &name, revision, &new)
                    .await?
            }
            Change::Delete => storage.delete(call.resource, ns, &name, revision).await?,
        };
        match written {
            Written::Done(obj) => return Ok((obj, true)),
            Written::Refused(Some(now)) => current = now,
            Written::Refused(None) => {
                return Err(ApiError::not_found(Named::from(call.resource), &name));
            }
        }
    }
}

/// Whether an update records its fields in managedFields (a server-side apply has already).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tracking {
    Record,
    Applied,
}

/// Applies the rules of an update to `new` given the current object: precondition, name,
/// strategy, validation. Returns what to write.
fn updated(
    call: &Call<'_>,
    current: &Value,
    mut new: Value,
    status: bool,
    track: Tracking,
) -> ApiResult<Change> {
    let name = call.name()?;
    let wanted = object::resource_version(&new).map_err(ApiError::bad_request)?;
    let have = object::resource_version(current).map_err(ApiError::internal)?;
    if wanted != 0 && wanted != have {
        return Err(ApiError::stale(Named::from(call.resource), name));
    }
    match object::name(&new) {
        Some(n) if n != name => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        _ => {}
    }
    if let (Some(given), Some(ns)) = (object::namespace(&new), call.namespace())
        && given != ns
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    strategy::prepare_update(call.resource, current, &mut new, status);
    if track == Tracking::Record {
        record_update(call, Some(current), &mut new);
    }
    object::set_resource_version(&mut new, have);
    strategy::check(
        call.resource,
        &new,
        validation::validate_update(call.resource, current, &new),
    )?;
    // An object being deleted whose last finalizer is removed is gone.
    if object::is_deleting(&new) && !object::deletion_blocked(&new) && !is_graceful_pod(&new) {
        return Ok(Change::Delete);
    }
    Ok(Change::Put(new))
}

/// A pod whose deletion waits for its node to stop it.
fn is_graceful_pod(obj: &Value) -> bool {
    obj["kind"] == "Pod"
        && obj["metadata"]["deletionGracePeriodSeconds"]
            .as_i64()
            .is_some_and(|g| g > 0)
}

/// `PUT namespaces/NAME/finalize`: replaces only the namespace's `spec.finalizers`; the last
/// one removed from a namespace being deleted deletes it.
pub async fn finalize(call: &Call<'_>) -> ApiResult<Response<Body>> {
    let body = call.body_value()?;
    let dry_run = call.dry_run()?;
    let finalizers = body["spec"]["finalizers"].clone();
    let (obj, _) = guaranteed_update(call, dry_run, |current| {
        let mut new = current.clone();
        new["spec"]["finalizers"] = if finalizers.is_null() {
            json!([])
        } else {
            finalizers.clone()
        };
        if object::is_deleting(&new) && !object::deletion_blocked(&new) {
            return Ok(Change::Delete);
        }
        Ok(Change::Put(new))
    })
    .await?;
    Ok(call.respond_object(StatusCode::OK, &obj))
}

/// `PUT …/NAME[/status]`.
pub async fn update(call: &Call<'_>) -> ApiResult<Response<Body>> {
    if call.req.subresource.as_deref() == Some("scale") {
        return scale_update(call, ScaleBody::Replace(call.body_value()?)).await;
    }
    let status = call.req.subresource.as_deref() == Some("status");
    let dry_run = call.dry_run()?;
    let (body, warning) = admit(call, call.body_value()?)?;
    let (obj, _) = guaranteed_update(call, dry_run, |current| {
        updated(call, current, body.clone(), status, Tracking::Record)
    })
    .await?;
    Ok(with_warning(
        call.respond_object(StatusCode::OK, &obj),
        warning,
    ))
}

/// Applies a patch document of `kind` to `current`.
fn apply_patch(
    call: &Call<'_>,
    kind: BodyType,
    current: &Value,
    patch: &Value,
) -> ApiResult<Value> {
    let patch_type = match kind {
        BodyType::JsonPatch => PatchType::Json,
        BodyType::MergePatch => PatchType::Merge,
        BodyType::StrategicMergePatch => PatchType::StrategicMerge,
        BodyType::ApplyPatch => {
            return Err(ApiError::unsupported_media_type(
                "application/apply-patch+yaml",
            ));
        }
        _ => return Err(ApiError::unsupported_media_type("application/json")),
    };
    cairn_api::patch::apply(patch_type, call.resource, current, patch)
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// `PATCH …/NAME[/status|/scale]`.
pub async fn patch(call: &Call<'_>) -> ApiResult<Response<Body>> {
    let kind = call.body_type()?;
    if matches!(kind, BodyType::Json | BodyType::Yaml | BodyType::Protobuf) {
        return Err(ApiError::unsupported_media_type(
            call.headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/json"),
        ));
    }
    let patch = call.body_value()?;
    if kind == BodyType::ApplyPatch {
        return server_side_apply(call, patch).await;
    }
    if call.req.subresource.as_deref() == Some("scale") {
        return scale_update(call, ScaleBody::Patch(kind, patch)).await;
    }
    let status = call.req.subresource.as_deref() == Some("status");
    let dry_run = call.dry_run()?;
    let mut warning = None;
    let (obj, _) = guaranteed_update(call, dry_run, |current| {
        let patched = apply_patch(call, kind, current, &patch)?;
        // A patch only pins the version when it names one.
        let mut patched = patched;
        if patch.pointer("/metadata/resourceVersion").is_none() {
            object::set_resource_version(
                &mut patched,
                object::resource_version(current).unwrap_or(0),
            );
        }
        let (admitted, w) = admit(call, patched)?;
        warning = w;
        updated(call, current, admitted, status, Tracking::Record)
    })
    .await?;
    Ok(with_warning(
        call.respond_object(StatusCode::OK, &obj),
        warning,
    ))
}

fn apply_error(e: ApplyError) -> ApiError {
    match e {
        ApplyError::Conflicts(c) => {
            ApiError::apply_conflict(conflict_message(&c), conflict_causes(&c))
        }
        ApplyError::BadRequest(m) => ApiError::bad_request(m),
        ApplyError::Invalid(m) => ApiError::unprocessable(m),
        ApplyError::ManagedFields(m) => ApiError::internal(m),
    }
}

/// `PATCH` with `application/apply-patch+yaml`: server-side apply of the configuration by
/// its field manager, creating the object if it does not exist.
async fn server_side_apply(call: &Call<'_>, applied: Value) -> ApiResult<Response<Body>> {
    let Some(manager) = call.query.get("fieldManager") else {
        return Err(ApiError::bad_request(
            "PATCH requests with apply-patch+yaml need a fieldManager",
        ));
    };
    let force = call.query.flag("force");
    let dry_run = call.dry_run()?;
    let status = call.req.subresource.as_deref() == Some("status");
    let now = object::now();
    let request = managed_fields::Request {
        manager,
        subresource: call.req.subresource.as_deref(),
        now: &now,
    };
    let name = call.name()?;
    match object::name(&applied) {
        Some(n) if n != name => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        _ => {}
    }
    let exists = call
        .api
        .storage
        .get(call.resource, call.namespace(), name)
        .await?
        .is_some();
    if !exists {
        if call.req.subresource.is_some() {
            return Err(ApiError::not_found(Named::from(call.resource), name));
        }
        let merged =
            apply::apply(call.resource, None, &applied, &request, force).map_err(apply_error)?;
        let (mut obj, warning) = admit(call, merged)?;
        object::meta_mut(&mut obj).insert("name".into(), json!(name));
        return create_object(call, obj, warning, dry_run).await;
    }
    let mut warning = None;
    let (obj, _) = guaranteed_update(call, dry_run, |current| {
        let merged = apply::apply(call.resource, Some(current), &applied, &request, force)
            .map_err(apply_error)?;
        let (admitted, w) = admit(call, merged)?;
        warning = w;
        updated(call, current, admitted, status, Tracking::Applied)
    })
    .await?;
    Ok(with_warning(
        call.respond_object(StatusCode::OK, &obj),
        warning,
    ))
}

/// A write to a `scale` subresource.
enum ScaleBody {
    Replace(Value),
    Patch(BodyType, Value),
}

/// The autoscaling/v1 Scale of an object.
fn scale_of(obj: &Value) -> Value {
    let selector = obj["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let meta = &obj["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(0)},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector},
    })
}

async fn scale_update(call: &Call<'_>, body: ScaleBody) -> ApiResult<Response<Body>> {
    let dry_run = call.dry_run()?;
    let (obj, _) = guaranteed_update(call, dry_run, |current| {
        let scale = scale_of(current);
        let wanted = match &body {
            ScaleBody::Replace(v) => v.clone(),
            ScaleBody::Patch(kind, p) => apply_patch(call, *kind, &scale, p)?,
        };
        let Some(replicas) = wanted["spec"]["replicas"].as_i64() else {
            return Err(ApiError::bad_request(
                "spec.replicas of a Scale must be an integer",
            ));
        };
        let given_rv = object::resource_version(&wanted).map_err(ApiError::bad_request)?;
        let have = object::resource_version(current).map_err(ApiError::internal)?;
        if given_rv != 0 && given_rv != have {
            return Err(ApiError::stale(Named::from(call.resource), call.name()?));
        }
        let mut new = current.clone();
        new["spec"]["replicas"] = json!(replicas);
        updated(call, current, new, false, Tracking::Record)
    })
    .await?;
    Ok(crate::response::json(StatusCode::OK, &scale_of(&obj)))
}

/// `GET …/NAME/scale`.
pub async fn scale_get(call: &Call<'_>) -> ApiResult<Response<Body>> {
    let obj = call.current().await?;
    Ok(crate::response::json(StatusCode::OK, &scale_of(&obj)))
}

/// `POST pods/NAME/binding`: assigns a pod to a node, once.
pub async fn bind(call: &Call<'_>) -> ApiResult<Response<Body>> {
    let binding = call.body_value()?;
    let Some(node) = binding["target"]["name"].as_str().filter(|n| !n.is_empty()) else {
        return Err(ApiError::invalid(
            "Binding",
            "",
            call.name()?,
            vec![cairn_api::validation::Cause::required("target.name", "")],
        ));
    };
    let dry_run = call.dry_run()?;
    let name = call.name()?.to_string();
    guaranteed_update(call, dry_run, |current| {
        if object::is_deleting(current) {
            return Err(ApiError::conflict(
                Named::from(call.resource),
                &name,
                "pod is being deleted, cannot be assigned to a host",
            ));
        }
        if let Some(existing) = current["spec"]["nodeName"]
            .as_str()
            .filter(|n| !n.is_empty())
        {
            return Err(ApiError::conflict(
                Named::from(call.resource),
                &name,
                &format!("pod {name} is already assigned to node \"{existing}\""),
            ));
        }
        let mut new = current.clone();
        new["spec"]["nodeName"] = json!(node);
        let conditions = new["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut conditions: Vec<Value> = conditions
            .into_iter()
            .filter(|c| c["type"] != "PodScheduled")
            .collect();
        conditions.push(json!({
            "type": "PodScheduled", "status": "True", "lastProbeTime": null,
            "lastTransitionTime": object::now(),
        }));
        new["status"]["conditions"] = json!(conditions);
        Ok(Change::Put(new))
    })
    .await?;
    Ok(crate::response::json(
        StatusCode::CREATED,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_reads_replicas_and_selector() {
        let d = json!({"metadata": {"name": "web", "namespace": "default", "resourceVersion": "7"},
                       "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}},
                       "status": {"replicas": 2}});
        let s = scale_of(&d);
        assert_eq!(s["spec"]["replicas"], 3);
        assert_eq!(s["status"]["replicas"], 2);
        assert_eq!(s["status"]["selector"], "app=web");
        assert_eq!(s["metadata"]["resourceVersion"], "7");
    }
}

//! `delete` and `deletecollection` with upstream's options: preconditions (uid,
//! resourceVersion), `gracePeriodSeconds` (a pod bound to a node is marked and left for its
//! node to stop), finalizers (the object is marked and stays until they are gone),
//! `propagationPolicy` (Foreground and Orphan add their finalizers for the garbage collector),
//! and `dryRun`.

use http::{Response, StatusCode};
use serde_json::{Value, json};

use crate::call::Call;
use crate::error::{ApiError, ApiResult, Named};
use crate::filter::Filter;
use crate::object;
use crate::response::Body;
use crate::write::{Change, guaranteed_update};

/// The options of a delete, from the body (`DeleteOptions`) and the query.
#[derive(Debug, Default, Clone, PartialEq)]
struct Options {
    grace_period: Option<i64>,
    propagation: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
}

fn options(call: &Call<'_>) -> ApiResult<Options> {
    let mut body = if call.body.is_empty() {
        Value::Null
    } else {
        call.body_value()?
    };
    // An Eviction carries its DeleteOptions inside.
    if body["kind"] == "Eviction" {
        body = body["deleteOptions"].take();
    }
    let query_grace = call
        .query
        .get("gracePeriodSeconds")
        .map(|g| {
            g.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid gracePeriodSeconds: {g:?}")))
        })
        .transpose()?;
    let propagation = body["propagationPolicy"]
        .as_str()
        .or(call.query.get("propagationPolicy"))
        .map(str::to_string);
    if let Some(p) = &propagation
        && !matches!(p.as_str(), "Orphan" | "Background" | "Foreground")
    {
        return Err(ApiError::bad_request(format!(
            "propagationPolicy: Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
        )));
    }
    Ok(Options {
        grace_period: body["gracePeriodSeconds"].as_i64().or(query_grace),
        propagation,
        uid: body["preconditions"]["uid"].as_str().map(str::to_string),
        resource_version: body["preconditions"]["resourceVersion"]
            .as_str()
            .map(str::to_string),
    })
}

/// The finalizer a propagation policy adds, if any.
fn propagation_finalizer(policy: Option<&str>) -> Option<&'static str> {
    match policy {
        Some("Foreground") => Some("foregroundDeletion"),
        Some("Orphan") => Some("orphan"),
        _ => None,
    }
}

/// Whether a pod must wait for its node before it is removed.
fn pod_grace(call: &Call<'_>, current: &Value, requested: Option<i64>) -> Option<i64> {
    if call.resource.kind != "Pod" || !call.resource.group.is_empty() {
        return None;
    }
    let bound = current["spec"]["nodeName"]
        .as_str()
        .is_some_and(|n| !n.is_empty());
    let terminal = matches!(
        current["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    );
    let grace = requested
        .or_else(|| current["spec"]["terminationGracePeriodSeconds"].as_i64())
        .unwrap_or(30);
    (bound && !terminal && grace > 0).then_some(grace)
}

/// What deleting `current` with `opts` does.
fn deletion(call: &Call<'_>, current: &Value, opts: &Options) -> ApiResult<Change> {
    let name = call.name()?;
    for (field, label, wanted) in [
        ("uid", "UID", &opts.uid),
        ("resourceVersion", "ResourceVersion", &opts.resource_version),
    ] {
        let have = object::meta_str(current, field);
        if let Some(wanted) = wanted
            && have != Some(wanted.as_str())
        {
            return Err(ApiError::conflict(
                Named::from(call.resource),
                name,
                &format!(
                    "Precondition failed: {label} in precondition: {wanted}, {label} in object meta: {}",
                    have.unwrap_or_default()
                ),
            ));
        }
    }
    let mut finalizers = object::finalizers(current);
    if let Some(f) = propagation_finalizer(opts.propagation.as_deref())
        && !object::is_deleting(current)
        && !finalizers.iter().any(|x| x == f)
    {
        finalizers.push(f.to_string());
    }
    let grace = pod_grace(call, current, opts.grace_period);
    let blocked = !finalizers.is_empty() || object::deletion_blocked(current);
    if !blocked && grace.is_none() {
        return Ok(Change::Delete);
    }
    if object::is_deleting(current) {
        // Already marked: a shorter grace period may still be asked for.
        let marked = current["metadata"]["deletionGracePeriodSeconds"].as_i64();
        // A pod's node confirming the stop (grace 0) while finalizers still hold the pod:
        // remember it, so that the pod goes once the finalizers are gone (as upstream).
        let stopped = opts.grace_period == Some(0) && call.resource.kind == "Pod";
        return match (grace, marked) {
            (None, _) if !blocked => Ok(Change::Delete),
            (None, Some(m)) if stopped && m > 0 => Ok(Change::Put(mark(current, 0, &finalizers))),
            (Some(g), Some(m)) if g < m => Ok(Change::Put(mark(current, g, &finalizers))),
            _ => Ok(Change::Put(current.clone())),
        };
    }
    Ok(Change::Put(mark(current, grace.unwrap_or(0), &finalizers)))
}

/// The object marked for deletion `grace` seconds from now.
fn mark(current: &Value, grace: i64, finalizers: &[String]) -> Value {
    let mut obj = current.clone();
    let at = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(grace))
        .unwrap_or_else(|_| jiff::Timestamp::now());
    let meta = object::meta_mut(&mut obj);
    meta.insert("deletionTimestamp".into(), json!(object::format_time(at)));
    meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
    if !finalizers.is_empty() {
        meta.insert("finalizers".into(), json!(finalizers));
    }
    // A namespace being deleted says so until its content is gone.
    if obj["kind"] == "Namespace" {
        obj["status"]["phase"] = json!("Terminating");
    }
    obj
}

/// `DELETE …/NAME`. Answers with the object: as deleted, or as marked for deletion.
pub async fn delete(call: &Call<'_>) -> ApiResult<Response<Body>> {
    let opts = options(call)?;
    let dry_run = call.dry_run()?;
    let (obj, _) =
        guaranteed_update(call, dry_run, |current| deletion(call, current, &opts)).await?;
    Ok(crate::response::json(StatusCode::OK, &obj))
}

/// `DELETE …/RESOURCE`: deletes every object the selectors select, as separate deletes.
pub async fn delete_collection(call: &Call<'_>) -> ApiResult<Response<Body>> {
    let filter = Filter::from_query(call.resource, &call.query)?;
    let opts = options(call)?;
    let dry_run = call.dry_run()?;
    let page = call
        .api
        .storage
        .list(call.resource, call.namespace(), None, 0, 0)
        .await?;
    let mut items = Vec::new();
    for obj in page
        .items
        .iter()
        .filter(|o| filter.matches(call.resource, o))
    {
        let Some(name) = object::name(obj) else {
            continue;
        };
        let one = Call {
            api: call.api,
            user: call.user.clone(),
            req: crate::request::ResourceRequest {
                name: Some(name.to_string()),
                namespace: object::namespace(obj).map(str::to_string),
                verb: "delete",
                ..call.req.clone()
            },
            resource: call.resource,
            query: call.query.clone(),
            headers: call.headers.clone(),
            body: call.body.clone(),
        };
        match guaranteed_update(&one, dry_run, |current| deletion(&one, current, &opts)).await {
            Ok((o, _)) => items.push(o),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let list = json!({
        "kind": call.resource.list_kind,
        "apiVersion": call.resource.api_version,
        "metadata": {"resourceVersion": call.api.storage.store().revision().to_string()},
        "items": items,
    });
    Ok(crate::response::json(StatusCode::OK, &list))
}

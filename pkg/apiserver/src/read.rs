//! `get` and `list`: one object, or a page of a resource's objects with selectors,
//! `limit`/`continue` and upstream's resourceVersion semantics.

use base64::Engine;
use http::{Response, StatusCode};
use serde_json::{Value, json};

use crate::call::Call;
use crate::error::{ApiError, ApiResult, Named};
use crate::filter::Filter;
use crate::negotiate::{self, Representation};
use crate::object;
use crate::response::{self, Body};
use crate::storage;
use crate::watch_cache::Entry;

/// `GET …/NAME`.
pub async fn get(call: &Call<'_>) -> ApiResult<Response<Body>> {
    let obj = call.current().await?;
    Ok(call.respond_object(StatusCode::OK, &obj))
}

/// A continue token: where the next page starts and the revision the list is read at.
#[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
struct Continue {
    rv: i64,
    start: String,
}

fn encode_continue(revision: i64, next_key: &[u8]) -> String {
    let token = Continue {
        rv: revision,
        start: String::from_utf8_lossy(next_key).into_owned(),
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&token).unwrap_or_default())
}

fn decode_continue(token: &str, prefix: &[u8]) -> ApiResult<Continue> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {token:?}"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let c: Continue = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if !c.start.as_bytes().starts_with(prefix) || c.rv <= 0 {
        return Err(bad());
    }
    Ok(c)
}

/// The revision a list reads at, from `resourceVersion` and `resourceVersionMatch`.
fn list_revision(call: &Call<'_>) -> ApiResult<i64> {
    let rv = call.query.get("resourceVersion");
    let matching = call.query.get("resourceVersionMatch");
    let parsed = rv
        .map(object::parse_resource_version)
        .transpose()
        .map_err(ApiError::bad_request)?;
    match (matching, parsed) {
        (Some("Exact"), Some(n)) if n > 0 => Ok(n),
        (Some("Exact"), _) => Err(ApiError::bad_request(
            "resourceVersionMatch: Exact requires a non-zero resourceVersion",
        )),
        (Some("NotOlderThan") | None, _) => Ok(0),
        (Some(other), _) => Err(ApiError::bad_request(format!(
            "resourceVersionMatch: unsupported value {other:?}"
        ))),
    }
}

/// The revision a list from the watch cache must reflect, or `None` when the cache cannot
/// answer (a continued list or an exact past revision: those read the store at their
/// revision, which is also how the pages after a first page from the cache are read).
async fn cache_target(call: &Call<'_>) -> ApiResult<Option<i64>> {
    if call.query.get("continue").is_some()
        || call.query.get("resourceVersionMatch") == Some("Exact")
    {
        return Ok(None);
    }
    match call.query.get("resourceVersion") {
        // Any version will do (informers start this way).
        Some("0") => Ok(Some(0)),
        // At least this one.
        Some(v) => Ok(Some(
            object::parse_resource_version(v).map_err(ApiError::bad_request)?,
        )),
        // The newest: what the store has committed when the request arrived.
        None => {
            let store = call.api.storage.store();
            store.read_barrier().await?;
            Ok(Some(store.revision()))
        }
    }
}

/// Answers a list from the watch cache, each object's JSON as the cache encoded it.
async fn list_from_cache(
    call: &Call<'_>,
    filter: &Filter,
    limit: i64,
    at_least: i64,
) -> ApiResult<Response<Body>> {
    let cache = call.api.caches.get(call.resource).await?;
    cache.sync(at_least).await?;
    let prefix = storage::prefix(call.resource, call.namespace());
    let page = cache.page(&prefix, usize::try_from(limit).unwrap_or(0), |e| {
        filter.matches_entry(e)
    });
    let mut metadata = json!({ "resourceVersion": page.revision.to_string() });
    if let Some(k) = &page.next_key {
        metadata["continue"] = json!(encode_continue(page.revision, k));
        if filter.is_everything() {
            metadata["remainingItemCount"] = json!(page.remaining);
        }
    }
    if let Representation::Table(_) = negotiate::representation(&call.headers) {
        let list = json!({
            "kind": call.resource.list_kind,
            "apiVersion": call.resource.api_version,
            "metadata": metadata,
            "items": page.items.iter().map(|e| e.value()).collect::<Vec<_>>(),
        });
        return Ok(call.respond_list(&list));
    }
    let selected: Vec<&Entry> = page.items.iter().map(AsRef::as_ref).collect();
    let head = json!({
        "kind": call.resource.list_kind,
        "apiVersion": call.resource.api_version,
        "metadata": metadata,
    });
    let mut body = serde_json::to_vec(&head).unwrap_or_default();
    body.pop();
    body.extend_from_slice(b",\"items\":[");
    for (i, e) in selected.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&e.json);
    }
    body.extend_from_slice(b"]}");
    Ok(response::with_type(
        StatusCode::OK,
        "application/json",
        body,
    ))
}

/// `GET …/RESOURCE`: a page of the objects the selectors select.
pub async fn list(call: &Call<'_>) -> ApiResult<Response<Body>> {
    let filter = Filter::from_query(call.resource, &call.query)?;
    let limit: i64 = match call.query.get("limit") {
        Some(l) => l
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid limit: {l:?}")))?,
        None => 0,
    };
    if let Some(at_least) = cache_target(call).await? {
        return list_from_cache(call, &filter, limit, at_least).await;
    }
    let namespace = call.req.namespace.as_deref();
    let prefix = storage::prefix(call.resource, namespace);
    let (mut start, mut revision) = match call.query.get("continue") {
        Some(token) => {
            let c = decode_continue(token, &prefix)?;
            (Some(c.start.into_bytes()), c.rv)
        }
        None => (None, list_revision(call)?),
    };
    let mut items = Vec::new();
    let mut next = None;
    let mut remaining = 0;
    loop {
        let want = if limit > 0 {
            limit - items.len() as i64
        } else {
            0
        };
        let page = call
            .api
            .storage
            .list(call.resource, namespace, start.take(), revision, want)
            .await
            .map_err(|e| expired_continue(e, call))?;
        revision = page.revision;
        items.extend(
            page.items
                .into_iter()
                .filter(|o| filter.matches(call.resource, o)),
        );
        match page.next_key {
            Some(k) if limit > 0 && (items.len() as i64) < limit => start = Some(k),
            Some(k) => {
                next = Some(k);
                remaining = page.remaining;
                break;
            }
            None => break,
        }
    }
    let mut metadata = json!({ "resourceVersion": revision.to_string() });
    if let Some(k) = next {
        metadata["continue"] = json!(encode_continue(revision, &k));
        if filter.is_everything() {
            metadata["remainingItemCount"] = json!(remaining);
        }
    }
    let list = json!({
        "kind": call.resource.list_kind,
        "apiVersion": call.resource.api_version,
        "metadata": metadata,
        "items": items,
    });
    Ok(call.respond_list(&list))
}

fn expired_continue(e: ApiError, call: &Call<'_>) -> ApiError {
    if e.code == 410 && call.query.get("continue").is_some() {
        return ApiError::expired(
            "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
        );
    }
    if e.code == 410 {
        return ApiError::expired("The resourceVersion for the provided list is too old.");
    }
    e
}

/// The object addressed, or NotFound.
pub async fn current(call: &Call<'_>) -> ApiResult<Value> {
    let name = call.name()?;
    call.api
        .storage
        .get(call.resource, call.req.namespace.as_deref(), name)
        .await?
        .ok_or_else(|| ApiError::not_found(Named::from(call.resource), name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_are_checked() {
        let t = encode_continue(42, b"/registry/pods/default/web\0");
        let c = decode_continue(&t, b"/registry/pods/default/").unwrap();
        assert_eq!(c.rv, 42);
        assert!(decode_continue(&t, b"/registry/secrets/").is_err());
        assert!(decode_continue("garbage", b"/registry/pods/").is_err());
    }
}

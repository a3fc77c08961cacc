//! Namespace lifecycle: a namespace being deleted (Terminating) has its content deleted, kind
//! by kind; once nothing is left the `kubernetes` finalizer is removed through
//! `namespaces/NAME/finalize`, and the API server deletes the namespace.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_client::{Api, Client, DeleteParams, Event, ListParams, Object, WatchParams, watch_list};
use futures::StreamExt;
use k8s_openapi::Metadata;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{Namespace, NamespaceSpec};
use k8s_openapi::api::{apps, batch, coordination, core, discovery};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use tokio_util::sync::CancellationToken;

/// How long to wait between passes over a namespace whose content is still going away.
const RECHECK: Duration = Duration::from_secs(1);

/// Runs the namespace controller until `shutdown`.
pub async fn run(client: Client, shutdown: CancellationToken) {
    let mut events = Box::pin(watch_list(
        Api::<Namespace>::cluster(client.clone()),
        WatchParams::default(),
    ));
    let in_progress: Arc<Mutex<HashSet<String>>> = Arc::default();
    loop {
        let namespaces = tokio::select! {
            _ = shutdown.cancelled() => return,
            event = events.next() => match event {
                Some(Event::Init(all)) => all,
                Some(Event::Applied(ns)) => vec![ns],
                Some(Event::Deleted(_)) => continue,
                None => return,
            },
        };
        for ns in namespaces {
            let Some(name) = ns.metadata.name.clone() else {
                continue;
            };
            let terminating = ns.metadata.deletion_timestamp.is_some();
            if !terminating || !in_progress.lock().expect("lock").insert(name.clone()) {
                continue;
            }
            let client = client.clone();
            let in_progress = in_progress.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = empty_and_finalize(&client, &name) => {}
                }
                in_progress.lock().expect("lock").remove(&name);
            });
        }
    }
}

/// Deletes everything in namespace `name` until nothing is left, then finalizes it.
async fn empty_and_finalize(client: &Client, name: &str) {
    loop {
        match remaining(client, name).await {
            Ok(0) => break,
            Ok(n) => tracing::debug!(
                namespace = name,
                remaining = n,
                "namespace still has content"
            ),
            Err(e) => {
                tracing::debug!(namespace = name, error = %e, "emptying the namespace failed")
            }
        }
        tokio::time::sleep(RECHECK).await;
    }
    let api = Api::<Namespace>::cluster(client.clone());
    let finalized = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..Default::default()
        },
        spec: Some(NamespaceSpec {
            finalizers: Some(Vec::new()),
        }),
        status: None,
    };
    match api.replace_subresource(name, "finalize", &finalized).await {
        Ok(_) => tracing::info!(namespace = name, "namespace emptied and finalized"),
        Err(e) if e.is_not_found() => {}
        Err(e) => tracing::warn!(namespace = name, error = %e, "finalizing the namespace failed"),
    }
}

/// Deletes what is left of every namespaced kind; the number of objects still there.
async fn remaining(client: &Client, ns: &str) -> cairn_client::Result<usize> {
    Ok(delete_all::<core::v1::Pod>(client, ns).await?
        + delete_all::<core::v1::Service>(client, ns).await?
        + delete_all::<core::v1::Endpoints>(client, ns).await?
        + delete_all::<core::v1::ConfigMap>(client, ns).await?
        + delete_all::<core::v1::Secret>(client, ns).await?
        + delete_all::<core::v1::ServiceAccount>(client, ns).await?
        + delete_all::<core::v1::Event>(client, ns).await?
        + delete_all::<apps::v1::Deployment>(client, ns).await?
        + delete_all::<apps::v1::ReplicaSet>(client, ns).await?
        + delete_all::<apps::v1::StatefulSet>(client, ns).await?
        + delete_all::<apps::v1::DaemonSet>(client, ns).await?
        + delete_all::<apps::v1::ControllerRevision>(client, ns).await?
        + delete_all::<batch::v1::Job>(client, ns).await?
        + delete_all::<batch::v1::CronJob>(client, ns).await?
        + delete_all::<coordination::v1::Lease>(client, ns).await?
        + delete_all::<discovery::v1::EndpointSlice>(client, ns).await?)
}

/// Deletes the objects of kind `K` in `ns` not already being deleted; how many there were.
async fn delete_all<K>(client: &Client, ns: &str) -> cairn_client::Result<usize>
where
    K: Object + Metadata<Ty = ObjectMeta, Scope = NamespaceResourceScope>,
{
    let api = Api::<K>::namespaced(client.clone(), ns);
    let items = api.list(&ListParams::default()).await?.items;
    for item in &items {
        let meta = item.metadata();
        if meta.deletion_timestamp.is_some() {
            continue;
        }
        let Some(name) = meta.name.as_deref() else {
            continue;
        };
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(items.len())
}

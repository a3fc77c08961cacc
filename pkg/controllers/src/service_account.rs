//! The ServiceAccount controller: every namespace that is not being deleted has a
//! ServiceAccount named `default`, recreated if deleted.

use std::sync::Arc;
use std::time::Duration;

use cairn_client::{Api, Client, ObjectKey, Store};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::error::Result;
use crate::informer::Change;
use crate::queue::Queue;
use crate::reconcile::Reconcile;
use crate::{Informers, meta};

/// The name of the ServiceAccount every namespace gets.
pub const DEFAULT: &str = "default";

/// The ServiceAccount controller; keys are namespace names.
pub struct ServiceAccountController {
    client: Client,
    namespaces: Store<Namespace>,
    accounts: Store<ServiceAccount>,
}

impl ServiceAccountController {
    /// The controller, with its handlers registered on `informers` feeding `queue`.
    pub fn new(client: Client, informers: &Informers, queue: &Queue<ObjectKey>) -> Arc<Self> {
        let key = |ns: &str| ObjectKey {
            namespace: None,
            name: ns.to_string(),
        };
        let q = queue.clone();
        informers
            .namespaces
            .on_change(move |change| q.add(key(meta::name(&change.object().metadata))));
        let q = queue.clone();
        informers
            .service_accounts
            .on_change(move |change: Change<'_, ServiceAccount>| {
                if let Change::Deleted(sa) = change
                    && meta::name(&sa.metadata) == DEFAULT
                {
                    q.add(key(meta::namespace(&sa.metadata)));
                }
            });
        Arc::new(ServiceAccountController {
            client,
            namespaces: informers.namespaces.store().clone(),
            accounts: informers.service_accounts.store().clone(),
        })
    }
}

impl Reconcile for ServiceAccountController {
    type Key = ObjectKey;
    const NAME: &'static str = "serviceaccount";

    async fn reconcile(&self, key: &ObjectKey) -> Result<Option<Duration>> {
        let Some(ns) = self.namespaces.get(None, &key.name) else {
            return Ok(None);
        };
        if meta::is_deleting(&ns.metadata) || self.accounts.get(Some(&key.name), DEFAULT).is_some()
        {
            return Ok(None);
        }
        let api = Api::<ServiceAccount>::namespaced(self.client.clone(), &key.name);
        let sa = ServiceAccount {
            metadata: ObjectMeta {
                name: Some(DEFAULT.into()),
                namespace: Some(key.name.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        match api.create(&sa).await {
            Ok(_) => Ok(None),
            Err(e) if e.is_already_exists() => Ok(None),
            // The namespace started terminating meanwhile.
            Err(e) if e.status().is_some_and(|s| s.code == 403) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

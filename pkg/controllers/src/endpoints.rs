//! The Endpoints and EndpointSlice controllers, as one: for every Service with a selector, the
//! pods it selects that have an IP become its endpoints. The `Endpoints` object of the same
//! name lists ready pods as `addresses` and the others as `notReadyAddresses`; the
//! EndpointSlices (label `kubernetes.io/service-name`, managed by
//! `endpointslice-controller.k8s.io`, owned by the Service) list them with `ready`, `serving`
//! and `terminating` conditions. Pods whose named target ports resolve to different numbers
//! are grouped, one subset and one slice per set of ports, as upstream groups them. Services
//! without a selector are left to whoever writes their endpoints.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cairn_client::{Api, Client, DeleteParams, ObjectKey, Store};
use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
    ServicePort,
};
use k8s_openapi::api::discovery::v1::{self as discovery, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::error::Result;
use crate::expectations::Expectations;
use crate::informer::Change;
use crate::queue::Queue;
use crate::reconcile::Reconcile;
use crate::{Informers, meta, pods};

/// The label naming a slice's Service.
pub const SERVICE_NAME: &str = "kubernetes.io/service-name";
/// The label naming a slice's controller.
pub const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
/// Our value of [`MANAGED_BY`], upstream's.
pub const CONTROLLER: &str = "endpointslice-controller.k8s.io";

/// The endpoints controller; keys are Services.
pub struct EndpointsController {
    client: Client,
    services: Store<Service>,
    pods: Store<Pod>,
    endpoints: Store<Endpoints>,
    slices: Store<EndpointSlice>,
    expectations: Expectations,
}

fn selects(svc: &Service, pod: &Pod) -> bool {
    let Some(selector) = svc.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return false;
    };
    !selector.is_empty()
        && meta::namespace(&svc.metadata) == meta::namespace(&pod.metadata)
        && selector
            .iter()
            .all(|(k, v)| meta::labels(&pod.metadata).get(k) == Some(v))
}

impl EndpointsController {
    /// The controller, with its handlers registered on `informers` feeding `queue`.
    pub fn new(client: Client, informers: &Informers, queue: &Queue<ObjectKey>) -> Arc<Self> {
        let q = queue.clone();
        informers
            .services
            .on_change(move |change| q.add(meta::key(&change.object().metadata)));
        let q = queue.clone();
        let services = informers.services.store().clone();
        informers.pods.on_change(move |change: Change<'_, Pod>| {
            for svc in services.list() {
                let now = selects(&svc, change.object());
                let before = change.old().is_some_and(|o| selects(&svc, o));
                if now || before {
                    q.add(meta::key(&svc.metadata));
                }
            }
        });
        let q = queue.clone();
        informers
            .endpoints
            .on_change(move |change: Change<'_, Endpoints>| {
                q.add(meta::key(&change.object().metadata));
            });
        let q = queue.clone();
        informers
            .endpoint_slices
            .on_change(move |change: Change<'_, EndpointSlice>| {
                let m = &change.object().metadata;
                if let Some(svc) = meta::labels(m).get(SERVICE_NAME) {
                    q.add(ObjectKey {
                        namespace: m.namespace.clone(),
                        name: svc.clone(),
                    });
                }
            });
        Arc::new(EndpointsController {
            client,
            services: informers.services.store().clone(),
            pods: informers.pods.store().clone(),
            endpoints: informers.endpoints.store().clone(),
            slices: informers.endpoint_slices.store().clone(),
            expectations: Expectations::default(),
        })
    }
}

/// The pod's port for a Service port's target (a number, or a container port's name).
fn target_port(pod: &Pod, port: &ServicePort) -> Option<i32> {
    match &port.target_port {
        None => Some(port.port),
        Some(IntOrString::Int(p)) => Some(*p),
        Some(IntOrString::String(name)) => pod
            .spec
            .as_ref()?
            .containers
            .iter()
            .flat_map(|c| c.ports.iter().flatten())
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .map(|p| p.container_port),
    }
}

/// A resolved port: name, number, protocol.
type Port = (Option<String>, i32, String);

/// A new EndpointSlice of Service `svc` (named `name`), owned by it and labelled as upstream's
/// controller labels its slices.
fn new_slice(
    svc: &Service,
    name: &str,
    endpoints: Vec<discovery::Endpoint>,
    ports: Option<Vec<discovery::EndpointPort>>,
) -> EndpointSlice {
    let mut labels = svc.metadata.labels.clone().unwrap_or_default();
    labels.insert(SERVICE_NAME.into(), name.to_string());
    labels.insert(MANAGED_BY.into(), CONTROLLER.into());
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(pods::generate_name_prefix(name)),
            namespace: svc.metadata.namespace.clone(),
            labels: Some(labels),
            owner_references: Some(vec![meta::controller_ref::<Service>(&svc.metadata)]),
            ..Default::default()
        },
        address_type: "IPv4".into(),
        endpoints,
        ports,
    }
}

/// The most addresses an `Endpoints` object holds (upstream's `maxCapacity`); beyond it the
/// object is truncated and says so in [`OVER_CAPACITY`].
pub const MAX_ENDPOINTS_ADDRESSES: usize = 1000;
/// The annotation of a truncated `Endpoints` object, upstream's, with the value `truncated`.
pub const OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";

/// Cuts `subsets` down to `max` addresses, as upstream does: ready addresses are kept before
/// not-ready ones, and each subset keeps a share in proportion to its size. Returns whether
/// anything was cut.
fn truncate(subsets: &mut [EndpointSubset], max: usize) -> bool {
    let count = |v: &Option<Vec<EndpointAddress>>| v.as_ref().map_or(0, Vec::len);
    let ready: usize = subsets.iter().map(|s| count(&s.addresses)).sum();
    let not_ready: usize = subsets.iter().map(|s| count(&s.not_ready_addresses)).sum();
    if ready + not_ready <= max {
        return false;
    }
    // Ready addresses fill the room first; not-ready ones get what is left.
    let keep_within = |subsets: &mut [EndpointSubset], total: usize, room: usize, ready: bool| {
        let mut left = room;
        let n = subsets.len();
        for (i, subset) in subsets.iter_mut().enumerate() {
            let list = if ready {
                &mut subset.addresses
            } else {
                &mut subset.not_ready_addresses
            };
            let size = count(list);
            let share = if i + 1 == n {
                left
            } else {
                (size * room).div_ceil(total.max(1))
            }
            .min(size)
            .min(left);
            if let Some(l) = list.as_mut() {
                l.truncate(share);
            }
            if list.as_ref().is_some_and(Vec::is_empty) {
                *list = None;
            }
            left -= share;
        }
    };
    let ready_room = ready.min(max);
    keep_within(subsets, ready, ready_room, true);
    keep_within(subsets, not_ready, max - ready_room, false);
    true
}

/// The most endpoints one slice holds (upstream's `--max-endpoints-per-slice` default).
pub const MAX_PER_SLICE: usize = 100;

/// Which endpoint goes in which slice: one list per slice of `slices` (in order; an empty list
/// means the slice is no longer needed), then one per slice to create. An endpoint stays in the
/// slice that holds its pod; the others fill the slices with room, then new slices.
fn pack(
    slices: &[Arc<EndpointSlice>],
    endpoints: Vec<discovery::Endpoint>,
) -> Vec<Vec<discovery::Endpoint>> {
    let uid = |e: &discovery::Endpoint| e.target_ref.as_ref().and_then(|r| r.uid.clone());
    let mut layout: Vec<Vec<discovery::Endpoint>> = vec![Vec::new(); slices.len()];
    let mut homeless = Vec::new();
    for endpoint in endpoints {
        let id = uid(&endpoint);
        let home = id.as_ref().and_then(|id| {
            slices.iter().zip(&layout).position(|(s, l)| {
                l.len() < MAX_PER_SLICE && s.endpoints.iter().any(|e| uid(e).as_ref() == Some(id))
            })
        });
        match home {
            Some(i) => layout[i].push(endpoint),
            None => homeless.push(endpoint),
        }
    }
    for endpoint in homeless {
        match layout.iter().position(|l| l.len() < MAX_PER_SLICE) {
            Some(i) => layout[i].push(endpoint),
            None => layout.push(vec![endpoint]),
        }
    }
    layout
}

fn pod_ref(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        name: pod.metadata.name.clone(),
        namespace: pod.metadata.namespace.clone(),
        uid: pod.metadata.uid.clone(),
        ..Default::default()
    }
}

impl Reconcile for EndpointsController {
    type Key = ObjectKey;
    const NAME: &'static str = "endpoints";

    async fn reconcile(&self, key: &ObjectKey) -> Result<Option<Duration>> {
        let ns = key.namespace.as_deref().unwrap_or_default();
        let ep_api = Api::<Endpoints>::namespaced(self.client.clone(), ns);
        let Some(svc) = self.services.get(Some(ns), &key.name) else {
            // The slices go with their owner (garbage collector); Endpoints have none.
            if self.endpoints.get(Some(ns), &key.name).is_some() {
                match ep_api.delete(&key.name, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e.into()),
                }
            }
            self.expectations.forget(key);
            return Ok(None);
        };
        let spec = svc.spec.clone().unwrap_or_default();
        if spec.selector.as_ref().is_none_or(|s| s.is_empty()) || meta::is_deleting(&svc.metadata) {
            return Ok(None);
        }
        let publish_not_ready = spec.publish_not_ready_addresses == Some(true);
        let ports = spec.ports.clone().unwrap_or_default();
        // Pods grouped by their resolved ports.
        let mut groups: BTreeMap<Vec<Port>, Vec<Arc<Pod>>> = BTreeMap::new();
        let mut selected: Vec<Arc<Pod>> = self
            .pods
            .list()
            .into_iter()
            .filter(|p| selects(&svc, p) && !pods::is_terminal(p))
            .filter(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.pod_ip.as_deref())
                    .is_some_and(|ip| !ip.is_empty())
            })
            .collect();
        selected.sort_by(|a, b| meta::name(&a.metadata).cmp(meta::name(&b.metadata)));
        for pod in selected {
            let resolved: Option<Vec<Port>> = ports
                .iter()
                .map(|p| {
                    target_port(&pod, p).map(|n| {
                        (
                            p.name.clone(),
                            n,
                            p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                        )
                    })
                })
                .collect();
            if let Some(resolved) = resolved {
                groups.entry(resolved).or_default().push(pod);
            }
        }
        let ready =
            |p: &Pod| (pods::is_ready(p) || publish_not_ready) && !meta::is_deleting(&p.metadata);
        let address = |p: &Pod| EndpointAddress {
            ip: p
                .status
                .as_ref()
                .and_then(|s| s.pod_ip.clone())
                .unwrap_or_default(),
            node_name: pods::node_name(p).map(str::to_string),
            target_ref: Some(pod_ref(p)),
            hostname: None,
        };

        // Endpoints.
        let mut subsets: Vec<EndpointSubset> = groups
            .iter()
            .map(|(ports, members)| {
                let (up, down): (Vec<_>, Vec<_>) = members.iter().partition(|p| ready(p));
                EndpointSubset {
                    addresses: (!up.is_empty()).then(|| up.iter().map(|p| address(p)).collect()),
                    not_ready_addresses: (!down.is_empty())
                        .then(|| down.iter().map(|p| address(p)).collect()),
                    ports: Some(
                        ports
                            .iter()
                            .map(|(name, port, protocol)| EndpointPort {
                                name: name.clone(),
                                port: *port,
                                protocol: Some(protocol.clone()),
                                app_protocol: None,
                            })
                            .collect(),
                    ),
                }
            })
            .collect();
        let truncated = truncate(&mut subsets, MAX_ENDPOINTS_ADDRESSES);
        let mut labels = svc.metadata.labels.clone().unwrap_or_default();
        labels.insert(
            "endpoints.kubernetes.io/managed-by".into(),
            "endpoint-controller".into(),
        );
        let current = self.endpoints.get(Some(ns), &key.name);
        let wanted_subsets = (!subsets.is_empty()).then_some(subsets);
        match current {
            None => {
                let ep = Endpoints {
                    metadata: ObjectMeta {
                        name: Some(key.name.clone()),
                        namespace: Some(ns.to_string()),
                        labels: Some(labels),
                        annotations: truncated
                            .then(|| [(OVER_CAPACITY.to_string(), "truncated".to_string())].into()),
                        ..Default::default()
                    },
                    subsets: wanted_subsets,
                };
                match ep_api.create(&ep).await {
                    Ok(_) => {}
                    Err(e) if e.is_already_exists() => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Some(ep)
                if ep.subsets != wanted_subsets
                    || meta::annotation(&ep.metadata, OVER_CAPACITY).is_some() != truncated =>
            {
                let mut updated = (*ep).clone();
                updated.subsets = wanted_subsets;
                let annotations = updated.metadata.annotations.get_or_insert_default();
                if truncated {
                    annotations.insert(OVER_CAPACITY.into(), "truncated".into());
                } else {
                    annotations.remove(OVER_CAPACITY);
                }
                ep_api.replace(&key.name, &updated).await?;
            }
            Some(_) => {}
        }

        // EndpointSlices: one per group of ports.
        if !self.expectations.satisfied(key, &self.slices) {
            return Ok(Some(Duration::from_secs(1)));
        }
        let slice_api = Api::<EndpointSlice>::namespaced(self.client.clone(), ns);
        let mut existing: Vec<Arc<EndpointSlice>> = self
            .slices
            .list()
            .into_iter()
            .filter(|s| {
                let l = meta::labels(&s.metadata);
                meta::namespace(&s.metadata) == ns
                    && l.get(SERVICE_NAME) == Some(&key.name)
                    && l.get(MANAGED_BY).map(String::as_str) == Some(CONTROLLER)
            })
            .collect();
        existing.sort_by(|a, b| meta::name(&a.metadata).cmp(meta::name(&b.metadata)));
        for (ports, members) in &groups {
            let wanted_ports: Vec<discovery::EndpointPort> = ports
                .iter()
                .map(|(name, port, protocol)| discovery::EndpointPort {
                    name: name.clone(),
                    port: Some(*port),
                    protocol: Some(protocol.clone()),
                    app_protocol: None,
                })
                .collect();
            let endpoints: Vec<discovery::Endpoint> = members
                .iter()
                .map(|p| discovery::Endpoint {
                    addresses: vec![
                        p.status
                            .as_ref()
                            .and_then(|s| s.pod_ip.clone())
                            .unwrap_or_default(),
                    ],
                    conditions: Some(discovery::EndpointConditions {
                        ready: Some(ready(p)),
                        serving: Some(pods::is_ready(p)),
                        terminating: Some(meta::is_deleting(&p.metadata)),
                    }),
                    node_name: pods::node_name(p).map(str::to_string),
                    target_ref: Some(pod_ref(p)),
                    ..Default::default()
                })
                .collect();
            // The slices of these ports keep the endpoints they already hold (no churn for a
            // pod that stays); the rest fill slices with room, then new ones, at most
            // MAX_PER_SLICE each, as upstream's controller packs them.
            let mut slices: Vec<Arc<EndpointSlice>> = Vec::new();
            while let Some(i) = existing
                .iter()
                .position(|s| s.ports.as_ref() == Some(&wanted_ports))
            {
                slices.push(existing.remove(i));
            }
            if slices.is_empty() && !existing.is_empty() {
                slices.push(existing.remove(0));
            }
            let layout = pack(&slices, endpoints);
            for (i, content) in layout.into_iter().enumerate() {
                match slices.get(i) {
                    Some(slice) if content.is_empty() => existing.push(slice.clone()),
                    Some(slice) => {
                        if slice.endpoints != content || slice.ports.as_ref() != Some(&wanted_ports)
                        {
                            let mut updated = (**slice).clone();
                            updated.endpoints = content;
                            updated.ports = Some(wanted_ports.clone());
                            let written = slice_api
                                .replace(meta::name(&slice.metadata), &updated)
                                .await?;
                            self.expectations.written(key, &written.metadata);
                        }
                    }
                    None => {
                        let slice = new_slice(&svc, &key.name, content, Some(wanted_ports.clone()));
                        let created = slice_api.create(&slice).await?;
                        self.expectations.written(key, &created.metadata);
                    }
                }
            }
        }
        // A Service with no endpoints keeps one empty slice, as upstream does.
        if groups.is_empty()
            && existing.is_empty()
            && self.slices.list().iter().all(|s| {
                meta::labels(&s.metadata).get(SERVICE_NAME) != Some(&key.name)
                    || meta::namespace(&s.metadata) != ns
            })
        {
            let slice = new_slice(&svc, &key.name, Vec::new(), None);
            let created = slice_api.create(&slice).await?;
            self.expectations.written(key, &created.metadata);
        } else if groups.is_empty() {
            // Keep the first as the empty slice; the rest go.
            if let Some(first) = existing.first().cloned() {
                existing.remove(0);
                if !first.endpoints.is_empty() {
                    let mut updated = (*first).clone();
                    updated.endpoints = Vec::new();
                    updated.ports = None;
                    let written = slice_api
                        .replace(meta::name(&first.metadata), &updated)
                        .await?;
                    self.expectations.written(key, &written.metadata);
                }
            }
        }
        for stale in existing {
            match slice_api
                .delete(meta::name(&stale.metadata), &DeleteParams::default())
                .await
            {
                Ok(_) => self.expectations.deleted(key, &stale.metadata),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(uid: usize) -> discovery::Endpoint {
        discovery::Endpoint {
            addresses: vec![format!("10.0.{}.{}", uid / 256, uid % 256)],
            target_ref: Some(ObjectReference {
                uid: Some(uid.to_string()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn slice(uids: impl Iterator<Item = usize>) -> Arc<EndpointSlice> {
        Arc::new(EndpointSlice {
            endpoints: uids.map(endpoint).collect(),
            ..Default::default()
        })
    }

    fn sizes(layout: &[Vec<discovery::Endpoint>]) -> Vec<usize> {
        layout.iter().map(Vec::len).collect()
    }

    #[test]
    fn endpoints_are_split_at_a_hundred_per_slice() {
        assert_eq!(
            sizes(&pack(&[], (0..250).map(endpoint).collect())),
            [100, 100, 50]
        );
        assert_eq!(sizes(&pack(&[], (0..100).map(endpoint).collect())), [100]);
    }

    #[test]
    fn endpoints_stay_in_their_slice_and_newcomers_fill_room_first() {
        // Two slices of 100 and 30; pod 5 left, 50 pods came.
        let slices = [slice(0..100), slice(100..130)];
        let wanted = (0..130).filter(|&u| u != 5).chain(130..180).map(endpoint);
        let layout = pack(&slices, wanted.collect());
        assert_eq!(sizes(&layout), [100, 79]);
        // The first slice kept its 99 and took one newcomer; nobody moved between slices.
        assert!(
            (0..100)
                .filter(|&u| u != 5)
                .all(|u| layout[0].contains(&endpoint(u)))
        );
        assert!((100..130).all(|u| layout[1].contains(&endpoint(u))));
    }

    #[test]
    fn a_slice_whose_pods_all_left_is_emptied() {
        let slices = [slice(0..10), slice(10..20)];
        let layout = pack(&slices, (10..20).map(endpoint).collect());
        assert_eq!(sizes(&layout), [0, 10]);
    }

    fn subset(ready: usize, not_ready: usize) -> EndpointSubset {
        let addresses = |n: usize| {
            (n > 0).then(|| {
                (0..n)
                    .map(|i| EndpointAddress {
                        ip: format!("10.1.{}.{}", i / 256, i % 256),
                        ..Default::default()
                    })
                    .collect()
            })
        };
        EndpointSubset {
            addresses: addresses(ready),
            not_ready_addresses: addresses(not_ready),
            ports: None,
        }
    }

    fn counts(subsets: &[EndpointSubset]) -> Vec<(usize, usize)> {
        let n = |v: &Option<Vec<EndpointAddress>>| v.as_ref().map_or(0, Vec::len);
        subsets
            .iter()
            .map(|s| (n(&s.addresses), n(&s.not_ready_addresses)))
            .collect()
    }

    #[test]
    fn endpoints_within_capacity_are_left_alone() {
        let mut subsets = vec![subset(600, 400)];
        assert!(!truncate(&mut subsets, MAX_ENDPOINTS_ADDRESSES));
        assert_eq!(counts(&subsets), [(600, 400)]);
    }

    #[test]
    fn endpoints_over_capacity_keep_ready_addresses_first() {
        let mut subsets = vec![subset(900, 300)];
        assert!(truncate(&mut subsets, MAX_ENDPOINTS_ADDRESSES));
        assert_eq!(counts(&subsets), [(900, 100)]);
        let mut subsets = vec![subset(1200, 50)];
        assert!(truncate(&mut subsets, MAX_ENDPOINTS_ADDRESSES));
        assert_eq!(counts(&subsets), [(1000, 0)]);
    }

    #[test]
    fn endpoints_over_capacity_are_cut_in_proportion_across_subsets() {
        let mut subsets = vec![subset(800, 0), subset(400, 0)];
        assert!(truncate(&mut subsets, MAX_ENDPOINTS_ADDRESSES));
        assert_eq!(counts(&subsets), [(667, 0), (333, 0)]);
    }
}

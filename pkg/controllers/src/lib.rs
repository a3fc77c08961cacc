//! cairn-controllers: the control loops of the controller manager, each a client of the
//! Kubernetes API (cairn-client) that watches objects and drives them toward their spec. They
//! never touch the store; `cairn server` runs them while it holds the controller manager's
//! Lease (ADR 011).
//!
//! Every controller has one shape (ADR 015): shared [`informer`]s keep caches of the
//! resources and call handlers on changes; handlers queue object keys on the controller's
//! [`queue`]; workers take keys and run the controller's level-triggered [`reconcile`] step
//! against the caches, writing through the API. Controllers: ReplicaSet, Deployment, Job,
//! CronJob, DaemonSet, StatefulSet, Endpoints and EndpointSlices, garbage collector, node lifecycle (with taint-based eviction), pod GC,
//! the `default` ServiceAccount, namespace lifecycle.

pub mod claim;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod endpoints;
pub mod error;
pub mod expectations;
pub mod gc;
pub mod history;
pub mod informer;
pub mod job;
pub mod job_index;
pub mod meta;
pub mod namespace;
pub mod node_lifecycle;
pub mod nodes;
pub mod pod_failure_policy;
pub mod pod_gc;
pub mod pods;
pub mod queue;
pub mod reconcile;
pub mod replicaset;
pub mod service_account;
pub mod statefulset;
pub mod template;

use cairn_client::{Api, Client};
use k8s_openapi::api::{apps, batch, coordination, core, discovery};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use error::{Error, Result};
pub use informer::{Change, Informer};
pub use queue::Queue;
pub use reconcile::{Reconcile, run_workers};

/// The Lease the active controller manager holds.
pub const LEASE: &str = "kube-controller-manager";

/// The informers the controllers share: one list-and-watch per resource.
pub struct Informers {
    /// Pods in every namespace.
    pub pods: Informer<core::v1::Pod>,
    /// ReplicaSets.
    pub replica_sets: Informer<apps::v1::ReplicaSet>,
    /// Deployments.
    pub deployments: Informer<apps::v1::Deployment>,
    /// StatefulSets.
    pub stateful_sets: Informer<apps::v1::StatefulSet>,
    /// DaemonSets.
    pub daemon_sets: Informer<apps::v1::DaemonSet>,
    /// ControllerRevisions (the template history of DaemonSets and StatefulSets).
    pub controller_revisions: Informer<apps::v1::ControllerRevision>,
    /// Jobs.
    pub jobs: Informer<batch::v1::Job>,
    /// CronJobs.
    pub cron_jobs: Informer<batch::v1::CronJob>,
    /// Nodes.
    pub nodes: Informer<core::v1::Node>,
    /// Leases (the nodes' heartbeats live in `kube-node-lease`).
    pub leases: Informer<coordination::v1::Lease>,
    /// Namespaces.
    pub namespaces: Informer<core::v1::Namespace>,
    /// ServiceAccounts.
    pub service_accounts: Informer<core::v1::ServiceAccount>,
    /// Services.
    pub services: Informer<core::v1::Service>,
    /// Endpoints.
    pub endpoints: Informer<core::v1::Endpoints>,
    /// EndpointSlices.
    pub endpoint_slices: Informer<discovery::v1::EndpointSlice>,
}

impl Informers {
    /// Informers for everything, not started yet.
    pub fn new(client: &Client) -> Self {
        Informers {
            pods: Informer::new(Api::all(client.clone())),
            replica_sets: Informer::new(Api::all(client.clone())),
            deployments: Informer::new(Api::all(client.clone())),
            stateful_sets: Informer::new(Api::all(client.clone())),
            daemon_sets: Informer::new(Api::all(client.clone())),
            controller_revisions: Informer::new(Api::all(client.clone())),
            jobs: Informer::new(Api::all(client.clone())),
            cron_jobs: Informer::new(Api::all(client.clone())),
            nodes: Informer::new(Api::cluster(client.clone())),
            leases: Informer::new(Api::all(client.clone())),
            namespaces: Informer::new(Api::cluster(client.clone())),
            service_accounts: Informer::new(Api::all(client.clone())),
            services: Informer::new(Api::all(client.clone())),
            endpoints: Informer::new(Api::all(client.clone())),
            endpoint_slices: Informer::new(Api::all(client.clone())),
        }
    }

    /// Starts every informer on `tasks` and waits until each cache has its first list.
    async fn start(&self, tasks: &mut JoinSet<()>, shutdown: &CancellationToken) {
        tasks.spawn(self.pods.clone().run(shutdown.clone()));
        tasks.spawn(self.replica_sets.clone().run(shutdown.clone()));
        tasks.spawn(self.deployments.clone().run(shutdown.clone()));
        tasks.spawn(self.stateful_sets.clone().run(shutdown.clone()));
        tasks.spawn(self.daemon_sets.clone().run(shutdown.clone()));
        tasks.spawn(self.controller_revisions.clone().run(shutdown.clone()));
        tasks.spawn(self.jobs.clone().run(shutdown.clone()));
        tasks.spawn(self.cron_jobs.clone().run(shutdown.clone()));
        tasks.spawn(self.nodes.clone().run(shutdown.clone()));
        tasks.spawn(self.leases.clone().run(shutdown.clone()));
        tasks.spawn(self.namespaces.clone().run(shutdown.clone()));
        tasks.spawn(self.service_accounts.clone().run(shutdown.clone()));
        tasks.spawn(self.services.clone().run(shutdown.clone()));
        tasks.spawn(self.endpoints.clone().run(shutdown.clone()));
        tasks.spawn(self.endpoint_slices.clone().run(shutdown.clone()));
        let ready = async {
            self.pods.store().wait_ready().await;
            self.replica_sets.store().wait_ready().await;
            self.deployments.store().wait_ready().await;
            self.stateful_sets.store().wait_ready().await;
            self.daemon_sets.store().wait_ready().await;
            self.controller_revisions.store().wait_ready().await;
            self.jobs.store().wait_ready().await;
            self.cron_jobs.store().wait_ready().await;
            self.nodes.store().wait_ready().await;
            self.leases.store().wait_ready().await;
            self.namespaces.store().wait_ready().await;
            self.service_accounts.store().wait_ready().await;
            self.services.store().wait_ready().await;
            self.endpoints.store().wait_ready().await;
            self.endpoint_slices.store().wait_ready().await;
        };
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = ready => tracing::info!("controller caches are filled"),
        }
    }
}

/// Runs every controller until `shutdown`.
pub async fn run(client: Client, shutdown: CancellationToken) {
    let informers = Informers::new(&client);
    let mut tasks = JoinSet::new();

    let rs_queue = Queue::new();
    let rs = replicaset::ReplicaSetController::new(client.clone(), &informers, &rs_queue);
    let deploy_queue = Queue::new();
    let deploy = deployment::DeploymentController::new(client.clone(), &informers, &deploy_queue);

    let job_queue = Queue::new();
    let job = job::JobController::new(client.clone(), &informers, &job_queue);
    let cron_queue = Queue::new();
    let cron = cronjob::CronJobController::new(client.clone(), &informers, &cron_queue);
    let ds_queue = Queue::new();
    let ds = daemonset::DaemonSetController::new(client.clone(), &informers, &ds_queue);
    let node_queue = Queue::new();
    let node = node_lifecycle::NodeLifecycle::new(client.clone(), &informers, &node_queue);
    let pod_gc_queue = Queue::new();
    let pod_gc = pod_gc::PodGc::new(client.clone(), &informers, &pod_gc_queue);
    let sa_queue = Queue::new();
    let sa = service_account::ServiceAccountController::new(client.clone(), &informers, &sa_queue);
    let ep_queue = Queue::new();
    let ep = endpoints::EndpointsController::new(client.clone(), &informers, &ep_queue);
    let sts_queue = Queue::new();
    let sts = statefulset::StatefulSetController::new(client.clone(), &informers, &sts_queue);
    let gc_queue = Queue::new();
    let gc = gc::GarbageCollector::new(client.clone(), &informers, &gc_queue);

    informers.start(&mut tasks, &shutdown).await;
    tasks.spawn(run_workers(gc, gc_queue, 2, shutdown.clone()));
    tasks.spawn(run_workers(job, job_queue, 2, shutdown.clone()));
    tasks.spawn(run_workers(cron, cron_queue, 1, shutdown.clone()));
    tasks.spawn(run_workers(ds, ds_queue, 2, shutdown.clone()));
    tasks.spawn(run_workers(node, node_queue, 2, shutdown.clone()));
    tasks.spawn(run_workers(pod_gc, pod_gc_queue, 1, shutdown.clone()));
    tasks.spawn(run_workers(sa, sa_queue, 1, shutdown.clone()));
    tasks.spawn(run_workers(ep, ep_queue, 2, shutdown.clone()));
    tasks.spawn(run_workers(sts, sts_queue, 2, shutdown.clone()));
    tasks.spawn(run_workers(rs, rs_queue, 4, shutdown.clone()));
    tasks.spawn(run_workers(deploy, deploy_queue, 4, shutdown.clone()));
    tasks.spawn(namespace::run(client.clone(), shutdown.clone()));
    shutdown.cancelled().await;
    tasks.shutdown().await;
}

//! The `scheduler` subcommand: how fast `cairn server`'s scheduler places pods on many hollow
//! nodes, measured from outside through the API as upstream's scheduler_perf does.
//!
//! The bench starts a fresh single-node server (scheduler and controllers on, agent off), runs
//! N hollow nodes in this process (registered, Leases renewed, bound pods moved to Running),
//! waits until a first pod is placed, then creates P pending pods with resource requests
//! (upstream's `pod-default`: 100m cpu, 500Mi memory, on nodes of 4 cpu, 32Gi and 110 pods) as
//! fast as the API takes them, and watches them until every one is bound. A pod's scheduling
//! latency runs from the moment its create was sent to the moment this bench's watch saw its
//! `spec.nodeName`; throughput is P over the time from the first create to the last binding.
//! The server's RSS is sampled throughout.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cairn_client::{Api, Client, Config, Event, WatchParams, watch_list};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use serde_json::json;
use tokio::sync::Semaphore;

use crate::hollow::{self, Stats};
use crate::hollow_node::NodeShape;
use crate::procfs::{self, RssSampler};
use crate::stats::Latencies;
use crate::targets::{Kind, LaunchConfig, Target};

/// Added to the ports `kv` uses (API on 16643), clear of the `api` bench and of test servers.
const PORT_OFFSET: u16 = 200;
/// How long the API may take to answer after the store is ready.
const API_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// The run fails when no pod was bound for this long.
const STALL_TIMEOUT: Duration = Duration::from_secs(120);
/// The namespace the measured pods live in.
const NAMESPACE: &str = "sched-bench";
/// The field manager of the bench's own writes.
const FIELD_MANAGER: &str = "cairn-bench";

/// Arguments of `cairn-bench scheduler`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The cairn binary [default: `cairn` next to this binary].
    #[arg(long, value_name = "PATH")]
    cairn_bin: Option<PathBuf>,
    /// Hollow nodes to register.
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    /// Pods to create and have scheduled.
    #[arg(long, default_value_t = 10000)]
    pods: usize,
    /// Creates in flight at once.
    #[arg(long, default_value_t = 64)]
    create_concurrency: usize,
    /// HTTP/2 connections the creates are spread over.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Hollow nodes leave bound pods Pending instead of writing their status (Running), as
    /// scheduler_perf runs without kubelets.
    #[arg(long)]
    no_pod_status: bool,
}

/// When each measured pod was created and bound, in nanoseconds since the bench's epoch
/// (0: not yet).
struct Timeline {
    epoch: Instant,
    created: Vec<AtomicU64>,
    bound: Vec<AtomicU64>,
    bound_count: AtomicU64,
}

impl Timeline {
    fn new(pods: usize) -> Timeline {
        Timeline {
            epoch: Instant::now(),
            created: (0..pods).map(|_| AtomicU64::new(0)).collect(),
            bound: (0..pods).map(|_| AtomicU64::new(0)).collect(),
            bound_count: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// Records pod `i`'s binding unless it was recorded already.
    fn bind(&self, i: usize) {
        if self.bound[i]
            .compare_exchange(0, self.now(), Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.bound_count.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn bound(&self) -> usize {
        self.bound_count.load(Ordering::Relaxed) as usize
    }
}

/// The measured pod number `i`.
fn pod(i: usize) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": pod_name(i), "namespace": NAMESPACE},
        "spec": {"containers": [{
            "name": "pause",
            "image": "registry.k8s.io/pause:3.10",
            "resources": {
                "requests": {"cpu": "100m", "memory": "500Mi"},
                "limits": {"cpu": "100m", "memory": "500Mi"},
            },
        }]},
    }))
    .expect("a pod template decodes")
}

fn pod_name(i: usize) -> String {
    format!("pod-{i}")
}

/// The index of a measured pod, from its name.
fn pod_index(pod: &Pod) -> Option<usize> {
    pod.metadata
        .name
        .as_deref()?
        .strip_prefix("pod-")?
        .parse()
        .ok()
}

fn is_bound(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty())
}

/// Runs the benchmark and prints its figures; the last line is the summary.
pub async fn run(args: Args) -> Result<()> {
    if args.nodes == 0 || args.pods == 0 {
        bail!("--nodes and --pods must be positive");
    }
    if args.pods > args.nodes * 110 {
        bail!(
            "{} pods do not fit on {} nodes of 110 pods",
            args.pods,
            args.nodes
        );
    }
    let cairn_bin = crate::targets::cairn_bin(args.cairn_bin.clone())?;
    let config = LaunchConfig::one_cairn(cairn_bin, PORT_OFFSET);
    let load_before = procfs::load_average();
    let mut target = Kind::Cairn.start(&config).await?;
    let result = bench(&mut target, &args).await;
    let stopped = target.stop().await;
    let figures = result?;
    stopped?;
    figures.print(&args, (load_before, procfs::load_average()));
    Ok(())
}

/// What one run measured.
struct Figures {
    registered: Duration,
    created_in: Duration,
    scheduled_in: Duration,
    latencies: crate::stats::Summary,
    rss_idle: u64,
    rss: procfs::Rss,
    server_cpu: Duration,
    bench_cpu: Duration,
    bench_rss: u64,
    hollow_errors: u64,
    pods_running: u64,
}

impl Figures {
    fn print(&self, args: &Args, load: (Option<f64>, Option<f64>)) {
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let pods = args.pods as f64;
        let throughput = pods / self.scheduled_in.as_secs_f64();
        println!(
            "nodes registered in {:.1} s; {} pods created in {:.1} s ({:.0} creates/s)",
            self.registered.as_secs_f64(),
            args.pods,
            self.created_in.as_secs_f64(),
            pods / self.created_in.as_secs_f64()
        );
        println!(
            "scheduling latency (create sent → binding watched): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            ms(self.latencies.p50),
            ms(self.latencies.p99),
            ms(self.latencies.max)
        );
        println!(
            "server: RSS {:.0} MiB idle with nodes, {:.0} MiB peak, {:.0} MiB at the end; CPU {:.1} s \
             ({:.2} cores over the run)",
            mib(self.rss_idle),
            mib(self.rss.max),
            mib(self.rss.end),
            self.server_cpu.as_secs_f64(),
            self.server_cpu.as_secs_f64() / self.scheduled_in.as_secs_f64()
        );
        println!(
            "bench (hollow nodes, creator, watcher): CPU {:.1} s, RSS {:.0} MiB; hollow nodes made {} \
             pods Running, {} write errors",
            self.bench_cpu.as_secs_f64(),
            mib(self.bench_rss),
            self.pods_running,
            self.hollow_errors
        );
        let fmt_load = |l: Option<f64>| l.map_or("?".into(), |l| format!("{l:.2}"));
        println!(
            "load average (1 min) before {} after {}; pod status written: {}",
            fmt_load(load.0),
            fmt_load(load.1),
            !args.no_pod_status
        );
        println!(
            "scheduled {} pods on {} nodes: {:.0} pods/s, p99 {:.0} ms",
            args.pods,
            args.nodes,
            throughput,
            ms(self.latencies.p99)
        );
    }
}

/// Registers the hollow nodes, waits for the scheduler, creates the pods and watches them
/// being bound.
async fn bench(target: &mut Target, args: &Args) -> Result<Figures> {
    let pids = target.pids();
    let kubeconfig = wait_for_api(target).await?;
    let client = |manager: &str| -> Result<Client> {
        let config = Config::from_kubeconfig(&kubeconfig)?.with_field_manager(manager);
        Ok(Client::new(config)?)
    };

    let started = Instant::now();
    let shape = Arc::new(NodeShape {
        name_prefix: "hollow-".into(),
        cpu: "4".into(),
        memory: "32Gi".into(),
        pods: 110,
        labels: Default::default(),
        taints: Vec::new(),
    });
    let hollow_stats = Arc::new(Stats::default());
    let nodes = hollow::InProcess {
        client: client(hollow::FIELD_MANAGER)?,
        shape,
        count: args.nodes,
        concurrency: 64,
        pod_status: !args.no_pod_status,
        stats: hollow_stats.clone(),
    };
    nodes.register().await?;
    let registered = started.elapsed();
    eprintln!(
        "{} hollow nodes registered in {:.1} s",
        args.nodes,
        registered.as_secs_f64()
    );
    let hollow_task = tokio::spawn(nodes.run());

    let bench = client(FIELD_MANAGER)?;
    let mut ns = Namespace::default();
    ns.metadata.name = Some(NAMESPACE.into());
    Api::<Namespace>::cluster(bench.clone())
        .create(&ns)
        .await
        .context("creating the bench namespace")?;
    warm_up(&bench, target).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle = procfs::total_rss(&pids)?;

    let timeline = Arc::new(Timeline::new(args.pods));
    let watcher = tokio::spawn(watch_bindings(bench.clone(), timeline.clone()));
    // The watch is established before the first create, so no binding is missed.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let sampler = RssSampler::start(pids.clone());
    let cpu_before = procfs::total_cpu_time(&pids)?;
    let bench_cpu_before = procfs::cpu_time(std::process::id())?;
    let creators: Vec<Api<Pod>> = (0..args.connections.max(1))
        .map(|_| Ok(Api::namespaced(client(FIELD_MANAGER)?, NAMESPACE)))
        .collect::<Result<_>>()?;
    let create_start = timeline.now();
    let created = create_all(&creators, &timeline, args.pods, args.create_concurrency).await;
    let created_in = Duration::from_nanos(timeline.now() - create_start);
    created?;
    eprintln!(
        "{} pods created in {:.1} s; {} bound so far",
        args.pods,
        created_in.as_secs_f64(),
        timeline.bound()
    );

    let mut last_progress = (timeline.bound(), Instant::now());
    while timeline.bound() < args.pods {
        target.check_alive()?;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let bound = timeline.bound();
        if bound != last_progress.0 {
            last_progress = (bound, Instant::now());
        } else if last_progress.1.elapsed() > STALL_TIMEOUT {
            bail!(
                "only {bound} of {} pods were bound; none for {STALL_TIMEOUT:?}",
                args.pods
            );
        }
    }
    let server_cpu = procfs::total_cpu_time(&pids)?.saturating_sub(cpu_before);
    let bench_cpu = procfs::cpu_time(std::process::id())?.saturating_sub(bench_cpu_before);
    let rss = sampler.finish().await?;
    watcher.abort();
    hollow_task.abort();

    let mut latencies = Latencies::default();
    let mut last_bound = 0;
    for (c, b) in timeline.created.iter().zip(&timeline.bound) {
        let (c, b) = (c.load(Ordering::Relaxed), b.load(Ordering::Relaxed));
        last_bound = last_bound.max(b);
        latencies.record(Duration::from_nanos(b.saturating_sub(c)));
    }
    Ok(Figures {
        registered,
        created_in,
        scheduled_in: Duration::from_nanos(last_bound - create_start),
        latencies: latencies.summary(),
        rss_idle,
        rss,
        server_cpu,
        bench_cpu,
        bench_rss: procfs::rss_bytes(std::process::id())?,
        hollow_errors: hollow_stats.errors.load(Ordering::Relaxed),
        pods_running: hollow_stats.pods_running.load(Ordering::Relaxed),
    })
}

/// Creates one pod and waits until it is bound: the scheduler holds its Lease and sees nodes.
async fn warm_up(client: &Client, target: &mut Target) -> Result<()> {
    let api: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let mut warm = pod(0);
    warm.metadata.name = Some("warm-up".into());
    api.create(&warm)
        .await
        .context("creating the warm-up pod")?;
    let started = Instant::now();
    loop {
        target.check_alive()?;
        let pod = api.get("warm-up").await?;
        if is_bound(&pod) {
            eprintln!(
                "scheduler placed the warm-up pod after {:.1} s",
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        if started.elapsed() > STALL_TIMEOUT {
            bail!("the warm-up pod was not scheduled within {STALL_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates pods `0..count`, `concurrency` at a time, round-robin over `creators`.
async fn create_all(
    creators: &[Api<Pod>],
    timeline: &Timeline,
    count: usize,
    concurrency: usize,
) -> Result<()> {
    let slots = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut results = futures::stream::iter(0..count)
        .map(|i| {
            let api = &creators[i % creators.len()];
            let slots = slots.clone();
            async move {
                let _slot = slots.acquire_owned().await;
                let pod = pod(i);
                timeline.created[i].store(timeline.now(), Ordering::Relaxed);
                api.create(&pod)
                    .await
                    .with_context(|| format!("creating pod {}", pod_name(i)))
            }
        })
        .buffer_unordered(concurrency.max(1));
    while let Some(result) = results.next().await {
        result?;
    }
    Ok(())
}

/// Watches the bench namespace's pods and records each measured pod's first binding.
async fn watch_bindings(client: Client, timeline: Arc<Timeline>) {
    let api: Api<Pod> = Api::namespaced(client, NAMESPACE);
    let events = watch_list(api, WatchParams::default());
    futures::pin_mut!(events);
    let mut record = |pod: &Pod| {
        if is_bound(pod)
            && let Some(i) = pod_index(pod).filter(|&i| i < timeline.bound.len())
        {
            timeline.bind(i);
        }
    };
    while let Some(event) = events.next().await {
        match event {
            Event::Init(all) => all.iter().for_each(&mut record),
            Event::Applied(pod) => record(&pod),
            Event::Deleted(_) => {}
        }
    }
}

/// Waits for the server's admin kubeconfig and for the API to answer over it.
async fn wait_for_api(target: &mut Target) -> Result<PathBuf> {
    let path = target.kubeconfig(0);
    let started = Instant::now();
    let mut last_error = String::from("no kubeconfig yet");
    while started.elapsed() < API_READY_TIMEOUT {
        target.check_alive()?;
        if path.is_file() {
            let answer = async {
                let client = Client::new(Config::from_kubeconfig(&path)?)?;
                Api::<Namespace>::cluster(client).get("default").await?;
                anyhow::Ok(())
            };
            match answer.await {
                Ok(()) => return Ok(path),
                Err(e) => last_error = format!("{e:#}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the API did not answer within {API_READY_TIMEOUT:?}: {last_error}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measured_pods_request_resources_and_are_numbered() {
        let p = pod(42);
        assert_eq!(pod_index(&p), Some(42));
        let requests = p.spec.as_ref().unwrap().containers[0]
            .resources
            .as_ref()
            .unwrap()
            .requests
            .as_ref()
            .unwrap();
        assert_eq!(requests["cpu"].0, "100m");
        assert!(!is_bound(&p));
        let mut other = pod(1);
        other.metadata.name = Some("warm-up".into());
        assert_eq!(pod_index(&other), None);
    }
}

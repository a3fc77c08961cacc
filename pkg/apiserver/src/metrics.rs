//! `/metrics` in the Prometheus text format: requests by verb, resource and code, latency
//! histograms by verb, open watches by resource, and the store's state (revision, Raft term
//! and index, database size, leader). Names follow `cairn_<component>_<what>_<unit>`.

use std::time::Duration;

use cairn_kv::Store;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The labels of a request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `get`, `list`, `watch`, `create`, … or the HTTP method for other paths.
    pub verb: String,
    /// The resource (`pods`, `deployments.apps`, `pods/status`), empty for other paths.
    pub resource: String,
    /// The HTTP status code.
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerbLabels {
    verb: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceLabels {
    resource: String,
}

/// The API server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<VerbLabels, Histogram>,
    watchers: Family<ResourceLabels, Gauge>,
    store_revision: Gauge,
    store_raft_term: Gauge,
    store_raft_applied: Gauge,
    store_db_bytes: Gauge,
    store_has_leader: Gauge,
}

/// An open watch, counted until dropped.
pub struct WatchGuard(Gauge);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "cairn_apiserver_requests",
            "API requests by verb, resource and HTTP code",
            requests.clone(),
        );
        let latency = Family::<VerbLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register(
            "cairn_apiserver_request_duration_seconds",
            "Time to answer an API request (to the first byte for watches), by verb",
            latency.clone(),
        );
        let watchers = Family::<ResourceLabels, Gauge>::default();
        registry.register(
            "cairn_apiserver_watchers",
            "Open watches by resource",
            watchers.clone(),
        );
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let g = Gauge::default();
            registry.register(name, help, g.clone());
            g
        };
        let store_revision = gauge(&mut registry, "cairn_kv_revision", "The store's revision");
        let store_raft_term = gauge(&mut registry, "cairn_kv_raft_term", "The Raft term");
        let store_raft_applied = gauge(
            &mut registry,
            "cairn_kv_raft_applied_index",
            "The last Raft log index applied",
        );
        let store_db_bytes = gauge(
            &mut registry,
            "cairn_kv_db_size_bytes",
            "The size of the store's database file",
        );
        let store_has_leader = gauge(
            &mut registry,
            "cairn_kv_has_leader",
            "1 when this member knows a Raft leader",
        );
        Metrics {
            registry,
            requests,
            latency,
            watchers,
            store_revision,
            store_raft_term,
            store_raft_applied,
            store_db_bytes,
            store_has_leader,
        }
    }

    /// Counts one answered request.
    pub fn observe(&self, labels: RequestLabels, elapsed: Duration) {
        self.latency
            .get_or_create(&VerbLabels {
                verb: labels.verb.clone(),
            })
            .observe(elapsed.as_secs_f64());
        self.requests.get_or_create(&labels).inc();
    }

    /// Counts an open watch on `resource` until the guard is dropped.
    pub fn watch_started(&self, resource: &str) -> WatchGuard {
        let g = self
            .watchers
            .get_or_create(&ResourceLabels {
                resource: resource.to_string(),
            })
            .clone();
        g.inc();
        WatchGuard(g)
    }

    /// The text exposition, with the store's state read now.
    pub fn render(&self, store: &Store) -> String {
        let s = store.status();
        let as_gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.store_revision.set(s.revision);
        self.store_raft_term.set(as_gauge(s.raft_term));
        self.store_raft_applied.set(as_gauge(s.raft_applied_index));
        self.store_db_bytes.set(s.db_size);
        self.store_has_leader.set(i64::from(s.leader != 0));
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_watches_are_counted() {
        let m = Metrics::new();
        m.observe(
            RequestLabels {
                verb: "get".into(),
                resource: "pods".into(),
                code: "200".into(),
            },
            Duration::from_millis(3),
        );
        let guard = m.watch_started("pods");
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &m.registry).unwrap();
        assert!(
            out.contains(
                r#"cairn_apiserver_requests_total{verb="get",resource="pods",code="200"} 1"#
            ),
            "{out}"
        );
        assert!(
            out.contains(r#"cairn_apiserver_watchers{resource="pods"} 1"#),
            "{out}"
        );
        drop(guard);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &m.registry).unwrap();
        assert!(
            out.contains(r#"cairn_apiserver_watchers{resource="pods"} 0"#),
            "{out}"
        );
        assert!(out.contains("cairn_apiserver_request_duration_seconds_bucket"));
    }
}

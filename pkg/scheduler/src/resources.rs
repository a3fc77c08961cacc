//! Resource amounts as the scheduler counts them: cpu in millis, memory and ephemeral storage
//! in bytes, a pod count, and extended (scalar) resources by name. It owns how a pod's
//! requests are computed (containers, init and sidecar containers, overhead) and how a node's
//! allocatable is read; it does not decide whether a pod fits (that is
//! [`crate::filters::node_resources_fit`]).

use std::collections::BTreeMap;

use cairn_api::quantity::Quantity as Amount;
use k8s_openapi::api::core::v1::{Container, Pod, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Upstream's request assumed for scoring a container that requests no cpu: 100m.
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Upstream's request assumed for scoring a container that requests no memory: 200Mi.
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// Amounts of every resource the scheduler accounts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// Thousandths of a cpu.
    pub milli_cpu: i64,
    /// Bytes of memory.
    pub memory: i64,
    /// Bytes of ephemeral storage.
    pub ephemeral_storage: i64,
    /// Pods (meaningful for allocatable only).
    pub pods: i64,
    /// Extended resources (`example.com/gpu`, `hugepages-2Mi`, …), sorted by name.
    pub scalar: Vec<(String, i64)>,
}

impl Resources {
    /// Reads a resource list (`allocatable`, `requests`): cpu in millis, the rest in units;
    /// amounts that do not parse count as zero.
    pub fn from_list(list: &BTreeMap<String, Quantity>) -> Resources {
        let mut r = Resources::default();
        for (name, q) in list {
            let amount = Amount::parse(&q.0).ok();
            match name.as_str() {
                "cpu" => r.milli_cpu = amount.map_or(0, |a| a.millis()),
                "memory" => r.memory = amount.map_or(0, |a| a.value()),
                "ephemeral-storage" => r.ephemeral_storage = amount.map_or(0, |a| a.value()),
                "pods" => r.pods = amount.map_or(0, |a| a.value()),
                "storage" => {}
                _ => r
                    .scalar
                    .push((name.clone(), amount.map_or(0, |a| a.value()))),
            }
        }
        // A BTreeMap iterates sorted, so `scalar` is sorted already.
        r
    }

    /// The amount of an extended resource (zero when absent).
    pub fn scalar(&self, name: &str) -> i64 {
        self.scalar
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .map_or(0, |i| self.scalar[i].1)
    }

    /// Adds `other` into `self`, resource by resource.
    pub fn add(&mut self, other: &Resources) {
        self.combine(other, |a, b| a + b);
    }

    /// Subtracts `other` from `self`, resource by resource.
    pub fn sub(&mut self, other: &Resources) {
        self.combine(other, |a, b| a - b);
    }

    /// Keeps the larger amount of each resource.
    fn max(&mut self, other: &Resources) {
        self.combine(other, i64::max);
    }

    fn combine(&mut self, other: &Resources, f: impl Fn(i64, i64) -> i64) {
        self.milli_cpu = f(self.milli_cpu, other.milli_cpu);
        self.memory = f(self.memory, other.memory);
        self.ephemeral_storage = f(self.ephemeral_storage, other.ephemeral_storage);
        self.pods = f(self.pods, other.pods);
        for (name, amount) in &other.scalar {
            match self.scalar.binary_search_by(|(n, _)| n.cmp(name)) {
                Ok(i) => self.scalar[i].1 = f(self.scalar[i].1, *amount),
                Err(i) => self.scalar.insert(i, (name.clone(), f(0, *amount))),
            }
        }
    }
}

/// What a pod asks for: the exact requests (fit and BalancedAllocation) and the cpu and memory
/// with upstream's defaults for containers that request none (LeastAllocated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodRequests {
    /// Upstream's `PodRequests`: max(sum of containers and sidecars, largest init step) + overhead.
    pub exact: Resources,
    /// Cpu millis with 100m for each container that requests no cpu.
    pub non_zero_milli_cpu: i64,
    /// Memory bytes with 200Mi for each container that requests no memory.
    pub non_zero_memory: i64,
}

impl PodRequests {
    /// Computes a pod's requests as upstream's `resourcehelper.PodRequests` does: regular
    /// containers and restartable init containers (sidecars) add up; each other init container
    /// runs alone beside the sidecars started before it; the larger of the two, plus the pod's
    /// overhead.
    pub fn of(pod: &Pod) -> PodRequests {
        let Some(spec) = pod.spec.as_ref() else {
            return PodRequests::default();
        };
        let exact = sum_requests(&spec.containers, spec.init_containers.as_deref(), |c| {
            container_requests(c.resources.as_ref())
        });
        let non_zero = sum_requests(&spec.containers, spec.init_containers.as_deref(), |c| {
            let mut r = Resources::default();
            let requests = c.resources.as_ref().and_then(|r| r.requests.as_ref());
            let get = |name: &str| requests.and_then(|m| m.get(name));
            r.milli_cpu = match get("cpu") {
                Some(q) => Amount::parse(&q.0).map_or(0, |a| a.millis()),
                None => DEFAULT_MILLI_CPU_REQUEST,
            };
            r.memory = match get("memory") {
                Some(q) => Amount::parse(&q.0).map_or(0, |a| a.value()),
                None => DEFAULT_MEMORY_REQUEST,
            };
            r
        });
        let with_overhead = |mut r: Resources| {
            if let Some(overhead) = spec.overhead.as_ref() {
                r.add(&Resources::from_list(overhead));
            }
            r
        };
        let exact = with_overhead(exact);
        let non_zero = with_overhead(non_zero);
        PodRequests {
            exact,
            non_zero_milli_cpu: non_zero.milli_cpu,
            non_zero_memory: non_zero.memory,
        }
    }
}

fn container_requests(resources: Option<&ResourceRequirements>) -> Resources {
    resources
        .and_then(|r| r.requests.as_ref())
        .map(Resources::from_list)
        .unwrap_or_default()
}

fn sum_requests(
    containers: &[Container],
    init_containers: Option<&[Container]>,
    requests: impl Fn(&Container) -> Resources,
) -> Resources {
    let mut total = Resources::default();
    for c in containers {
        total.add(&requests(c));
    }
    let mut sidecars = Resources::default();
    let mut init_peak = Resources::default();
    for c in init_containers.unwrap_or_default() {
        let r = requests(c);
        let step = if c.restart_policy.as_deref() == Some("Always") {
            total.add(&r);
            sidecars.add(&r);
            sidecars.clone()
        } else {
            let mut step = r;
            step.add(&sidecars);
            step
        };
        init_peak.max(&step);
    }
    total.max(&init_peak);
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodSpec;

    fn container(cpu: Option<&str>, mem: Option<&str>, restart: Option<&str>) -> Container {
        let mut requests = BTreeMap::new();
        if let Some(cpu) = cpu {
            requests.insert("cpu".to_string(), Quantity(cpu.into()));
        }
        if let Some(mem) = mem {
            requests.insert("memory".to_string(), Quantity(mem.into()));
        }
        Container {
            name: "c".into(),
            restart_policy: restart.map(Into::into),
            resources: Some(ResourceRequirements {
                requests: Some(requests),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn pod(containers: Vec<Container>, init: Vec<Container>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers,
                init_containers: Some(init),
                overhead: Some([("cpu".to_string(), Quantity("10m".into()))].into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn requests_are_max_of_containers_and_init_steps_plus_overhead() {
        let p = pod(
            vec![
                container(Some("100m"), Some("1Gi"), None),
                container(Some("200m"), None, None),
            ],
            vec![container(Some("500m"), Some("10Mi"), None)],
        );
        let r = PodRequests::of(&p);
        assert_eq!(r.exact.milli_cpu, 510);
        assert_eq!(r.exact.memory, 1 << 30);
        // Non-zero: the second container gets 200Mi; the init container stays the larger cpu.
        assert_eq!(r.non_zero_milli_cpu, 510);
        assert_eq!(r.non_zero_memory, (1 << 30) + DEFAULT_MEMORY_REQUEST);
    }

    #[test]
    fn sidecars_add_to_containers_and_to_later_init_steps() {
        let p = pod(
            vec![container(Some("100m"), None, None)],
            vec![
                container(Some("50m"), None, Some("Always")),
                container(Some("300m"), None, None),
            ],
        );
        // Containers 100m + sidecar 50m = 150m; init step 300m + sidecar 50m = 350m.
        assert_eq!(PodRequests::of(&p).exact.milli_cpu, 360);
    }

    #[test]
    fn best_effort_containers_get_defaults_for_scoring_only() {
        let p = Pod {
            spec: Some(PodSpec {
                containers: vec![Container::default()],
                ..Default::default()
            }),
            ..Default::default()
        };
        let r = PodRequests::of(&p);
        assert_eq!(r.exact, Resources::default());
        assert_eq!(r.non_zero_milli_cpu, DEFAULT_MILLI_CPU_REQUEST);
        assert_eq!(r.non_zero_memory, DEFAULT_MEMORY_REQUEST);
    }
}

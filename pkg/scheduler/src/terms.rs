//! Pod (anti-)affinity terms compiled once per pod: the namespaces a term looks in, its label
//! selector and its topology key (upstream's `framework.AffinityTerm`). Shared by the
//! InterPodAffinity filter and score and by the snapshot, which compiles the terms of every
//! pod it holds so that scheduling does not re-parse them.

use std::collections::{BTreeMap, HashMap};

use cairn_api::labels::Selector;
use k8s_openapi::api::core::v1::{Pod, PodAffinityTerm, WeightedPodAffinityTerm};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Labels of namespaces by name, for terms with a `namespaceSelector`.
pub type NamespaceLabels = HashMap<String, BTreeMap<String, String>>;

/// One compiled pod affinity term.
#[derive(Debug, Clone)]
pub struct AffinityTerm {
    /// Namespaces named by the term (the owning pod's when neither names nor a selector are given).
    namespaces: Vec<String>,
    /// `namespaceSelector`: `None` selects no namespace, an empty one every namespace.
    namespace_selector: Option<Selector>,
    /// `labelSelector`: `None` (or an invalid selector) selects no pod.
    selector: Option<Selector>,
    /// The node label whose values are the term's topology domains.
    pub topology_key: String,
}

/// A preferred term and its weight.
#[derive(Debug, Clone)]
pub struct WeightedTerm {
    /// The term.
    pub term: AffinityTerm,
    /// Its weight (1–100).
    pub weight: i64,
}

fn selector(s: Option<&LabelSelector>) -> Option<Selector> {
    s.and_then(|s| Selector::try_from(s).ok())
}

impl AffinityTerm {
    /// Compiles a term of a pod in `namespace`.
    pub fn new(term: &PodAffinityTerm, namespace: &str) -> AffinityTerm {
        let mut namespaces = term.namespaces.clone().unwrap_or_default();
        if namespaces.is_empty() && term.namespace_selector.is_none() {
            namespaces.push(namespace.to_string());
        }
        AffinityTerm {
            namespaces,
            namespace_selector: selector(term.namespace_selector.as_ref()),
            selector: selector(term.label_selector.as_ref()),
            topology_key: term.topology_key.clone(),
        }
    }

    /// Whether the term selects `pod`: its namespace is named or selected, and its labels match.
    pub fn matches(&self, pod: &Pod, namespaces: &NamespaceLabels) -> bool {
        let Some(selector) = &self.selector else {
            return false;
        };
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let in_namespace = self.namespaces.iter().any(|n| n == ns)
            || self.namespace_selector.as_ref().is_some_and(|s| {
                s.is_empty() || namespaces.get(ns).is_some_and(|labels| s.matches(labels))
            });
        in_namespace && selector.matches(labels(pod))
    }
}

/// A pod's labels (an empty map when it has none).
pub fn labels(pod: &Pod) -> &BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    pod.metadata.labels.as_ref().unwrap_or(&EMPTY)
}

/// All affinity terms of a pod, compiled.
#[derive(Debug, Clone, Default)]
pub struct AffinityTerms {
    /// `podAffinity.requiredDuringSchedulingIgnoredDuringExecution`.
    pub required_affinity: Vec<AffinityTerm>,
    /// `podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution`.
    pub required_anti_affinity: Vec<AffinityTerm>,
    /// `podAffinity.preferredDuringSchedulingIgnoredDuringExecution`.
    pub preferred_affinity: Vec<WeightedTerm>,
    /// `podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution`.
    pub preferred_anti_affinity: Vec<WeightedTerm>,
}

impl AffinityTerms {
    /// Compiles the terms of `pod`.
    pub fn of(pod: &Pod) -> AffinityTerms {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let affinity = pod.spec.as_ref().and_then(|s| s.affinity.as_ref());
        let pa = affinity.and_then(|a| a.pod_affinity.as_ref());
        let paa = affinity.and_then(|a| a.pod_anti_affinity.as_ref());
        let required = |terms: Option<&Vec<PodAffinityTerm>>| {
            terms
                .into_iter()
                .flatten()
                .map(|t| AffinityTerm::new(t, ns))
                .collect()
        };
        let preferred = |terms: Option<&Vec<WeightedPodAffinityTerm>>| {
            terms
                .into_iter()
                .flatten()
                .filter(|t| t.weight != 0)
                .map(|t| WeightedTerm {
                    term: AffinityTerm::new(&t.pod_affinity_term, ns),
                    weight: i64::from(t.weight),
                })
                .collect()
        };
        AffinityTerms {
            required_affinity: required(pa.and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            required_anti_affinity: required(paa.and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            preferred_affinity: preferred(pa.and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            preferred_anti_affinity: preferred(paa.and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
        }
    }

    /// Whether the pod has no terms at all.
    pub fn is_empty(&self) -> bool {
        self.required_affinity.is_empty()
            && self.required_anti_affinity.is_empty()
            && self.preferred_affinity.is_empty()
            && self.preferred_anti_affinity.is_empty()
    }
}

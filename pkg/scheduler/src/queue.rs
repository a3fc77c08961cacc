//! The pods waiting to be placed, in three parts as upstream's scheduling queue has them: the
//! active pods (ready to be tried, first in first out), the pods backing off after a failed
//! attempt (by the moment their back-off ends), and the unschedulable pods (backed off, now
//! waiting for the cluster to change, or at most [`RETRY_UNCHANGED`]). Every operation costs
//! O(log n) or less except a cluster change, which moves every unschedulable pod to the active
//! part once.
//!
//! A pod's entries in the parts are tagged with its current sequence number; a removed or moved
//! pod leaves stale entries behind that are skipped when they come up, so nothing is searched.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use tokio::time::Instant;

use crate::snapshot::pod_key;

/// The first back-off after a failed attempt (upstream's `podInitialBackoffSeconds`).
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// The longest back-off (upstream's `podMaxBackoffSeconds`).
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// An unschedulable pod is retried after this long even if nothing changed.
pub const RETRY_UNCHANGED: Duration = Duration::from_secs(60);

/// Where a queued pod is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Active,
    /// Handed out by [`Queue::pop_ready`], not yet placed or failed.
    InFlight,
    Backoff,
    Unschedulable,
}

/// A pod in the queue.
#[derive(Debug)]
struct Queued {
    pod: Pod,
    part: Part,
    /// Bumped on every move; entries carrying an older number are stale.
    seq: u64,
    attempts: u32,
    /// Whether its last failure was "fits nowhere" (then it waits for a cluster change).
    unschedulable: bool,
    /// The cluster generation at its last failure.
    failed_generation: u64,
    /// When it last failed.
    failed_at: Instant,
    last_message: Option<String>,
}

/// The pods waiting to be placed.
#[derive(Debug, Default)]
pub struct Queue {
    pods: HashMap<String, Queued>,
    active: VecDeque<(u64, String)>,
    /// (end of back-off, seq, key), soonest first.
    backoff: BinaryHeap<Reverse<(Instant, u64, String)>>,
    /// (retry regardless at, seq, key), soonest first.
    unschedulable: BinaryHeap<Reverse<(Instant, u64, String)>>,
    next_seq: u64,
    /// Bumped on every cluster change.
    generation: u64,
}

impl Queue {
    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Number of pods queued (in any part).
    pub fn len(&self) -> usize {
        self.pods.len()
    }

    /// Whether no pod is queued.
    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }

    /// Queues a new pod as active, or updates the copy of a queued one where it is.
    pub fn add(&mut self, pod: Pod) {
        let k = pod_key(&pod);
        if let Some(q) = self.pods.get_mut(&k) {
            q.pod = pod;
            return;
        }
        let seq = self.seq();
        self.active.push_back((seq, k.clone()));
        self.pods.insert(
            k,
            Queued {
                pod,
                part: Part::Active,
                seq,
                attempts: 0,
                unschedulable: false,
                failed_generation: 0,
                failed_at: Instant::now(),
                last_message: None,
            },
        );
    }

    /// Forgets a pod (placed, bound elsewhere, deleted, or no longer ours).
    pub fn remove(&mut self, k: &str) {
        self.pods.remove(k);
    }

    /// Notes a cluster change (a node added or changed, a pod deleted): every unschedulable
    /// pod becomes active, and pods still backing off become active when their back-off ends.
    pub fn cluster_changed(&mut self) {
        self.generation += 1;
        let waiting = std::mem::take(&mut self.unschedulable);
        for Reverse((_, seq, k)) in waiting {
            self.activate(seq, k);
        }
    }

    /// Moves the pod `k` to the active part if `seq` is still its current entry.
    fn activate(&mut self, seq: u64, k: String) {
        let fresh = self.seq();
        if let Some(q) = self.pods.get_mut(&k)
            && q.seq == seq
        {
            q.seq = fresh;
            q.part = Part::Active;
            self.active.push_back((fresh, k));
        }
    }

    /// Moves pods whose back-off ended (to active, or to unschedulable when they wait for a
    /// change that has not come) and unschedulable pods that waited long enough.
    fn promote(&mut self, now: Instant) {
        while let Some(Reverse((at, _, _))) = self.backoff.peek()
            && *at <= now
        {
            let Some(Reverse((_, seq, k))) = self.backoff.pop() else {
                break;
            };
            let Some(q) = self.pods.get(&k).filter(|q| q.seq == seq) else {
                continue;
            };
            if q.unschedulable && q.failed_generation == self.generation {
                let fresh = self.seq();
                let q = self.pods.get_mut(&k).expect("looked up above");
                q.seq = fresh;
                q.part = Part::Unschedulable;
                let retry = q.failed_at + RETRY_UNCHANGED;
                self.unschedulable.push(Reverse((retry, fresh, k)));
            } else {
                self.activate(seq, k);
            }
        }
        while let Some(Reverse((at, _, _))) = self.unschedulable.peek()
            && *at <= now
        {
            let Some(Reverse((_, seq, k))) = self.unschedulable.pop() else {
                break;
            };
            self.activate(seq, k);
        }
    }

    /// The next pod ready to be tried, if any. It stays queued (in flight) until
    /// [`Queue::remove`] or [`Queue::failed`].
    pub fn pop_ready(&mut self, now: Instant) -> Option<Pod> {
        self.promote(now);
        while let Some((seq, k)) = self.active.pop_front() {
            let fresh = self.seq();
            if let Some(q) = self.pods.get_mut(&k)
                && q.seq == seq
            {
                q.seq = fresh;
                q.part = Part::InFlight;
                return Some(q.pod.clone());
            }
        }
        None
    }

    /// Backs a pod off after a failed attempt: `message` is why it fits nowhere (it then also
    /// waits for a cluster change), `None` a failure that may pass by itself (a binding that
    /// did not go through). Returns whether the message differs from the last one.
    pub fn failed(&mut self, k: &str, message: Option<String>) -> bool {
        let generation = self.generation;
        let fresh = self.seq();
        let Some(q) = self.pods.get_mut(k) else {
            return false;
        };
        q.attempts += 1;
        let backoff = INITIAL_BACKOFF
            .saturating_mul(1 << (q.attempts - 1).min(4))
            .min(MAX_BACKOFF);
        q.seq = fresh;
        q.part = Part::Backoff;
        q.unschedulable = message.is_some();
        q.failed_generation = generation;
        let now = Instant::now();
        q.failed_at = now;
        let new_message = message.is_some() && q.last_message != message;
        if message.is_some() {
            q.last_message = message;
        }
        self.backoff
            .push(Reverse((now + backoff, fresh, k.to_string())));
        new_message
    }

    /// The soonest moment a pod may become ready: now if one is active, else the end of the
    /// first back-off or unschedulable wait (possibly of a stale entry, which only wakes the
    /// caller early).
    pub fn next_ready(&self) -> Option<Instant> {
        if !self.active.is_empty() {
            return Some(Instant::now());
        }
        let backoff = self.backoff.peek().map(|Reverse((at, _, _))| *at);
        let waiting = self.unschedulable.peek().map(|Reverse((at, _, _))| *at);
        backoff.into_iter().chain(waiting).min()
    }

    /// How many pods are in each part: (active, in flight, backing off, unschedulable).
    pub fn parts(&self) -> (usize, usize, usize, usize) {
        let mut n = (0, 0, 0, 0);
        for q in self.pods.values() {
            match q.part {
                Part::Active => n.0 += 1,
                Part::InFlight => n.1 += 1,
                Part::Backoff => n.2 += 1,
                Part::Unschedulable => n.3 += 1,
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "i"}]}
        }))
        .unwrap()
    }

    fn name(p: Option<Pod>) -> Option<String> {
        p.and_then(|p| p.metadata.name)
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_pod_waits_for_its_backoff_and_a_change() {
        let mut q = Queue::default();
        q.add(pod("a"));
        assert!(q.pop_ready(Instant::now()).is_some());
        assert!(q.failed("default/a", Some("0/1 nodes are available".into())));
        assert!(
            !q.failed("default/a", Some("0/1 nodes are available".into())),
            "same message"
        );
        tokio::time::advance(MAX_BACKOFF).await;
        assert!(q.pop_ready(Instant::now()).is_none(), "nothing changed yet");
        assert_eq!(q.parts(), (0, 0, 0, 1));
        q.cluster_changed();
        assert!(q.pop_ready(Instant::now()).is_some());
        q.remove("default/a");
        assert!(q.pop_ready(Instant::now()).is_none());
        assert!(q.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_doubles_to_ten_seconds() {
        let mut q = Queue::default();
        q.add(pod("a"));
        for expected in [1, 2, 4, 8, 10, 10] {
            assert!(q.pop_ready(Instant::now()).is_some());
            q.failed("default/a", None);
            let wait = q.next_ready().unwrap() - Instant::now();
            assert_eq!(wait, Duration::from_secs(expected));
            tokio::time::advance(wait - Duration::from_millis(1)).await;
            assert!(q.pop_ready(Instant::now()).is_none(), "still backing off");
            tokio::time::advance(Duration::from_millis(1)).await;
        }
        assert!(q.pop_ready(Instant::now()).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_during_the_backoff_frees_the_pod_when_it_ends() {
        let mut q = Queue::default();
        q.add(pod("a"));
        q.pop_ready(Instant::now());
        q.failed("default/a", Some("no".into()));
        q.cluster_changed();
        assert!(q.pop_ready(Instant::now()).is_none(), "backing off");
        tokio::time::advance(INITIAL_BACKOFF).await;
        assert!(q.pop_ready(Instant::now()).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn an_unschedulable_pod_is_retried_after_a_minute_regardless() {
        let mut q = Queue::default();
        q.add(pod("a"));
        q.pop_ready(Instant::now());
        q.failed("default/a", Some("no".into()));
        tokio::time::advance(RETRY_UNCHANGED - Duration::from_secs(1)).await;
        assert!(q.pop_ready(Instant::now()).is_none());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(q.pop_ready(Instant::now()).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn active_pods_come_first_in_first_out_and_stale_entries_are_skipped() {
        let mut q = Queue::default();
        for n in ["a", "b", "c"] {
            q.add(pod(n));
        }
        q.add(pod("a")); // an update keeps its place
        q.remove("default/b");
        assert_eq!(name(q.pop_ready(Instant::now())).as_deref(), Some("a"));
        assert_eq!(name(q.pop_ready(Instant::now())).as_deref(), Some("c"));
        assert_eq!(q.pop_ready(Instant::now()), None);
        assert_eq!(q.parts(), (0, 2, 0, 0));
        q.failed("default/a", Some("no".into()));
        q.remove("default/a");
        q.cluster_changed();
        tokio::time::advance(MAX_BACKOFF).await;
        assert_eq!(q.pop_ready(Instant::now()), None, "a was removed");
        assert_eq!(q.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn pods_backing_off_do_not_hold_up_active_ones() {
        let mut q = Queue::default();
        for i in 0..20_000 {
            q.add(pod(&format!("p{i}")));
        }
        for i in 0..10_000 {
            assert!(q.pop_ready(Instant::now()).is_some());
            q.failed(&format!("default/p{i}"), Some("no".into()));
        }
        // The other 10,000 come out one by one, past the 10,000 backing off.
        for _ in 0..10_000 {
            assert!(q.pop_ready(Instant::now()).is_some());
        }
        assert!(q.pop_ready(Instant::now()).is_none());
        assert_eq!(q.parts(), (0, 10_000, 10_000, 0));
    }
}

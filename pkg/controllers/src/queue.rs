//! The work queue of a controller, with client-go's workqueue semantics: a key is queued at
//! most once, a key being processed is not handed to a second worker (a change during
//! processing queues it again afterwards), keys can be queued after a delay, and failed keys
//! come back with a per-key exponential back-off.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// First delay of a failed key; doubled on every further failure.
const RETRY_INITIAL: Duration = Duration::from_millis(200);
/// Longest delay of a failed key.
const RETRY_MAX: Duration = Duration::from_secs(30);

struct State<T> {
    ready: VecDeque<T>,
    queued: HashSet<T>,
    processing: HashSet<T>,
    /// Changed while being processed: queue again when done.
    dirty: HashSet<T>,
    /// Delayed keys: the earliest due time per key, and the same ordered by time.
    due: HashMap<T, (Instant, u64)>,
    timeline: BTreeSet<(Instant, u64)>,
    by_ticket: HashMap<u64, T>,
    next_ticket: u64,
    failures: HashMap<T, u32>,
    shut: bool,
}

/// A work queue of keys. Cheap to clone; clones share the queue.
pub struct Queue<T> {
    state: Arc<Mutex<State<T>>>,
    notify: Arc<Notify>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            state: self.state.clone(),
            notify: self.notify.clone(),
        }
    }
}

impl<T: Clone + Eq + Hash> Default for Queue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Clone + Eq + Hash> Queue<T> {
    /// An empty queue.
    pub fn new() -> Self {
        Queue {
            state: Arc::new(Mutex::new(State {
                ready: VecDeque::new(),
                queued: HashSet::new(),
                processing: HashSet::new(),
                dirty: HashSet::new(),
                due: HashMap::new(),
                timeline: BTreeSet::new(),
                by_ticket: HashMap::new(),
                next_ticket: 0,
                failures: HashMap::new(),
                shut: false,
            })),
            notify: Arc::new(Notify::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `key` now.
    pub fn add(&self, key: T) {
        let mut state = self.lock();
        Self::push(&mut state, key);
        drop(state);
        self.notify.notify_one();
    }

    fn push(state: &mut State<T>, key: T) {
        if state.processing.contains(&key) {
            state.dirty.insert(key);
        } else if state.queued.insert(key.clone()) {
            state.ready.push_back(key);
        }
    }

    /// Queues `key` once `delay` has passed (or earlier, if it is queued earlier by another
    /// call).
    pub fn add_after(&self, key: T, delay: Duration) {
        if delay.is_zero() {
            return self.add(key);
        }
        let at = Instant::now() + delay;
        let mut state = self.lock();
        if let Some((current, _)) = state.due.get(&key)
            && *current <= at
        {
            return;
        }
        if let Some((old_at, old_ticket)) = state.due.remove(&key) {
            state.timeline.remove(&(old_at, old_ticket));
            state.by_ticket.remove(&old_ticket);
        }
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.due.insert(key.clone(), (at, ticket));
        state.timeline.insert((at, ticket));
        state.by_ticket.insert(ticket, key);
        drop(state);
        self.notify.notify_one();
    }

    /// Queues `key` again after its back-off (which doubles with every failure in a row).
    pub fn retry(&self, key: T) {
        let failures = {
            let mut state = self.lock();
            let n = state.failures.entry(key.clone()).or_insert(0);
            *n += 1;
            *n
        };
        let delay = RETRY_INITIAL
            .saturating_mul(1 << (failures - 1).min(16))
            .min(RETRY_MAX);
        self.add_after(key, delay);
    }

    /// Forgets the failures of `key` (it succeeded).
    pub fn forget(&self, key: &T) {
        self.lock().failures.remove(key);
    }

    /// The next key to process, waiting for one; `None` once the queue is shut down. The
    /// caller must call [`Queue::done`] with it.
    pub async fn next(&self) -> Option<T> {
        loop {
            let notified = self.notify.notified();
            let wake_at = {
                let mut state = self.lock();
                if state.shut {
                    return None;
                }
                let now = Instant::now();
                while let Some(&(at, ticket)) = state.timeline.first() {
                    if at > now {
                        break;
                    }
                    state.timeline.remove(&(at, ticket));
                    if let Some(key) = state.by_ticket.remove(&ticket) {
                        state.due.remove(&key);
                        Self::push(&mut state, key);
                    }
                }
                if let Some(key) = state.ready.pop_front() {
                    state.queued.remove(&key);
                    state.processing.insert(key.clone());
                    return Some(key);
                }
                state.timeline.first().map(|(at, _)| *at)
            };
            match wake_at {
                Some(at) => {
                    tokio::select! {
                        () = notified => {}
                        () = tokio::time::sleep_until(at) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Marks `key` processed; if it changed meanwhile it is queued again.
    pub fn done(&self, key: &T) {
        let mut state = self.lock();
        state.processing.remove(key);
        if state.dirty.remove(key) {
            Self::push(&mut state, key.clone());
            drop(state);
            self.notify.notify_one();
        }
    }

    /// Wakes every waiter; [`Queue::next`] answers `None` from now on.
    pub fn shut_down(&self) {
        self.lock().shut = true;
        self.notify.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn keys_are_deduplicated_and_not_processed_twice_at_once() {
        let q = Queue::new();
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(q.next().await, Some("a"));
        // Changed while processing: comes back after done, not before.
        q.add("a");
        assert_eq!(q.next().await, Some("b"));
        q.done(&"b");
        q.done(&"a");
        assert_eq!(q.next().await, Some("a"));
        q.done(&"a");
        q.shut_down();
        assert_eq!(q.next().await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn delayed_keys_come_back_when_due_and_the_earliest_delay_wins() {
        let q = Queue::new();
        let start = Instant::now();
        q.add_after("late", Duration::from_secs(10));
        q.add_after("late", Duration::from_secs(3));
        q.add_after("later", Duration::from_secs(5));
        assert_eq!(q.next().await, Some("late"));
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        assert_eq!(q.next().await, Some("later"));
        assert_eq!(start.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn failures_back_off_and_forget_resets() {
        let q = Queue::new();
        let start = Instant::now();
        q.retry("k");
        assert_eq!(q.next().await, Some("k"));
        q.done(&"k");
        assert_eq!(start.elapsed(), Duration::from_millis(200));
        q.retry("k");
        assert_eq!(q.next().await, Some("k"));
        q.done(&"k");
        assert_eq!(start.elapsed(), Duration::from_millis(600));
        q.forget(&"k");
        q.retry("k");
        assert_eq!(q.next().await, Some("k"));
        assert_eq!(start.elapsed(), Duration::from_millis(800));
    }
}

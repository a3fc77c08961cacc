//! Watches: the state machine publishes each applied revision once to the hub, and every watcher
//! follows that one feed. A watcher that starts in the past, or falls behind the feed, reads the
//! revisions it missed from history and then rejoins the feed, so a thousand watchers cost one
//! publication per revision, and a slow one never holds the others back.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use redb::Database;
use redb::ReadableDatabase;
use tokio::sync::{broadcast, mpsc};

use crate::error::{Error, Result};
use crate::history::{History, KeyIndex};
use crate::keyrange::KeyRange;
use crate::mvcc::{self, RevisionEvents};
use crate::pb::mvccpb::{self, event::EventType};
use crate::state_machine::read_position;
use crate::tables::{META, REVISIONS};

/// How many revisions the feed holds for watchers that are momentarily slow.
const FEED_CAPACITY: usize = 4096;
/// How many revisions a catching-up watcher reads from history at a time.
const CATCH_UP_CHUNK: usize = 512;

/// The feed of applied revisions.
pub(crate) struct WatchHub {
    feed: broadcast::Sender<Arc<RevisionEvents>>,
    last: AtomicI64,
}

impl WatchHub {
    pub(crate) fn new(revision: i64) -> Self {
        WatchHub {
            feed: broadcast::channel(FEED_CAPACITY).0,
            last: AtomicI64::new(revision),
        }
    }

    /// The newest revision published: every watcher will see everything up to it.
    pub(crate) fn last(&self) -> i64 {
        self.last.load(Ordering::Acquire)
    }

    /// Publishes committed revisions, in order.
    pub(crate) fn publish(&self, revisions: Vec<RevisionEvents>) {
        for r in revisions {
            // Record the revision before sending: a watcher that subscribes in between reads it
            // from history instead (it is committed already).
            self.last.store(r.revision, Ordering::Release);
            let _ = self.feed.send(Arc::new(r));
        }
    }

    /// The state jumped (a snapshot was installed): watchers catch up from history.
    pub(crate) fn reset_to(&self, revision: i64) {
        self.last.store(revision, Ordering::Release);
        let _ = self.feed.send(Arc::new(RevisionEvents {
            revision,
            events: Vec::new(),
        }));
    }
}

/// What a watch asks for.
#[derive(Debug, Clone)]
pub struct WatchSpec {
    /// The keys.
    pub range: KeyRange,
    /// The first revision to deliver; 0 means "after now".
    pub start_revision: i64,
    /// Deliver each event's previous key-value.
    pub prev_kv: bool,
    /// Leave out put events.
    pub no_put: bool,
    /// Leave out delete events.
    pub no_delete: bool,
}

/// What a watcher delivers.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchEvent {
    /// The matching events of one revision.
    Events(RevisionEvents),
    /// The start revision, or a revision the watcher fell behind to, has been compacted; the
    /// watch is over.
    Compacted {
        /// The store's compacted revision.
        compact_revision: i64,
    },
}

/// A running watcher. Dropping it stops it.
pub struct Watcher {
    synced: Arc<AtomicI64>,
    task: tokio::task::JoinHandle<()>,
}

impl Watcher {
    /// Every event of a revision at or below this one has been sent.
    pub fn synced(&self) -> i64 {
        self.synced.load(Ordering::Acquire)
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a watcher that sends `(tag, event)` to `out` until the receiver goes away.
pub(crate) fn start<T: Clone + Send + 'static>(
    db: Arc<Database>,
    index: Arc<RwLock<KeyIndex>>,
    hub: &WatchHub,
    spec: WatchSpec,
    tag: T,
    out: mpsc::Sender<(T, WatchEvent)>,
) -> Watcher {
    let feed = hub.feed.subscribe();
    let now = hub.last();
    let next = if spec.start_revision > 0 {
        spec.start_revision
    } else {
        now + 1
    };
    let synced = Arc::new(AtomicI64::new(next - 1));
    let run = Run {
        db,
        index,
        spec,
        tag,
        out,
        synced: synced.clone(),
        next,
    };
    let task = tokio::spawn(run.follow(feed, now));
    Watcher { synced, task }
}

struct Run<T> {
    db: Arc<Database>,
    index: Arc<RwLock<KeyIndex>>,
    spec: WatchSpec,
    tag: T,
    out: mpsc::Sender<(T, WatchEvent)>,
    synced: Arc<AtomicI64>,
    next: i64,
}

impl<T: Clone + Send + 'static> Run<T> {
    async fn follow(mut self, mut feed: broadcast::Receiver<Arc<RevisionEvents>>, mut known: i64) {
        loop {
            // Catch up from history to the newest revision known to be published.
            while self.next <= known {
                match self.catch_up(known).await {
                    Ok(true) => {}
                    Ok(false) | Err(_) => return,
                }
            }
            self.synced
                .store(known.max(self.next - 1), Ordering::Release);
            match feed.recv().await {
                Ok(r) if r.revision < self.next => {}
                Ok(r) if r.revision == self.next && !r.events.is_empty() => {
                    if !self.deliver(&r).await {
                        return;
                    }
                    self.next = r.revision + 1;
                    known = r.revision;
                }
                // A gap or a reset: read what is missing from history.
                Ok(r) => known = r.revision,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    known = self.db_revision().unwrap_or(known);
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    fn db_revision(&self) -> Result<i64> {
        let txn = self.db.begin_read()?;
        Ok(read_position(&txn.open_table(META)?)?.revision)
    }

    /// Reads and delivers one chunk of history up to `upto`; false when the watch is over.
    async fn catch_up(&mut self, upto: i64) -> Result<bool> {
        let db = self.db.clone();
        let index = self.index.clone();
        let from = self.next;
        let read = tokio::task::spawn_blocking(move || -> Result<_> {
            let index = index.read().unwrap_or_else(|p| p.into_inner());
            let txn = db.begin_read()?;
            let pos = read_position(&txn.open_table(META)?)?;
            if from < pos.compact_revision {
                return Err(Error::Compacted {
                    compact_revision: pos.compact_revision,
                });
            }
            let revs = txn.open_table(REVISIONS)?;
            let hist = History {
                index: &index,
                revs: &revs,
            };
            mvcc::history_events(&hist, from, upto.min(pos.revision), CATCH_UP_CHUNK)
        })
        .await
        .map_err(|e| Error::Storage(e.to_string()))?;
        let revisions = match read {
            Ok(r) => r,
            Err(Error::Compacted { compact_revision }) => {
                let _ = self
                    .out
                    .send((self.tag.clone(), WatchEvent::Compacted { compact_revision }))
                    .await;
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        let Some(last) = revisions.last().map(|r| r.revision) else {
            self.next = upto + 1;
            return Ok(true);
        };
        for r in &revisions {
            if !self.deliver(r).await {
                return Ok(false);
            }
        }
        self.next = last + 1;
        Ok(true)
    }

    /// Sends the matching events of one revision; false when the receiver is gone.
    async fn deliver(&mut self, r: &RevisionEvents) -> bool {
        let events: Vec<mvccpb::Event> = r
            .events
            .iter()
            .filter(|e| {
                let key = e.kv.as_ref().map_or(&[][..], |kv| kv.key.as_slice());
                let put = e.r#type == EventType::Put as i32;
                let wanted = if put {
                    !self.spec.no_put
                } else {
                    !self.spec.no_delete
                };
                wanted && self.spec.range.contains(key)
            })
            .map(|e| {
                let mut e = e.clone();
                if !self.spec.prev_kv {
                    e.prev_kv = None;
                }
                e
            })
            .collect();
        if !events.is_empty() {
            let batch = WatchEvent::Events(RevisionEvents {
                revision: r.revision,
                events,
            });
            if self.out.send((self.tag.clone(), batch)).await.is_err() {
                return false;
            }
        }
        self.synced.store(r.revision, Ordering::Release);
        true
    }
}

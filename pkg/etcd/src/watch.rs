//! The Watch service: one bidirectional stream carries many watches, each a store [`Watcher`].
//!
//! One task owns a stream. It reads the client's requests, and it forwards what the stream's
//! watchers send into one shared channel, so everything the client sees leaves in one order:
//! a watch's `created` answer is written before its watcher exists, hence before its events.
//!
//! Progress notifications say "every event at or below this revision has been sent on this
//! stream" (a `WatchProgressRequest` for all watches, answered with watch ID -1; and
//! `progress_notify` for one watch, every `progress_notify_interval` while it is quiet). A
//! progress at revision T is sent once every watcher concerned has handed the channel everything
//! up to T ([`Watcher::synced`]); a marker then goes through the same channel behind those
//! events, and the notification leaves when the marker comes out. Events above T that arrive in
//! the meantime are held back until then, so no event newer than a notification ever precedes it.

use std::collections::{BTreeMap, VecDeque};
use std::pin::Pin;
use std::time::Duration;

use cairn_kv::pb::etcdserverpb::watch_create_request::FilterType;
use cairn_kv::pb::etcdserverpb::watch_request::RequestUnion;
use cairn_kv::pb::etcdserverpb::{WatchCreateRequest, WatchRequest, WatchResponse};
use cairn_kv::{Error, KeyRange, RevisionEvents, Store, WatchEvent, WatchSpec, Watcher};
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use crate::header;
use crate::rpc::etcdserverpb::watch_server::Watch;
use crate::status::stopped;

/// etcd's cancel reason for a client-chosen watch ID that is in use on the stream.
const DUPLICATE_ID: &str = "mvcc: duplicate watch ID provided on the WatchStream";
/// The watch ID of answers that concern no single watch.
const NO_WATCH: i64 = -1;
/// How often a pending progress request checks whether the watchers have caught up.
const PROGRESS_POLL: Duration = Duration::from_millis(10);
/// The most responses held back behind a pending progress notification; past it the
/// notification is given up (and a client's request retried later), as etcd defers it.
const MAX_HELD: usize = 1024;
/// Responses queued for the client.
const OUT_CAPACITY: usize = 128;
/// Revisions queued from the stream's watchers.
const EVENTS_CAPACITY: usize = 256;

/// Serves `etcdserverpb.Watch`.
pub(crate) struct WatchService {
    store: Store,
    progress_notify_interval: Duration,
    stopping: CancellationToken,
}

impl WatchService {
    pub(crate) fn new(
        store: Store,
        progress_notify_interval: Duration,
        stopping: CancellationToken,
    ) -> Self {
        WatchService {
            store,
            progress_notify_interval,
            stopping,
        }
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Watch for WatchService {
    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<Streaming<WatchRequest>>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let (out, rx) = mpsc::channel(OUT_CAPACITY);
        let (events_tx, events_rx) = mpsc::channel(EVENTS_CAPACITY);
        let session = Session {
            raft_term: self.store.status().raft_term,
            store: self.store.clone(),
            out,
            events: events_tx,
            watches: BTreeMap::new(),
            next_id: 0,
            next_generation: 0,
            next_seq: 0,
            progress: None,
            progress_again: false,
            held: VecDeque::new(),
        };
        let stopping = self.stopping.clone();
        tokio::spawn(session.run(
            request.into_inner(),
            events_rx,
            self.progress_notify_interval,
            stopping,
        ));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// What a message from a watcher belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    /// A watch; `generation` tells apart two watches that used the same ID one after the other.
    Watch { id: i64, generation: u64 },
    /// The marker of progress notification `seq`.
    Progress { seq: u64 },
}

/// A running watch.
struct Active {
    generation: u64,
    watcher: Watcher,
    progress_notify: bool,
    /// No events were sent since the last progress tick (etcd then sends a notification).
    quiet: bool,
}

/// A progress notification on its way.
struct Progress {
    seq: u64,
    /// The revision it announces.
    target: i64,
    /// Answer a client's `WatchProgressRequest` (watch ID -1, needs every watcher synced).
    all: bool,
    /// Watches due a `progress_notify` notification; each was synced past `target`.
    notify: Vec<(i64, u64)>,
    /// The marker is in the channel.
    marker_sent: bool,
}

/// The client went away.
struct Gone;

/// What woke the stream's task.
enum Input {
    Request(WatchRequest),
    EndOfRequests,
    Event(Tag, WatchEvent),
    Poll,
    Tick,
    Gone,
    /// The server is shutting down.
    Stopping,
}

/// One watch stream.
struct Session {
    store: Store,
    out: mpsc::Sender<Result<WatchResponse, Status>>,
    events: mpsc::Sender<(Tag, WatchEvent)>,
    watches: BTreeMap<i64, Active>,
    next_id: i64,
    next_generation: u64,
    next_seq: u64,
    progress: Option<Progress>,
    /// A client's progress request came while another notification was on its way.
    progress_again: bool,
    /// Responses above the pending progress target, in arrival order.
    held: VecDeque<(i64, u64, WatchResponse)>,
    /// The Raft term put in event headers, refreshed on every control answer.
    raft_term: u64,
}

impl Session {
    async fn run(
        mut self,
        mut incoming: Streaming<WatchRequest>,
        mut events: mpsc::Receiver<(Tag, WatchEvent)>,
        progress_notify_interval: Duration,
        stopping: CancellationToken,
    ) {
        let out = self.out.clone();
        let mut poll = tokio::time::interval(PROGRESS_POLL);
        poll.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut ticks = tokio::time::interval_at(
            Instant::now() + progress_notify_interval,
            progress_notify_interval,
        );
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut reading = true;
        loop {
            let waiting = self.waiting_for_sync();
            let input = tokio::select! {
                _ = out.closed() => Input::Gone,
                _ = stopping.cancelled() => Input::Stopping,
                req = incoming.next(), if reading => match req {
                    Some(Ok(req)) => Input::Request(req),
                    // The client reset the stream or the connection broke.
                    Some(Err(_)) => Input::Gone,
                    // The client closed its side; like etcd, keep sending until it goes away.
                    None => Input::EndOfRequests,
                },
                Some((tag, event)) = events.recv() => Input::Event(tag, event),
                _ = poll.tick(), if waiting => Input::Poll,
                _ = ticks.tick() => Input::Tick,
            };
            let step = match input {
                Input::Request(req) => self.on_request(req).await,
                Input::EndOfRequests => {
                    reading = false;
                    Ok(())
                }
                Input::Event(tag, event) => self.on_event(tag, event).await,
                Input::Poll => {
                    self.try_mark();
                    Ok(())
                }
                Input::Tick => {
                    self.on_tick();
                    Ok(())
                }
                Input::Gone => Err(Gone),
                Input::Stopping => {
                    let _ = self.out.send(Err(stopped())).await;
                    Err(Gone)
                }
            };
            if step.is_err() {
                // Dropping the session drops its watchers.
                return;
            }
        }
    }

    async fn send(&self, resp: WatchResponse) -> Result<(), Gone> {
        self.out.send(Ok(resp)).await.map_err(|_| Gone)
    }

    fn header(&self, revision: i64) -> Option<cairn_kv::pb::etcdserverpb::ResponseHeader> {
        Some(header::with_term(&self.store, revision, self.raft_term))
    }

    async fn on_request(&mut self, req: WatchRequest) -> Result<(), Gone> {
        match req.request_union {
            Some(RequestUnion::CreateRequest(c)) => self.create(c).await,
            Some(RequestUnion::CancelRequest(c)) => self.cancel(c.watch_id).await,
            Some(RequestUnion::ProgressRequest(_)) => {
                self.start_progress(true, Vec::new());
                self.try_mark();
                Ok(())
            }
            None => Ok(()),
        }
    }

    async fn create(&mut self, c: WatchCreateRequest) -> Result<(), Gone> {
        self.raft_term = self.store.status().raft_term;
        let revision = self.store.revision();
        let refused = |reason: &str| WatchResponse {
            header: self.header(revision),
            watch_id: NO_WATCH,
            created: true,
            canceled: true,
            cancel_reason: reason.to_owned(),
            ..Default::default()
        };
        if c.start_revision < 0 {
            let reason = Error::Compacted {
                compact_revision: 0,
            }
            .to_string();
            return self.send(refused(&reason)).await;
        }
        let id = if c.watch_id != 0 {
            if self.watches.contains_key(&c.watch_id) {
                return self.send(refused(DUPLICATE_ID)).await;
            }
            c.watch_id
        } else {
            while self.watches.contains_key(&self.next_id) {
                self.next_id += 1;
            }
            self.next_id += 1;
            self.next_id - 1
        };
        // An empty key is the smallest key, "\0", as in etcd.
        let key = if c.key.is_empty() { vec![0] } else { c.key };
        let spec = WatchSpec {
            range: KeyRange::new(&key, &c.range_end),
            // "From now" is pinned to the revision the created answer reports.
            start_revision: if c.start_revision > 0 {
                c.start_revision
            } else {
                revision + 1
            },
            prev_kv: c.prev_kv,
            no_put: c.filters.contains(&(FilterType::Noput as i32)),
            no_delete: c.filters.contains(&(FilterType::Nodelete as i32)),
        };
        self.send(WatchResponse {
            header: self.header(revision),
            watch_id: id,
            created: true,
            ..Default::default()
        })
        .await?;
        let generation = self.next_generation;
        self.next_generation += 1;
        match self
            .store
            .watch(spec, Tag::Watch { id, generation }, self.events.clone())
        {
            Ok(watcher) => {
                let active = Active {
                    generation,
                    watcher,
                    progress_notify: c.progress_notify,
                    quiet: true,
                };
                self.watches.insert(id, active);
                Ok(())
            }
            Err(e) => self.send(self.canceled(id, revision, e)).await,
        }
    }

    /// The answer that ends watch `id` because of `e`.
    fn canceled(&self, id: i64, revision: i64, e: Error) -> WatchResponse {
        let compact_revision = match e {
            Error::Compacted { compact_revision } => compact_revision,
            _ => 0,
        };
        let cancel_reason = e.to_string();
        WatchResponse {
            header: self.header(revision),
            watch_id: id,
            canceled: true,
            compact_revision,
            cancel_reason,
            ..Default::default()
        }
    }

    async fn cancel(&mut self, id: i64) -> Result<(), Gone> {
        // etcd does not answer a cancel for a watch that does not exist.
        let Some(active) = self.watches.remove(&id) else {
            return Ok(());
        };
        drop(active.watcher);
        self.held
            .retain(|(i, g, _)| (*i, *g) != (id, active.generation));
        self.raft_term = self.store.status().raft_term;
        let revision = self.store.revision();
        self.send(WatchResponse {
            header: self.header(revision),
            watch_id: id,
            canceled: true,
            ..Default::default()
        })
        .await
    }

    async fn on_event(&mut self, tag: Tag, event: WatchEvent) -> Result<(), Gone> {
        let (id, generation) = match tag {
            Tag::Progress { seq } => {
                let WatchEvent::Events(RevisionEvents { revision, .. }) = event else {
                    return Ok(());
                };
                return self.on_marker(seq, revision).await;
            }
            Tag::Watch { id, generation } => (id, generation),
        };
        let Some(active) = self
            .watches
            .get_mut(&id)
            .filter(|a| a.generation == generation)
        else {
            // A watch canceled since; its last messages are dropped.
            return Ok(());
        };
        let (resp, revision) = match event {
            WatchEvent::Events(r) => {
                active.quiet = false;
                let resp = WatchResponse {
                    header: self.header(r.revision),
                    watch_id: id,
                    events: r.events,
                    ..Default::default()
                };
                (resp, r.revision)
            }
            WatchEvent::Compacted { compact_revision } => {
                self.watches.remove(&id);
                let resp = self.canceled(
                    id,
                    self.store.revision(),
                    Error::Compacted { compact_revision },
                );
                (resp, i64::MAX)
            }
        };
        match &self.progress {
            Some(p) if revision > p.target => self.hold(id, generation, resp).await,
            _ => self.send(resp).await,
        }
    }

    /// Holds back a response until the pending progress notification is sent.
    async fn hold(&mut self, id: i64, generation: u64, resp: WatchResponse) -> Result<(), Gone> {
        self.held.push_back((id, generation, resp));
        if self.held.len() > MAX_HELD {
            if let Some(p) = self.progress.take() {
                self.progress_again |= p.all;
            }
            self.release().await?;
        }
        Ok(())
    }

    async fn release(&mut self) -> Result<(), Gone> {
        while let Some((_, _, resp)) = self.held.pop_front() {
            self.send(resp).await?;
        }
        Ok(())
    }

    /// The marker of notification `seq` came out of the channel: everything up to `target` has
    /// been forwarded.
    async fn on_marker(&mut self, seq: u64, target: i64) -> Result<(), Gone> {
        let Some(p) = self.progress.take_if(|p| p.seq == seq) else {
            return Ok(());
        };
        self.raft_term = self.store.status().raft_term;
        // Like etcd, a request on a stream without watches gets no answer.
        if p.all && !self.watches.is_empty() {
            let resp = WatchResponse {
                header: self.header(target),
                watch_id: NO_WATCH,
                ..Default::default()
            };
            self.send(resp).await?;
        }
        for (id, generation) in p.notify {
            if self
                .watches
                .get(&id)
                .is_some_and(|a| a.generation == generation)
            {
                self.send(WatchResponse {
                    header: self.header(target),
                    watch_id: id,
                    ..Default::default()
                })
                .await?;
            }
        }
        self.release().await?;
        if self.progress_again {
            self.progress_again = false;
            self.start_progress(true, Vec::new());
            self.try_mark();
        }
        Ok(())
    }

    /// Starts a notification at the current revision, or joins the pending one.
    fn start_progress(&mut self, all: bool, notify: Vec<(i64, u64)>) {
        if let Some(p) = &mut self.progress {
            // The watches to notify are synced past now, hence past the pending target.
            p.notify.extend(notify);
            self.progress_again |= all;
            return;
        }
        if !all && notify.is_empty() {
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let target = self.store.revision();
        self.progress = Some(Progress {
            seq,
            target,
            all,
            notify,
            marker_sent: false,
        });
    }

    fn waiting_for_sync(&self) -> bool {
        match &self.progress {
            Some(p) => !p.marker_sent,
            None => self.progress_again,
        }
    }

    /// Sends the pending notification's marker once the watchers it concerns are synced.
    fn try_mark(&mut self) {
        if self.progress.is_none() && self.progress_again {
            self.progress_again = false;
            self.start_progress(true, Vec::new());
        }
        let Some(p) = &mut self.progress else { return };
        if p.marker_sent
            || (p.all
                && !self
                    .watches
                    .values()
                    .all(|a| a.watcher.synced() >= p.target))
        {
            return;
        }
        p.marker_sent = true;
        let marker = (
            Tag::Progress { seq: p.seq },
            WatchEvent::Events(RevisionEvents {
                revision: p.target,
                events: Vec::new(),
            }),
        );
        if let Err(mpsc::error::TrySendError::Full(marker)) = self.events.try_send(marker) {
            // This task drains the channel, so it must not wait for room itself.
            let events = self.events.clone();
            tokio::spawn(async move {
                let _ = events.send(marker).await;
            });
        }
    }

    /// A `progress_notify_interval` passed: notify the quiet, synced watches that asked for it.
    fn on_tick(&mut self) {
        let now = self.store.revision();
        let mut due = Vec::new();
        for (id, a) in &mut self.watches {
            if a.progress_notify {
                if a.quiet && a.watcher.synced() >= now {
                    due.push((*id, a.generation));
                }
                a.quiet = true;
            }
        }
        if !due.is_empty() {
            self.start_progress(false, due);
            self.try_mark();
        }
    }
}

//! The watch hub: etcd's watchers on one node, with etcd's guarantees (ordered, unique, reliable,
//! atomic, resumable, bookmarkable) and etcd's synced / unsynced watcher groups.
//!
//! - After each durable batch the writer calls [`WatchHub::publish`]: the hub reads the batch's
//!   events from the store's revision index and hands each synced watcher, found through the
//!   interval index (`watch_index`), one response per revision. It never waits for a client: a
//!   watcher whose buffer is full leaves the synced group instead.
//! - Unsynced watchers (started at an old revision, or fallen behind) are caught up from the
//!   store's history by the catch-up thread, up to [`CATCH_UP_REVISIONS_MAX`] revisions per
//!   response as etcd batches them, and rejoin the synced group once they reach the published
//!   revision. One whose history was compacted is canceled with `compact_revision`, as in etcd.
//! - A [`WatchStream`] is one client stream: its watch ids, and one queue of responses that its
//!   frontend drains ([`WatchStream::next`]).
//!
//! Invariants (all kept under the one hub lock):
//! - A watcher is synced (in the interval index) or unsynced (in `unsynced`), never both.
//! - `next_revision` is the first revision a watcher has not been handed; every response to a
//!   watcher covers revisions at or after it, so no event is delivered twice or skipped.
//! - A watcher's `created` response is queued before any other response to it; after its
//!   `canceled` response nothing more of it is queued, and what was queued is dropped.
//! - A watcher's responses wait in its stream's queue; at most [`WATCHER_BUFFER_RESPONSES_MAX`]
//!   of them, plus its created, canceled and catch-up responses.
//! - Lock order: the hub lock may be held while taking the store's read lock (in `publish`),
//!   never the other way round; the catch-up thread reads the store without the hub lock.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use strata_mvcc::{Event, EventKind, KvError, Store};
use strata_types::Revision;
use tokio::sync::Notify;

use crate::watch_index::{IntervalIndex, WatcherKey};

/// Responses a watcher may have waiting in its stream's queue before it falls behind (and is
/// caught up from history once its client reads again).
pub const WATCHER_BUFFER_RESPONSES_MAX: usize = 256;
/// Revisions with events one catch-up response carries at most (etcd's `watchBatchMaxRevs`).
pub const CATCH_UP_REVISIONS_MAX: usize = 1000;
/// Revisions the catch-up thread reads from the store per hold of its read lock.
pub const CATCH_UP_SCAN_REVISIONS_MAX: Revision = 10_000;
/// Unsynced watchers caught up per round (etcd's `maxWatchersPerSync`).
pub const CATCH_UP_WATCHERS_MAX: usize = 512;
/// How often the catch-up thread looks again at watchers it could not finish (etcd syncs every
/// 100 ms); it is also woken whenever there is new work.
pub const CATCH_UP_RETRY_INTERVAL_MILLIS: u64 = 100;
/// Responses a stream's frontend takes from its queue at once.
pub const STREAM_DRAIN_RESPONSES_MAX: usize = 256;
/// etcd's default `--experimental-watch-progress-notify-interval`: 10 minutes.
pub const WATCH_PROGRESS_NOTIFY_INTERVAL_DEFAULT_MILLIS: u64 = 10 * 60 * 1000;

/// A create request, as the frontend read it from etcd's `WatchCreateRequest`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchCreate {
    /// Already normalized as etcd does: never empty (an empty key is `[0]`).
    pub key: Vec<u8>,
    /// Empty: the single key. `[0]`: every key from `key` on. Otherwise `[key, range_end)`.
    pub range_end: Vec<u8>,
    /// 0: from the next revision. Otherwise the first revision to deliver.
    pub start_revision: Revision,
    pub progress_notify: bool,
    /// Drop PUT events (etcd's NOPUT filter).
    pub no_put: bool,
    /// Drop DELETE events (etcd's NODELETE filter).
    pub no_delete: bool,
    pub prev_kv: bool,
    /// 0: the stream picks the next free id.
    pub watch_id: i64,
    pub fragment: bool,
}

/// Why a create request was refused; `strata-etcd-api`'s error table holds etcd's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchError {
    /// `mvcc: duplicate watch ID provided on the WatchStream`
    DuplicateId,
    /// `mvcc: watcher range is empty`
    EmptyRange,
    /// Refused by auth (no read permission on the range, or bad credentials); the frontend words
    /// it as etcd's watch server does.
    Auth(strata_auth::AuthError),
}

impl std::fmt::Display for WatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WatchError::DuplicateId => "mvcc: duplicate watch ID provided on the WatchStream",
            WatchError::EmptyRange => "mvcc: watcher range is empty",
            WatchError::Auth(error) => error.message(),
        })
    }
}

impl std::error::Error for WatchError {}

/// The watch id of responses that belong to no watcher (a refused create, a stream-wide progress
/// response), as etcd's `-1`.
pub const WATCH_ID_NONE: i64 = -1;

/// One response of a watch stream, in Strata's own types; the frontend adds the header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchResponse {
    pub watch_id: i64,
    /// The header revision.
    pub revision: Revision,
    pub created: bool,
    pub canceled: bool,
    pub compact_revision: Revision,
    pub cancel_reason: Option<WatchError>,
    pub events: Vec<Arc<Event>>,
    /// Whether the watcher asked for previous key-values: events may carry one for another
    /// watcher, and the frontend drops it unless this is set.
    pub prev_kv: bool,
    /// Whether the watcher allows a large response to be split.
    pub fragment: bool,
}

struct Watcher {
    stream: u64,
    watch_id: i64,
    key: Vec<u8>,
    range_end: Vec<u8>,
    no_put: bool,
    no_delete: bool,
    prev_kv: bool,
    fragment: bool,
    progress_notify: bool,
    next_revision: Revision,
    synced: bool,
    /// Responses of this watcher waiting in its stream's queue.
    buffered: usize,
    /// Whether events were queued since the last progress tick (which then skips this watcher).
    events_since_progress: bool,
}

impl Watcher {
    /// The events this watcher keeps after its filters, or `None` if none is left.
    fn filter(&self, events: &[Arc<Event>]) -> Option<Vec<Arc<Event>>> {
        let kept: Vec<Arc<Event>> = events
            .iter()
            .filter(|event| match event.kind {
                EventKind::Put => !self.no_put,
                EventKind::Delete => !self.no_delete,
            })
            .cloned()
            .collect();
        (!kept.is_empty()).then_some(kept)
    }

    fn response(&self, revision: Revision, events: Vec<Arc<Event>>) -> WatchResponse {
        WatchResponse { watch_id: self.watch_id, revision, events, prev_kv: self.prev_kv, fragment: self.fragment, ..WatchResponse::default() }
    }
}

struct StreamState {
    /// Responses to send, each with the watcher it counts against.
    queue: VecDeque<(Option<WatcherKey>, WatchResponse)>,
    notify: Arc<Notify>,
    /// The stream's watch ids. `None`: canceled by compaction; the id stays taken until the client
    /// cancels it, as in etcd.
    watch_ids: HashMap<i64, Option<WatcherKey>>,
    next_watch_id: i64,
}

#[derive(Default)]
struct HubState {
    /// The newest revision handed to synced watchers: the durable revision as of the last publish.
    revision: Revision,
    watchers: HashMap<WatcherKey, Watcher>,
    /// The synced watchers.
    index: IntervalIndex,
    /// Synced watchers that want previous key-values: publish reads them only when needed.
    synced_prev_kv: usize,
    unsynced: BTreeSet<WatcherKey>,
    /// Where the next catch-up round starts in `unsynced`, so that every watcher gets its turn.
    catch_up_cursor: WatcherKey,
    streams: HashMap<u64, StreamState>,
    next_key: u64,
    closed: bool,
}

/// Work for the catch-up thread.
#[derive(Default)]
struct Signal {
    pending: bool,
    stopped: bool,
}

pub struct WatchHub {
    state: Mutex<HubState>,
    signal: Mutex<Signal>,
    wake: Condvar,
    progress_notify_interval: Duration,
}

impl WatchHub {
    pub(crate) fn new(revision: Revision, progress_notify_interval: Duration) -> WatchHub {
        WatchHub {
            state: Mutex::new(HubState { revision, ..HubState::default() }),
            signal: Mutex::new(Signal::default()),
            wake: Condvar::new(),
            progress_notify_interval,
        }
    }

    fn state(&self) -> MutexGuard<'_, HubState> {
        self.state.lock().expect("watch hub lock poisoned")
    }

    fn wake_catch_up(&self) {
        self.signal.lock().expect("watch signal lock poisoned").pending = true;
        self.wake.notify_one();
    }

    /// Hands the events of every revision made durable since the last call to the synced
    /// watchers. Called by the writer after each durable batch, before it answers the batch.
    pub(crate) fn publish(&self, store: &RwLock<Store>) {
        let mut state = self.state();
        let (durable, events) = {
            let store = store.read().expect("store lock poisoned");
            let durable = store.durable_revision();
            if durable <= state.revision {
                return;
            }
            let events = (state.index.len() > 0).then(|| store.revision_events(state.revision + 1, durable, state.synced_prev_kv > 0));
            (durable, events)
        };
        state.revision = durable;
        let Some(events) = events else { return };
        let events: Vec<Arc<Event>> = events.into_iter().map(Arc::new).collect();
        let mut fallen_behind = false;
        let mut touched_streams = HashSet::new();
        let mut matched = Vec::new();
        for of_revision in events.chunk_by(|a, b| a.revision() == b.revision()) {
            let revision = of_revision[0].revision();
            let mut pairs: Vec<(WatcherKey, usize)> = Vec::new();
            for (position, event) in of_revision.iter().enumerate() {
                matched.clear();
                state.index.matches(&event.kv.key, &mut matched);
                pairs.extend(matched.iter().map(|watcher| (*watcher, position)));
            }
            pairs.sort_unstable();
            for group in pairs.chunk_by(|a, b| a.0 == b.0) {
                let key = group[0].0;
                let events: Vec<Arc<Event>> = group.iter().map(|(_, position)| of_revision[*position].clone()).collect();
                fallen_behind |= state.deliver(key, revision, &events, &mut touched_streams);
            }
        }
        for stream in touched_streams {
            if let Some(stream) = state.streams.get(&stream) {
                stream.notify.notify_one();
            }
        }
        drop(state);
        if fallen_behind {
            self.wake_catch_up();
        }
    }

    /// The watchers, synced and unsynced (`etcd_debugging_mvcc_watcher_total`).
    pub(crate) fn watcher_count(&self) -> usize {
        self.state().watchers.len()
    }

    /// Stops every stream ([`WatchStream::next`] answers `None`) and the catch-up thread.
    pub(crate) fn close(&self) {
        let mut state = self.state();
        state.closed = true;
        for stream in state.streams.values() {
            stream.notify.notify_one();
        }
        drop(state);
        self.signal.lock().expect("watch signal lock poisoned").stopped = true;
        self.wake.notify_all();
    }

    fn open_stream(self: &Arc<Self>) -> WatchStream {
        let mut state = self.state();
        let key = state.next_key;
        state.next_key += 1;
        let notify = Arc::new(Notify::new());
        if state.closed {
            notify.notify_one();
        }
        state.streams.insert(key, StreamState { queue: VecDeque::new(), notify: notify.clone(), watch_ids: HashMap::new(), next_watch_id: 0 });
        WatchStream { hub: self.clone(), key, notify }
    }

    /// Catches up to [`CATCH_UP_WATCHERS_MAX`] unsynced watchers that have room in their buffers.
    /// Returns whether one of them could go on at once, and whether any watcher is unsynced.
    fn catch_up_round(&self, store: &RwLock<Store>) -> (bool, bool) {
        let candidates: Vec<(WatcherKey, CatchUp)> = {
            let mut state = self.state();
            let cursor = state.catch_up_cursor;
            let candidates: Vec<(WatcherKey, CatchUp)> = state
                .unsynced
                .range(cursor..)
                .chain(state.unsynced.range(..cursor))
                .filter_map(|key| state.watchers.get(key).map(|watcher| (*key, watcher)))
                .filter(|(_, watcher)| watcher.buffered < WATCHER_BUFFER_RESPONSES_MAX)
                .take(CATCH_UP_WATCHERS_MAX)
                .map(|(key, watcher)| {
                    let catch_up =
                        CatchUp { key: watcher.key.clone(), range_end: watcher.range_end.clone(), from: watcher.next_revision, prev_kv: watcher.prev_kv };
                    (key, catch_up)
                })
                .collect();
            state.catch_up_cursor = candidates.last().map_or(0, |(key, _)| key + 1);
            candidates
        };
        let mut more = false;
        for (key, catch_up) in candidates {
            let outcome = catch_up.read(store);
            let mut state = self.state();
            more |= state.finish_catch_up(key, catch_up.from, outcome);
        }
        let unsynced = !self.state().unsynced.is_empty();
        (more, unsynced)
    }

    /// Queues a progress response for every synced watcher that asked for them and had no events
    /// since the last tick, as etcd's progress ticker does.
    fn progress_tick(&self) {
        let mut state = self.state();
        let state = &mut *state;
        let revision = state.revision;
        let mut touched_streams = HashSet::new();
        for (key, watcher) in state.watchers.iter_mut().filter(|(_, watcher)| watcher.progress_notify) {
            let due = !std::mem::take(&mut watcher.events_since_progress);
            if !due || !watcher.synced || watcher.buffered >= WATCHER_BUFFER_RESPONSES_MAX {
                continue;
            }
            let Some(stream) = state.streams.get_mut(&watcher.stream) else { continue };
            watcher.buffered += 1;
            stream.queue.push_back((Some(*key), watcher.response(revision, Vec::new())));
            touched_streams.insert(watcher.stream);
        }
        for stream in touched_streams {
            if let Some(stream) = state.streams.get(&stream) {
                stream.notify.notify_one();
            }
        }
    }
}

impl HubState {
    /// Queues one revision's events for a synced watcher. Returns true if the watcher fell behind
    /// (its buffer was full) and left the synced group.
    fn deliver(&mut self, key: WatcherKey, revision: Revision, events: &[Arc<Event>], touched_streams: &mut HashSet<u64>) -> bool {
        let Some(watcher) = self.watchers.get_mut(&key) else { return false };
        if revision < watcher.next_revision {
            return false;
        }
        let Some(events) = watcher.filter(events) else { return false };
        if watcher.buffered >= WATCHER_BUFFER_RESPONSES_MAX {
            watcher.next_revision = revision;
            self.leave_synced(key);
            self.unsynced.insert(key);
            return true;
        }
        let Some(stream) = self.streams.get_mut(&watcher.stream) else { return false };
        watcher.buffered += 1;
        watcher.events_since_progress = true;
        watcher.next_revision = revision + 1;
        stream.queue.push_back((Some(key), watcher.response(revision, events)));
        touched_streams.insert(watcher.stream);
        false
    }

    fn join_synced(&mut self, key: WatcherKey) {
        let Some(watcher) = self.watchers.get_mut(&key) else { return };
        if watcher.synced {
            return;
        }
        watcher.synced = true;
        if watcher.prev_kv {
            self.synced_prev_kv += 1;
        }
        self.index.insert(&watcher.key, &watcher.range_end, key);
        self.unsynced.remove(&key);
    }

    fn leave_synced(&mut self, key: WatcherKey) {
        let Some(watcher) = self.watchers.get_mut(&key) else { return };
        if !watcher.synced {
            return;
        }
        watcher.synced = false;
        if watcher.prev_kv {
            self.synced_prev_kv -= 1;
        }
        self.index.remove(&watcher.key, &watcher.range_end, key);
    }

    /// Removes a watcher from the hub and its responses from its stream's queue.
    fn remove_watcher(&mut self, key: WatcherKey) -> Option<Watcher> {
        self.leave_synced(key);
        self.unsynced.remove(&key);
        let watcher = self.watchers.remove(&key)?;
        if let Some(stream) = self.streams.get_mut(&watcher.stream) {
            stream.queue.retain(|(owner, _)| *owner != Some(key));
        }
        Some(watcher)
    }

    /// Applies what the catch-up thread read for a watcher that was at `from`. Returns whether it
    /// is still unsynced and could go on at once.
    fn finish_catch_up(&mut self, key: WatcherKey, from: Revision, outcome: CatchUpOutcome) -> bool {
        let Some(watcher) = self.watchers.get_mut(&key) else { return false };
        if watcher.synced || watcher.next_revision != from {
            return false;
        }
        let stream_key = watcher.stream;
        match outcome {
            CatchUpOutcome::Compacted { compact_revision } => {
                let watch_id = watcher.watch_id;
                self.remove_watcher(key);
                if let Some(stream) = self.streams.get_mut(&stream_key) {
                    stream.watch_ids.insert(watch_id, None);
                    // etcd's header carries no revision here.
                    let response = WatchResponse { watch_id, canceled: true, compact_revision, ..WatchResponse::default() };
                    stream.queue.push_back((None, response));
                    stream.notify.notify_one();
                }
                false
            }
            CatchUpOutcome::Read { events, through, revision } => {
                if let Some(events) = watcher.filter(&events) {
                    if let Some(stream) = self.streams.get_mut(&stream_key) {
                        watcher.buffered += 1;
                        watcher.events_since_progress = true;
                        stream.queue.push_back((Some(key), watcher.response(revision, events)));
                        stream.notify.notify_one();
                    }
                }
                watcher.next_revision = through + 1;
                let room = watcher.buffered < WATCHER_BUFFER_RESPONSES_MAX;
                if through >= self.revision {
                    self.join_synced(key);
                    false
                } else {
                    room
                }
            }
        }
    }
}

/// What the catch-up thread reads for one watcher.
struct CatchUp {
    key: Vec<u8>,
    range_end: Vec<u8>,
    from: Revision,
    prev_kv: bool,
}

enum CatchUpOutcome {
    Compacted {
        compact_revision: Revision,
    },
    /// The events of `from..=through` (at most [`CATCH_UP_REVISIONS_MAX`] revisions with
    /// events), read when the durable revision was `revision` (the response's header revision).
    Read {
        events: Vec<Arc<Event>>,
        through: Revision,
        revision: Revision,
    },
}

impl CatchUp {
    /// Reads the watcher's history from `from` on, in chunks of the store's read lock.
    fn read(&self, store: &RwLock<Store>) -> CatchUpOutcome {
        let mut events: Vec<Arc<Event>> = Vec::new();
        let mut revisions = 0;
        let mut from = self.from;
        loop {
            let guard = store.read().expect("store lock poisoned");
            let durable = guard.durable_revision();
            let compacted = guard.compacted_revision();
            if from < compacted {
                return CatchUpOutcome::Compacted { compact_revision: compacted };
            }
            // A negative start that is not compacted away: etcd reads no history for it and
            // goes on from the next revision.
            if from <= 0 {
                return CatchUpOutcome::Read { events, through: durable, revision: durable };
            }
            let to = durable.min(from.saturating_add(CATCH_UP_SCAN_REVISIONS_MAX - 1));
            let chunk = match guard.events(&self.key, &self.range_end, from, to, self.prev_kv) {
                Ok(chunk) => chunk,
                Err(KvError::Compacted) => return CatchUpOutcome::Compacted { compact_revision: compacted },
                Err(_) => Vec::new(),
            };
            drop(guard);
            let mut last_revision = events.last().map(|event| event.revision());
            for event in chunk {
                if last_revision != Some(event.revision()) {
                    if revisions == CATCH_UP_REVISIONS_MAX {
                        return CatchUpOutcome::Read { through: event.revision() - 1, events, revision: durable };
                    }
                    revisions += 1;
                    last_revision = Some(event.revision());
                }
                events.push(Arc::new(event));
            }
            if to >= durable {
                return CatchUpOutcome::Read { events, through: durable, revision: durable };
            }
            from = to + 1;
        }
    }
}

/// One client's watch stream: its watch ids and its queue of responses. Dropping it removes its
/// watchers.
pub struct WatchStream {
    hub: Arc<WatchHub>,
    key: u64,
    notify: Arc<Notify>,
}

impl WatchStream {
    /// etcd's create: queues the `created` response (or a refusal with `watch_id` −1), then the
    /// watcher's events from its start revision on.
    pub fn create(&self, request: WatchCreate) {
        let mut state = self.hub.state();
        let state = &mut *state;
        let revision = state.revision;
        let Some(stream) = state.streams.get_mut(&self.key) else { return };
        let refuse = |stream: &mut StreamState, reason: WatchError| {
            let response =
                WatchResponse { watch_id: WATCH_ID_NONE, revision, created: true, canceled: true, cancel_reason: Some(reason), ..WatchResponse::default() };
            stream.queue.push_back((None, response));
            stream.notify.notify_one();
        };
        let ranged = !request.range_end.is_empty() && request.range_end != [0];
        if ranged && request.key >= request.range_end {
            return refuse(stream, WatchError::EmptyRange);
        }
        let watch_id = if request.watch_id == 0 {
            while stream.watch_ids.contains_key(&stream.next_watch_id) {
                stream.next_watch_id += 1;
            }
            stream.next_watch_id += 1;
            stream.next_watch_id - 1
        } else if stream.watch_ids.contains_key(&request.watch_id) {
            return refuse(stream, WatchError::DuplicateId);
        } else {
            request.watch_id
        };
        let key = state.next_key;
        state.next_key += 1;
        stream.watch_ids.insert(watch_id, Some(key));
        let created = WatchResponse { watch_id, revision, created: true, ..WatchResponse::default() };
        stream.queue.push_back((None, created));
        stream.notify.notify_one();
        let start = if request.start_revision == 0 { revision + 1 } else { request.start_revision };
        let watcher = Watcher {
            stream: self.key,
            watch_id,
            key: request.key,
            range_end: request.range_end,
            no_put: request.no_put,
            no_delete: request.no_delete,
            prev_kv: request.prev_kv,
            fragment: request.fragment,
            progress_notify: request.progress_notify,
            next_revision: start,
            synced: false,
            buffered: 0,
            events_since_progress: false,
        };
        state.watchers.insert(key, watcher);
        if start > revision {
            state.join_synced(key);
        } else {
            state.unsynced.insert(key);
            self.hub.wake_catch_up();
        }
    }

    /// Refuses a create request without looking at it (the frontend's auth check failed): queues
    /// a refusal with watch id −1, in order with the stream's other responses, as etcd does.
    pub fn refuse(&self, reason: WatchError) {
        let mut state = self.hub.state();
        let revision = state.revision;
        let Some(stream) = state.streams.get_mut(&self.key) else { return };
        let response = WatchResponse { watch_id: WATCH_ID_NONE, revision, created: true, canceled: true, cancel_reason: Some(reason), ..WatchResponse::default() };
        stream.queue.push_back((None, response));
        stream.notify.notify_one();
    }

    /// etcd's cancel: queues `canceled` for a watch id of this stream; an unknown id gets nothing.
    pub fn cancel(&self, watch_id: i64) {
        let mut state = self.hub.state();
        let revision = state.revision;
        let Some(stream) = state.streams.get_mut(&self.key) else { return };
        let Some(watcher) = stream.watch_ids.remove(&watch_id) else { return };
        if let Some(watcher) = watcher {
            state.remove_watcher(watcher);
        }
        let Some(stream) = state.streams.get_mut(&self.key) else { return };
        let response = WatchResponse { watch_id, revision, canceled: true, ..WatchResponse::default() };
        stream.queue.push_back((None, response));
        stream.notify.notify_one();
    }

    /// etcd 3.4's progress request: one response with watch id −1 and the revision every watcher
    /// of the stream has been handed all events up to (the published revision when all are
    /// synced, as etcd answers; lower while one is still catching up, so it never overstates).
    pub fn request_progress(&self) {
        let mut state = self.hub.state();
        let state = &mut *state;
        let behind = state
            .unsynced
            .iter()
            .filter_map(|key| state.watchers.get(key))
            // A negative start is either compacted away or goes on from now: it holds nothing back.
            .filter(|watcher| watcher.stream == self.key && watcher.next_revision > 0)
            .map(|watcher| watcher.next_revision - 1)
            .min();
        let revision = behind.map_or(state.revision, |behind| behind.clamp(0, state.revision));
        let Some(stream) = state.streams.get_mut(&self.key) else { return };
        let response = WatchResponse { watch_id: WATCH_ID_NONE, revision, ..WatchResponse::default() };
        stream.queue.push_back((None, response));
        stream.notify.notify_one();
    }

    /// The next responses to send, oldest first; waits until there is one. `None` once the node
    /// is shutting down.
    pub async fn next(&self) -> Option<Vec<WatchResponse>> {
        loop {
            let notified = self.notify.notified();
            {
                let mut state = self.hub.state();
                if state.closed {
                    return None;
                }
                let state = &mut *state;
                let stream = state.streams.get_mut(&self.key)?;
                let taken: Vec<(Option<WatcherKey>, WatchResponse)> = stream.queue.drain(..stream.queue.len().min(STREAM_DRAIN_RESPONSES_MAX)).collect();
                if !stream.queue.is_empty() {
                    stream.notify.notify_one();
                }
                let mut room_for_unsynced = false;
                for watcher in taken.iter().filter_map(|(owner, _)| owner.as_ref()) {
                    if let Some(watcher) = state.watchers.get_mut(watcher) {
                        watcher.buffered = watcher.buffered.saturating_sub(1);
                        room_for_unsynced |= !watcher.synced;
                    }
                }
                if room_for_unsynced {
                    self.hub.wake_catch_up();
                }
                if !taken.is_empty() {
                    return Some(taken.into_iter().map(|(_, response)| response).collect());
                }
            }
            notified.await;
        }
    }
}

impl Drop for WatchStream {
    fn drop(&mut self) {
        let mut state = self.hub.state();
        let Some(stream) = state.streams.remove(&self.key) else { return };
        for watcher in stream.watch_ids.into_values().flatten() {
            state.remove_watcher(watcher);
        }
    }
}

impl crate::Node {
    /// A new watch stream on this node.
    pub fn watch_stream(&self) -> WatchStream {
        self.shared.watches.open_stream()
    }

    /// Ends every watch stream (their frontends see `None`): called when the node stops serving,
    /// so that open streams do not hold up a graceful shutdown.
    pub fn close_watches(&self) {
        self.shared.watches.close();
    }
}

/// The catch-up thread: catches unsynced watchers up from history and sends periodic progress
/// notifications. Dropping the task (with its node) stops the thread without waiting for it.
pub(crate) struct CatchUpTask {
    hub: Arc<WatchHub>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CatchUpTask {
    pub(crate) fn start(shared: Arc<crate::Shared>) -> std::io::Result<CatchUpTask> {
        let hub = shared.watches.clone();
        let thread = std::thread::Builder::new().name("strata-watch".into()).spawn(move || catch_up_loop(&shared))?;
        Ok(CatchUpTask { hub, thread: Some(thread) })
    }

    /// Closes every watch stream and waits for the thread.
    pub(crate) async fn stop(mut self) {
        self.hub.close();
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

impl Drop for CatchUpTask {
    fn drop(&mut self) {
        self.hub.close();
    }
}

fn catch_up_loop(shared: &crate::Shared) {
    let hub = &shared.watches;
    let mut next_progress = Instant::now() + hub.progress_notify_interval;
    let mut unsynced = false;
    loop {
        {
            let mut signal = hub.signal.lock().expect("watch signal lock poisoned");
            while !signal.stopped && !signal.pending {
                let now = Instant::now();
                if now >= next_progress {
                    break;
                }
                // Watchers waiting for room in their buffers are also woken by their streams;
                // the retry only bounds how long a missed wake-up could delay them.
                let until_progress = next_progress - now;
                let wait = if unsynced { until_progress.min(Duration::from_millis(CATCH_UP_RETRY_INTERVAL_MILLIS)) } else { until_progress };
                let (guard, timeout) = hub.wake.wait_timeout(signal, wait).expect("watch signal lock poisoned");
                signal = guard;
                if timeout.timed_out() && unsynced {
                    break;
                }
            }
            if signal.stopped {
                return;
            }
            signal.pending = false;
        }
        if Instant::now() >= next_progress {
            hub.progress_tick();
            next_progress = Instant::now() + hub.progress_notify_interval;
        }
        let (more, any_unsynced) = hub.catch_up_round(&shared.store);
        unsynced = any_unsynced;
        if more {
            hub.signal.lock().expect("watch signal lock poisoned").pending = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_mvcc::{DeleteRangeRequest, PutRequest, Stamp};

    fn put(store: &RwLock<Store>, key: &str, value: &str) {
        let mut store = store.write().unwrap();
        let request = PutRequest { key: key.into(), value: value.into(), ..Default::default() };
        store.put(&request, Stamp::default(), &|_| false).unwrap();
        store.mark_durable();
    }

    fn delete(store: &RwLock<Store>, key: &str) {
        let mut store = store.write().unwrap();
        store.delete_range(&DeleteRangeRequest { key: key.into(), ..Default::default() }, Stamp::default());
        store.mark_durable();
    }

    /// Every queued response, without waiting.
    fn drain(stream: &WatchStream) -> Vec<WatchResponse> {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let mut all = Vec::new();
        loop {
            let waiting = stream.hub.state().streams.get(&stream.key).map_or(0, |stream| stream.queue.len());
            if waiting == 0 {
                return all;
            }
            all.extend(runtime.block_on(stream.next()).unwrap());
        }
    }

    fn revisions(responses: &[WatchResponse]) -> Vec<Vec<Revision>> {
        responses.iter().map(|response| response.events.iter().map(|event| event.revision()).collect()).collect()
    }

    fn hub() -> (Arc<WatchHub>, RwLock<Store>) {
        (Arc::new(WatchHub::new(1, Duration::from_secs(600))), RwLock::new(Store::new()))
    }

    #[test]
    fn created_comes_first_then_one_response_per_revision() {
        let (hub, store) = hub();
        let stream = hub.open_stream();
        stream.create(WatchCreate { key: b"a".to_vec(), range_end: b"b".to_vec(), ..Default::default() });
        put(&store, "a", "1");
        put(&store, "ab", "1");
        put(&store, "b", "1");
        hub.publish(&store);
        let responses = drain(&stream);
        assert!(responses[0].created && responses[0].watch_id == 0 && responses[0].revision == 1);
        assert_eq!(revisions(&responses[1..]), vec![vec![2], vec![3]]);
        assert_eq!(responses.iter().map(|response| response.revision).collect::<Vec<_>>(), vec![1, 2, 3]);
    }

    #[test]
    fn a_full_buffer_makes_a_watcher_unsynced_and_history_catches_it_up_exactly_once() {
        let (hub, store) = hub();
        let stream = hub.open_stream();
        stream.create(WatchCreate { key: b"k".to_vec(), ..Default::default() });
        let writes = WATCHER_BUFFER_RESPONSES_MAX + 40;
        for value in 0..writes {
            put(&store, "k", &value.to_string());
            hub.publish(&store);
        }
        {
            let state = hub.state();
            assert_eq!((state.unsynced.len(), state.index.len()), (1, 0), "the watcher fell behind");
        }
        let mut seen = Vec::new();
        let mut responses = drain(&stream);
        while hub.catch_up_round(&store).0 || !responses.is_empty() {
            seen.extend(revisions(&responses).into_iter().flatten());
            responses = drain(&stream);
        }
        seen.extend(revisions(&drain(&stream)).into_iter().flatten());
        let expected: Vec<Revision> = (2..2 + writes as Revision).collect();
        assert_eq!(seen, expected);
        let state = hub.state();
        assert_eq!((state.unsynced.len(), state.index.len()), (0, 1), "the watcher rejoined the synced group");
    }

    #[test]
    fn old_start_revisions_are_caught_up_and_compacted_ones_canceled() {
        let (hub, store) = hub();
        for value in 0..5 {
            put(&store, "k", &value.to_string());
        }
        delete(&store, "k");
        hub.publish(&store);
        let stream = hub.open_stream();
        stream.create(WatchCreate { key: b"k".to_vec(), start_revision: 3, prev_kv: true, ..Default::default() });
        hub.catch_up_round(&store);
        let responses = drain(&stream);
        assert_eq!(revisions(&responses), vec![vec![], vec![3, 4, 5, 6, 7]]);
        assert_eq!(responses[1].revision, 7, "a catch-up response carries the current revision");
        assert_eq!(responses[1].events[4].prev_kv.as_ref().map(|kv| kv.value.clone()), Some(b"4".to_vec()));
        store.write().unwrap().compact(5).unwrap();
        stream.create(WatchCreate { key: b"k".to_vec(), start_revision: 4, watch_id: 9, ..Default::default() });
        hub.catch_up_round(&store);
        let responses = drain(&stream);
        assert_eq!(responses[1], WatchResponse { watch_id: 9, canceled: true, compact_revision: 5, ..Default::default() });
        stream.create(WatchCreate { key: b"k".to_vec(), watch_id: 9, ..Default::default() });
        assert_eq!(drain(&stream)[0].cancel_reason, Some(WatchError::DuplicateId), "a compacted watcher's id stays taken");
        stream.cancel(9);
        assert!(drain(&stream)[0].canceled);
    }

    #[test]
    fn cancel_drops_queued_responses_and_ids_are_reused_as_etcd_does() {
        let (hub, store) = hub();
        let stream = hub.open_stream();
        stream.create(WatchCreate { key: b"k".to_vec(), ..Default::default() });
        stream.create(WatchCreate { key: b"k".to_vec(), watch_id: 1, ..Default::default() });
        stream.create(WatchCreate { key: b"k".to_vec(), ..Default::default() });
        put(&store, "k", "v");
        hub.publish(&store);
        stream.cancel(0);
        stream.cancel(0);
        let responses = drain(&stream);
        let ids: Vec<(i64, bool, bool, usize)> =
            responses.iter().map(|response| (response.watch_id, response.created, response.canceled, response.events.len())).collect();
        assert_eq!(ids, vec![(0, true, false, 0), (1, true, false, 0), (2, true, false, 0), (1, false, false, 1), (2, false, false, 1), (0, false, true, 0)]);
    }
}

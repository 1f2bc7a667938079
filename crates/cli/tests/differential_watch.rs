//! The watch differential test: the real `strata` binary and a real etcd 3.4, both started empty,
//! get the same watch streams and the same writes, and must send the same responses: per stream
//! and per watch id, the same sequence (created, events with their headers, cancels, compaction
//! cancels, fragments), once the headers' `cluster_id`, `member_id` and `raft_term` are zeroed.
//! Responses of different watchers at one revision may interleave differently (etcd's order
//! there is a Go map's), so each watch id's sequence is compared on its own.
//!
//! Covered: single key, prefix, range and from-key watchers; start revision 0, old, future,
//! negative and compacted; prev_kv; NOPUT and NODELETE; a txn with several events in one
//! revision; deletes; cancel (known, unknown, twice); progress requests; client-chosen ids with a
//! duplicate and a reuse after cancel; etcd's 1000-revision catch-up batches; fragments of large
//! responses; and periodic progress notifications (`--experimental-watch-progress-notify-interval`),
//! whose timing differs between servers and is checked by shape on both.
//!
//! Every step waits for what it must cause (a created response, a canceled response, a sentinel
//! write seen on every stream, a catch-up reaching the current revision) with a deadline; a wait
//! that runs out is reported, and the comparison shows what differed.

mod support;

use std::collections::BTreeMap;

use strata_etcd_api::pb::etcdserverpb as pb;
use support::watch::{create, last_event_revision, RecordedStream, RESPONSE_WAIT_MAX};
use support::{etcd_binary, start_etcd_with_args, start_strata, TempDir};
use tonic::transport::Channel;

/// Written after each step; every stream watches it, so seeing it means the step's events came.
const SENTINEL_KEY: &str = "0sentinel";
const SENTINEL_WATCH_ID: i64 = 1000;
/// The progress notification interval both servers run with.
const PROGRESS_INTERVAL: &str = "300ms";
/// Large values: four of them exceed the fragment limit (`--max-request-bytes` + 512 KiB).
const LARGE_VALUE_BYTES: usize = 600_000;
/// Puts to one key, so that a catch-up needs two of etcd's 1000-revision batches.
const MANY_PUTS: usize = 1010;

struct Side {
    name: &'static str,
    channel: Channel,
    kv: pb::kv_client::KvClient<Channel>,
    /// The streams whose responses are compared exactly.
    streams: Vec<RecordedStream>,
    failures: Vec<String>,
    revision: i64,
}

fn bytes(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}

fn put_op(key: &str, value: &str) -> pb::RequestOp {
    pb::RequestOp { request: Some(pb::request_op::Request::RequestPut(pb::PutRequest { key: bytes(key), value: bytes(value), ..Default::default() })) }
}

fn delete_op(key: &str) -> pb::RequestOp {
    pb::RequestOp { request: Some(pb::request_op::Request::RequestDeleteRange(pb::DeleteRangeRequest { key: bytes(key), ..Default::default() })) }
}

fn created_count(responses: &[pb::WatchResponse]) -> usize {
    responses.iter().filter(|response| response.created).count()
}

fn canceled(responses: &[pb::WatchResponse], watch_id: i64) -> usize {
    responses.iter().filter(|response| response.canceled && !response.created && response.watch_id == watch_id).count()
}

fn progress_count(responses: &[pb::WatchResponse]) -> usize {
    responses.iter().filter(|response| response.watch_id == -1 && !response.created).count()
}

impl Side {
    async fn new(name: &'static str, endpoint: &str) -> Side {
        let channel = Channel::from_shared(endpoint.to_string()).expect("endpoint").connect().await.expect("connect");
        let kv = pb::kv_client::KvClient::new(channel.clone()).max_decoding_message_size(usize::MAX).max_encoding_message_size(usize::MAX);
        Side { name, channel, kv, streams: Vec::new(), failures: Vec::new(), revision: 1 }
    }

    fn fail(&mut self, what: String) {
        self.failures.push(format!("{}: {what}", self.name));
    }

    /// Opens a compared stream with `first` as its first create, plus the sentinel watcher.
    async fn open(&mut self, first: pb::WatchCreateRequest) -> usize {
        let stream = RecordedStream::open(self.channel.clone(), first).await;
        stream.create(pb::WatchCreateRequest { watch_id: SENTINEL_WATCH_ID, ..create(SENTINEL_KEY, b"", 0) });
        if !stream.wait_until(RESPONSE_WAIT_MAX, |responses| created_count(responses) >= 2).await {
            self.fail("a new stream did not answer its first two creates".into());
        }
        self.streams.push(stream);
        self.streams.len() - 1
    }

    /// Sends a create and waits for its created (or refused) response; returns its watch id.
    async fn create(&mut self, stream: usize, request: pb::WatchCreateRequest) -> i64 {
        let before = created_count(&self.streams[stream].responses());
        self.streams[stream].create(request.clone());
        if !self.streams[stream].wait_until(RESPONSE_WAIT_MAX, |responses| created_count(responses) > before).await {
            self.fail(format!("no created response to {request:?}"));
            return -1;
        }
        self.streams[stream].responses().iter().filter(|response| response.created).nth(before).map_or(-1, |response| response.watch_id)
    }

    /// Waits until watcher `watch_id` was handed events through `revision` (a catch-up).
    async fn caught_up(&mut self, stream: usize, watch_id: i64, revision: i64) {
        if !self.streams[stream].wait_until(RESPONSE_WAIT_MAX, |responses| last_event_revision(responses, watch_id) >= revision).await {
            self.fail(format!("watcher {watch_id} was not caught up to revision {revision}"));
        }
    }

    async fn cancel(&mut self, stream: usize, watch_id: i64) {
        let before = canceled(&self.streams[stream].responses(), watch_id);
        self.streams[stream].cancel(watch_id);
        if !self.streams[stream].wait_until(RESPONSE_WAIT_MAX, |responses| canceled(responses, watch_id) > before).await {
            self.fail(format!("no canceled response for watch id {watch_id}"));
        }
    }

    async fn wait_canceled(&mut self, stream: usize, watch_id: i64) {
        if !self.streams[stream].wait_until(RESPONSE_WAIT_MAX, |responses| canceled(responses, watch_id) > 0).await {
            self.fail(format!("watch id {watch_id} was not canceled"));
        }
    }

    /// A progress request, answered in order after everything the stream's earlier requests caused.
    async fn progress(&mut self, stream: usize) {
        let before = progress_count(&self.streams[stream].responses());
        self.streams[stream].request_progress();
        if !self.streams[stream].wait_until(RESPONSE_WAIT_MAX, |responses| progress_count(responses) > before).await {
            self.fail("no answer to a progress request".into());
        }
    }

    async fn txn(&mut self, ops: Vec<pb::RequestOp>) -> i64 {
        let response = self.kv.txn(pb::TxnRequest { success: ops, ..Default::default() }).await.expect("txn").into_inner();
        self.revision = response.header.expect("header").revision;
        self.revision
    }

    async fn put(&mut self, key: &str, value: &str) -> i64 {
        let response = self.kv.put(pb::PutRequest { key: bytes(key), value: bytes(value), ..Default::default() }).await.expect("put").into_inner();
        self.revision = response.header.expect("header").revision;
        self.revision
    }

    async fn delete(&mut self, key: &str, range_end: &str) -> i64 {
        let request = pb::DeleteRangeRequest { key: bytes(key), range_end: bytes(range_end), ..Default::default() };
        let response = self.kv.delete_range(request).await.expect("delete").into_inner();
        self.revision = response.header.expect("header").revision;
        self.revision
    }

    async fn compact(&mut self, revision: i64) {
        self.kv.compact(pb::CompactionRequest { revision, physical: true }).await.expect("compact");
    }

    /// Writes the sentinel and waits until every stream has seen it: every synced watcher has
    /// then been handed the events of the writes before it.
    async fn settle(&mut self) {
        let revision = self.put(SENTINEL_KEY, "s").await;
        for index in 0..self.streams.len() {
            if !self.streams[index].wait_until(RESPONSE_WAIT_MAX, |responses| last_event_revision(responses, SENTINEL_WATCH_ID) >= revision).await {
                self.fail(format!("stream {index} did not see the sentinel at revision {revision}"));
            }
        }
    }
}

/// The compared scenario: single, range, from-key; filters; txns; cancels; ids; history; compaction.
async fn basics(side: &mut Side) {
    let a = side.open(create("a", b"", 0)).await;
    side.put("a", "1").await;
    side.settle().await;
    side.create(a, pb::WatchCreateRequest { watch_id: 7, prev_kv: true, ..create("a", b"b", 0) }).await;
    side.create(a, pb::WatchCreateRequest { watch_id: 7, ..create("x", b"", 0) }).await;
    side.create(a, create("b", b"a", 0)).await;
    side.create(a, create("b", b"b", 0)).await;
    side.create(a, create("", b"", 0)).await;
    side.create(a, pb::WatchCreateRequest { filters: vec![0], ..create("a", &[0], 0) }).await;
    side.create(a, pb::WatchCreateRequest { filters: vec![1], ..create("a", b"", 0) }).await;
    side.create(a, pb::WatchCreateRequest { filters: vec![0, 1], ..create("a", b"b", 0) }).await;
    let negative = side.create(a, create("a", b"", -5)).await;
    side.wait_canceled(a, negative).await;

    side.txn(vec![put_op("a", "2"), put_op("ab", "x"), delete_op("zz"), put_op("aa", "y")]).await;
    side.settle().await;
    side.delete("a", "b").await;
    side.settle().await;
    let a_put = side.put("a", "3").await;
    side.put("b", "1").await;
    let ac_put = side.put("ac", "z").await;
    side.settle().await;
    side.progress(a).await;

    side.cancel(a, 7).await;
    side.streams[a].cancel(7);
    side.streams[a].cancel(999);
    side.progress(a).await;
    side.create(a, pb::WatchCreateRequest { watch_id: 7, ..create("x", b"", 0) }).await;
    side.create(a, create("y", b"", 0)).await;

    // History: from old revisions, with and without prev_kv; then a future start revision.
    let current = side.revision;
    let old = side.create(a, pb::WatchCreateRequest { prev_kv: true, ..create("a", b"b", 2) }).await;
    side.caught_up(a, old, ac_put).await;
    let old_single = side.create(a, create("a", b"", 3)).await;
    side.caught_up(a, old_single, a_put).await;
    let future = side.create(a, create("a", b"b", current + 2)).await;
    side.put("a", "4").await;
    let future_revision = side.put("ab", "5").await;
    side.caught_up(a, future, future_revision).await;
    side.settle().await;

    // Compaction: below it a watcher is canceled with compact_revision; at it, it starts there.
    let compact_at = side.delete("ab", "").await;
    let ad_put = side.put("ad", "1").await;
    side.compact(compact_at).await;
    let below = side.create(a, pb::WatchCreateRequest { watch_id: 60, ..create("a", b"b", compact_at - 1) }).await;
    side.wait_canceled(a, below).await;
    side.create(a, pb::WatchCreateRequest { watch_id: 60, ..create("a", b"", 0) }).await;
    side.cancel(a, 60).await;
    side.create(a, pb::WatchCreateRequest { watch_id: 60, ..create("a", b"", 0) }).await;
    let at = side.create(a, pb::WatchCreateRequest { prev_kv: true, ..create("a", b"b", compact_at) }).await;
    side.caught_up(a, at, ad_put).await;
    let after = side.put("ae", "1").await;
    side.caught_up(a, at, after).await;
    let negative = side.create(a, create("a", b"", -5)).await;
    side.wait_canceled(a, negative).await;
    side.settle().await;
    side.progress(a).await;
}

/// etcd's catch-up batches: at most 1000 revisions with events per response.
async fn many_revisions(side: &mut Side) {
    let stream = side.open(create("m0", b"", 0)).await;
    let first = side.put("m", "0").await;
    for value in 1..MANY_PUTS {
        side.put("m", &value.to_string()).await;
    }
    let last = side.revision;
    let watcher = side.create(stream, create("m", b"", first)).await;
    side.caught_up(stream, watcher, last).await;
    let ranged = side.create(stream, pb::WatchCreateRequest { filters: vec![1], ..create("m", b"n", first + 5) }).await;
    side.caught_up(stream, ranged, last).await;
    side.settle().await;
}

/// Fragments: a catch-up and a prev_kv delete above the limit, split for watchers that allow it.
async fn fragments(side: &mut Side) {
    let large = "v".repeat(LARGE_VALUE_BYTES);
    let stream = side.open(pb::WatchCreateRequest { fragment: true, ..create("f", b"g", 0) }).await;
    let first = side.put("f0", "small").await;
    for key in ["f1", "f2", "f3", "f4"] {
        side.put(key, &large).await;
    }
    let last = side.revision;
    side.settle().await;
    let fragmented = side.create(stream, pb::WatchCreateRequest { fragment: true, ..create("f", b"g", first) }).await;
    side.caught_up(stream, fragmented, last).await;
    let whole = side.create(stream, create("f", b"g", first)).await;
    side.caught_up(stream, whole, last).await;
    let with_prev = side.create(stream, pb::WatchCreateRequest { fragment: true, prev_kv: true, ..create("f", b"g", 0) }).await;
    let deleted = side.delete("f", "g").await;
    side.caught_up(stream, with_prev, deleted).await;
    side.settle().await;
}

/// Periodic progress notifications: timing differs, so both servers are checked by shape.
async fn progress_notifications(side: &mut Side) {
    let stream = RecordedStream::open(side.channel.clone(), pb::WatchCreateRequest { progress_notify: true, ..create("p", b"", 0) }).await;
    stream.create(create("q", b"", 0));
    let revision = side.put("p", "1").await;
    let notified = stream
        .wait_until(RESPONSE_WAIT_MAX, |responses| {
            responses.iter().filter(|response| response.watch_id == 0 && !response.created && response.events.is_empty()).count() >= 2
        })
        .await;
    let responses = stream.responses();
    if !notified {
        side.fail(format!("the progress_notify watcher got fewer than 2 progress notifications: {responses:?}"));
    }
    let mut notified_revisions = Vec::new();
    for response in &responses {
        let empty = !response.created && !response.canceled && response.events.is_empty();
        if empty && response.watch_id != 0 {
            side.fail(format!("a watcher without progress_notify got a progress notification: {response:?}"));
        }
        if empty {
            notified_revisions.push(response.header.as_ref().map_or(0, |header| header.revision));
        }
    }
    // A tick may come between the create and the put; every later one carries the put's revision.
    let current = notified_revisions.iter().all(|notified| *notified == revision || *notified == revision - 1);
    if !current || notified_revisions.last() != Some(&revision) {
        side.fail(format!("progress notifications do not carry the current revision {revision}: {notified_revisions:?}"));
    }
    let put = side.put("p", "2").await;
    if !stream.wait_until(RESPONSE_WAIT_MAX, |responses| last_event_revision(responses, 0) >= put).await {
        side.fail("the progress_notify watcher missed an event".into());
    }
}

async fn scenario(side: &mut Side) {
    basics(side).await;
    many_revisions(side).await;
    fragments(side).await;
    progress_notifications(side).await;
}

/// Each stream's responses by watch id, in arrival order.
fn by_watch_id(side: &Side) -> BTreeMap<(usize, i64), Vec<pb::WatchResponse>> {
    let mut grouped: BTreeMap<(usize, i64), Vec<pb::WatchResponse>> = BTreeMap::new();
    for (index, stream) in side.streams.iter().enumerate() {
        for response in stream.responses() {
            grouped.entry((index, response.watch_id)).or_default().push(response);
        }
    }
    grouped
}

/// `{:?}`, cut short: large values are megabytes.
fn shown(value: &impl std::fmt::Debug) -> String {
    let text = format!("{value:?}");
    if text.len() <= 2000 {
        return text;
    }
    format!("{}... ({} characters)", &text[..2000], text.len())
}

#[test]
fn strata_watches_as_etcd_does() {
    let Some(etcd) = etcd_binary() else { return };
    let temp = TempDir::new("differential-watch");
    let interval = format!("--experimental-watch-progress-notify-interval={PROGRESS_INTERVAL}");
    let strata_server = start_strata(&temp.join("strata"), &["--name", "differential", &interval]);
    let etcd_server = start_etcd_with_args(&etcd, &temp.join("etcd"), &[&interval]);

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (strata, etcd) = runtime.block_on(async {
        let mut strata = Side::new("strata", &strata_server.endpoint).await;
        scenario(&mut strata).await;
        let mut etcd = Side::new("etcd", &etcd_server.endpoint).await;
        scenario(&mut etcd).await;
        (strata, etcd)
    });

    let mut failures: Vec<String> = strata.failures.iter().chain(&etcd.failures).cloned().collect();
    let (strata_groups, etcd_groups) = (by_watch_id(&strata), by_watch_id(&etcd));
    let mut compared = 0;
    for key in strata_groups.keys().chain(etcd_groups.keys()).collect::<std::collections::BTreeSet<_>>() {
        let (ours, theirs) = (strata_groups.get(key).cloned().unwrap_or_default(), etcd_groups.get(key).cloned().unwrap_or_default());
        compared += theirs.len();
        if ours == theirs {
            continue;
        }
        let at = ours.iter().zip(&theirs).position(|(a, b)| a != b).unwrap_or(ours.len().min(theirs.len()));
        failures.push(format!(
            "stream {} watch id {}: {} responses from strata, {} from etcd; first difference at response {at}:\n  strata: {}\n  etcd:   {}",
            key.0,
            key.1,
            ours.len(),
            theirs.len(),
            shown(&ours.get(at)),
            shown(&theirs.get(at))
        ));
    }
    println!("differential watch: compared {compared} responses over {} watch ids", etcd_groups.len());
    assert!(compared >= 60, "only {compared} responses were compared");
    assert!(failures.is_empty(), "{} differences:\n\n{}", failures.len(), failures.join("\n\n"));
}

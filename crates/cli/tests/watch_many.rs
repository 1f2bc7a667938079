//! 10,000 watchers on one node while it takes writes: every watcher must see every event in its
//! range exactly once, in order, and nothing else.
//!
//! The watchers are spread over four streams: single keys, prefixes, ranges over several prefixes
//! and from-key ranges; half are created before the writes, half while they run (most from the
//! next revision, some from an old revision, which the node catches up from history). A fifth
//! stream on its own connection does not read until the writes are done, so its watchers fall
//! behind (their buffers fill) and are caught up from history once it reads again.
//!
//! Expected events come from the writes themselves: each write's revision and changes, in order.
//! A watcher started at revision 0 expects the events after its created response's revision.

mod support;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use strata_etcd_api::pb::etcdserverpb as pb;
use strata_etcd_api::pb::mvccpb;
use support::watch::{create, RecordedStream};
use support::{start_strata, TempDir};
use tonic::transport::Channel;

const STREAMS: usize = 4;
const WATCHERS: usize = 10_000;
const WRITES: usize = 400;
const GROUPS: usize = 25;
const KEYS_PER_GROUP: usize = 8;
/// Watchers on the stream that does not read until the writes are done.
const PAUSED_WATCHERS: usize = 40;
const DELIVERY_WAIT_MAX: Duration = Duration::from_secs(60);
/// The paused stream's HTTP/2 window: room for a few hundred responses only.
const PAUSED_WINDOW_BYTES: u32 = 65_535;

/// splitmix64: a fixed, replayable sequence.
struct Random(u64);
impl Random {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }
}

fn key(group: usize, index: usize) -> String {
    format!("w/g{group:02}/k{index}")
}

fn group_prefix(group: usize) -> String {
    format!("w/g{group:02}/")
}

/// One expected event: kind, key, value and revision.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    put: bool,
    key: Vec<u8>,
    value: Vec<u8>,
    revision: i64,
}

fn seen(event: &mvccpb::Event) -> Seen {
    let kv = event.kv.clone().unwrap_or_default();
    Seen { put: event.r#type == mvccpb::event::EventType::Put as i32, key: kv.key, value: kv.value, revision: kv.mod_revision }
}

/// The create request of watcher `number`.
fn watcher(number: usize, start_revision: i64) -> pb::WatchCreateRequest {
    let group = number % GROUPS;
    match number % 10 {
        0..=6 => create(&key(group, number / GROUPS % KEYS_PER_GROUP), b"", start_revision),
        7 | 8 => create(&group_prefix(group), format!("w/g{group:02}0").as_bytes(), start_revision),
        _ if number % 20 == 9 => create(&group_prefix(group), group_prefix((group + 3).min(GROUPS)).as_bytes(), start_revision),
        _ => create(&group_prefix(group), &[0], start_revision),
    }
}

fn in_range(request: &pb::WatchCreateRequest, key: &[u8]) -> bool {
    match request.range_end.as_slice() {
        [] => key == request.key.as_slice(),
        [0] => key >= request.key.as_slice(),
        end => request.key.as_slice() <= key && key < end,
    }
}

/// The writes: puts, txns of several puts, deletes of live keys. Returns every event in order.
async fn write(kv: &mut pb::kv_client::KvClient<Channel>) -> Vec<Seen> {
    let mut random = Random(7);
    let mut live: BTreeMap<String, String> = BTreeMap::new();
    let mut events = Vec::new();
    for number in 0..WRITES {
        let pick = |random: &mut Random| key(random.below(GROUPS as u64) as usize, random.below(KEYS_PER_GROUP as u64) as usize);
        match random.below(10) {
            0..=6 => {
                let (key, value) = (pick(&mut random), format!("v{number}"));
                let response =
                    kv.put(pb::PutRequest { key: key.clone().into_bytes(), value: value.clone().into_bytes(), ..Default::default() }).await.expect("put");
                let revision = response.into_inner().header.expect("header").revision;
                events.push(Seen { put: true, key: key.clone().into_bytes(), value: value.clone().into_bytes(), revision });
                live.insert(key, value);
            }
            7 | 8 => {
                let mut keys: Vec<String> = Vec::new();
                while keys.len() < 3 {
                    let candidate = pick(&mut random);
                    if !keys.contains(&candidate) {
                        keys.push(candidate);
                    }
                }
                let value = format!("t{number}");
                let success = keys
                    .iter()
                    .map(|key| pb::RequestOp {
                        request: Some(pb::request_op::Request::RequestPut(pb::PutRequest {
                            key: key.clone().into_bytes(),
                            value: value.clone().into_bytes(),
                            ..Default::default()
                        })),
                    })
                    .collect();
                let response = kv.txn(pb::TxnRequest { success, ..Default::default() }).await.expect("txn");
                let revision = response.into_inner().header.expect("header").revision;
                for key in keys {
                    events.push(Seen { put: true, key: key.clone().into_bytes(), value: value.clone().into_bytes(), revision });
                    live.insert(key, value.clone());
                }
            }
            _ => {
                let Some(key) = live.keys().nth(random.below(live.len().max(1) as u64) as usize).cloned() else { continue };
                let response = kv.delete_range(pb::DeleteRangeRequest { key: key.clone().into_bytes(), ..Default::default() }).await.expect("delete");
                let revision = response.into_inner().header.expect("header").revision;
                events.push(Seen { put: false, key: key.clone().into_bytes(), value: Vec::new(), revision });
                live.remove(&key);
            }
        }
    }
    events
}

/// Sends watchers `numbers` on `stream` (no waiting).
fn create_watchers(stream: &RecordedStream, requests: &[pb::WatchCreateRequest]) {
    for request in requests {
        stream.create(request.clone());
    }
}

/// Waits until `stream` has `expected` created responses (counting only what is new each time).
async fn all_created(stream: &RecordedStream, expected: usize) -> bool {
    let (looked_at, created) = (Cell::new(0), Cell::new(0));
    stream
        .wait_until(DELIVERY_WAIT_MAX, |responses| {
            created.set(created.get() + responses[looked_at.get()..].iter().filter(|response| response.created).count());
            looked_at.set(responses.len());
            created.get() == expected
        })
        .await
}

#[test]
fn ten_thousand_watchers_see_every_event_once_in_order() {
    let started = Instant::now();
    let temp = TempDir::new("watch-many");
    let server = start_strata(&temp.join("data"), &["--name", "many"]);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let channel = Channel::from_shared(server.endpoint.clone()).expect("endpoint").connect().await.expect("connect");
        // A small HTTP/2 window, so that the paused stream's watchers fill their buffers.
        let paused_channel = Channel::from_shared(server.endpoint.clone())
            .expect("endpoint")
            .initial_stream_window_size(PAUSED_WINDOW_BYTES)
            .initial_connection_window_size(PAUSED_WINDOW_BYTES)
            .connect()
            .await
            .expect("connect");
        let mut kv = pb::kv_client::KvClient::new(channel.clone());
        let before = kv.put(pb::PutRequest { key: key(0, 0).into_bytes(), value: b"before".to_vec(), ..Default::default() }).await.expect("put");
        let before = Seen { put: true, key: key(0, 0).into_bytes(), value: b"before".to_vec(), revision: before.into_inner().header.expect("header").revision };

        // Per stream, the create requests in the order sent: the n-th created response answers
        // the n-th request.
        let mut requests: Vec<Vec<pb::WatchCreateRequest>> = vec![Vec::new(); STREAMS + 1];
        for number in 0..WATCHERS / 2 {
            requests[number % STREAMS].push(watcher(number, 0));
        }
        let mut streams = Vec::new();
        for requests in requests.iter_mut().take(STREAMS) {
            let first = requests[0].clone();
            let stream = RecordedStream::open(channel.clone(), first).await;
            create_watchers(&stream, &requests[1..]);
            streams.push(stream);
        }
        let paused: Vec<pb::WatchCreateRequest> =
            (0..PAUSED_WATCHERS).map(|number| if number % 2 == 0 { create("w/", b"w0", 0) } else { watcher(number, 0) }).collect();
        requests[STREAMS] = paused.clone();
        let mut paused_stream = RecordedStream::open_paused(paused_channel, paused[0].clone()).await;
        create_watchers(&paused_stream, &paused[1..]);
        for (index, stream) in streams.iter().enumerate() {
            assert!(all_created(stream, requests[index].len()).await, "stream {index}: not every watcher was created");
        }
        println!("watch_many: {} watchers created after {:?}", WATCHERS / 2, started.elapsed());

        // The other half arrives while the writes run; a fifth of it starts at an old revision.
        let writer = tokio::spawn(async move { write(&mut kv).await });
        for number in WATCHERS / 2..WATCHERS {
            let start_revision = if number % 5 == 0 { 2 + (number % 50) as i64 } else { 0 };
            let request = watcher(number, start_revision);
            streams[number % STREAMS].create(request.clone());
            requests[number % STREAMS].push(request);
            if number % 500 == 0 {
                tokio::task::yield_now().await;
            }
        }
        let events: Vec<Seen> = std::iter::once(before).chain(writer.await.expect("writer")).collect();
        println!("watch_many: {} writes ({} events) done after {:?}", WRITES, events.len(), started.elapsed());
        paused_stream.resume();
        streams.push(paused_stream);

        // Every watcher's expected events, by stream and watch id.
        let mut checked = 0usize;
        for (index, stream) in streams.iter().enumerate() {
            let stream_requests = &requests[index];
            assert!(all_created(stream, stream_requests.len()).await, "stream {index}: not every watcher was created");
            let responses = stream.responses();
            let mut expected: HashMap<i64, Vec<Seen>> = HashMap::new();
            for (request, created) in stream_requests.iter().zip(responses.iter().filter(|response| response.created)) {
                assert!(!created.canceled, "stream {index}: a create was refused: {created:?}");
                let from = if request.start_revision == 0 { created.header.as_ref().expect("header").revision + 1 } else { request.start_revision };
                let wanted = events.iter().filter(|event| event.revision >= from && in_range(request, &event.key)).cloned().collect();
                expected.insert(created.watch_id, wanted);
            }
            // Events still missing per watch id, counted down as responses arrive.
            let missing: RefCell<HashMap<i64, usize>> = RefCell::new(expected.iter().map(|(watch_id, events)| (*watch_id, events.len())).collect());
            let unfinished = Cell::new(missing.borrow().values().filter(|left| **left > 0).count());
            let looked_at = Cell::new(0);
            let delivered = stream
                .wait_until(DELIVERY_WAIT_MAX, |responses| {
                    let mut missing = missing.borrow_mut();
                    for response in &responses[looked_at.get()..] {
                        if let Some(left) = missing.get_mut(&response.watch_id) {
                            let before = *left;
                            *left = left.saturating_sub(response.events.len());
                            if before > 0 && *left == 0 {
                                unfinished.set(unfinished.get() - 1);
                            }
                        }
                    }
                    looked_at.set(responses.len());
                    unfinished.get() == 0
                })
                .await;
            let responses = stream.responses();
            let mut got: HashMap<i64, Vec<Seen>> = HashMap::new();
            for response in &responses {
                assert!(!response.canceled, "stream {index}: a watcher was canceled: {response:?}");
                got.entry(response.watch_id).or_default().extend(response.events.iter().map(seen));
            }
            for (watch_id, wanted) in &expected {
                let have = got.remove(watch_id).unwrap_or_default();
                assert!(
                    have == *wanted,
                    "stream {index} watch id {watch_id} ({:?}): {} events seen, {} expected (delivered in time: {delivered})\n  first seen:     {:?}\n  first expected: {:?}",
                    stream_requests.iter().zip(responses.iter().filter(|response| response.created)).find(|(_, created)| created.watch_id == *watch_id).map(|(request, _)| request),
                    have.len(),
                    wanted.len(),
                    have.iter().zip(wanted).find(|(a, b)| a != b).map(|(a, _)| a),
                    have.iter().zip(wanted).find(|(a, b)| a != b).map(|(_, b)| b),
                );
                checked += wanted.len();
            }
            assert!(got.values().all(|events| events.is_empty()), "stream {index}: events for unknown watch ids");
        }
        println!("watch_many: {checked} deliveries checked after {:?}", started.elapsed());
        assert!(checked > 100_000, "only {checked} deliveries were checked");
    });
}

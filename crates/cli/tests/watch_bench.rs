//! A benchmark, not a timed test (ignored by default): the write throughput of one node with no
//! watchers and with 10,000 (single keys and prefixes, over a few streams, all reading), and the
//! rate at which events reach the watchers. Run it in release:
//!
//! `cargo test --release -p strata --test watch_bench -- --ignored --nocapture`

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_etcd_api::pb::etcdserverpb as pb;
use support::{start_strata, TempDir};
use tonic::transport::Channel;

const WATCHERS: usize = 10_000;
const STREAMS: usize = 8;
const KEYS: usize = 1000;
/// Prefixes `bench/kNN`: each covers ten keys.
const PREFIXES: usize = 100;
const WRITERS: usize = 64;
const WRITES: usize = 20_000;
const DELIVERY_WAIT_MAX: Duration = Duration::from_secs(300);

fn key(number: usize) -> String {
    format!("bench/k{number:03}")
}

/// Puts from `WRITERS` concurrent clients; returns writes per second.
async fn write(channel: &Channel, round: usize) -> f64 {
    let started = Instant::now();
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let mut kv = pb::kv_client::KvClient::new(channel.clone());
        writers.push(tokio::spawn(async move {
            for number in (writer..WRITES).step_by(WRITERS) {
                let request =
                    pb::PutRequest { key: key(number * 7 % KEYS).into_bytes(), value: format!("r{round}-{number}").into_bytes(), ..Default::default() };
                kv.put(request).await.expect("put");
            }
        }));
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    WRITES as f64 / started.elapsed().as_secs_f64()
}

/// Opens the watchers over `STREAMS` streams; every event they receive is counted in `events`.
async fn watch(channel: &Channel, events: Arc<AtomicU64>) -> Vec<tokio::sync::mpsc::UnboundedSender<pb::WatchRequest>> {
    let mut senders = Vec::new();
    let created = Arc::new(AtomicU64::new(0));
    for stream in 0..STREAMS {
        let (sender, requests) = tokio::sync::mpsc::unbounded_channel();
        for number in (stream..WATCHERS).step_by(STREAMS) {
            let (watched, range_end) = if number % 5 == 0 {
                let prefix = format!("bench/k{:02}", number / 5 % PREFIXES);
                let mut end = prefix.clone().into_bytes();
                *end.last_mut().expect("non-empty") += 1;
                (prefix.into_bytes(), end)
            } else {
                (key(number % KEYS).into_bytes(), Vec::new())
            };
            let create = pb::WatchCreateRequest { key: watched, range_end, ..Default::default() };
            sender.send(pb::WatchRequest { request_union: Some(pb::watch_request::RequestUnion::CreateRequest(create)) }).expect("queue");
        }
        let mut client = pb::watch_client::WatchClient::new(channel.clone());
        let mut responses = client.watch(tokio_stream::wrappers::UnboundedReceiverStream::new(requests)).await.expect("watch").into_inner();
        let (events, created) = (events.clone(), created.clone());
        tokio::spawn(async move {
            while let Ok(Some(response)) = responses.message().await {
                events.fetch_add(response.events.len() as u64, Ordering::Relaxed);
                created.fetch_add(u64::from(response.created), Ordering::Relaxed);
            }
        });
        senders.push(sender);
    }
    let deadline = Instant::now() + DELIVERY_WAIT_MAX;
    while created.load(Ordering::Relaxed) < WATCHERS as u64 {
        assert!(Instant::now() < deadline, "the watchers were not all created");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    senders
}

/// How many watchers each put to key `number` reaches.
fn watchers_of(number: usize) -> u64 {
    let single = (0..WATCHERS).filter(|watcher| watcher % 5 != 0 && watcher % KEYS == number).count();
    let prefixed = (0..WATCHERS).filter(|watcher| watcher % 5 == 0 && watcher / 5 % PREFIXES == number / 10).count();
    (single + prefixed) as u64
}

#[test]
#[ignore = "a benchmark: run with --release -- --ignored --nocapture"]
fn write_throughput_with_and_without_watchers() {
    let temp = TempDir::new("watch-bench");
    let server = start_strata(&temp.join("data"), &["--name", "bench"]);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let channel = Channel::from_shared(server.endpoint.clone()).expect("endpoint").connect().await.expect("connect");
        let without = write(&channel, 0).await;
        println!("watch bench: {without:.0} writes/s with no watchers ({WRITERS} writers, {WRITES} puts)");

        let events = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let _streams = watch(&channel, events.clone()).await;
        println!("watch bench: {WATCHERS} watchers created in {:?}", started.elapsed());
        let expected: u64 = (0..WRITES).map(|number| watchers_of(number * 7 % KEYS)).sum();
        let started = Instant::now();
        let with = write(&channel, 1).await;
        let deadline = Instant::now() + DELIVERY_WAIT_MAX;
        while events.load(Ordering::Relaxed) < expected {
            assert!(Instant::now() < deadline, "only {} of {expected} events arrived", events.load(Ordering::Relaxed));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let delivered = started.elapsed();
        println!("watch bench: {with:.0} writes/s with {WATCHERS} watchers ({:.0}% of the rate without)", with / without * 100.0);
        println!("watch bench: {expected} events delivered in {delivered:?} ({:.0} events/s)", expected as f64 / delivered.as_secs_f64());
        assert_eq!(events.load(Ordering::Relaxed), expected, "every watcher saw every event once");
    });
}

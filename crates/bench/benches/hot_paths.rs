//! Micro-benchmarks of the hot paths, so that a regression shows up in one command:
//! `cargo bench -p strata-bench`. Each prints nanoseconds per operation, then one JSON line.
//! (Timings, not assertions: run it before and after a change on the same machine.)

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use prost::Message;
use strata_mvcc::{ChangeKind, PutRequest, RangeRequest, Stamp, Store};
use strata_node::LogEntry;
use strata_segment_log::{LogOptions, SegmentLog};

const KEYS: u64 = 100_000;
const VALUE_BYTES: usize = 256;

fn measure(name: &str, operations: u64, mut body: impl FnMut(u64)) -> (String, f64) {
    // One untimed pass to warm caches and allocators.
    for index in 0..operations.min(1000) {
        body(index);
    }
    let start = Instant::now();
    for index in 0..operations {
        body(index);
    }
    let nanos = start.elapsed().as_nanos() as f64 / operations as f64;
    println!("{name:<40} {nanos:>12.1} ns/op  ({operations} ops)");
    (name.to_string(), nanos)
}

fn key(index: u64) -> Vec<u8> {
    format!("/registry/pods/default/pod-{index:08}").into_bytes()
}

fn loaded_store() -> Store {
    let mut store = Store::new();
    for index in 0..KEYS {
        let request = PutRequest { key: key(index), value: vec![b'v'; VALUE_BYTES], ..Default::default() };
        store.put(&request, Stamp::default(), &|_| false).expect("put");
    }
    store.mark_durable();
    store
}

fn main() {
    let mut results = Vec::new();

    let changes = vec![strata_mvcc::Change { key: key(1), kind: ChangeKind::Put { value: vec![b'v'; VALUE_BYTES], lease: 0 } }];
    let entry = LogEntry::from_changes(42, Stamp::default(), &changes);
    let encoded = entry.encode_to_vec();
    results.push(measure("log entry encode (256 B put)", 1_000_000, |_| {
        black_box(black_box(&entry).encode_to_vec());
    }));
    results.push(measure("log entry decode (256 B put)", 1_000_000, |_| {
        black_box(LogEntry::decode(black_box(encoded.as_slice())).expect("decodes"));
    }));

    let directory = std::env::temp_dir().join(format!("strata-hot-paths-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    let fs: Arc<dyn strata_io::FileSystem> = Arc::new(strata_io::RealFileSystem::new());
    let mut log = SegmentLog::open(fs, &directory, LogOptions::default(), &mut |_, _| Ok(())).expect("open log").log;
    let mut revision = 0;
    results.push(measure("log append (256 B record, sync per 10k)", 1_000_000, |_| {
        revision += 1;
        log.append(revision, black_box(&encoded)).expect("append");
        if revision % 10_000 == 0 {
            log.sync().expect("sync");
        }
    }));
    drop(log);
    let _ = std::fs::remove_dir_all(&directory);

    let mut store = Store::new();
    let mut counter = 0u64;
    results.push(measure("mvcc put (100k-key space, 256 B)", 500_000, |index| {
        counter += 1;
        let request = PutRequest { key: key(index % KEYS), value: vec![b'v'; VALUE_BYTES], ..Default::default() };
        black_box(store.put(&request, Stamp::default(), &|_| false).expect("put"));
        if counter % 1000 == 0 {
            store.mark_durable();
        }
    }));

    let store = loaded_store();
    let current = store.durable_revision();
    results.push(measure("mvcc range, one key of 100k", 1_000_000, |index| {
        let request = RangeRequest { key: key((index * 7919) % KEYS), ..Default::default() };
        black_box(store.range(&request, current).expect("range"));
    }));
    results.push(measure("mvcc range, prefix limit 100 (count all)", 2_000, |_| {
        let request = RangeRequest { key: b"/registry/pods/".to_vec(), range_end: b"/registry/pods0".to_vec(), limit: 100, ..Default::default() };
        black_box(store.range(&request, current).expect("range"));
    }));
    results.push(measure("mvcc range, 100 keys by range_end", 100_000, |index| {
        let start = (index * 7919) % (KEYS - 100);
        let request = RangeRequest { key: key(start), range_end: key(start + 100), ..Default::default() };
        black_box(store.range(&request, current).expect("range"));
    }));

    // Watch matching: which of 10,000 watchers (half single keys, half prefixes) a key concerns.
    let mut index = strata_node::watch_index::IntervalIndex::default();
    for watcher in 0..10_000u64 {
        if watcher % 2 == 0 {
            index.insert(&key(watcher), b"", watcher);
        } else {
            let prefix = format!("/registry/pods/default/pod-{:05}", watcher % 1000).into_bytes();
            let mut end = prefix.clone();
            *end.last_mut().expect("non-empty") += 1;
            index.insert(&prefix, &end, watcher);
        }
    }
    let mut matches = Vec::new();
    results.push(measure("watch matching, 10k watchers", 1_000_000, |index_number| {
        matches.clear();
        index.matches(&key((index_number * 7919) % 20_000), &mut matches);
        black_box(&matches);
    }));

    let fields: Vec<String> = results.iter().map(|(name, nanos)| format!("\"{name}\":{nanos:.1}")).collect();
    println!("{{\"benchmark\":\"hot_paths\",\"ns_per_op\":{{{}}}}}", fields.join(","));
}

//! The node on the simulated disk: writers record every acknowledged write; the disk stops
//! working after a random number of operations (the power cut), the node is dropped, the disk
//! crashes losing unsynced writes or tearing them, and the node reopens. Every acknowledged write
//! must be there, no txn may be half-applied, and nothing that was never written may appear.
//! A failing seed replays exactly (the order of concurrent writes aside).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use strata_io::{CrashMode, SeededRandom, SimulatedFileSystem};
use strata_mvcc::{PutRequest, RangeRequest, RequestOp, TxnRequest};
use strata_node::{Node, NodeConfig, NodeError, WriteRequest, WriteResponse};

/// What a key may hold after a crash.
#[derive(Clone, Debug, PartialEq)]
enum Expectation {
    /// Acknowledged: must be there with this value.
    Present(Vec<u8>),
    /// Not acknowledged: may be there with this value, or absent.
    Maybe(Vec<u8>),
}

fn everything() -> RangeRequest {
    RangeRequest { key: vec![0], range_end: vec![0], ..Default::default() }
}

fn put(key: &str, value: &[u8]) -> RequestOp {
    RequestOp::Put(PutRequest { key: key.as_bytes().to_vec(), value: value.to_vec(), ..Default::default() })
}

fn check(node: &Node, expected: &BTreeMap<Vec<u8>, Expectation>, txns: &[[String; 3]], revision_min: i64, context: &str) {
    let response = node.range(&everything()).unwrap();
    assert!(response.revision >= revision_min, "{context}: revision went back to {} from {revision_min}", response.revision);
    let found: BTreeMap<Vec<u8>, Vec<u8>> = response.kvs.into_iter().map(|kv| (kv.key, kv.value)).collect();
    for (key, expectation) in expected {
        match (expectation, found.get(key)) {
            (Expectation::Present(value), Some(actual)) => assert_eq!(actual, value, "{context}: {:?}", String::from_utf8_lossy(key)),
            (Expectation::Present(_), None) => panic!("{context}: acknowledged key {:?} lost", String::from_utf8_lossy(key)),
            (Expectation::Maybe(value), Some(actual)) => assert_eq!(actual, value, "{context}"),
            (Expectation::Maybe(_), None) => {}
        }
    }
    for key in found.keys() {
        assert!(expected.contains_key(key), "{context}: key {:?} was never written", String::from_utf8_lossy(key));
    }
    for keys in txns {
        let present = keys.iter().filter(|key| found.contains_key(key.as_bytes())).count();
        assert!(present == 0 || present == 3, "{context}: txn {keys:?} half-applied ({present} of 3 keys)");
    }
}

#[test]
fn acknowledged_writes_survive_simulated_power_cuts() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut crashes = 0;
    let mut acknowledged = 0;
    for seed in 0..40u64 {
        let mut random = SeededRandom::new(seed);
        let disk = SimulatedFileSystem::new();
        let mut config = NodeConfig::new("sim", Path::new("/data"));
        config.segment_bytes_max = 4096;
        let mut expected: BTreeMap<Vec<u8>, Expectation> = BTreeMap::new();
        let mut txns: Vec<[String; 3]> = Vec::new();
        let mut revision_min = 1;
        let mut written = 0u64;
        for life in 0..6 {
            let context = format!("seed {seed} life {life}");
            let node = Arc::new(
                Node::open_with(Arc::new(disk.clone()), config.clone(), None)
                    .unwrap_or_else(|error| panic!("{context}: reopen failed: {error}")),
            );
            check(&node, &expected, &txns, revision_min, &context);
            // Settle what the reopened node shows: unacknowledged writes it kept are now facts.
            let shown = node.range(&everything()).unwrap();
            for kv in shown.kvs {
                expected.insert(kv.key, Expectation::Present(kv.value));
            }
            revision_min = shown.revision;

            disk.fail_operations_after(random.below(120));
            let mut pending = Vec::new();
            for _ in 0..(10 + random.below(30)) {
                written += 1;
                let value = format!("value-{seed}-{written}").into_bytes();
                if random.chance(1, 3) {
                    let keys = [0, 1, 2].map(|part| format!("txn/{written}/{part}"));
                    let request = TxnRequest { compare: vec![], success: keys.iter().map(|key| put(key, &value)).collect(), failure: vec![] };
                    txns.push(keys.clone());
                    let keys: Vec<Vec<u8>> = keys.iter().map(|key| key.as_bytes().to_vec()).collect();
                    pending.push((keys, value, WriteRequest::Txn(request)));
                } else {
                    let key = format!("put/{written}");
                    let request = PutRequest { key: key.clone().into_bytes(), value: value.clone(), ..Default::default() };
                    pending.push((vec![key.into_bytes()], value, WriteRequest::Put(request)));
                }
            }
            let results = runtime.block_on(async {
                let tasks: Vec<_> = pending
                    .into_iter()
                    .map(|(keys, value, request)| {
                        let node = node.clone();
                        tokio::spawn(async move { (keys, value, node.write(request).await) })
                    })
                    .collect();
                let mut results = Vec::new();
                for task in tasks {
                    results.push(task.await.unwrap());
                }
                results
            });
            for (keys, value, result) in results {
                let expectation = match result {
                    Ok(WriteResponse::Put(response)) => {
                        revision_min = revision_min.max(response.revision);
                        Expectation::Present(value)
                    }
                    Ok(WriteResponse::Txn(response)) => {
                        revision_min = revision_min.max(response.revision);
                        Expectation::Present(value)
                    }
                    Ok(other) => panic!("{context}: unexpected response {other:?}"),
                    Err(NodeError::Storage(_)) | Err(NodeError::Stopped) => Expectation::Maybe(value),
                    Err(error) => panic!("{context}: unexpected error {error}"),
                };
                acknowledged += u64::from(matches!(expectation, Expectation::Present(_))) * keys.len() as u64;
                for key in keys {
                    expected.insert(key, expectation.clone());
                }
            }
            drop(node);
            let mode = if random.chance(1, 2) { CrashMode::LoseUnsynced } else { CrashMode::TornTail { seed: random.next_u64() } };
            disk.crash(mode);
            disk.clear_faults();
            crashes += 1;
        }
    }
    assert!(acknowledged > 0, "the faults left no write acknowledged: the test checked nothing");
    eprintln!("{crashes} simulated power cuts, {acknowledged} acknowledged keys checked");
}

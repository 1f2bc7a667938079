//! Snapshots, segment retention and automatic compaction of a node, mostly on the simulated disk:
//! - restart equivalence: after random workloads with snapshots taken along the way (full only,
//!   and chained incrementals), a restarted node holds identical state (HashKV at several
//!   revisions, full ranges now and in the past, leases with their keys, members, alarms);
//! - a power cut at every IO operation of a snapshot (temp file, writes, fsync, rename, directory
//!   fsync, snapshot and segment deletion) leaves a directory that starts with every
//!   acknowledged write;
//! - a damaged newest snapshot (or a damaged base of a chain) is skipped and the node starts with
//!   identical data; with no valid path left, start-up is refused naming the snapshots;
//! - automatic snapshots follow the entry count and keep the newest restore points; retention
//!   deletes covered segments; automatic compaction in revision and periodic modes;
//! - writes go on while a large snapshot streams, and the snapshot holds exactly the state at its
//!   revision, even with a compaction meanwhile; a restored snapshot starts a new member with the
//!   same data.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_io::{CrashMode, FileSystem, SeededRandom, SimulatedFileSystem};
use strata_mvcc::{DeleteRangeRequest, KeyValue, PutRequest, RangeRequest, RequestOp, TxnRequest};
use strata_node::{AlarmAction, AutoCompaction, ClusterRequest, Node, NodeConfig, SnapshotPolicy, WriteRequest, WriteResponse, ALARM_NONE};

const DATA: &str = "/data";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

fn config(policy: SnapshotPolicy) -> NodeConfig {
    let mut config = NodeConfig::new("snap", Path::new(DATA));
    config.segment_bytes_max = 2048;
    config.snapshot = policy;
    config
}

/// No automatic snapshots: the tests take them when they want.
fn manual(keep: usize, increments_max: usize) -> SnapshotPolicy {
    SnapshotPolicy { entries: 0, log_bytes: 0, keep, increments_max }
}

fn open(disk: &SimulatedFileSystem, config: &NodeConfig) -> Arc<Node> {
    Arc::new(Node::open_with(Arc::new(disk.clone()), config.clone(), None).unwrap_or_else(|error| panic!("open: {error}")))
}

fn everything(revision: i64) -> RangeRequest {
    RangeRequest { key: vec![0], range_end: vec![0], revision, ..RangeRequest::default() }
}

fn put(key: &str, value: &str, lease: i64) -> WriteRequest {
    WriteRequest::Put(PutRequest { key: key.into(), value: value.into(), lease, ..PutRequest::default() })
}

fn files(disk: &SimulatedFileSystem, directory: &str) -> Vec<String> {
    let path = Path::new(DATA).join(directory);
    if !disk.exists(&path).expect("exists") {
        return Vec::new();
    }
    disk.list(&path).expect("list").iter().map(|path| path.file_name().expect("name").to_string_lossy().into_owned()).collect()
}

fn first_segment_index(disk: &SimulatedFileSystem) -> u64 {
    files(disk, "log").iter().filter_map(|name| name.strip_suffix(".seg")?.parse().ok()).min().unwrap_or(1)
}

/// Everything a client could observe of a node's state.
#[derive(Debug, PartialEq)]
struct Observed {
    revision: i64,
    compacted: i64,
    hashes: Vec<(i64, Result<u32, String>)>,
    ranges: Vec<(i64, Result<Vec<KeyValue>, String>)>,
    leases: Vec<(i64, i64, Vec<Vec<u8>>)>,
    members: Vec<(u64, Vec<String>, bool)>,
    alarms: Vec<(u64, i32)>,
}

fn observe(node: &Node) -> Observed {
    let status = node.status();
    let (revision, compacted) = (status.revision, status.compacted_revision);
    let readable = [0, compacted.max(1), (compacted + revision) / 2, revision - 1];
    let mut leases: Vec<(i64, i64, Vec<Vec<u8>>)> =
        node.leases().into_iter().filter_map(|id| node.lease_time_to_live(id, true)).map(|lease| (lease.id, lease.granted_ttl_seconds, lease.keys)).collect();
    leases.sort();
    Observed {
        revision,
        compacted,
        hashes: readable.iter().map(|&at| (at, node.hash_kv(at).map(|hash| hash.hash).map_err(|error| error.to_string()))).collect(),
        ranges: readable.iter().map(|&at| (at, node.range(&everything(at)).map(|response| response.kvs).map_err(|error| error.to_string()))).collect(),
        leases,
        members: node.members().into_iter().map(|member| (member.id, member.peer_urls, member.is_learner)).collect(),
        alarms: node.alarms(ALARM_NONE).into_iter().map(|alarm| (alarm.member_id, alarm.alarm)).collect(),
    }
}

/// One random write, as a client would send it.
fn random_write(random: &mut SeededRandom, node: &Node, step: u64) -> WriteRequest {
    let key = |random: &mut SeededRandom| format!("key/{:02}", random.below(30));
    let value = format!("value-{step}");
    let leases = node.leases();
    match random.below(20) {
        0..=7 => {
            let lease = if !leases.is_empty() && random.chance(1, 4) { leases[random.below(leases.len() as u64) as usize] } else { 0 };
            put(&key(random), &value, lease)
        }
        8 | 9 => WriteRequest::DeleteRange(DeleteRangeRequest { key: key(random).into_bytes(), range_end: Vec::new(), prev_kv: false }),
        10 => WriteRequest::DeleteRange(DeleteRangeRequest { key: b"key/1".to_vec(), range_end: b"key/2".to_vec(), prev_kv: false }),
        11 | 12 => {
            let ops = (0..2 + random.below(3))
                .map(|_| match random.chance(2, 3) {
                    true => RequestOp::Put(PutRequest { key: key(random).into_bytes(), value: value.clone().into_bytes(), ..PutRequest::default() }),
                    false => RequestOp::DeleteRange(DeleteRangeRequest { key: key(random).into_bytes(), range_end: Vec::new(), prev_kv: false }),
                })
                .collect::<Vec<_>>();
            // Keys of a txn must not overlap: keep the first op per key.
            let mut seen = std::collections::BTreeSet::new();
            let ops = ops
                .into_iter()
                .filter(|op| match op {
                    RequestOp::Put(put) => seen.insert(put.key.clone()),
                    RequestOp::DeleteRange(delete) => seen.insert(delete.key.clone()),
                    _ => true,
                })
                .collect();
            WriteRequest::Txn(TxnRequest { compare: Vec::new(), success: ops, failure: Vec::new() })
        }
        13 => {
            let status = node.status();
            let span = (status.revision - status.compacted_revision.max(0)).max(1) as u64;
            WriteRequest::Compact { revision: status.compacted_revision.max(0) + 1 + random.below(span) as i64, physical: random.chance(1, 2) }
        }
        14 | 15 => WriteRequest::LeaseGrant { id: 0, ttl: 3600 },
        16 if !leases.is_empty() => WriteRequest::LeaseRevoke { id: leases[random.below(leases.len() as u64) as usize] },
        17 => WriteRequest::Cluster(ClusterRequest::Alarm {
            action: if random.chance(1, 2) { AlarmAction::Activate } else { AlarmAction::Deactivate },
            member_id: 5,
            alarm: 7,
        }),
        18 => WriteRequest::Cluster(ClusterRequest::MemberAdd { peer_urls: vec![format!("http://learner-{step}:2380")], is_learner: true }),
        _ => match node.members().into_iter().find(|member| member.is_learner) {
            Some(learner) => WriteRequest::Cluster(ClusterRequest::MemberRemove { id: learner.id }),
            None => put(&key(random), &value, 0),
        },
    }
}

/// Random workloads with snapshots and restarts; every restart must show the same state.
fn restart_equivalence(increments_max: usize, seeds: std::ops::Range<u64>) -> (usize, usize) {
    let runtime = runtime();
    let (mut incrementals, mut restarts_after_retention) = (0, 0);
    for seed in seeds {
        let mut random = SeededRandom::new(seed);
        let disk = SimulatedFileSystem::new();
        let config = config(manual(2, increments_max));
        let mut node = open(&disk, &config);
        for step in 0..400u64 {
            let request = random_write(&mut random, &node, step);
            // Errors (a compaction below the compacted revision, …) are part of the workload.
            let _ = runtime.block_on(node.write(request));
            if random.chance(1, 25) {
                let created = runtime.block_on(node.create_snapshot(random.chance(1, 4))).unwrap_or_else(|error| panic!("seed {seed}: {error}"));
                incrementals += usize::from(created.base_revision.is_some());
            }
            if random.chance(1, 60) || step == 399 {
                let before = observe(&node);
                runtime.block_on(node.shutdown());
                drop(node);
                if random.chance(1, 3) {
                    disk.crash(CrashMode::LoseUnsynced);
                }
                node = open(&disk, &config);
                assert_eq!(observe(&node), before, "seed {seed} step {step}: state changed across a restart");
                restarts_after_retention += usize::from(first_segment_index(&disk) > 1);
            }
        }
        runtime.block_on(node.shutdown());
    }
    (incrementals, restarts_after_retention)
}

#[test]
fn restarts_hold_identical_state_with_full_snapshots() {
    let (incrementals, after_retention) = restart_equivalence(0, 0..8);
    assert_eq!(incrementals, 0);
    assert!(after_retention > 0, "some restarts had only snapshots and the log's tail to start from");
}

#[test]
fn restarts_hold_identical_state_with_incremental_snapshots() {
    let (incrementals, after_retention) = restart_equivalence(4, 100..108);
    assert!(incrementals > 10, "{incrementals} incremental snapshots were taken");
    assert!(after_retention > 0, "some restarts had only snapshot chains and the log's tail to start from");
}

/// A node with a first snapshot, more writes after it, and several segments.
fn seeded_node(disk: &SimulatedFileSystem, config: &NodeConfig, runtime: &tokio::runtime::Runtime) -> Arc<Node> {
    let node = open(disk, config);
    runtime.block_on(async {
        let lease = match node.write(WriteRequest::LeaseGrant { id: 77, ttl: 600 }).await.expect("grant") {
            WriteResponse::LeaseGrant { id, .. } => id,
            other => panic!("{other:?}"),
        };
        for round in 0..40 {
            node.write(put(&format!("k/{}", round % 17), &format!("v{round}"), if round % 5 == 0 { lease } else { 0 })).await.expect("put");
        }
        // Keys that never change again: incremental snapshots stay smaller than a full one.
        let ops = (0..100).map(|key| RequestOp::Put(PutRequest { key: format!("base/{key:03}").into_bytes(), value: vec![b'b'; 50], ..PutRequest::default() }));
        node.write(WriteRequest::Txn(TxnRequest { compare: Vec::new(), success: ops.collect(), failure: Vec::new() })).await.expect("txn");
        node.create_snapshot(true).await.expect("first snapshot");
        for round in 40..80 {
            node.write(put(&format!("k/{}", round % 23), &format!("v{round}"), 0)).await.expect("put");
        }
        node.write(WriteRequest::DeleteRange(DeleteRangeRequest { key: b"k/3".to_vec(), range_end: Vec::new(), prev_kv: false })).await.expect("delete");
    });
    node
}

#[test]
fn a_power_cut_at_every_step_of_a_snapshot_loses_nothing() {
    let runtime = runtime();
    let config = config(manual(1, 4));
    let mut covered_steps = 0;
    for full in [false, true] {
        for operations in 0u64.. {
            let mut finished = false;
            for mode in [CrashMode::LoseUnsynced, CrashMode::TornTail { seed: operations }] {
                let disk = SimulatedFileSystem::new();
                let node = seeded_node(&disk, &config, &runtime);
                let expected = observe(&node);
                let segments_before = files(&disk, "log").len();
                disk.fail_operations_after(operations);
                let result = runtime.block_on(node.create_snapshot(full));
                drop(node);
                disk.crash(mode);
                disk.clear_faults();
                let context = format!("full {full}, power cut after {operations} operations ({mode:?})");
                let node = Node::open_with(Arc::new(disk.clone()), config.clone(), None).unwrap_or_else(|error| panic!("{context}: {error}"));
                assert_eq!(observe(&node), expected, "{context}");
                if let Ok(created) = &result {
                    assert!(created.segments_removed > 0 && files(&disk, "log").len() < segments_before, "{context}: retention deleted segments");
                    finished = true;
                }
            }
            if finished {
                covered_steps += operations;
                break;
            }
        }
    }
    // Temp file, writes, fsync, rename, directory fsync, snapshot deletion + fsync, segment
    // deletions + fsync: each was a crash point above.
    assert!(covered_steps >= 14, "only {covered_steps} crash points");
}

#[test]
fn a_damaged_newest_snapshot_is_skipped_and_the_data_is_identical() {
    let runtime = runtime();
    let config = config(manual(3, 4));
    for damage in ["header", "record", "trailer", "base of the chain"] {
        let disk = SimulatedFileSystem::new();
        let node = seeded_node(&disk, &config, &runtime);
        // full A ← incremental B ← incremental C; or, to damage a base: A ← B, full C ← D.
        let base_damaged = damage == "base of the chain";
        runtime.block_on(async {
            node.create_snapshot(false).await.expect("incremental");
            node.write(put("after", "x", 0)).await.expect("put");
            node.create_snapshot(base_damaged).await.expect("snapshot");
            node.write(put("tail", "y", 0)).await.expect("put");
            if base_damaged {
                node.create_snapshot(false).await.expect("incremental");
                node.write(put("tail", "z", 0)).await.expect("put");
            }
        });
        let expected = observe(&node);
        runtime.block_on(node.shutdown());
        drop(node);
        let mut snapshots = files(&disk, "snap");
        snapshots.sort();
        assert_eq!(snapshots.iter().filter(|name| name.ends_with(".isnap")).count(), 2, "{snapshots:?}");
        let newest = snapshots.iter().filter(|name| name.ends_with(".isnap")).max().expect("incremental");
        let full = snapshots.iter().filter(|name| name.ends_with(".snap")).max().expect("full");
        let (name, offset) = match damage {
            "header" => (newest, 30),
            "record" => (newest, disk.contents(&Path::new(DATA).join("snap").join(newest)).expect("contents").len() as u64 - 60),
            "trailer" => (newest, disk.contents(&Path::new(DATA).join("snap").join(newest)).expect("contents").len() as u64 - 3),
            _ => (full, disk.contents(&Path::new(DATA).join("snap").join(full)).expect("contents").len() as u64 / 2),
        };
        disk.flip_byte(&Path::new(DATA).join("snap").join(name), offset).expect("flip");
        let node = open(&disk, &config);
        assert_eq!(observe(&node), expected, "damaged {damage}");
        // The damaged file is never a base, and the next retention deletes it.
        runtime.block_on(node.write(put("later", "w", 0))).expect("put");
        let created = runtime.block_on(node.create_snapshot(false)).expect("snapshot");
        assert!(!created.path.ends_with(name) && !files(&disk, "snap").contains(name), "{damage}: {created:?}");
        let expected = observe(&node);
        runtime.block_on(node.shutdown());
        drop(node);
        assert_eq!(observe(&open(&disk, &config)), expected, "damaged {damage}, after the next snapshot");
    }
}

#[test]
fn without_a_valid_path_start_up_is_refused_naming_the_snapshots() {
    let runtime = runtime();
    let config = config(manual(1, 0));
    let disk = SimulatedFileSystem::new();
    let node = seeded_node(&disk, &config, &runtime);
    runtime.block_on(node.create_snapshot(true)).expect("snapshot");
    runtime.block_on(node.shutdown());
    drop(node);
    assert!(first_segment_index(&disk) > 1, "retention deleted the log's head");
    let only = files(&disk, "snap").pop().expect("a snapshot");
    let path = Path::new(DATA).join("snap").join(&only);
    let length = disk.contents(&path).expect("contents").len() as u64;
    disk.flip_byte(&path, length / 2).expect("flip");
    let error = Node::open_with(Arc::new(disk.clone()), config.clone(), None).err().expect("refused").to_string();
    assert!(error.contains(&only) && error.contains("starts at index"), "{error}");
    assert_eq!(disk.contents(&path).expect("untouched").len() as u64, length, "nothing was modified");

    // With the whole log still there (keep every snapshot), a damaged snapshot falls back to it.
    let config = NodeConfig { snapshot: manual(0, 0), ..config };
    let disk = SimulatedFileSystem::new();
    let node = seeded_node(&disk, &config, &runtime);
    let expected = observe(&node);
    runtime.block_on(node.shutdown());
    drop(node);
    for name in files(&disk, "snap") {
        disk.flip_byte(&Path::new(DATA).join("snap").join(name), 40).expect("flip");
    }
    assert_eq!(observe(&open(&disk, &config)), expected, "full replay");
}

fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn automatic_snapshots_follow_the_entry_count_and_keep_the_newest() {
    let runtime = runtime();
    let config = config(SnapshotPolicy { entries: 25, log_bytes: 0, keep: 2, increments_max: 3 });
    let disk = SimulatedFileSystem::new();
    let node = open(&disk, &config);
    let restore_points = |disk: &SimulatedFileSystem| files(disk, "snap").iter().filter(|name| name.ends_with("snap")).count();
    for round in 0..300 {
        runtime.block_on(node.write(put(&format!("auto/{}", round % 40), "v", 0))).expect("put");
        if round % 50 == 49 {
            let entries = node.status().last_log_index;
            wait_until("a snapshot covers all but the last 25 entries", || {
                files(&disk, "snap")
                    .iter()
                    .filter_map(|name| name.split('.').next()?.parse::<i64>().ok())
                    .max()
                    .is_some_and(|revision| revision as u64 + 25 > entries)
            });
        }
    }
    assert!(restore_points(&disk) <= 4, "the newest 2 restore points and their bases: {:?}", files(&disk, "snap"));
    assert!(first_segment_index(&disk) > 1, "covered segments were deleted");
    // The segment gauge counts what is there once the writer saw the deletion. (After an explicit
    // snapshot, which waits for any automatic one, the next is 25 entries away.)
    runtime.block_on(node.create_snapshot(false)).expect("snapshot");
    runtime.block_on(node.write(put("auto/last", "v", 0))).expect("put");
    let mut metrics = strata_node::metrics::MetricsText::new();
    node.write_metrics(&mut metrics);
    let gauge = metrics.finish().lines().find_map(|line| line.strip_prefix("strata_log_segments ")?.trim().parse::<usize>().ok()).expect("gauge");
    assert_eq!(gauge, files(&disk, "log").iter().filter(|name| name.ends_with(".seg")).count());
    let expected = observe(&node);
    runtime.block_on(node.shutdown());
    drop(node);
    assert_eq!(observe(&open(&disk, &config)), expected);

    // The log-bytes trigger alone.
    let config = NodeConfig { snapshot: SnapshotPolicy { entries: 1_000_000, log_bytes: 4096, keep: 1, increments_max: 0 }, ..config };
    let disk = SimulatedFileSystem::new();
    let node = open(&disk, &config);
    for round in 0..40 {
        runtime.block_on(node.write(put(&format!("big/{round}"), &"x".repeat(200), 0))).expect("put");
    }
    wait_until("4 KiB of log triggered a snapshot", || !files(&disk, "snap").is_empty());
}

#[test]
fn automatic_compaction_in_revision_and_periodic_modes() {
    let runtime = runtime();
    let disk = SimulatedFileSystem::new();
    let mut config = config(manual(1, 0));
    config.auto_compaction = Some(AutoCompaction::Revision { retention: 10, check_interval_millis: 20 });
    let node = open(&disk, &config);
    for round in 0..50 {
        runtime.block_on(node.write(put("rev", &format!("{round}"), 0))).expect("put");
    }
    let revision = node.revision();
    wait_until("revision mode compacted to current − 10", || node.status().compacted_revision == revision - 10);
    runtime.block_on(node.shutdown());

    let disk = SimulatedFileSystem::new();
    config.auto_compaction = Some(AutoCompaction::Periodic { period_millis: 300 });
    let node = open(&disk, &config);
    let started = Instant::now();
    let mut first_revision = 0;
    while node.status().compacted_revision <= 1 {
        let response = runtime.block_on(node.write(put("periodic", "v", 0))).expect("put");
        if let WriteResponse::Put(put) = response {
            first_revision = if first_revision == 0 { put.revision } else { first_revision };
        }
        assert!(started.elapsed() < Duration::from_secs(20), "periodic mode never compacted");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(started.elapsed() >= Duration::from_millis(300), "not before one period");
    runtime.block_on(node.shutdown());
}

#[test]
fn writes_go_on_while_a_snapshot_streams_and_it_holds_the_state_at_its_revision() {
    let runtime = runtime();
    let directory = std::env::temp_dir().join(format!("strata-node-snapshot-stream-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    let mut config = NodeConfig::new("stream", &directory);
    config.snapshot = manual(2, 0);
    let node = Arc::new(Node::open(config.clone()).expect("open"));
    let keys = 20_000u64;
    let value = "v".repeat(200);
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for worker in 0..64 {
            let node = node.clone();
            let value = value.clone();
            tasks.push(tokio::spawn(async move {
                for key in (worker..keys).step_by(64) {
                    node.write(put(&format!("big/{key:06}"), &value, 0)).await.expect("put");
                }
            }));
        }
        for task in tasks {
            task.await.expect("task");
        }
    });
    // Stream while writing and compacting.
    let (bytes, revision, writes_during) = runtime.block_on(async {
        let mut stream = node.snapshot_stream();
        let first = stream.recv().await.expect("a chunk").expect("chunk");
        let revision = first.revision;
        let writer = {
            let node = node.clone();
            tokio::spawn(async move {
                let mut written = 0u64;
                for round in 0..2000u64 {
                    node.write(put(&format!("big/{:06}", round % keys), "overwritten", 0)).await.expect("put during the snapshot");
                    written += 1;
                    if round == 100 {
                        let current = node.revision();
                        node.write(WriteRequest::Compact { revision: current, physical: true }).await.expect("compact");
                    }
                }
                written
            })
        };
        let mut bytes = first.bytes;
        let mut chunks_while_writing = 0;
        while let Some(chunk) = stream.recv().await {
            bytes.extend(chunk.expect("chunk").bytes);
            chunks_while_writing += usize::from(!writer.is_finished());
        }
        let written = writer.await.expect("writer");
        assert!(chunks_while_writing > 0);
        (bytes, revision, written)
    });
    assert_eq!(writes_during, 2000);
    let file = directory.join("streamed.snap");
    std::fs::write(&file, &bytes).expect("write");
    let fs = strata_io::RealFileSystem::new();
    let mut reader = strata_snapshot::SnapshotReader::open(&fs, &file).expect("open");
    assert_eq!(reader.header().revision, revision);
    let mut found = BTreeMap::new();
    while let Some(record) = reader.next_record().expect("record") {
        if let strata_snapshot::Record::Key(key) = record {
            let last = key.versions.last().expect("a version");
            assert!(last.mod_revision <= revision, "nothing after the snapshot's revision");
            found.insert(key.key, last.value.clone());
        }
    }
    assert_eq!(found.len() as u64, keys);
    assert!(found.values().all(|stored| stored == value.as_bytes()), "every key as it was at the snapshot's revision");

    // Restore it into a new directory: a new member with the same data.
    let restored_directory = directory.join("restored");
    let mut restored_config = NodeConfig::new("restored", &restored_directory);
    restored_config.snapshot = manual(2, 0);
    let before = runtime.block_on(async {
        let report = strata_node::restore_snapshot(&file, &restored_config, &mut |_, _| {}).expect("restore");
        assert_eq!((report.revision, report.key_count), (revision, keys));
        assert!(strata_node::restore_snapshot(&file, &restored_config, &mut |_, _| {}).expect_err("exists").contains("exists"));
        let restored = Node::open(restored_config.clone()).expect("open restored");
        assert_ne!(restored.member_id(), node.member_id());
        assert_eq!(restored.members().len(), 1);
        assert_eq!(restored.range(&everything(0)).expect("range").kvs.len() as u64, keys);
        restored.write(put("big/000000", "after restore", 0)).await.expect("put");
        let before = observe(&restored);
        restored.shutdown().await;
        before
    });
    let restored = Node::open(restored_config).expect("reopen restored");
    assert_eq!(observe(&restored), before);
    runtime.block_on(async {
        restored.shutdown().await;
        node.shutdown().await;
    });
    drop((restored, node));
    let _ = std::fs::remove_dir_all(&directory);
}

#[test]
fn auth_state_is_in_snapshots_and_survives_retention() {
    use strata_auth::{AuthRequest, Permission};
    let runtime = runtime();
    let config = config(manual(1, 0));
    let disk = SimulatedFileSystem::new();
    let node = open(&disk, &config);
    runtime.block_on(async {
        for request in [
            AuthRequest::RoleAdd { name: "root".into() },
            AuthRequest::UserAdd { name: "root".into(), password_hash: b"$2a$10$hash".to_vec(), no_password: false },
            AuthRequest::UserGrantRole { user: "root".into(), role: "root".into() },
            AuthRequest::RoleAdd { name: "reader".into() },
            AuthRequest::RoleGrantPermission { name: "reader".into(), permission: Some(Permission { kind: 0, key: b"a".to_vec(), range_end: b"b".to_vec() }) },
            AuthRequest::UserAdd { name: "alice".into(), password_hash: Vec::new(), no_password: true },
            AuthRequest::UserGrantRole { user: "alice".into(), role: "reader".into() },
            AuthRequest::Enable,
        ] {
            node.write(WriteRequest::Auth(request)).await.expect("auth change");
        }
        for round in 0..60 {
            node.write(put(&format!("a/{round}"), "v", 0)).await.expect("put");
        }
        node.create_snapshot(true).await.expect("snapshot");
    });
    assert!(first_segment_index(&disk) > 1, "the auth changes' segments were deleted");
    let expected = (node.auth_state(), observe(&node));
    assert!(expected.0.is_enabled());
    runtime.block_on(node.shutdown());
    drop(node);
    let node = open(&disk, &config);
    assert_eq!((node.auth_state(), observe(&node)), expected);
    runtime.block_on(node.shutdown());
}

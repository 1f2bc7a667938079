//! Snapshots end to end, with the real `strata` binary:
//! - `strata snapshot save` from a node under writes, `strata snapshot inspect`, and
//!   `strata snapshot restore` into a new data directory that a new member serves with the same
//!   data (same HashKV), read with etcdctl too when it is installed;
//! - restarts (SIGTERM and SIGKILL) after automatic snapshots deleted the log's head give the same
//!   data (HashKV and a full range); a damaged newest snapshot is skipped;
//! - SIGKILL while snapshots are taken loses no acknowledged write;
//! - `--auto-compaction-mode=periodic --auto-compaction-retention=1s` compacts as etcd 3.4 does
//!   (differential: both refuse old revisions with the same error after about a second, not before).

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use strata_etcd_api::pb::etcdserverpb as pb;
use support::{connect, etcd_binary, start_etcd_with_args, start_strata, strata_binary, Clients, TempDir, names};

/// Small segments and frequent snapshots, so retention deletes segments within a test.
const FREQUENT_SNAPSHOTS: &[&str] = &["--log-segment-bytes=16384", "--snapshot-count=200", "--max-snapshots=2", "--snapshot-increments=3"];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

async fn put(clients: &mut Clients, key: &str, value: &str) -> i64 {
    let request = pb::PutRequest { key: key.into(), value: value.into(), ..pb::PutRequest::default() };
    clients.kv.put(request).await.expect("put").into_inner().header.expect("header").revision
}

/// HashKV and every key with its versions: the data, without what identifies the server.
async fn data(clients: &mut Clients) -> (u32, i64, Vec<strata_etcd_api::pb::mvccpb::KeyValue>) {
    let hash = clients.maintenance.hash_kv(pb::HashKvRequest { revision: 0 }).await.expect("hash").into_inner();
    let range = pb::RangeRequest { key: vec![0], range_end: vec![0], ..pb::RangeRequest::default() };
    let kvs = clients.kv.range(range).await.expect("range").into_inner().kvs;
    (hash.hash, hash.header.expect("header").revision, kvs)
}

fn first_segment(data_dir: &Path) -> u64 {
    names(&data_dir.join("log")).iter().filter_map(|name| name.strip_suffix(".seg")?.parse().ok()).min().unwrap_or(1)
}

fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn strata(arguments: &[&str]) -> std::process::Output {
    std::process::Command::new(strata_binary()).args(arguments).output().expect("run strata")
}

#[test]
fn save_inspect_and_restore_with_the_binary() {
    let runtime = runtime();
    let directory = TempDir::new("snapshot-tools");
    let data_dir = directory.join("node");
    let server = start_strata(&data_dir, &[]);
    let backup = directory.join("backup.snap");
    let (saved_revision, expected) = runtime.block_on(async {
        let mut clients = connect(&server.endpoint).await;
        for index in 0..500 {
            put(&mut clients, &format!("tool/{:03}", index % 200), &format!("value-{index}")).await;
        }
        // Save while another client keeps writing.
        let mut writer = clients.clone();
        let writing = tokio::spawn(async move {
            for index in 0..300 {
                put(&mut writer, &format!("during/{index}"), "x").await;
            }
        });
        let endpoint = server.endpoint.trim_start_matches("http://").to_string();
        let backup = backup.clone();
        let output =
            tokio::task::spawn_blocking(move || strata(&["snapshot", "save", backup.to_str().expect("path"), "--endpoints", &endpoint])).await.expect("save");
        assert!(output.status.success(), "save failed: {}", String::from_utf8_lossy(&output.stderr));
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(stdout.contains("Snapshot saved at"), "{stdout}");
        writing.await.expect("writer");
        let revision: i64 = stdout.split("(revision ").nth(1).and_then(|rest| rest.split(',').next()).and_then(|text| text.parse().ok()).expect("revision");
        // The data as of the saved revision: a range at that revision, and HashKV at it.
        let range = pb::RangeRequest { key: vec![0], range_end: vec![0], revision, ..pb::RangeRequest::default() };
        let kvs = clients.kv.range(range).await.expect("range").into_inner().kvs;
        let hash = clients.maintenance.hash_kv(pb::HashKvRequest { revision }).await.expect("hash").into_inner().hash;
        (revision, (hash, kvs))
    });
    assert!(!names(&directory.path).iter().any(|name| name.ends_with(".part")), "no partial file is left");

    let inspected = strata(&["snapshot", "inspect", backup.to_str().expect("path")]);
    let text = String::from_utf8_lossy(&inspected.stdout);
    assert!(inspected.status.success(), "{}", String::from_utf8_lossy(&inspected.stderr));
    for line in [format!("revision:           {saved_revision}"), "kind:               full".to_string(), "verified:".to_string(), "timeframe:".to_string()] {
        assert!(text.contains(&line), "{line:?} in:\n{text}");
    }
    let keys: u64 = text.lines().find_map(|line| line.strip_prefix("keys:")).and_then(|value| value.trim().parse().ok()).expect("keys");
    assert_eq!(keys as usize, expected.1.len());

    let restored_dir = directory.join("restored");
    let output = strata(&["snapshot", "restore", backup.to_str().expect("path"), "--data-dir", restored_dir.to_str().expect("path"), "--name", "restored"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let again = strata(&["snapshot", "restore", backup.to_str().expect("path"), "--data-dir", restored_dir.to_str().expect("path")]);
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("exists"), "a restore never overwrites");

    let restored = start_strata(&restored_dir, &["--name", "restored"]);
    runtime.block_on(async {
        let mut clients = connect(&restored.endpoint).await;
        let (hash, revision, kvs) = data(&mut clients).await;
        assert_eq!(revision, saved_revision);
        assert_eq!((hash, kvs), expected, "the restored node holds the saved data");
        let members = clients.cluster.member_list(pb::MemberListRequest::default()).await.expect("members").into_inner().members;
        assert_eq!(members.len(), 1);
        assert_eq!(members[0].name, "restored");
        let status = clients.maintenance.status(pb::StatusRequest {}).await.expect("status").into_inner();
        let original = connect(&server.endpoint).await.maintenance.status(pb::StatusRequest {}).await.expect("status").into_inner();
        assert_ne!(status.header.expect("header").member_id, original.header.expect("header").member_id, "a restored node is a new member");
    });
    if let Some(etcdctl) = support::etcdctl_binary() {
        let output =
            std::process::Command::new(etcdctl).env("ETCDCTL_API", "3").args(["--endpoints", &restored.endpoint, "get", "tool/007"]).output().expect("etcdctl");
        assert_eq!(String::from_utf8_lossy(&output.stdout), "tool/007\nvalue-407\n");
    }
}

#[test]
fn restarts_after_retention_hold_identical_data_and_skip_a_damaged_snapshot() {
    let runtime = runtime();
    let directory = TempDir::new("snapshot-restart");
    let data_dir = directory.join("node");
    let mut server = start_strata(&data_dir, FREQUENT_SNAPSHOTS);
    let mut expected = runtime.block_on(async {
        let mut clients = connect(&server.endpoint).await;
        for index in 0..1500 {
            put(&mut clients, &format!("r/{:04}", index % 700), &format!("{index:0>100}")).await;
        }
        let compaction = pb::CompactionRequest { revision: 900, physical: true };
        clients.kv.compact(compaction).await.expect("compact");
        for index in 0..100 {
            put(&mut clients, &format!("tail/{index}"), "t").await;
        }
        data(&mut clients).await
    });
    wait_until("retention deleted the log's head", || first_segment(&data_dir) > 1);
    for (stop, label) in [(ServerStop::Terminate, "SIGTERM"), (ServerStop::Kill, "SIGKILL"), (ServerStop::DamageNewest, "damaged newest snapshot")] {
        match stop {
            ServerStop::Terminate => assert!(server.terminate().success()),
            ServerStop::Kill => server.kill(),
            ServerStop::DamageNewest => {
                server.kill();
                let snapshots = names(&data_dir.join("snap"));
                let newest = snapshots.iter().max_by_key(|name| name[..20].to_string()).expect("a snapshot");
                let path = data_dir.join("snap").join(newest);
                let mut bytes = std::fs::read(&path).expect("read");
                let middle = bytes.len() / 2;
                bytes[middle] ^= 0xff;
                std::fs::write(&path, bytes).expect("write");
            }
        }
        server = start_strata(&data_dir, FREQUENT_SNAPSHOTS);
        let found = runtime.block_on(async { data(&mut connect(&server.endpoint).await).await });
        assert_eq!(found, expected, "after {label}");
        if stop == ServerStop::DamageNewest {
            assert!(server.log().contains("skipping a snapshot"), "the damaged snapshot was reported:\n{}", server.log());
        }
        expected = runtime.block_on(async {
            let mut clients = connect(&server.endpoint).await;
            for index in 0..250 {
                put(&mut clients, &format!("more/{index}"), label).await;
            }
            data(&mut clients).await
        });
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ServerStop {
    Terminate,
    Kill,
    DamageNewest,
}

#[test]
fn kills_while_snapshots_are_taken_lose_no_acknowledged_write() {
    let runtime = runtime();
    let directory = TempDir::new("snapshot-kills");
    let data_dir = directory.join("node");
    let arguments = ["--log-segment-bytes=16384", "--snapshot-count=40", "--max-snapshots=1", "--snapshot-increments=2"];
    let mut acknowledged: Vec<(String, String)> = Vec::new();
    let mut written = 0u64;
    for cycle in 0..12u64 {
        let server = start_strata(&data_dir, &arguments);
        runtime.block_on(async {
            let mut clients = connect(&server.endpoint).await;
            let range = pb::RangeRequest { key: vec![0], range_end: vec![0], ..pb::RangeRequest::default() };
            let found: std::collections::BTreeMap<Vec<u8>, Vec<u8>> =
                clients.kv.range(range).await.expect("range").into_inner().kvs.into_iter().map(|kv| (kv.key, kv.value)).collect();
            for (key, value) in &acknowledged {
                assert_eq!(found.get(key.as_bytes()).map(Vec::as_slice), Some(value.as_bytes()), "cycle {cycle}: acknowledged {key} lost");
            }
            // Write until killed after a cycle-dependent delay.
            let deadline = Instant::now() + Duration::from_millis(150 + cycle * 37 % 200);
            while Instant::now() < deadline {
                written += 1;
                let (key, value) = (format!("k/{}", written % 300), format!("v{written}"));
                let request = pb::PutRequest { key: key.clone().into(), value: value.clone().into(), ..pb::PutRequest::default() };
                if clients.kv.put(request).await.is_ok() {
                    acknowledged.retain(|(existing, _)| *existing != key);
                    acknowledged.push((key, value));
                }
            }
        });
        drop(server); // SIGKILL
    }
    assert!(first_segment(&data_dir) > 1, "snapshots let retention delete segments during the test");
}

#[test]
fn periodic_auto_compaction_compacts_like_etcd() {
    let Some(etcd) = etcd_binary() else { return };
    let runtime = runtime();
    let directory = TempDir::new("auto-compaction");
    let arguments = ["--auto-compaction-mode=periodic", "--auto-compaction-retention=1s"];
    let etcd = start_etcd_with_args(&etcd, &directory.join("etcd"), &arguments);
    let strata = start_strata(&directory.join("strata"), &arguments);
    let outcomes: Vec<(Duration, String)> = runtime.block_on(async {
        let mut outcomes = Vec::new();
        for endpoint in [&etcd.endpoint, &strata.endpoint] {
            let mut clients = connect(endpoint).await;
            let started = Instant::now();
            let first = put(&mut clients, "periodic", "first").await;
            let message = loop {
                put(&mut clients, "periodic", "again").await;
                let old = pb::RangeRequest { key: b"periodic".to_vec(), revision: first, ..pb::RangeRequest::default() };
                if let Err(status) = clients.kv.range(old).await {
                    break format!("{:?}: {}", status.code(), status.message());
                }
                assert!(started.elapsed() < Duration::from_secs(20), "{endpoint} never compacted");
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            outcomes.push((started.elapsed(), message));
        }
        outcomes
    });
    assert_eq!(outcomes[0].1, outcomes[1].1, "the same error for a compacted revision");
    assert!(outcomes[0].1.contains("required revision has been compacted"), "{}", outcomes[0].1);
    for (elapsed, _) in &outcomes {
        assert!(*elapsed >= Duration::from_millis(900) && *elapsed < Duration::from_secs(5), "compacted after {elapsed:?}");
    }
}

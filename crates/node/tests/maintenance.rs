//! Maintenance through the node, on the simulated disk: the quota raises NOSPACE and refuses
//! writes that add data (and only those) until compaction, defragment and a disarm; the alarm and
//! membership changes survive a power cut; a batch that cannot be made durable changes neither;
//! the space accounting grows, shrinks in use on compaction and in size on defragment.

use std::path::Path;
use std::sync::Arc;

use strata_io::{CrashMode, SimulatedFileSystem};
use strata_mvcc::{DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest};
use strata_node::{
    Alarm, AlarmAction, ClusterError, ClusterRequest, ClusterResponse, Node, NodeConfig, NodeError, WriteRequest, WriteResponse, ALARM_NONE, ALARM_NOSPACE,
};

/// etcd 3.4 refuses the 12th put of 1000 bytes with this quota.
const QUOTA_BYTES: u64 = 53248;
/// etcd's default quota (2 GiB), as `--quota-backend-bytes=0` asks for it.
const DEFAULT_QUOTA: u64 = 2 * 1024 * 1024 * 1024;
/// Puts after which a node that never raised NOSPACE fails the test.
const QUOTA_PUTS_MAX: usize = 100;

fn open(disk: &SimulatedFileSystem, quota_backend_bytes: u64) -> Node {
    let mut config = NodeConfig::new("maintenance", Path::new("/data"));
    config.quota_backend_bytes = quota_backend_bytes;
    config.advertise_peer_urls = vec!["http://127.0.0.1:2380".to_string()];
    Node::open_with(Arc::new(disk.clone()), config, None).expect("open the node")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

fn put(key: &str, value_bytes: usize) -> WriteRequest {
    WriteRequest::Put(PutRequest { key: key.as_bytes().to_vec(), value: vec![b'v'; value_bytes], ..Default::default() })
}

fn alarm(action: AlarmAction, member_id: u64) -> WriteRequest {
    WriteRequest::Cluster(ClusterRequest::Alarm { action, member_id, alarm: ALARM_NOSPACE })
}

fn add_learner(url: &str) -> WriteRequest {
    WriteRequest::Cluster(ClusterRequest::MemberAdd { peer_urls: vec![url.to_string()], is_learner: true })
}

fn count(node: &Node) -> i64 {
    node.range(&RangeRequest { key: vec![0], range_end: vec![0], count_only: true, ..Default::default() }).expect("range").count
}

#[test]
fn the_quota_raises_nospace_durably_and_only_a_disarm_ends_it() {
    let runtime = runtime();
    let disk = SimulatedFileSystem::new();
    let node = open(&disk, QUOTA_BYTES);
    let self_id = node.member_id();
    let nospace = vec![Alarm { member_id: self_id, alarm: ALARM_NOSPACE }];
    let puts = runtime.block_on(async {
        let mut puts = 0;
        while node.write(put(&format!("fill/{puts:03}"), 1000)).await.is_ok() {
            puts += 1;
            assert!(puts < QUOTA_PUTS_MAX, "no NOSPACE after {puts} puts");
        }
        assert_eq!(node.alarms(ALARM_NONE), nospace);
        let revision = node.revision();
        assert_eq!(node.write(put("small", 1)).await.unwrap_err(), NodeError::NoSpace);
        let txn = TxnRequest { compare: vec![], success: vec![], failure: vec![RequestOp::Put(PutRequest { key: b"t".to_vec(), ..Default::default() })] };
        assert_eq!(node.write(WriteRequest::Txn(txn)).await.unwrap_err(), NodeError::NoSpace, "a put in either branch costs");
        assert_eq!(node.write(WriteRequest::LeaseGrant { id: 0, ttl: 60 }).await.unwrap_err(), NodeError::NoSpace);
        assert_eq!(node.revision(), revision, "refused writes change nothing");
        let delete = WriteRequest::DeleteRange(DeleteRangeRequest { key: b"fill/000".to_vec(), ..Default::default() });
        assert!(matches!(node.write(delete).await, Ok(WriteResponse::DeleteRange(response)) if response.deleted == 1));
        puts
    });
    assert!((9..=13).contains(&puts), "{puts} puts of 1000 bytes before NOSPACE; etcd 3.4 takes 11");

    // A power cut keeps the alarm.
    drop(node);
    disk.crash(CrashMode::LoseUnsynced);
    let node = open(&disk, QUOTA_BYTES);
    assert_eq!(node.alarms(ALARM_NOSPACE), nospace);
    runtime.block_on(async {
        assert_eq!(node.write(put("small", 1)).await.unwrap_err(), NodeError::NoSpace);
        let before = node.space();
        let revision = node.revision();
        node.write(WriteRequest::Compact { revision, physical: true }).await.expect("compact");
        node.defragment();
        let after = node.space();
        assert!(after.size_bytes < before.size_bytes && after.in_use_bytes <= after.size_bytes, "{before:?} → {after:?}");
        assert_eq!(node.write(put("small", 1)).await.unwrap_err(), NodeError::NoSpace, "the alarm outlives the space it guarded");
        let disarmed = node.write(alarm(AlarmAction::Deactivate, self_id)).await.expect("disarm");
        assert!(matches!(disarmed, WriteResponse::Cluster(ClusterResponse::Alarms(alarms)) if alarms == nospace));
        assert!(node.alarms(ALARM_NONE).is_empty());
        node.write(put("small", 1)).await.expect("writes resume");
    });
    drop(node);
    disk.crash(CrashMode::LoseUnsynced);
    let node = open(&disk, QUOTA_BYTES);
    assert!(node.alarms(ALARM_NONE).is_empty(), "the disarm is durable too");
    assert_eq!(count(&node), puts as i64);
}

#[test]
fn membership_survives_a_power_cut_and_a_failed_batch_changes_nothing() {
    let runtime = runtime();
    let disk = SimulatedFileSystem::new();
    let node = open(&disk, DEFAULT_QUOTA);
    let self_id = node.member_id();
    let learner = runtime.block_on(async {
        let Ok(WriteResponse::Cluster(ClusterResponse::Members { added: Some(learner), members })) = node.write(add_learner("http://b:2380")).await else {
            panic!("a learner is added")
        };
        assert_eq!(members.len(), 2);
        assert!(learner.is_learner && !learner.is_self && learner.name.is_empty());
        let voter = WriteRequest::Cluster(ClusterRequest::MemberAdd { peer_urls: vec!["http://c:2380".to_string()], is_learner: false });
        assert_eq!(node.write(voter).await.unwrap_err(), NodeError::Cluster(ClusterError::NotEnoughStartedMembers));
        let update = ClusterRequest::MemberUpdate { id: self_id, peer_urls: vec!["http://a:2380".to_string(), "http://a:2381".to_string()] };
        node.write(WriteRequest::Cluster(update)).await.expect("update");
        learner
    });
    let members = node.members();
    drop(node);
    disk.crash(CrashMode::LoseUnsynced);
    let node = open(&disk, DEFAULT_QUOTA);
    assert_eq!(node.members(), members);
    assert!(node.members().iter().any(|member| member.is_self && member.id == self_id && member.peer_urls.len() == 2));

    runtime.block_on(async {
        disk.fail_syncs(true);
        let (removed, raised) = tokio::join!(
            node.write(WriteRequest::Cluster(ClusterRequest::MemberRemove { id: learner.id })),
            node.write(alarm(AlarmAction::Activate, self_id)),
        );
        assert!(matches!(removed, Err(NodeError::Storage(_))), "{removed:?}");
        assert!(matches!(raised, Err(NodeError::Storage(_))), "{raised:?}");
    });
    assert_eq!(node.members(), members, "a batch that is not durable changes no member");
    assert!(node.alarms(ALARM_NONE).is_empty(), "nor an alarm");
    drop(node);
    disk.clear_faults();
    disk.crash(CrashMode::LoseUnsynced);
    let node = open(&disk, DEFAULT_QUOTA);
    assert_eq!(node.members(), members);
    runtime.block_on(async {
        node.write(WriteRequest::Cluster(ClusterRequest::MemberRemove { id: learner.id })).await.expect("remove");
    });
    assert_eq!(node.members().len(), 1);
}

#[test]
fn space_grows_with_versions_and_shrinks_as_etcds_file_does() {
    let runtime = runtime();
    let disk = SimulatedFileSystem::new();
    let node = open(&disk, DEFAULT_QUOTA);
    let empty = node.space();
    assert_eq!((empty.size_bytes, empty.in_use_bytes), (20480, 16384), "an empty etcd's sizes");
    let written = runtime.block_on(async {
        for version in 0..200 {
            node.write(put(&format!("key/{}", version % 10), 500)).await.expect("put");
        }
        let written = node.space();
        assert!(written.in_use_bytes > empty.in_use_bytes && written.size_bytes > written.in_use_bytes);
        let revision = node.revision();
        node.write(WriteRequest::Compact { revision, physical: true }).await.expect("compact");
        let compacted = node.space();
        assert!(compacted.in_use_bytes < written.in_use_bytes, "compaction frees pages: {written:?} → {compacted:?}");
        assert_eq!(compacted.size_bytes, written.size_bytes, "the file keeps its size");
        node.defragment();
        let defragmented = node.space();
        assert_eq!(defragmented.in_use_bytes, compacted.in_use_bytes);
        assert!(defragmented.size_bytes < compacted.size_bytes);
        node.write(put("key/0", 500)).await.expect("writes go on after a defragment");
        written
    });
    // A restart counts the replayed versions as packed anew: no larger than before.
    let before = node.space();
    drop(node);
    disk.crash(CrashMode::LoseUnsynced);
    let node = open(&disk, DEFAULT_QUOTA);
    let after = node.space();
    assert_eq!(after.in_use_bytes, before.in_use_bytes);
    assert!(after.size_bytes <= before.size_bytes && after.size_bytes < written.size_bytes, "{before:?} → {after:?}");
}

//! Leases through the node's writer, on the simulated disk: grants and revokes are evaluated in
//! order with the other requests of a batch, a revoke deletes the lease's keys in one revision,
//! a batch that cannot be made durable leaves no lease behind, replay rebuilds leases with their
//! keys (and full TTL), and expired leases are revoked by the node's own expiry task.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_io::{CrashMode, SimulatedFileSystem};
use strata_lease::{LeaseError, LEASE_TTL_MIN_SECONDS};
use strata_mvcc::{DeleteRangeRequest, KvError, PutRequest, RangeRequest, RequestOp, TxnRequest};
use strata_node::{Node, NodeConfig, NodeError, WriteRequest, WriteResponse};

fn open(disk: &SimulatedFileSystem) -> Node {
    Node::open_with(Arc::new(disk.clone()), NodeConfig::new("lease", Path::new("/data")), None).expect("open the node")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

fn put(key: &str, lease: i64) -> WriteRequest {
    WriteRequest::Put(PutRequest { key: key.as_bytes().to_vec(), value: b"v".to_vec(), lease, ..Default::default() })
}

fn keys(node: &Node) -> Vec<(String, i64)> {
    let everything = RangeRequest { key: vec![0], range_end: vec![0], ..Default::default() };
    node.range(&everything).expect("range").kvs.into_iter().map(|kv| (String::from_utf8_lossy(&kv.key).into_owned(), kv.lease)).collect()
}

fn granted(response: Result<WriteResponse, NodeError>) -> (i64, i64) {
    match response {
        Ok(WriteResponse::LeaseGrant { id, ttl, .. }) => (id, ttl),
        other => panic!("expected a grant, got {other:?}"),
    }
}

#[test]
fn grants_revokes_and_puts_are_evaluated_in_batch_order() {
    let runtime = runtime();
    let disk = SimulatedFileSystem::new();
    let node = open(&disk);
    runtime.block_on(async {
        // Queued together: the put sees the grant before it, the second grant sees the first.
        let (grant, attached, duplicate) = tokio::join!(
            node.write(WriteRequest::LeaseGrant { id: 7, ttl: 60 }),
            node.write(put("a", 7)),
            node.write(WriteRequest::LeaseGrant { id: 7, ttl: 60 }),
        );
        assert_eq!(granted(grant), (7, 60));
        assert!(matches!(attached, Ok(WriteResponse::Put(_))), "{attached:?}");
        assert_eq!(duplicate.unwrap_err(), NodeError::Lease(LeaseError::Exists));
        assert_eq!(node.write(put("b", 8)).await.unwrap_err(), NodeError::Kv(KvError::LeaseNotFound));

        // A txn attaches too; a put without a lease and a delete detach.
        let txn = TxnRequest {
            compare: vec![],
            success: vec![
                RequestOp::Put(PutRequest { key: b"b".to_vec(), lease: 7, ..Default::default() }),
                RequestOp::Put(PutRequest { key: b"c".to_vec(), lease: 7, ..Default::default() }),
                RequestOp::Put(PutRequest { key: b"d".to_vec(), lease: 7, ..Default::default() }),
            ],
            failure: vec![],
        };
        node.write(WriteRequest::Txn(txn)).await.unwrap();
        node.write(put("c", 0)).await.unwrap();
        node.write(WriteRequest::DeleteRange(DeleteRangeRequest { key: b"d".to_vec(), ..Default::default() })).await.unwrap();
        let shown = node.lease_time_to_live(7, true).expect("lease 7");
        assert_eq!(shown.keys, vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!((shown.granted_ttl_seconds, shown.remaining_seconds), (60, 59));

        // The revoke deletes both keys in one revision; queued with it, a put to the lease fails.
        let before = node.revision();
        let (revoked, late_put) = tokio::join!(node.write(WriteRequest::LeaseRevoke { id: 7 }), node.write(put("e", 7)));
        assert!(matches!(revoked, Ok(WriteResponse::LeaseRevoke { revision }) if revision == before + 1), "{revoked:?}");
        assert_eq!(late_put.unwrap_err(), NodeError::Kv(KvError::LeaseNotFound));
        assert_eq!(keys(&node), vec![("c".to_string(), 0)]);
        assert!(node.lease_time_to_live(7, false).is_none());
        assert_eq!(node.write(WriteRequest::LeaseRevoke { id: 7 }).await.unwrap_err(), NodeError::Lease(LeaseError::NotFound));

        // Revoking a lease without keys changes no revision.
        let (empty, _) = granted(node.write(WriteRequest::LeaseGrant { id: 0, ttl: 1 }).await);
        assert!(empty > 0);
        let before = node.revision();
        assert!(matches!(node.write(WriteRequest::LeaseRevoke { id: empty }).await, Ok(WriteResponse::LeaseRevoke { revision }) if revision == before));
        node.shutdown().await;
    });
}

#[test]
fn a_batch_that_is_not_durable_leaves_no_lease() {
    let runtime = runtime();
    let disk = SimulatedFileSystem::new();
    let node = open(&disk);
    runtime.block_on(async {
        granted(node.write(WriteRequest::LeaseGrant { id: 1, ttl: 60 }).await);
        node.write(put("kept", 1)).await.unwrap();
        disk.fail_syncs(true);
        let (grant, revoke) = tokio::join!(node.write(WriteRequest::LeaseGrant { id: 2, ttl: 60 }), node.write(WriteRequest::LeaseRevoke { id: 1 }));
        assert!(matches!(grant, Err(NodeError::Storage(_))), "{grant:?}");
        assert!(matches!(revoke, Err(NodeError::Storage(_))), "{revoke:?}");
    });
    assert_eq!(node.leases(), vec![1]);
    assert_eq!(node.lease_time_to_live(1, true).expect("lease 1").keys, vec![b"kept".to_vec()]);
    assert_eq!(keys(&node), vec![("kept".to_string(), 1)]);
    drop(node);
    disk.clear_faults();
    disk.crash(CrashMode::LoseUnsynced);
    let node = open(&disk);
    assert_eq!(node.leases(), vec![1]);
    assert_eq!(keys(&node), vec![("kept".to_string(), 1)]);
}

#[test]
fn replay_rebuilds_leases_with_their_keys_and_full_ttl() {
    let runtime = runtime();
    let disk = SimulatedFileSystem::new();
    let node = open(&disk);
    let revision = runtime.block_on(async {
        granted(node.write(WriteRequest::LeaseGrant { id: 10, ttl: 30 }).await);
        granted(node.write(WriteRequest::LeaseGrant { id: 11, ttl: 40 }).await);
        let (server_chosen, ttl) = granted(node.write(WriteRequest::LeaseGrant { id: 0, ttl: 1 }).await);
        assert_eq!(ttl, LEASE_TTL_MIN_SECONDS);
        node.write(put("a", 10)).await.unwrap();
        node.write(put("b", 11)).await.unwrap();
        node.write(put("c", 11)).await.unwrap();
        node.write(put("a", 11)).await.unwrap();
        node.write(WriteRequest::LeaseRevoke { id: server_chosen }).await.unwrap();
        node.write(WriteRequest::LeaseRevoke { id: 10 }).await.unwrap();
        node.write(WriteRequest::DeleteRange(DeleteRangeRequest { key: b"c".to_vec(), ..Default::default() })).await.unwrap();
        node.revision()
    });
    drop(node);
    disk.crash(CrashMode::LoseUnsynced);
    let node = open(&disk);
    assert_eq!(node.revision(), revision);
    assert_eq!(node.leases(), vec![11]);
    let shown = node.lease_time_to_live(11, true).expect("lease 11");
    assert_eq!(shown.keys, vec![b"a".to_vec(), b"b".to_vec()]);
    assert_eq!(shown.granted_ttl_seconds, 40);
    assert!((39..=40).contains(&shown.remaining_seconds), "the full TTL is back: {shown:?}");
    assert_eq!(keys(&node), vec![("a".to_string(), 11), ("b".to_string(), 11)]);
    // The replayed state evaluates like the live one: revoking deletes the replayed attachments.
    runtime.block_on(async {
        assert!(matches!(node.write(WriteRequest::LeaseRevoke { id: 11 }).await, Ok(WriteResponse::LeaseRevoke { revision: r }) if r == revision + 1));
    });
    assert!(keys(&node).is_empty());
}

#[test]
fn expired_leases_are_revoked_by_the_node() {
    let runtime = runtime();
    let disk = SimulatedFileSystem::new();
    let node = open(&disk);
    let started = Instant::now();
    runtime.block_on(async {
        let (short, ttl) = granted(node.write(WriteRequest::LeaseGrant { id: 0, ttl: 1 }).await);
        assert_eq!(ttl, LEASE_TTL_MIN_SECONDS);
        granted(node.write(WriteRequest::LeaseGrant { id: 5, ttl: 600 }).await);
        node.write(put("short/1", short)).await.unwrap();
        node.write(put("short/2", short)).await.unwrap();
        node.write(put("long", 5)).await.unwrap();
        // Keep-alives of the long lease are answered with its TTL; of an unknown one, not found.
        assert_eq!(node.lease_renew(5).await, Ok(600));
        assert_eq!(node.lease_renew(99).await, Err(LeaseError::NotFound));
        let before = node.revision();
        let deadline = Instant::now() + Duration::from_secs(10);
        while node.lease_time_to_live(short, false).is_some() {
            assert!(Instant::now() < deadline, "the expired lease was not revoked within 10 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(started.elapsed() >= Duration::from_secs(LEASE_TTL_MIN_SECONDS as u64), "revoked before its TTL");
        assert_eq!(keys(&node), vec![("long".to_string(), 5)]);
        assert_eq!(node.revision(), before + 1, "both keys were deleted in one revision");
        // A keep-alive of the expired lease answers that it is gone.
        assert_eq!(node.lease_renew(short).await, Err(LeaseError::NotFound));
        node.shutdown().await;
    });
}

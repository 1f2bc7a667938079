//! Auth through the node, on the simulated disk: changes go through the writer and survive a
//! power cut (replay rebuilds an equal state, auth revision included); a batch that cannot be
//! made durable changes nothing; client writes are checked against the state as the requests
//! before them in the queue left it; simple tokens do not outlive the node.

use std::path::Path;
use std::sync::Arc;

use strata_auth::{AuthError, AuthInfo, AuthRequest, Permission, PERMISSION_READWRITE};
use strata_io::{CrashMode, SimulatedFileSystem};
use strata_mvcc::PutRequest;
use strata_node::{AuthConfig, Caller, Node, NodeConfig, NodeError, WriteRequest};

/// The cheapest bcrypt cost etcd takes, to keep the test fast.
const BCRYPT_COST: u32 = 4;

fn open(disk: &SimulatedFileSystem) -> Node {
    let mut config = NodeConfig::new("auth", Path::new("/data"));
    config.auth = AuthConfig { bcrypt_cost: BCRYPT_COST, ..AuthConfig::default() };
    Node::open_with(Arc::new(disk.clone()), config, None).expect("open the node")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

fn put(key: &str) -> WriteRequest {
    WriteRequest::Put(PutRequest { key: key.as_bytes().to_vec(), value: b"v".to_vec(), ..Default::default() })
}

/// Sets up root and alice (readwrite on `k`), enabled, as an admin client would.
async fn set_up(node: &Node) {
    for (name, password) in [("root", "rootpw"), ("alice", "alicepw")] {
        let password_hash = node.hash_password(password.into()).await.expect("hash");
        node.write_as(WriteRequest::Auth(AuthRequest::UserAdd { name: name.into(), password_hash, no_password: false }), Caller::Client(None))
            .await
            .expect("add a user");
    }
    let permission = Permission { kind: PERMISSION_READWRITE, key: b"k".to_vec(), range_end: Vec::new() };
    for change in [
        AuthRequest::UserGrantRole { user: "root".into(), role: "root".into() },
        AuthRequest::RoleAdd { name: "writer".into() },
        AuthRequest::RoleGrantPermission { name: "writer".into(), permission: Some(permission) },
        AuthRequest::UserGrantRole { user: "alice".into(), role: "writer".into() },
        AuthRequest::Enable,
    ] {
        node.write_as(WriteRequest::Auth(change), Caller::Client(None)).await.expect("an auth change");
    }
}

fn as_user(node: &Node, token: &str) -> Caller {
    Caller::Client(Some(node.auth_info_from_token(token).expect("a live token")))
}

#[test]
fn auth_survives_a_power_cut_and_a_failed_batch_changes_nothing() {
    let runtime = runtime();
    let disk = SimulatedFileSystem::new();
    let node = open(&disk);
    let token = runtime.block_on(async {
        set_up(&node).await;
        node.authenticate("alice", "alicepw").await.expect("authenticate")
    });
    let state = node.auth_state();
    assert!(state.is_enabled());
    assert_eq!(state.revision(), 7, "six changes after the initial 1 bump it; enabling does not");
    drop(node);
    disk.crash(CrashMode::LoseUnsynced);

    let node = open(&disk);
    assert_eq!(*node.auth_state(), *state, "replay rebuilds the same state, auth revision included");
    assert_eq!(node.auth_info_from_token(&token), Err(AuthError::InvalidAuthToken), "simple tokens live in memory only");
    let root = runtime.block_on(node.authenticate("root", "rootpw")).expect("root authenticates after the restart");
    assert_eq!(runtime.block_on(node.authenticate("alice", "wrong")), Err(NodeError::Auth(AuthError::AuthFailed)));

    runtime.block_on(async {
        disk.fail_syncs(true);
        let change = WriteRequest::Auth(AuthRequest::UserDelete { name: "alice".into() });
        let deleted = node.write_as(change, as_user(&node, &root)).await;
        assert!(matches!(deleted, Err(NodeError::Storage(_))), "{deleted:?}");
    });
    assert_eq!(*node.auth_state(), *state, "a batch that is not durable changes no auth state");
    drop(node);
    disk.clear_faults();
    disk.crash(CrashMode::LoseUnsynced);
    let node = open(&disk);
    assert_eq!(*node.auth_state(), *state);
}

#[test]
fn writes_are_checked_against_the_state_the_queue_before_them_left() {
    let runtime = runtime();
    let disk = SimulatedFileSystem::new();
    let node = open(&disk);
    runtime.block_on(async {
        set_up(&node).await;
        let root = node.authenticate("root", "rootpw").await.expect("root");
        let alice = node.authenticate("alice", "alicepw").await.expect("alice");
        node.write_as(put("k"), as_user(&node, &alice)).await.expect("alice may write k");
        assert_eq!(node.write_as(put("other"), as_user(&node, &alice)).await.unwrap_err(), NodeError::Auth(AuthError::PermissionDenied));
        assert_eq!(node.write_as(put("k"), Caller::Client(None)).await.unwrap_err(), NodeError::Auth(AuthError::UserEmpty));
        node.write(put("other")).await.expect("the node's own writes are not checked");

        // Queued in this order: the revoke first, then alice's put, which must see it.
        let revoke = AuthRequest::UserRevokeRole { name: "alice".into(), role: "writer".into() };
        let alice_caller = as_user(&node, &alice);
        let (revoked, written) = tokio::join!(node.write_as(WriteRequest::Auth(revoke), as_user(&node, &root)), node.write_as(put("k"), alice_caller));
        revoked.expect("revoke");
        // The revoke bumped the auth revision: alice's credentials are old, or she lacks the role.
        assert!(matches!(written, Err(NodeError::Auth(AuthError::OldRevision | AuthError::PermissionDenied))), "{written:?}");
        let fresh = node.authenticate("alice", "alicepw").await.expect("alice again");
        assert_eq!(node.write_as(put("k"), as_user(&node, &fresh)).await.unwrap_err(), NodeError::Auth(AuthError::PermissionDenied));
        // Management needs root.
        let add = WriteRequest::Auth(AuthRequest::RoleAdd { name: "sneaky".into() });
        assert_eq!(node.write_as(add, as_user(&node, &fresh)).await.unwrap_err(), NodeError::Auth(AuthError::PermissionDenied));
        let stale = Caller::Client(Some(AuthInfo { user: "root".into(), revision: 1 }));
        assert_eq!(node.write_as(put("k"), stale).await.unwrap_err(), NodeError::Auth(AuthError::OldRevision));
    });
}

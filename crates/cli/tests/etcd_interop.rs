//! Moving between etcd and Strata, both ways, with the real binaries (issue #8):
//! - the round trip: 10,000+ keys with history (overwrites, deletes, a range delete, txns, a
//!   compaction and more after it), leases with keys, users and roles written to a real etcd →
//!   `etcdctl snapshot save` → `strata migrate from-etcd` → Strata serves the same Range results
//!   (now, at an older revision above the compaction, and the compacted one refused), leases,
//!   users, roles and HashKV → `etcdctl snapshot save` from Strata (`snapshot status`: same
//!   revision and key count as etcd's own snapshot) → equal to `strata migrate to-etcd` offline →
//!   `etcdctl snapshot restore` → a real etcd serves the same again (and a user's password works);
//! - the same workload on etcd and on Strata: `etcdctl snapshot status` of both snapshots agrees
//!   (revision, key count); `strata snapshot restore` takes etcd's snapshot file; an etcd data
//!   directory imports, and is refused while its WAL holds a put the database misses;
//! - hostile files (truncated, bit-flipped, wrong magic, bbolt but not etcd, garbage, and random
//!   damage) are refused by `strata migrate from-etcd` with a reason and a failing exit code,
//!   writing nothing; the decoder itself is fuzzed in-process with damage behind a valid digest.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use prost::Message;
use strata_etcd_api::pb::{authpb, etcdserverpb as pb, mvccpb};
use support::{connect_lease, etcd_binary, etcdctl_binary, free_port, start_etcd, start_server_when, start_strata, strata_binary, TempDir, names};
use tonic::transport::Channel;

/// Keys written in the round trip (the issue asks for at least 10,000).
const KEYS: usize = 10_000;
/// Concurrent writers (etcd batches their fsyncs).
const WRITERS: usize = 32;
/// Leases, and keys attached to each.
const LEASES: usize = 4;
const KEYS_PER_LEASE: usize = 25;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

async fn channel(endpoint: &str) -> Channel {
    Channel::from_shared(endpoint.to_string()).expect("endpoint").connect().await.expect("connect")
}

fn kv_client(channel: &Channel) -> pb::kv_client::KvClient<Channel> {
    pb::kv_client::KvClient::new(channel.clone()).max_decoding_message_size(usize::MAX)
}

async fn put(kv: &mut pb::kv_client::KvClient<Channel>, key: String, value: String, lease: i64) -> i64 {
    let request = pb::PutRequest { key: key.into_bytes(), value: value.into_bytes(), lease, ..pb::PutRequest::default() };
    kv.put(request).await.expect("put").into_inner().header.expect("header").revision
}

async fn delete(kv: &mut pb::kv_client::KvClient<Channel>, key: String, range_end: Vec<u8>) -> i64 {
    let request = pb::DeleteRangeRequest { key: key.into_bytes(), range_end, prev_kv: false };
    kv.delete_range(request).await.expect("delete").into_inner().header.expect("header").revision
}

/// Runs `operation(i)` for every `i` in `indexes` over [`WRITERS`] concurrent clients.
async fn concurrently<F, Fut>(endpoint: &str, indexes: Vec<usize>, operation: F)
where
    F: Fn(pb::kv_client::KvClient<Channel>, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let channel = channel(endpoint).await;
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let mine: Vec<usize> = indexes.iter().copied().skip(writer).step_by(WRITERS).collect();
        let kv = kv_client(&channel);
        let operation = operation.clone();
        tasks.push(tokio::spawn(async move {
            for index in mine {
                operation(kv.clone(), index).await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
}

/// The revisions a workload's checks read at.
#[derive(Clone, Copy, Debug)]
struct Revisions {
    compacted: i64,
    older: i64,
}

/// The round trip's workload: keys with history, a range delete, txns, leases with keys, users
/// and roles, a compaction and history after it.
async fn write_history(endpoint: &str, keys: usize) -> Revisions {
    let endpoint_owned = endpoint.to_string();
    concurrently(&endpoint_owned, (0..keys).collect(), |mut kv, index| async move {
        put(&mut kv, format!("key/{index:05}"), format!("first-{index}"), 0).await;
    })
    .await;
    let channel = channel(endpoint).await;
    let mut kv = kv_client(&channel);
    let mut leases = connect_lease(endpoint).await;
    for lease in 0..LEASES {
        let ttl = 600 + 300 * lease as i64;
        let granted = leases.lease_grant(pb::LeaseGrantRequest { ttl, id: 0 }).await.expect("grant").into_inner();
        for key in 0..KEYS_PER_LEASE {
            put(&mut kv, format!("lease/{lease}/{key:02}"), format!("leased-{key}"), granted.id).await;
        }
    }
    concurrently(endpoint, (0..keys).filter(|index| index % 3 == 0).collect(), |mut kv, index| async move {
        put(&mut kv, format!("key/{index:05}"), format!("second-{index}"), 0).await;
    })
    .await;
    concurrently(endpoint, (0..keys).filter(|index| index % 10 == 1).collect(), |mut kv, index| async move {
        delete(&mut kv, format!("key/{index:05}"), Vec::new()).await;
    })
    .await;
    delete(&mut kv, "key/05000".to_string(), b"key/05050".to_vec()).await;
    for txn in 0..10 {
        let op = |key: String| pb::RequestOp {
            request: Some(pb::request_op::Request::RequestPut(pb::PutRequest { key: key.into_bytes(), value: b"in-a-txn".to_vec(), ..pb::PutRequest::default() })),
        };
        let removal = pb::RequestOp {
            request: Some(pb::request_op::Request::RequestDeleteRange(pb::DeleteRangeRequest {
                key: format!("key/{:05}", 7000 + txn * 3).into_bytes(),
                ..pb::DeleteRangeRequest::default()
            })),
        };
        let request = pb::TxnRequest {
            compare: Vec::new(),
            success: vec![op(format!("txn/{txn}/a")), op(format!("txn/{txn}/b")), removal, op(format!("txn/{txn}/c"))],
            failure: Vec::new(),
        };
        kv.txn(request).await.expect("txn");
    }
    let compacted = put(&mut kv, "marker/compaction".to_string(), "here".to_string(), 0).await;
    kv.compact(pb::CompactionRequest { revision: compacted, physical: true }).await.expect("compact");
    concurrently(endpoint, (0..keys).filter(|index| index % 7 == 0).collect(), |mut kv, index| async move {
        put(&mut kv, format!("key/{index:05}"), format!("third-{index}"), 0).await;
    })
    .await;
    let older = put(&mut kv, "marker/older".to_string(), "here".to_string(), 0).await;
    concurrently(endpoint, (0..keys).filter(|index| index % 11 == 2).collect(), |mut kv, index| async move {
        delete(&mut kv, format!("key/{index:05}"), Vec::new()).await;
    })
    .await;
    let mut auth = pb::auth_client::AuthClient::new(channel.clone());
    for (name, password) in [("root", "root-password"), ("alice", "alice-password"), ("bob", "bob-password")] {
        let request = pb::AuthUserAddRequest { name: name.to_string(), password: password.to_string(), ..pb::AuthUserAddRequest::default() };
        auth.user_add(request).await.expect("user add");
    }
    for role in ["root", "reader", "writer"] {
        auth.role_add(pb::AuthRoleAddRequest { name: role.to_string() }).await.expect("role add");
    }
    let grant = |role: &str, kind: i32, key: &[u8], range_end: &[u8]| pb::AuthRoleGrantPermissionRequest {
        name: role.to_string(),
        perm: Some(authpb::Permission { perm_type: kind, key: key.to_vec(), range_end: range_end.to_vec() }),
    };
    auth.role_grant_permission(grant("reader", 0, b"key/", b"key0")).await.expect("grant");
    auth.role_grant_permission(grant("writer", 2, b"key/0", b"key/5")).await.expect("grant");
    auth.role_grant_permission(grant("writer", 1, b"lease/", b"\0")).await.expect("grant");
    for (user, role) in [("root", "root"), ("alice", "reader"), ("bob", "reader"), ("bob", "writer")] {
        auth.user_grant_role(pb::AuthUserGrantRoleRequest { user: user.to_string(), role: role.to_string() }).await.expect("grant role");
    }
    Revisions { compacted, older }
}

/// What a server serves of the data, without what identifies the server.
#[derive(Clone, Debug, PartialEq)]
struct Observed {
    revision: i64,
    now: Vec<mvccpb::KeyValue>,
    older: Vec<mvccpb::KeyValue>,
    at_compaction: Vec<mvccpb::KeyValue>,
    /// The error reading below the compaction.
    compacted_error: String,
    /// (id, granted TTL, keys sorted).
    leases: Vec<(i64, i64, Vec<Vec<u8>>)>,
    /// (user, roles).
    users: Vec<(String, Vec<String>)>,
    /// (role, permissions).
    roles: Vec<(String, Vec<authpb::Permission>)>,
    /// HashKV at the revision, and its compact revision.
    hash: (u32, i64),
}

async fn observe(endpoint: &str, revisions: Revisions) -> Observed {
    let channel = channel(endpoint).await;
    let mut kv = kv_client(&channel);
    let everything = |revision| pb::RangeRequest { key: vec![0], range_end: vec![0], revision, ..pb::RangeRequest::default() };
    let now = kv.range(everything(0)).await.expect("range").into_inner();
    let revision = now.header.expect("header").revision;
    let older = kv.range(everything(revisions.older)).await.expect("range at older").into_inner().kvs;
    let at_compaction = kv.range(everything(revisions.compacted)).await.expect("range at the compaction").into_inner().kvs;
    let compacted_error = kv.range(everything(revisions.compacted - 1)).await.expect_err("below the compaction").message().to_string();
    let mut lease = connect_lease(endpoint).await;
    let mut ids: Vec<i64> = lease.lease_leases(pb::LeaseLeasesRequest {}).await.expect("leases").into_inner().leases.iter().map(|lease| lease.id).collect();
    ids.sort_unstable();
    let mut leases = Vec::new();
    for id in ids {
        let ttl = lease.lease_time_to_live(pb::LeaseTimeToLiveRequest { id, keys: true }).await.expect("ttl").into_inner();
        let mut keys = ttl.keys;
        keys.sort();
        leases.push((id, ttl.granted_ttl, keys));
    }
    let mut auth = pb::auth_client::AuthClient::new(channel.clone());
    let mut users = Vec::new();
    for name in auth.user_list(pb::AuthUserListRequest {}).await.expect("users").into_inner().users {
        let mut roles = auth.user_get(pb::AuthUserGetRequest { name: name.clone() }).await.expect("user").into_inner().roles;
        roles.sort();
        users.push((name, roles));
    }
    let mut roles = Vec::new();
    for role in auth.role_list(pb::AuthRoleListRequest {}).await.expect("roles").into_inner().roles {
        let permissions = auth.role_get(pb::AuthRoleGetRequest { role: role.clone() }).await.expect("role").into_inner().perm;
        roles.push((role, permissions));
    }
    let mut maintenance = pb::maintenance_client::MaintenanceClient::new(channel.clone());
    let hash = maintenance.hash_kv(pb::HashKvRequest { revision }).await.expect("hash").into_inner();
    Observed { revision, now: now.kvs, older, at_compaction, compacted_error, leases, users, roles, hash: (hash.hash, hash.compact_revision) }
}

/// Compares two observations part by part, naming the first difference (the key lists are long).
fn assert_same(what: &str, expected: &Observed, actual: &Observed) {
    for (part, left, right) in [("now", &expected.now, &actual.now), ("older", &expected.older, &actual.older), ("at the compaction", &expected.at_compaction, &actual.at_compaction)] {
        assert_eq!(left.len(), right.len(), "{what}: the number of keys {part}");
        if let Some(at) = (0..left.len()).find(|&at| left[at] != right[at]) {
            panic!("{what}: key {at} {part} differs:\nexpected {:?}\nactual   {:?}", left[at], right[at]);
        }
    }
    assert_eq!(expected.revision, actual.revision, "{what}: revision");
    assert_eq!(expected.compacted_error, actual.compacted_error, "{what}: reading below the compaction");
    assert_eq!(expected.leases, actual.leases, "{what}: leases");
    assert_eq!(expected.users, actual.users, "{what}: users");
    assert_eq!(expected.roles, actual.roles, "{what}: roles");
    assert_eq!(expected.hash, actual.hash, "{what}: HashKV");
}

fn run(program: &Path, arguments: &[&str]) -> Output {
    Command::new(program).env("ETCDCTL_API", "3").args(arguments).output().unwrap_or_else(|error| panic!("cannot run {}: {error}", program.display()))
}

fn succeeded(what: &str, output: Output) -> String {
    assert!(output.status.success(), "{what} failed: {}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn host(endpoint: &str) -> &str {
    endpoint.trim_start_matches("http://")
}

fn snapshot_save(etcdctl: &Path, endpoint: &str, file: &Path) {
    succeeded("etcdctl snapshot save", run(etcdctl, &["--endpoints", host(endpoint), "snapshot", "save", path(file)]));
}

/// `etcdctl snapshot status -w json`: (revision, total keys).
fn snapshot_status(etcdctl: &Path, file: &Path) -> (i64, u64) {
    let text = succeeded("etcdctl snapshot status", run(etcdctl, &["snapshot", "status", "-w", "json", path(file)]));
    let status: serde_json::Value = serde_json::from_str(text.trim()).unwrap_or_else(|error| panic!("status is not JSON ({error}): {text}"));
    (status["revision"].as_i64().expect("revision"), status["totalKey"].as_u64().expect("totalKey"))
}

fn path(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// Starts etcd on a data directory `etcdctl snapshot restore` made for member `name` at `peer`.
fn start_restored_etcd(etcd: &Path, data_dir: &Path, name: &str, peer: &str) -> support::ServerProcess {
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let mut command = Command::new(etcd);
    command
        .args(["--name", name, "--data-dir", path(data_dir), "--listen-client-urls", &endpoint, "--advertise-client-urls", &endpoint])
        .args(["--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", &format!("{name}={peer}")]);
    let probe = endpoint.clone();
    start_server_when(command, endpoint, data_dir, move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async {
            let Ok(channel) = Channel::from_shared(probe.clone()).expect("endpoint").connect().await else { return false };
            pb::kv_client::KvClient::new(channel).range(pb::RangeRequest { key: b"k".to_vec(), ..pb::RangeRequest::default() }).await.is_ok()
        })
    })
}

#[test]
fn round_trip_etcd_to_strata_to_etcd() {
    let (Some(etcd), Some(etcdctl)) = (etcd_binary(), etcdctl_binary()) else { return };
    let started = Instant::now();
    let runtime = runtime();
    let directory = TempDir::new("etcd-interop-round-trip");
    let source = start_etcd(&etcd, &directory.join("etcd"));
    let revisions = runtime.block_on(write_history(&source.endpoint, KEYS));
    let expected = runtime.block_on(observe(&source.endpoint, revisions));
    assert!(expected.now.len() > KEYS / 2 && expected.leases.len() == LEASES, "the workload wrote what it should: {} keys", expected.now.len());
    let from_etcd = directory.join("from-etcd.db");
    snapshot_save(&etcdctl, &source.endpoint, &from_etcd);
    let etcd_status = snapshot_status(&etcdctl, &from_etcd);
    assert_eq!(etcd_status.0, expected.revision);
    drop(source);
    eprintln!("etcd written and saved in {:?}", started.elapsed());

    // etcd → Strata.
    let strata_dir = directory.join("strata");
    let imported = succeeded("migrate from-etcd", run(&strata_binary(), &["migrate", "from-etcd", path(&from_etcd), "--data-dir", path(&strata_dir)]));
    assert!(imported.contains(&format!("at revision {}", expected.revision)) && imported.contains("leases: 4, users: 3, roles: 3"), "{imported}");
    let mut strata = start_strata(&strata_dir, &[]);
    let served = runtime.block_on(observe(&strata.endpoint, revisions));
    assert_same("Strata after the import", &expected, &served);

    // Strata → etcd: the online stream, its status, and the offline export of the same state.
    let from_strata = directory.join("from-strata.db");
    snapshot_save(&etcdctl, &strata.endpoint, &from_strata);
    assert_eq!(snapshot_status(&etcdctl, &from_strata), etcd_status, "etcdctl snapshot status: revision and key count as etcd's own snapshot");
    assert!(strata.terminate().success(), "strata stopped cleanly: {}", strata.log());
    let offline = directory.join("offline.db");
    let exported = succeeded("migrate to-etcd", run(&strata_binary(), &["migrate", "to-etcd", "--data-dir", path(&strata_dir), "--out", path(&offline)]));
    assert!(exported.contains("Snapshot saved at"), "{exported}");
    assert!(std::fs::read(&offline).expect("offline") == std::fs::read(&from_strata).expect("online"), "the offline export equals the online stream byte for byte");

    let restored_dir = directory.join("restored");
    let peer = format!("http://127.0.0.1:{}", free_port());
    succeeded(
        "etcdctl snapshot restore",
        run(
            &etcdctl,
            &[
                "snapshot",
                "restore",
                path(&from_strata),
                "--data-dir",
                path(&restored_dir),
                "--name",
                "restored",
                "--initial-cluster",
                &format!("restored={peer}"),
                "--initial-advertise-peer-urls",
                &peer,
            ],
        ),
    );
    let restored = start_restored_etcd(&etcd, &restored_dir, "restored", &peer);
    let again = runtime.block_on(observe(&restored.endpoint, revisions));
    assert_same("etcd restored from Strata's snapshot", &expected, &again);
    // The bcrypt hashes came through both ways: a password still authenticates.
    runtime.block_on(async {
        let mut auth = pb::auth_client::AuthClient::new(channel(&restored.endpoint).await);
        auth.auth_enable(pb::AuthEnableRequest {}).await.expect("auth enable");
        let token = auth.authenticate(pb::AuthenticateRequest { name: "alice".into(), password: "alice-password".into() }).await.expect("authenticate");
        assert!(!token.into_inner().token.is_empty());
        assert!(auth.authenticate(pb::AuthenticateRequest { name: "alice".into(), password: "wrong".into() }).await.is_err());
    });
    eprintln!("round trip in {:?}", started.elapsed());
}

/// A small workload, run the same on etcd and Strata.
async fn small_workload(endpoint: &str) -> Revisions {
    let channel = channel(endpoint).await;
    let mut kv = kv_client(&channel);
    let mut leases = connect_lease(endpoint).await;
    for index in 0..200 {
        put(&mut kv, format!("small/{:02}", index % 50), format!("value-{index}"), 0).await;
    }
    let lease = leases.lease_grant(pb::LeaseGrantRequest { ttl: 900, id: 0x5eed }).await.expect("grant").into_inner().id;
    for index in 0..5 {
        put(&mut kv, format!("small/leased/{index}"), "leased".to_string(), lease).await;
    }
    for index in 0..20 {
        delete(&mut kv, format!("small/{:02}", index * 2), Vec::new()).await;
    }
    let compacted = put(&mut kv, "small/marker".to_string(), "compaction".to_string(), 0).await;
    kv.compact(pb::CompactionRequest { revision: compacted, physical: true }).await.expect("compact");
    let older = put(&mut kv, "small/01".to_string(), "after".to_string(), 0).await;
    put(&mut kv, "small/03".to_string(), "after".to_string(), 0).await;
    let mut auth = pb::auth_client::AuthClient::new(channel.clone());
    auth.user_add(pb::AuthUserAddRequest { name: "carol".into(), password: "carol-password".into(), ..Default::default() }).await.expect("user");
    auth.role_add(pb::AuthRoleAddRequest { name: "small".into() }).await.expect("role");
    auth.user_grant_role(pb::AuthUserGrantRoleRequest { user: "carol".into(), role: "small".into() }).await.expect("grant");
    Revisions { compacted, older }
}

/// Appends to an etcd data directory's WAL a put at `index` (as a new last WAL file), a change
/// its database does not have.
fn append_unapplied_put(data_dir: &Path, index: u64) {
    fn field(number: u32, payload: &[u8], out: &mut Vec<u8>) {
        prost::encoding::encode_key(number, prost::encoding::WireType::LengthDelimited, out);
        prost::encoding::encode_varint(payload.len() as u64, out);
        out.extend_from_slice(payload);
    }
    fn varint_field(number: u32, value: u64, out: &mut Vec<u8>) {
        prost::encoding::encode_key(number, prost::encoding::WireType::Varint, out);
        prost::encoding::encode_varint(value, out);
    }
    let put = pb::PutRequest { key: b"lost".to_vec(), value: b"in the WAL only".to_vec(), ..pb::PutRequest::default() }.encode_to_vec();
    let mut request = Vec::new();
    field(4, &put, &mut request);
    let mut entry = Vec::new();
    varint_field(2, 99, &mut entry);
    varint_field(3, index, &mut entry);
    field(4, &request, &mut entry);
    let mut record = Vec::new();
    varint_field(1, 2, &mut record);
    field(3, &entry, &mut record);
    let padding = (8 - record.len() % 8) % 8;
    let mut word = record.len() as u64;
    if padding > 0 {
        word |= (0x80 | padding as u64) << 56;
    }
    let mut bytes = word.to_le_bytes().to_vec();
    bytes.extend_from_slice(&record);
    bytes.extend(std::iter::repeat_n(0u8, padding + 64));
    std::fs::write(data_dir.join("member/wal/ffffffffffffffff-ffffffffffffffff.wal"), bytes).expect("write the WAL file");
}

#[test]
fn snapshot_status_agrees_with_etcd_and_etcd_files_and_data_directories_import() {
    let (Some(etcd), Some(etcdctl)) = (etcd_binary(), etcdctl_binary()) else { return };
    let runtime = runtime();
    let directory = TempDir::new("etcd-interop-status");
    let mut etcd_server = start_etcd(&etcd, &directory.join("etcd"));
    let strata = start_strata(&directory.join("strata"), &[]);
    let revisions = runtime.block_on(small_workload(&etcd_server.endpoint));
    assert_eq!(runtime.block_on(small_workload(&strata.endpoint)).older, revisions.older, "the same revisions on both");
    let expected = runtime.block_on(observe(&etcd_server.endpoint, revisions));
    let (etcd_file, strata_file) = (directory.join("etcd.db"), directory.join("strata.db"));
    snapshot_save(&etcdctl, &etcd_server.endpoint, &etcd_file);
    snapshot_save(&etcdctl, &strata.endpoint, &strata_file);
    let strata_status = snapshot_status(&etcdctl, &strata_file);
    assert_eq!(strata_status.0, expected.revision, "the revision of Strata's snapshot");
    assert_eq!(strata_status, snapshot_status(&etcdctl, &etcd_file), "revision and total key count as etcd's snapshot of the same workload");
    drop(strata);

    // `strata snapshot restore` takes etcd's snapshot file.
    let restored_dir = directory.join("restored");
    let output = succeeded("snapshot restore", run(&strata_binary(), &["snapshot", "restore", path(&etcd_file), "--data-dir", path(&restored_dir)]));
    assert!(output.contains("keys: ") && output.contains("leases: 1, users: 1, roles: 1"), "{output}");
    let restored = start_strata(&restored_dir, &[]);
    let served = runtime.block_on(observe(&restored.endpoint, revisions));
    assert_same("Strata restored from etcd's snapshot", &expected, &served);
    drop(restored);

    // An etcd data directory, stopped cleanly, imports; with a put only in its WAL, it is refused.
    // SIGTERM: etcd stops cleanly (it exits by re-raising the signal, so no exit code to check).
    etcd_server.terminate();
    let from_directory = directory.join("from-directory");
    let output = succeeded("migrate a data directory", run(&strata_binary(), &["migrate", "from-etcd", path(&etcd_server.data_dir), "--data-dir", path(&from_directory)]));
    assert!(output.contains(&format!("at revision {}", expected.revision)), "{output}");
    let imported = start_strata(&from_directory, &[]);
    assert_same("Strata imported from etcd's data directory", &expected, &runtime.block_on(observe(&imported.endpoint, revisions)));
    drop(imported);
    append_unapplied_put(&etcd_server.data_dir, 1_000_000);
    let refused_dir = directory.join("refused");
    let output = run(&strata_binary(), &["migrate", "from-etcd", path(&etcd_server.data_dir), "--data-dir", path(&refused_dir)]);
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a WAL with an unapplied put is refused");
    assert!(message.contains("WAL") && message.contains("a put of key \"lost\"") && message.contains("Nothing was written"), "{message}");
    assert!(!refused_dir.exists());
    let output = run(&strata_binary(), &["migrate", "from-etcd", path(&etcd_server.data_dir), "--data-dir", path(&refused_dir), "--skip-wal-check"]);
    succeeded("migrate with --skip-wal-check", output);
}

/// An etcd snapshot of a small state, read from Strata's Maintenance.Snapshot stream over gRPC,
/// checking the stream's shape as etcd sends it.
fn etcd_snapshot_from_strata(runtime: &tokio::runtime::Runtime, directory: &TempDir) -> Vec<u8> {
    let strata = start_strata(&directory.join("source"), &[]);
    runtime.block_on(async {
        let channel = channel(&strata.endpoint).await;
        let mut kv = kv_client(&channel);
        for index in 0..2000 {
            put(&mut kv, format!("hostile/{:03}", index % 700), format!("value-{index}"), 0).await;
        }
        let mut maintenance = pb::maintenance_client::MaintenanceClient::new(channel);
        let mut stream = maintenance.snapshot(pb::SnapshotRequest {}).await.expect("snapshot").into_inner();
        let mut messages = Vec::new();
        while let Some(message) = stream.message().await.expect("message") {
            messages.push(message);
        }
        let (digest, chunks) = messages.split_last().expect("messages");
        let database: Vec<u8> = chunks.iter().flat_map(|chunk| chunk.blob.iter().copied()).collect();
        assert!(chunks.len() > 1 && chunks.iter().all(|chunk| chunk.blob.len() <= 32 * 1024), "32 KiB chunks");
        let mut remaining = database.len();
        for chunk in chunks {
            remaining -= chunk.blob.len();
            assert_eq!(chunk.remaining_bytes, remaining as u64, "remaining_bytes counts the database still to come");
        }
        assert_eq!((digest.remaining_bytes, digest.blob.clone()), (0, strata_etcd_api::etcd_db::sha256(&database).to_vec()), "the SHA-256 comes last");
        let mut file = database;
        file.extend_from_slice(&digest.blob);
        file
    })
}

#[test]
fn hostile_snapshot_files_are_refused_writing_nothing() {
    let runtime = runtime();
    let directory = TempDir::new("etcd-interop-hostile");
    let good = etcd_snapshot_from_strata(&runtime, &directory);
    let length = good.len();
    let database_length = length - 32;
    let mut cases: Vec<(String, Vec<u8>, &str)> = Vec::new();
    for cut in [0, 100, 4096, 8192, database_length / 2, database_length - 1, length - 1, length - 33] {
        cases.push((format!("truncated to {cut} bytes"), good[..cut].to_vec(), ""));
    }
    for offset in [20, 4096 + 20, 3 * 4096 + 100, database_length / 2, database_length - 1, length - 5] {
        let mut damaged = good.clone();
        damaged[offset] ^= 0x10;
        cases.push((format!("a bit flipped at {offset}"), damaged, ""));
    }
    // Behind a matching digest, so that the bbolt reader meets the damage.
    let mut wrong_magic = good[..database_length].to_vec();
    for page in [0, 4096] {
        wrong_magic[page + 16] ^= 0xff;
    }
    let digest = strata_etcd_api::etcd_db::sha256(&wrong_magic);
    wrong_magic.extend_from_slice(&digest);
    cases.push(("wrong magic in both meta pages".to_string(), wrong_magic, "bbolt"));
    let mut not_etcd = std::collections::BTreeMap::new();
    not_etcd.insert(b"people".to_vec(), strata_bbolt::Bucket { sequence: 0, entries: vec![(b"ann".to_vec(), b"42".to_vec())] });
    let database = strata_bbolt::write(&not_etcd, &strata_bbolt::WriteOptions::default()).expect("write");
    cases.push(("a bbolt file that is not etcd's".to_string(), database, "not an etcd database"));
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut garbage = Vec::with_capacity(10_000);
    for _ in 0..10_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        garbage.push(seed as u8);
    }
    cases.push(("random bytes".to_string(), garbage, ""));
    for round in 0..12 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut damaged = good.clone();
        for flip in 0..1 + round % 4 {
            let offset = (seed.rotate_left(flip * 16) as usize) % length;
            damaged[offset] ^= 1 << (flip % 8);
        }
        cases.push((format!("random damage {round}"), damaged, "SHA-256"));
    }
    let inputs = directory.join("inputs");
    std::fs::create_dir_all(&inputs).expect("inputs");
    let before = names(&directory.path);
    for (number, (what, bytes, expected)) in cases.iter().enumerate() {
        let file = inputs.join(format!("case-{number}.db"));
        std::fs::write(&file, bytes).expect("write the case");
        let target = directory.join(&format!("target-{number}"));
        let output = run(&strata_binary(), &["migrate", "from-etcd", path(&file), "--data-dir", path(&target)]);
        let message = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{what}: refused ({})", String::from_utf8_lossy(&output.stdout));
        assert!(message.contains(path(&file)) && message.contains(expected), "{what}: the message names the file and the reason: {message}");
        assert!(message.len() < 2000, "{what}: a bounded message: {message}");
        assert!(!target.exists(), "{what}: nothing was written");
        assert_eq!(names(&directory.path), before, "{what}: no temporary directory left");
        // `strata snapshot restore` refuses it too (a non-bbolt file as a Strata snapshot).
        let output = run(&strata_binary(), &["snapshot", "restore", path(&file), "--data-dir", path(&target)]);
        assert!(!output.status.success() && !target.exists(), "{what}: snapshot restore refuses it");
    }
    // The good file imports.
    let target = directory.join("good");
    std::fs::write(inputs.join("good.db"), &good).expect("write");
    succeeded("the good file imports", run(&strata_binary(), &["migrate", "from-etcd", path(&inputs.join("good.db")), "--data-dir", path(&target)]));
}

#[test]
fn the_decoder_survives_damage_behind_a_valid_digest() {
    // The database of a real workload, damaged and given a matching SHA-256, so the damage meets
    // the bbolt reader and the bucket mapping rather than the digest check.
    let directory = TempDir::new("etcd-interop-fuzz");
    let runtime = runtime();
    let good = etcd_snapshot_from_strata(&runtime, &directory);
    let database = &good[..good.len() - 32];
    let started = Instant::now();
    let mut seed = 0xdead_beef_cafe_f00du64;
    let mut accepted = 0;
    for round in 0..3000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut damaged = database.to_vec();
        match round % 3 {
            0 => damaged[(seed as usize) % database.len()] ^= 1 << (seed >> 61),
            1 => damaged[(seed as usize) % database.len()] = (seed >> 32) as u8,
            _ => {
                let at = (seed as usize) % database.len();
                let end = (at + 1 + (seed >> 40) as usize % 64).min(damaged.len());
                damaged[at..end].fill(0xff);
            }
        }
        let digest = strata_etcd_api::etcd_db::sha256(&damaged);
        damaged.extend_from_slice(&digest);
        if strata_etcd_api::etcd_db::decode_etcd_db(&damaged).is_ok() {
            accepted += 1;
        }
    }
    eprintln!("{accepted} of 3000 damaged databases still mapped (damage in unused bytes) in {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn the_stream_does_not_stop_writes_and_holds_exactly_its_revision() {
    let runtime = runtime();
    let directory = TempDir::new("etcd-interop-stream");
    let strata = start_strata(&directory.join("strata"), &[]);
    runtime.block_on(async {
        concurrently(&strata.endpoint, (0..KEYS).collect(), |mut kv, index| async move {
            put(&mut kv, format!("before/{index:05}"), format!("value-{index}"), 0).await;
        })
        .await;
        let channel = channel(&strata.endpoint).await;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (going, writer_going) = tokio::sync::oneshot::channel();
        let writer = {
            let (mut kv, stop) = (kv_client(&channel), stop.clone());
            tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                let mut index = 0;
                let mut going = Some(going);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    put(&mut kv, format!("during/{:05}", index % 500), format!("value-{index}"), 0).await;
                    acknowledged.push(Instant::now());
                    index += 1;
                    if index == 5 {
                        let _ = going.take().map(|going| going.send(()));
                    }
                }
                acknowledged
            })
        };
        // Let the writer get going (five writes acknowledged), then stream.
        tokio::time::timeout(Duration::from_secs(10), writer_going).await.expect("the writer writes").expect("the writer runs");
        let mut maintenance = pb::maintenance_client::MaintenanceClient::new(channel.clone());
        let requested = Instant::now();
        let mut stream = maintenance.snapshot(pb::SnapshotRequest {}).await.expect("snapshot").into_inner();
        let mut file = Vec::new();
        while let Some(message) = stream.message().await.expect("message") {
            file.extend_from_slice(&message.blob);
        }
        let finished = Instant::now();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let acknowledged = writer.await.expect("writer");
        let during = acknowledged.iter().filter(|at| **at > requested && **at < finished).count();
        assert!(during > 0, "writes were acknowledged while the snapshot streamed ({:?})", finished - requested);
        let state = strata_etcd_api::etcd_db::decode_etcd_db(&file).expect("Strata's snapshot imports");
        let expected: Vec<mvccpb::KeyValue> = state
            .keys
            .iter()
            .filter_map(|key| {
                let newest = key.versions.last().filter(|version| version.version != 0)?;
                Some(mvccpb::KeyValue {
                    key: key.key.clone(),
                    create_revision: newest.create_revision,
                    mod_revision: newest.mod_revision,
                    version: newest.version,
                    value: newest.value.clone(),
                    lease: newest.lease,
                })
            })
            .collect();
        let range = pb::RangeRequest { key: vec![0], range_end: vec![0], revision: state.revision, ..pb::RangeRequest::default() };
        let served = kv_client(&channel).range(range).await.expect("range at the snapshot's revision").into_inner().kvs;
        assert_eq!(served.len(), expected.len(), "the snapshot holds exactly the keys at its revision {}", state.revision);
        assert!(served == expected, "the snapshot holds exactly the state at its revision {}", state.revision);
        let newest = acknowledged.len();
        eprintln!("{during} writes acknowledged during a {:?} stream; {newest} in all; snapshot at revision {}", finished - requested, state.revision);
    });
}

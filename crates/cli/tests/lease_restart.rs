//! Leases survive a restart of the `strata` binary, after a clean stop (SIGTERM) and after a
//! crash (SIGKILL): the same leases with the same keys, a revoked lease stays revoked, every lease
//! gets its full TTL back (as etcd's new leader gives it), new server-chosen ids do not collide
//! with restored ones, and a restored lease still expires.

mod support;

use std::time::{Duration, Instant};

use strata_etcd_api::pb::etcdserverpb as pb;
use support::{connect, connect_lease, start_strata, ServerProcess, TempDir};

/// The TTL of the lease whose remaining time is watched across the restart.
const WATCHED_TTL_SECONDS: i64 = 10;
/// The TTL of the lease that must expire after the restart.
const EXPIRING_TTL_SECONDS: i64 = 3;
/// How long a condition may take before the test fails.
const CONDITION_DEADLINE_SECONDS: u64 = 20;

#[derive(Clone, Copy, Debug)]
enum Stop {
    Terminate,
    Kill,
}

struct Before {
    watched: i64,
    expiring: i64,
    revision: i64,
}

fn range_all() -> pb::RangeRequest {
    pb::RangeRequest { key: vec![0], range_end: vec![0], ..Default::default() }
}

fn put(key: &str, lease: i64) -> pb::PutRequest {
    pb::PutRequest { key: key.as_bytes().to_vec(), value: b"value".to_vec(), lease, ..Default::default() }
}

/// `(key, lease)` of every key.
async fn keys(endpoint: &str) -> (Vec<(String, i64)>, i64) {
    let response = connect(endpoint).await.kv.range(range_all()).await.expect("range").into_inner();
    let revision = response.header.expect("header").revision;
    (response.kvs.into_iter().map(|kv| (String::from_utf8_lossy(&kv.key).into_owned(), kv.lease)).collect(), revision)
}

async fn grant(endpoint: &str, id: i64, ttl: i64) -> i64 {
    let response = connect_lease(endpoint).await.lease_grant(pb::LeaseGrantRequest { ttl, id }).await.expect("grant").into_inner();
    assert_eq!(response.ttl, ttl);
    response.id
}

async fn time_to_live(endpoint: &str, id: i64) -> pb::LeaseTimeToLiveResponse {
    connect_lease(endpoint).await.lease_time_to_live(pb::LeaseTimeToLiveRequest { id, keys: true }).await.expect("time-to-live").into_inner()
}

async fn before_restart(endpoint: &str) -> Before {
    let mut kv = connect(endpoint).await.kv;
    let mut lease = connect_lease(endpoint).await;
    let watched = grant(endpoint, 0, WATCHED_TTL_SECONDS).await;
    let long = grant(endpoint, 77, 600).await;
    let revoked = grant(endpoint, 0, 600).await;
    for (key, id) in [("watched/1", watched), ("watched/2", watched), ("long/1", long), ("plain", 0), ("revoked/1", revoked)] {
        kv.put(put(key, id)).await.expect("put");
    }
    lease.lease_revoke(pb::LeaseRevokeRequest { id: revoked }).await.expect("revoke");

    // Let the watched lease lose at least two seconds, so that a full TTL after the restart shows.
    let deadline = Instant::now() + Duration::from_secs(CONDITION_DEADLINE_SECONDS);
    while time_to_live(endpoint, watched).await.ttl > WATCHED_TTL_SECONDS - 3 {
        assert!(Instant::now() < deadline, "the watched lease's TTL did not go down");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The expiring lease is granted last, just before the stop, so that it outlives the stop.
    let expiring = grant(endpoint, 0, EXPIRING_TTL_SECONDS).await;
    kv.put(put("expiring/1", expiring)).await.expect("put");
    let (_, revision) = keys(endpoint).await;
    Before { watched, expiring, revision }
}

fn restart_keeps_leases(stop: Stop) {
    let temp = TempDir::new(&format!("lease-restart-{stop:?}").to_lowercase());
    let data = temp.join("data");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut server = start_strata(&data, &["--name", "lease-restart"]);
    let before = runtime.block_on(before_restart(&server.endpoint));
    match stop {
        Stop::Terminate => assert!(server.terminate().success(), "clean stop; log:\n{}", server.log()),
        Stop::Kill => server.kill(),
    }
    drop(server);
    let server: ServerProcess = start_strata(&data, &["--name", "lease-restart"]);
    let endpoint = server.endpoint.clone();
    runtime.block_on(async {
        let watched = time_to_live(&endpoint, before.watched).await;
        assert_eq!(watched.granted_ttl, WATCHED_TTL_SECONDS);
        assert!(watched.ttl >= WATCHED_TTL_SECONDS - 2, "the full TTL is back after the restart: {watched:?}");
        assert_eq!(watched.keys, vec![b"watched/1".to_vec(), b"watched/2".to_vec()]);
        let long = time_to_live(&endpoint, 77).await;
        assert_eq!((long.granted_ttl, long.keys.clone()), (600, vec![b"long/1".to_vec()]), "{long:?}");

        let (found, revision) = keys(&endpoint).await;
        assert_eq!(revision, before.revision, "{stop:?}: the revision survives");
        let expected_keys = [("long/1", 77), ("plain", 0), ("watched/1", before.watched), ("watched/2", before.watched)];
        let expected_with_expiring: Vec<(String, i64)> =
            [("expiring/1", before.expiring)].into_iter().chain(expected_keys).map(|(key, lease)| (key.to_string(), lease)).collect();
        assert_eq!(found, expected_with_expiring, "{stop:?}: the keys and their leases survive; the revoked lease's key stays deleted");

        let mut lease = connect_lease(&endpoint).await;
        let listed: Vec<i64> =
            lease.lease_leases(pb::LeaseLeasesRequest {}).await.expect("leases").into_inner().leases.iter().map(|status| status.id).collect();
        let mut sorted = listed.clone();
        sorted.sort_unstable();
        let mut expected = vec![before.watched, 77, before.expiring];
        expected.sort_unstable();
        assert_eq!(sorted, expected, "{stop:?}: the revoked lease stays revoked");

        // New server-chosen ids do not collide with restored ones.
        let fresh = grant(&endpoint, 0, 600).await;
        assert!(fresh > 0 && !expected.contains(&fresh));

        // A restored lease still expires (its full TTL counted from the restart), and its key goes.
        let deadline = Instant::now() + Duration::from_secs(CONDITION_DEADLINE_SECONDS);
        while keys(&endpoint).await.0.iter().any(|(key, _)| key == "expiring/1") {
            assert!(Instant::now() < deadline, "{stop:?}: the restored lease of the minimum TTL did not expire");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (found, revision) = keys(&endpoint).await;
        assert_eq!(revision, before.revision + 1);
        assert_eq!(found, expected_keys.iter().map(|&(key, lease)| (key.to_string(), lease)).collect::<Vec<_>>());
        assert_eq!(time_to_live(&endpoint, before.expiring).await.ttl, -1);
    });
}

#[test]
fn leases_survive_a_clean_stop() {
    restart_keeps_leases(Stop::Terminate);
}

#[test]
fn leases_survive_a_crash() {
    restart_keeps_leases(Stop::Kill);
}

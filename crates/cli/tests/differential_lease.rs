//! The lease differential test: the real `strata` binary and a real etcd, both started empty, go
//! through the same lease lifecycle over gRPC (grants with server-chosen and client-chosen ids,
//! a duplicate id, TTLs below the minimum and above the maximum, puts with a lease and with a
//! missing one, keys moving between leases, TimeToLive with keys, Leases, keep-alives over one
//! stream, revokes that delete the attached keys in one revision, a revoke of an unknown lease,
//! and expiry), and must answer each step identically once normalized:
//!
//! - headers: `cluster_id`, `member_id` and `raft_term` identify the server, not the data; they
//!   are zeroed.
//! - lease ids the servers chose (grants with ID 0) differ between servers: each server's chosen
//!   ids are mapped, in the order they were granted, to placeholders (`CHOSEN_ID_PLACEHOLDER` + n)
//!   wherever an id appears (grant, keep-alive, TimeToLive and Leases answers, `lease` of a
//!   key-value). Steps refer to a chosen lease by its number, resolved per server.
//! - TimeToLive's remaining TTL is truncated wall-clock time: the servers may be a second apart
//!   when a step lands on a second's boundary, so it must agree within one second.
//! - etcd lists a lease's keys in map order: keys are sorted before comparing; Leases lists in
//!   expiry order, and leases granted in the same step may tie: ids are sorted before comparing.
//!
//! Expiry is awaited on each server with a deadline (the lease's keys gone), then the Range
//! answers and revisions are compared.

mod support;

use std::time::{Duration, Instant};

use strata_etcd_api::pb::etcdserverpb as pb;
use strata_etcd_api::pb::mvccpb;
use support::{connect, connect_lease, etcd_binary, start_etcd, start_strata, Clients, TempDir};
use tonic::transport::Channel;
use tonic::Code;

/// Where the normalized server-chosen ids start: far from any id a step chooses.
const CHOSEN_ID_PLACEHOLDER: i64 = 7_000_000_000_000_000_000;
/// How long a lease of the minimum TTL may take to expire and be revoked, at most.
const EXPIRY_DEADLINE_SECONDS: u64 = 20;

/// A lease as a step names it.
#[derive(Clone, Copy, Debug)]
enum Lease {
    None,
    /// A client-chosen id: the same on both servers.
    Fixed(i64),
    /// The n-th lease the server chose (0-based).
    Chosen(usize),
}

#[derive(Clone, Debug)]
enum Request {
    /// `id: Lease::None` asks the server to choose.
    Grant {
        ttl: i64,
        id: Lease,
    },
    Revoke(Lease),
    TimeToLive {
        lease: Lease,
        keys: bool,
    },
    Leases,
    /// One keep-alive stream carrying one request per lease.
    KeepAlive(Vec<Lease>),
    Put {
        key: &'static str,
        lease: Lease,
        ignore_lease: bool,
        prev_kv: bool,
    },
    Txn(Vec<(&'static str, Lease)>),
    Range {
        prefix: &'static str,
    },
}

#[derive(Clone, Debug, PartialEq)]
enum Outcome {
    Grant(pb::LeaseGrantResponse),
    Revoke(pb::LeaseRevokeResponse),
    TimeToLive(pb::LeaseTimeToLiveResponse),
    Leases(pb::LeaseLeasesResponse),
    KeepAlive(Vec<pb::LeaseKeepAliveResponse>),
    Put(pb::PutResponse),
    Txn(pb::TxnResponse),
    Range(pb::RangeResponse),
    Error { code: Code, message: String },
}

/// One server's connection and the ids it chose.
struct Session {
    clients: Clients,
    lease: pb::lease_client::LeaseClient<Channel>,
    chosen: Vec<i64>,
}

fn normalize_header(header: &mut Option<pb::ResponseHeader>) {
    if let Some(header) = header {
        header.cluster_id = 0;
        header.member_id = 0;
        header.raft_term = 0;
    }
}

fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    *end.last_mut().expect("a non-empty prefix") += 1;
    end
}

impl Session {
    async fn open(endpoint: &str) -> Session {
        Session { clients: connect(endpoint).await, lease: connect_lease(endpoint).await, chosen: Vec::new() }
    }

    fn id(&self, lease: Lease) -> i64 {
        match lease {
            Lease::None => 0,
            Lease::Fixed(id) => id,
            Lease::Chosen(index) => *self.chosen.get(index).unwrap_or_else(|| panic!("no chosen lease {index} yet")),
        }
    }

    /// A server-chosen id as its placeholder; any other id unchanged.
    fn normalized(&self, id: i64) -> i64 {
        self.chosen.iter().position(|&chosen| chosen == id).map_or(id, |index| CHOSEN_ID_PLACEHOLDER + index as i64)
    }

    fn normalize_kv(&self, kv: &mut mvccpb::KeyValue) {
        kv.lease = self.normalized(kv.lease);
    }

    async fn execute(&mut self, request: &Request) -> Outcome {
        fn error(status: tonic::Status) -> Outcome {
            Outcome::Error { code: status.code(), message: status.message().to_string() }
        }
        match request {
            Request::Grant { ttl, id } => match self.lease.lease_grant(pb::LeaseGrantRequest { ttl: *ttl, id: self.id(*id) }).await {
                Ok(response) => {
                    let mut response = response.into_inner();
                    if matches!(id, Lease::None) {
                        self.chosen.push(response.id);
                    }
                    normalize_header(&mut response.header);
                    response.id = self.normalized(response.id);
                    Outcome::Grant(response)
                }
                Err(status) => error(status),
            },
            Request::Revoke(lease) => match self.lease.lease_revoke(pb::LeaseRevokeRequest { id: self.id(*lease) }).await {
                Ok(response) => {
                    let mut response = response.into_inner();
                    normalize_header(&mut response.header);
                    Outcome::Revoke(response)
                }
                Err(status) => error(status),
            },
            Request::TimeToLive { lease, keys } => match self.lease.lease_time_to_live(pb::LeaseTimeToLiveRequest { id: self.id(*lease), keys: *keys }).await {
                Ok(response) => {
                    let mut response = response.into_inner();
                    normalize_header(&mut response.header);
                    response.id = self.normalized(response.id);
                    response.keys.sort();
                    Outcome::TimeToLive(response)
                }
                Err(status) => error(status),
            },
            Request::Leases => match self.lease.lease_leases(pb::LeaseLeasesRequest {}).await {
                Ok(response) => {
                    let mut response = response.into_inner();
                    normalize_header(&mut response.header);
                    for status in &mut response.leases {
                        status.id = self.normalized(status.id);
                    }
                    response.leases.sort_by_key(|status| status.id);
                    Outcome::Leases(response)
                }
                Err(status) => error(status),
            },
            Request::KeepAlive(leases) => {
                let requests: Vec<pb::LeaseKeepAliveRequest> = leases.iter().map(|&lease| pb::LeaseKeepAliveRequest { id: self.id(lease) }).collect();
                let expected = requests.len();
                let mut stream = match self.lease.lease_keep_alive(tokio_stream::iter(requests)).await {
                    Ok(response) => response.into_inner(),
                    Err(status) => return error(status),
                };
                let mut responses = Vec::new();
                while responses.len() < expected {
                    match stream.message().await {
                        Ok(Some(mut response)) => {
                            normalize_header(&mut response.header);
                            response.id = self.normalized(response.id);
                            responses.push(response);
                        }
                        Ok(None) => break,
                        Err(status) => return error(status),
                    }
                }
                Outcome::KeepAlive(responses)
            }
            Request::Put { key, lease, ignore_lease, prev_kv } => {
                let request = pb::PutRequest {
                    key: key.as_bytes().to_vec(),
                    value: format!("value of {key}").into_bytes(),
                    lease: self.id(*lease),
                    prev_kv: *prev_kv,
                    ignore_lease: *ignore_lease,
                    ..Default::default()
                };
                match self.clients.kv.put(request).await {
                    Ok(response) => {
                        let mut response = response.into_inner();
                        normalize_header(&mut response.header);
                        if let Some(kv) = &mut response.prev_kv {
                            self.normalize_kv(kv);
                        }
                        Outcome::Put(response)
                    }
                    Err(status) => error(status),
                }
            }
            Request::Txn(puts) => {
                use pb::request_op::Request as Op;
                let success = puts
                    .iter()
                    .map(|&(key, lease)| pb::RequestOp {
                        request: Some(Op::RequestPut(pb::PutRequest { key: key.as_bytes().to_vec(), lease: self.id(lease), ..Default::default() })),
                    })
                    .collect();
                match self.clients.kv.txn(pb::TxnRequest { compare: vec![], success, failure: vec![] }).await {
                    Ok(response) => {
                        use pb::response_op::Response;
                        let mut response = response.into_inner();
                        normalize_header(&mut response.header);
                        for op in &mut response.responses {
                            if let Some(Response::ResponsePut(put)) = &mut op.response {
                                normalize_header(&mut put.header);
                            }
                        }
                        Outcome::Txn(response)
                    }
                    Err(status) => error(status),
                }
            }
            Request::Range { prefix } => {
                let request = pb::RangeRequest { key: prefix.as_bytes().to_vec(), range_end: prefix_end(prefix), ..Default::default() };
                match self.clients.kv.range(request).await {
                    Ok(response) => {
                        let mut response = response.into_inner();
                        normalize_header(&mut response.header);
                        for kv in &mut response.kvs {
                            self.normalize_kv(kv);
                        }
                        Outcome::Range(response)
                    }
                    Err(status) => error(status),
                }
            }
        }
    }

    /// Polls until no key under `prefix` is left, or fails after the deadline.
    async fn await_keys_gone(&mut self, prefix: &str, server: &str) -> Duration {
        let started = Instant::now();
        let deadline = started + Duration::from_secs(EXPIRY_DEADLINE_SECONDS);
        loop {
            let request = pb::RangeRequest { key: prefix.as_bytes().to_vec(), range_end: prefix_end(prefix), count_only: true, ..Default::default() };
            let count = self.clients.kv.range(request).await.expect("range").into_inner().count;
            if count == 0 {
                return started.elapsed();
            }
            assert!(Instant::now() < deadline, "{server}: the keys under {prefix} were still there {EXPIRY_DEADLINE_SECONDS} s after their lease's TTL");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Accepts a remaining TTL one second apart (see the module documentation) by taking etcd's.
fn reconcile(strata: &mut Outcome, etcd: &Outcome) {
    if let (Outcome::TimeToLive(ours), Outcome::TimeToLive(theirs)) = (strata, etcd) {
        if (ours.ttl - theirs.ttl).abs() <= 1 && ours.ttl >= 0 && theirs.ttl >= 0 {
            ours.ttl = theirs.ttl;
        }
    }
}

struct Runner {
    strata: Session,
    etcd: Session,
    compared: usize,
    mismatches: Vec<String>,
    noted: Vec<(String, Outcome, Outcome)>,
}

impl Runner {
    async fn step(&mut self, label: &str, request: Request) -> (Outcome, Outcome) {
        let mut strata = self.strata.execute(&request).await;
        let etcd = self.etcd.execute(&request).await;
        reconcile(&mut strata, &etcd);
        self.compared += 1;
        self.noted.push((label.to_string(), strata.clone(), etcd.clone()));
        if strata != etcd {
            self.mismatches.push(format!("step {} `{label}`\n  request: {request:?}\n  strata:  {strata:?}\n  etcd:    {etcd:?}", self.compared));
        }
        (strata, etcd)
    }

    fn expect(&mut self, label: &str, ok: bool, detail: String) {
        if !ok {
            self.mismatches.push(format!("`{label}`: {detail}"));
        }
    }
}

fn put(key: &'static str, lease: Lease) -> Request {
    Request::Put { key, lease, ignore_lease: false, prev_kv: false }
}

fn header_revision(outcome: &Outcome) -> Option<i64> {
    let header = match outcome {
        Outcome::Grant(response) => response.header,
        Outcome::Revoke(response) => response.header,
        Outcome::TimeToLive(response) => response.header,
        Outcome::Leases(response) => response.header,
        Outcome::Put(response) => response.header,
        Outcome::Txn(response) => response.header,
        Outcome::Range(response) => response.header,
        Outcome::KeepAlive(_) | Outcome::Error { .. } => None,
    };
    header.map(|header| header.revision)
}

async fn lifecycle(runner: &mut Runner) {
    use Lease::{Chosen, Fixed};
    // Grants: server-chosen ids, client-chosen ids, a duplicate, TTLs out of bounds.
    runner.step("grant, server-chosen id", Request::Grant { ttl: 60, id: Lease::None }).await;
    runner.step("grant, client-chosen id", Request::Grant { ttl: 120, id: Fixed(1000) }).await;
    runner.step("grant, duplicate id", Request::Grant { ttl: 30, id: Fixed(1000) }).await;
    runner.step("grant, duplicate id with a TTL above the maximum", Request::Grant { ttl: 9_000_000_001, id: Fixed(1000) }).await;
    // Leases of the minimum TTL are revoked at once, before they can expire on one server only.
    for (label, ttl, id) in [("TTL 1 (below the minimum)", 1, 1001), ("TTL 0", 0, 1002), ("negative TTL", -5, 1003)] {
        runner.step(&format!("grant, {label}"), Request::Grant { ttl, id: Fixed(id) }).await;
        runner.step(&format!("revoke {id} (no keys)"), Request::Revoke(Fixed(id))).await;
    }
    runner.step("grant, TTL above the maximum", Request::Grant { ttl: 9_000_000_001, id: Fixed(1004) }).await;
    runner.step("grant, TTL at the maximum", Request::Grant { ttl: 9_000_000_000, id: Fixed(1005) }).await;
    runner.step("grant, negative client-chosen id", Request::Grant { ttl: 60, id: Fixed(-7) }).await;
    runner.step("grant, second server-chosen id", Request::Grant { ttl: 90, id: Lease::None }).await;
    runner.step("leases after the grants", Request::Leases).await;
    for lease in [1005, -7] {
        runner.step(&format!("revoke {lease} (no keys)"), Request::Revoke(Fixed(lease))).await;
    }
    runner.step("time-to-live of a revoked lease", Request::TimeToLive { lease: Fixed(1001), keys: true }).await;

    // Keys attached to leases, moved, detached.
    runner.step("put with the chosen lease", put("lease/a", Chosen(0))).await;
    runner.step("put with the chosen lease again", put("lease/b", Chosen(0))).await;
    runner.step("put with the client-chosen lease", put("lease/c", Fixed(1000))).await;
    runner.step("put with a missing lease", put("lease/missing", Fixed(4242))).await;
    runner.step("put without a lease", put("lease/plain", Lease::None)).await;
    runner.step("put keeping the lease (ignore_lease)", Request::Put { key: "lease/a", lease: Lease::None, ignore_lease: true, prev_kv: true }).await;
    runner.step("put moving a key to another lease", Request::Put { key: "lease/b", lease: Fixed(1000), ignore_lease: false, prev_kv: true }).await;
    runner.step("txn attaching keys", Request::Txn(vec![("lease/d", Chosen(0)), ("lease/e", Chosen(0)), ("lease/f", Fixed(1000))])).await;
    runner.step("txn with a missing lease", Request::Txn(vec![("lease/g", Fixed(4242))])).await;
    runner.step("put detaching a key", put("lease/e", Lease::None)).await;
    runner.step("range after attaching", Request::Range { prefix: "lease/" }).await;
    runner.step("time-to-live with keys (chosen)", Request::TimeToLive { lease: Chosen(0), keys: true }).await;
    runner.step("time-to-live with keys (client-chosen)", Request::TimeToLive { lease: Fixed(1000), keys: true }).await;
    runner.step("time-to-live without keys", Request::TimeToLive { lease: Fixed(1000), keys: false }).await;
    runner.step("time-to-live of an unknown lease", Request::TimeToLive { lease: Fixed(4242), keys: true }).await;
    runner.step("leases", Request::Leases).await;

    // Keep-alives over one stream: known leases get their TTL, an unknown one TTL 0.
    runner.step("keep-alive stream", Request::KeepAlive(vec![Chosen(0), Fixed(4242), Fixed(1000), Chosen(1)])).await;
    runner.step("time-to-live after the keep-alive", Request::TimeToLive { lease: Chosen(0), keys: false }).await;

    // Revokes: all of a lease's keys go in one revision.
    let (before, _) = runner.step("range before the revoke", Request::Range { prefix: "lease/" }).await;
    let (revoked, _) = runner.step("revoke the chosen lease", Request::Revoke(Chosen(0))).await;
    let (before, revoked) = (header_revision(&before), header_revision(&revoked));
    runner.expect("revoke in one revision", before.map(|revision| revision + 1) == revoked, format!("revision {before:?} before, {revoked:?} after"));
    runner.step("range after the revoke", Request::Range { prefix: "lease/" }).await;
    runner.step("revoke it again", Request::Revoke(Chosen(0))).await;
    runner.step("revoke an unknown lease", Request::Revoke(Fixed(4242))).await;
    runner.step("put with the revoked lease", put("lease/late", Chosen(0))).await;
    runner.step("time-to-live of the revoked lease", Request::TimeToLive { lease: Chosen(0), keys: true }).await;
    runner.step("keep-alive of the revoked lease", Request::KeepAlive(vec![Chosen(0)])).await;
    runner.step("revoke the client-chosen lease", Request::Revoke(Fixed(1000))).await;
    runner.step("range after both revokes", Request::Range { prefix: "lease/" }).await;
    runner.step("leases after the revokes", Request::Leases).await;
}

async fn expiry(runner: &mut Runner) {
    use Lease::Chosen;
    runner.step("grant a lease of the minimum TTL", Request::Grant { ttl: 1, id: Lease::None }).await;
    let expiring = Chosen(runner.strata.chosen.len() - 1);
    runner.step("put with the expiring lease", put("expiry/a", expiring)).await;
    runner.step("put with the expiring lease again", put("expiry/b", expiring)).await;
    runner.step("put a key that stays", put("expiry/kept", Lease::None)).await;
    let (before, _) = runner.step("range before the expiry", Request::Range { prefix: "expiry/" }).await;

    let waited_strata = runner.strata.await_keys_gone("expiry/a", "strata").await;
    let waited_etcd = runner.etcd.await_keys_gone("expiry/a", "etcd").await;
    eprintln!("expiry awaited: strata {waited_strata:?}, then etcd {waited_etcd:?}");

    let (after, _) = runner.step("range after the expiry", Request::Range { prefix: "expiry/" }).await;
    let (before, after) = (header_revision(&before), header_revision(&after));
    runner.expect("expiry in one revision", before.map(|revision| revision + 1) == after, format!("revision {before:?} before, {after:?} after"));
    runner.step("time-to-live of the expired lease", Request::TimeToLive { lease: expiring, keys: true }).await;
    runner.step("keep-alive of the expired lease", Request::KeepAlive(vec![expiring])).await;
    runner.step("revoke the expired lease", Request::Revoke(expiring)).await;
    runner.step("leases after the expiry", Request::Leases).await;
}

#[test]
fn strata_answers_lease_requests_as_etcd_does() {
    let Some(etcd) = etcd_binary() else { return };
    let temp = TempDir::new("differential-lease");
    let strata_server = start_strata(&temp.join("strata"), &["--name", "differential-lease"]);
    let etcd_server = start_etcd(&etcd, &temp.join("etcd"));

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let runner = runtime.block_on(async {
        let mut runner = Runner {
            strata: Session::open(&strata_server.endpoint).await,
            etcd: Session::open(&etcd_server.endpoint).await,
            compared: 0,
            mismatches: Vec::new(),
            noted: Vec::new(),
        };
        lifecycle(&mut runner).await;
        expiry(&mut runner).await;
        runner
    });
    for (label, strata, _) in &runner.noted {
        eprintln!("{label}: {strata:?}");
    }
    assert!(runner.compared >= 50, "only {} steps compared", runner.compared);
    assert!(runner.mismatches.is_empty(), "{} of {} steps differ:\n{}", runner.mismatches.len(), runner.compared, runner.mismatches.join("\n"));
}

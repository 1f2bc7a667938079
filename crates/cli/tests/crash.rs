//! The crash test: concurrent writers against the real `strata` binary, SIGKILL at random moments
//! (at least 50 times by default), a restart on the same data directory after each kill, and a
//! check that every ACKNOWLEDGED write survived, no txn is half-applied, nothing that was never
//! written appears, and revisions never go backwards.
//!
//! Every writer owns its keys (`k/<writer>/<n>`, `hot/<writer>`, and txn keys `t/<n>/{a,b,c}` with
//! a globally unique `n`) and issues one request at a time, so at a kill each writer has at most
//! one request whose fate is unknown. The checker keeps an exact model of the store: acknowledged
//! writes are applied to it; an in-flight request must be found either fully applied or not at all
//! (and the model then learns which), and every other key must match the model exactly, value and
//! `mod_revision`. Revisions are accounted for exactly: after a restart the revision is the previous
//! one plus one per acknowledged write plus one per in-flight write found applied.
//!
//! `STRATA_CRASH_SEED` fixes the seed (printed at the start), `STRATA_CRASH_ITERATIONS` the number
//! of kill/restart cycles (default 100, about a minute in a debug build). Run with `-- --nocapture` to see the summary.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_etcd_api::pb::etcdserverpb as pb;
use strata_etcd_api::pb::etcdserverpb::kv_client::KvClient;
use support::{connect, start_strata, ServerProcess, TempDir};

/// Small segments, so that kills also land while a segment is sealed and the next one created.
const SEGMENT_BYTES: &str = "65536";
use tonic::transport::Channel;

const WRITERS: usize = 8;
const ITERATIONS_DEFAULT: u64 = 100;
const KILL_DELAY_MS_MIN: u64 = 5;
const KILL_DELAY_MS_MAX: u64 = 150;
/// A key the txns compare on; nobody ever writes it, so its version is always 0.
const NEVER_WRITTEN_KEY: &[u8] = b"never-written";

/// splitmix64: small, seeded, good enough to pick delays and operations.
#[derive(Clone, Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform enough in `0..bound` (bound > 0).
    fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(value.trim().parse().unwrap_or_else(|_| panic!("{name}={value:?} is not an unsigned integer")))
}

/// One write a writer issued.
#[derive(Clone, Debug)]
enum Op {
    /// A Put of a key written nowhere else.
    Put { key: Vec<u8>, value: Vec<u8> },
    /// A Put of the writer's hot key with its next counter.
    Hot { key: Vec<u8>, counter: u64 },
    /// A Txn putting `t/<n>/a`, `t/<n>/b`, `t/<n>/c` with the same value.
    Txn { n: u64, value: Vec<u8> },
    /// A DeleteRange of one key the writer put earlier (acknowledged, still present).
    Delete { key: Vec<u8> },
}

impl Op {
    /// What the op does when applied: key → new value (`None` = deleted).
    fn effect(&self) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        match self {
            Op::Put { key, value } => vec![(key.clone(), Some(value.clone()))],
            Op::Hot { key, counter } => vec![(key.clone(), Some(counter.to_string().into_bytes()))],
            Op::Txn { n, value } => txn_keys(*n).into_iter().map(|key| (key, Some(value.clone()))).collect(),
            Op::Delete { key } => vec![(key.clone(), None)],
        }
    }

    fn kind(&self) -> usize {
        match self {
            Op::Put { .. } => 0,
            Op::Hot { .. } => 1,
            Op::Txn { .. } => 2,
            Op::Delete { .. } => 3,
        }
    }
}

fn txn_keys(n: u64) -> Vec<Vec<u8>> {
    ["a", "b", "c"].iter().map(|suffix| format!("t/{n}/{suffix}").into_bytes()).collect()
}

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What a writer carries from one round to the next.
#[derive(Debug)]
struct WriterPlan {
    writer: usize,
    rng: SplitMix64,
    /// This writer's unique keys that are present (acknowledged, or found applied), for deletes.
    deletable: Vec<Vec<u8>>,
    /// The next hot-key counter; never reused, even for a request lost in a kill.
    next_counter: u64,
}

#[derive(Debug)]
struct WriterReport {
    plan: WriterPlan,
    /// Acknowledged ops with their header revision, in the order the writer issued them.
    acked: Vec<(Op, i64)>,
    /// The op whose RPC failed after the kill: it may or may not have been applied.
    in_flight: Option<Op>,
    /// A failure that is not explained by the kill.
    unexpected: Option<String>,
}

async fn run_writer(mut kv: KvClient<Channel>, mut plan: WriterPlan, killed: Arc<AtomicBool>, ids: Arc<AtomicU64>) -> WriterReport {
    let mut acked = Vec::new();
    let writer = plan.writer;
    loop {
        let roll = plan.rng.below(100);
        let op = if roll < 15 && !plan.deletable.is_empty() {
            let at = plan.rng.below(plan.deletable.len() as u64) as usize;
            Op::Delete { key: plan.deletable.swap_remove(at) }
        } else if roll < 40 {
            let counter = plan.next_counter;
            plan.next_counter += 1;
            Op::Hot { key: format!("hot/{writer}").into_bytes(), counter }
        } else if roll < 60 {
            let n = ids.fetch_add(1, Ordering::Relaxed);
            Op::Txn { n, value: format!("txn-{n}-{:x}", plan.rng.next_u64()).into_bytes() }
        } else {
            let n = ids.fetch_add(1, Ordering::Relaxed);
            Op::Put { key: format!("k/{writer}/{n}").into_bytes(), value: format!("v-{n}-{:x}", plan.rng.next_u64()).into_bytes() }
        };
        let outcome: Result<Result<i64, String>, tonic::Status> = match &op {
            Op::Put { key, value } => kv
                .put(pb::PutRequest { key: key.clone(), value: value.clone(), ..Default::default() })
                .await
                .map(|response| Ok(response.into_inner().header.map_or(0, |header| header.revision))),
            Op::Hot { .. } => {
                let (key, value) = op.effect().remove(0);
                kv.put(pb::PutRequest { key, value: value.expect("a put"), ..Default::default() })
                    .await
                    .map(|response| Ok(response.into_inner().header.map_or(0, |header| header.revision)))
            }
            Op::Txn { n, value } => {
                let success = txn_keys(*n)
                    .into_iter()
                    .map(|key| pb::RequestOp {
                        request: Some(pb::request_op::Request::RequestPut(pb::PutRequest { key, value: value.clone(), ..Default::default() })),
                    })
                    .collect();
                let compare = vec![pb::Compare {
                    result: pb::compare::CompareResult::Equal as i32,
                    target: pb::compare::CompareTarget::Version as i32,
                    key: NEVER_WRITTEN_KEY.to_vec(),
                    target_union: Some(pb::compare::TargetUnion::Version(0)),
                    range_end: Vec::new(),
                }];
                kv.txn(pb::TxnRequest { compare, success, failure: Vec::new() }).await.map(|response| {
                    let response = response.into_inner();
                    match response.succeeded {
                        true => Ok(response.header.map_or(0, |header| header.revision)),
                        false => Err(format!("txn {n} took the failure branch: {response:?}")),
                    }
                })
            }
            Op::Delete { key } => kv.delete_range(pb::DeleteRangeRequest { key: key.clone(), ..Default::default() }).await.map(|response| {
                let response = response.into_inner();
                match response.deleted {
                    1 => Ok(response.header.map_or(0, |header| header.revision)),
                    deleted => Err(format!("delete of {} deleted {deleted} keys, 1 expected", show(key))),
                }
            }),
        };
        match outcome {
            Ok(Ok(revision)) => {
                if let Op::Put { key, .. } = &op {
                    plan.deletable.push(key.clone());
                }
                acked.push((op, revision));
            }
            Ok(Err(wrong)) => return WriterReport { plan, acked, in_flight: None, unexpected: Some(format!("writer {writer}: {wrong}")) },
            Err(_) if killed.load(Ordering::SeqCst) => return WriterReport { plan, acked, in_flight: Some(op), unexpected: None },
            Err(status) => {
                let unexpected = Some(format!("writer {writer}: {op:?} failed before the kill: {status}"));
                return WriterReport { plan, acked, in_flight: None, unexpected };
            }
        }
    }
}

/// A key's expected state.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Version {
    value: Vec<u8>,
    mod_revision: i64,
}

#[derive(Default)]
struct Totals {
    acked_by_kind: [u64; 4],
    in_flight_applied: u64,
    in_flight_not_applied: u64,
    torn_tails: u64,
}

/// The exact expected state of the store, and what the checks carry from restart to restart.
#[derive(Debug)]
struct Model {
    keys: BTreeMap<Vec<u8>, Version>,
    /// The revision read after the last restart (or at the start).
    revision: i64,
    max_acked_revision: i64,
    acked_revisions: BTreeSet<i64>,
}

async fn full_range(kv: &mut KvClient<Channel>) -> Result<(BTreeMap<Vec<u8>, Version>, i64), String> {
    let response = kv
        .range(pb::RangeRequest { key: vec![0], range_end: vec![0], ..Default::default() })
        .await
        .map_err(|status| format!("full range failed: {status}"))?
        .into_inner();
    let revision = response.header.as_ref().map_or(0, |header| header.revision);
    if response.more || response.count != response.kvs.len() as i64 {
        return Err(format!("full range: more={} count={} but {} kvs", response.more, response.count, response.kvs.len()));
    }
    let mut keys = BTreeMap::new();
    for kv in response.kvs {
        if kv.mod_revision > revision || kv.create_revision > kv.mod_revision {
            return Err(format!(
                "key {} has create_revision {} mod_revision {} at header revision {revision}",
                show(&kv.key),
                kv.create_revision,
                kv.mod_revision
            ));
        }
        keys.insert(kv.key, Version { value: kv.value, mod_revision: kv.mod_revision });
    }
    Ok((keys, revision))
}

/// Checks the restarted store against the model and the writers' reports, then brings the model
/// up to date (in-flight ops resolved as applied or not). Returns an error describing the first
/// violation.
fn check_and_update(
    model: &mut Model,
    reports: &[WriterReport],
    actual: &BTreeMap<Vec<u8>, Version>,
    revision: i64,
    totals: &mut Totals,
) -> Result<(), String> {
    let previous_revision = model.revision;
    if revision < previous_revision {
        return Err(format!("the revision went backwards across a restart: {previous_revision} before, {revision} now"));
    }

    // Acknowledged writes: revisions in this round's range, increasing per writer, all distinct.
    let mut acked_count = 0i64;
    for report in reports {
        let mut last = previous_revision;
        for (op, acked_revision) in &report.acked {
            if *acked_revision <= last {
                return Err(format!(
                    "writer {}: {op:?} was acknowledged at revision {acked_revision}, not after {last} (its previous ack or the restart revision)",
                    report.plan.writer
                ));
            }
            if !model.acked_revisions.insert(*acked_revision) {
                return Err(format!("revision {acked_revision} was acknowledged twice (last: {op:?})"));
            }
            last = *acked_revision;
            model.max_acked_revision = model.max_acked_revision.max(*acked_revision);
            acked_count += 1;
            totals.acked_by_kind[op.kind()] += 1;
            for (key, value) in op.effect() {
                match value {
                    Some(value) => {
                        model.keys.insert(key, Version { value, mod_revision: *acked_revision });
                    }
                    None => {
                        model.keys.remove(&key);
                    }
                }
            }
        }
    }
    if revision < model.max_acked_revision {
        return Err(format!("the revision after restart is {revision} but revision {} was acknowledged", model.max_acked_revision));
    }

    // In-flight ops: all or nothing.
    let mut in_flight_keys = BTreeSet::new();
    let mut applied_count = 0i64;
    for report in reports {
        let Some(op) = &report.in_flight else { continue };
        let effect = op.effect();
        let applied = effect.iter().all(|(key, value)| match value {
            Some(value) => actual.get(key).is_some_and(|version| &version.value == value),
            None => !actual.contains_key(key),
        });
        let not_applied = effect.iter().all(|(key, _)| actual.get(key) == model.keys.get(key));
        let states: Vec<String> = effect.iter().map(|(key, _)| format!("{} = {:?}", show(key), actual.get(key))).collect();
        if applied {
            let revisions: BTreeSet<i64> = effect.iter().filter_map(|(key, _)| actual.get(key).map(|version| version.mod_revision)).collect();
            let last_acked = report.acked.last().map_or(previous_revision, |(_, revision)| *revision);
            if revisions.len() > 1 || revisions.iter().any(|applied_revision| *applied_revision <= last_acked) {
                return Err(format!(
                    "writer {}: in-flight {op:?} is applied with mod_revisions {revisions:?}, which must be one revision after {last_acked}: {states:?}",
                    report.plan.writer
                ));
            }
            applied_count += 1;
            totals.in_flight_applied += 1;
            for (key, _) in &effect {
                match actual.get(key) {
                    Some(version) => model.keys.insert(key.clone(), version.clone()),
                    None => model.keys.remove(key),
                };
            }
        } else if not_applied {
            totals.in_flight_not_applied += 1;
        } else {
            let expected: Vec<String> = effect.iter().map(|(key, _)| format!("{} = {:?}", show(key), model.keys.get(key))).collect();
            return Err(format!("writer {}: in-flight {op:?} is half-applied or wrong: found {states:?}, before it {expected:?}", report.plan.writer));
        }
        in_flight_keys.extend(effect.into_iter().map(|(key, _)| key));
    }

    // Hot keys: never below their last acknowledged counter.
    for report in reports {
        let Some((Op::Hot { key, counter }, _)) = report.acked.iter().rev().find(|(op, _)| matches!(op, Op::Hot { .. })) else { continue };
        let found = actual.get(key).and_then(|version| show(&version.value).parse::<u64>().ok());
        if found.is_none_or(|found| found < *counter) {
            return Err(format!("hot key {} holds {found:?} but counter {counter} was acknowledged", show(key)));
        }
    }

    // Every key exactly as the model says: nothing lost, nothing invented.
    for (key, expected) in &model.keys {
        match actual.get(key) {
            None => return Err(format!("lost acknowledged write: {} = {:?} is missing", show(key), expected)),
            Some(found) if found != expected => {
                return Err(format!(
                    "key {}: expected {} at mod_revision {}, found {} at mod_revision {}",
                    show(key),
                    show(&expected.value),
                    expected.mod_revision,
                    show(&found.value),
                    found.mod_revision
                ))
            }
            Some(_) => {}
        }
    }
    for (key, found) in actual {
        if !model.keys.contains_key(key) {
            let why = if in_flight_keys.contains(key) { "in-flight key in an unexpected state" } else { "never acknowledged" };
            return Err(format!("unexpected key {} = {} at mod_revision {} ({why})", show(key), show(&found.value), found.mod_revision));
        }
    }

    // Revision accounting: each acknowledged write and each applied in-flight write is one revision.
    let expected_revision = previous_revision + acked_count + applied_count;
    if revision != expected_revision {
        return Err(format!(
            "revision after restart is {revision}, expected {previous_revision} + {acked_count} acknowledged + {applied_count} applied in flight = {expected_revision}"
        ));
    }
    model.revision = revision;
    Ok(())
}

/// Copies the data directory (and server log) aside so a failure can be examined.
fn preserve(data_dir: &Path, label: &str) -> String {
    fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            let target = to.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                copy_tree(&entry.path(), &target)?;
            } else {
                std::fs::copy(entry.path(), target)?;
            }
        }
        Ok(())
    }
    let target = std::env::temp_dir().join(format!("strata-crash-failure-{}-{label}", std::process::id()));
    let _ = std::fs::remove_dir_all(&target);
    match copy_tree(data_dir, &target.join("data")) {
        Ok(()) => {
            let _ = std::fs::copy(data_dir.with_extension("log"), target.join("server.log"));
            format!("data directory copied to {}", target.display())
        }
        Err(error) => format!("could not copy the data directory: {error}"),
    }
}

#[test]
fn acknowledged_writes_survive_repeated_sigkill() {
    let started = Instant::now();
    let seed = env_u64("STRATA_CRASH_SEED").unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970");
        now.as_nanos() as u64 ^ u64::from(std::process::id())
    });
    let iterations = env_u64("STRATA_CRASH_ITERATIONS").unwrap_or(ITERATIONS_DEFAULT);
    println!("crash test: seed {seed} (STRATA_CRASH_SEED={seed} to repeat), {iterations} kill/restart cycles, {WRITERS} writers");

    let mut rng = SplitMix64(seed);
    let temp = TempDir::new("crash");
    let data_dir = temp.join("data");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let ids = Arc::new(AtomicU64::new(0));
    let mut plans: Vec<WriterPlan> =
        (0..WRITERS).map(|writer| WriterPlan { writer, rng: SplitMix64(rng.next_u64()), deletable: Vec::new(), next_counter: 1 }).collect();
    let mut totals = Totals::default();

    let mut server: ServerProcess = start_strata(&data_dir, &["--name", "crash", "--log-segment-bytes", SEGMENT_BYTES]);
    let (initial, revision) = runtime
        .block_on(async {
            let mut clients = connect(&server.endpoint).await;
            full_range(&mut clients.kv).await
        })
        .unwrap_or_else(|error| panic!("seed {seed}: initial read: {error}"));
    assert!(initial.is_empty(), "a fresh data directory holds keys: {initial:?}");
    let mut model = Model { keys: BTreeMap::new(), revision, max_acked_revision: 0, acked_revisions: BTreeSet::new() };

    for iteration in 0..iterations {
        let fail = |message: String| -> ! { panic!("seed {seed}, iteration {iteration}: {message}\n{}", preserve(&data_dir, &iteration.to_string())) };
        let clients = runtime.block_on(connect(&server.endpoint));
        let killed = Arc::new(AtomicBool::new(false));
        let delay = KILL_DELAY_MS_MIN + rng.below(KILL_DELAY_MS_MAX - KILL_DELAY_MS_MIN + 1);
        let handles: Vec<_> = plans.drain(..).map(|plan| runtime.spawn(run_writer(clients.kv.clone(), plan, killed.clone(), ids.clone()))).collect();
        std::thread::sleep(Duration::from_millis(delay));
        killed.store(true, Ordering::SeqCst);
        server.kill();
        let reports: Vec<WriterReport> = runtime
            .block_on(async {
                let mut reports = Vec::with_capacity(handles.len());
                for handle in handles {
                    match tokio::time::timeout(Duration::from_secs(60), handle).await {
                        Ok(Ok(report)) => reports.push(report),
                        Ok(Err(error)) => return Err(format!("a writer task failed: {error}")),
                        Err(_) => return Err("a writer did not notice the kill within 60 s".to_string()),
                    }
                }
                drop(clients);
                Ok(reports)
            })
            .unwrap_or_else(|error| fail(error));
        if let Some(unexpected) = reports.iter().find_map(|report| report.unexpected.clone()) {
            fail(unexpected);
        }

        server = start_strata(&data_dir, &["--name", "crash", "--log-segment-bytes", SEGMENT_BYTES]);
        if server.log().contains("truncated a torn tail") {
            totals.torn_tails += 1;
        }
        let (actual, revision) = runtime
            .block_on(async {
                let mut clients = connect(&server.endpoint).await;
                full_range(&mut clients.kv).await
            })
            .unwrap_or_else(|error| fail(error));
        if let Err(error) = check_and_update(&mut model, &reports, &actual, revision, &mut totals) {
            fail(format!("{error}\n(kill {delay} ms after the writers started; server log after restart:\n{})", server.log()));
        }

        // Deletable keys: each writer's unique keys that are present now.
        plans = reports.into_iter().map(|report| report.plan).collect();
        for plan in &mut plans {
            let prefix = format!("k/{}/", plan.writer).into_bytes();
            plan.deletable = model.keys.range(prefix.clone()..).take_while(|(key, _)| key.starts_with(&prefix)).map(|(key, _)| key.clone()).collect();
        }
    }
    server.kill();

    let acked: u64 = totals.acked_by_kind.iter().sum();
    let [puts, hot, txns, deletes] = totals.acked_by_kind;
    println!("crash test: {iterations} SIGKILL/restart cycles in {:.1} s (seed {seed})", started.elapsed().as_secs_f64());
    println!("crash test: {acked} acknowledged writes ({puts} puts, {hot} hot-key puts, {txns} txns, {deletes} deletes), all present after every restart");
    println!(
        "crash test: {} in flight at a kill: {} found applied, {} not applied",
        totals.in_flight_applied + totals.in_flight_not_applied,
        totals.in_flight_applied,
        totals.in_flight_not_applied
    );
    println!("crash test: final revision {}, {} keys, {} restarts truncated a torn log tail", model.revision, model.keys.len(), totals.torn_tails);
}

/// The checker itself: it must reject what the crash test exists to catch.
mod checker {
    use super::*;

    fn version(value: &str, mod_revision: i64) -> Version {
        Version { value: value.as_bytes().to_vec(), mod_revision }
    }

    fn report(writer: usize, acked: Vec<(Op, i64)>, in_flight: Option<Op>) -> WriterReport {
        let plan = WriterPlan { writer, rng: SplitMix64(0), deletable: Vec::new(), next_counter: 0 };
        WriterReport { plan, acked, in_flight, unexpected: None }
    }

    fn put(key: &str, value: &str) -> Op {
        Op::Put { key: key.as_bytes().to_vec(), value: value.as_bytes().to_vec() }
    }

    fn txn(n: u64, value: &str) -> Op {
        Op::Txn { n, value: value.as_bytes().to_vec() }
    }

    /// A model at revision 3 holding `k/0/1 = x` (revision 2) and `hot/0 = 5` (revision 3).
    fn model() -> Model {
        let keys = BTreeMap::from([(b"hot/0".to_vec(), version("5", 3)), (b"k/0/1".to_vec(), version("x", 2))]);
        Model { keys, revision: 3, max_acked_revision: 3, acked_revisions: BTreeSet::from([2, 3]) }
    }

    fn check(reports: &[WriterReport], actual: &[(&str, &str, i64)], revision: i64) -> Result<Model, String> {
        let mut model = model();
        let actual = actual.iter().map(|(key, value, mod_revision)| (key.as_bytes().to_vec(), version(value, *mod_revision))).collect();
        check_and_update(&mut model, reports, &actual, revision, &mut Totals::default())?;
        Ok(model)
    }

    const BEFORE: [(&str, &str, i64); 2] = [("hot/0", "5", 3), ("k/0/1", "x", 2)];

    #[test]
    fn accepts_acked_writes_and_in_flight_ones_either_way() {
        let reports = [report(0, vec![(put("k/0/2", "y"), 4)], Some(txn(7, "t")))];
        let applied = [BEFORE[0], BEFORE[1], ("k/0/2", "y", 4), ("t/7/a", "t", 5), ("t/7/b", "t", 5), ("t/7/c", "t", 5)];
        let model = check(&reports, &applied, 5).unwrap();
        assert_eq!(model.keys.len(), 6);
        assert_eq!(model.revision, 5);
        check(&reports, &[BEFORE[0], BEFORE[1], ("k/0/2", "y", 4)], 4).unwrap();
    }

    #[test]
    fn rejects_a_half_applied_txn() {
        let reports = [report(0, vec![], Some(txn(7, "t")))];
        let error = check(&reports, &[BEFORE[0], BEFORE[1], ("t/7/a", "t", 4), ("t/7/b", "t", 4)], 4).unwrap_err();
        assert!(error.contains("half-applied"), "{error}");
    }

    #[test]
    fn rejects_a_lost_acknowledged_write() {
        let reports = [report(0, vec![(put("k/0/2", "y"), 4)], None)];
        let error = check(&reports, &BEFORE, 4).unwrap_err();
        assert!(error.contains("lost acknowledged write"), "{error}");
        let error = check(&reports, &BEFORE, 3).unwrap_err();
        assert!(error.contains("revision 4 was acknowledged"), "{error}");
    }

    #[test]
    fn rejects_a_value_never_written_and_a_wrong_revision() {
        let error = check(&[], &[BEFORE[0], BEFORE[1], ("k/9/9", "z", 3)], 3).unwrap_err();
        assert!(error.contains("never acknowledged"), "{error}");
        let error = check(&[], &[BEFORE[0], ("k/0/1", "other", 2)], 3).unwrap_err();
        assert!(error.contains("expected x"), "{error}");
        let error = check(&[], &[BEFORE[0], ("k/0/1", "x", 3)], 3).unwrap_err();
        assert!(error.contains("mod_revision 3"), "{error}");
    }

    #[test]
    fn rejects_a_hot_key_going_back_and_a_revision_going_back() {
        let hot = Op::Hot { key: b"hot/0".to_vec(), counter: 6 };
        let reports = [report(0, vec![(hot, 4)], None)];
        let error = check(&reports, &BEFORE, 4).unwrap_err();
        assert!(error.contains("counter 6 was acknowledged"), "{error}");
        let error = check(&[], &BEFORE, 2).unwrap_err();
        assert!(error.contains("went backwards"), "{error}");
        let error = check(&[], &BEFORE, 4).unwrap_err();
        assert!(error.contains("expected 3"), "{error}");
    }

    #[test]
    fn rejects_a_delete_that_undid_more_than_itself() {
        let reports = [report(0, vec![], Some(Op::Delete { key: b"k/0/1".to_vec() }))];
        check(&reports, &[BEFORE[0]], 4).unwrap();
        check(&reports, &BEFORE, 3).unwrap();
        let error = check(&reports, &[], 4).unwrap_err();
        assert!(error.contains("lost acknowledged write: hot/0"), "{error}");
    }
}

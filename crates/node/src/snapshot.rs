//! The node's snapshots: taking them without pausing writes, loading the newest valid chain at
//! start-up, segment retention, the snapshot thread that takes them automatically, the online
//! snapshot stream (`strata snapshot save`), the state as records for other formats
//! ([`StateSnapshot`]: etcd's, in `strata-etcd-api`) and the offline restore from a file or any
//! record source ([`restore_from`]). The file format is `strata-snapshot`'s
//! (`docs/formats/snapshot.md`).
//!
//! Taking a snapshot (the thread `strata-snapshot`, at most one at a time into the data directory):
//! 1. *Capture*, under the store's write lock for a moment: the durable revision `R` and the
//!    compacted revision as of it, the log position the writer published with them (last index,
//!    own origin sequence, HLC: [`Snapshots::mark_durable`]), the leases, membership and alarms
//!    (consistent with `R`: the writer changes them under the same lock), the keys changed since
//!    the base for an incremental snapshot, and the *compaction pin* (see `strata_mvcc`'s `image`).
//! 2. *Stream* the keys' versions at or below `R` in chunks of [`SNAPSHOT_CHUNK_KEYS_MAX`] keys,
//!    each under a short read lock, while the writer keeps committing above `R`.
//! 3. *Seal* the file (temp file, fsync, rename, directory fsync), lift the pin, move the revision
//!    index pin to `R` (the base of the next incremental snapshot).
//! 4. *Retention*: keep the newest `--max-snapshots` restore points and their bases, delete the
//!    other snapshots (and damaged ones), fsync `snap/`, then delete the log segments the oldest
//!    kept restore point covers, fsync `log/`.
//!
//! Start-up ([`recover`]): every snapshot header is read; restore points are tried newest first; one
//! that the log cannot continue (its first segment starts after the point's index + 1) or whose
//! chain fails to read or verify is skipped with a warning (and never used as a base again); the
//! first that loads gives the store, lessor and cluster state, and the log is replayed after its
//! index. Without one, the whole log is replayed, but only when the log starts at index 1 and (if
//! it is empty) no snapshot file exists: otherwise data would be silently lost and start-up is
//! refused naming the files.
//!
//! Invariants:
//! - A snapshot holds exactly the state after its log index: everything durable at `R` and
//!   nothing after it, whatever the writer did meanwhile.
//! - Nothing is deleted before the snapshot that makes it unnecessary is durable; segments go only
//!   when every kept restore point covers them.
//! - A snapshot that does not load never stops start-up while another path holds all the data.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use strata_io::FileSystem;
use strata_lease::Lessor;
use strata_mvcc::{KeyImage, Stamp, Store, VersionImage};
use strata_segment_log::SegmentLog;
use strata_snapshot::{
    is_temporary_file_name, parse_snapshot_file_name, remove_snapshot_files, restore_points, retention_plan, snapshot_file_name, AlarmRecord, KeyRecord,
    LeaseRecord, MemberRecord, Record, RemovedMemberRecord, SnapshotBase, SnapshotEncoder, SnapshotError, SnapshotFile, SnapshotHeader, SnapshotReader,
    SnapshotWriter, VersionRecord, SNAPSHOT_DIRECTORY_NAME, WRITER_VERSION_CURRENT,
};
use strata_types::{Hlc, NodeId, Origin, Revision};

use crate::maintenance::ClusterState;
use crate::{LogAlarm, LogClusterChange, LogMember, Manifest, NodeConfig, OpenError, Shared};

/// etcd 3.6's `--snapshot-count`: a snapshot after this many log entries.
pub const SNAPSHOT_COUNT_DEFAULT: u64 = 10_000;
/// A snapshot after this many log bytes, if the entry count did not trigger one first.
pub const SNAPSHOT_LOG_BYTES_DEFAULT: u64 = 256 * 1024 * 1024;
/// etcd's `--max-snapshots`: restore points kept.
pub const MAX_SNAPSHOTS_DEFAULT: usize = 5;
/// Incremental snapshots on top of a full one before the next full one.
pub const SNAPSHOT_INCREMENTS_MAX_DEFAULT: usize = 16;
/// Keys read under one read lock while a snapshot streams.
pub const SNAPSHOT_CHUNK_KEYS_MAX: usize = 1000;
/// After each chunk of keys, a snapshot rests this many times as long as the chunk took (its
/// writes and syncs included), so it takes at most about half a core and half the disk and leaves
/// the rest to the writer and the clients; a snapshot of a million keys then takes about 4 s.
pub const SNAPSHOT_PACING_RATIO: f64 = 1.0;
/// How often the snapshot thread looks whether a snapshot is due.
pub const SNAPSHOT_CHECK_INTERVAL_MILLIS: u64 = 50;
/// After a failed automatic snapshot, the next attempt waits this long.
const SNAPSHOT_RETRY_INTERVAL_MILLIS: u64 = 10_000;
/// Bytes per message of the snapshot stream.
pub const SNAPSHOT_STREAM_CHUNK_BYTES: usize = 1024 * 1024;
/// Stream messages produced ahead of the client.
const SNAPSHOT_STREAM_CHUNKS_AHEAD: usize = 4;
/// The data directory's log folder (the segment log's).
const LOG_DIRECTORY_NAME: &str = "log";

/// When snapshots are taken and how many are kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotPolicy {
    /// A snapshot after this many log entries since the last one (`--snapshot-count`); 0 takes
    /// none automatically (nor by `log_bytes`).
    pub entries: u64,
    /// ... or after this many log bytes since the last one, whichever comes first (0: no byte
    /// trigger).
    pub log_bytes: u64,
    /// Restore points kept (`--max-snapshots`); 0 keeps every snapshot and every log segment.
    pub keep: usize,
    /// Incremental snapshots on top of a full one before the next full one (0: always full). A
    /// full one is also taken once the increments add up to the full one's size.
    pub increments_max: usize,
}

impl Default for SnapshotPolicy {
    fn default() -> SnapshotPolicy {
        SnapshotPolicy {
            entries: SNAPSHOT_COUNT_DEFAULT,
            log_bytes: SNAPSHOT_LOG_BYTES_DEFAULT,
            keep: MAX_SNAPSHOTS_DEFAULT,
            increments_max: SNAPSHOT_INCREMENTS_MAX_DEFAULT,
        }
    }
}

/// A snapshot written into the data directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotCreated {
    pub path: PathBuf,
    pub revision: Revision,
    pub log_index: u64,
    /// The base's revision for an incremental snapshot.
    pub base_revision: Option<Revision>,
    pub bytes: u64,
    pub key_count: u64,
    pub snapshots_removed: usize,
    pub segments_removed: usize,
    pub duration: Duration,
}

/// One message of the snapshot stream: the next bytes of a full snapshot file.
#[derive(Clone, Debug)]
pub struct SnapshotStreamChunk {
    pub bytes: Vec<u8>,
    /// The snapshot's revision.
    pub revision: Revision,
    /// Keys streamed so far, and about how many there are (for progress).
    pub keys_done: u64,
    pub keys_total: u64,
}

/// Where the log stands at the durable point; the writer updates it under the store's write lock.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct DurablePosition {
    pub(crate) log_index: u64,
    /// This node's highest origin sequence.
    pub(crate) sequence: u64,
    pub(crate) hlc: u64,
    /// Log bytes replayed at start-up and appended since.
    pub(crate) log_bytes: u64,
}

/// The newest restore point: the base of the next incremental snapshot.
#[derive(Clone, Copy, Debug)]
struct Latest {
    revision: Revision,
    log_index: u64,
    /// Incremental snapshots on top of the chain's full one.
    increments: usize,
    full_bytes: u64,
    increment_bytes: u64,
    /// `DurablePosition::log_bytes` when it was taken.
    log_bytes: u64,
}

/// What start-up learned about the snapshots, for [`Snapshots`].
pub(crate) struct SnapshotsFound {
    latest: Option<Latest>,
    damaged: BTreeSet<String>,
}

/// The node's snapshot state (in `Shared`).
pub(crate) struct Snapshots {
    file_system: Arc<dyn FileSystem>,
    directory: PathBuf,
    log_directory: PathBuf,
    policy: SnapshotPolicy,
    node_id: u64,
    cluster_id: u64,
    /// The timeframe as of start-up; this node's own entry is taken from `position` at capture.
    timeframe: BTreeMap<u64, u64>,
    position: Mutex<DurablePosition>,
    latest: Mutex<Option<Latest>>,
    /// Revisions pinned against compaction by snapshots in progress, with their counts.
    pins: Mutex<BTreeMap<Revision, usize>>,
    /// Snapshot files that failed to load: never a base, deleted by the next retention.
    damaged: Mutex<BTreeSet<String>>,
    /// Held while a snapshot is written into the data directory: at most one at a time.
    writing: Mutex<()>,
    /// Set when retention deleted segments; the writer then drops them from its log's list.
    segments_removed: AtomicBool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Snapshots {
    pub(crate) fn new(
        file_system: Arc<dyn FileSystem>,
        config: &NodeConfig,
        manifest: &Manifest,
        found: SnapshotsFound,
        timeframe: BTreeMap<u64, u64>,
        position: DurablePosition,
    ) -> Snapshots {
        Snapshots {
            file_system,
            directory: config.data_directory.join(SNAPSHOT_DIRECTORY_NAME),
            log_directory: config.data_directory.join(LOG_DIRECTORY_NAME),
            policy: config.snapshot.clone(),
            node_id: manifest.node_id,
            cluster_id: manifest.cluster_id,
            timeframe,
            position: Mutex::new(position),
            latest: Mutex::new(found.latest),
            pins: Mutex::new(BTreeMap::new()),
            damaged: Mutex::new(found.damaged),
            writing: Mutex::new(()),
            segments_removed: AtomicBool::new(false),
        }
    }

    /// The writer's hook, called under the store's write lock once a batch is durable: where the
    /// log stands, and the bytes the batch appended.
    pub(crate) fn mark_durable(&self, log_index: u64, sequence: u64, hlc: Hlc, appended_bytes: u64) {
        let mut position = lock(&self.position);
        position.log_index = log_index;
        position.sequence = sequence;
        position.hlc = hlc.0;
        position.log_bytes += appended_bytes;
    }

    /// Whether retention deleted segments since the last call (the writer's hook).
    pub(crate) fn take_segments_removed(&self) -> bool {
        self.segments_removed.swap(false, Ordering::Relaxed)
    }

    /// Whether the policy asks for an automatic snapshot now.
    fn due(&self) -> bool {
        if self.policy.entries == 0 {
            return false;
        }
        let position = *lock(&self.position);
        let (log_index, log_bytes) = lock(&self.latest).map_or((0, 0), |latest| (latest.log_index, latest.log_bytes));
        position.log_index.saturating_sub(log_index) >= self.policy.entries
            || (self.policy.log_bytes > 0 && position.log_bytes.saturating_sub(log_bytes) >= self.policy.log_bytes)
    }
}

// ------------------------------------------------------------------------------------ capture

/// Everything a snapshot holds besides the keys, taken at one durable point, and the pin.
struct Capture<'a> {
    header: SnapshotHeader,
    /// For an incremental snapshot: the keys changed since the base.
    changed_keys: Option<Vec<Vec<u8>>>,
    records: Vec<Record>,
    key_count_estimate: u64,
    _pin: Pin<'a>,
}

/// Keeps physical compaction from dropping what a snapshot in progress reads; lifted on drop.
struct Pin<'a> {
    shared: &'a Shared,
    revision: Revision,
}

impl Drop for Pin<'_> {
    fn drop(&mut self) {
        let mut store = self.shared.store.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut pins = lock(&self.shared.snapshots.pins);
        if let Some(count) = pins.get_mut(&self.revision) {
            *count -= 1;
            if *count == 0 {
                pins.remove(&self.revision);
            }
        }
        store.set_compaction_pin(pins.keys().next().copied());
    }
}

/// Takes the capture for a snapshot on top of `base` (full when `None`).
fn capture(shared: &Shared, base: Option<Latest>) -> Capture<'_> {
    let snapshots = &shared.snapshots;
    let mut store = shared.store.write().unwrap_or_else(|poisoned| poisoned.into_inner());
    let (revision, compacted_revision) = store.durable_point();
    let position = *lock(&snapshots.position);
    let incremental = base.filter(|base| base.revision < revision).and_then(|base| store.changed_keys(base.revision, revision).map(|keys| (base, keys)));
    let pin = {
        let mut pins = lock(&snapshots.pins);
        *pins.entry(compacted_revision).or_default() += 1;
        store.set_compaction_pin(pins.keys().next().copied());
        Pin { shared, revision: compacted_revision }
    };
    let mut records = Vec::new();
    {
        let lessor = shared.lessor();
        let mut ids = lessor.leases();
        ids.sort_unstable();
        for id in ids {
            if let Some(lease) = lessor.time_to_live(id, 0, true) {
                records.push(Record::Lease(LeaseRecord { id, ttl_seconds: lease.granted_ttl_seconds, keys: lease.keys }));
            }
        }
    }
    {
        let cluster = shared.cluster.state();
        for member in cluster.members() {
            records.push(Record::Member(MemberRecord { id: member.id, peer_urls: member.peer_urls, is_learner: member.is_learner }));
        }
        for id in cluster.removed_members() {
            records.push(Record::RemovedMember(RemovedMemberRecord { id }));
        }
        for alarm in cluster.alarms(crate::ALARM_NONE) {
            records.push(Record::Alarm(AlarmRecord { member_id: alarm.member_id, alarm: alarm.alarm }));
        }
    }
    records.extend(auth_records(shared).into_iter().map(Record::Auth));
    let mut timeframe = snapshots.timeframe.clone();
    let own = timeframe.entry(snapshots.node_id).or_default();
    *own = (*own).max(position.sequence);
    let header = SnapshotHeader {
        format_version: strata_snapshot::FORMAT_VERSION_CURRENT,
        writer_version: WRITER_VERSION_CURRENT,
        node_id: snapshots.node_id,
        cluster_id: snapshots.cluster_id,
        revision,
        log_index: position.log_index,
        compacted_revision,
        hlc: position.hlc,
        timeframe,
        base: incremental.as_ref().map(|(base, _)| SnapshotBase { revision: base.revision, log_index: base.log_index }),
        created_unix_millis: crate::wall_clock_millis(),
    };
    let key_count_estimate = incremental.as_ref().map_or(store.key_count(), |(_, keys)| keys.len()) as u64;
    Capture { header, changed_keys: incremental.map(|(_, keys)| keys), records, key_count_estimate, _pin: pin }
}

/// The payload of a snapshot's `Auth` record (one per snapshot): the whole auth state.
#[derive(Clone, PartialEq, prost::Message)]
struct AuthSnapshot {
    #[prost(bool, tag = "1")]
    enabled: bool,
    #[prost(uint64, tag = "2")]
    revision: u64,
    #[prost(message, repeated, tag = "3")]
    users: Vec<AuthSnapshotUser>,
    #[prost(message, repeated, tag = "4")]
    roles: Vec<AuthSnapshotRole>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct AuthSnapshotUser {
    #[prost(string, tag = "1")]
    name: String,
    /// The bcrypt hash (empty for a user without password).
    #[prost(bytes = "vec", tag = "2")]
    password_hash: Vec<u8>,
    #[prost(bool, tag = "3")]
    no_password: bool,
    #[prost(string, repeated, tag = "4")]
    roles: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct AuthSnapshotRole {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(message, repeated, tag = "2")]
    permissions: Vec<AuthSnapshotPermission>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct AuthSnapshotPermission {
    /// etcd's `authpb.Permission_Type` number.
    #[prost(int32, tag = "1")]
    kind: i32,
    #[prost(bytes = "vec", tag = "2")]
    key: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    range_end: Vec<u8>,
}

/// The auth state as the payloads of `Auth` records (see `docs/formats/snapshot.md`), taken under
/// the store's write lock with the rest of a capture (the writer publishes auth changes under it).
fn auth_records(shared: &Shared) -> Vec<Vec<u8>> {
    vec![encode_auth_record(&shared.auth.state())]
}

/// The payload of the one `Auth` record a snapshot holds for `state` (users with their bcrypt
/// hashes and roles, roles with their permissions, the enabled flag and the auth revision). For
/// the node's own snapshots and for other formats mapped into snapshot records (etcd's).
pub fn encode_auth_record(state: &strata_auth::AuthState) -> Vec<u8> {
    use prost::Message;
    let snapshot = AuthSnapshot {
        enabled: state.is_enabled(),
        revision: state.revision(),
        users: state
            .users()
            .map(|user| AuthSnapshotUser {
                name: user.name.clone(),
                password_hash: user.password_hash.clone(),
                no_password: user.no_password,
                roles: user.roles.clone(),
            })
            .collect(),
        roles: state
            .roles()
            .map(|role| AuthSnapshotRole {
                name: role.name.clone(),
                permissions: role
                    .permissions
                    .iter()
                    .map(|permission| AuthSnapshotPermission { kind: permission.kind, key: permission.key.clone(), range_end: permission.range_end.clone() })
                    .collect(),
            })
            .collect(),
    };
    snapshot.encode_to_vec()
}

/// The auth state of one `Auth` record's payload ([`encode_auth_record`]'s inverse).
pub fn decode_auth_record(payload: &[u8]) -> Result<strata_auth::AuthState, String> {
    use prost::Message;
    let snapshot = AuthSnapshot::decode(payload).map_err(|error| format!("the auth record does not decode: {error}"))?;
    let users = snapshot
        .users
        .into_iter()
        .map(|user| strata_auth::User { name: user.name, password_hash: user.password_hash, no_password: user.no_password, roles: user.roles })
        .collect();
    let roles = snapshot
        .roles
        .into_iter()
        .map(|role| strata_auth::Role {
            name: role.name,
            permissions: role
                .permissions
                .into_iter()
                .map(|permission| strata_auth::Permission { kind: permission.kind, key: permission.key, range_end: permission.range_end })
                .collect(),
        })
        .collect();
    Ok(strata_auth::AuthState::restore(snapshot.enabled, snapshot.revision, users, roles))
}

/// The auth state of a snapshot's `Auth` records (none: a new store's). A later release that
/// splits the state over several records extends this; this one writes one.
fn restore_auth(records: &[Vec<u8>]) -> Result<strata_auth::AuthState, String> {
    match records {
        [] => Ok(strata_auth::AuthState::new()),
        [payload] => decode_auth_record(payload),
        _ => Err(format!("it holds {} auth records where this release writes one", records.len())),
    }
}

fn key_record(image: KeyImage) -> KeyRecord {
    KeyRecord {
        key: image.key,
        versions: image
            .versions
            .into_iter()
            .map(|version| VersionRecord {
                mod_revision: version.mod_revision,
                sub_revision: version.sub_revision,
                create_revision: version.create_revision,
                version: version.version,
                value: version.value,
                lease: version.lease,
                hlc: version.stamp.hlc.0,
                origin_node: version.stamp.origin.node.0,
                origin_sequence: version.stamp.origin.sequence,
            })
            .collect(),
    }
}

fn key_image(record: KeyRecord) -> KeyImage {
    KeyImage {
        key: record.key,
        versions: record
            .versions
            .into_iter()
            .map(|version| VersionImage {
                mod_revision: version.mod_revision,
                sub_revision: version.sub_revision,
                create_revision: version.create_revision,
                version: version.version,
                value: version.value,
                lease: version.lease,
                stamp: Stamp { hlc: Hlc(version.hlc), origin: Origin { node: NodeId(version.origin_node), sequence: version.origin_sequence } },
            })
            .collect(),
    }
}

/// Streams the capture's records, then its keys in chunks (each under a short read lock), into
/// `sink`; stops with an error when `stop()` says so. Returns the keys written.
fn write_state(
    shared: &Shared,
    capture: &Capture<'_>,
    sink: &mut dyn FnMut(&Record, u64) -> Result<(), String>,
    stop: &dyn Fn() -> bool,
) -> Result<u64, String> {
    for record in &capture.records {
        sink(record, 0)?;
    }
    let revision = capture.header.revision;
    let mut keys_done = 0u64;
    let mut emit = |images: Vec<KeyImage>, sink: &mut dyn FnMut(&Record, u64) -> Result<(), String>| -> Result<(), String> {
        for image in images {
            keys_done += 1;
            sink(&Record::Key(key_record(image)), keys_done)?;
        }
        Ok(())
    };
    match &capture.changed_keys {
        Some(keys) => {
            for chunk in keys.chunks(SNAPSHOT_CHUNK_KEYS_MAX) {
                if stop() {
                    return Err("the snapshot was stopped".to_string());
                }
                let chunk_started = Instant::now();
                let images = shared.store.read().unwrap_or_else(|poisoned| poisoned.into_inner()).images_of(chunk, revision);
                emit(images, sink)?;
                pace(chunk_started);
            }
        }
        None => {
            let mut after: Option<Vec<u8>> = None;
            loop {
                if stop() {
                    return Err("the snapshot was stopped".to_string());
                }
                let chunk_started = Instant::now();
                let (images, next) =
                    shared.store.read().unwrap_or_else(|poisoned| poisoned.into_inner()).image_chunk(after.as_deref(), revision, SNAPSHOT_CHUNK_KEYS_MAX);
                emit(images, sink)?;
                pace(chunk_started);
                match next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
        }
    }
    Ok(keys_done)
}

/// After a chunk, the snapshot rests as long as the chunk took ([`SNAPSHOT_PACING_RATIO`]).
fn pace(chunk_started: Instant) {
    std::thread::sleep(chunk_started.elapsed().mul_f64(SNAPSHOT_PACING_RATIO));
}

// ------------------------------------------------------------------------ as records

/// A full snapshot of a node's state at one durable point, as records ([`crate::Node::state_snapshot`]):
/// the header (revision, compacted revision, log index, HLC, timeframe), then with
/// [`StateSnapshot::records`] the leases, members, removed members, alarms and auth state (taken
/// with the revision), then every key with its versions at or below the revision, in key order.
/// While it lives, the compaction pin keeps physical compaction from dropping what it reads.
///
/// Invariant: the same state gives the same header (`created_unix_millis` aside) and the same
/// records in the same order, so a format built from them (etcd's, online and offline) is the
/// same too.
pub struct StateSnapshot<'a> {
    shared: &'a Shared,
    capture: Capture<'a>,
}

impl StateSnapshot<'_> {
    pub fn header(&self) -> &SnapshotHeader {
        &self.capture.header
    }

    /// About how many keys [`StateSnapshot::records`] will hand out (for progress).
    pub fn key_count_estimate(&self) -> u64 {
        self.capture.key_count_estimate
    }

    /// Hands every record to `sink`; the keys are read in chunks under short read locks, so writes
    /// go on meanwhile. Blocking: call it from a thread that may wait. An error of `sink` stops it.
    pub fn records(self, sink: &mut dyn FnMut(&Record) -> Result<(), String>) -> Result<(), String> {
        write_state(self.shared, &self.capture, &mut |record, _| sink(record), &|| false).map(|_| ())
    }
}

// ------------------------------------------------------------------------ into the data dir

/// Takes a snapshot into the data directory (incremental when the policy allows and `full` is
/// false), then applies retention.
pub(crate) fn take(shared: &Shared, full: bool, stop: &dyn Fn() -> bool) -> Result<SnapshotCreated, String> {
    let snapshots = &shared.snapshots;
    let _writing = lock(&snapshots.writing);
    let started = Instant::now();
    let latest = *lock(&snapshots.latest);
    let policy = &snapshots.policy;
    let base =
        latest.filter(|latest| !full && policy.increments_max > 0 && latest.increments < policy.increments_max && latest.increment_bytes < latest.full_bytes);
    let capture = capture(shared, base);
    let header = capture.header.clone();
    let file_name = snapshot_file_name(header.revision, header.base.map(|base| base.revision));
    let error = |error: SnapshotError| error.to_string();
    let mut writer = SnapshotWriter::create(snapshots.file_system.clone(), &snapshots.directory, &file_name, &header).map_err(error)?;
    let written = write_state(shared, &capture, &mut |record, _| writer.append(record).map_err(error), stop);
    if let Err(message) = written {
        writer.abandon();
        return Err(message);
    }
    let path = writer.path().to_path_buf();
    let summary = writer.finish().map_err(error)?;
    drop(capture);
    let log_bytes = lock(&snapshots.position).log_bytes;
    let next = match (header.base, latest) {
        (Some(_), Some(latest)) => Latest {
            revision: header.revision,
            log_index: header.log_index,
            increments: latest.increments + 1,
            full_bytes: latest.full_bytes,
            increment_bytes: latest.increment_bytes + summary.bytes,
            log_bytes,
        },
        _ => Latest { revision: header.revision, log_index: header.log_index, increments: 0, full_bytes: summary.bytes, increment_bytes: 0, log_bytes },
    };
    *lock(&snapshots.latest) = Some(next);
    shared.store.write().unwrap_or_else(|poisoned| poisoned.into_inner()).set_revision_index_pin(Some(header.revision));
    let (snapshots_removed, segments_removed) = retain(snapshots)?;
    if segments_removed > 0 {
        snapshots.segments_removed.store(true, Ordering::Relaxed);
    }
    let created = SnapshotCreated {
        path,
        revision: header.revision,
        log_index: header.log_index,
        base_revision: header.base.map(|base| base.revision),
        bytes: summary.bytes,
        key_count: summary.key_count,
        snapshots_removed,
        segments_removed,
        duration: started.elapsed(),
    };
    tracing::info!(
        file = %created.path.display(),
        revision = created.revision,
        log_index = created.log_index,
        incremental = created.base_revision.is_some(),
        keys = created.key_count,
        bytes = created.bytes,
        snapshots_removed,
        segments_removed,
        took_ms = created.duration.as_millis() as u64,
        "saved snapshot"
    );
    Ok(created)
}

/// Every snapshot file in `directory` with its header, and the names of those whose header does
/// not read (a newer format's included).
fn list_snapshots(file_system: &dyn FileSystem, directory: &Path) -> Result<(Vec<SnapshotFile>, Vec<(String, SnapshotError)>), SnapshotError> {
    let mut files = Vec::new();
    let mut unreadable = Vec::new();
    if !file_system.exists(directory).map_err(|source| SnapshotError::Io { path: directory.to_path_buf(), source })? {
        return Ok((files, unreadable));
    }
    for path in file_system.list(directory).map_err(|source| SnapshotError::Io { path: directory.to_path_buf(), source })? {
        let Some(name) = path.file_name().and_then(|name| name.to_str()).map(str::to_string) else { continue };
        if parse_snapshot_file_name(&name).is_none() {
            continue;
        }
        match SnapshotReader::open(file_system, &path) {
            Ok(reader) => files.push(SnapshotFile { file_name: name, header: reader.header().clone() }),
            Err(error) => unreadable.push((name, error)),
        }
    }
    Ok((files, unreadable))
}

/// Retention (see the module documentation); returns the snapshots and segments deleted.
fn retain(snapshots: &Snapshots) -> Result<(usize, usize), String> {
    let file_system = snapshots.file_system.as_ref();
    let (mut files, unreadable) = list_snapshots(file_system, &snapshots.directory).map_err(|error| error.to_string())?;
    let damaged = lock(&snapshots.damaged).clone();
    let mut doomed: Vec<String> = unreadable.into_iter().map(|(name, _)| name).collect();
    doomed.extend(files.iter().filter(|file| damaged.contains(&file.file_name)).map(|file| file.file_name.clone()));
    files.retain(|file| !damaged.contains(&file.file_name));
    let plan = retention_plan(&files, snapshots.policy.keep);
    doomed.extend(plan.delete.iter().map(|&position| files[position].file_name.clone()));
    doomed.sort();
    doomed.dedup();
    remove_snapshot_files(file_system, &snapshots.directory, &doomed).map_err(|error| format!("cannot delete old snapshots: {error}"))?;
    lock(&snapshots.damaged).retain(|name| !doomed.contains(name));
    let segments_removed = match plan.log_covered_through {
        Some(covered) => SegmentLog::remove_segments_through(file_system, &snapshots.log_directory, covered).map_err(|error| error.to_string())?.len(),
        None => 0,
    };
    Ok((doomed.len(), segments_removed))
}

// ------------------------------------------------------------------------------ the stream

/// Streams a full snapshot of the node's state now (online backup), in chunks of about
/// [`SNAPSHOT_STREAM_CHUNK_BYTES`], from a thread of its own. Dropping the receiver stops it.
pub(crate) fn stream(shared: Arc<Shared>) -> tokio::sync::mpsc::Receiver<Result<SnapshotStreamChunk, String>> {
    let (sender, receiver) = tokio::sync::mpsc::channel(SNAPSHOT_STREAM_CHUNKS_AHEAD);
    let failure = sender.clone();
    let spawned = std::thread::Builder::new().name("strata-snapshot-stream".into()).spawn(move || {
        if let Err(message) = stream_into(&shared, &sender) {
            let _ = sender.blocking_send(Err(message));
        }
    });
    if let Err(error) = spawned {
        let _ = failure.try_send(Err(format!("cannot start the snapshot stream thread: {error}")));
    }
    receiver
}

fn stream_into(shared: &Shared, sender: &tokio::sync::mpsc::Sender<Result<SnapshotStreamChunk, String>>) -> Result<(), String> {
    let capture = capture(shared, None);
    let revision = capture.header.revision;
    let keys_total = capture.key_count_estimate;
    let mut encoder = SnapshotEncoder::new(&capture.header);
    let gone = || sender.is_closed();
    let send = |bytes: Vec<u8>, keys_done: u64| -> Result<(), String> {
        sender.blocking_send(Ok(SnapshotStreamChunk { bytes, revision, keys_done, keys_total })).map_err(|_| "the client went away".to_string())
    };
    let keys_done = write_state(
        shared,
        &capture,
        &mut |record, keys_done| {
            encoder.append(record);
            if encoder.buffered_bytes() >= SNAPSHOT_STREAM_CHUNK_BYTES {
                send(encoder.take(), keys_done)?;
            }
            Ok(())
        },
        &gone,
    )?;
    drop(capture);
    let (bytes, _) = encoder.finish();
    send(bytes, keys_done)
}

// ------------------------------------------------------------------------------ the thread

enum SnapshotCommand {
    Create { full: bool, reply: tokio::sync::oneshot::Sender<Result<SnapshotCreated, String>> },
}

/// The snapshot thread: takes automatic snapshots when due and explicit ones when asked. It stops
/// when told to, or when the node (holding the command channel) is dropped; a snapshot in
/// progress is abandoned.
pub(crate) struct SnapshotTask {
    commands: Option<Sender<SnapshotCommand>>,
    stopping: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl SnapshotTask {
    pub(crate) fn start(shared: Arc<Shared>) -> std::io::Result<SnapshotTask> {
        let (commands, received) = std::sync::mpsc::channel();
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = stopping.clone();
        let handle = std::thread::Builder::new().name("strata-snapshot".into()).spawn(move || run(&shared, &received, &stop))?;
        Ok(SnapshotTask { commands: Some(commands), stopping, handle: Some(handle) })
    }

    /// Asks for a snapshot now; the answer comes when it is written (and retention applied).
    pub(crate) fn request(&self, full: bool) -> Result<tokio::sync::oneshot::Receiver<Result<SnapshotCreated, String>>, String> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let commands = self.commands.as_ref().ok_or("the snapshot thread has stopped")?;
        commands.send(SnapshotCommand::Create { full, reply }).map_err(|_| "the snapshot thread has stopped".to_string())?;
        Ok(answer)
    }

    /// Stops the thread (abandoning a snapshot in progress) and waits for it.
    pub(crate) async fn stop(mut self) {
        self.stopping.store(true, Ordering::Relaxed);
        self.commands = None;
        if let Some(handle) = self.handle.take() {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }
}

impl Drop for SnapshotTask {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::Relaxed);
        self.commands = None;
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

fn run(shared: &Shared, commands: &Receiver<SnapshotCommand>, stopping: &AtomicBool) {
    let stop = || stopping.load(Ordering::Relaxed);
    let mut retry_after: Option<Instant> = None;
    loop {
        match commands.recv_timeout(Duration::from_millis(SNAPSHOT_CHECK_INTERVAL_MILLIS)) {
            Ok(SnapshotCommand::Create { full, reply }) => {
                let _ = reply.send(take(shared, full, &stop));
            }
            Err(RecvTimeoutError::Timeout) => {
                if stop() || retry_after.is_some_and(|after| Instant::now() < after) || !shared.snapshots.due() {
                    continue;
                }
                match take(shared, false, &stop) {
                    Ok(_) => retry_after = None,
                    Err(error) => {
                        tracing::warn!(%error, "automatic snapshot failed; retrying later");
                        retry_after = Some(Instant::now() + Duration::from_millis(SNAPSHOT_RETRY_INTERVAL_MILLIS));
                    }
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if stop() {
            return;
        }
    }
}

// ------------------------------------------------------------------------------ start-up

/// The state start-up rebuilds before replaying the log.
pub(crate) struct Recovered {
    pub(crate) store: Store,
    pub(crate) lessor: Lessor,
    pub(crate) cluster: ClusterState,
    pub(crate) auth_state: strata_auth::AuthState,
    pub(crate) hlc: Hlc,
    /// This node's highest origin sequence.
    pub(crate) sequence: u64,
    pub(crate) timeframe: BTreeMap<u64, u64>,
    /// The log index the loaded snapshot covers (0: replay everything).
    pub(crate) start_after: u64,
    pub(crate) found: SnapshotsFound,
}

/// What a chain of snapshots holds once applied.
#[derive(Default)]
struct Image {
    keys: Vec<KeyImage>,
    records: Vec<Record>,
    header: SnapshotHeader,
}

/// Loads the newest restore point that loads and that the log continues, or the empty state (see
/// the module documentation).
pub(crate) fn recover(file_system: &dyn FileSystem, config: &NodeConfig, manifest: &Manifest, lessor_id_seed: u64) -> Result<Recovered, OpenError> {
    let node_id = manifest.node_id;
    let fresh = |found: SnapshotsFound| Recovered {
        store: Store::new(),
        lessor: Lessor::new(lessor_id_seed),
        cluster: ClusterState::new(node_id, &config.name, &config.advertise_peer_urls),
        auth_state: strata_auth::AuthState::new(),
        hlc: Hlc::default(),
        sequence: 0,
        timeframe: BTreeMap::new(),
        start_after: 0,
        found,
    };
    let directory = config.data_directory.join(SNAPSHOT_DIRECTORY_NAME);
    let log_directory = config.data_directory.join(LOG_DIRECTORY_NAME);
    remove_temporary_files(file_system, &directory)?;
    let (files, unreadable) = list_snapshots(file_system, &directory).map_err(|error| OpenError(error.to_string()))?;
    let mut damaged = BTreeSet::new();
    for (name, error) in &unreadable {
        if let SnapshotError::UnsupportedFormat { .. } = error {
            return Err(OpenError(error.to_string()));
        }
        tracing::warn!(snapshot = %name, %error, "skipping a snapshot whose header does not read");
        damaged.insert(name.clone());
    }
    let log_firsts = SegmentLog::segment_first_indexes(file_system, &log_directory).map_err(|error| OpenError(error.to_string()))?;
    for point in restore_points(&files) {
        let newest = &files[*point.chain.last().expect("a chain has a snapshot")];
        if point.chain.iter().any(|&position| damaged.contains(&files[position].file_name)) {
            continue;
        }
        if log_firsts.first().is_some_and(|&first| first > point.log_index.saturating_add(1)) {
            tracing::warn!(snapshot = %newest.file_name, log_index = point.log_index, log_starts_at = log_firsts[0], "skipping a snapshot the log does not continue");
            continue;
        }
        let newest_position = *point.chain.last().expect("a chain has a snapshot");
        let loaded = load_chain(file_system, &directory, &files, &point.chain)
            .and_then(|image| into_state(image, config, manifest, lessor_id_seed).map_err(|error| (newest_position, error)));
        match loaded {
            Ok(mut recovered) => {
                let full_bytes = file_length(file_system, &directory, &files[point.chain[0]].file_name);
                let increment_bytes = point.chain[1..].iter().map(|&position| file_length(file_system, &directory, &files[position].file_name)).sum();
                recovered.found = SnapshotsFound {
                    latest: Some(Latest {
                        revision: point.revision,
                        log_index: point.log_index,
                        increments: point.chain.len() - 1,
                        full_bytes,
                        increment_bytes,
                        log_bytes: 0,
                    }),
                    damaged,
                };
                tracing::info!(snapshot = %newest.file_name, revision = point.revision, log_index = point.log_index, chain = point.chain.len(), "loaded snapshot");
                return Ok(recovered);
            }
            Err((position, error)) => {
                let name = &files[position].file_name;
                tracing::warn!(snapshot = %name, %error, "skipping a snapshot that does not load; falling back to an older one or to the log");
                damaged.insert(name.clone());
            }
        }
    }
    let any_snapshot = !files.is_empty() || !unreadable.is_empty();
    match log_firsts.first() {
        Some(&first) if first > 1 => {
            let names: Vec<&str> = files.iter().map(|file| file.file_name.as_str()).chain(unreadable.iter().map(|(name, _)| name.as_str())).collect();
            Err(OpenError(format!(
                "the log in {} starts at index {first}, and no snapshot that covers the records before it loads (snapshots: {}); \
                 nothing was modified: restore the data directory from a backup (strata snapshot restore)",
                log_directory.display(),
                if names.is_empty() { "none".to_string() } else { names.join(", ") }
            )))
        }
        None if any_snapshot => Err(OpenError(format!(
            "no snapshot in {} loads and the log is empty: starting would lose the snapshots' data; nothing was modified",
            directory.display()
        ))),
        _ => {
            if any_snapshot {
                tracing::warn!("no snapshot loads; replaying the whole log");
            }
            Ok(fresh(SnapshotsFound { latest: None, damaged }))
        }
    }
}

fn file_length(file_system: &dyn FileSystem, directory: &Path, name: &str) -> u64 {
    file_system.file_len(&directory.join(name)).unwrap_or(0)
}

/// Removes snapshots that were being written when the process stopped.
fn remove_temporary_files(file_system: &dyn FileSystem, directory: &Path) -> Result<(), OpenError> {
    let io_error = |error: std::io::Error| OpenError(format!("{}: {error}", directory.display()));
    if !file_system.exists(directory).map_err(io_error)? {
        return Ok(());
    }
    let mut removed = false;
    for path in file_system.list(directory).map_err(io_error)? {
        if path.file_name().and_then(|name| name.to_str()).is_some_and(is_temporary_file_name) {
            file_system.remove(&path).map_err(io_error)?;
            removed = true;
        }
    }
    if removed {
        file_system.sync_dir(directory).map_err(io_error)?;
    }
    Ok(())
}

/// Reads and applies a chain, base first; an error names the position of the file that failed.
fn load_chain(file_system: &dyn FileSystem, directory: &Path, files: &[SnapshotFile], chain: &[usize]) -> Result<Image, (usize, String)> {
    let mut image = Image::default();
    for &position in chain {
        let path = directory.join(&files[position].file_name);
        let failed = |error: String| (position, error);
        let mut reader = SnapshotReader::open(file_system, &path).map_err(|error| failed(error.to_string()))?;
        let header = reader.header().clone();
        let mut keys: Vec<KeyImage> = Vec::new();
        let mut records = Vec::new();
        while let Some(record) = reader.next_record().map_err(|error| failed(error.to_string()))? {
            match record {
                Record::Key(record) => match keys.last_mut() {
                    Some(last) if last.key == record.key => last.versions.extend(key_image(record).versions),
                    Some(last) if last.key > record.key => return Err(failed(format!("{}: keys out of order", path.display()))),
                    _ => keys.push(key_image(record)),
                },
                other => records.push(other),
            }
        }
        image.keys = if header.base.is_some() {
            merge_keys(std::mem::take(&mut image.keys), keys)
        } else {
            keys.into_iter().filter(|key| !key.versions.is_empty()).collect()
        };
        image.records = records;
        image.header = header;
    }
    Ok(image)
}

/// The keys of a base with an increment applied: the increment's keys replace the base's (a key
/// without versions goes). Both are sorted; so is the result.
fn merge_keys(base: Vec<KeyImage>, increment: Vec<KeyImage>) -> Vec<KeyImage> {
    let mut merged = Vec::with_capacity(base.len() + increment.len());
    let mut base = base.into_iter().peekable();
    for changed in increment {
        while base.peek().is_some_and(|key| key.key < changed.key) {
            merged.extend(base.next());
        }
        if base.peek().is_some_and(|key| key.key == changed.key) {
            base.next();
        }
        if !changed.versions.is_empty() {
            merged.push(changed);
        }
    }
    merged.extend(base);
    merged
}

/// The store, lessor and cluster state of an applied chain.
fn into_state(image: Image, config: &NodeConfig, manifest: &Manifest, lessor_id_seed: u64) -> Result<Recovered, String> {
    let Image { keys, records, header } = image;
    let failed = |error: String| error;
    let mut store = Store::from_image(keys, header.revision, header.compacted_revision).map_err(failed)?;
    store.set_revision_index_pin(Some(header.revision));
    let mut lessor = Lessor::new(lessor_id_seed);
    let mut cluster = ClusterState::new(manifest.node_id, &config.name, &config.advertise_peer_urls);
    let mut auth = Vec::new();
    for record in records {
        match record {
            Record::Lease(lease) => {
                lessor.grant(lease.id, lease.ttl_seconds, 0).map_err(|error| failed(format!("lease {:x}: {error}", lease.id)))?;
                for key in &lease.keys {
                    lessor.attach(key, lease.id);
                }
            }
            Record::Member(member) => {
                let change = LogMember { id: member.id, peer_urls: member.peer_urls, is_learner: member.is_learner };
                let change = if member.id == manifest.node_id {
                    LogClusterChange { member_update: Some(LogMember { is_learner: false, ..change }), ..LogClusterChange::default() }
                } else {
                    LogClusterChange { member_add: Some(change), ..LogClusterChange::default() }
                };
                cluster.apply(&change);
            }
            Record::RemovedMember(removed) => {
                cluster.apply(&LogClusterChange { member_remove: Some(removed.id), ..LogClusterChange::default() });
            }
            Record::Alarm(alarm) => {
                cluster.apply(&LogClusterChange {
                    alarm_activate: Some(LogAlarm { member_id: alarm.member_id, alarm: alarm.alarm }),
                    ..LogClusterChange::default()
                });
            }
            Record::Auth(bytes) => auth.push(bytes),
            Record::Key(_) => unreachable!("keys were taken out by load_chain"),
        }
    }
    let auth_state = restore_auth(&auth).map_err(failed)?;
    Ok(Recovered {
        store,
        lessor,
        cluster,
        auth_state,
        hlc: Hlc(header.hlc),
        sequence: header.timeframe.get(&manifest.node_id).copied().unwrap_or(0),
        timeframe: header.timeframe.clone(),
        start_after: header.log_index,
        found: SnapshotsFound { latest: None, damaged: BTreeSet::new() },
    })
}

// ------------------------------------------------------------------------------ restore

/// What `strata snapshot restore` made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreReport {
    /// The snapshot written into the new data directory.
    pub path: PathBuf,
    pub revision: Revision,
    pub key_count: u64,
    pub bytes: u64,
    /// The new member's and cluster's ids.
    pub member_id: u64,
    pub cluster_id: u64,
}

/// The origin node of versions that have none yet: [`restore_from`] stamps them, and the
/// header's timeframe entry for it, with the new member's id. Formats without stamps (etcd's)
/// are mapped into records with this origin, since the new member's id is chosen only by the
/// restore.
pub const ORIGIN_RESTORING_NODE: u64 = 0;

/// Where [`restore_from`] takes a full snapshot's records from: a Strata snapshot file
/// ([`restore_snapshot`]) or another format mapped into records (etcd's, in `strata-etcd-api`).
pub trait RestoreSource {
    /// What the records are the state of; its node and cluster ids and writer version are
    /// replaced by the new member's, the rest is kept.
    fn header(&self) -> &SnapshotHeader;
    /// The next record, keys in ascending key order; `Ok(None)` once every record was handed out
    /// (and, for a file, the whole file verified).
    fn next_record(&mut self) -> Result<Option<Record>, String>;
    /// How far along the source is, as `(done, total)` in a unit of its own (bytes, records).
    fn progress(&self) -> (u64, u64);
}

/// A Strata snapshot file as a [`RestoreSource`]: verified as it is read.
struct FileSource {
    reader: SnapshotReader,
}

impl RestoreSource for FileSource {
    fn header(&self) -> &SnapshotHeader {
        self.reader.header()
    }

    fn next_record(&mut self) -> Result<Option<Record>, String> {
        self.reader.next_record().map_err(|error| error.to_string())
    }

    fn progress(&self) -> (u64, u64) {
        (self.reader.position(), self.reader.file_length())
    }
}

/// Restores a full snapshot file (as `strata snapshot save` writes it) into a new data directory,
/// as etcdctl's `snapshot restore` does (see [`restore_from`]). The file is verified as it is
/// copied; `progress(bytes read, file size)` is called now and then.
pub fn restore_snapshot(file: &Path, config: &NodeConfig, progress: &mut dyn FnMut(u64, u64)) -> Result<RestoreReport, String> {
    let file_system = strata_io::RealFileSystem::new();
    let reader = SnapshotReader::open(&file_system, file).map_err(|error| error.to_string())?;
    if let Some(base) = reader.header().base {
        return Err(format!(
            "{} is an incremental snapshot (on top of revision {}); restore takes a full snapshot, as strata snapshot save writes",
            file.display(),
            base.revision
        ));
    }
    restore_from(&mut FileSource { reader }, config, progress)
}

/// Restores the records of `source` into a new data directory: the data directory must not exist
/// (or be empty); the node gets new member and cluster ids from `config` (a restored node is a new
/// member and a new origin), its membership is itself alone and its alarms are cleared; keys with
/// their history, leases, auth and the timeframe are kept, versions of origin
/// [`ORIGIN_RESTORING_NODE`] are stamped with the new member's id. `progress(done, total)` (the
/// source's unit) is called now and then. The log of the new directory starts after the header's
/// log index, so the snapshot is the only way to its data: start-up never replays past it. On an
/// error of the source, the snapshot's temporary file is removed and no manifest is written (an
/// empty `snap/` may remain; callers that must leave nothing build in a directory of their own).
pub fn restore_from(source: &mut dyn RestoreSource, config: &NodeConfig, progress: &mut dyn FnMut(u64, u64)) -> Result<RestoreReport, String> {
    let file_system: Arc<dyn FileSystem> = Arc::new(strata_io::RealFileSystem::new());
    let directory = &config.data_directory;
    let io_error = |path: &Path, error: std::io::Error| format!("{}: {error}", path.display());
    if file_system.exists(directory).map_err(|error| io_error(directory, error))?
        && !file_system.list(directory).map_err(|error| io_error(directory, error))?.is_empty()
    {
        return Err(format!("data-dir {:?} exists", directory.display().to_string()));
    }
    let source_header = source.header().clone();
    if let Some(base) = source_header.base {
        return Err(format!("an incremental snapshot (on top of revision {}) cannot be restored on its own", base.revision));
    }
    file_system.create_dir_all(directory).map_err(|error| io_error(directory, error))?;
    let manifest = crate::new_manifest(config);
    let mut timeframe = source_header.timeframe.clone();
    if let Some(sequence) = timeframe.remove(&ORIGIN_RESTORING_NODE) {
        let own = timeframe.entry(manifest.node_id).or_default();
        *own = (*own).max(sequence);
    }
    let header = SnapshotHeader {
        node_id: manifest.node_id,
        cluster_id: manifest.cluster_id,
        writer_version: WRITER_VERSION_CURRENT,
        created_unix_millis: crate::wall_clock_millis(),
        timeframe,
        ..source_header
    };
    let snapshot_directory = directory.join(SNAPSHOT_DIRECTORY_NAME);
    let file_name = snapshot_file_name(header.revision, None);
    let mut writer = SnapshotWriter::create(file_system.clone(), &snapshot_directory, &file_name, &header).map_err(|error| error.to_string())?;
    let member = MemberRecord { id: manifest.node_id, peer_urls: config.advertise_peer_urls.clone(), is_learner: false };
    let copied = (|| -> Result<(), String> {
        let error = |error: SnapshotError| error.to_string();
        writer.append(&Record::Member(member)).map_err(error)?;
        let mut count = 0u64;
        while let Some(record) = source.next_record()? {
            match record {
                Record::Member(_) | Record::RemovedMember(_) | Record::Alarm(_) => {}
                Record::Key(mut key) => {
                    for version in &mut key.versions {
                        if version.origin_node == ORIGIN_RESTORING_NODE {
                            version.origin_node = manifest.node_id;
                        }
                    }
                    writer.append(&Record::Key(key)).map_err(error)?;
                }
                other => writer.append(&other).map_err(error)?,
            }
            count += 1;
            if count % RESTORE_PROGRESS_RECORDS == 0 {
                let (done, total) = source.progress();
                progress(done, total);
            }
        }
        let (_, total) = source.progress();
        progress(total, total);
        Ok(())
    })();
    if let Err(message) = copied {
        writer.abandon();
        return Err(message);
    }
    let path = writer.path().to_path_buf();
    let summary = writer.finish().map_err(|error| error.to_string())?;
    manifest.store(file_system.as_ref(), directory).map_err(|error| io_error(directory, error))?;
    Ok(RestoreReport {
        path,
        revision: header.revision,
        key_count: summary.key_count,
        bytes: summary.bytes,
        member_id: manifest.node_id,
        cluster_id: manifest.cluster_id,
    })
}

/// A restore reports progress after this many records.
const RESTORE_PROGRESS_RECORDS: u64 = 1024;

impl crate::Node {
    /// Takes a snapshot into the data directory now, as the automatic trigger does (a full one
    /// when `full`, otherwise incremental when the policy allows), then applies retention.
    pub async fn create_snapshot(&self, full: bool) -> Result<SnapshotCreated, String> {
        let answer = {
            let task = lock(&self.snapshot_task);
            task.as_ref().ok_or("the node is shutting down")?.request(full)?
        };
        answer.await.map_err(|_| "the snapshot thread has stopped".to_string())?
    }

    /// A full snapshot of the node's state as of now, as the bytes of a snapshot file in chunks
    /// (online backup). Writes go on meanwhile; dropping the receiver stops it.
    pub fn snapshot_stream(&self) -> tokio::sync::mpsc::Receiver<Result<SnapshotStreamChunk, String>> {
        stream(self.shared.clone())
    }

    /// A full snapshot of the node's state as of now, to be read as records (see
    /// [`StateSnapshot`]): the point is taken here, under the store's write lock for a moment.
    pub fn state_snapshot(&self) -> StateSnapshot<'_> {
        StateSnapshot { shared: &self.shared, capture: capture(&self.shared, None) }
    }
}

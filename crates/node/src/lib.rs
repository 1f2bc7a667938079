//! A Strata node: opens a data directory (lock, manifest, log replay), runs the one writer task
//! that evaluates write requests, logs their effects with group commit and publishes them, and
//! serves reads from the MVCC store at the durable revision.
//!
//! Data flow of a write: a frontend calls [`Node::write`]; the request waits in a bounded queue;
//! the writer drains a batch, evaluates each request in order against the newest state, appends
//! one log record per changing request, makes the batch durable with one `fdatasync`, marks the
//! store durable (readers now see the batch), hands its events to the watch hub (`watch.rs`) and
//! only then answers every request of the batch.
//!
//! Invariants:
//! - No reader sees a revision that is not durable: reads use [`strata_mvcc::Store::durable_revision`].
//! - A client is answered only after the batch holding its request is durable; if the batch
//!   cannot be made durable every request in it fails and the store is rolled back, and the node
//!   refuses further writes (after a failed fsync nothing about the file is known).
//! - Only this crate and `strata-io` touch the data directory.

mod auth;
pub mod check;
mod compactor;
pub mod directory;
mod entry;
mod leases;
mod maintenance;
mod manifest;
pub mod metrics;
mod snapshot;
mod watch;
pub mod watch_index;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use strata_io::{FileSystem, LockFile};
use strata_lease::{LeaseError, Lessor};
use strata_mvcc::{
    DeleteRangeRequest, DeleteRangeResponse, KvError, PutRequest, PutResponse, RangeRequest,
    RangeResponse, Store, TxnRequest, TxnResponse,
};
use strata_segment_log::{LogOptions, SegmentLog};
use strata_types::{Hlc, NodeId, Revision};
use tokio::sync::{mpsc, oneshot};

pub use entry::{LogChange, LogChangeKind, LogEntry, LogLeaseGrant};
pub use leases::{LEASE_EXPIRY_CHECK_INTERVAL_MILLIS, LEASE_REVOKES_PER_CHECK_MAX};
pub use entry::{LogAlarm, LogClusterChange, LogMember};
pub use auth::{
    check_txn, AuthConfig, Caller, JwtConfig, TokenConfig, AUTH_TOKEN_TTL_DEFAULT_SECONDS, BCRYPT_COST_DEFAULT, BCRYPT_COST_MAX, BCRYPT_COST_MIN,
    JWT_TTL_DEFAULT_SECONDS,
};
pub use entry::{LogAuthChange, LogRolePermission, LogUser, LogUserRole};
pub use maintenance::{
    quota_bytes_from_flag, quota_cost_bytes, Alarm, AlarmAction, ClusterError, ClusterRequest, ClusterResponse, Member, ALARM_CORRUPT,
    ALARM_NONE, ALARM_NOSPACE,
};
pub use manifest::{Manifest, MANIFEST_FILE_NAME, MANIFEST_FORMAT_VERSION};
pub use snapshot::{
    restore_snapshot, RestoreReport, SnapshotCreated, SnapshotPolicy, SnapshotStreamChunk, MAX_SNAPSHOTS_DEFAULT, SNAPSHOT_CHUNK_KEYS_MAX,
    SNAPSHOT_COUNT_DEFAULT, SNAPSHOT_INCREMENTS_MAX_DEFAULT, SNAPSHOT_LOG_BYTES_DEFAULT,
};
pub use snapshot::{decode_auth_record, encode_auth_record, restore_from, RestoreSource, StateSnapshot, ORIGIN_RESTORING_NODE};
pub use strata_mvcc::{AutoCompaction, REVISION_CHECK_INTERVAL_MILLIS};
pub use watch::{
    WatchCreate, WatchError, WatchResponse, WatchStream, CATCH_UP_REVISIONS_MAX, WATCHER_BUFFER_RESPONSES_MAX, WATCH_ID_NONE,
    WATCH_PROGRESS_NOTIFY_INTERVAL_DEFAULT_MILLIS,
};

/// The version this binary reports to etcd clients (Status, `/version`). etcd clients gate
/// features on it, so it names the etcd release whose API Strata serves.
pub const ETCD_API_VERSION: &str = "3.5.17";
/// The cluster version, as etcd reports it (major.minor.0).
pub const ETCD_CLUSTER_VERSION: &str = "3.5.0";
/// Strata's own release.
pub const STRATA_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Requests waiting for the writer; a full queue makes callers wait (back-pressure).
pub const WRITE_QUEUE_DEPTH_MAX: usize = 4096;
/// Requests evaluated and made durable together, at most.
pub const WRITE_BATCH_REQUESTS_MAX: usize = 1024;
/// Keys physical compaction visits before it lets the writer take new requests.
pub const COMPACTION_STEP_KEYS_MAX: usize = 1000;

#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub name: String,
    pub data_directory: PathBuf,
    /// Used, with the name, to derive the ids of a new member and cluster.
    pub initial_cluster_token: String,
    pub advertise_peer_urls: Vec<String>,
    pub segment_bytes_max: u64,
    /// etcd's `--quota-backend-bytes` (see [`quota_bytes_from_flag`]): writes that would take
    /// `db_size` to it raise the NOSPACE alarm.
    pub quota_backend_bytes: u64,
    /// How often watchers that asked for progress notifications get one (etcd's
    /// `--experimental-watch-progress-notify-interval`).
    pub watch_progress_notify_interval: std::time::Duration,
    /// Tokens (`--auth-token`, `--auth-token-ttl`) and password hashing (`--bcrypt-cost`).
    pub auth: AuthConfig,
    /// When snapshots are taken and how many are kept (`--snapshot-count`, `--max-snapshots`).
    pub snapshot: SnapshotPolicy,
    /// etcd's `--auto-compaction-mode` and `--auto-compaction-retention`; `None`: off.
    pub auto_compaction: Option<AutoCompaction>,
    /// The storage format new files are written in (`--storage-format`, `strata_types::formats`):
    /// the newest by default, an older one to keep the directory readable by an older release.
    pub storage_format: u32,
}

impl NodeConfig {
    pub fn new(name: &str, data_directory: &Path) -> NodeConfig {
        NodeConfig {
            name: name.to_string(),
            data_directory: data_directory.to_path_buf(),
            initial_cluster_token: "etcd-cluster".to_string(),
            advertise_peer_urls: vec!["http://localhost:2380".to_string()],
            segment_bytes_max: LogOptions::default().segment_bytes_max,
            quota_backend_bytes: strata_types::limits::QUOTA_BACKEND_BYTES_DEFAULT,
            watch_progress_notify_interval: std::time::Duration::from_millis(WATCH_PROGRESS_NOTIFY_INTERVAL_DEFAULT_MILLIS),
            auth: AuthConfig::default(),
            snapshot: SnapshotPolicy::default(),
            auto_compaction: None,
            storage_format: strata_types::formats::STORAGE_FORMAT_NEWEST,
        }
    }
}

/// A write request, in Strata's own types.
#[derive(Clone, Debug)]
pub enum WriteRequest {
    Put(PutRequest),
    DeleteRange(DeleteRangeRequest),
    Txn(TxnRequest),
    Compact { revision: Revision, physical: bool },
    /// etcd's LeaseGrant: `id` 0 lets the node choose; `ttl` in seconds.
    LeaseGrant { id: i64, ttl: i64 },
    /// etcd's LeaseRevoke: deletes the lease's keys in one revision.
    LeaseRevoke { id: i64 },
    /// A membership change or an alarm (de)activation (see `maintenance`).
    Cluster(ClusterRequest),
    /// A change to users, roles or the enabled flag (see `auth`); passwords already hashed.
    Auth(strata_auth::AuthRequest),
}

#[derive(Clone, Debug)]
pub enum WriteResponse {
    Put(PutResponse),
    DeleteRange(DeleteRangeResponse),
    Txn(TxnResponse),
    /// The header revision of a compaction.
    Compact(Revision),
    /// The granted lease (its TTL raised to the minimum) and the header revision.
    LeaseGrant { id: i64, ttl: i64, revision: Revision },
    /// The header revision: after the lease's keys were deleted.
    LeaseRevoke { revision: Revision },
    Cluster(ClusterResponse),
    /// The header revision of an auth change (auth changes do not bump it).
    Auth { revision: Revision },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeError {
    Kv(KvError),
    Lease(LeaseError),
    Cluster(ClusterError),
    /// Refused by auth: a permission or admin check, or the auth change's own checks.
    Auth(strata_auth::AuthError),
    /// The NOSPACE alarm is active, or this write would take `db_size` to the quota.
    NoSpace,
    /// A CORRUPT alarm is active: writes are refused until it is disarmed.
    Corrupt,
    /// The node is shutting down or its writer has stopped.
    Stopped,
    /// The log could not be written; the request was not applied.
    Storage(String),
}

impl From<KvError> for NodeError {
    fn from(error: KvError) -> Self {
        NodeError::Kv(error)
    }
}

impl From<LeaseError> for NodeError {
    fn from(error: LeaseError) -> Self {
        NodeError::Lease(error)
    }
}

impl std::fmt::Display for NodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeError::Kv(error) => error.fmt(f),
            NodeError::Lease(error) => error.fmt(f),
            NodeError::Cluster(error) => error.fmt(f),
            NodeError::Auth(error) => error.fmt(f),
            NodeError::NoSpace => f.write_str("etcdserver: mvcc: database space exceeded"),
            NodeError::Corrupt => f.write_str("etcdserver: corrupt cluster"),
            NodeError::Stopped => f.write_str("etcdserver: server stopped"),
            NodeError::Storage(message) => write!(f, "strata: storage error, the request was not applied: {message}"),
        }
    }
}

impl std::error::Error for NodeError {}

/// What went wrong opening a data directory. The message says what and where.
#[derive(Debug)]
pub struct OpenError(pub String);

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OpenError {}

/// What a node reports in Maintenance.Status.
#[derive(Clone, Debug)]
pub struct NodeStatus {
    pub revision: Revision,
    pub compacted_revision: Revision,
    pub log_bytes: u64,
    pub last_log_index: u64,
}

pub(crate) struct Shared {
    pub(crate) store: RwLock<Store>,
    pub(crate) log_bytes: std::sync::atomic::AtomicU64,
    pub(crate) last_log_index: std::sync::atomic::AtomicU64,
    /// The durable leases; the writer applies a batch's lease changes once the batch is durable.
    pub(crate) lessor: std::sync::Mutex<Lessor>,
    /// Lease expiry runs on this monotonic clock (milliseconds since the node opened).
    pub(crate) lease_clock: std::time::Instant,
    /// Woken when a durable batch changed leases (keep-alives of expired leases wait on it).
    pub(crate) leases_changed: tokio::sync::Notify,
    /// The watchers; the writer publishes each durable batch to it.
    pub(crate) watches: Arc<watch::WatchHub>,
    /// Membership, alarms and the quota; the writer publishes a batch's changes once durable.
    pub(crate) cluster: maintenance::Cluster,
    /// Users, roles and tokens; the writer publishes a batch's auth changes once durable.
    pub(crate) auth: auth::Auth,
    /// Counters and histograms for `/metrics` (relaxed atomics).
    pub(crate) metrics: metrics::NodeMetrics,
    /// Snapshots: the durable log position, the newest restore point, compaction pins.
    pub(crate) snapshots: snapshot::Snapshots,
}

pub struct Node {
    shared: Arc<Shared>,
    manifest: Manifest,
    queue: mpsc::Sender<writer::Command>,
    writer: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    lease_expiry: std::sync::Mutex<Option<leases::ExpiryTask>>,
    watch_catch_up: std::sync::Mutex<Option<watch::CatchUpTask>>,
    snapshot_task: std::sync::Mutex<Option<snapshot::SnapshotTask>>,
    compactor: std::sync::Mutex<Option<compactor::CompactorTask>>,
    _lock: Option<LockFile>,
}

impl Node {
    /// Opens (or initializes) the data directory on the real disk and starts the writer.
    pub fn open(config: NodeConfig) -> Result<Node, OpenError> {
        let fs: Arc<dyn FileSystem> = Arc::new(strata_io::RealFileSystem::new());
        fs.create_dir_all(&config.data_directory)
            .map_err(|error| OpenError(format!("cannot create data directory {}: {error}", config.data_directory.display())))?;
        let lock = LockFile::acquire(&config.data_directory).map_err(|error| OpenError(error.to_string()))?;
        Node::open_with(fs, config, Some(lock))
    }

    /// Opens the data directory through `fs` (the simulated disk in tests).
    pub fn open_with(fs: Arc<dyn FileSystem>, config: NodeConfig, lock: Option<LockFile>) -> Result<Node, OpenError> {
        let directory = &config.data_directory;
        let storage_format = strata_types::formats::storage_format(config.storage_format).ok_or_else(|| {
            OpenError(format!(
                "storage format {} is not one this binary writes (1 to {})",
                config.storage_format,
                strata_types::formats::STORAGE_FORMAT_NEWEST
            ))
        })?;
        // Before anything is created or changed: every file must be one this binary reads.
        directory::survey(fs.as_ref(), directory).map_err(OpenError)?;
        fs.create_dir_all(directory).map_err(|error| OpenError(format!("{}: {error}", directory.display())))?;
        let manifest = match Manifest::load(fs.as_ref(), directory).map_err(OpenError)? {
            Some(manifest) => manifest,
            None => {
                let manifest = new_manifest(&config);
                manifest
                    .store(fs.as_ref(), directory)
                    .map_err(|error| OpenError(format!("cannot write {}: {error}", directory.join(MANIFEST_FILE_NAME).display())))?;
                manifest
            }
        };

        let node_id = manifest.node_id;
        // The newest snapshot that loads (or the empty state); the log is replayed after it.
        let snapshot::Recovered { mut store, mut lessor, mut cluster, mut auth_state, mut hlc, mut sequence, mut timeframe, start_after, found } =
            snapshot::recover(fs.as_ref(), &config, &manifest, strata_lease::id_seed(node_id, wall_clock_millis()))?;
        let mut log_bytes = 0u64;
        let mut replay = |index: u64, payload: &[u8]| -> Result<(), String> {
            use prost::Message;
            let entry = LogEntry::decode(payload).map_err(|error| format!("log record {index} does not decode: {error}"))?;
            log_bytes += payload.len() as u64;
            hlc = hlc.max(Hlc(entry.hlc));
            if entry.origin_node == node_id {
                sequence = sequence.max(entry.origin_sequence);
            }
            if entry.origin_node != 0 {
                let highest = timeframe.entry(entry.origin_node).or_default();
                *highest = (*highest).max(entry.origin_sequence);
            }
            if let Some(revision) = entry.compact_revision {
                store.apply_compaction(revision);
                return Ok(());
            }
            if let Some(change) = &entry.cluster {
                return cluster.replay(index, change);
            }
            if let Some(change) = &entry.auth {
                return auth::replay(&mut auth_state, index, change);
            }
            let changes = entry.changes()?;
            // A lease grant, or a revoke of a lease without keys, changes no key: no new revision.
            let lease_only = leases::is_lease_only(&entry);
            let expected = store.current_revision() + i64::from(!lease_only);
            if entry.revision != expected {
                return Err(format!("log record {index} has revision {} where {expected} was expected", entry.revision));
            }
            if !lease_only {
                store.apply(entry.revision, &changes, entry.stamp());
            }
            leases::replay(&mut lessor, index, &entry)
        };
        let options = LogOptions {
            node_id,
            format_version: storage_format.segment,
            cluster_id: manifest.cluster_id,
            segment_bytes_max: config.segment_bytes_max,
            ..LogOptions::default()
        };
        let recovered = SegmentLog::open_after(fs.clone(), &directory.join("log"), options, start_after, &mut replay)
            .map_err(|error| OpenError(error.to_string()))?;
        if recovered.truncated_tail_bytes > 0 {
            tracing::warn!(bytes = recovered.truncated_tail_bytes, "truncated a torn tail of the log (writes that were never acknowledged)");
        }
        store.mark_durable();
        while !store.compact_step(usize::MAX) {}
        // Replay held every version at once; the space is counted as packed anew (see maintenance).
        store.defragment();

        let auth = auth::Auth::new(auth_state, &config.auth).map_err(OpenError)?;
        let lease_clock = std::time::Instant::now();
        // As etcd's new leader: every lease gets its full TTL again (expiry is not logged).
        lessor.promote(0);
        let watches = Arc::new(watch::WatchHub::new(store.durable_revision(), config.watch_progress_notify_interval));
        let shared = Arc::new(Shared {
            store: RwLock::new(store),
            log_bytes: log_bytes.into(),
            last_log_index: recovered.log.last_index().into(),
            lessor: std::sync::Mutex::new(lessor),
            lease_clock,
            leases_changed: tokio::sync::Notify::new(),
            watches,
            cluster: maintenance::Cluster::new(cluster, config.quota_backend_bytes),
            auth,
            metrics: metrics::NodeMetrics::default(),
            snapshots: snapshot::Snapshots::new(
                fs.clone(),
                &config,
                &manifest,
                found,
                timeframe,
                snapshot::DurablePosition { log_index: recovered.log.last_index(), sequence, hlc: hlc.0, log_bytes },
            ),
        });
        shared.metrics.log_segments.set(i64::try_from(recovered.log.segment_count()).unwrap_or(i64::MAX));
        let (queue, receiver) = mpsc::channel(WRITE_QUEUE_DEPTH_MAX);
        let writer = writer::Writer::new(shared.clone(), recovered.log, NodeId(node_id), hlc, sequence);
        let handle = std::thread::Builder::new()
            .name("strata-writer".into())
            .spawn(move || writer.run(receiver))
            .map_err(|error| OpenError(format!("cannot start the writer thread: {error}")))?;
        let lease_expiry = leases::ExpiryTask::start(shared.clone(), queue.downgrade())
            .map_err(|error| OpenError(format!("cannot start the lease expiry thread: {error}")))?;
        let watch_catch_up =
            watch::CatchUpTask::start(shared.clone()).map_err(|error| OpenError(format!("cannot start the watch catch-up thread: {error}")))?;
        let snapshot_task = snapshot::SnapshotTask::start(shared.clone()).map_err(|error| OpenError(format!("cannot start the snapshot thread: {error}")))?;
        let compactor = match config.auto_compaction {
            Some(mode) => Some(
                compactor::CompactorTask::start(shared.clone(), queue.downgrade(), mode)
                    .map_err(|error| OpenError(format!("cannot start the compactor thread: {error}")))?,
            ),
            None => None,
        };
        Ok(Node {
            shared,
            manifest,
            queue,
            writer: std::sync::Mutex::new(Some(handle)),
            lease_expiry: std::sync::Mutex::new(Some(lease_expiry)),
            watch_catch_up: std::sync::Mutex::new(Some(watch_catch_up)),
            snapshot_task: std::sync::Mutex::new(Some(snapshot_task)),
            compactor: std::sync::Mutex::new(compactor),
            _lock: lock,
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn member_id(&self) -> u64 {
        self.manifest.node_id
    }

    pub fn cluster_id(&self) -> u64 {
        self.manifest.cluster_id
    }

    /// Sends a write to the writer and waits until it is durable (or failed). The node's own
    /// writes: no permission checks (clients' writes go through [`Node::write_as`]).
    pub async fn write(&self, request: WriteRequest) -> Result<WriteResponse, NodeError> {
        self.write_as(request, Caller::Node).await
    }

    /// [`Node::write`] for `caller`: the writer checks its permissions when auth is enabled.
    pub async fn write_as(&self, request: WriteRequest, caller: Caller) -> Result<WriteResponse, NodeError> {
        self.admit(&request).await?;
        self.enqueue_as(request, caller).await
    }

    /// Queues a write of the node's own for the writer, past the quota check.
    pub(crate) async fn enqueue(&self, request: WriteRequest) -> Result<WriteResponse, NodeError> {
        self.enqueue_as(request, Caller::Node).await
    }

    async fn enqueue_as(&self, request: WriteRequest, caller: Caller) -> Result<WriteResponse, NodeError> {
        let (reply, response) = oneshot::channel();
        let _pending = metrics::PendingProposal::start(&self.shared.metrics.proposals_pending);
        self.queue.send(writer::Command { request, reply, caller }).await.map_err(|_| NodeError::Stopped)?;
        response.await.map_err(|_| NodeError::Stopped)?
    }

    /// Range at the durable revision.
    pub fn range(&self, request: &RangeRequest) -> Result<RangeResponse, KvError> {
        self.shared.metrics.ranges.increment();
        let store = self.shared.store.read().expect("store lock poisoned");
        store.range(request, store.durable_revision())
    }

    /// A read-only txn at the durable revision.
    pub fn txn_read(&self, request: &TxnRequest) -> Result<TxnResponse, KvError> {
        let store = self.shared.store.read().expect("store lock poisoned");
        let response = store.txn_read(request, store.durable_revision())?;
        drop(store);
        self.shared.metrics.add_read_txn(request, &response);
        Ok(response)
    }

    pub fn status(&self) -> NodeStatus {
        let store = self.shared.store.read().expect("store lock poisoned");
        NodeStatus {
            revision: store.durable_revision(),
            compacted_revision: store.compacted_revision(),
            log_bytes: self.shared.log_bytes.load(std::sync::atomic::Ordering::Relaxed),
            last_log_index: self.shared.last_log_index.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// The durable revision readers see.
    pub fn revision(&self) -> Revision {
        self.shared.store.read().expect("store lock poisoned").durable_revision()
    }

    /// Stops taking writes, lets the writer finish what it has, and waits for it.
    pub async fn shutdown(&self) {
        let compactor = self.compactor.lock().expect("compactor lock").take();
        if let Some(compactor) = compactor {
            compactor.stop().await;
        }
        let snapshot_task = self.snapshot_task.lock().expect("snapshot task lock").take();
        if let Some(snapshot_task) = snapshot_task {
            snapshot_task.stop().await;
        }
        let lease_expiry = self.lease_expiry.lock().expect("lease expiry lock").take();
        if let Some(lease_expiry) = lease_expiry {
            lease_expiry.stop().await;
        }
        let watch_catch_up = self.watch_catch_up.lock().expect("watch catch-up lock").take();
        if let Some(watch_catch_up) = watch_catch_up {
            watch_catch_up.stop().await;
        }
        let (reply, done) = oneshot::channel();
        if self.queue.send(writer::Command::shutdown(reply)).await.is_ok() {
            let _ = done.await;
        }
        let handle = self.writer.lock().expect("writer handle lock").take();
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }
}

/// A new member's manifest: ids derived from the name, peer URLs, cluster token and the time,
/// as etcd derives a new member's id.
fn new_manifest(config: &NodeConfig) -> Manifest {
    use std::hash::{Hash, Hasher};
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (&config.name, &config.advertise_peer_urls, &config.initial_cluster_token, now.as_nanos()).hash(&mut hasher);
    let node_id = hasher.finish() | 1;
    config.initial_cluster_token.hash(&mut hasher);
    let cluster_id = hasher.finish() | 1;
    Manifest {
        format_family: "strata".into(),
        cluster_id,
        node_id,
        name: config.name.clone(),
        cluster_version: ETCD_CLUSTER_VERSION.into(),
        writer_version: STRATA_VERSION.into(),
    }
}

/// Milliseconds of wall-clock time: the one place the node reads the clock.
pub(crate) fn wall_clock_millis() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis() as u64)
}

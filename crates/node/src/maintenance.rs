//! Maintenance and membership of a single-member cluster, answered as a single-member etcd answers
//! them: the member list (this member and at most one learner that never starts), alarms with the
//! space quota that raises NOSPACE, defragment, the key-space hashes and leader moves.
//!
//! How the state stays consistent and durable:
//! - Membership changes and alarm (de)activations are [`ClusterRequest`]s: they go through the
//!   writer like any write, in order with the others, and each one that changes something logs one
//!   entry with a [`LogClusterChange`] (log entry field 9; no key changes, no new revision). The
//!   writer evaluates them against a [`ClusterBatch`], a copy of the durable [`ClusterState`] that
//!   later requests of the batch see; the copy replaces the durable state only once the batch is
//!   durable. Replay applies the same changes to a fresh state, so membership and alarms survive a
//!   restart.
//! - The quota check sits at the front of the write path ([`Node::admit`], before the request is
//!   queued), as etcd's sits in front of its proposals: a write that would add data (a put, a txn
//!   with a put, a lease grant) is refused with `NoSpace` while a NOSPACE alarm is active, and when
//!   `db_size` + the request's cost reaches the quota the node first raises NOSPACE for itself
//!   (durably) and then refuses. Reads, deletes, compaction, defragment and `alarm disarm` still
//!   work, as in etcd. (etcd checks the quota even before a request's own checks, so an invalid
//!   put over the quota gets NOSPACE there and its validation error here.)
//! - A CORRUPT alarm (raised by a client: Strata does not check its data against peers) refuses
//!   every write but membership and alarms with etcd's `corrupt cluster`, as etcd does; reads go on.
//! - Sizes come from the store's account of what its versions would take in etcd's file
//!   (`strata_mvcc::SpaceUsage`). Defragment lowers `db_size` to what is in use at once and never
//!   stops writes (it takes the store's lock for a moment). It is not logged: a restart packs the
//!   replayed versions like a defragment does.
//!
//! Invariants: this member is always in the list and never a learner; every other member is an
//! unstarted learner; at most one learner (etcd's limit); an alarm is identified by its member id
//! and type, and is listed at most once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

use strata_mvcc::{KvError, RequestOp, SpaceUsage, Stamp, TxnRequest};
use strata_types::Revision;

use crate::{LogAlarm, LogClusterChange, LogEntry, LogMember, Node, NodeError, Shared, WriteRequest, WriteResponse};

/// etcd's `AlarmType` numbers. Other numbers are kept and listed as they came, as etcd does.
pub const ALARM_NONE: i32 = 0;
pub const ALARM_NOSPACE: i32 = 1;
pub const ALARM_CORRUPT: i32 = 2;

/// etcd's quota cost of a stored key beside its key and value bytes (`kvOverhead`).
pub const QUOTA_KEY_OVERHEAD_BYTES: u64 = 256;
/// etcd's quota cost of a lease grant (`leaseOverhead`).
pub const QUOTA_LEASE_OVERHEAD_BYTES: u64 = 64;
/// etcd's limit on learners in a cluster (`maxLearners`).
pub const LEARNERS_MAX: usize = 1;

/// The quota for etcd's `--quota-backend-bytes`: 0 is etcd's default (2 GiB), a negative value
/// disables the quota, as in etcd.
pub fn quota_bytes_from_flag(flag: i64) -> u64 {
    match flag {
        flag if flag < 0 => u64::MAX,
        0 => strata_types::limits::QUOTA_BACKEND_BYTES_DEFAULT,
        flag => flag.unsigned_abs(),
    }
}

/// A member as Cluster.MemberList lists it. Only this member is started: it has a name (and, in
/// the API, client URLs); a learner added by MemberAdd has neither until it starts, which it
/// never does on a single-member Strata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub id: u64,
    pub name: String,
    pub peer_urls: Vec<String>,
    pub is_learner: bool,
    /// This node.
    pub is_self: bool,
}

/// An active alarm: the member it was raised for and etcd's `AlarmType` number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Alarm {
    pub member_id: u64,
    pub alarm: i32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlarmAction {
    Activate,
    Deactivate,
}

/// A change to membership or alarms; goes through the writer (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterRequest {
    /// Peer URLs already validated and sorted, as etcd's API layer does.
    MemberAdd {
        peer_urls: Vec<String>,
        is_learner: bool,
    },
    MemberRemove {
        id: u64,
    },
    MemberUpdate {
        id: u64,
        peer_urls: Vec<String>,
    },
    MemberPromote {
        id: u64,
    },
    Alarm {
        action: AlarmAction,
        member_id: u64,
        alarm: i32,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterResponse {
    /// The members after the change (by id), and the member MemberAdd added.
    Members { added: Option<Member>, members: Vec<Member> },
    /// The alarm activated or deactivated (none if it was not active).
    Alarms(Vec<Alarm>),
}

/// Membership and alarm errors, each etcd's (see `strata-etcd-api`'s error table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterError {
    /// `etcdserver: member not found`
    MemberNotFound,
    /// `etcdserver: Peer URLs already exists`
    PeerUrlExists,
    /// `etcdserver: can only promote a learner member`
    MemberNotLearner,
    /// `etcdserver: can only promote a learner member which is in sync with leader`
    LearnerNotReady,
    /// `etcdserver: too many learner members in cluster`
    TooManyLearners,
    /// `etcdserver: re-configuration failed due to not enough started members`
    NotEnoughStartedMembers,
    /// `etcdserver: bad leader transferee`
    BadLeaderTransferee,
}

impl std::fmt::Display for ClusterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ClusterError::MemberNotFound => "etcdserver: member not found",
            ClusterError::PeerUrlExists => "etcdserver: Peer URLs already exists",
            ClusterError::MemberNotLearner => "etcdserver: can only promote a learner member",
            ClusterError::LearnerNotReady => "etcdserver: can only promote a learner member which is in sync with leader",
            ClusterError::TooManyLearners => "etcdserver: too many learner members in cluster",
            ClusterError::NotEnoughStartedMembers => "etcdserver: re-configuration failed due to not enough started members",
            ClusterError::BadLeaderTransferee => "etcdserver: bad leader transferee",
        })
    }
}

impl std::error::Error for ClusterError {}

/// One member's record: its peer URLs and whether it is a learner.
#[derive(Clone, Debug, PartialEq, Eq)]
struct MemberRecord {
    peer_urls: Vec<String>,
    is_learner: bool,
}

/// Membership and alarms. Pure: requests in, responses and the change to log out.
#[derive(Clone, Debug)]
pub(crate) struct ClusterState {
    self_id: u64,
    self_name: String,
    members: BTreeMap<u64, MemberRecord>,
    /// Ids once members and removed since: etcd answers them as not found, and never reuses them.
    removed: BTreeSet<u64>,
    /// Ordered by type, then member.
    alarms: BTreeSet<(i32, u64)>,
}

impl ClusterState {
    pub(crate) fn new(self_id: u64, self_name: &str, self_peer_urls: &[String]) -> ClusterState {
        let mut members = BTreeMap::new();
        members.insert(self_id, MemberRecord { peer_urls: self_peer_urls.to_vec(), is_learner: false });
        ClusterState { self_id, self_name: self_name.to_string(), members, removed: BTreeSet::new(), alarms: BTreeSet::new() }
    }

    pub(crate) fn members(&self) -> Vec<Member> {
        self.members
            .iter()
            .map(|(&id, record)| Member {
                id,
                name: if id == self.self_id { self.self_name.clone() } else { String::new() },
                peer_urls: record.peer_urls.clone(),
                is_learner: record.is_learner,
                is_self: id == self.self_id,
            })
            .collect()
    }

    fn member(&self, id: u64) -> Option<Member> {
        self.members().into_iter().find(|member| member.id == id)
    }

    /// The active alarms of type `alarm` (`ALARM_NONE`: of every type), by type then member.
    pub(crate) fn alarms(&self, alarm: i32) -> Vec<Alarm> {
        self.alarms.iter().filter(|(kind, _)| alarm == ALARM_NONE || *kind == alarm).map(|&(alarm, member_id)| Alarm { member_id, alarm }).collect()
    }

    /// The ids of members removed since (never reused), for snapshots.
    pub(crate) fn removed_members(&self) -> Vec<u64> {
        self.removed.iter().copied().collect()
    }

    pub(crate) fn has_alarm(&self, alarm: i32) -> bool {
        self.alarms.iter().any(|(kind, _)| *kind == alarm)
    }

    /// etcd's MoveLeader on the leader of a single-member cluster: moving to itself succeeds at
    /// once; any other id (unknown, or a learner) is a bad transferee.
    pub(crate) fn move_leader(&self, target_id: u64) -> Result<(), ClusterError> {
        if target_id == self.self_id {
            Ok(())
        } else {
            Err(ClusterError::BadLeaderTransferee)
        }
    }

    /// Evaluates a request in etcd's order of checks, applies it to this state and returns the
    /// answer and the change to log (none when nothing changed). `new_member_id` is the id a
    /// MemberAdd gives its member (unused by other requests).
    pub(crate) fn evaluate(&mut self, request: &ClusterRequest, new_member_id: u64) -> Result<(ClusterResponse, Option<LogClusterChange>), ClusterError> {
        match request {
            ClusterRequest::MemberAdd { peer_urls, is_learner } => {
                // etcd's --strict-reconfig-check: a voting member that can never start would cost
                // this member its quorum; etcd 3.4 accepts it (its one-member exception) and then
                // stops taking writes for good, Strata refuses it.
                if !is_learner {
                    return Err(ClusterError::NotEnoughStartedMembers);
                }
                if self.members.values().any(|record| record.peer_urls.iter().any(|url| peer_urls.contains(url))) {
                    return Err(ClusterError::PeerUrlExists);
                }
                if self.members.values().filter(|record| record.is_learner).count() + 1 > LEARNERS_MAX {
                    return Err(ClusterError::TooManyLearners);
                }
                let change = LogMember { id: new_member_id, peer_urls: peer_urls.clone(), is_learner: *is_learner };
                let change = LogClusterChange { member_add: Some(change), ..LogClusterChange::default() };
                self.apply(&change);
                let added = self.member(new_member_id);
                Ok((ClusterResponse::Members { added, members: self.members() }, Some(change)))
            }
            ClusterRequest::MemberRemove { id } => {
                let learner = self.members.get(id).is_some_and(|record| record.is_learner);
                // The strict check counts the started voting members left: none if this one goes.
                if *id == self.self_id && !learner {
                    return Err(ClusterError::NotEnoughStartedMembers);
                }
                if !self.members.contains_key(id) {
                    return Err(ClusterError::MemberNotFound);
                }
                let change = LogClusterChange { member_remove: Some(*id), ..LogClusterChange::default() };
                self.apply(&change);
                Ok((ClusterResponse::Members { added: None, members: self.members() }, Some(change)))
            }
            ClusterRequest::MemberUpdate { id, peer_urls } => {
                let Some(record) = self.members.get(id) else { return Err(ClusterError::MemberNotFound) };
                let others = self.members.iter().filter(|(other, _)| *other != id);
                if others.flat_map(|(_, other)| &other.peer_urls).any(|url| peer_urls.contains(url)) {
                    return Err(ClusterError::PeerUrlExists);
                }
                // etcd 3.4 forgets that an updated learner is one (etcd-io/etcd#21694, fixed in
                // 3.5 and 3.6); Strata keeps it, as the fixed releases do.
                let change = LogMember { id: *id, peer_urls: peer_urls.clone(), is_learner: record.is_learner };
                let change = LogClusterChange { member_update: Some(change), ..LogClusterChange::default() };
                self.apply(&change);
                Ok((ClusterResponse::Members { added: None, members: self.members() }, Some(change)))
            }
            ClusterRequest::MemberPromote { id } => match self.members.get(id) {
                None => Err(ClusterError::MemberNotFound),
                // A learner that never started has nothing of the log: never in sync.
                Some(record) if record.is_learner => Err(ClusterError::LearnerNotReady),
                Some(_) => Err(ClusterError::MemberNotLearner),
            },
            ClusterRequest::Alarm { action, member_id, alarm } => {
                let present = self.alarms.contains(&(*alarm, *member_id));
                let listed = Alarm { member_id: *member_id, alarm: *alarm };
                let logged = LogAlarm { member_id: *member_id, alarm: *alarm };
                let change = match action {
                    // Activating an active alarm answers it again and changes nothing.
                    AlarmAction::Activate if present => None,
                    AlarmAction::Activate => Some(LogClusterChange { alarm_activate: Some(logged), ..LogClusterChange::default() }),
                    AlarmAction::Deactivate if !present => return Ok((ClusterResponse::Alarms(Vec::new()), None)),
                    AlarmAction::Deactivate => Some(LogClusterChange { alarm_deactivate: Some(logged), ..LogClusterChange::default() }),
                };
                if let Some(change) = &change {
                    self.apply(change);
                }
                Ok((ClusterResponse::Alarms(vec![listed]), change))
            }
        }
    }

    /// Applies a logged change (evaluation and replay alike). An entry that sets none of the
    /// changes this release knows came from a newer release: an error naming it.
    pub(crate) fn apply(&mut self, change: &LogClusterChange) -> bool {
        let mut known = false;
        if let Some(member) = &change.member_add {
            self.members.insert(member.id, MemberRecord { peer_urls: member.peer_urls.clone(), is_learner: member.is_learner });
            known = true;
        }
        if let Some(id) = change.member_remove {
            self.members.remove(&id);
            self.removed.insert(id);
            known = true;
        }
        if let Some(member) = &change.member_update {
            self.members.insert(member.id, MemberRecord { peer_urls: member.peer_urls.clone(), is_learner: member.is_learner });
            known = true;
        }
        if let Some(alarm) = &change.alarm_activate {
            self.alarms.insert((alarm.alarm, alarm.member_id));
            known = true;
        }
        if let Some(alarm) = &change.alarm_deactivate {
            self.alarms.remove(&(alarm.alarm, alarm.member_id));
            known = true;
        }
        known
    }

    /// Replays one logged change; `index` names the record in errors.
    pub(crate) fn replay(&mut self, index: u64, change: &LogClusterChange) -> Result<(), String> {
        if self.apply(change) {
            Ok(())
        } else {
            Err(format!("log record {index} holds a cluster change this release does not know (written by a newer release?)"))
        }
    }

    /// A member id nobody has or had, derived from the peer URLs, the time and a seed.
    fn new_member_id(&self, peer_urls: &[String], now_millis: u64) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut attempt = 0u64;
        loop {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            (self.self_id, peer_urls, now_millis, attempt).hash(&mut hasher);
            let id = hasher.finish();
            if id != 0 && !self.members.contains_key(&id) && !self.removed.contains(&id) {
                return id;
            }
            attempt += 1;
        }
    }
}

/// The durable cluster state and the quota, shared by the node and its writer.
pub(crate) struct Cluster {
    state: Mutex<ClusterState>,
    quota_bytes: u64,
}

impl Cluster {
    pub(crate) fn new(state: ClusterState, quota_bytes: u64) -> Cluster {
        Cluster { state: Mutex::new(state), quota_bytes }
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, ClusterState> {
        self.state.lock().expect("cluster state lock poisoned")
    }

    /// The quota in bytes (`etcd_server_quota_backend_bytes`).
    pub(crate) fn quota_bytes(&self) -> u64 {
        self.quota_bytes
    }
}

/// The writer's view of the cluster state during one batch: a copy made at the batch's first
/// cluster request, published once the batch is durable (dropped if it is not).
#[derive(Default)]
pub(crate) struct ClusterBatch {
    pending: Option<ClusterState>,
}

impl ClusterBatch {
    /// Evaluates one cluster request of the batch; the entry to log, if it changed something.
    /// Cluster entries change no key: their revision is the current one, as a compaction's.
    pub(crate) fn evaluate(
        &mut self,
        shared: &Shared,
        revision: Revision,
        stamp: Stamp,
        request: &ClusterRequest,
    ) -> (Result<WriteResponse, NodeError>, Option<LogEntry>) {
        let state = self.pending.get_or_insert_with(|| shared.cluster.state().clone());
        let new_member_id = match request {
            ClusterRequest::MemberAdd { peer_urls, .. } => state.new_member_id(peer_urls, crate::wall_clock_millis()),
            _ => 0,
        };
        match state.evaluate(request, new_member_id) {
            Ok((response, change)) => {
                let entry = change.map(|change| LogEntry { cluster: Some(change), ..LogEntry::from_changes(revision, stamp, &[]) });
                (Ok(WriteResponse::Cluster(response)), entry)
            }
            Err(error) => (Err(NodeError::Cluster(error)), None),
        }
    }

    /// The batch is durable: its cluster changes become the node's.
    pub(crate) fn publish(self, shared: &Shared) {
        if let Some(state) = self.pending {
            *shared.cluster.state() = state;
        }
    }
}

/// etcd's quota cost of a write (`backendQuota.Cost`): a put's key and value plus overhead; a
/// txn's larger branch of puts (only its own puts: etcd does not look into nested txns); a lease
/// grant's overhead. Writes that add nothing (deletes, compactions, …) cost 0 and always pass.
pub fn quota_cost_bytes(request: &WriteRequest) -> u64 {
    fn put_cost(key: &[u8], value: &[u8]) -> u64 {
        QUOTA_KEY_OVERHEAD_BYTES + key.len() as u64 + value.len() as u64
    }
    fn branch_cost(ops: &[RequestOp]) -> u64 {
        ops.iter().map(|op| if let RequestOp::Put(put) = op { put_cost(&put.key, &put.value) } else { 0 }).sum()
    }
    fn txn_cost(txn: &TxnRequest) -> u64 {
        branch_cost(&txn.success).max(branch_cost(&txn.failure))
    }
    match request {
        WriteRequest::Put(put) => put_cost(&put.key, &put.value),
        WriteRequest::Txn(txn) => txn_cost(txn),
        WriteRequest::LeaseGrant { .. } => QUOTA_LEASE_OVERHEAD_BYTES,
        _ => 0,
    }
}

/// Whether etcd refuses this write while a CORRUPT alarm is active (its `applierV3Corrupt`):
/// every write that goes through its consensus; membership, alarms and auth changes do not.
fn corrupt_refuses(request: &WriteRequest) -> bool {
    !matches!(request, WriteRequest::Cluster(_) | WriteRequest::Auth(_))
}

impl Node {
    /// The quota check at the front of the write path (see the module documentation).
    pub(crate) async fn admit(&self, request: &WriteRequest) -> Result<(), NodeError> {
        if corrupt_refuses(request) && self.shared.cluster.state().has_alarm(ALARM_CORRUPT) {
            return Err(NodeError::Corrupt);
        }
        let cost_bytes = quota_cost_bytes(request);
        if cost_bytes == 0 {
            return Ok(());
        }
        if self.shared.cluster.state().has_alarm(ALARM_NOSPACE) {
            return Err(NodeError::NoSpace);
        }
        if self.space().size_bytes.saturating_add(cost_bytes) < self.shared.cluster.quota_bytes {
            return Ok(());
        }
        let raise = ClusterRequest::Alarm { action: AlarmAction::Activate, member_id: self.member_id(), alarm: ALARM_NOSPACE };
        match self.enqueue(WriteRequest::Cluster(raise)).await {
            Ok(_) => tracing::warn!(quota_bytes = self.shared.cluster.quota_bytes, "database space exceeded: raised the NOSPACE alarm"),
            Err(error) => tracing::warn!(%error, "database space exceeded; the NOSPACE alarm could not be raised"),
        }
        Err(NodeError::NoSpace)
    }

    /// The members, by id.
    pub fn members(&self) -> Vec<Member> {
        self.shared.cluster.state().members()
    }

    /// The active alarms of etcd's type `alarm` (`ALARM_NONE`: all), by type then member.
    pub fn alarms(&self, alarm: i32) -> Vec<Alarm> {
        self.shared.cluster.state().alarms(alarm)
    }

    /// etcd's MoveLeader: this member is the leader, and the only member that could be one.
    pub fn move_leader(&self, target_id: u64) -> Result<(), ClusterError> {
        self.shared.cluster.state().move_leader(target_id)
    }

    /// `db_size` and `db_size_in_use`, as etcd reports them.
    pub fn space(&self) -> SpaceUsage {
        self.shared.store.read().expect("store lock poisoned").space()
    }

    /// etcd's Defragment: `db_size` shrinks to what is in use. Writes wait at most for this one
    /// assignment.
    pub fn defragment(&self) {
        self.shared.store.write().expect("store lock poisoned").defragment();
    }

    /// etcd's HashKV at `revision` (0: the durable revision) over the durable key space.
    pub fn hash_kv(&self, revision: Revision) -> Result<strata_mvcc::KvHash, KvError> {
        let store = self.shared.store.read().expect("store lock poisoned");
        store.hash_kv(revision, store.durable_revision())
    }

    /// Maintenance.Hash: the hash of every stored version, and the durable revision.
    pub fn hash(&self) -> (u32, Revision) {
        let store = self.shared.store.read().expect("store lock poisoned");
        store.hash_all(store.durable_revision())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_mvcc::{DeleteRangeRequest, PutRequest};

    const SELF_ID: u64 = 0xbdae_9bbc_11dd_390d;

    fn state() -> ClusterState {
        ClusterState::new(SELF_ID, "one", &["http://127.0.0.1:2380".to_string()])
    }

    fn urls(url: &str) -> Vec<String> {
        vec![url.to_string()]
    }

    #[test]
    fn membership_changes_are_checked_in_etcds_order() {
        let mut state = state();
        let add = |peer_urls: Vec<String>, is_learner| ClusterRequest::MemberAdd { peer_urls, is_learner };
        assert_eq!(state.evaluate(&add(urls("http://b:2380"), false), 7).unwrap_err(), ClusterError::NotEnoughStartedMembers);
        assert_eq!(state.evaluate(&add(urls("http://127.0.0.1:2380"), true), 7).unwrap_err(), ClusterError::PeerUrlExists);
        let (response, change) = state.evaluate(&add(urls("http://b:2380"), true), 7).unwrap();
        let ClusterResponse::Members { added: Some(added), members } = response else { panic!("members") };
        assert_eq!((added.id, added.is_learner, added.name.as_str(), members.len()), (7, true, "", 2));
        assert!(change.is_some_and(|change| change.member_add.is_some()));
        assert_eq!(state.evaluate(&add(urls("http://c:2380"), true), 8).unwrap_err(), ClusterError::TooManyLearners);

        let promote = |id| ClusterRequest::MemberPromote { id };
        assert_eq!(state.evaluate(&promote(7), 0).unwrap_err(), ClusterError::LearnerNotReady);
        assert_eq!(state.evaluate(&promote(SELF_ID), 0).unwrap_err(), ClusterError::MemberNotLearner);
        assert_eq!(state.evaluate(&promote(99), 0).unwrap_err(), ClusterError::MemberNotFound);

        let update = |id, url| ClusterRequest::MemberUpdate { id, peer_urls: urls(url) };
        assert_eq!(state.evaluate(&update(7, "http://127.0.0.1:2380"), 0).unwrap_err(), ClusterError::PeerUrlExists);
        assert_eq!(state.evaluate(&update(99, "http://d:2380"), 0).unwrap_err(), ClusterError::MemberNotFound);
        state.evaluate(&update(7, "http://d:2380"), 0).unwrap();
        assert_eq!(state.members()[0].peer_urls, urls("http://d:2380"));
        assert!(state.members()[0].is_learner, "an updated learner stays a learner");
        state.evaluate(&update(SELF_ID, "http://127.0.0.1:2381"), 0).unwrap();

        assert_eq!(state.move_leader(7), Err(ClusterError::BadLeaderTransferee));
        assert_eq!(state.move_leader(SELF_ID), Ok(()));

        let remove = |id| ClusterRequest::MemberRemove { id };
        assert_eq!(state.evaluate(&remove(SELF_ID), 0).unwrap_err(), ClusterError::NotEnoughStartedMembers);
        assert_eq!(state.evaluate(&remove(99), 0).unwrap_err(), ClusterError::MemberNotFound);
        state.evaluate(&remove(7), 0).unwrap();
        assert_eq!(state.evaluate(&remove(7), 0).unwrap_err(), ClusterError::MemberNotFound);
        assert_eq!(state.members().len(), 1);
        assert_ne!(state.new_member_id(&urls("http://b:2380"), 0), 7, "a removed id is never reused");
    }

    #[test]
    fn alarms_activate_once_and_deactivate_only_when_active() {
        let mut state = state();
        let alarm = |action, member_id, alarm| ClusterRequest::Alarm { action, member_id, alarm };
        let (response, change) = state.evaluate(&alarm(AlarmAction::Activate, SELF_ID, ALARM_NOSPACE), 0).unwrap();
        assert_eq!(response, ClusterResponse::Alarms(vec![Alarm { member_id: SELF_ID, alarm: ALARM_NOSPACE }]));
        assert!(change.is_some());
        let (response, change) = state.evaluate(&alarm(AlarmAction::Activate, SELF_ID, ALARM_NOSPACE), 0).unwrap();
        assert_eq!((response, change), (ClusterResponse::Alarms(vec![Alarm { member_id: SELF_ID, alarm: ALARM_NOSPACE }]), None));
        state.evaluate(&alarm(AlarmAction::Activate, 5, ALARM_CORRUPT), 0).unwrap();
        assert!(state.has_alarm(ALARM_NOSPACE));
        assert_eq!(state.alarms(ALARM_NONE).len(), 2);
        assert_eq!(state.alarms(ALARM_CORRUPT), vec![Alarm { member_id: 5, alarm: ALARM_CORRUPT }]);
        let (response, change) = state.evaluate(&alarm(AlarmAction::Deactivate, 6, ALARM_CORRUPT), 0).unwrap();
        assert_eq!((response, change), (ClusterResponse::Alarms(Vec::new()), None));
        state.evaluate(&alarm(AlarmAction::Deactivate, SELF_ID, ALARM_NOSPACE), 0).unwrap();
        assert!(!state.has_alarm(ALARM_NOSPACE));
    }

    #[test]
    fn replay_rebuilds_the_state_and_refuses_unknown_changes() {
        let mut live = state();
        let mut changes = Vec::new();
        for request in [
            ClusterRequest::MemberAdd { peer_urls: urls("http://b:2380"), is_learner: true },
            ClusterRequest::Alarm { action: AlarmAction::Activate, member_id: SELF_ID, alarm: ALARM_NOSPACE },
            ClusterRequest::MemberUpdate { id: SELF_ID, peer_urls: urls("http://a:2380") },
        ] {
            changes.extend(live.evaluate(&request, 42).unwrap().1);
        }
        let mut replayed = state();
        for (index, change) in changes.iter().enumerate() {
            replayed.replay(index as u64, change).unwrap();
        }
        assert_eq!((replayed.members(), replayed.alarms(ALARM_NONE)), (live.members(), live.alarms(ALARM_NONE)));
        let error = replayed.replay(9, &LogClusterChange::default()).unwrap_err();
        assert!(error.contains("log record 9"), "{error}");
    }

    #[test]
    fn quota_costs_are_etcds() {
        let put = |key: &str, value: &str| PutRequest { key: key.into(), value: value.into(), ..PutRequest::default() };
        assert_eq!(quota_cost_bytes(&WriteRequest::Put(put("k", "vv"))), 259);
        let txn = TxnRequest {
            compare: Vec::new(),
            success: vec![RequestOp::Put(put("a", "1")), RequestOp::Put(put("b", "2"))],
            failure: vec![RequestOp::Put(put("c", "12345"))],
        };
        assert_eq!(quota_cost_bytes(&WriteRequest::Txn(txn.clone())), 2 * 258);
        let nested = TxnRequest { compare: Vec::new(), success: vec![RequestOp::Txn(txn)], failure: Vec::new() };
        assert_eq!(quota_cost_bytes(&WriteRequest::Txn(nested)), 0, "etcd does not look into nested txns");
        let delete = DeleteRangeRequest { key: b"a".to_vec(), range_end: Vec::new(), prev_kv: false };
        assert_eq!(quota_cost_bytes(&WriteRequest::DeleteRange(delete)), 0);
        assert_eq!(quota_cost_bytes(&WriteRequest::LeaseGrant { id: 0, ttl: 10 }), 64);
        assert_eq!(quota_bytes_from_flag(0), 2 * 1024 * 1024 * 1024);
        assert_eq!(quota_bytes_from_flag(53248), 53248);
        assert_eq!(quota_bytes_from_flag(-1), u64::MAX);
    }
}

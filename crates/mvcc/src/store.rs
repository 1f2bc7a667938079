//! The store: every key's versions, the current and compacted revisions, and the evaluation of
//! etcd's KV requests against them.
//!
//! Writes are evaluated by the one writer against the newest state (durable or not); the changes
//! they make are applied at once, so later requests of the same batch see them, and are undone by
//! [`Store::rollback`] if the batch cannot be made durable. Readers call the `&self` methods with
//! the durable revision as `current`, so they never see a change that is not yet durable.
//!
//! Beside the keys, the store keeps a revision index: for every revision from the compaction
//! horizon on, the keys it changed in the order they changed (a key's place there is its version's
//! sub-revision). Watch events are read through it ([`Store::events`], [`Store::revision_events`]),
//! so a read costs what the revisions it covers changed, as in etcd.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;

use strata_types::{Hlc, Origin, Revision, REVISION_INITIAL};

use crate::space::{version_footprint_bytes, Space, SpaceUsage};

mod hash;
mod image;
pub use hash::KvHash;
pub use image::{KeyImage, VersionImage, SUB_REVISION_MAX};

use crate::{
    range_contains, Compare, CompareOperand, CompareResult, CompareTarget, DeleteRangeRequest, DeleteRangeResponse, Event, EventKind,
    KeyValue, KvError, PutRequest, PutResponse, RangeRequest, RangeResponse, RequestOp, ResponseOp,
    SortOrder, SortTarget, TxnRequest, TxnResponse,
};

/// Where and when a change was first written: carried by every version.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stamp {
    pub hlc: Hlc,
    pub origin: Origin,
}

/// One effect of a request on one key: what the log stores and replay applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub key: Vec<u8>,
    pub kind: ChangeKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Put { value: Vec<u8>, lease: i64 },
    Delete,
}

/// One version of a key. `version == 0` marks a tombstone.
#[derive(Clone, Debug)]
struct Version {
    mod_revision: Revision,
    /// The place of this change among the changes of its revision (etcd's sub-revision).
    sub_revision: u32,
    create_revision: Revision,
    version: i64,
    value: Vec<u8>,
    lease: i64,
    stamp: Stamp,
}

impl Version {
    fn is_tombstone(&self) -> bool {
        self.version == 0
    }

    fn key_value(&self, key: &[u8]) -> KeyValue {
        KeyValue {
            key: key.to_vec(),
            create_revision: self.create_revision,
            mod_revision: self.mod_revision,
            version: self.version,
            value: self.value.clone(),
            lease: self.lease,
        }
    }
}

/// The revision state saved at the last durable point, for [`Store::rollback`].
#[derive(Clone, Copy, Debug)]
struct DurablePoint {
    current_revision: Revision,
    compacted_revision: Revision,
}

#[derive(Debug)]
pub struct Store {
    keys: BTreeMap<Vec<u8>, Vec<Version>>,
    current_revision: Revision,
    /// Reads below it fail with `Compacted`. etcd starts at -1, so `Compact(0)` succeeds once.
    compacted_revision: Revision,
    /// Physical compaction's progress: the next key to visit, `None` when it is complete.
    compaction_cursor: Option<Vec<u8>>,
    /// What the stored versions would take in etcd's backend file (`db_size`, see `space`).
    space: Space,
    durable: DurablePoint,
    /// Keys changed since the last durable point.
    uncommitted_keys: Vec<Vec<u8>>,
    /// The keys each revision changed, in order, from `revision_index_first` on.
    revision_index: VecDeque<Vec<Vec<u8>>>,
    /// The revision of `revision_index`'s front entry.
    revision_index_first: Revision,
    /// While a snapshot streams: physical compaction drops nothing superseded after it (`image`).
    compaction_pin: Option<Revision>,
    /// A compaction pass stopped short at the pin: it runs again once the pin is lifted or raised.
    compaction_deferred: bool,
    /// The base of the next incremental snapshot: the revision index keeps every revision after it.
    revision_index_pin: Option<Revision>,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

/// The revision state of a write request in progress.
struct WriteContext {
    begin_revision: Revision,
    changed: bool,
    stamp: Stamp,
    changes: Vec<Change>,
}

impl WriteContext {
    fn write_revision(&self) -> Revision {
        self.begin_revision + 1
    }

    /// The revision reads inside the request see: the request's own changes once it made some.
    fn read_revision(&self) -> Revision {
        self.begin_revision + Revision::from(self.changed)
    }
}

impl Store {
    pub fn new() -> Store {
        Store {
            keys: BTreeMap::new(),
            current_revision: REVISION_INITIAL,
            compacted_revision: -1,
            compaction_cursor: None,
            space: Space::default(),
            durable: DurablePoint { current_revision: REVISION_INITIAL, compacted_revision: -1 },
            uncommitted_keys: Vec::new(),
            revision_index: VecDeque::new(),
            revision_index_first: REVISION_INITIAL + 1,
            compaction_pin: None,
            compaction_deferred: false,
            revision_index_pin: None,
        }
    }

    /// The newest revision, durable or not. Readers use the durable revision instead.
    pub fn current_revision(&self) -> Revision {
        self.current_revision
    }

    pub fn compacted_revision(&self) -> Revision {
        self.compacted_revision
    }

    /// Number of keys with any stored version (live or tombstone), for size accounting.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// etcd's `db_size` and `db_size_in_use` for the versions stored now (see `space`).
    pub fn space(&self) -> SpaceUsage {
        self.space.usage()
    }

    /// etcd's defragment: `db_size` shrinks to what is in use.
    pub fn defragment(&mut self) {
        self.space.defragment();
    }

    // ---------------------------------------------------------------- reads

    /// etcd's Range at store revision `current`.
    pub fn range(&self, request: &RangeRequest, current: Revision) -> Result<RangeResponse, KvError> {
        if request.revision > current {
            return Err(KvError::FutureRevision);
        }
        let at = if request.revision <= 0 { current } else { request.revision };
        if at < self.compacted_revision {
            return Err(KvError::Compacted);
        }
        let filtered = request.sort_order != SortOrder::None
            || request.min_mod_revision != 0
            || request.max_mod_revision != 0
            || request.min_create_revision != 0
            || request.max_create_revision != 0;
        // Fetch one more than the limit so that `more` can be told.
        let fetch_limit = if filtered || request.limit <= 0 { usize::MAX } else { request.limit as usize + 1 };

        let mut count: i64 = 0;
        let mut kvs = Vec::new();
        for (key, history) in self.keys_in(&request.key, &request.range_end) {
            let Some(version) = visible(history, at) else { continue };
            count += 1;
            if !request.count_only && kvs.len() < fetch_limit {
                kvs.push(version.key_value(key));
            }
        }

        if request.max_mod_revision != 0 {
            kvs.retain(|kv| kv.mod_revision <= request.max_mod_revision);
        }
        if request.min_mod_revision != 0 {
            kvs.retain(|kv| kv.mod_revision >= request.min_mod_revision);
        }
        if request.max_create_revision != 0 {
            kvs.retain(|kv| kv.create_revision <= request.max_create_revision);
        }
        if request.min_create_revision != 0 {
            kvs.retain(|kv| kv.create_revision >= request.min_create_revision);
        }

        let mut sort_order = request.sort_order;
        if request.sort_target != SortTarget::Key && sort_order == SortOrder::None {
            sort_order = SortOrder::Ascend;
        }
        if sort_order != SortOrder::None {
            let target = request.sort_target;
            let order = move |a: &KeyValue, b: &KeyValue| match target {
                SortTarget::Key => a.key.cmp(&b.key),
                SortTarget::Version => a.version.cmp(&b.version),
                SortTarget::Create => a.create_revision.cmp(&b.create_revision),
                SortTarget::Mod => a.mod_revision.cmp(&b.mod_revision),
                SortTarget::Value => a.value.cmp(&b.value),
            };
            // Stable, as Go's sort is for the small slices etcd's tests use.
            match sort_order {
                SortOrder::Descend => kvs.sort_by(|a, b| order(b, a)),
                _ => kvs.sort_by(order),
            }
        }

        let mut more = false;
        if request.limit > 0 && kvs.len() > request.limit as usize {
            kvs.truncate(request.limit as usize);
            more = true;
        }
        if request.keys_only {
            for kv in &mut kvs {
                kv.value.clear();
            }
        }
        Ok(RangeResponse { revision: current, kvs, more, count })
    }

    /// A txn whose every op only reads, served at store revision `current`.
    pub fn txn_read(&self, request: &TxnRequest, current: Revision) -> Result<TxnResponse, KvError> {
        debug_assert!(request.is_read_only());
        let path = self.compare_path(request, current);
        self.check_ranges(request, &mut path.iter().copied(), current)?;
        let mut path = path.into_iter();
        let response = self.txn_read_ops(request, &mut path, current);
        Ok(TxnResponse { revision: current, ..response })
    }

    fn txn_read_ops(&self, request: &TxnRequest, path: &mut impl Iterator<Item = bool>, current: Revision) -> TxnResponse {
        let succeeded = path.next().unwrap_or(false);
        let ops = if succeeded { &request.success } else { &request.failure };
        let responses = ops
            .iter()
            .filter_map(|op| match op {
                RequestOp::Range(range) => {
                    Some(ResponseOp::Range(self.range(range, current).expect("checked by check_ranges")))
                }
                RequestOp::Txn(txn) => Some(ResponseOp::Txn(self.txn_read_ops(txn, path, current))),
                RequestOp::Put(_) | RequestOp::DeleteRange(_) | RequestOp::Empty => None,
            })
            .collect();
        TxnResponse { revision: 0, succeeded, responses }
    }

    fn keys_in<'a>(&'a self, key: &[u8], range_end: &[u8]) -> Box<dyn Iterator<Item = (&'a Vec<u8>, &'a Vec<Version>)> + 'a> {
        if range_end.is_empty() {
            return Box::new(self.keys.get_key_value(key).into_iter());
        }
        if range_end == [0] {
            return Box::new(self.keys.range::<[u8], _>((Bound::Included(key), Bound::Unbounded)));
        }
        if range_end <= key {
            return Box::new(std::iter::empty());
        }
        Box::new(self.keys.range::<[u8], _>((Bound::Included(key), Bound::Excluded(range_end))))
    }

    fn visible_at(&self, key: &[u8], at: Revision) -> Option<&Version> {
        self.keys.get(key).and_then(|history| visible(history, at))
    }

    // ---------------------------------------------------------------- compares

    /// etcd's `compareToPath`: the branch every txn (outer first, then nested depth-first in the
    /// chosen branch) takes, all decided against the state before the txn applies anything.
    fn compare_path(&self, request: &TxnRequest, at: Revision) -> Vec<bool> {
        let mut path = Vec::new();
        self.compare_path_into(request, at, &mut path);
        path
    }

    fn compare_path_into(&self, request: &TxnRequest, at: Revision, path: &mut Vec<bool>) {
        let succeeded = request.compare.iter().all(|compare| self.compare_holds(compare, at));
        path.push(succeeded);
        let ops = if succeeded { &request.success } else { &request.failure };
        for op in ops {
            if let RequestOp::Txn(txn) = op {
                self.compare_path_into(txn, at, path);
            }
        }
    }

    fn compare_holds(&self, compare: &Compare, at: Revision) -> bool {
        let matched: Vec<&Version> = self
            .keys_in(&compare.key, &compare.range_end)
            .filter_map(|(_, history)| visible(history, at))
            .collect();
        if matched.is_empty() {
            // A missing key has no value to compare; every other target compares as zero.
            return compare.target != CompareTarget::Value && compare_version(compare, None);
        }
        matched.into_iter().all(|version| compare_version(compare, Some(version)))
    }

    /// etcd's `checkRequests` with `checkRange`: every range on the chosen path at a revision that
    /// is in the future or compacted fails the whole txn.
    fn check_ranges(&self, request: &TxnRequest, path: &mut impl Iterator<Item = bool>, current: Revision) -> Result<(), KvError> {
        let ops = if path.next().unwrap_or(false) { &request.success } else { &request.failure };
        for op in ops {
            match op {
                RequestOp::Range(range) if range.revision != 0 => {
                    if range.revision > current {
                        return Err(KvError::FutureRevision);
                    }
                    if range.revision < self.compacted_revision {
                        return Err(KvError::Compacted);
                    }
                }
                RequestOp::Txn(txn) => self.check_ranges(txn, path, current)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// etcd's `checkRequests` with `checkPut`: puts that need a previous version or a lease.
    fn check_puts(
        &self,
        request: &TxnRequest,
        path: &mut impl Iterator<Item = bool>,
        current: Revision,
        lease_exists: &dyn Fn(i64) -> bool,
    ) -> Result<(), KvError> {
        let ops = if path.next().unwrap_or(false) { &request.success } else { &request.failure };
        for op in ops {
            match op {
                RequestOp::Put(put) => {
                    if (put.ignore_value || put.ignore_lease) && self.visible_at(&put.key, current).is_none() {
                        return Err(KvError::KeyNotFound);
                    }
                    if put.lease != 0 && !lease_exists(put.lease) {
                        return Err(KvError::LeaseNotFound);
                    }
                }
                RequestOp::Txn(txn) => self.check_puts(txn, path, current, lease_exists)?,
                _ => {}
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------------- writes

    /// etcd's Put. Returns the response and the changes to log.
    pub fn put(&mut self, request: &PutRequest, stamp: Stamp, lease_exists: &dyn Fn(i64) -> bool) -> Result<(PutResponse, Vec<Change>), KvError> {
        if request.lease != 0 && !lease_exists(request.lease) {
            return Err(KvError::LeaseNotFound);
        }
        if (request.ignore_value || request.ignore_lease) && self.visible_at(&request.key, self.current_revision).is_none() {
            return Err(KvError::KeyNotFound);
        }
        let mut context = self.begin_write(stamp);
        let response = self.put_in(request, &mut context);
        Ok((response, self.finish_write(context)))
    }

    /// etcd's DeleteRange. Returns the response and the changes to log (none if nothing matched).
    pub fn delete_range(&mut self, request: &DeleteRangeRequest, stamp: Stamp) -> (DeleteRangeResponse, Vec<Change>) {
        let mut context = self.begin_write(stamp);
        let response = self.delete_range_in(request, &mut context);
        (response, self.finish_write(context))
    }

    /// etcd's Txn against the newest state. Read-only txns may use it too (they change nothing).
    pub fn txn(&mut self, request: &TxnRequest, stamp: Stamp, lease_exists: &dyn Fn(i64) -> bool) -> Result<(TxnResponse, Vec<Change>), KvError> {
        let current = self.current_revision;
        let path = self.compare_path(request, current);
        if !request.is_read_only() {
            self.check_puts(request, &mut path.iter().copied(), current, lease_exists)?;
        }
        self.check_ranges(request, &mut path.iter().copied(), current)?;
        let mut context = self.begin_write(stamp);
        let mut response = self.txn_in(request, &mut path.into_iter(), &mut context);
        response.revision = context.read_revision();
        Ok((response, self.finish_write(context)))
    }

    /// etcd's Compact: reads below `revision` fail from now on; superseded versions are dropped by
    /// [`Store::compact_step`] without holding up other requests. Returns the header revision.
    pub fn compact(&mut self, revision: Revision) -> Result<Revision, KvError> {
        if revision <= self.compacted_revision {
            return Err(KvError::Compacted);
        }
        if revision > self.current_revision {
            return Err(KvError::FutureRevision);
        }
        self.compacted_revision = revision;
        self.compaction_cursor = Some(Vec::new());
        Ok(self.current_revision)
    }

    /// Whether physical compaction still has keys to visit.
    pub fn compaction_pending(&self) -> bool {
        self.compaction_cursor.is_some()
    }

    /// Drops versions superseded at or before the compacted revision (but never past the durable
    /// revision) for up to `keys_max` keys. Returns true when compaction is complete.
    pub fn compact_step(&mut self, keys_max: usize) -> bool {
        let Some(cursor) = self.compaction_cursor.take() else { return true };
        let unpinned_horizon = self.compacted_revision.min(self.durable.current_revision);
        let horizon = self.compaction_pin.map_or(unpinned_horizon, |pin| pin.min(unpinned_horizon));
        // Events below the compacted revision are never read again (but the next incremental
        // snapshot reads which keys changed after its base).
        let index_horizon = self.revision_index_pin.map_or(horizon, |pin| horizon.min(pin.saturating_add(1)));
        while self.revision_index_first < index_horizon && self.revision_index.pop_front().is_some() {
            self.revision_index_first += 1;
        }
        let batch: Vec<Vec<u8>> = self
            .keys
            .range::<[u8], _>((Bound::Included(cursor.as_slice()), Bound::Unbounded))
            .take(keys_max.saturating_add(1))
            .map(|(key, _)| key.clone())
            .collect();
        let (visit, next) = if batch.len() > keys_max { (&batch[..keys_max], Some(batch[keys_max].clone())) } else { (&batch[..], None) };
        for key in visit {
            let history = self.keys.get_mut(key).expect("key listed above");
            let visible_index = history.partition_point(|version| version.mod_revision <= horizon);
            if visible_index == 0 {
                continue;
            }
            let keep_from = if history[visible_index - 1].is_tombstone() { visible_index } else { visible_index - 1 };
            for dropped in history.drain(..keep_from) {
                self.space.remove(version_footprint_bytes(key.len(), dropped.value.len()));
            }
            if history.is_empty() {
                self.keys.remove(key);
            }
        }
        self.compaction_cursor = next;
        if self.compaction_cursor.is_none() && horizon < unpinned_horizon {
            self.compaction_deferred = true;
        }
        self.compaction_cursor.is_none()
    }

    /// Replays logged changes made at `revision` (one request's worth).
    pub fn apply(&mut self, revision: Revision, changes: &[Change], stamp: Stamp) {
        assert_eq!(revision, self.current_revision + 1, "replayed changes must follow the current revision");
        for change in changes {
            self.apply_change(revision, change, stamp);
        }
        if !changes.is_empty() {
            self.current_revision = revision;
        }
    }

    /// Replays a logged compaction.
    pub fn apply_compaction(&mut self, revision: Revision) {
        if revision > self.compacted_revision {
            self.compacted_revision = revision;
            self.compaction_cursor = Some(Vec::new());
        }
    }

    /// Everything up to now is durable: [`Store::rollback`] will not undo it.
    pub fn mark_durable(&mut self) {
        self.durable = DurablePoint { current_revision: self.current_revision, compacted_revision: self.compacted_revision };
        self.uncommitted_keys.clear();
    }

    /// The revision readers may see.
    pub fn durable_revision(&self) -> Revision {
        self.durable.current_revision
    }

    // ---------------------------------------------------------------- events (watch)

    /// Every change to a key in `key`..`range_end` (read as [`range_contains`] reads it) at the
    /// durable revisions `from..=to`, as etcd's watch events, in revision then sub-revision order.
    /// `from` below the compacted revision fails with `Compacted`; `to` past the durable revision
    /// reads up to the durable revision. As after etcd's compaction, a delete at exactly the
    /// compacted revision is not an event any more (compaction drops such tombstones).
    ///
    /// Cost: a single key reads its own history; a range reads the revision index over `from..=to`.
    pub fn events(&self, key: &[u8], range_end: &[u8], from: Revision, to: Revision, prev_kv: bool) -> Result<Vec<Event>, KvError> {
        if from < self.compacted_revision {
            return Err(KvError::Compacted);
        }
        let to = to.min(self.durable.current_revision);
        let compacted = self.compacted_revision;
        let kept = |event: &Event| !(event.kind == EventKind::Delete && event.revision() == compacted);
        if !range_end.is_empty() {
            let mut events = self.indexed_events(from, to, prev_kv, |candidate| range_contains(key, range_end, candidate));
            events.retain(kept);
            return Ok(events);
        }
        let Some(history) = self.keys.get(key) else { return Ok(Vec::new()) };
        let first = history.partition_point(|version| version.mod_revision < from);
        let last = history.partition_point(|version| version.mod_revision <= to);
        let events = (first..last.max(first)).map(|index| self.event(key, history, index, prev_kv)).filter(kept).collect();
        Ok(events)
    }

    /// Every event of the durable revisions `from..=to`, for every key, without the compaction
    /// check: the writer reads a batch it has just made durable, before any compaction step can
    /// drop a version of it, even when the batch itself compacted past it.
    pub fn revision_events(&self, from: Revision, to: Revision, prev_kv: bool) -> Vec<Event> {
        self.indexed_events(from, to.min(self.durable.current_revision), prev_kv, |_| true)
    }

    fn revision_index_last(&self) -> Revision {
        self.revision_index_first + self.revision_index.len() as Revision - 1
    }

    fn indexed_events(&self, from: Revision, to: Revision, prev_kv: bool, wanted: impl Fn(&[u8]) -> bool) -> Vec<Event> {
        let mut events = Vec::new();
        for revision in from.max(self.revision_index_first)..=to.min(self.revision_index_last()) {
            let keys_of_revision = &self.revision_index[(revision - self.revision_index_first) as usize];
            for (sub_revision, key) in keys_of_revision.iter().enumerate() {
                if !wanted(key) {
                    continue;
                }
                let Some(history) = self.keys.get(key) else { continue };
                let place = (revision, sub_revision as u32);
                let index = history.partition_point(|version| (version.mod_revision, version.sub_revision) < place);
                // Physical compaction may have dropped a version at the compacted revision.
                if history.get(index).is_some_and(|version| (version.mod_revision, version.sub_revision) == place) {
                    events.push(self.event(key, history, index, prev_kv));
                }
            }
        }
        events
    }

    /// The event of `history[index]`; its `prev_kv` is the version before it, if visible at
    /// revision − 1 and that revision is not compacted.
    fn event(&self, key: &[u8], history: &[Version], index: usize, prev_kv: bool) -> Event {
        let version = &history[index];
        let (kind, kv) = if version.is_tombstone() {
            (EventKind::Delete, KeyValue { key: key.to_vec(), mod_revision: version.mod_revision, ..KeyValue::default() })
        } else {
            (EventKind::Put, version.key_value(key))
        };
        // Revision − 1 must not be compacted: mod_revision − 1 >= compacted.
        let prev_kv = (prev_kv && version.mod_revision > self.compacted_revision)
            .then(|| visible(&history[..index], version.mod_revision - 1))
            .flatten()
            .map(|previous| previous.key_value(key));
        Event { kind, kv, prev_kv }
    }

    /// Undoes everything since the last [`Store::mark_durable`]: the batch could not be logged.
    pub fn rollback(&mut self) {
        let revision = self.durable.current_revision;
        while self.revision_index_last() > revision && self.revision_index.pop_back().is_some() {}
        for key in std::mem::take(&mut self.uncommitted_keys) {
            if let Some(history) = self.keys.get_mut(&key) {
                while history.last().is_some_and(|version| version.mod_revision > revision) {
                    if let Some(dropped) = history.pop() {
                        self.space.remove(version_footprint_bytes(key.len(), dropped.value.len()));
                    }
                }
                if history.is_empty() {
                    self.keys.remove(&key);
                }
            }
        }
        self.current_revision = revision;
        if self.compacted_revision != self.durable.compacted_revision {
            self.compacted_revision = self.durable.compacted_revision;
            self.compaction_cursor = None;
        }
    }

    fn begin_write(&self, stamp: Stamp) -> WriteContext {
        WriteContext { begin_revision: self.current_revision, changed: false, stamp, changes: Vec::new() }
    }

    fn finish_write(&mut self, context: WriteContext) -> Vec<Change> {
        if context.changed {
            self.current_revision = context.write_revision();
        }
        context.changes
    }

    fn record(&mut self, context: &mut WriteContext, change: Change) {
        self.apply_change(context.write_revision(), &change, context.stamp);
        context.changed = true;
        context.changes.push(change);
    }

    fn put_in(&mut self, request: &PutRequest, context: &mut WriteContext) -> PutResponse {
        let previous = self.visible_at(&request.key, context.read_revision()).map(|version| version.key_value(&request.key));
        let value = match (&previous, request.ignore_value) {
            (Some(previous), true) => previous.value.clone(),
            _ => request.value.clone(),
        };
        let lease = match (&previous, request.ignore_lease) {
            (Some(previous), true) => previous.lease,
            _ => request.lease,
        };
        self.record(context, Change { key: request.key.clone(), kind: ChangeKind::Put { value, lease } });
        PutResponse { revision: context.write_revision(), prev_kv: if request.prev_kv { previous } else { None } }
    }

    fn delete_range_in(&mut self, request: &DeleteRangeRequest, context: &mut WriteContext) -> DeleteRangeResponse {
        let at = context.read_revision();
        let mut prev_kvs = Vec::new();
        let mut keys = Vec::new();
        for (key, history) in self.keys_in(&request.key, &request.range_end) {
            if let Some(version) = visible(history, at) {
                if request.prev_kv {
                    prev_kvs.push(version.key_value(key));
                }
                keys.push(key.clone());
            }
        }
        let deleted = keys.len() as i64;
        for key in keys {
            self.record(context, Change { key, kind: ChangeKind::Delete });
        }
        let revision = if context.changed { context.write_revision() } else { context.begin_revision };
        DeleteRangeResponse { revision, deleted, prev_kvs }
    }

    fn txn_in(&mut self, request: &TxnRequest, path: &mut impl Iterator<Item = bool>, context: &mut WriteContext) -> TxnResponse {
        let succeeded = path.next().unwrap_or(false);
        let ops = if succeeded { &request.success } else { &request.failure };
        let mut responses = Vec::with_capacity(ops.len());
        for op in ops {
            let response = match op {
                RequestOp::Range(range) => {
                    ResponseOp::Range(self.range(range, context.read_revision()).expect("checked by check_ranges"))
                }
                RequestOp::Put(put) => ResponseOp::Put(self.put_in(put, context)),
                RequestOp::DeleteRange(delete) => ResponseOp::DeleteRange(self.delete_range_in(delete, context)),
                RequestOp::Txn(txn) => ResponseOp::Txn(self.txn_in(txn, path, context)),
                RequestOp::Empty => continue,
            };
            responses.push(response);
        }
        TxnResponse { revision: 0, succeeded, responses }
    }

    fn apply_change(&mut self, revision: Revision, change: &Change, stamp: Stamp) {
        if self.revision_index.is_empty() {
            self.revision_index_first = revision;
        }
        // A revision without changes (none is logged today) keeps its empty place in the index.
        while self.revision_index_last() < revision {
            self.revision_index.push_back(Vec::new());
        }
        let keys_of_revision = self.revision_index.back_mut().expect("pushed above");
        let sub_revision = keys_of_revision.len() as u32;
        let history = self.keys.entry(change.key.clone()).or_default();
        let live = history.last().filter(|version| !version.is_tombstone());
        let version = match &change.kind {
            ChangeKind::Put { value, lease } => Version {
                mod_revision: revision,
                sub_revision,
                create_revision: live.map_or(revision, |previous| previous.create_revision),
                version: live.map_or(1, |previous| previous.version + 1),
                value: value.clone(),
                lease: *lease,
                stamp,
            },
            ChangeKind::Delete => {
                if live.is_none() {
                    return;
                }
                Version { mod_revision: revision, sub_revision, create_revision: 0, version: 0, value: Vec::new(), lease: 0, stamp }
            }
        };
        self.space.add(version_footprint_bytes(change.key.len(), version.value.len()));
        history.push(version);
        keys_of_revision.push(change.key.clone());
        self.uncommitted_keys.push(change.key.clone());
    }
}

/// The version of a key visible at revision `at`: the last one at or before it, unless a tombstone.
fn visible(history: &[Version], at: Revision) -> Option<&Version> {
    let index = history.partition_point(|version| version.mod_revision <= at);
    let version = history.get(index.checked_sub(1)?)?;
    (!version.is_tombstone()).then_some(version)
}

/// etcd's `compareKV`: a missing key compares as all zeros; an unknown target as equal.
fn compare_version(compare: &Compare, version: Option<&Version>) -> bool {
    let ordering = match compare.target {
        CompareTarget::Value => {
            let operand: &[u8] = match &compare.operand {
                CompareOperand::Value(value) => value,
                _ => &[],
            };
            version.map_or(&[][..], |v| v.value.as_slice()).cmp(operand)
        }
        CompareTarget::Unknown => std::cmp::Ordering::Equal,
        target => {
            let (actual, operand) = match (target, &compare.operand) {
                (CompareTarget::Create, CompareOperand::CreateRevision(r)) => (version.map_or(0, |v| v.create_revision), *r),
                (CompareTarget::Create, _) => (version.map_or(0, |v| v.create_revision), 0),
                (CompareTarget::Mod, CompareOperand::ModRevision(r)) => (version.map_or(0, |v| v.mod_revision), *r),
                (CompareTarget::Mod, _) => (version.map_or(0, |v| v.mod_revision), 0),
                (CompareTarget::Version, CompareOperand::Version(r)) => (version.map_or(0, |v| v.version), *r),
                (CompareTarget::Version, _) => (version.map_or(0, |v| v.version), 0),
                (CompareTarget::Lease, CompareOperand::Lease(r)) => (version.map_or(0, |v| v.lease), *r),
                (CompareTarget::Lease, _) => (version.map_or(0, |v| v.lease), 0),
                (CompareTarget::Value | CompareTarget::Unknown, _) => unreachable!("handled above"),
            };
            actual.cmp(&operand)
        }
    };
    match compare.result {
        CompareResult::Equal => ordering.is_eq(),
        CompareResult::NotEqual => ordering.is_ne(),
        CompareResult::Greater => ordering.is_gt(),
        CompareResult::Less => ordering.is_lt(),
        CompareResult::Unknown => true,
    }
}

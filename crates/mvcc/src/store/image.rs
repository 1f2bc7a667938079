//! The store as an image: what a snapshot records of it and how a store is built again from one.
//!
//! A snapshot at revision `R` holds, for every key, its stored versions at or below `R` (values,
//! create and mod revisions, versions, leases, sub-revisions and stamps, tombstones included), and
//! the compacted revision. It is read from a live store in chunks of keys, each under a short read
//! lock, while the writer keeps committing above `R`; two pins keep what it needs:
//! - the *compaction pin* (the snapshot's compacted revision): physical compaction drops nothing
//!   superseded after it while a snapshot streams, so every chunk sees the versions the store held
//!   at `R`. A pass stopped short by the pin runs again once the pin is lifted or raised;
//! - the *revision index pin* (the base of the next incremental snapshot): the revision index keeps
//!   every revision after it, so [`Store::changed_keys`] can list the keys changed since the base.
//!
//! Invariants:
//! - [`Store::from_image`] of the images [`Store::image_chunk`] read at the durable revision gives a
//!   store that answers every read, HashKV and watch history as the live store did at that revision.
//! - An image's versions are in ascending `(mod_revision, sub_revision)` order, none above its
//!   revision; [`Store::from_image`] refuses anything else, naming the key.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;

use strata_types::Revision;

use super::{DurablePoint, Stamp, Store, Version};
use crate::space::version_footprint_bytes;

/// The largest sub-revision an image may carry (a revision's changes are far fewer in practice;
/// the bound keeps a damaged image from making the revision index allocate without limit).
pub const SUB_REVISION_MAX: u32 = 1 << 24;

/// One stored version of a key, as a snapshot records it. `version == 0` marks a tombstone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionImage {
    pub mod_revision: Revision,
    pub sub_revision: u32,
    pub create_revision: Revision,
    pub version: i64,
    pub value: Vec<u8>,
    pub lease: i64,
    pub stamp: Stamp,
}

/// A key and its stored versions at or below an image's revision, oldest first. Empty `versions`
/// (only in an incremental image) means the key holds nothing any more.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyImage {
    pub key: Vec<u8>,
    pub versions: Vec<VersionImage>,
}

impl Version {
    fn image(&self) -> VersionImage {
        VersionImage {
            mod_revision: self.mod_revision,
            sub_revision: self.sub_revision,
            create_revision: self.create_revision,
            version: self.version,
            value: self.value.clone(),
            lease: self.lease,
            stamp: self.stamp,
        }
    }

    fn from_image(image: VersionImage) -> Version {
        Version {
            mod_revision: image.mod_revision,
            sub_revision: image.sub_revision,
            create_revision: image.create_revision,
            version: image.version,
            value: image.value,
            lease: image.lease,
            stamp: image.stamp,
        }
    }
}

/// The versions of `history` at or below `revision`, as images.
fn versions_at(history: &[Version], revision: Revision) -> Vec<VersionImage> {
    let end = history.partition_point(|version| version.mod_revision <= revision);
    history[..end].iter().map(Version::image).collect()
}

impl Store {
    /// The durable revision and the compacted revision as of it: the point a snapshot is taken at.
    pub fn durable_point(&self) -> (Revision, Revision) {
        (self.durable.current_revision, self.durable.compacted_revision)
    }

    /// Up to `keys_max` keys after `after` (from the first key when `None`), each with its versions
    /// at or below `revision`; keys without such a version are left out. Returns the images and the
    /// key to continue after, `None` when every key was read.
    pub fn image_chunk(&self, after: Option<&[u8]>, revision: Revision, keys_max: usize) -> (Vec<KeyImage>, Option<Vec<u8>>) {
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut images = Vec::with_capacity(keys_max.min(self.keys.len()));
        let mut visited = 0;
        let mut last = None;
        for (key, history) in self.keys.range::<[u8], _>((start, Bound::Unbounded)) {
            if visited == keys_max {
                return (images, last);
            }
            visited += 1;
            last = Some(key.clone());
            let versions = versions_at(history, revision);
            if !versions.is_empty() {
                images.push(KeyImage { key: key.clone(), versions });
            }
        }
        (images, None)
    }

    /// The images of `keys` at `revision`, in the order given; a key without a version at or below
    /// it gets empty `versions`.
    pub fn images_of(&self, keys: &[Vec<u8>], revision: Revision) -> Vec<KeyImage> {
        keys.iter()
            .map(|key| KeyImage { key: key.clone(), versions: self.keys.get(key).map(|history| versions_at(history, revision)).unwrap_or_default() })
            .collect()
    }

    /// The keys changed at the revisions `base + 1 ..= revision`, sorted and without duplicates;
    /// `None` when the revision index no longer (or does not yet) cover them.
    pub fn changed_keys(&self, base: Revision, revision: Revision) -> Option<Vec<Vec<u8>>> {
        if revision <= base {
            return Some(Vec::new());
        }
        if base.saturating_add(1) < self.revision_index_first || revision > self.revision_index_last() {
            return None;
        }
        let mut keys: Vec<Vec<u8>> = (base + 1..=revision)
            .flat_map(|changed| self.revision_index[(changed - self.revision_index_first) as usize].iter())
            .filter(|key| !key.is_empty())
            .cloned()
            .collect();
        keys.sort_unstable();
        keys.dedup();
        Some(keys)
    }

    /// While `Some(pin)`, physical compaction drops no version superseded after `pin` (a snapshot
    /// of the store as of compacted revision `pin` is being read). Lifting or raising the pin
    /// restarts a pass it stopped short.
    pub fn set_compaction_pin(&mut self, pin: Option<Revision>) {
        let raised = match (self.compaction_pin, pin) {
            (_, None) => true,
            (Some(old), Some(new)) => new > old,
            (None, Some(_)) => false,
        };
        self.compaction_pin = pin;
        if raised && self.compaction_deferred {
            self.compaction_deferred = false;
            self.compaction_cursor.get_or_insert_with(Vec::new);
        }
    }

    /// While `Some(base)`, the revision index keeps every revision after `base`, so that
    /// [`Store::changed_keys`] can list what an incremental snapshot on top of `base` holds.
    pub fn set_revision_index_pin(&mut self, base: Option<Revision>) {
        self.revision_index_pin = base;
    }

    /// A store holding exactly `keys` (sorted by key, each key once), durable at `revision`, with
    /// reads below `compacted_revision` refused. The revision index is rebuilt from the versions'
    /// sub-revisions for the revisions from the compacted one on, so watches from any readable
    /// revision see what they would have seen on the live store. Versions a compaction would have
    /// dropped are dropped by the next [`Store::compact_step`] (pending when there are any).
    pub fn from_image(keys: Vec<KeyImage>, revision: Revision, compacted_revision: Revision) -> Result<Store, String> {
        let mut store = Store::new();
        let index_first = compacted_revision.max(store.revision_index_first);
        let index_length = usize::try_from(revision.saturating_sub(index_first).saturating_add(1)).unwrap_or(0);
        let mut index: VecDeque<Vec<Vec<u8>>> = VecDeque::new();
        index.resize_with(index_length, Vec::new);
        let mut needs_compaction = false;
        let mut entries: Vec<(Vec<u8>, Vec<Version>)> = Vec::with_capacity(keys.len());
        let mut previous_key: Option<&[u8]> = None;
        for image in &keys {
            if image.key.is_empty() || previous_key.is_some_and(|previous| previous >= image.key.as_slice()) {
                return Err(format!("key {:?} is empty, out of order or listed twice", String::from_utf8_lossy(&image.key)));
            }
            previous_key = Some(&image.key);
        }
        for image in keys {
            let KeyImage { key, versions } = image;
            if versions.is_empty() {
                continue;
            }
            let mut place = (Revision::MIN, 0u32);
            for version in &versions {
                let here = (version.mod_revision, version.sub_revision);
                if here <= place || version.mod_revision > revision || version.sub_revision > SUB_REVISION_MAX {
                    return Err(format!(
                        "key {:?}: version at revision {} (sub-revision {}) is out of order or past the image's revision {revision}",
                        String::from_utf8_lossy(&key),
                        version.mod_revision,
                        version.sub_revision
                    ));
                }
                place = here;
                if version.mod_revision >= index_first {
                    let slot = &mut index[(version.mod_revision - index_first) as usize];
                    let position = version.sub_revision as usize;
                    if slot.len() <= position {
                        slot.resize_with(position + 1, Vec::new);
                    }
                    slot[position] = key.clone();
                }
                store.space.add(version_footprint_bytes(key.len(), version.value.len()));
            }
            // Would compaction drop something here: a version superseded at or before the
            // compacted revision, or a tombstone at or before it?
            let visible_index = versions.partition_point(|version| version.mod_revision <= compacted_revision);
            needs_compaction |= visible_index > 1 || (visible_index == 1 && versions[0].version == 0);
            entries.push((key, versions.into_iter().map(Version::from_image).collect()));
        }
        store.keys = BTreeMap::from_iter(entries);
        store.current_revision = revision;
        store.compacted_revision = compacted_revision;
        store.durable = DurablePoint { current_revision: revision, compacted_revision };
        store.revision_index_first = if index.is_empty() { revision.saturating_add(1) } else { index_first };
        store.revision_index = index;
        if needs_compaction {
            store.compaction_cursor = Some(Vec::new());
        }
        Ok(store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest};

    fn put(store: &mut Store, key: &str, value: &str) {
        let request = PutRequest { key: key.into(), value: value.into(), ..PutRequest::default() };
        store.put(&request, Stamp::default(), &|_| false).expect("put");
        store.mark_durable();
    }

    fn delete(store: &mut Store, key: &str) {
        store.delete_range(&DeleteRangeRequest { key: key.into(), range_end: Vec::new(), prev_kv: false }, Stamp::default());
        store.mark_durable();
    }

    fn everything_at(store: &Store, revision: Revision) -> Vec<crate::KeyValue> {
        let request = RangeRequest { key: vec![0], range_end: vec![0], revision, ..RangeRequest::default() };
        store.range(&request, store.durable_revision()).expect("range").kvs
    }

    fn image_of(store: &Store, keys_max: usize) -> Vec<KeyImage> {
        let (revision, _) = store.durable_point();
        let mut images = Vec::new();
        let mut after = None;
        loop {
            let (chunk, next) = store.image_chunk(after.as_deref(), revision, keys_max);
            images.extend(chunk);
            match next {
                Some(next) => after = Some(next),
                None => return images,
            }
        }
    }

    fn sample() -> Store {
        let mut store = Store::new();
        for round in 0..4 {
            for key in ["a", "b", "c", "d"] {
                put(&mut store, key, &format!("{key}{round}"));
            }
        }
        delete(&mut store, "b");
        let txn = TxnRequest {
            compare: Vec::new(),
            success: vec![
                RequestOp::Put(PutRequest { key: b"e".to_vec(), value: b"e".to_vec(), ..PutRequest::default() }),
                RequestOp::DeleteRange(DeleteRangeRequest { key: b"c".to_vec(), range_end: Vec::new(), prev_kv: false }),
                RequestOp::Put(PutRequest { key: b"f".to_vec(), value: b"f".to_vec(), ..PutRequest::default() }),
            ],
            failure: Vec::new(),
        };
        store.txn(&txn, Stamp::default(), &|_| false).expect("txn");
        store.mark_durable();
        store.compact(9).expect("compact");
        store.mark_durable();
        put(&mut store, "a", "last");
        store
    }

    #[test]
    fn a_store_rebuilt_from_its_image_reads_hashes_and_watches_alike() {
        let mut live = sample();
        while !live.compact_step(2) {}
        let (revision, compacted) = live.durable_point();
        let rebuilt = Store::from_image(image_of(&live, 3), revision, compacted).expect("image");
        for at in [0, compacted, compacted + 3, revision - 1] {
            assert_eq!(everything_at(&rebuilt, at), everything_at(&live, at), "range at {at}");
            assert_eq!(rebuilt.hash_kv(at.max(0), revision), live.hash_kv(at.max(0), revision), "hash at {at}");
        }
        assert_eq!(rebuilt.hash_all(revision), live.hash_all(revision));
        for from in compacted..=revision {
            assert_eq!(rebuilt.events(&[0], &[0], from, revision, true), live.events(&[0], &[0], from, revision, true), "events from {from}");
            assert_eq!(rebuilt.events(b"a", &[], from, revision, true), live.events(b"a", &[], from, revision, true));
        }
        assert_eq!(rebuilt.space().in_use_bytes, live.space().in_use_bytes);
    }

    #[test]
    fn an_image_with_superseded_versions_is_compacted_on_the_next_step() {
        let live = sample(); // compacted, but physical compaction never ran
        let (revision, compacted) = live.durable_point();
        let mut rebuilt = Store::from_image(image_of(&live, 100), revision, compacted).expect("image");
        assert!(rebuilt.compaction_pending());
        while !rebuilt.compact_step(usize::MAX) {}
        assert_eq!(rebuilt.hash_kv(0, revision), live.hash_kv(0, revision));
        assert!(rebuilt.hash_all(revision) != live.hash_all(revision), "the superseded versions are gone");
    }

    #[test]
    fn the_compaction_pin_keeps_the_versions_a_snapshot_reads_until_lifted() {
        let mut store = sample();
        while !store.compact_step(usize::MAX) {}
        let (revision, compacted) = store.durable_point();
        let before = image_of(&store, 100);
        store.set_compaction_pin(Some(compacted));
        put(&mut store, "a", "newer");
        store.compact(store.current_revision()).expect("compact");
        store.mark_durable();
        assert!(store.compact_step(usize::MAX));
        let (during, _) = store.image_chunk(None, revision, 100);
        assert_eq!(during, before, "nothing the snapshot reads was dropped");
        store.set_compaction_pin(None);
        assert!(store.compaction_pending(), "the pass stopped short runs again");
        while !store.compact_step(usize::MAX) {}
        let (after, _) = store.image_chunk(None, revision, 100);
        assert_ne!(after, before);
    }

    #[test]
    fn changed_keys_are_listed_while_the_index_is_pinned() {
        let mut store = Store::new();
        put(&mut store, "a", "1");
        put(&mut store, "b", "1");
        let base = store.current_revision();
        store.set_revision_index_pin(Some(base));
        put(&mut store, "c", "1");
        put(&mut store, "a", "2");
        delete(&mut store, "b");
        store.compact(store.current_revision()).expect("compact");
        store.mark_durable();
        while !store.compact_step(usize::MAX) {}
        let current = store.current_revision();
        assert_eq!(store.changed_keys(base, current), Some(vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]));
        assert_eq!(store.changed_keys(current, current), Some(Vec::new()));
        let images = store.images_of(&[b"a".to_vec(), b"b".to_vec()], current);
        assert_eq!(images[0].versions.len(), 1);
        assert!(images[1].versions.is_empty(), "a deleted and compacted key has nothing left");
        store.set_revision_index_pin(None);
        put(&mut store, "d", "1");
        store.compact(store.current_revision()).expect("compact");
        store.mark_durable();
        while !store.compact_step(usize::MAX) {}
        assert_eq!(store.changed_keys(base, store.current_revision()), None, "unpinned, the index was pruned");
    }

    #[test]
    fn damaged_images_are_refused_naming_the_key() {
        let version = |mod_revision| VersionImage {
            mod_revision,
            sub_revision: 0,
            create_revision: mod_revision,
            version: 1,
            value: b"v".to_vec(),
            lease: 0,
            stamp: Stamp::default(),
        };
        let key = |name: &str, versions| KeyImage { key: name.into(), versions };
        assert!(Store::from_image(vec![key("b", vec![version(2)]), key("a", vec![version(3)])], 3, 0).is_err());
        assert!(Store::from_image(vec![key("a", vec![version(3), version(2)])], 3, 0).unwrap_err().contains("\"a\""));
        assert!(Store::from_image(vec![key("a", vec![version(4)])], 3, 0).is_err());
        let store = Store::from_image(vec![key("a", vec![version(2)]), key("b", vec![version(3)])], 3, 0).expect("image");
        assert_eq!(everything_at(&store, 0).len(), 2);
        assert_eq!(everything_at(&store, 2).len(), 1);
    }
}

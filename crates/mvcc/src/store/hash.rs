//! etcd's Maintenance.HashKV over the store, computed exactly as etcd 3.4 computes it from its
//! backend, so that a Strata node and an etcd node that were sent the same requests report the
//! same hash (and two Strata nodes with the same data always do).
//!
//! etcd hashes its `key` bucket: CRC-32C (Castagnoli) of the bucket name `key`, then, for every
//! stored version in revision order, the version's backend key and value:
//! - backend key: the revision as 8 big-endian bytes of the main revision, `_`, 8 big-endian bytes
//!   of the sub-revision (the version's place among its request's changes), and a `t` after it
//!   for a tombstone;
//! - backend value: the protobuf `mvccpb.KeyValue` of the version (key, create_revision,
//!   mod_revision, version, value, lease; zero fields left out); a tombstone's holds only the key.
//!
//! Which versions count, for `HashKV(rev)` with compacted revision `c`:
//! - every stored version with `c < mod_revision <= rev`;
//! - of the versions at or below `c`, only those still visible at `rev` (etcd's `kvindex.Keep`):
//!   a version that compaction keeps but a later write superseded by `rev` is left out, so the hash
//!   does not depend on how far physical compaction has progressed. (As in etcd, when no key at
//!   all is visible at `rev`, the versions at or below `c` that are still stored all count.)
//!
//! Maintenance.Hash is etcd's hash of its whole backend file, which Strata does not have; Strata
//! answers it with the same hash over every version it stores, compacted or not.

use strata_types::Revision;

use super::{visible, Store, Version};
use crate::KvError;

/// etcd's name of the bucket that holds the key space, the first bytes it hashes.
const KEY_BUCKET_NAME: &[u8] = b"key";

/// A HashKV answer: the hash and the revisions it was taken at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvHash {
    pub hash: u32,
    /// The store's current revision (the response header's).
    pub revision: Revision,
    /// The compacted revision when the hash was taken.
    pub compact_revision: Revision,
    /// The revision the hash covers: the request's, or the current one for 0.
    pub hash_revision: Revision,
}

impl Store {
    /// etcd's HashKV at `revision` (0: `current`) over the store read at `current`. A revision at
    /// or below the compacted one fails with `Compacted`, one above `current` with
    /// `FutureRevision`; a negative one hashes nothing (as etcd's does).
    pub fn hash_kv(&self, revision: Revision, current: Revision) -> Result<KvHash, KvError> {
        let compacted = self.compacted_revision;
        if revision > 0 && revision <= compacted {
            return Err(KvError::Compacted);
        }
        if revision > 0 && revision > current {
            return Err(KvError::FutureRevision);
        }
        let hash_revision = if revision == 0 { current } else { revision };
        let any_visible = self.keys.values().any(|history| visible(history, hash_revision).is_some());
        let hash = self.hash_versions(|history, version| {
            if version.mod_revision > hash_revision {
                return false;
            }
            if version.mod_revision > compacted || !any_visible {
                return true;
            }
            visible(history, hash_revision).is_some_and(|kept| std::ptr::eq(kept, version))
        });
        Ok(KvHash { hash, revision: current, compact_revision: compacted, hash_revision })
    }

    /// The hash over every stored version (Maintenance.Hash), and the revision it was taken at.
    pub fn hash_all(&self, current: Revision) -> (u32, Revision) {
        (self.hash_versions(|_, version| version.mod_revision <= current), current)
    }

    /// CRC-32C of the bucket name and the chosen versions in (revision, sub-revision) order.
    fn hash_versions(&self, chosen: impl Fn(&[Version], &Version) -> bool) -> u32 {
        let mut versions: Vec<(&[u8], &Version)> = Vec::new();
        for (key, history) in &self.keys {
            versions.extend(history.iter().filter(|version| chosen(history, version)).map(|version| (key.as_slice(), version)));
        }
        versions.sort_unstable_by_key(|(_, version)| (version.mod_revision, version.sub_revision));
        let mut crc = crc32c::crc32c(KEY_BUCKET_NAME);
        let mut buffer = Vec::new();
        for (key, version) in versions {
            buffer.clear();
            encode_backend_key(version, &mut buffer);
            crc = crc32c::crc32c_append(crc, &buffer);
            buffer.clear();
            encode_key_value(key, version, &mut buffer);
            crc = crc32c::crc32c_append(crc, &buffer);
        }
        crc
    }
}

/// etcd's `revToBytes`, with `appendMarkTombstone` for a tombstone.
fn encode_backend_key(version: &Version, buffer: &mut Vec<u8>) {
    buffer.extend_from_slice(&version.mod_revision.to_be_bytes());
    buffer.push(b'_');
    buffer.extend_from_slice(&i64::from(version.sub_revision).to_be_bytes());
    if version.is_tombstone() {
        buffer.push(b't');
    }
}

/// `mvccpb.KeyValue` in protobuf's encoding, fields in number order, zero values left out.
fn encode_key_value(key: &[u8], version: &Version, buffer: &mut Vec<u8>) {
    encode_bytes_field(1, key, buffer);
    if version.is_tombstone() {
        return;
    }
    encode_varint_field(2, version.create_revision, buffer);
    encode_varint_field(3, version.mod_revision, buffer);
    encode_varint_field(4, version.version, buffer);
    encode_bytes_field(5, &version.value, buffer);
    encode_varint_field(6, version.lease, buffer);
}

fn encode_bytes_field(field: u64, bytes: &[u8], buffer: &mut Vec<u8>) {
    if bytes.is_empty() {
        return;
    }
    encode_varint(field << 3 | 2, buffer);
    encode_varint(bytes.len() as u64, buffer);
    buffer.extend_from_slice(bytes);
}

fn encode_varint_field(field: u64, value: i64, buffer: &mut Vec<u8>) {
    if value == 0 {
        return;
    }
    encode_varint(field << 3, buffer);
    // int64 fields: a negative value takes ten bytes, as its two's complement.
    encode_varint(value as u64, buffer);
}

fn encode_varint(mut value: u64, buffer: &mut Vec<u8>) {
    while value >= 0x80 {
        buffer.push((value as u8) | 0x80);
        value >>= 7;
    }
    buffer.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DeleteRangeRequest, PutRequest, RequestOp, Stamp, TxnRequest};

    fn put(store: &mut Store, key: &str, value: &str) {
        let request = PutRequest { key: key.into(), value: value.into(), ..PutRequest::default() };
        store.put(&request, Stamp::default(), &|_| false).expect("put");
        store.mark_durable();
    }

    /// The hashes a real etcd 3.4.23 answered for `etcdctl put a 1` … `put a 5`, `compaction 3`.
    #[test]
    fn hashes_equal_etcds_for_the_same_requests() {
        let mut store = Store::new();
        assert_eq!(store.hash_kv(0, 1).map(|hash| hash.hash), Ok(1_084_519_789));
        for value in ["1", "2", "3", "4", "5"] {
            put(&mut store, "a", value);
        }
        store.compact(3).expect("compact");
        store.mark_durable();
        let at = |revision| store.hash_kv(revision, 6);
        assert_eq!(at(4), Ok(KvHash { hash: 1_619_834_972, revision: 6, compact_revision: 3, hash_revision: 4 }));
        assert_eq!(at(6).map(|hash| hash.hash), Ok(3_720_613_134));
        assert_eq!(at(0), Ok(KvHash { hash: 3_720_613_134, revision: 6, compact_revision: 3, hash_revision: 6 }));
        assert_eq!(at(-1).map(|hash| hash.hash), Ok(1_084_519_789));
        assert_eq!(at(3), Err(KvError::Compacted));
        assert_eq!(at(2), Err(KvError::Compacted));
        assert_eq!(at(7), Err(KvError::FutureRevision));
        // Physical compaction does not change the hash (and completes in one unbounded step, as
        // the node runs it after replay).
        assert!(store.compact_step(usize::MAX));
        assert_eq!(store.hash_kv(4, 6).map(|hash| hash.hash), Ok(1_619_834_972));
    }

    #[test]
    fn equal_data_hashes_equal_and_different_data_differs() {
        let build = |last: &str| {
            let mut store = Store::new();
            put(&mut store, "a", "1");
            put(&mut store, "b", "2");
            let txn = TxnRequest {
                compare: Vec::new(),
                success: vec![
                    RequestOp::Put(PutRequest { key: b"c".to_vec(), value: b"3".to_vec(), ..PutRequest::default() }),
                    RequestOp::DeleteRange(DeleteRangeRequest { key: b"a".to_vec(), range_end: Vec::new(), prev_kv: false }),
                ],
                failure: Vec::new(),
            };
            store.txn(&txn, Stamp::default(), &|_| false).expect("txn");
            store.mark_durable();
            put(&mut store, "b", last);
            store
        };
        let (one, same, other) = (build("x"), build("x"), build("y"));
        let current = one.current_revision();
        for revision in 0..=current {
            assert_eq!(one.hash_kv(revision, current), same.hash_kv(revision, current));
        }
        assert_ne!(one.hash_kv(0, current).map(|hash| hash.hash), other.hash_kv(0, current).map(|hash| hash.hash));
        // Up to the revision before the difference, the key spaces are equal.
        assert_eq!(one.hash_kv(current - 1, current), other.hash_kv(current - 1, current));
        assert_eq!(one.hash_all(current), same.hash_all(current));
        assert_ne!(one.hash_all(current), other.hash_all(current));
    }
}

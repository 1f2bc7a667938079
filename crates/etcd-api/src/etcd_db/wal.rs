//! etcd's write-ahead log (`member/wal/*.wal`), read just far enough to tell whether a data
//! directory's database misses changes that etcd would replay from the WAL at start-up (etcd was
//! killed, or stopped before its backend committed them).
//!
//! A WAL file is a sequence of records, each a little-endian `u64` length word (the low 56 bits
//! are the length; when the top bit is set, the low 3 bits of the top byte are the padding that
//! follows the data up to an 8-byte boundary) and a `walpb.Record {int64 type = 1; uint32 crc = 2;
//! bytes data = 3}`; type 2 holds a `raftpb.Entry {Type = 1; uint64 Term = 2; uint64 Index = 3;
//! bytes Data = 4}`. The last file is preallocated with zeros: reading stops at a zero length
//! word, and at a record that does not parse (a torn write, which etcd cuts as well).
//!
//! etcd's database records the index of the last entry it applied (meta `consistent_index`), but
//! etcd 3.4 moves it only with some changes (not with a lease grant, a delete that deleted
//! nothing, AuthEnable, ...), so a cleanly stopped etcd 3.4 often has entries after it whose
//! changes *are* in the database. So each entry after the consistent index is looked at: one
//! whose change the database shows (the lease exists, the user is gone, nothing in the deleted
//! range lives, ...) or that changes nothing Strata imports (raft's own, v2 membership, reads,
//! alarms, authentication) is fine; a put, a txn that writes, and what cannot be told (a password
//! change) are changes the database misses. Invariant: never a false "fine" for a put or a txn.

use std::collections::BTreeMap;

use prost::Message;

use super::{auth_names, has_live_key_in, show, EtcdState};
use crate::pb::etcdserverpb;

/// `walpb.Record`'s type of a raft entry.
const WAL_RECORD_ENTRY: i64 = 2;
/// `raftpb.EntryNormal`: the entries that carry requests (the others are configuration changes).
const RAFT_ENTRY_NORMAL: i32 = 0;
/// The low 56 bits of a length word are the record's length.
const LENGTH_MASK: u64 = (1 << 56) - 1;
/// A record longer than this is not one etcd writes (its WAL segments are 64 MiB): stop there.
const RECORD_BYTES_MAX: u64 = 64 * 1024 * 1024;

/// etcd's `walpb.Record` (written from etcd's published WAL format).
#[derive(Clone, PartialEq, prost::Message)]
struct WalRecord {
    #[prost(int64, tag = "1")]
    kind: i64,
    #[prost(uint32, tag = "2")]
    crc: u32,
    #[prost(bytes = "vec", tag = "3")]
    data: Vec<u8>,
}

/// etcd's `raftpb.Entry`.
#[derive(Clone, PartialEq, prost::Message)]
struct RaftEntry {
    #[prost(int32, tag = "1")]
    kind: i32,
    #[prost(uint64, tag = "2")]
    term: u64,
    #[prost(uint64, tag = "3")]
    index: u64,
    #[prost(bytes = "vec", tag = "4")]
    data: Vec<u8>,
}

/// One raft entry of the WAL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalEntry {
    pub index: u64,
    pub term: u64,
    /// `raftpb.EntryType`: 0 normal, 1 and 2 configuration changes.
    pub kind: i32,
    pub data: Vec<u8>,
}

/// Reads WAL files in etcd's order (their names sort in sequence order) and keeps the entries
/// after an index as etcd would replay them: an entry at an index replaces the one there and
/// drops those after it (raft's log truncation).
#[derive(Debug, Default)]
pub struct WalScan {
    after_index: u64,
    entries: BTreeMap<u64, WalEntry>,
    /// The index of the last entry read (what etcd's log ends at).
    pub last_index: u64,
    /// Entries read, in all.
    pub entry_count: u64,
}

impl WalScan {
    /// A scan that keeps the entries after `after_index` (the database's consistent index).
    pub fn new(after_index: u64) -> WalScan {
        WalScan { after_index, ..WalScan::default() }
    }

    /// Reads one file's records; stops at its zero-filled tail or at a record that does not parse.
    pub fn read_file(&mut self, bytes: &[u8]) {
        let mut offset = 0usize;
        while let Some(word) = bytes.get(offset..offset + 8).and_then(|word| word.try_into().ok()).map(u64::from_le_bytes) {
            if word == 0 {
                return;
            }
            let length = word & LENGTH_MASK;
            let padding = if word >> 63 == 1 { (word >> 56) & 0x7 } else { 0 };
            if length > RECORD_BYTES_MAX {
                return;
            }
            let start = offset + 8;
            let end = start + length as usize;
            let Some(payload) = bytes.get(start..end) else { return };
            let Ok(record) = WalRecord::decode(payload) else { return };
            if record.kind == WAL_RECORD_ENTRY {
                let Ok(entry) = RaftEntry::decode(record.data.as_slice()) else { return };
                self.add(WalEntry { index: entry.index, term: entry.term, kind: entry.kind, data: entry.data });
            }
            offset = end + padding as usize;
        }
    }

    fn add(&mut self, entry: WalEntry) {
        self.entry_count += 1;
        self.last_index = entry.index;
        let _dropped = self.entries.split_off(&entry.index);
        if entry.index > self.after_index {
            self.entries.insert(entry.index, entry);
        }
    }

    /// The entries after the index given to [`WalScan::new`], in index order.
    pub fn entries(&self) -> impl Iterator<Item = &WalEntry> {
        self.entries.values()
    }
}

/// Reads `bytes` as one WAL file and checks every entry against an empty database, ignoring the
/// result: the fuzz target of the WAL reader (`fuzz/targets.rs`).
pub fn fuzz_wal(bytes: &[u8]) {
    let mut scan = WalScan::new(0);
    scan.read_file(bytes);
    let empty = EtcdState {
        revision: 1,
        compacted_revision: 0,
        consistent_index: 0,
        keys: Vec::new(),
        leases: Vec::new(),
        auth: strata_auth::AuthState::new(),
        members: Vec::new(),
        removed_members: Vec::new(),
        alarms: Vec::new(),
        summary: Default::default(),
    };
    let _ = unapplied(&scan, &empty);
}

/// An entry after the consistent index whose change the database does not show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unapplied {
    pub index: u64,
    /// What the entry changes, in words (`a put of key "a"`).
    pub change: String,
}

/// The entries of `scan` whose change `state` does not show (see the module documentation).
pub fn unapplied(scan: &WalScan, state: &EtcdState) -> Vec<Unapplied> {
    scan.entries().filter_map(|entry| unapplied_change(entry, state).map(|change| Unapplied { index: entry.index, change })).collect()
}

/// The top-level fields of a protobuf message: `(field number, payload)` for length-delimited
/// fields, an empty payload for the others; `None` when it does not parse.
fn top_fields(mut bytes: &[u8]) -> Option<Vec<(u64, &[u8])>> {
    fn varint(bytes: &mut &[u8]) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = bytes.split_first()?;
            *bytes = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Some(value);
            }
        }
        None
    }
    let mut fields = Vec::new();
    while !bytes.is_empty() {
        let tag = varint(&mut bytes)?;
        let (number, wire_type) = (tag >> 3, tag & 7);
        match wire_type {
            0 => {
                varint(&mut bytes)?;
                fields.push((number, &[][..]));
            }
            1 | 5 => {
                let width = if wire_type == 1 { 8 } else { 4 };
                bytes = bytes.get(width..)?;
                fields.push((number, &[][..]));
            }
            2 => {
                let length = usize::try_from(varint(&mut bytes)?).ok()?;
                let payload = bytes.get(..length)?;
                bytes = &bytes[length..];
                fields.push((number, payload));
            }
            _ => return None,
        }
    }
    Some(fields)
}

/// What an entry changes that `state` does not show, if anything.
fn unapplied_change(entry: &WalEntry, state: &EtcdState) -> Option<String> {
    if entry.kind != RAFT_ENTRY_NORMAL || entry.data.is_empty() {
        return None;
    }
    let Some(fields) = top_fields(&entry.data) else {
        return Some("an entry that does not decode as a request".to_string());
    };
    // A v2 request (or an InternalRaftRequest wrapping one) changes etcd's v2 store only:
    // membership attributes and the cluster version, which an import does not keep.
    if fields.iter().any(|(number, _)| *number == 2) {
        return None;
    }
    let (users, roles) = auth_names(state);
    let undecodable = |what: &str| Some(format!("a {what} that does not decode"));
    for (number, payload) in fields {
        let missing = match number {
            // ID, range, header, alarm, lease checkpoint, authenticate, the auth reads, cluster
            // version / member attributes / downgrade (etcd 3.5).
            1 | 3 | 100 | 10 | 11 | 1012 | 1102 | 1106 | 1107 | 1202 | 1300 | 1301 | 1302 => None,
            4 => match etcdserverpb::PutRequest::decode(payload) {
                Ok(put) => Some(format!("a put of key {}", show(&put.key))),
                Err(_) => undecodable("put"),
            },
            5 => match etcdserverpb::DeleteRangeRequest::decode(payload) {
                Ok(delete) => has_live_key_in(state, &delete.key, &delete.range_end)
                    .then(|| format!("a delete of {} (to {}) of keys the database still holds", show(&delete.key), show(&delete.range_end))),
                Err(_) => undecodable("delete"),
            },
            6 => match etcdserverpb::TxnRequest::decode(payload) {
                Ok(txn) => txn_writes(&txn).then(|| "a txn that writes".to_string()),
                Err(_) => undecodable("txn"),
            },
            7 => match etcdserverpb::CompactionRequest::decode(payload) {
                Ok(compaction) => (compaction.revision > state.compacted_revision).then(|| format!("a compaction at revision {}", compaction.revision)),
                Err(_) => undecodable("compaction"),
            },
            8 => match etcdserverpb::LeaseGrantRequest::decode(payload) {
                Ok(grant) => (!has_lease(state, grant.id)).then(|| format!("a grant of lease {:x}", grant.id)),
                Err(_) => undecodable("lease grant"),
            },
            9 => match etcdserverpb::LeaseRevokeRequest::decode(payload) {
                Ok(revoke) => has_lease(state, revoke.id).then(|| format!("a revoke of lease {:x}", revoke.id)),
                Err(_) => undecodable("lease revoke"),
            },
            1000 => (!state.auth.is_enabled()).then(|| "enabling auth".to_string()),
            1011 => state.auth.is_enabled().then(|| "disabling auth".to_string()),
            1100 => match etcdserverpb::AuthUserAddRequest::decode(payload) {
                Ok(add) => (!users.contains(&add.name)).then(|| format!("adding user {}", show(add.name.as_bytes()))),
                Err(_) => undecodable("user add"),
            },
            1101 => match etcdserverpb::AuthUserDeleteRequest::decode(payload) {
                Ok(delete) => users.contains(&delete.name).then(|| format!("deleting user {}", show(delete.name.as_bytes()))),
                Err(_) => undecodable("user delete"),
            },
            1103 => Some("a password change (whether the database has it cannot be told)".to_string()),
            1104 => match etcdserverpb::AuthUserGrantRoleRequest::decode(payload) {
                Ok(grant) => (!state.auth.has_role(&grant.user, &grant.role))
                    .then(|| format!("granting role {} to user {}", show(grant.role.as_bytes()), show(grant.user.as_bytes()))),
                Err(_) => undecodable("role grant"),
            },
            1105 => match etcdserverpb::AuthUserRevokeRoleRequest::decode(payload) {
                Ok(revoke) => state
                    .auth
                    .has_role(&revoke.name, &revoke.role)
                    .then(|| format!("revoking role {} from user {}", show(revoke.role.as_bytes()), show(revoke.name.as_bytes()))),
                Err(_) => undecodable("role revoke"),
            },
            1200 => match etcdserverpb::AuthRoleAddRequest::decode(payload) {
                Ok(add) => (!roles.contains(&add.name)).then(|| format!("adding role {}", show(add.name.as_bytes()))),
                Err(_) => undecodable("role add"),
            },
            1201 => match etcdserverpb::AuthRoleDeleteRequest::decode(payload) {
                Ok(delete) => roles.contains(&delete.role).then(|| format!("deleting role {}", show(delete.role.as_bytes()))),
                Err(_) => undecodable("role delete"),
            },
            1203 => match etcdserverpb::AuthRoleGrantPermissionRequest::decode(payload) {
                Ok(grant) => {
                    let granted = grant.perm.as_ref().is_some_and(|perm| {
                        state.auth.role(&grant.name).is_some_and(|role| {
                            role.permissions.iter().any(|held| held.kind == perm.perm_type && held.key == perm.key && held.range_end == perm.range_end)
                        })
                    });
                    (!granted).then(|| format!("granting a permission to role {}", show(grant.name.as_bytes())))
                }
                Err(_) => undecodable("permission grant"),
            },
            1204 => match etcdserverpb::AuthRoleRevokePermissionRequest::decode(payload) {
                Ok(revoke) => {
                    let held = state.auth.role(&revoke.role).is_some_and(|role| {
                        role.permissions.iter().any(|held| held.key == revoke.key && held.range_end == revoke.range_end)
                    });
                    held.then(|| format!("revoking a permission from role {}", show(revoke.role.as_bytes())))
                }
                Err(_) => undecodable("permission revoke"),
            },
            other => Some(format!("a request (field {other}) this release does not know")),
        };
        if missing.is_some() {
            return missing;
        }
    }
    None
}

fn has_lease(state: &EtcdState, id: i64) -> bool {
    state.leases.binary_search_by_key(&id, |lease| lease.id).is_ok()
}

/// Whether a txn has a put, a delete or a nested txn in either branch (which one ran cannot be
/// told from the WAL).
fn txn_writes(txn: &etcdserverpb::TxnRequest) -> bool {
    use etcdserverpb::request_op::Request;
    txn.success.iter().chain(&txn.failure).any(|op| !matches!(op.request, Some(Request::RequestRange(_)) | None))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WAL record as etcd frames it: length word (with padding to 8 bytes), then the record.
    fn frame(record: &WalRecord) -> Vec<u8> {
        let data = record.encode_to_vec();
        let padding = (8 - data.len() % 8) % 8;
        let mut word = data.len() as u64;
        if padding > 0 {
            word |= (0x80 | padding as u64) << 56;
        }
        let mut bytes = word.to_le_bytes().to_vec();
        bytes.extend_from_slice(&data);
        bytes.extend(std::iter::repeat_n(0, padding));
        bytes
    }

    fn entry(index: u64, data: Vec<u8>) -> Vec<u8> {
        let raft = RaftEntry { kind: 0, term: 2, index, data };
        frame(&WalRecord { kind: WAL_RECORD_ENTRY, crc: 0, data: raft.encode_to_vec() })
    }

    fn internal(field: u32, message: &impl Message) -> Vec<u8> {
        let mut bytes = Vec::new();
        prost::encoding::encode_key(field, prost::encoding::WireType::LengthDelimited, &mut bytes);
        prost::encoding::encode_varint(message.encoded_len() as u64, &mut bytes);
        message.encode_raw(&mut bytes);
        bytes
    }

    fn state() -> EtcdState {
        EtcdState {
            revision: 5,
            compacted_revision: 0,
            consistent_index: 10,
            keys: vec![strata_snapshot::KeyRecord {
                key: b"live".to_vec(),
                versions: vec![strata_snapshot::VersionRecord { mod_revision: 5, version: 1, create_revision: 5, ..Default::default() }],
            }],
            leases: vec![strata_snapshot::LeaseRecord { id: 7, ttl_seconds: 60, keys: Vec::new() }],
            auth: strata_auth::AuthState::new(),
            members: Vec::new(),
            removed_members: Vec::new(),
            alarms: Vec::new(),
            summary: Default::default(),
        }
    }

    #[test]
    fn entries_after_the_consistent_index_are_kept_as_etcd_replays_them() {
        let mut file = Vec::new();
        for index in 1..=12 {
            file.extend(entry(index, Vec::new()));
        }
        // A new leader rewrites index 12 onwards.
        file.extend(entry(12, internal(4, &etcdserverpb::PutRequest { key: b"k".to_vec(), ..Default::default() })));
        file.extend(vec![0; 64]);
        let mut scan = WalScan::new(10);
        scan.read_file(&file);
        assert_eq!(scan.last_index, 12);
        assert_eq!(scan.entries().map(|entry| entry.index).collect::<Vec<_>>(), [11, 12]);
        let missing = unapplied(&scan, &state());
        assert_eq!(missing, vec![Unapplied { index: 12, change: "a put of key \"k\"".to_string() }]);
        // A torn record ends the scan without an error.
        let mut torn = file.clone();
        torn.truncate(torn.len() - 70);
        let mut scan = WalScan::new(10);
        scan.read_file(&torn);
        assert_eq!(scan.last_index, 12);
    }

    #[test]
    fn changes_the_database_shows_are_not_missing() {
        let check = |data: Vec<u8>| {
            let mut scan = WalScan::new(10);
            scan.read_file(&entry(11, data));
            unapplied(&scan, &state()).into_iter().map(|missing| missing.change).next()
        };
        assert_eq!(check(internal(8, &etcdserverpb::LeaseGrantRequest { ttl: 60, id: 7 })), None, "the lease is there");
        assert_eq!(check(internal(8, &etcdserverpb::LeaseGrantRequest { ttl: 60, id: 8 })).as_deref(), Some("a grant of lease 8"));
        assert_eq!(check(internal(9, &etcdserverpb::LeaseRevokeRequest { id: 9 })), None, "the lease is gone");
        let delete = |key: &[u8]| internal(5, &etcdserverpb::DeleteRangeRequest { key: key.to_vec(), ..Default::default() });
        assert_eq!(check(delete(b"gone")), None, "nothing to delete");
        assert!(check(delete(b"live")).is_some());
        assert_eq!(check(b"\x08\x01\x12\x03PUT\x1a\x0a/0/version".to_vec()), None, "a v2 request");
        assert_eq!(check(internal(1000, &etcdserverpb::AuthEnableRequest {})).as_deref(), Some("enabling auth"));
        assert!(check(internal(6, &etcdserverpb::TxnRequest::default())).is_none(), "a txn without operations");
        assert!(check(vec![0xff]).is_some(), "garbage is not assumed harmless");
    }
}

//! The payload of one log record: one request's effects (or one compaction, lease grant, lease
//! revoke, membership, alarm or auth change), stamped with its revision, hybrid-clock time and
//! origin. Encoded as protobuf so that later releases can add fields that older readers skip.
//! `docs/formats/log-entry.md` describes it field by field.

use strata_mvcc::{Change, ChangeKind, Stamp};
use strata_types::{Hlc, NodeId, Origin};

#[derive(Clone, PartialEq, prost::Message)]
pub struct LogEntry {
    /// The revision this entry's changes were made at (for a compaction: the revision current
    /// when it was requested).
    #[prost(int64, tag = "1")]
    pub revision: i64,
    /// Hybrid logical clock: 48 bits of Unix milliseconds, 16 bits of counter.
    #[prost(uint64, tag = "2")]
    pub hlc: u64,
    #[prost(uint64, tag = "3")]
    pub origin_node: u64,
    /// Dense per origin, from 1.
    #[prost(uint64, tag = "4")]
    pub origin_sequence: u64,
    #[prost(message, repeated, tag = "5")]
    pub changes: Vec<LogChange>,
    /// Set on a compaction entry: reads below this revision fail from here on.
    #[prost(int64, optional, tag = "6")]
    pub compact_revision: Option<i64>,
    /// Set on a lease grant entry (no changes; `revision` is the current revision).
    #[prost(message, optional, tag = "7")]
    pub lease_grant: Option<LogLeaseGrant>,
    /// Set on a lease revoke entry: the lease's id. Its `changes` delete the lease's keys (none:
    /// `revision` is the current revision).
    #[prost(int64, optional, tag = "8")]
    pub lease_revoke: Option<i64>,
    /// Set on a membership or alarm entry (no changes; `revision` is the current revision).
    #[prost(message, optional, tag = "9")]
    pub cluster: Option<LogClusterChange>,
    /// Set on an auth entry: one change to users, roles or the enabled flag (no changes;
    /// `revision` is the current revision).
    #[prost(message, optional, tag = "10")]
    pub auth: Option<LogAuthChange>,
}

/// One change to the auth state; exactly one field is set (see `auth.rs`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct LogAuthChange {
    #[prost(bool, optional, tag = "1")]
    pub enable: Option<bool>,
    #[prost(bool, optional, tag = "2")]
    pub disable: Option<bool>,
    /// A user added: its name, bcrypt hash (empty without password) and `no_password` option.
    #[prost(message, optional, tag = "3")]
    pub user_add: Option<LogUser>,
    /// The name of a user deleted.
    #[prost(string, optional, tag = "4")]
    pub user_delete: Option<String>,
    /// A user's new bcrypt hash.
    #[prost(message, optional, tag = "5")]
    pub user_change_password: Option<LogUser>,
    #[prost(message, optional, tag = "6")]
    pub user_grant_role: Option<LogUserRole>,
    #[prost(message, optional, tag = "7")]
    pub user_revoke_role: Option<LogUserRole>,
    /// The name of a role added.
    #[prost(string, optional, tag = "8")]
    pub role_add: Option<String>,
    /// The name of a role deleted (and taken from every user).
    #[prost(string, optional, tag = "9")]
    pub role_delete: Option<String>,
    #[prost(message, optional, tag = "10")]
    pub role_grant_permission: Option<LogRolePermission>,
    #[prost(message, optional, tag = "11")]
    pub role_revoke_permission: Option<LogRolePermission>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LogUser {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(bytes = "vec", tag = "2")]
    pub password_hash: Vec<u8>,
    #[prost(bool, tag = "3")]
    pub no_password: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LogUserRole {
    #[prost(string, tag = "1")]
    pub user: String,
    #[prost(string, tag = "2")]
    pub role: String,
}

/// A role's permission granted (with its etcd type) or revoked (type unused).
#[derive(Clone, PartialEq, prost::Message)]
pub struct LogRolePermission {
    #[prost(string, tag = "1")]
    pub role: String,
    #[prost(int32, tag = "2")]
    pub kind: i32,
    #[prost(bytes = "vec", tag = "3")]
    pub key: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    pub range_end: Vec<u8>,
}

/// One change to membership or alarms; exactly one field is set.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LogClusterChange {
    /// A member added (on a single-member Strata: always a learner).
    #[prost(message, optional, tag = "1")]
    pub member_add: Option<LogMember>,
    /// The id of a member removed.
    #[prost(uint64, optional, tag = "2")]
    pub member_remove: Option<u64>,
    /// A member's new peer URLs (and its unchanged learner flag).
    #[prost(message, optional, tag = "3")]
    pub member_update: Option<LogMember>,
    #[prost(message, optional, tag = "4")]
    pub alarm_activate: Option<LogAlarm>,
    #[prost(message, optional, tag = "5")]
    pub alarm_deactivate: Option<LogAlarm>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LogMember {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(string, repeated, tag = "2")]
    pub peer_urls: Vec<String>,
    #[prost(bool, tag = "3")]
    pub is_learner: bool,
}

/// An alarm: the member it was raised for and etcd's `AlarmType` number.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LogAlarm {
    #[prost(uint64, tag = "1")]
    pub member_id: u64,
    #[prost(int32, tag = "2")]
    pub alarm: i32,
}

/// A granted lease: its id and the TTL it was granted with (already raised to the minimum).
#[derive(Clone, PartialEq, prost::Message)]
pub struct LogLeaseGrant {
    #[prost(int64, tag = "1")]
    pub id: i64,
    #[prost(int64, tag = "2")]
    pub ttl: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LogChange {
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    #[prost(enumeration = "LogChangeKind", tag = "2")]
    pub kind: i32,
    #[prost(bytes = "vec", tag = "3")]
    pub value: Vec<u8>,
    #[prost(int64, tag = "4")]
    pub lease: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum LogChangeKind {
    Put = 0,
    Delete = 1,
}

impl LogEntry {
    pub fn stamp(&self) -> Stamp {
        Stamp { hlc: Hlc(self.hlc), origin: Origin { node: NodeId(self.origin_node), sequence: self.origin_sequence } }
    }

    pub fn from_changes(revision: i64, stamp: Stamp, changes: &[Change]) -> LogEntry {
        LogEntry {
            revision,
            hlc: stamp.hlc.0,
            origin_node: stamp.origin.node.0,
            origin_sequence: stamp.origin.sequence,
            changes: changes
                .iter()
                .map(|change| match &change.kind {
                    ChangeKind::Put { value, lease } => LogChange {
                        key: change.key.clone(),
                        kind: LogChangeKind::Put as i32,
                        value: value.clone(),
                        lease: *lease,
                    },
                    ChangeKind::Delete => LogChange { key: change.key.clone(), kind: LogChangeKind::Delete as i32, value: Vec::new(), lease: 0 },
                })
                .collect(),
            compact_revision: None,
            lease_grant: None,
            lease_revoke: None,
            cluster: None,
            auth: None,
        }
    }

    /// The changes, or an error naming the unknown change kind (a newer writer's entry).
    pub fn changes(&self) -> Result<Vec<Change>, String> {
        self.changes
            .iter()
            .map(|change| {
                let kind = match LogChangeKind::try_from(change.kind) {
                    Ok(LogChangeKind::Put) => ChangeKind::Put { value: change.value.clone(), lease: change.lease },
                    Ok(LogChangeKind::Delete) => ChangeKind::Delete,
                    Err(_) => return Err(format!("unknown change kind {}", change.kind)),
                };
                Ok(Change { key: change.key.clone(), kind })
            })
            .collect()
    }
}

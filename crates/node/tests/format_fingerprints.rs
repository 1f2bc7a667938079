//! A record's encoding may change only with a new format version. Each record schema of each file
//! kind gets a fingerprint, checked against the committed list in
//! `tests/fixtures/format-fingerprints.txt` (at the repository's root) for the kind's newest
//! version in `strata_types::formats`.
//!
//! A fingerprint hashes, for every record type, its field list (the `Debug` of its default value:
//! field names and kinds, so an added, removed or renamed field changes it) and the bytes of a
//! sample with every field set (so a changed tag, type or layout changes it).
//!
//! When this test fails: the encoding changed. Add a new version of that kind to
//! `strata_types::formats` (with its reader kept for the old one, golden files under
//! `tests/fixtures/` and its history in `docs/formats/`); then
//! `STRATA_BLESS_FINGERPRINTS=1 cargo test -p strata-node --test format_fingerprints` appends the
//! lines of the new version. Lines of released versions are never edited.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::{Path, PathBuf};

use prost::Message;
use strata_node::{
    LogAlarm, LogAuthChange, LogChange, LogChangeKind, LogClusterChange, LogEntry, LogLeaseGrant, LogMember, LogRolePermission, LogUser, LogUserRole,
    Manifest,
};
use strata_segment_log::SegmentHeader;
use strata_snapshot::{
    AlarmRecord, KeyRecord, LeaseRecord, MemberRecord, Record, RemovedMemberRecord, SnapshotBase, SnapshotEncoder, SnapshotHeader, VersionRecord,
};
use strata_types::formats::{newest_version, FileKind};

fn fingerprints_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/format-fingerprints.txt")
}

/// FNV-1a, 64 bits: stable across releases and platforms (unlike `std`'s hashers).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3))
}

fn fingerprint(parts: &[&[u8]]) -> String {
    let mut all = Vec::new();
    for part in parts {
        all.extend_from_slice(&(part.len() as u64).to_le_bytes());
        all.extend_from_slice(part);
    }
    format!("{:016x}", fnv1a(&all))
}

/// The field list of a type, as its default value's `Debug`.
fn fields<T: Default + Debug>() -> Vec<u8> {
    format!("{:?}", T::default()).into_bytes()
}

fn message<T: Message + Default + Debug>(sample: &T) -> String {
    fingerprint(&[&fields::<T>(), &sample.encode_to_vec()])
}

fn manifest_records() -> BTreeMap<&'static str, String> {
    let sample = Manifest {
        format_family: "strata".into(),
        cluster_id: 0x0C1,
        node_id: 0x0A1,
        name: "node-a".into(),
        cluster_version: "3.5.0".into(),
        writer_version: "9.9.9".into(),
    };
    BTreeMap::from([("Manifest", fingerprint(&[&fields::<Manifest>(), &sample.encode_file()]))])
}

fn segment_records() -> BTreeMap<&'static str, String> {
    let version = newest_version(FileKind::Segment);
    let header = SegmentHeader {
        format_version: version,
        writer_version: 2_000,
        node_id: 0xA1,
        first_index: 11,
        first_revision: 12,
        term: 0,
        cluster_id: if version >= 2 { 0xC1 } else { 0 },
    };
    let member = LogMember { id: 0xB2, peer_urls: vec!["http://p:2380".into()], is_learner: true };
    let alarm = LogAlarm { member_id: 0xB2, alarm: 1 };
    let user = LogUser { name: "u".into(), password_hash: b"$2b$10$h".to_vec(), no_password: true };
    let user_role = LogUserRole { user: "u".into(), role: "r".into() };
    let permission = LogRolePermission { role: "r".into(), kind: 2, key: b"a".to_vec(), range_end: b"b".to_vec() };
    let auth = LogAuthChange {
        enable: Some(true),
        disable: Some(false),
        user_add: Some(user.clone()),
        user_delete: Some("d".into()),
        user_change_password: Some(user),
        user_grant_role: Some(user_role.clone()),
        user_revoke_role: Some(user_role),
        role_add: Some("r".into()),
        role_delete: Some("r2".into()),
        role_grant_permission: Some(permission.clone()),
        role_revoke_permission: Some(permission),
    };
    let entry = LogEntry {
        revision: 5,
        hlc: 6,
        origin_node: 7,
        origin_sequence: 8,
        changes: vec![LogChange { key: b"k".to_vec(), kind: LogChangeKind::Delete as i32, value: b"v".to_vec(), lease: 9 }],
        compact_revision: Some(3),
        lease_grant: Some(LogLeaseGrant { id: 10, ttl: 11 }),
        lease_revoke: Some(12),
        cluster: Some(LogClusterChange {
            member_add: Some(member.clone()),
            member_remove: Some(13),
            member_update: Some(member),
            alarm_activate: Some(alarm.clone()),
            alarm_deactivate: Some(alarm),
        }),
        auth: Some(auth),
    };
    BTreeMap::from([
        ("SegmentHeader", fingerprint(&[format!("{:?}", SegmentHeader { format_version: 0, writer_version: 0, node_id: 0, first_index: 0, first_revision: 0, term: 0, cluster_id: 0 }).as_bytes(), &header.encode()])),
        ("LogEntry", message(&entry)),
        ("LogAuthChange", fingerprint(&[&fields::<LogAuthChange>()])),
        ("LogChange", fingerprint(&[&fields::<LogChange>()])),
        ("LogClusterChange", fingerprint(&[&fields::<LogClusterChange>()])),
        ("LogMember", fingerprint(&[&fields::<LogMember>()])),
        ("LogAlarm", fingerprint(&[&fields::<LogAlarm>()])),
        ("LogLeaseGrant", fingerprint(&[&fields::<LogLeaseGrant>()])),
        ("LogUser", fingerprint(&[&fields::<LogUser>()])),
        ("LogUserRole", fingerprint(&[&fields::<LogUserRole>()])),
        ("LogRolePermission", fingerprint(&[&fields::<LogRolePermission>()])),
    ])
}

fn snapshot_records() -> BTreeMap<&'static str, String> {
    let header = SnapshotHeader {
        format_version: newest_version(FileKind::Snapshot),
        writer_version: 2_000,
        node_id: 0xA1,
        cluster_id: 0xC1,
        revision: 20,
        log_index: 21,
        compacted_revision: 3,
        hlc: 22,
        timeframe: BTreeMap::from([(0xA1, 23), (0xA2, 24)]),
        base: Some(SnapshotBase { revision: 10, log_index: 11 }),
        created_unix_millis: 25,
    };
    let key = KeyRecord {
        key: b"key".to_vec(),
        versions: vec![VersionRecord {
            mod_revision: 4,
            sub_revision: 1,
            create_revision: 2,
            version: 3,
            value: b"value".to_vec(),
            lease: 5,
            hlc: 6,
            origin_node: 7,
            origin_sequence: 8,
        }],
    };
    let lease = LeaseRecord { id: 1, ttl_seconds: 2, keys: vec![b"key".to_vec()] };
    let member = MemberRecord { id: 1, peer_urls: vec!["http://p:2380".into()], is_learner: true };
    let removed = RemovedMemberRecord { id: 2 };
    let alarm = AlarmRecord { member_id: 1, alarm: 2 };
    let mut encoder = SnapshotEncoder::new(&header);
    for record in [
        Record::Key(key),
        Record::Lease(lease),
        Record::Member(member),
        Record::RemovedMember(removed),
        Record::Alarm(alarm),
        Record::Auth(b"auth".to_vec()),
    ] {
        encoder.append(&record);
    }
    let mut file = encoder.take();
    file.extend(encoder.finish().0);
    BTreeMap::from([
        ("SnapshotFile", fingerprint(&[format!("{:?}", SnapshotHeader::default()).as_bytes(), &file])),
        ("KeyRecord", fingerprint(&[&fields::<KeyRecord>()])),
        ("VersionRecord", fingerprint(&[&fields::<VersionRecord>()])),
        ("LeaseRecord", fingerprint(&[&fields::<LeaseRecord>()])),
        ("MemberRecord", fingerprint(&[&fields::<MemberRecord>()])),
        ("RemovedMemberRecord", fingerprint(&[&fields::<RemovedMemberRecord>()])),
        ("AlarmRecord", fingerprint(&[&fields::<AlarmRecord>()])),
    ])
}

/// `(kind name, version, record) -> fingerprint` of today's code, for each kind's newest version.
fn current() -> BTreeMap<(String, u32, String), String> {
    let mut all = BTreeMap::new();
    for (kind, records) in [
        (FileKind::Manifest, manifest_records()),
        (FileKind::Segment, segment_records()),
        (FileKind::Snapshot, snapshot_records()),
        (FileKind::IncrementalSnapshot, snapshot_records()),
    ] {
        for (record, fingerprint) in records {
            all.insert((kind.name().to_string(), newest_version(kind), record.to_string()), fingerprint);
        }
    }
    all
}

fn committed() -> BTreeMap<(String, u32, String), String> {
    let text = std::fs::read_to_string(fingerprints_path()).unwrap_or_default();
    text.lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(fields.len(), 4, "a line is `kind version record fingerprint`: {line:?}");
            ((fields[0].to_string(), fields[1].parse().expect("version"), fields[2].to_string()), fields[3].to_string())
        })
        .collect()
}

#[test]
fn record_encodings_match_their_format_versions() {
    let current = current();
    let mut committed = committed();
    if std::env::var_os("STRATA_BLESS_FINGERPRINTS").is_some() {
        let known_versions: Vec<(String, u32)> = committed.keys().map(|(kind, version, _)| (kind.clone(), *version)).collect();
        let mut text = std::fs::read_to_string(fingerprints_path()).unwrap_or_else(|_| {
            "# kind version record fingerprint: see crates/node/tests/format_fingerprints.rs. Append only.\n".to_string()
        });
        for ((kind, version, record), fingerprint) in &current {
            if !known_versions.contains(&(kind.clone(), *version)) {
                text.push_str(&format!("{kind} {version} {record} {fingerprint}\n"));
                committed.insert((kind.clone(), *version, record.clone()), fingerprint.clone());
            }
        }
        std::fs::write(fingerprints_path(), text).expect("write the fingerprints");
    }
    let mut changed = Vec::new();
    for ((kind, version, record), fingerprint) in &current {
        match committed.get(&(kind.clone(), *version, record.clone())) {
            Some(expected) if expected == fingerprint => {}
            Some(expected) => changed.push(format!("{kind} format version {version}: {record} is now {fingerprint}, committed {expected}")),
            None => changed.push(format!("{kind} format version {version}: {record} ({fingerprint}) has no committed fingerprint")),
        }
    }
    assert!(
        changed.is_empty(),
        "record encodings changed without a new format version:\n  {}\n\
         Add a new format version to strata_types::formats (keep the old reader, add golden files under tests/fixtures/ and the \
         history in docs/formats/), then run STRATA_BLESS_FINGERPRINTS=1 cargo test -p strata-node --test format_fingerprints.",
        changed.join("\n  ")
    );
}

#[test]
fn fingerprints_see_a_changed_sample() {
    // The check is only as good as its sensitivity: one changed field changes the fingerprint.
    let entry = LogEntry { revision: 1, ..LogEntry::default() };
    let other = LogEntry { revision: 2, ..LogEntry::default() };
    assert_ne!(message(&entry), message(&other));
    assert_ne!(fingerprint(&[&fields::<LogMember>()]), fingerprint(&[&fields::<LogAlarm>()]));
}

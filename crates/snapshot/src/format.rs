//! The snapshot file format, version 1, as pure encode/decode functions (no IO). The byte-by-byte
//! description with its crash cases lives in `docs/formats/snapshot.md`; keep the two in step.
//!
//! A file is a fixed prefix (magic, format version, writer version, header length, header CRC),
//! the header (protobuf), then frames `[length u32][crc32c u32][kind u8][payload]` (little-endian;
//! the CRC covers the kind byte and the payload), the last of which is the trailer (kind
//! [`RecordKind::End`]): the record and key counts and a CRC32C of every byte before it.
//!
//! Invariants:
//! - Bytes 0..12 (magic, format version) keep their meaning in every version, so any release can
//!   tell a foreign file and a newer-format file apart before trusting the rest.
//! - Payloads are protobuf messages: later releases add fields that this one skips. A record kind
//!   this release does not know is refused (it would be state this release cannot restore).

use std::collections::BTreeMap;

use prost::Message;

/// The first eight bytes of every snapshot file.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"STRATSNP";
/// The newest snapshot format version this code writes and reads (`strata_types::formats`; full
/// and incremental snapshots share the format and its versions).
pub const FORMAT_VERSION_CURRENT: u32 = strata_types::formats::newest_version(strata_types::formats::FileKind::Snapshot);
/// Magic (8), format version (4), writer version (4), header length (4), header CRC (4).
pub const PREFIX_BYTES: usize = 24;
/// The largest header payload a reader accepts.
pub const HEADER_BYTES_MAX: usize = 1024 * 1024;
/// Length (4), CRC (4), kind (1).
pub const FRAME_HEADER_BYTES: usize = 9;
/// The largest record payload a reader accepts (a key's versions are split into runs far smaller).
pub const RECORD_BYTES_MAX: usize = 128 * 1024 * 1024;
/// A key whose versions take more than this is written as several consecutive key records.
pub const KEY_RECORD_BYTES_TARGET: usize = 4 * 1024 * 1024;
/// The trailer's payload: record count (8), key count (8), file CRC (4).
pub const TRAILER_PAYLOAD_BYTES: usize = 20;

/// Where the format version sits, for error offsets.
pub(crate) const FORMAT_VERSION_OFFSET: u64 = 8;
/// Where the header length sits, for error offsets.
pub(crate) const HEADER_LENGTH_OFFSET: u64 = 16;

/// This crate's version as a writer version: `major * 1_000_000 + minor * 1_000 + patch`.
pub const WRITER_VERSION_CURRENT: u32 = parse_decimal(env!("CARGO_PKG_VERSION_MAJOR")) * 1_000_000
    + parse_decimal(env!("CARGO_PKG_VERSION_MINOR")) * 1_000
    + parse_decimal(env!("CARGO_PKG_VERSION_PATCH"));

const fn parse_decimal(text: &str) -> u32 {
    let bytes = text.as_bytes();
    let mut value = 0;
    let mut position = 0;
    while position < bytes.len() {
        value = value * 10 + (bytes[position] - b'0') as u32;
        position += 1;
    }
    value
}

/// The kinds of records; the byte after a frame's CRC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum RecordKind {
    /// A key and (a run of) its versions: [`KeyRecord`].
    Key = 1,
    /// A lease with its TTL and attached keys: [`LeaseRecord`].
    Lease = 2,
    /// A cluster member: [`MemberRecord`].
    Member = 3,
    /// The id of a member once in the cluster and removed since: [`RemovedMemberRecord`].
    RemovedMember = 4,
    /// An active alarm: [`AlarmRecord`].
    Alarm = 5,
    /// Auth state (users, roles, the auth switch and revision). Reserved for the auth release,
    /// which defines its payload; this release writes none and keeps any it reads as bytes.
    Auth = 6,
    /// The trailer; always the last frame.
    End = 255,
}

impl RecordKind {
    pub fn from_byte(byte: u8) -> Option<RecordKind> {
        Some(match byte {
            1 => RecordKind::Key,
            2 => RecordKind::Lease,
            3 => RecordKind::Member,
            4 => RecordKind::RemovedMember,
            5 => RecordKind::Alarm,
            6 => RecordKind::Auth,
            255 => RecordKind::End,
            _ => return None,
        })
    }
}

/// What an incremental snapshot applies on top of: its base's revision and log index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SnapshotBase {
    pub revision: i64,
    pub log_index: u64,
}

/// A snapshot's header: what it is the state of.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotHeader {
    /// The format version the file was written in (the prefix's; set by the reader).
    pub format_version: u32,
    /// The version of the binary that wrote it (informational).
    pub writer_version: u32,
    pub node_id: u64,
    pub cluster_id: u64,
    /// The store revision the snapshot holds the state at.
    pub revision: i64,
    /// The last log record index the snapshot covers: start-up replays only records after it.
    pub log_index: u64,
    /// Reads below it fail; versions superseded at or below it may be absent.
    pub compacted_revision: i64,
    /// The highest hybrid-clock stamp included.
    pub hlc: u64,
    /// The timeframe: origin node → highest origin sequence included.
    pub timeframe: BTreeMap<u64, u64>,
    /// Set on an incremental snapshot: the snapshot it applies on top of.
    pub base: Option<SnapshotBase>,
    /// When it was written (informational).
    pub created_unix_millis: u64,
}

/// The header as protobuf.
#[derive(Clone, PartialEq, prost::Message)]
struct HeaderMessage {
    #[prost(uint64, tag = "1")]
    node_id: u64,
    #[prost(uint64, tag = "2")]
    cluster_id: u64,
    #[prost(int64, tag = "3")]
    revision: i64,
    #[prost(uint64, tag = "4")]
    log_index: u64,
    #[prost(int64, tag = "5")]
    compacted_revision: i64,
    #[prost(uint64, tag = "6")]
    hlc: u64,
    #[prost(message, repeated, tag = "7")]
    timeframe: Vec<TimeframeMessage>,
    #[prost(message, optional, tag = "8")]
    base: Option<BaseMessage>,
    #[prost(uint64, tag = "9")]
    created_unix_millis: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TimeframeMessage {
    #[prost(uint64, tag = "1")]
    origin_node: u64,
    #[prost(uint64, tag = "2")]
    sequence: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct BaseMessage {
    #[prost(int64, tag = "1")]
    revision: i64,
    #[prost(uint64, tag = "2")]
    log_index: u64,
}

/// A key and (a run of) its stored versions, oldest first. In an incremental snapshot, a key
/// record without versions means the key holds nothing any more. A key whose versions are large is
/// split into consecutive records of the same key; readers concatenate them.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyRecord {
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    #[prost(message, repeated, tag = "2")]
    pub versions: Vec<VersionRecord>,
}

/// One stored version; `version == 0` marks a tombstone.
#[derive(Clone, PartialEq, prost::Message)]
pub struct VersionRecord {
    #[prost(int64, tag = "1")]
    pub mod_revision: i64,
    #[prost(uint32, tag = "2")]
    pub sub_revision: u32,
    #[prost(int64, tag = "3")]
    pub create_revision: i64,
    #[prost(int64, tag = "4")]
    pub version: i64,
    #[prost(bytes = "vec", tag = "5")]
    pub value: Vec<u8>,
    #[prost(int64, tag = "6")]
    pub lease: i64,
    #[prost(uint64, tag = "7")]
    pub hlc: u64,
    #[prost(uint64, tag = "8")]
    pub origin_node: u64,
    #[prost(uint64, tag = "9")]
    pub origin_sequence: u64,
}

/// A lease: its id, granted TTL and the keys attached to it (in key order).
#[derive(Clone, PartialEq, prost::Message)]
pub struct LeaseRecord {
    #[prost(int64, tag = "1")]
    pub id: i64,
    #[prost(int64, tag = "2")]
    pub ttl_seconds: i64,
    #[prost(bytes = "vec", repeated, tag = "3")]
    pub keys: Vec<Vec<u8>>,
}

/// A cluster member.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MemberRecord {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(string, repeated, tag = "2")]
    pub peer_urls: Vec<String>,
    #[prost(bool, tag = "3")]
    pub is_learner: bool,
}

/// A member id removed from the cluster (never reused).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RemovedMemberRecord {
    #[prost(uint64, tag = "1")]
    pub id: u64,
}

/// An active alarm: the member and etcd's `AlarmType` number.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AlarmRecord {
    #[prost(uint64, tag = "1")]
    pub member_id: u64,
    #[prost(int32, tag = "2")]
    pub alarm: i32,
}

/// One record of a snapshot (the trailer aside).
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    Key(KeyRecord),
    Lease(LeaseRecord),
    Member(MemberRecord),
    RemovedMember(RemovedMemberRecord),
    Alarm(AlarmRecord),
    /// The auth release's payload, kept as bytes (see [`RecordKind::Auth`]).
    Auth(Vec<u8>),
}

impl Record {
    pub fn kind(&self) -> RecordKind {
        match self {
            Record::Key(_) => RecordKind::Key,
            Record::Lease(_) => RecordKind::Lease,
            Record::Member(_) => RecordKind::Member,
            Record::RemovedMember(_) => RecordKind::RemovedMember,
            Record::Alarm(_) => RecordKind::Alarm,
            Record::Auth(_) => RecordKind::Auth,
        }
    }

    /// Appends the record's frame to `out`.
    pub(crate) fn encode_frame(&self, out: &mut Vec<u8>) {
        match self {
            Record::Key(record) => encode_message_frame(RecordKind::Key, record, out),
            Record::Lease(record) => encode_message_frame(RecordKind::Lease, record, out),
            Record::Member(record) => encode_message_frame(RecordKind::Member, record, out),
            Record::RemovedMember(record) => encode_message_frame(RecordKind::RemovedMember, record, out),
            Record::Alarm(record) => encode_message_frame(RecordKind::Alarm, record, out),
            Record::Auth(bytes) => encode_bytes_frame(RecordKind::Auth, bytes, out),
        }
    }

    /// Decodes a frame's payload of `kind` (the trailer is not a record).
    pub(crate) fn decode(kind: RecordKind, payload: &[u8]) -> Result<Record, String> {
        let decoded = match kind {
            RecordKind::Key => KeyRecord::decode(payload).map(Record::Key),
            RecordKind::Lease => LeaseRecord::decode(payload).map(Record::Lease),
            RecordKind::Member => MemberRecord::decode(payload).map(Record::Member),
            RecordKind::RemovedMember => RemovedMemberRecord::decode(payload).map(Record::RemovedMember),
            RecordKind::Alarm => AlarmRecord::decode(payload).map(Record::Alarm),
            RecordKind::Auth => Ok(Record::Auth(payload.to_vec())),
            RecordKind::End => return Err("the trailer is not a record".to_string()),
        };
        decoded.map_err(|error| format!("{kind:?} record does not decode: {error}"))
    }
}

/// Encodes the prefix and header of a file.
pub(crate) fn encode_prefix_and_header(header: &SnapshotHeader, out: &mut Vec<u8>) {
    let message = HeaderMessage {
        node_id: header.node_id,
        cluster_id: header.cluster_id,
        revision: header.revision,
        log_index: header.log_index,
        compacted_revision: header.compacted_revision,
        hlc: header.hlc,
        timeframe: header.timeframe.iter().map(|(&origin_node, &sequence)| TimeframeMessage { origin_node, sequence }).collect(),
        base: header.base.map(|base| BaseMessage { revision: base.revision, log_index: base.log_index }),
        created_unix_millis: header.created_unix_millis,
    };
    let payload = message.encode_to_vec();
    out.extend_from_slice(&SNAPSHOT_MAGIC);
    out.extend_from_slice(&FORMAT_VERSION_CURRENT.to_le_bytes());
    out.extend_from_slice(&header.writer_version.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
}

/// Why a prefix or header was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeaderProblem {
    BadMagic,
    UnsupportedFormat { found_version: u32 },
    Corrupt { offset: u64, reason: String },
}

/// The fields of a prefix: format version, writer version, header length, header CRC.
pub(crate) struct Prefix {
    pub(crate) format_version: u32,
    pub(crate) writer_version: u32,
    pub(crate) header_length: usize,
    pub(crate) header_crc: u32,
}

pub(crate) fn decode_prefix(bytes: &[u8]) -> Result<Prefix, HeaderProblem> {
    if bytes.len() < SNAPSHOT_MAGIC.len() || bytes[..SNAPSHOT_MAGIC.len()] != SNAPSHOT_MAGIC {
        return Err(HeaderProblem::BadMagic);
    }
    if bytes.len() < PREFIX_BYTES {
        return Err(HeaderProblem::Corrupt { offset: 0, reason: format!("the file ends at byte {} inside its {PREFIX_BYTES}-byte prefix", bytes.len()) });
    }
    let format_version = read_u32(bytes, 8);
    if format_version > FORMAT_VERSION_CURRENT {
        return Err(HeaderProblem::UnsupportedFormat { found_version: format_version });
    }
    if format_version == 0 {
        return Err(HeaderProblem::Corrupt { offset: FORMAT_VERSION_OFFSET, reason: "format version 0 was never written".to_string() });
    }
    let header_length = read_u32(bytes, 16) as usize;
    if header_length > HEADER_BYTES_MAX {
        return Err(HeaderProblem::Corrupt {
            offset: HEADER_LENGTH_OFFSET,
            reason: format!("a header of {header_length} bytes is larger than {HEADER_BYTES_MAX}"),
        });
    }
    Ok(Prefix { format_version, writer_version: read_u32(bytes, 12), header_length, header_crc: read_u32(bytes, 20) })
}

pub(crate) fn decode_header(prefix: &Prefix, payload: &[u8]) -> Result<SnapshotHeader, HeaderProblem> {
    if crc32c::crc32c(payload) != prefix.header_crc {
        return Err(HeaderProblem::Corrupt { offset: PREFIX_BYTES as u64, reason: "header CRC mismatch".to_string() });
    }
    let message = HeaderMessage::decode(payload)
        .map_err(|error| HeaderProblem::Corrupt { offset: PREFIX_BYTES as u64, reason: format!("the header does not decode: {error}") })?;
    Ok(SnapshotHeader {
        format_version: prefix.format_version,
        writer_version: prefix.writer_version,
        node_id: message.node_id,
        cluster_id: message.cluster_id,
        revision: message.revision,
        log_index: message.log_index,
        compacted_revision: message.compacted_revision,
        hlc: message.hlc,
        timeframe: message.timeframe.iter().map(|entry| (entry.origin_node, entry.sequence)).collect(),
        base: message.base.map(|base| SnapshotBase { revision: base.revision, log_index: base.log_index }),
        created_unix_millis: message.created_unix_millis,
    })
}

/// Appends a frame of `kind` holding `message`, encoded in place.
pub(crate) fn encode_message_frame(kind: RecordKind, message: &impl Message, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_BYTES]);
    out[start + 8] = kind as u8;
    message.encode_raw(out);
    finish_frame(start, out);
}

pub(crate) fn encode_bytes_frame(kind: RecordKind, payload: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_BYTES]);
    out[start + 8] = kind as u8;
    out.extend_from_slice(payload);
    finish_frame(start, out);
}

/// Fills in the length and CRC of the frame that starts at `start` and ends at `out`'s end.
fn finish_frame(start: usize, out: &mut [u8]) {
    let length = (out.len() - start - FRAME_HEADER_BYTES) as u32;
    let crc = crc32c::crc32c(&out[start + 8..]);
    out[start..start + 4].copy_from_slice(&length.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// The trailer's payload.
pub(crate) fn encode_trailer_payload(record_count: u64, key_count: u64, file_crc: u32) -> [u8; TRAILER_PAYLOAD_BYTES] {
    let mut payload = [0; TRAILER_PAYLOAD_BYTES];
    payload[0..8].copy_from_slice(&record_count.to_le_bytes());
    payload[8..16].copy_from_slice(&key_count.to_le_bytes());
    payload[16..20].copy_from_slice(&file_crc.to_le_bytes());
    payload
}

/// `(record count, key count, file CRC)` of a trailer payload.
pub(crate) fn decode_trailer_payload(payload: &[u8]) -> Option<(u64, u64, u32)> {
    (payload.len() == TRAILER_PAYLOAD_BYTES).then(|| (read_u64(payload, 0), read_u64(payload, 8), read_u32(payload, 16)))
}

pub(crate) fn read_u32(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(bytes[offset..offset + 4].try_into().expect("four bytes"))
}

pub(crate) fn read_u64(bytes: &[u8], offset: usize) -> u64 {
    u64::from_le_bytes(bytes[offset..offset + 8].try_into().expect("eight bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_newer_or_foreign_files_are_told_apart() {
        let header = SnapshotHeader {
            format_version: FORMAT_VERSION_CURRENT,
            writer_version: 1_000,
            node_id: 7,
            cluster_id: 9,
            revision: 42,
            log_index: 50,
            compacted_revision: 3,
            hlc: 123 << 16,
            timeframe: BTreeMap::from([(7, 48), (11, 2)]),
            base: Some(SnapshotBase { revision: 30, log_index: 35 }),
            created_unix_millis: 1_700_000_000_000,
        };
        let mut bytes = Vec::new();
        encode_prefix_and_header(&header, &mut bytes);
        let prefix = decode_prefix(&bytes).expect("prefix");
        assert_eq!(decode_header(&prefix, &bytes[PREFIX_BYTES..]).expect("header"), header);
        let mut newer = bytes.clone();
        newer[8] = 2;
        assert!(matches!(decode_prefix(&newer), Err(HeaderProblem::UnsupportedFormat { found_version: 2 })));
        assert!(matches!(decode_prefix(b"STRATSEGxxxxxxxxxxxxxxxx"), Err(HeaderProblem::BadMagic)));
        let mut damaged = bytes.clone();
        *damaged.last_mut().expect("bytes") ^= 1;
        let prefix = decode_prefix(&damaged).expect("prefix");
        assert!(matches!(decode_header(&prefix, &damaged[PREFIX_BYTES..]), Err(HeaderProblem::Corrupt { offset: 24, .. })));
    }

    #[test]
    fn frames_carry_length_crc_and_kind() {
        let record = Record::Alarm(AlarmRecord { member_id: 5, alarm: 1 });
        let mut bytes = Vec::new();
        record.encode_frame(&mut bytes);
        let length = read_u32(&bytes, 0) as usize;
        assert_eq!(bytes.len(), FRAME_HEADER_BYTES + length);
        assert_eq!(read_u32(&bytes, 4), crc32c::crc32c(&bytes[8..]));
        assert_eq!(RecordKind::from_byte(bytes[8]), Some(RecordKind::Alarm));
        assert_eq!(Record::decode(RecordKind::Alarm, &bytes[9..]).expect("decode"), record);
        assert_eq!(RecordKind::from_byte(7), None);
    }
}

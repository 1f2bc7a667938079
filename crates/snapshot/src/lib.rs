//! Strata's snapshot files: the state of a node at a revision (every key's stored versions, the
//! leases, membership and alarms, the compacted revision) with its timeframe, full or incremental
//! (only the keys changed since a base snapshot). This crate is the file format and nothing else:
//! write ([`SnapshotWriter`], or [`SnapshotEncoder`] for a stream), verify and read
//! ([`SnapshotReader`], [`verify`]), the files' names ([`snapshot_file_name`]) and the choice of
//! restore points and of what retention deletes ([`restore_points`], [`retention_plan`]). What the
//! records mean to a node (and taking a snapshot without pausing writes) is `strata-node`'s.
//!
//! Invariants (the format is described byte by byte in `docs/formats/snapshot.md`):
//! - A snapshot file, once it has its name, is complete, durable and never modified: it is written
//!   as a temporary file, fsynced, renamed, and its directory fsynced.
//! - Every record carries a CRC32C and the trailer a CRC32C of all bytes before it: a file that
//!   reads to its end without error is exactly what was written.
//! - Reading never modifies a file; a newer format version is refused naming the file and both
//!   versions.
//! - All file access goes through [`strata_io::FileSystem`], so the simulated disk can crash it.

mod chain;
mod error;
mod format;
mod names;
mod read;
mod write;

pub use chain::{restore_points, retention_plan, RestorePoint, RetentionPlan, SnapshotFile};
pub use error::SnapshotError;
pub use format::{
    AlarmRecord, KeyRecord, LeaseRecord, MemberRecord, Record, RecordKind, RemovedMemberRecord, SnapshotBase, SnapshotHeader, VersionRecord,
    FORMAT_VERSION_CURRENT, FRAME_HEADER_BYTES, KEY_RECORD_BYTES_TARGET, PREFIX_BYTES, RECORD_BYTES_MAX, SNAPSHOT_MAGIC, WRITER_VERSION_CURRENT,
};
pub use names::{is_temporary_file_name, parse_snapshot_file_name, snapshot_file_name, temporary_file_name, SnapshotName, SNAPSHOT_DIRECTORY_NAME};
pub use read::{verify, SnapshotReader, SnapshotStatistics, READ_BLOCK_BYTES};
pub use write::{remove_snapshot_files, SnapshotEncoder, SnapshotSummary, SnapshotWriter, GRADUAL_DELETE_STEP_BYTES, SYNC_INTERVAL_BYTES, WRITE_CHUNK_BYTES};

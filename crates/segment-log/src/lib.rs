//! Strata's segment log: an append-only sequence of records with dense indexes (the first record
//! is 1), stored in write-once segment files under the data directory's `log/` folder, made durable
//! by group commit (append many, `sync` once) and recovered after a crash by cutting a torn tail.
//!
//! Invariants (the format is described byte by byte in `docs/formats/segment.md`):
//! - A segment, once sealed, is never modified; only the last segment's tail grows, and recovery
//!   cuts nothing but a torn tail after the last valid record of the last segment.
//! - Indexes are dense across segments: a segment's first index is the previous one's last + 1.
//! - After `sync` returns `Ok`, every record appended before it survives a crash. After any failed
//!   write or sync, the log refuses every later call ([`LogError::Halted`]): a failed fsync is
//!   never retried and never reported as success.
//! - Open never modifies a file it refuses: every error except `Io` leaves the directory as found.
//! - All file access goes through [`strata_io::FileSystem`], so the simulated disk can crash it.

mod error;
mod format;
mod log;
mod recovery;

pub use error::LogError;
pub use format::{
    SegmentHeader, FORMAT_VERSION_CURRENT, FRAME_HEADER_BYTES, HEADER_BYTES, RECORD_BYTES_MAX,
    SEGMENT_MAGIC,
};
pub use log::{
    parse_segment_name, segment_file_name, verify_segment, LogOptions, SegmentSummary, RecordHandler, RecoveredLog, SegmentLog,
    GRADUAL_DELETE_STEP_BYTES, SEGMENT_BYTES_MAX_DEFAULT, SEGMENT_BYTES_MIN,
    WRITER_VERSION_CURRENT,
};

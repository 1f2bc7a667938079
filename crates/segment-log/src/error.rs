//! The segment log's errors. Every message names the file and says what happened to it and what
//! the operator can do, because these messages end up in a refusing-to-start log line.
//!
//! Invariant: an error returned by `SegmentLog::open` other than `Io` means open modified nothing.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// What went wrong in the segment log.
#[derive(Debug)]
pub enum LogError {
    /// The operating system refused an operation on `path`.
    Io { path: PathBuf, source: io::Error },
    /// A segment is damaged at `offset`; it was left untouched.
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// A segment was written in a format newer than this binary reads; it was left untouched.
    UnsupportedFormat {
        path: PathBuf,
        found_version: u32,
        supported_version: u32,
    },
    /// A segment (format version 2 on) names another cluster than the log's; it was left untouched.
    ForeignSegment {
        path: PathBuf,
        found_cluster_id: u64,
        expected_cluster_id: u64,
    },
    /// A file named like a segment does not start with the segment magic.
    BadMagic { path: PathBuf },
    /// A payload larger than `RECORD_BYTES_MAX`.
    RecordTooLarge { bytes: u64, limit: u64 },
    /// The caller's record handler refused a record during open.
    RecordRejected { index: u64, reason: String },
    /// `LogOptions` that cannot work.
    InvalidOptions { reason: String },
    /// An earlier write or sync failed; the log accepts no more writes until reopened.
    Halted { cause: String },
}

impl LogError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> LogError {
        let path = path.into();
        move |source| LogError::Io { path, source }
    }
}

impl fmt::Display for LogError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogError::Io { path, source } => write!(formatter, "segment log IO error on {}: {source}", path.display()),
            LogError::ForeignSegment { path, found_cluster_id, expected_cluster_id } => write!(
                formatter,
                "segment file {} belongs to cluster {found_cluster_id:x} (header byte offset 48), but this data directory is \
                 cluster {expected_cluster_id:x}; nothing was modified: move the file out if it was copied in by mistake",
                path.display()
            ),
            LogError::Corrupt { path, offset, reason } => write!(
                formatter,
                "segment file {} is corrupt at byte offset {offset}: {reason}. The file was left untouched; \
                 restore the data directory from a backup",
                path.display()
            ),
            LogError::UnsupportedFormat { path, found_version, supported_version } => write!(
                formatter,
                "segment file {} has format version {found_version}, but this binary reads format versions up to \
                 {supported_version}; nothing was modified: run a strata release that reads version {found_version}",
                path.display()
            ),
            LogError::BadMagic { path } => write!(
                formatter,
                "{} is named like a segment file but does not start with the magic \"STRATSEG\"; nothing was modified: \
                 move the foreign file out of the log directory",
                path.display()
            ),
            LogError::RecordTooLarge { bytes, limit } => {
                write!(formatter, "a record of {bytes} bytes exceeds the segment log's limit of {limit} bytes per record")
            }
            LogError::RecordRejected { index, reason } => write!(formatter, "replaying log record {index} failed: {reason}"),
            LogError::InvalidOptions { reason } => write!(formatter, "invalid segment log options: {reason}"),
            LogError::Halted { cause } => write!(
                formatter,
                "the segment log refuses writes after an earlier failure ({cause}); restart to recover from what is durable"
            ),
        }
    }
}

impl std::error::Error for LogError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LogError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

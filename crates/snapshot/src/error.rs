//! The snapshot files' errors. Every message names the file, and where it is damaged the byte
//! offset, because these messages end up in a start-up warning or a tool's answer.
//!
//! Invariant: reading never modifies a file, whatever the error.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::format::FORMAT_VERSION_CURRENT;

/// What went wrong with a snapshot file.
#[derive(Debug)]
pub enum SnapshotError {
    /// The operating system refused an operation on `path`.
    Io { path: PathBuf, source: io::Error },
    /// The file does not start with the snapshot magic.
    BadMagic { path: PathBuf },
    /// The file was written in a newer format than this binary reads.
    UnsupportedFormat { path: PathBuf, found_version: u32 },
    /// The file is damaged (or truncated) at `offset`.
    Corrupt { path: PathBuf, offset: u64, reason: String },
}

impl SnapshotError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> SnapshotError {
        let path = path.into();
        move |source| SnapshotError::Io { path, source }
    }

    /// Whether the file is damaged (as opposed to foreign, newer, or unreadable for now).
    pub fn is_corruption(&self) -> bool {
        matches!(self, SnapshotError::Corrupt { .. } | SnapshotError::BadMagic { .. })
    }
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::Io { path, source } => write!(formatter, "snapshot IO error on {}: {source}", path.display()),
            SnapshotError::BadMagic { path } => write!(formatter, "{} is not a Strata snapshot (bad magic at byte offset 0)", path.display()),
            SnapshotError::UnsupportedFormat { path, found_version } => write!(
                formatter,
                "snapshot {} has format version {found_version}, but this binary reads format versions up to {FORMAT_VERSION_CURRENT}; \
                 nothing was modified: run a strata release that reads version {found_version}",
                path.display()
            ),
            SnapshotError::Corrupt { path, offset, reason } => {
                write!(formatter, "snapshot {} is corrupt at byte offset {offset}: {reason}", path.display())
            }
        }
    }
}

impl std::error::Error for SnapshotError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SnapshotError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

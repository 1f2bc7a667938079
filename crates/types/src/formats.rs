//! Every on-disk format version Strata has ever written, as data: the one place that says which
//! file kinds exist, which format versions of each there are, what changed in each, and which
//! versions a *storage format* (what a whole data directory may hold) writes.
//!
//! Invariants:
//! - A version, once listed, is never removed and never changes meaning: a reader for it stays in
//!   the code (`docs/formats/` describes each one byte by byte, and `tests/fixtures/` holds files
//!   of each that CI decodes).
//! - The crates that encode a kind take their newest version from here ([`newest_version`]); a
//!   change in encoding without a new version here fails the fingerprint test
//!   (`crates/node/tests/format_fingerprints.rs`).
//! - Writers write the versions of the storage format the node is pinned to
//!   (`--storage-format`, default [`STORAGE_FORMAT_NEWEST`]); readers read every listed version.

/// The kinds of file a data directory holds that carry a format version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FileKind {
    /// `<data-dir>/STRATA`: what the directory is (cluster, node, name).
    Manifest,
    /// `<data-dir>/log/<first index>.seg`: records of the log.
    Segment,
    /// `<data-dir>/snap/<revision>.snap`: the whole state at a revision.
    Snapshot,
    /// `<data-dir>/snap/<revision>.<base>.isnap`: the keys changed since a base snapshot.
    IncrementalSnapshot,
}

impl FileKind {
    pub const ALL: [FileKind; 4] = [FileKind::Manifest, FileKind::Segment, FileKind::Snapshot, FileKind::IncrementalSnapshot];

    /// The name tools print and `--json` carries.
    pub const fn name(self) -> &'static str {
        match self {
            FileKind::Manifest => "manifest",
            FileKind::Segment => "segment",
            FileKind::Snapshot => "snapshot",
            FileKind::IncrementalSnapshot => "incremental-snapshot",
        }
    }
}

/// One format version of one file kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FormatVersion {
    pub kind: FileKind,
    pub version: u32,
    /// The first Strata release that wrote it.
    pub since_release: &'static str,
    /// What this version changed against the one before.
    pub change: &'static str,
}

/// Every format version of every file kind, oldest first per kind.
pub const FORMAT_VERSIONS: &[FormatVersion] = &[
    FormatVersion {
        kind: FileKind::Manifest,
        version: 1,
        since_release: "0.1.0",
        change: "first version: magic STRATAMF, format version, payload length, CRC32C, protobuf payload",
    },
    FormatVersion {
        kind: FileKind::Segment,
        version: 1,
        since_release: "0.1.0",
        change: "first version: 64-byte header (magic STRATSEG, versions, node id, first index and revision, term, CRC32C), \
                 frames [length][CRC32C][index][payload]",
    },
    FormatVersion {
        kind: FileKind::Segment,
        version: 2,
        since_release: "0.2.0",
        change: "the header carries the cluster id (bytes 48..56; the header CRC32C moves to 56..60 and covers 0..56), \
                 so a segment copied in from another cluster is refused; frames unchanged",
    },
    FormatVersion {
        kind: FileKind::Snapshot,
        version: 1,
        since_release: "0.1.0",
        change: "first version: 24-byte prefix (magic STRATSNP), protobuf header with the timeframe, \
                 CRC32C-framed records, trailer with counts and the CRC32C of the file",
    },
    FormatVersion {
        kind: FileKind::IncrementalSnapshot,
        version: 1,
        since_release: "0.1.0",
        change: "first version: the snapshot format with a base in the header; only keys changed since the base",
    },
];

/// The format versions a whole data directory is written in: what a node pinned to this storage
/// format writes (it reads every version in [`FORMAT_VERSIONS`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StorageFormat {
    pub number: u32,
    pub since_release: &'static str,
    pub manifest: u32,
    pub segment: u32,
    pub snapshot: u32,
    pub incremental_snapshot: u32,
}

impl StorageFormat {
    /// The version of `kind` this storage format writes.
    pub const fn version_of(&self, kind: FileKind) -> u32 {
        match kind {
            FileKind::Manifest => self.manifest,
            FileKind::Segment => self.segment,
            FileKind::Snapshot => self.snapshot,
            FileKind::IncrementalSnapshot => self.incremental_snapshot,
        }
    }
}

/// Every storage format, oldest first. A release may pin an older one (`--storage-format`) so
/// that an older release can still read the directory after a downgrade.
pub const STORAGE_FORMATS: &[StorageFormat] = &[
    StorageFormat { number: 1, since_release: "0.1.0", manifest: 1, segment: 1, snapshot: 1, incremental_snapshot: 1 },
    StorageFormat { number: 2, since_release: "0.2.0", manifest: 1, segment: 2, snapshot: 1, incremental_snapshot: 1 },
];

/// The storage format this binary writes unless pinned.
pub const STORAGE_FORMAT_NEWEST: u32 = STORAGE_FORMATS[STORAGE_FORMATS.len() - 1].number;

/// The storage format numbered `number`, if this binary knows it.
pub fn storage_format(number: u32) -> Option<&'static StorageFormat> {
    STORAGE_FORMATS.iter().find(|format| format.number == number)
}

/// The newest format version of `kind` this binary reads and writes.
pub const fn newest_version(kind: FileKind) -> u32 {
    let mut newest = 0;
    let mut position = 0;
    while position < FORMAT_VERSIONS.len() {
        let entry = &FORMAT_VERSIONS[position];
        if entry.kind as u8 == kind as u8 && entry.version > newest {
            newest = entry.version;
        }
        position += 1;
    }
    newest
}

/// Whether this binary reads version `version` of `kind`.
pub fn reads(kind: FileKind, version: u32) -> bool {
    FORMAT_VERSIONS.iter().any(|entry| entry.kind == kind && entry.version == version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_of_each_kind_run_from_one_without_gaps() {
        for kind in FileKind::ALL {
            let versions: Vec<u32> = FORMAT_VERSIONS.iter().filter(|entry| entry.kind == kind).map(|entry| entry.version).collect();
            let expected: Vec<u32> = (1..=newest_version(kind)).collect();
            assert_eq!(versions, expected, "{kind:?}");
        }
    }

    #[test]
    fn storage_formats_name_only_known_versions_and_the_newest_writes_the_newest() {
        for (position, format) in STORAGE_FORMATS.iter().enumerate() {
            assert_eq!(format.number, position as u32 + 1);
            for kind in FileKind::ALL {
                assert!(reads(kind, format.version_of(kind)), "storage format {} names {kind:?} {}", format.number, format.version_of(kind));
            }
        }
        let newest = storage_format(STORAGE_FORMAT_NEWEST).unwrap();
        for kind in FileKind::ALL {
            assert_eq!(newest.version_of(kind), newest_version(kind));
        }
        assert!(storage_format(0).is_none() && storage_format(STORAGE_FORMAT_NEWEST + 1).is_none());
    }
}

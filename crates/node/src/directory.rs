//! The data directory's files, surveyed before anything in it is opened or changed: what each file
//! is (by its name, then by its magic and format version), so that a node meeting a file it does
//! not understand stops before it modifies anything.
//!
//! Layout: `STRATA` (the manifest), `LOCK`, `log/<20-digit first index>.seg` (segments),
//! `snap/<revision>.snap` and `snap/<revision>.<base>.isnap` (snapshots), and `<name>.tmp` next to
//! each kind while one is being written. Other entries at the top level are the operator's and
//! are left alone; inside `log/` and `snap/` every file must be one of Strata's.
//!
//! Invariants:
//! - [`survey`] only reads: a file's first 12 bytes (magic and format version) and its length.
//! - A file of a known kind whose magic is wrong, whose format version is newer than this binary
//!   reads (`strata_types::formats`), or a file of no known kind inside `log/` or `snap/` is
//!   refused with its path and, for a version, both versions. Damage past the first 12 bytes is for
//!   each kind's own reader to find (a torn tail may be cut, a damaged snapshot skipped).

use std::path::{Path, PathBuf};

use strata_io::FileSystem;
use strata_types::formats::{newest_version, reads, FileKind};

use crate::manifest::{MANIFEST_FILE_NAME, MANIFEST_MAGIC};

/// The data directory's folder of log segments.
pub const LOG_DIRECTORY_NAME: &str = "log";
const TEMPORARY_SUFFIX: &str = ".tmp";

/// A file of a versioned kind found in the data directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SurveyedFile {
    pub path: PathBuf,
    pub kind: FileKind,
    /// The format version its first bytes say.
    pub format_version: u32,
    pub bytes: u64,
}

/// What the survey found: the versioned files (manifest first, then segments and snapshots in
/// name order) and the leftover temporary files that start-up will remove.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Survey {
    pub files: Vec<SurveyedFile>,
    pub temporary_files: Vec<PathBuf>,
}

/// The magic every file of `kind` starts with.
pub fn magic_of(kind: FileKind) -> &'static [u8; 8] {
    match kind {
        FileKind::Manifest => MANIFEST_MAGIC,
        FileKind::Segment => &strata_segment_log::SEGMENT_MAGIC,
        FileKind::Snapshot | FileKind::IncrementalSnapshot => &strata_snapshot::SNAPSHOT_MAGIC,
    }
}

/// What an entry of the data directory is, by its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A file of a versioned kind.
    Versioned(FileKind),
    /// A file being written, or the leftover of one (`*.tmp`): start-up removes it.
    Temporary,
    /// Not Strata's concern: the lock file, or the operator's files at the top level.
    Other,
    /// A name no Strata release writes inside `log/` or `snap/`.
    Unknown,
}

/// What an entry named `name` in `folder` (`""` for the top level, `log` or `snap`) is.
pub fn kind_by_name(folder: &str, name: &str) -> EntryKind {
    let temporary = name.strip_suffix(TEMPORARY_SUFFIX);
    match folder {
        "" if name == MANIFEST_FILE_NAME => EntryKind::Versioned(FileKind::Manifest),
        "" if temporary == Some(MANIFEST_FILE_NAME) => EntryKind::Temporary,
        "" => EntryKind::Other,
        LOG_DIRECTORY_NAME if strata_segment_log::parse_segment_name(name).is_some() => EntryKind::Versioned(FileKind::Segment),
        LOG_DIRECTORY_NAME if temporary.and_then(strata_segment_log::parse_segment_name).is_some() => EntryKind::Temporary,
        strata_snapshot::SNAPSHOT_DIRECTORY_NAME => match strata_snapshot::parse_snapshot_file_name(name) {
            Some(parsed) if parsed.base_revision.is_some() => EntryKind::Versioned(FileKind::IncrementalSnapshot),
            Some(_) => EntryKind::Versioned(FileKind::Snapshot),
            None if strata_snapshot::is_temporary_file_name(name) => EntryKind::Temporary,
            None => EntryKind::Unknown,
        },
        _ => EntryKind::Unknown,
    }
}

/// Surveys `data_directory` (see the module documentation). A directory that does not exist yet
/// surveys as empty.
pub fn survey(file_system: &dyn FileSystem, data_directory: &Path) -> Result<Survey, String> {
    let io_error = |path: &Path, error: std::io::Error| format!("{}: {error}", path.display());
    let mut found = Survey::default();
    if !file_system.exists(data_directory).map_err(|error| io_error(data_directory, error))? {
        return Ok(found);
    }
    for folder in ["", LOG_DIRECTORY_NAME, strata_snapshot::SNAPSHOT_DIRECTORY_NAME] {
        let directory = if folder.is_empty() { data_directory.to_path_buf() } else { data_directory.join(folder) };
        if !file_system.exists(&directory).map_err(|error| io_error(&directory, error))? {
            continue;
        }
        let mut paths = file_system.list(&directory).map_err(|error| io_error(&directory, error))?;
        paths.sort();
        for path in paths {
            let Some(name) = path.file_name().map(|name| name.to_string_lossy().into_owned()) else { continue };
            if folder.is_empty() && (name == LOG_DIRECTORY_NAME || name == strata_snapshot::SNAPSHOT_DIRECTORY_NAME) {
                continue;
            }
            match kind_by_name(folder, &name) {
                EntryKind::Versioned(kind) => found.files.push(identify(file_system, &path, kind)?),
                EntryKind::Temporary => found.temporary_files.push(path),
                EntryKind::Other => {}
                EntryKind::Unknown => {
                    return Err(format!(
                        "{}: not a file any Strata release writes in {folder}/ (unknown file kind); nothing was modified: \
                         move it out of the data directory and start again",
                        path.display()
                    ))
                }
            }
        }
    }
    Ok(found)
}

/// Why a file's first 12 bytes were refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrefixProblem {
    /// It does not start with its kind's magic (at byte offset 0).
    BadMagic,
    /// Its format version (at byte offset 8) is newer than this binary reads.
    Newer { found: u32, newest: u32 },
}

impl PrefixProblem {
    /// The problem in words (without the file's name), with what to do.
    pub fn describe(&self, kind: FileKind) -> String {
        let name = kind.name();
        match self {
            PrefixProblem::BadMagic => format!(
                "named as a file of kind {name} but it does not start with the magic {:?} (bad magic at byte offset 0); \
                 move it out of the data directory if it does not belong there",
                String::from_utf8_lossy(magic_of(kind))
            ),
            PrefixProblem::Newer { found, newest } => format!(
                "{name} format version {found} is newer than this binary reads (up to {newest}); \
                 run a strata release that reads {name} format version {found}"
            ),
        }
    }
}

/// Checks a file's first bytes (`prefix`, up to 12; the file is `length` bytes long) against its
/// kind: its magic, and a format version this binary reads. Returns the version, or `None` when
/// the file is too short to hold one (damage for the kind's own reader to report).
pub fn identify_prefix(kind: FileKind, prefix: &[u8], length: u64) -> Result<Option<u32>, PrefixProblem> {
    let magic = magic_of(kind);
    let compared = prefix.len().min(magic.len());
    if length == 0 || prefix[..compared] != magic[..compared] {
        return Err(PrefixProblem::BadMagic);
    }
    if prefix.len() < 12 {
        return Ok(None);
    }
    let found = u32::from_le_bytes(prefix[8..12].try_into().expect("four bytes"));
    let newest = newest_version(kind);
    if found > newest {
        return Err(PrefixProblem::Newer { found, newest });
    }
    debug_assert!(found == 0 || reads(kind, found));
    Ok(Some(found))
}

/// The first 12 bytes of a file (fewer if it is shorter) and its length.
pub fn read_prefix(file_system: &dyn FileSystem, path: &Path) -> std::io::Result<(Vec<u8>, u64)> {
    let file = file_system.open_read(path)?;
    let length = file.len()?;
    let mut prefix = vec![0; length.min(12) as usize];
    file.read_exact_at(0, &mut prefix)?;
    Ok((prefix, length))
}

/// Reads a file's magic and format version and refuses a foreign or newer one.
fn identify(file_system: &dyn FileSystem, path: &Path, kind: FileKind) -> Result<SurveyedFile, String> {
    let (prefix, bytes) = read_prefix(file_system, path).map_err(|error| format!("{}: {error}", path.display()))?;
    let format_version = identify_prefix(kind, &prefix, bytes)
        .map_err(|problem| format!("{}: {}; nothing was modified", path.display(), problem.describe(kind)))?
        .unwrap_or(0);
    Ok(SurveyedFile { path: path.to_path_buf(), kind, format_version, bytes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_io::SimulatedFileSystem;

    fn write(file_system: &SimulatedFileSystem, path: &str, bytes: &[u8]) {
        let path = Path::new(path);
        file_system.create_dir_all(path.parent().unwrap()).unwrap();
        let mut file = file_system.create(path).unwrap();
        file.write_all_at(0, bytes).unwrap();
        file.sync_all().unwrap();
        file_system.sync_dir(path.parent().unwrap()).unwrap();
    }

    fn prefix(magic: &[u8; 8], version: u32) -> Vec<u8> {
        let mut bytes = magic.to_vec();
        bytes.extend_from_slice(&version.to_le_bytes());
        bytes.extend_from_slice(&[0; 52]);
        bytes
    }

    #[test]
    fn kinds_come_from_names_and_folders() {
        assert_eq!(kind_by_name("", "STRATA"), EntryKind::Versioned(FileKind::Manifest));
        assert_eq!(kind_by_name("", "STRATA.tmp"), EntryKind::Temporary);
        assert_eq!(kind_by_name("", "notes.txt"), EntryKind::Other);
        assert_eq!(kind_by_name("log", "00000000000000000001.seg"), EntryKind::Versioned(FileKind::Segment));
        assert_eq!(kind_by_name("log", "00000000000000000001.seg.tmp"), EntryKind::Temporary);
        assert_eq!(kind_by_name("log", "1.seg"), EntryKind::Unknown);
        assert_eq!(kind_by_name("snap", "00000000000000000005.snap"), EntryKind::Versioned(FileKind::Snapshot));
        assert_eq!(kind_by_name("snap", "00000000000000000009.00000000000000000005.isnap"), EntryKind::Versioned(FileKind::IncrementalSnapshot));
        assert_eq!(kind_by_name("snap", "00000000000000000005.snap.tmp"), EntryKind::Temporary);
        assert_eq!(kind_by_name("snap", "db"), EntryKind::Unknown);
    }

    #[test]
    fn a_healthy_directory_surveys_every_file_with_its_version() {
        let file_system = SimulatedFileSystem::new();
        write(&file_system, "/d/STRATA", &prefix(MANIFEST_MAGIC, 1));
        write(&file_system, "/d/LOCK", b"");
        write(&file_system, "/d/log/00000000000000000001.seg", &prefix(&strata_segment_log::SEGMENT_MAGIC, 1));
        write(&file_system, "/d/log/00000000000000000009.seg", &prefix(&strata_segment_log::SEGMENT_MAGIC, 2));
        write(&file_system, "/d/snap/00000000000000000005.snap", &prefix(&strata_snapshot::SNAPSHOT_MAGIC, 1));
        write(&file_system, "/d/snap/00000000000000000007.snap.tmp", b"half");
        let survey = survey(&file_system, Path::new("/d")).unwrap();
        let found: Vec<(FileKind, u32)> = survey.files.iter().map(|file| (file.kind, file.format_version)).collect();
        assert_eq!(found, vec![(FileKind::Manifest, 1), (FileKind::Segment, 1), (FileKind::Segment, 2), (FileKind::Snapshot, 1)]);
        assert_eq!(survey.temporary_files, vec![PathBuf::from("/d/snap/00000000000000000007.snap.tmp")]);
    }

    #[test]
    fn newer_foreign_and_unknown_files_are_refused_by_name() {
        let cases: [(&str, Vec<u8>, &[&str]); 4] = [
            ("/d/log/00000000000000000001.seg", prefix(&strata_segment_log::SEGMENT_MAGIC, 77), &["00000000000000000001.seg", "version 77", "up to 2"]),
            ("/d/snap/00000000000000000005.snap", prefix(b"NOTASNAP", 1), &["00000000000000000005.snap", "bad magic"]),
            ("/d/STRATA", prefix(MANIFEST_MAGIC, 5), &["STRATA", "manifest format version 5", "up to 1"]),
            ("/d/log/wal-0001.log", b"whatever".to_vec(), &["wal-0001.log", "unknown file kind"]),
        ];
        for (path, bytes, expected) in cases {
            let file_system = SimulatedFileSystem::new();
            write(&file_system, path, &bytes);
            let error = survey(&file_system, Path::new("/d")).unwrap_err();
            for text in expected {
                assert!(error.contains(text), "{error} should contain {text}");
            }
        }
    }
}

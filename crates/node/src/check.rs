//! The read-only check of a whole data directory (`strata upgrade check`): every file decoded and
//! every checksum verified, one report per file, and a verdict on whether this binary can serve the
//! directory, reached by the rules start-up applies (`directory::survey`, `snapshot::recover`,
//! `SegmentLog::open_after`) but without stopping at the first problem. Also the pieces
//! `strata inspect` shares with it: a segment read record by record ([`scan_segment`]), a
//! snapshot's auth record decoded ([`decode_auth_record`]), keys escaped ([`escape_bytes`]) and a
//! small JSON printer ([`Json`]).
//!
//! Invariants:
//! - Nothing is modified, created or removed: files are only opened for reading through
//!   [`strata_io::FileSystem`]; the `LOCK` is neither taken nor touched, so a check may run next to
//!   a serving node (whose last segment may then show a tail that is still being written).
//! - Every file of the directory that is Strata's is reported (the manifest, everything in `log/`
//!   and `snap/`, leftover `.tmp` files), each with its *first* problem and that problem's byte
//!   offset; the operator's own files at the top level are left out.
//! - `servable` is true exactly when start-up of this binary would serve the data: no file start-up
//!   refuses (bad magic, a newer format version, an unknown file in `log/` or `snap/`), a
//!   restore point whose chain verifies and that the log continues (or a log from index 1), and
//!   every segment from the one holding the restore point's log index + 1 on intact (the last one
//!   may have a torn tail, which start-up cuts). Damage start-up works around (a snapshot it skips,
//!   a segment a snapshot covers) is an error of that file, and the verdict says how start-up
//!   gets by without it.
//!
//! The report as JSON ([`CheckReport::to_json`]), one object:
//!
//! ```text
//! {
//!   "data_directory": "/var/lib/strata",
//!   "binary": "strata 0.2.0, storage formats 1..2",
//!   "files": [
//!     {
//!       "path": "log/00000000000000000001.seg",   // relative to the data directory
//!       "kind": "segment",         // manifest | segment | snapshot | incremental-snapshot | temporary | unknown
//!       "format_version": 2,       // bytes 8..12 of the file; null when it does not say
//!       "bytes": 65536,
//!       "records": 120,            // valid records read (before the first problem); null for the
//!                                  // manifest, temporary and unknown files
//!       "range": {"first_index": 1, "last_index": 120, "first_revision": 2, "last_revision": 121},
//!                                  // snapshots: {"revision", "log_index", "base_revision" (null: full),
//!                                  //   "base_log_index", "key_count"}; the manifest: {"cluster_id",
//!                                  //   "member_id" (hex strings), "name"}; null when unreadable;
//!                                  //   an empty segment has null last_index and revisions
//!       "status": "ok",            // ok | recoverable | error
//!       "offset": null,            // error: the byte offset of the first problem (null if it has none)
//!       "reason": null             // recoverable, error: what it is and what start-up does about it
//!     }
//!   ],
//!   "servable": true,
//!   "verdict": "this binary (strata 0.2.0, storage formats 1..2) can serve this data directory"
//! }
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use prost::Message;
use strata_io::FileSystem;
use strata_segment_log::{verify_segment, LogError, FRAME_HEADER_BYTES, HEADER_BYTES};
use strata_snapshot::{restore_points, Record, SnapshotError, SnapshotFile, SnapshotReader, SNAPSHOT_DIRECTORY_NAME};
use strata_types::formats::{newest_version, FileKind, STORAGE_FORMATS, STORAGE_FORMAT_NEWEST};

pub use strata_segment_log::SegmentHeader;

use crate::directory::{identify_prefix, kind_by_name, EntryKind, read_prefix, PrefixProblem, LOG_DIRECTORY_NAME};
use crate::manifest::{Manifest, MANIFEST_FILE_NAME};
use crate::{LogEntry, STRATA_VERSION};

/// The manifest's fixed header: magic, format version, payload length, CRC32C.
const MANIFEST_HEADER_BYTES: usize = 20;
/// Where a segment header's first index sits.
const SEGMENT_FIRST_INDEX_OFFSET: u64 = 24;
/// Where a version 2 segment header's cluster id sits.
const SEGMENT_CLUSTER_ID_OFFSET: u64 = 48;
/// Where every versioned file keeps its format version.
const FORMAT_VERSION_OFFSET: u64 = 8;
/// Snapshot bytes read between two progress reports.
const PROGRESS_STEP_BYTES: u64 = 1024 * 1024;
/// The leftover of an interrupted manifest write (the manifest is written as a temp file, then renamed).
const MANIFEST_TEMPORARY_NAME: &str = "STRATA.tmp";

/// What this binary is, as the verdict names it: `strata 0.2.0, storage formats 1..2`.
pub fn binary_description() -> String {
    let oldest = STORAGE_FORMATS.first().map_or(STORAGE_FORMAT_NEWEST, |format| format.number);
    format!("strata {STRATA_VERSION}, storage formats {oldest}..{STORAGE_FORMAT_NEWEST}")
}

/// What a checked file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckedKind {
    Versioned(FileKind),
    /// A `.tmp` leftover of an interrupted write.
    Temporary,
    /// A file inside `log/` or `snap/` that no Strata release writes.
    Unknown,
}

impl CheckedKind {
    pub fn name(self) -> &'static str {
        match self {
            CheckedKind::Versioned(kind) => kind.name(),
            CheckedKind::Temporary => "temporary",
            CheckedKind::Unknown => "unknown",
        }
    }
}

/// How a file fared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileStatus {
    Ok,
    /// Start-up repairs it without losing anything acknowledged (a torn tail, a leftover).
    Recoverable { reason: String },
    /// The first problem found, at `offset` when it has one.
    Error { offset: Option<u64>, reason: String },
}

impl FileStatus {
    pub fn name(&self) -> &'static str {
        match self {
            FileStatus::Ok => "ok",
            FileStatus::Recoverable { .. } => "recoverable",
            FileStatus::Error { .. } => "error",
        }
    }
}

/// What a file covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileRange {
    Manifest { cluster_id: u64, member_id: u64, name: String },
    /// The valid records' indexes and the revisions their log entries carry (`None`: no record).
    Segment { first_index: u64, last_index: Option<u64>, first_revision: Option<i64>, last_revision: Option<i64> },
    Snapshot { revision: i64, log_index: u64, base_revision: Option<i64>, base_log_index: Option<u64>, key_count: u64 },
}

/// One file's report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileReport {
    /// Relative to the data directory.
    pub path: PathBuf,
    pub kind: CheckedKind,
    /// Bytes 8..12 of the file, when it starts with its kind's magic and has them.
    pub format_version: Option<u32>,
    pub bytes: u64,
    pub records: Option<u64>,
    pub range: Option<FileRange>,
    pub status: FileStatus,
}

/// The whole directory's report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckReport {
    pub data_directory: PathBuf,
    /// The manifest first, then `log/` and `snap/`, each in name order.
    pub files: Vec<FileReport>,
    /// Whether this binary can serve the directory (see the module documentation).
    pub servable: bool,
    /// One sentence: can this binary serve it, and why not or how.
    pub verdict: String,
}

impl CheckReport {
    /// The report as one JSON object (the shape is in the module documentation).
    pub fn to_json(&self) -> String {
        let files = self.files.iter().map(file_json).collect();
        Json::Object(vec![
            ("data_directory", Json::from(self.data_directory.display().to_string())),
            ("binary", Json::from(binary_description())),
            ("files", Json::Array(files)),
            ("servable", Json::Bool(self.servable)),
            ("verdict", Json::from(self.verdict.as_str())),
        ])
        .to_string()
    }
}

fn file_json(file: &FileReport) -> Json {
    let (offset, reason) = match &file.status {
        FileStatus::Ok => (None, None),
        FileStatus::Recoverable { reason } => (None, Some(reason.as_str())),
        FileStatus::Error { offset, reason } => (*offset, Some(reason.as_str())),
    };
    Json::Object(vec![
        ("path", Json::from(file.path.display().to_string())),
        ("kind", Json::from(file.kind.name())),
        ("format_version", Json::from(file.format_version)),
        ("bytes", Json::from(file.bytes)),
        ("records", Json::from(file.records)),
        ("range", file.range.as_ref().map_or(Json::Null, range_json)),
        ("status", Json::from(file.status.name())),
        ("offset", Json::from(offset)),
        ("reason", reason.map_or(Json::Null, Json::from)),
    ])
}

fn range_json(range: &FileRange) -> Json {
    match range {
        FileRange::Manifest { cluster_id, member_id, name } => Json::Object(vec![
            ("cluster_id", Json::from(format!("{cluster_id:x}"))),
            ("member_id", Json::from(format!("{member_id:x}"))),
            ("name", Json::from(name.as_str())),
        ]),
        FileRange::Segment { first_index, last_index, first_revision, last_revision } => Json::Object(vec![
            ("first_index", Json::from(*first_index)),
            ("last_index", Json::from(*last_index)),
            ("first_revision", Json::from(*first_revision)),
            ("last_revision", Json::from(*last_revision)),
        ]),
        FileRange::Snapshot { revision, log_index, base_revision, base_log_index, key_count } => Json::Object(vec![
            ("revision", Json::from(*revision)),
            ("log_index", Json::from(*log_index)),
            ("base_revision", Json::from(*base_revision)),
            ("base_log_index", Json::from(*base_log_index)),
            ("key_count", Json::from(*key_count)),
        ]),
    }
}

/// A file's first problem while the check runs.
#[derive(Clone, Debug)]
struct Problem {
    offset: Option<u64>,
    reason: String,
    /// Start-up refuses the whole directory for it, whatever else holds (the survey's refusals).
    refuses_start_up: bool,
}

impl Problem {
    fn damage(offset: Option<u64>, reason: impl Into<String>) -> Problem {
        Problem { offset, reason: reason.into(), refuses_start_up: false }
    }

    fn refusal(offset: Option<u64>, reason: impl Into<String>) -> Problem {
        Problem { offset, reason: reason.into(), refuses_start_up: true }
    }

    /// `path: at byte offset N: reason`, for the verdict.
    fn describe(&self, path: &Path) -> String {
        match self.offset {
            Some(offset) => format!("{} at byte offset {offset}: {}", path.display(), self.reason),
            None => format!("{}: {}", path.display(), self.reason),
        }
    }
}

/// A file being checked: its report so far and its problem.
struct Checked {
    path: PathBuf,
    kind: CheckedKind,
    format_version: Option<u32>,
    bytes: u64,
    records: Option<u64>,
    range: Option<FileRange>,
    problem: Option<Problem>,
    recoverable: Option<String>,
}

impl Checked {
    fn new(path: PathBuf, kind: CheckedKind, bytes: u64) -> Checked {
        Checked { path, kind, format_version: None, bytes, records: None, range: None, problem: None, recoverable: None }
    }

    /// Keeps the first problem.
    fn fail(&mut self, problem: Problem) {
        if self.problem.is_none() {
            self.problem = Some(problem);
        }
    }

    fn report(self) -> FileReport {
        let status = match (self.problem, self.recoverable) {
            (Some(problem), _) => FileStatus::Error { offset: problem.offset, reason: problem.reason },
            (None, Some(reason)) => FileStatus::Recoverable { reason },
            (None, None) => FileStatus::Ok,
        };
        FileReport {
            path: self.path,
            kind: self.kind,
            format_version: self.format_version,
            bytes: self.bytes,
            records: self.records,
            range: self.range,
            status,
        }
    }
}

/// What the check knows of a segment beyond its report.
struct SegmentFacts {
    /// The first index its name says.
    name_index: u64,
    /// The first index its header says, when the header reads.
    first_index: Option<u64>,
    /// The index after its last record, when every record verified.
    next_index: Option<u64>,
    torn_tail_bytes: u64,
    records_end: u64,
}

/// What the check knows of a snapshot beyond its report.
struct SnapshotFacts {
    name: String,
    header: Option<strata_snapshot::SnapshotHeader>,
}

/// Checks `data_directory` read-only (see the module documentation), calling `progress(bytes
/// verified, bytes in all)` now and then. `Err` only when the directory cannot be listed.
pub fn check_data_directory(file_system: &dyn FileSystem, data_directory: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<CheckReport, String> {
    let io_error = |path: &Path, error: std::io::Error| format!("{}: {error}", path.display());
    if !file_system.exists(data_directory).map_err(|error| io_error(data_directory, error))? {
        return Err(format!("{}: no such data directory", data_directory.display()));
    }
    let list = |folder: &str| -> Result<Vec<(String, PathBuf)>, String> {
        let directory = if folder.is_empty() { data_directory.to_path_buf() } else { data_directory.join(folder) };
        if !folder.is_empty() && !file_system.exists(&directory).map_err(|error| io_error(&directory, error))? {
            return Ok(Vec::new());
        }
        let mut paths = file_system.list(&directory).map_err(|error| io_error(&directory, error))?;
        paths.sort();
        Ok(paths.into_iter().filter_map(|path| Some((path.file_name()?.to_string_lossy().into_owned(), path))).collect())
    };
    let top = list("")?;
    let log = list(LOG_DIRECTORY_NAME)?;
    let snap = list(SNAPSHOT_DIRECTORY_NAME)?;
    let relative = |folder: &str, name: &str| if folder.is_empty() { PathBuf::from(name) } else { Path::new(folder).join(name) };
    let length = |path: &Path| file_system.file_len(path).unwrap_or(0);
    let total: u64 = top
        .iter()
        .filter(|(name, _)| name == MANIFEST_FILE_NAME || name == MANIFEST_TEMPORARY_NAME)
        .chain(log.iter())
        .chain(snap.iter())
        .map(|(_, path)| length(path))
        .sum();
    let mut done = 0u64;
    progress(0, total);

    // The manifest (and its leftover temp file).
    let mut manifest_files = Vec::new();
    let mut manifest = None;
    for (name, path) in &top {
        if name == MANIFEST_FILE_NAME {
            let mut checked = Checked::new(relative("", name), CheckedKind::Versioned(FileKind::Manifest), length(path));
            manifest = check_manifest(file_system, path, &mut checked);
            done += checked.bytes;
            manifest_files.push(checked);
        } else if name == MANIFEST_TEMPORARY_NAME {
            let mut checked = Checked::new(relative("", name), CheckedKind::Temporary, length(path));
            checked.recoverable = Some("the leftover of an interrupted manifest write: start-up ignores it and the next manifest write replaces it".into());
            done += checked.bytes;
            manifest_files.push(checked);
        }
        progress(done, total);
    }
    let manifest_present = top.iter().any(|(name, _)| name == MANIFEST_FILE_NAME);

    // Segments, in name order; the last by name is the one a torn tail may end.
    let mut log_files: Vec<Checked> = Vec::new();
    let mut segments: Vec<(usize, SegmentFacts)> = Vec::new();
    let segment_count = log.iter().filter(|(name, _)| matches!(kind_by_name(LOG_DIRECTORY_NAME, name), EntryKind::Versioned(_))).count();
    for (name, path) in &log {
        let mut checked = Checked::new(relative(LOG_DIRECTORY_NAME, name), CheckedKind::Unknown, length(path));
        match kind_by_name(LOG_DIRECTORY_NAME, name) {
            EntryKind::Versioned(kind) => {
                checked.kind = CheckedKind::Versioned(kind);
                let name_index = strata_segment_log::parse_segment_name(name).unwrap_or(0);
                let last = segments.len() + 1 == segment_count;
                let facts = check_segment(file_system, path, name_index, last, manifest.as_ref(), &mut checked);
                segments.push((log_files.len(), facts));
            }
            EntryKind::Temporary => {
                checked.kind = CheckedKind::Temporary;
                checked.recoverable = Some("the leftover of a segment being deleted by retention: start-up removes it".into());
            }
            EntryKind::Other => {}
            EntryKind::Unknown => checked.fail(unknown_file(LOG_DIRECTORY_NAME)),
        }
        done += checked.bytes;
        progress(done, total);
        log_files.push(checked);
    }

    // Snapshots, in name order.
    let mut snap_files: Vec<Checked> = Vec::new();
    let mut snapshots: Vec<(usize, SnapshotFacts)> = Vec::new();
    for (name, path) in &snap {
        let mut checked = Checked::new(relative(SNAPSHOT_DIRECTORY_NAME, name), CheckedKind::Unknown, length(path));
        match kind_by_name(SNAPSHOT_DIRECTORY_NAME, name) {
            EntryKind::Versioned(kind) => {
                checked.kind = CheckedKind::Versioned(kind);
                let header = check_snapshot(file_system, path, kind, &mut checked, &mut |read| progress(done + read, total));
                snapshots.push((snap_files.len(), SnapshotFacts { name: name.clone(), header }));
            }
            EntryKind::Temporary | EntryKind::Other => {
                checked.kind = CheckedKind::Temporary;
                checked.recoverable = Some("the leftover of an interrupted snapshot: start-up removes it".into());
            }
            EntryKind::Unknown => checked.fail(unknown_file(SNAPSHOT_DIRECTORY_NAME)),
        }
        done += checked.bytes;
        progress(done, total);
        snap_files.push(checked);
    }

    let (servable, verdict) = decide(manifest_present, &mut manifest_files, &mut log_files, &segments, &mut snap_files, &snapshots);
    let files = manifest_files.into_iter().chain(log_files).chain(snap_files).map(Checked::report).collect();
    Ok(CheckReport { data_directory: data_directory.to_path_buf(), files, servable, verdict })
}

fn unknown_file(folder: &str) -> Problem {
    Problem::refusal(None, format!("not a file any Strata release writes in {folder}/ (unknown file kind): start-up refuses the directory until it is moved out"))
}

/// Start-up's decisions over the checked files: which restore point it loads, which segments it
/// reads, and whether anything stops it. Adds the problems only the whole directory shows
/// (segments that do not continue each other).
fn decide(
    manifest_present: bool,
    manifest_files: &mut [Checked],
    log_files: &mut [Checked],
    segments: &[(usize, SegmentFacts)],
    snap_files: &mut [Checked],
    snapshots: &[(usize, SnapshotFacts)],
) -> (bool, String) {
    let mut blockers: Vec<String> = Vec::new();
    let mut notes: Vec<String> = Vec::new();

    if !manifest_present && (!segments.is_empty() || !snapshots.is_empty()) {
        blockers.push(format!(
            "there is no manifest ({MANIFEST_FILE_NAME}) next to the log and snapshots: start-up would give the directory new ids and refuse or \
             misread its files; restore the manifest from a backup"
        ));
    }
    // What start-up refuses whatever else holds, and a manifest it cannot read.
    for checked in manifest_files.iter().chain(log_files.iter()).chain(snap_files.iter()) {
        if let Some(problem) = &checked.problem {
            let manifest = checked.kind == CheckedKind::Versioned(FileKind::Manifest);
            if problem.refuses_start_up || manifest {
                blockers.push(problem.describe(&checked.path));
            }
        }
    }
    if !manifest_present && segments.is_empty() && snapshots.is_empty() {
        notes.push("the directory holds no data yet: start-up initializes it".into());
    }

    // Which restore point start-up loads: the newest whose chain verifies and that the log continues.
    let log_firsts: Vec<u64> = segments.iter().map(|(_, facts)| facts.name_index).collect();
    let headers: Vec<(usize, SnapshotFile)> = snapshots
        .iter()
        .filter_map(|(position, facts)| Some((*position, SnapshotFile { file_name: facts.name.clone(), header: facts.header.clone()? })))
        .collect();
    let files: Vec<SnapshotFile> = headers.iter().map(|(_, file)| file.clone()).collect();
    let damaged = |position: usize| snap_files[headers[position].0].problem.is_some();
    let chosen = restore_points(&files).into_iter().find(|point| {
        !point.chain.iter().any(|&position| damaged(position)) && log_firsts.first().is_none_or(|&first| first <= point.log_index.saturating_add(1))
    });
    let start_after = chosen.as_ref().map_or(0, |point| point.log_index);
    let chosen_name = chosen.as_ref().map(|point| {
        let newest = &files[*point.chain.last().unwrap_or(&0)];
        format!("{SNAPSHOT_DIRECTORY_NAME}/{} (revision {}, log index {})", newest.file_name, point.revision, point.log_index)
    });
    let any_snapshot = !snapshots.is_empty();
    if chosen.is_none() {
        match log_firsts.first() {
            Some(&first) if first > 1 => blockers.push(format!(
                "the log starts at index {first} and no snapshot that covers the records before it verifies: the data before index {first} is \
                 nowhere; restore the data directory from a backup"
            )),
            None if any_snapshot => blockers.push("no snapshot verifies and the log is empty: starting would lose the snapshots' data".into()),
            _ => {}
        }
    }
    let fallback = match &chosen_name {
        Some(name) => format!("snapshot {name} and the log after it hold all the data"),
        None => "the log from index 1 holds all the data".to_string(),
    };
    for (position, _) in snapshots {
        let checked = &snap_files[*position];
        if checked.problem.as_ref().is_some_and(|problem| !problem.refuses_start_up) {
            notes.push(format!("{} is damaged and start-up skips it: {fallback}", checked.path.display()));
        }
    }

    // Which segments start-up reads: from the one holding start_after + 1 on.
    let needed_from = log_firsts.iter().rposition(|&first| first <= start_after.saturating_add(1)).unwrap_or(0);
    for (position, window) in segments.windows(2).enumerate() {
        let (later_position, later) = (&window[1].0, &window[1].1);
        // The pair across the boundary of what start-up reads is never compared by start-up.
        if position + 1 == needed_from {
            continue;
        }
        let (Some(previous_next), Some(later_first)) = (window[0].1.next_index, later.first_index) else { continue };
        if later_first != previous_next {
            log_files[*later_position].fail(Problem::damage(
                Some(SEGMENT_FIRST_INDEX_OFFSET),
                format!("the segment starts at index {later_first} but the previous segment ends at index {}", previous_next.saturating_sub(1)),
            ));
        }
    }
    for (position, (file_position, facts)) in segments.iter().enumerate() {
        let checked = &mut log_files[*file_position];
        match &checked.problem {
            Some(problem) if problem.refuses_start_up => {}
            Some(problem) if position >= needed_from => blockers.push(problem.describe(&checked.path)),
            Some(_) => notes.push(format!(
                "{} is damaged but holds only records {} covers: start-up does not read it",
                checked.path.display(),
                chosen_name.as_deref().unwrap_or("a snapshot")
            )),
            None if facts.torn_tail_bytes > 0 => {
                let reason = format!(
                    "a torn tail of {} bytes after the last record (byte offset {}): start-up cuts it; those writes were never acknowledged",
                    facts.torn_tail_bytes, facts.records_end
                );
                notes.push(format!("start-up cuts the torn tail of {} ({} bytes never acknowledged)", checked.path.display(), facts.torn_tail_bytes));
                checked.recoverable = Some(reason);
            }
            None => {}
        }
    }

    let temporary = manifest_files.iter().chain(log_files.iter()).chain(snap_files.iter()).filter(|checked| checked.kind == CheckedKind::Temporary).count();
    if temporary > 0 {
        notes.push(format!("{temporary} leftover temporary file(s) of interrupted writes: start-up removes or ignores them"));
    }

    let binary = binary_description();
    if blockers.is_empty() {
        let mut verdict = format!("this binary ({binary}) can serve this data directory");
        if !notes.is_empty() {
            verdict.push_str(": ");
            verdict.push_str(&notes.join("; "));
        }
        (true, verdict)
    } else {
        (false, format!("this binary ({binary}) cannot serve this data directory: {}", blockers.join("; ")))
    }
}

/// Reads a file's first 12 bytes as the survey does: the magic of its kind and a format version
/// this binary reads. Returns the version when the file has one.
fn identify(kind: FileKind, bytes: &[u8], length: u64) -> Result<Option<u32>, Problem> {
    identify_prefix(kind, bytes, length).map_err(|problem| {
        let offset = match problem {
            PrefixProblem::BadMagic => 0,
            PrefixProblem::Newer { .. } => FORMAT_VERSION_OFFSET,
        };
        Problem::refusal(Some(offset), format!("{}: start-up refuses the directory until it is dealt with", problem.describe(kind)))
    })
}

fn newer_version(kind: FileKind, found: u32, newest: u32) -> String {
    PrefixProblem::Newer { found, newest }.describe(kind)
}

fn unreadable(error: std::io::Error) -> Problem {
    Problem::damage(None, format!("cannot be read: {error}"))
}

fn check_manifest(file_system: &dyn FileSystem, path: &Path, checked: &mut Checked) -> Option<Manifest> {
    let bytes = match file_system.read(path) {
        Ok(bytes) => bytes,
        Err(error) => {
            checked.fail(unreadable(error));
            return None;
        }
    };
    match identify(FileKind::Manifest, &bytes, bytes.len() as u64) {
        Ok(version) => checked.format_version = version,
        Err(problem) => {
            checked.format_version = (bytes.len() >= 12).then(|| u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]));
            checked.fail(problem);
            return None;
        }
    }
    if bytes.len() < MANIFEST_HEADER_BYTES {
        checked.fail(Problem::damage(Some(bytes.len() as u64), format!("the file ends inside its {MANIFEST_HEADER_BYTES}-byte header")));
        return None;
    }
    let length = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]) as u64;
    if (bytes.len() as u64) < MANIFEST_HEADER_BYTES as u64 + length {
        checked.fail(Problem::damage(Some(bytes.len() as u64), format!("the file ends before its payload of {length} bytes does (truncated)")));
        return None;
    }
    match Manifest::decode_file(path, &bytes) {
        Ok(manifest) => {
            checked.range = Some(FileRange::Manifest { cluster_id: manifest.cluster_id, member_id: manifest.node_id, name: manifest.name.clone() });
            Some(manifest)
        }
        Err(error) => {
            // The magic, version and length were checked above: what is left is the payload.
            let reason = error.strip_prefix(&format!("{}: ", path.display())).unwrap_or(&error).to_string();
            checked.fail(Problem::damage(Some(MANIFEST_HEADER_BYTES as u64), reason));
            None
        }
    }
}

fn check_segment(
    file_system: &dyn FileSystem,
    path: &Path,
    name_index: u64,
    last: bool,
    manifest: Option<&Manifest>,
    checked: &mut Checked,
) -> SegmentFacts {
    let mut facts = SegmentFacts { name_index, first_index: None, next_index: None, torn_tail_bytes: 0, records_end: 0 };
    let bytes = match file_system.read(path) {
        Ok(bytes) => bytes,
        Err(error) => {
            checked.fail(unreadable(error));
            return facts;
        }
    };
    match identify(FileKind::Segment, &bytes[..bytes.len().min(12)], bytes.len() as u64) {
        Ok(version) => checked.format_version = version,
        Err(problem) => {
            checked.format_version = (bytes.len() >= 12).then(|| u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]));
            checked.fail(problem);
            return facts;
        }
    }
    let scan = scan_segment(path, &bytes, last, &mut |_| {});
    let Some(header) = scan.header else {
        if let Some((offset, reason)) = scan.problem {
            checked.fail(Problem::damage(offset, reason));
        }
        return facts;
    };
    facts.first_index = Some(header.first_index);
    // What open checks of a header before it reads any record.
    if header.first_index != name_index {
        checked.fail(Problem::damage(
            Some(SEGMENT_FIRST_INDEX_OFFSET),
            format!("the header's first index {} does not match the file name's {name_index}", header.first_index),
        ));
    }
    if let Some(manifest) = manifest {
        if header.format_version >= 2 && manifest.cluster_id != 0 && header.cluster_id != manifest.cluster_id {
            checked.fail(Problem::damage(
                Some(SEGMENT_CLUSTER_ID_OFFSET),
                format!(
                    "the segment belongs to cluster {:x}, but this data directory is cluster {:x} (copied in from another cluster?)",
                    header.cluster_id, manifest.cluster_id
                ),
            ));
        }
    }
    checked.records = Some(scan.records);
    checked.range = Some(FileRange::Segment {
        first_index: header.first_index,
        last_index: scan.last_index,
        first_revision: scan.first_revision,
        last_revision: scan.last_revision,
    });
    match scan.problem {
        Some((offset, reason)) => checked.fail(Problem::damage(offset, reason)),
        None => {
            facts.next_index = Some(scan.last_index.map_or(header.first_index, |index| index.saturating_add(1)));
            facts.torn_tail_bytes = scan.torn_tail_bytes;
            facts.records_end = scan.records_end;
        }
    }
    facts
}

/// Verifies one snapshot file record by record; returns its header when it reads.
fn check_snapshot(
    file_system: &dyn FileSystem,
    path: &Path,
    kind: FileKind,
    checked: &mut Checked,
    progress: &mut dyn FnMut(u64),
) -> Option<strata_snapshot::SnapshotHeader> {
    let prefix = match read_prefix(file_system, path).map(|(prefix, _)| prefix) {
        Ok(prefix) => prefix,
        Err(error) => {
            checked.fail(unreadable(error));
            return None;
        }
    };
    match identify(kind, &prefix, checked.bytes) {
        Ok(version) => checked.format_version = version,
        Err(problem) => {
            checked.format_version = (prefix.len() >= 12).then(|| u32::from_le_bytes([prefix[8], prefix[9], prefix[10], prefix[11]]));
            checked.fail(problem);
            return None;
        }
    }
    let mut reader = match SnapshotReader::open(file_system, path) {
        Ok(reader) => reader,
        Err(error) => {
            checked.fail(snapshot_problem(kind, error));
            return None;
        }
    };
    let header = reader.header().clone();
    let mut records = 0u64;
    let mut auth_records = 0u64;
    let mut last_key: Option<Vec<u8>> = None;
    let mut reported = 0u64;
    loop {
        let offset = reader.position();
        if offset - reported >= PROGRESS_STEP_BYTES {
            reported = offset;
            progress(offset);
        }
        let record = match reader.next_record() {
            Ok(Some(record)) => record,
            Ok(None) => break,
            Err(error) => {
                checked.fail(snapshot_problem(kind, error));
                break;
            }
        };
        // What loading the snapshot checks beyond the format (start-up skips a snapshot that fails).
        match &record {
            Record::Key(key) => {
                if last_key.as_deref().is_some_and(|last| last > key.key.as_slice()) {
                    checked.fail(Problem::damage(Some(offset), format!("key {} comes after a greater key: keys out of order", quoted(&key.key))));
                    break;
                }
                last_key = Some(key.key.clone());
            }
            Record::Auth(payload) => {
                auth_records += 1;
                if auth_records > 1 {
                    checked.fail(Problem::damage(Some(offset), "a second auth record where this release writes one"));
                    break;
                }
                if let Err(error) = decode_auth_record(payload) {
                    checked.fail(Problem::damage(Some(offset), error));
                    break;
                }
            }
            _ => {}
        }
        records += 1;
    }
    checked.records = Some(records);
    checked.range = Some(FileRange::Snapshot {
        revision: header.revision,
        log_index: header.log_index,
        base_revision: header.base.map(|base| base.revision),
        base_log_index: header.base.map(|base| base.log_index),
        key_count: reader.key_count(),
    });
    Some(header)
}

fn snapshot_problem(kind: FileKind, error: SnapshotError) -> Problem {
    match error {
        SnapshotError::Io { source, .. } => unreadable(source),
        SnapshotError::BadMagic { .. } => Problem::refusal(Some(0), "it does not start with the snapshot magic \"STRATSNP\" (bad magic)"),
        SnapshotError::UnsupportedFormat { found_version, .. } => {
            Problem::refusal(Some(FORMAT_VERSION_OFFSET), newer_version(kind, found_version, newest_version(kind)))
        }
        SnapshotError::Corrupt { offset, reason, .. } => Problem::damage(Some(offset), reason),
    }
}

// ------------------------------------------------------------------------------ segments

/// One record of a segment, as [`scan_segment`] hands it out.
#[derive(Clone, Copy, Debug)]
pub struct SegmentRecord<'a> {
    /// Where its frame starts in the file.
    pub offset: u64,
    pub index: u64,
    pub payload_bytes: u64,
    pub entry: &'a LogEntry,
}

/// What [`scan_segment`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SegmentScan {
    /// `None` when the header itself is the problem.
    pub header: Option<SegmentHeader>,
    /// Valid records read (before the problem, if any).
    pub records: u64,
    pub last_index: Option<u64>,
    pub first_revision: Option<i64>,
    pub last_revision: Option<i64>,
    /// Where the valid records end.
    pub records_end: u64,
    /// Bytes of torn tail after the records (the last segment only; start-up cuts them).
    pub torn_tail_bytes: u64,
    /// The first problem: its byte offset when it has one, and what it is.
    pub problem: Option<(Option<u64>, String)>,
}

/// Reads a whole segment file's `bytes` as start-up does (header, every frame and its CRC32C; a
/// torn tail allowed only when `last`), decoding every record's log entry, and calls `on_record`
/// for each valid one in order. Stops at the first problem: damage, a log entry that does not
/// decode or holds a change kind this release does not know, or a revision lower than the one
/// before it. Pure; `path` only names the file in messages; never panics, whatever the bytes.
pub fn scan_segment(path: &Path, bytes: &[u8], last: bool, on_record: &mut dyn FnMut(&SegmentRecord<'_>)) -> SegmentScan {
    let mut scan = SegmentScan::default();
    let header_bytes = &bytes[..bytes.len().min(HEADER_BYTES as usize)];
    match verify_segment(path, header_bytes, true, &mut |_, _| Ok(())) {
        Ok(summary) => scan.header = Some(summary.header),
        Err(error) => {
            scan.problem = Some(segment_error(error, None));
            return scan;
        }
    }
    let mut offset = HEADER_BYTES;
    let mut rejected_at = None;
    let mut records = 0u64;
    let mut revisions: Option<(i64, i64)> = None;
    let result = {
        let mut handler = |index: u64, payload: &[u8]| -> Result<(), String> {
            let frame_offset = offset;
            offset += FRAME_HEADER_BYTES + payload.len() as u64;
            rejected_at = Some(frame_offset);
            let entry = LogEntry::decode(payload).map_err(|error| format!("record {index} does not decode as a log entry: {error}"))?;
            entry.changes().map_err(|error| format!("record {index}: {error} (written by a newer release?)"))?;
            if let Some((_, previous)) = revisions {
                if entry.revision < previous {
                    return Err(format!("record {index} has revision {} after revision {previous}: revisions never go back", entry.revision));
                }
            }
            revisions = Some((revisions.map_or(entry.revision, |(first, _)| first), entry.revision));
            records += 1;
            on_record(&SegmentRecord { offset: frame_offset, index, payload_bytes: payload.len() as u64, entry: &entry });
            Ok(())
        };
        verify_segment(path, bytes, last, &mut handler)
    };
    scan.records = records;
    scan.first_revision = revisions.map(|(first, _)| first);
    scan.last_revision = revisions.map(|(_, last)| last);
    match result {
        Ok(summary) => {
            scan.last_index = (summary.record_count > 0).then(|| summary.next_index - 1);
            scan.records_end = summary.records_end;
            scan.torn_tail_bytes = summary.torn_tail_bytes;
        }
        Err(error) => {
            if let Some(header) = &scan.header {
                scan.last_index = (records > 0).then(|| header.first_index.saturating_add(records - 1));
            }
            scan.problem = Some(segment_error(error, rejected_at));
        }
    }
    scan
}

/// The header of a segment file, alone (for a reader that shows it before the records).
pub fn segment_header(path: &Path, bytes: &[u8]) -> Result<SegmentHeader, (Option<u64>, String)> {
    let header_bytes = &bytes[..bytes.len().min(HEADER_BYTES as usize)];
    verify_segment(path, header_bytes, true, &mut |_, _| Ok(())).map(|summary| summary.header).map_err(|error| segment_error(error, None))
}

fn segment_error(error: LogError, rejected_at: Option<u64>) -> (Option<u64>, String) {
    match error {
        LogError::Corrupt { offset, reason, .. } => (Some(offset), reason),
        LogError::RecordRejected { reason, .. } => (rejected_at, reason),
        LogError::BadMagic { .. } => (Some(0), "it does not start with the segment magic \"STRATSEG\" (bad magic)".into()),
        LogError::UnsupportedFormat { found_version, supported_version, .. } => {
            (Some(FORMAT_VERSION_OFFSET), newer_version(FileKind::Segment, found_version, supported_version))
        }
        other => (None, other.to_string()),
    }
}

// ------------------------------------------------------------------------------ auth records

/// The auth state a snapshot's `Auth` record holds (`docs/formats/snapshot.md`), read for display
/// and checks; the password hashes (field 2 of a user) are skipped.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthRecordView {
    #[prost(bool, tag = "1")]
    pub enabled: bool,
    #[prost(uint64, tag = "2")]
    pub revision: u64,
    #[prost(message, repeated, tag = "3")]
    pub users: Vec<AuthUserView>,
    #[prost(message, repeated, tag = "4")]
    pub roles: Vec<AuthRoleView>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthUserView {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(bool, tag = "3")]
    pub no_password: bool,
    #[prost(string, repeated, tag = "4")]
    pub roles: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthRoleView {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, repeated, tag = "2")]
    pub permissions: Vec<AuthPermissionView>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthPermissionView {
    /// etcd's `authpb.Permission_Type`: 0 read, 1 write, 2 readwrite.
    #[prost(int32, tag = "1")]
    pub kind: i32,
    #[prost(bytes = "vec", tag = "2")]
    pub key: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub range_end: Vec<u8>,
}

/// Decodes a snapshot's `Auth` record payload.
pub fn decode_auth_record(payload: &[u8]) -> Result<AuthRecordView, String> {
    AuthRecordView::decode(payload).map_err(|error| format!("the auth record does not decode: {error}"))
}

// ------------------------------------------------------------------------------ printing

/// `bytes` as text: printable ASCII as is, `\` and `"` escaped with a backslash, every other byte
/// as `\xNN`.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len());
    for &byte in bytes {
        match byte {
            b'\\' => text.push_str("\\\\"),
            b'"' => text.push_str("\\\""),
            0x20..=0x7e => text.push(byte as char),
            _ => text.push_str(&format!("\\x{byte:02x}")),
        }
    }
    text
}

/// `bytes` escaped and in double quotes.
pub fn quoted(bytes: &[u8]) -> String {
    format!("\"{}\"", escape_bytes(bytes))
}

/// A JSON value, enough to print reports; [`fmt::Display`] writes it compactly (RFC 8259).
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    /// Every integer a report holds fits (u64 and i64 alike).
    Integer(i128),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(&'static str, Json)>),
}

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Json::Null => f.write_str("null"),
            Json::Bool(value) => write!(f, "{value}"),
            Json::Integer(value) => write!(f, "{value}"),
            Json::String(text) => write_json_string(f, text),
            Json::Array(values) => {
                f.write_str("[")?;
                for (position, value) in values.iter().enumerate() {
                    if position > 0 {
                        f.write_str(",")?;
                    }
                    value.fmt(f)?;
                }
                f.write_str("]")
            }
            Json::Object(fields) => {
                f.write_str("{")?;
                for (position, (name, value)) in fields.iter().enumerate() {
                    if position > 0 {
                        f.write_str(",")?;
                    }
                    write_json_string(f, name)?;
                    f.write_str(":")?;
                    value.fmt(f)?;
                }
                f.write_str("}")
            }
        }
    }
}

fn write_json_string(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    f.write_str("\"")?;
    for character in text.chars() {
        match character {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            control if (control as u32) < 0x20 => write!(f, "\\u{:04x}", control as u32)?,
            other => write!(f, "{other}")?,
        }
    }
    f.write_str("\"")
}

impl From<bool> for Json {
    fn from(value: bool) -> Json {
        Json::Bool(value)
    }
}

impl From<u64> for Json {
    fn from(value: u64) -> Json {
        Json::Integer(i128::from(value))
    }
}

impl From<i64> for Json {
    fn from(value: i64) -> Json {
        Json::Integer(i128::from(value))
    }
}

impl From<u32> for Json {
    fn from(value: u32) -> Json {
        Json::Integer(i128::from(value))
    }
}

impl From<i32> for Json {
    fn from(value: i32) -> Json {
        Json::Integer(i128::from(value))
    }
}

impl From<&str> for Json {
    fn from(value: &str) -> Json {
        Json::String(value.to_string())
    }
}

impl From<String> for Json {
    fn from(value: String) -> Json {
        Json::String(value)
    }
}

impl<T: Into<Json>> From<Option<T>> for Json {
    fn from(value: Option<T>) -> Json {
        value.map_or(Json::Null, Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use strata_io::SimulatedFileSystem;
    use strata_segment_log::{LogOptions, SegmentLog};
    use strata_snapshot::{snapshot_file_name, KeyRecord, SnapshotHeader, SnapshotWriter, VersionRecord};

    const CLUSTER: u64 = 0xc1;
    const MEMBER: u64 = 0x11;

    fn entry(revision: i64) -> LogEntry {
        LogEntry {
            revision,
            hlc: (1_700_000_000_000u64 << 16) | 3,
            origin_node: MEMBER,
            origin_sequence: revision as u64,
            changes: vec![crate::LogChange { key: format!("key-{revision:02}").into_bytes(), kind: 0, value: vec![b'v'; 40], lease: 0 }],
            ..LogEntry::default()
        }
    }

    /// `/d` with a manifest and `records` log entries (revisions 2, 3, …) in segments of 512 bytes.
    fn directory(records: i64) -> SimulatedFileSystem {
        let file_system = SimulatedFileSystem::new();
        let manifest = Manifest {
            format_family: "strata".into(),
            cluster_id: CLUSTER,
            node_id: MEMBER,
            name: "n".into(),
            cluster_version: "3.5.0".into(),
            writer_version: STRATA_VERSION.into(),
        };
        file_system.create_dir_all(Path::new("/d")).unwrap();
        manifest.store(&file_system, Path::new("/d")).unwrap();
        let options = LogOptions { node_id: MEMBER, cluster_id: CLUSTER, segment_bytes_max: 512, ..LogOptions::default() };
        let mut log = SegmentLog::open(Arc::new(file_system.clone()), Path::new("/d/log"), options, &mut |_, _| Ok(())).unwrap().log;
        for revision in 2..2 + records {
            log.append(revision, &entry(revision).encode_to_vec()).unwrap();
            log.sync().unwrap();
        }
        file_system
    }

    fn snapshot(file_system: &SimulatedFileSystem, revision: i64, log_index: u64) -> PathBuf {
        let header = SnapshotHeader { node_id: MEMBER, cluster_id: CLUSTER, revision, log_index, writer_version: 2_000, ..SnapshotHeader::default() };
        let name = snapshot_file_name(revision, None);
        let mut writer = SnapshotWriter::create(Arc::new(file_system.clone()), Path::new("/d/snap"), &name, &header).unwrap();
        for written in 2..=revision {
            let version = VersionRecord { mod_revision: written, create_revision: written, version: 1, value: vec![b'v'; 40], ..VersionRecord::default() };
            writer.append_key(&KeyRecord { key: format!("key-{written:02}").into_bytes(), versions: vec![version] }).unwrap();
        }
        writer.finish().unwrap();
        Path::new("/d/snap").join(name)
    }

    fn segments(file_system: &SimulatedFileSystem) -> Vec<PathBuf> {
        let mut paths = file_system.list(Path::new("/d/log")).unwrap();
        paths.sort();
        paths
    }

    /// Checks `/d`, asserting that nothing on the disk was written meanwhile.
    fn check(file_system: &SimulatedFileSystem) -> CheckReport {
        let before = file_system.statistics();
        let mut reports = 0;
        let report = check_data_directory(file_system, Path::new("/d"), &mut |done, total| {
            assert!(done <= total, "{done} of {total}");
            reports += 1;
        })
        .unwrap();
        assert!(reports > 0);
        let after = file_system.statistics();
        assert_eq!((after.write_calls, after.bytes_written, after.full_syncs, after.directory_syncs), (before.write_calls, before.bytes_written, before.full_syncs, before.directory_syncs));
        report
    }

    fn report_of<'a>(report: &'a CheckReport, path: &str) -> &'a FileReport {
        report.files.iter().find(|file| file.path == Path::new(path)).unwrap_or_else(|| panic!("{path} in {report:#?}"))
    }

    fn flip(file_system: &SimulatedFileSystem, path: &Path, offset: u64) {
        file_system.flip_byte(path, offset).unwrap();
    }

    /// The frame offsets of a segment's records.
    fn frame_offsets(file_system: &SimulatedFileSystem, path: &Path) -> Vec<u64> {
        let bytes = file_system.read(path).unwrap();
        let mut offsets = Vec::new();
        scan_segment(path, &bytes, true, &mut |record| offsets.push(record.offset));
        offsets
    }

    #[test]
    fn a_healthy_directory_is_servable_and_every_file_is_ok() {
        let file_system = directory(30);
        let report = check(&file_system);
        assert!(report.servable, "{report:#?}");
        assert!(report.verdict.starts_with(&format!("this binary ({}) can serve", binary_description())), "{}", report.verdict);
        let paths = segments(&file_system);
        assert!(paths.len() >= 4, "{paths:?}");
        assert_eq!(report.files.len(), paths.len() + 1);
        assert_eq!(report.files[0].kind, CheckedKind::Versioned(FileKind::Manifest));
        let mut next_index = 1;
        let mut revisions = Vec::new();
        for file in &report.files {
            assert_eq!(file.status, FileStatus::Ok, "{file:#?}");
            if let Some(FileRange::Segment { first_index, last_index, first_revision, last_revision }) = file.range {
                assert_eq!(first_index, next_index);
                assert_eq!(file.format_version, Some(2));
                next_index = last_index.unwrap() + 1;
                revisions.push((first_revision.unwrap(), last_revision.unwrap()));
            }
        }
        assert_eq!(next_index, 31);
        assert_eq!(revisions.first().unwrap().0, 2);
        assert_eq!(revisions.last().unwrap().1, 31);
        let json = report.to_json();
        assert!(json.contains("\"servable\":true") && json.contains("\"status\":\"ok\""), "{json}");
    }

    #[test]
    fn a_torn_tail_of_the_last_segment_is_recoverable() {
        let file_system = directory(12);
        let last = segments(&file_system).pop().unwrap();
        let bytes = file_system.read(&last).unwrap();
        let records_end = scan_segment(&last, &bytes, true, &mut |_| {}).records_end;
        let mut file = file_system.open(&last).unwrap();
        file.write_all_at(records_end, &[40, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 99, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3]).unwrap();
        drop(file);
        let report = check(&file_system);
        assert!(report.servable, "{report:#?}");
        let name = format!("log/{}", last.file_name().unwrap().to_string_lossy());
        let FileStatus::Recoverable { reason } = &report_of(&report, &name).status else { panic!("{report:#?}") };
        assert!(reason.contains("torn tail of 19 bytes") && reason.contains(&format!("byte offset {records_end}")), "{reason}");
        assert!(report.verdict.contains("torn tail") && report.verdict.contains(&name), "{}", report.verdict);
    }

    #[test]
    fn a_flipped_byte_in_a_sealed_segment_names_the_frame() {
        let file_system = directory(30);
        let paths = segments(&file_system);
        let victim = &paths[1];
        let offsets = frame_offsets(&file_system, victim);
        let flipped_at = offsets[1] + 20;
        flip(&file_system, victim, flipped_at);
        let report = check(&file_system);
        assert!(!report.servable);
        let name = format!("log/{}", victim.file_name().unwrap().to_string_lossy());
        let victim_report = report_of(&report, &name);
        assert_eq!(victim_report.records, Some(1));
        let FileStatus::Error { offset: Some(offset), reason } = &victim_report.status else { panic!("{victim_report:#?}") };
        assert_eq!(*offset, offsets[1], "the error names the damaged frame");
        assert!(offset <= &flipped_at && flipped_at < offsets[2], "{reason}");
        assert!(reason.contains("CRC32C") && reason.contains("sealed"), "{reason}");
        assert!(report.verdict.contains("cannot serve") && report.verdict.contains(&format!("{name} at byte offset {offset}")), "{}", report.verdict);
        // Every other file is still reported, and ok.
        assert_eq!(report.files.iter().filter(|file| file.status != FileStatus::Ok).count(), 1);
    }

    #[test]
    fn newer_formats_unknown_files_and_bad_magic_are_refused_and_every_file_is_still_reported() {
        let file_system = directory(30);
        let paths = segments(&file_system);
        let mut file = file_system.open(&paths[2]).unwrap();
        file.write_all_at(8, &9u32.to_le_bytes()).unwrap();
        drop(file);
        let mut unknown = file_system.create(Path::new("/d/log/wal-0001.log")).unwrap();
        unknown.write_all_at(0, b"not ours").unwrap();
        drop(unknown);
        let snapshot = snapshot(&file_system, 5, 4);
        let mut file = file_system.open(&snapshot).unwrap();
        file.write_all_at(0, b"NOTASNAP").unwrap();
        drop(file);
        let report = check(&file_system);
        assert!(!report.servable);
        let newer = report_of(&report, &format!("log/{}", paths[2].file_name().unwrap().to_string_lossy()));
        assert_eq!(newer.format_version, Some(9));
        let FileStatus::Error { offset: Some(8), reason } = &newer.status else { panic!("{newer:#?}") };
        assert!(reason.contains("version 9") && reason.contains("up to 2"), "{reason}");
        assert!(matches!(report_of(&report, "log/wal-0001.log").status, FileStatus::Error { .. }));
        assert_eq!(report_of(&report, "log/wal-0001.log").kind, CheckedKind::Unknown);
        let snapshot_report = report_of(&report, "snap/00000000000000000005.snap");
        assert!(matches!(&snapshot_report.status, FileStatus::Error { offset: Some(0), reason } if reason.contains("bad magic")), "{snapshot_report:#?}");
        for text in ["version 9", "wal-0001.log", "00000000000000000005.snap"] {
            assert!(report.verdict.contains(text), "{text} in {}", report.verdict);
        }
        // The segments after the newer one were still read.
        assert_eq!(report_of(&report, &format!("log/{}", paths[3].file_name().unwrap().to_string_lossy())).status, FileStatus::Ok);
    }

    #[test]
    fn a_snapshot_reaches_a_log_without_its_head_and_a_damaged_one_is_skipped_or_fatal() {
        let file_system = directory(30);
        let paths = segments(&file_system);
        // The snapshot covers the first two segments' records; retention deleted the first one.
        let second = frame_offsets(&file_system, &paths[1]).len() as u64;
        let first = frame_offsets(&file_system, &paths[0]).len() as u64;
        let covered = first + second;
        let snapshot_path = snapshot(&file_system, covered as i64 + 1, covered);
        file_system.remove(&paths[0]).unwrap();
        let report = check(&file_system);
        assert!(report.servable, "{report:#?}");
        let snapshot_report = report_of(&report, &format!("snap/{}", snapshot_file_name(covered as i64 + 1, None))).clone();
        assert_eq!(snapshot_report.status, FileStatus::Ok);
        assert!(matches!(snapshot_report.range, Some(FileRange::Snapshot { log_index, key_count, base_revision: None, .. }) if log_index == covered && key_count == covered));

        // Damage in a segment the snapshot covers: an error of that file, but start-up never reads it.
        flip(&file_system, &paths[1], frame_offsets(&file_system, &paths[1])[0] + 20);
        let report = check(&file_system);
        assert!(report.servable, "{report:#?}");
        assert!(report.verdict.contains("start-up does not read it"), "{}", report.verdict);

        // A damaged snapshot with the log's head gone: nothing holds the first records.
        flip(&file_system, &snapshot_path, file_system.file_len(&snapshot_path).unwrap() / 2);
        let report = check(&file_system);
        assert!(!report.servable);
        assert!(report.verdict.contains("no snapshot that covers the records before it verifies"), "{}", report.verdict);
    }

    #[test]
    fn a_damaged_snapshot_with_the_whole_log_is_skipped() {
        let file_system = directory(10);
        let snapshot_path = snapshot(&file_system, 6, 5);
        flip(&file_system, &snapshot_path, file_system.file_len(&snapshot_path).unwrap() - 3);
        let report = check(&file_system);
        assert!(report.servable, "{report:#?}");
        assert!(matches!(report_of(&report, "snap/00000000000000000006.snap").status, FileStatus::Error { offset: Some(_), .. }));
        assert!(report.verdict.contains("damaged and start-up skips it: the log from index 1 holds all the data"), "{}", report.verdict);
    }

    #[test]
    fn segments_that_do_not_continue_each_other_are_an_error() {
        let file_system = directory(30);
        let paths = segments(&file_system);
        file_system.remove(&paths[2]).unwrap();
        let report = check(&file_system);
        assert!(!report.servable);
        let later = report_of(&report, &format!("log/{}", paths[3].file_name().unwrap().to_string_lossy()));
        assert!(matches!(&later.status, FileStatus::Error { offset: Some(24), reason } if reason.contains("previous segment ends")), "{later:#?}");
    }

    #[test]
    fn an_empty_or_missing_directory() {
        let file_system = SimulatedFileSystem::new();
        assert!(check_data_directory(&file_system, Path::new("/d"), &mut |_, _| {}).unwrap_err().contains("no such data directory"));
        file_system.create_dir_all(Path::new("/d")).unwrap();
        let report = check(&file_system);
        assert!(report.servable && report.files.is_empty() && report.verdict.contains("no data yet"), "{report:#?}");
    }

    #[test]
    fn every_flipped_byte_and_every_truncation_of_a_sealed_segment_is_found_without_panicking() {
        let file_system = directory(30);
        let path = segments(&file_system).remove(1);
        let bytes = file_system.read(&path).unwrap();
        assert_eq!(scan_segment(&path, &bytes, false, &mut |_| {}).problem, None);
        // A cut where a frame starts leaves a shorter valid segment (the next segment's first
        // index tells it, see segments_that_do_not_continue_each_other_are_an_error).
        let mut boundaries = frame_offsets(&file_system, &path);
        boundaries.push(HEADER_BYTES);
        for position in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[position] ^= 0x41;
            let scan = scan_segment(&path, &flipped, false, &mut |_| {});
            let Some((offset, reason)) = scan.problem else { panic!("a flip at {position} went unnoticed") };
            if position >= HEADER_BYTES as usize {
                assert!(offset.is_some_and(|offset| offset <= position as u64), "flip at {position}: {offset:?} {reason}");
            }
            let cut = scan_segment(&path, &bytes[..position], false, &mut |_| {});
            assert_eq!(cut.problem.is_some(), !boundaries.contains(&(position as u64)), "a cut at {position}: {:?}", cut.problem);
        }
    }

    #[test]
    fn json_escapes_strings_and_keys_escape_bytes() {
        let json = Json::Object(vec![("a", Json::from("q\"\\\n\u{1}é")), ("b", Json::from(None::<u64>)), ("c", Json::Array(vec![Json::from(-3i64), Json::from(u64::MAX)]))]);
        assert_eq!(json.to_string(), "{\"a\":\"q\\\"\\\\\\n\\u0001é\",\"b\":null,\"c\":[-3,18446744073709551615]}");
        assert_eq!(escape_bytes(b"a/\x00\xff\"\\"), "a/\\x00\\xff\\\"\\\\");
    }
}

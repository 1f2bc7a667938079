//! The segment log itself: open with verification and torn-tail repair, buffered appends, group
//! commit with one fdatasync per batch, and rotation into new segments.
//!
//! Invariants:
//! - `append` does no IO: it encodes the frame into the write buffer and decides (planning ahead)
//!   which segment it goes to. `sync` performs the plan: per segment one write of its buffered
//!   frames, then exactly one `sync_data` of the active segment. A rotation inside a batch adds the
//!   sealing (`set_len` to the used length, `sync_all`) and the creation of the next segment
//!   (temp file, header, preallocation, `sync_all`, rename, directory sync).
//! - A segment is sealed durably before the next one exists, so at most the last segment has an
//!   unsealed (preallocated, zero-filled) tail.
//! - Records are appended only into space inside the file's current length; a segment found with no
//!   spare space at open (for example sealed just before a crash) is never extended.
//! - A last segment holding no records (its first record was lost in a crash) is replaced by the
//!   next segment created, which has the same name, so its header always names its first record.
//! - Any IO failure in `sync` halts the log for good ([`LogError::Halted`] on every later call).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_io::{File, FileSystem};

use crate::error::LogError;
use crate::format::{
    encode_frame, HeaderProblem, SegmentHeader, FORMAT_VERSION_CURRENT, FRAME_HEADER_BYTES,
    HEADER_BYTES, HEADER_FIRST_INDEX_OFFSET, RECORD_BYTES_MAX,
};
use crate::recovery::{scan_last_segment, scan_sealed_segment, ScanError};

/// The default size of a segment file (each is preallocated to this size).
pub const SEGMENT_BYTES_MAX_DEFAULT: u64 = 64 * 1024 * 1024;
/// The smallest usable `segment_bytes_max`: a header and one empty record.
pub const SEGMENT_BYTES_MIN: u64 = HEADER_BYTES + FRAME_HEADER_BYTES;
/// Segment retention frees a deleted segment's space this much at a time (see
/// [`SegmentLog::remove_segments_through`]).
pub const GRADUAL_DELETE_STEP_BYTES: u64 = 8 * 1024 * 1024;

const SEGMENT_FILE_SUFFIX: &str = ".seg";
const TEMPORARY_FILE_SUFFIX: &str = ".tmp";
const SEGMENT_NAME_DIGITS: usize = 20;

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

/// The file name of the segment whose first record has index `first_index`.
pub fn segment_file_name(first_index: u64) -> String {
    format!(
        "{first_index:0width$}{SEGMENT_FILE_SUFFIX}",
        width = SEGMENT_NAME_DIGITS
    )
}

/// The first index encoded in a segment file name, if `name` is one.
fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_FILE_SUFFIX)?;
    if digits.len() != SEGMENT_NAME_DIGITS || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(TEMPORARY_FILE_SUFFIX);
    PathBuf::from(name)
}

/// The callback `open` replays records into: `(index, payload)`; an `Err` stops the open with
/// [`LogError::RecordRejected`].
pub type RecordHandler<'a> = dyn FnMut(u64, &[u8]) -> Result<(), String> + 'a;

/// How the log writes new segments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogOptions {
    /// Written into every new segment header.
    pub node_id: u64,
    /// The writing binary's version, written into every new segment header.
    pub writer_version: u32,
    /// The segment format version new segments are written in (`strata_types::formats`: the
    /// storage format the node is pinned to). Existing segments keep theirs.
    pub format_version: u32,
    /// The cluster the log belongs to: written into every new segment header (format version 2
    /// on), and a segment of another cluster is refused at open. 0 = unknown (nothing checked).
    pub cluster_id: u64,
    /// The size new segments are preallocated to; a record that does not fit in the active segment
    /// goes to a new one. A record larger than a fresh segment gets a segment of its own, sized to
    /// fit it.
    pub segment_bytes_max: u64,
}

impl Default for LogOptions {
    fn default() -> LogOptions {
        LogOptions {
            node_id: 0,
            writer_version: WRITER_VERSION_CURRENT,
            format_version: FORMAT_VERSION_CURRENT,
            cluster_id: 0,
            segment_bytes_max: SEGMENT_BYTES_MAX_DEFAULT,
        }
    }
}

/// An opened log and what recovery did.
#[derive(Debug)]
pub struct RecoveredLog {
    pub log: SegmentLog,
    /// How many bytes of torn tail were zeroed in the last segment (0 after a clean shutdown).
    pub truncated_tail_bytes: u64,
}

/// The segment being appended to.
struct ActiveSegment {
    path: PathBuf,
    file: Box<dyn File>,
    /// Where the next frame goes: the end of the last written record.
    written_end: u64,
    /// The file's preallocated length; frames never go past it.
    capacity: u64,
}

/// A run of buffered frames bound for one segment.
struct PendingChunk {
    /// Where the chunk's frames start in the write buffer (they end where the next chunk starts).
    buffer_start: usize,
    /// `Some` when the chunk opens a new segment (sealing the active one first).
    new_segment: Option<NewSegment>,
}

#[derive(Clone, Copy)]
struct NewSegment {
    first_index: u64,
    first_revision: i64,
    capacity: u64,
}

/// Where the next appended frame will land once the buffer is written.
#[derive(Clone, Copy)]
struct Placement {
    end: u64,
    capacity: u64,
}

/// The segment log. See the crate documentation for its promises.
pub struct SegmentLog {
    file_system: Arc<dyn FileSystem>,
    directory: PathBuf,
    options: LogOptions,
    /// Every segment file, oldest first (the last may be the active one).
    segments: Vec<PathBuf>,
    active: Option<ActiveSegment>,
    /// The index the next appended record gets.
    next_index: u64,
    /// Encoded frames waiting for `sync`.
    write_buffer: Vec<u8>,
    pending_chunks: Vec<PendingChunk>,
    /// `None` until a segment is planned to receive the next frame.
    placement: Option<Placement>,
    /// Set by the first failed write or sync; the log is dead from then on.
    halted: Option<String>,
}

impl fmt::Debug for SegmentLog {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("SegmentLog")
            .field("directory", &self.directory)
            .field("segments", &self.segments.len())
            .field("next_index", &self.next_index)
            .field("buffered_bytes", &self.write_buffer.len())
            .field("halted", &self.halted)
            .finish()
    }
}

/// A segment file found at open.
struct FoundSegment {
    path: PathBuf,
    header: SegmentHeader,
}

impl SegmentLog {
    /// Opens (creating if empty) the log in `dir` (the data directory's `log/` folder), verifies every
    /// segment, truncates a torn tail of the LAST segment only, and calls `on_record(index, payload)`
    /// for every valid record in order, so the caller can rebuild its state.
    ///
    /// Refuses (changing nothing) a file with a bad magic, a newer format version, or damage other
    /// than a torn tail of the last segment. Removes leftover `.tmp` files once all is verified.
    pub fn open(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        options: LogOptions,
        on_record: &mut RecordHandler<'_>,
    ) -> Result<RecoveredLog, LogError> {
        SegmentLog::open_after(fs, dir, options, 0, on_record)
    }

    /// [`SegmentLog::open`] for a caller whose state (a snapshot) already holds every record up to
    /// `start_after`: segments whose records are all at or below it are neither verified nor read
    /// (segment retention deletes them), and only records after it are handed to `on_record`.
    /// The segment holding `start_after + 1` must be there (or the log must end at or before
    /// `start_after + 1`); if the log ends before `start_after`, appending continues at
    /// `start_after + 1` in a new segment.
    pub fn open_after(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        options: LogOptions,
        start_after: u64,
        on_record: &mut RecordHandler<'_>,
    ) -> Result<RecoveredLog, LogError> {
        if !(1..=FORMAT_VERSION_CURRENT).contains(&options.format_version) {
            return Err(LogError::InvalidOptions {
                reason: format!("segment format version {} is not one this binary writes (1 to {FORMAT_VERSION_CURRENT})", options.format_version),
            });
        }
        if options.segment_bytes_max < SEGMENT_BYTES_MIN {
            return Err(LogError::InvalidOptions {
                reason: format!(
                    "segment_bytes_max is {} but must be at least {SEGMENT_BYTES_MIN}",
                    options.segment_bytes_max
                ),
            });
        }
        let directory = dir.to_path_buf();
        if !fs.exists(&directory).map_err(LogError::io(&directory))? {
            fs.create_dir_all(&directory)
                .map_err(LogError::io(&directory))?;
            if let Some(parent) = directory
                .parent()
                .filter(|parent| !parent.as_os_str().is_empty())
            {
                fs.sync_dir(parent).map_err(LogError::io(parent))?;
            }
        }

        let mut segment_paths = Vec::new();
        let mut temporary_paths = Vec::new();
        for path in fs.list(&directory).map_err(LogError::io(&directory))? {
            let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
                continue;
            };
            if name.ends_with(TEMPORARY_FILE_SUFFIX) {
                temporary_paths.push(path);
            } else if let Some(first_index) = parse_segment_file_name(name) {
                segment_paths.push((first_index, path));
            }
        }
        segment_paths.sort();
        // Segments before the one that holds `start_after + 1` hold nothing the caller needs.
        let needed_from = segment_paths
            .iter()
            .rposition(|(first_index, _)| *first_index <= start_after.saturating_add(1))
            .unwrap_or(0);
        if let Some((first_index, path)) = segment_paths.get(needed_from) {
            if start_after > 0 && *first_index > start_after.saturating_add(1) {
                return Err(LogError::Corrupt {
                    path: path.clone(),
                    offset: HEADER_FIRST_INDEX_OFFSET,
                    reason: format!(
                        "the log starts at index {first_index}, but records from index {} on are needed",
                        start_after + 1
                    ),
                });
            }
        }
        segment_paths.drain(..needed_from);

        // Pass 1: every header, so a foreign or newer file is refused before anything is replayed.
        let mut segments = Vec::with_capacity(segment_paths.len());
        for (name_index, path) in segment_paths {
            let header = read_header(fs.as_ref(), &path)?;
            if header.first_index != name_index {
                return Err(LogError::Corrupt {
                    path,
                    offset: HEADER_FIRST_INDEX_OFFSET,
                    reason: format!(
                        "the header's first index {} does not match the file name's {name_index}",
                        header.first_index
                    ),
                });
            }
            if header.format_version >= 2 && options.cluster_id != 0 && header.cluster_id != options.cluster_id {
                return Err(LogError::ForeignSegment { path, found_cluster_id: header.cluster_id, expected_cluster_id: options.cluster_id });
            }
            segments.push(FoundSegment { path, header });
        }

        // Pass 2: every record, in order.
        let mut on_record = |index: u64, payload: &[u8]| {
            if index > start_after {
                on_record(index, payload)
            } else {
                Ok(())
            }
        };
        let on_record: &mut RecordHandler<'_> = &mut on_record;
        let mut next_index = segments
            .first()
            .map_or(1, |segment| segment.header.first_index);
        let mut last_scan = None;
        for (position, segment) in segments.iter().enumerate() {
            if segment.header.first_index != next_index {
                return Err(LogError::Corrupt {
                    path: segment.path.clone(),
                    offset: HEADER_FIRST_INDEX_OFFSET,
                    reason: format!(
                        "the segment starts at index {} but the previous segment ends at index {}",
                        segment.header.first_index,
                        next_index - 1
                    ),
                });
            }
            let bytes = fs
                .read(&segment.path)
                .map_err(LogError::io(&segment.path))?;
            let scan_error = |error: ScanError| match error {
                ScanError::Corrupt { offset, reason } => LogError::Corrupt {
                    path: segment.path.clone(),
                    offset,
                    reason,
                },
                ScanError::RecordRejected { index, reason } => {
                    LogError::RecordRejected { index, reason }
                }
            };
            if position + 1 < segments.len() {
                next_index =
                    scan_sealed_segment(&bytes, next_index, on_record).map_err(scan_error)?;
            } else {
                let scan = scan_last_segment(&bytes, next_index, on_record).map_err(scan_error)?;
                next_index = scan.next_index;
                last_scan = Some((scan, bytes.len() as u64));
            }
        }

        // Everything verified: now clean up and repair.
        for path in &temporary_paths {
            fs.remove(path).map_err(LogError::io(path))?;
        }
        if !temporary_paths.is_empty() {
            fs.sync_dir(&directory).map_err(LogError::io(&directory))?;
        }
        let mut active = None;
        let mut truncated_tail_bytes = 0;
        if let (Some(segment), Some((scan, file_len))) = (segments.last(), last_scan) {
            let needs_repair = scan.torn_tail_bytes > 0;
            if needs_repair || scan.record_count > 0 {
                let mut file = fs
                    .open(&segment.path)
                    .map_err(LogError::io(&segment.path))?;
                if needs_repair {
                    // Zero the torn bytes by cutting them off and extending again with zeros.
                    file.set_len(scan.records_end)
                        .map_err(LogError::io(&segment.path))?;
                    file.set_len(file_len)
                        .map_err(LogError::io(&segment.path))?;
                    file.sync_all().map_err(LogError::io(&segment.path))?;
                    truncated_tail_bytes = scan.torn_tail_bytes;
                }
                if scan.record_count > 0 {
                    active = Some(ActiveSegment {
                        path: segment.path.clone(),
                        file,
                        written_end: scan.records_end,
                        capacity: file_len,
                    });
                }
            }
        }

        if next_index <= start_after {
            // The caller's state is ahead of the log: continue after it, in a new segment.
            next_index = start_after + 1;
            active = None;
        }
        let placement = active.as_ref().map(|active| Placement {
            end: active.written_end,
            capacity: active.capacity,
        });
        let log = SegmentLog {
            file_system: fs,
            directory,
            options,
            segments: segments.into_iter().map(|segment| segment.path).collect(),
            active,
            next_index,
            write_buffer: Vec::new(),
            pending_chunks: Vec::new(),
            placement,
            halted: None,
        };
        Ok(RecoveredLog {
            log,
            truncated_tail_bytes,
        })
    }

    /// Buffers one record (not yet durable); returns its dense index (first record = 1).
    /// `revision` is the caller's revision for this record, kept only for the segment header's
    /// first_revision.
    pub fn append(&mut self, revision: i64, payload: &[u8]) -> Result<u64, LogError> {
        self.check_not_halted()?;
        let payload_bytes = payload.len() as u64;
        if payload_bytes > RECORD_BYTES_MAX {
            return Err(LogError::RecordTooLarge {
                bytes: payload_bytes,
                limit: RECORD_BYTES_MAX,
            });
        }
        let frame_bytes = FRAME_HEADER_BYTES + payload_bytes;
        let index = self.next_index;
        match self.placement {
            Some(placement) if placement.end + frame_bytes <= placement.capacity => {
                if self.pending_chunks.is_empty() {
                    self.pending_chunks.push(PendingChunk {
                        buffer_start: self.write_buffer.len(),
                        new_segment: None,
                    });
                }
            }
            _ => {
                // A record bigger than a fresh segment gets a segment of its own, sized to fit it.
                let capacity = self
                    .options
                    .segment_bytes_max
                    .max(HEADER_BYTES + frame_bytes);
                let new_segment = NewSegment {
                    first_index: index,
                    first_revision: revision,
                    capacity,
                };
                self.pending_chunks.push(PendingChunk {
                    buffer_start: self.write_buffer.len(),
                    new_segment: Some(new_segment),
                });
                self.placement = Some(Placement {
                    end: HEADER_BYTES,
                    capacity,
                });
            }
        }
        encode_frame(index, payload, &mut self.write_buffer);
        let placement = self
            .placement
            .as_mut()
            .expect("a segment was just planned for this record");
        placement.end += frame_bytes;
        self.next_index = index.checked_add(1).expect("record index space exhausted");
        Ok(index)
    }

    /// Writes everything buffered and makes it durable with exactly ONE fdatasync of the active
    /// segment (plus what rotation needs). After Ok, every appended record survives a crash.
    /// After an error, the buffered records are lost to this process and the log is halted.
    pub fn sync(&mut self) -> Result<(), LogError> {
        self.check_not_halted()?;
        if self.pending_chunks.is_empty() {
            return Ok(());
        }
        let write_buffer = std::mem::take(&mut self.write_buffer);
        let chunks = std::mem::take(&mut self.pending_chunks);
        let result = self.write_chunks(&write_buffer, &chunks);
        // Keep the allocations for the next batch.
        self.write_buffer = write_buffer;
        self.write_buffer.clear();
        self.pending_chunks = chunks;
        self.pending_chunks.clear();
        if let Err(error) = &result {
            self.halted = Some(error.to_string());
            self.active = None;
            self.placement = None;
        }
        result
    }

    /// The index of the last appended record (durable or not); 0 when the log is empty.
    pub fn last_index(&self) -> u64 {
        self.next_index - 1
    }

    /// Every segment file of the log, oldest first (segments deleted by retention left out).
    pub fn segment_paths(&self) -> Vec<PathBuf> {
        self.segments
            .iter()
            .filter(|path| self.file_system.exists(path).unwrap_or(true))
            .cloned()
            .collect()
    }

    /// The first index of every segment file in `dir`, ascending (nothing is read but names).
    pub fn segment_first_indexes(fs: &dyn FileSystem, dir: &Path) -> Result<Vec<u64>, LogError> {
        if !fs.exists(dir).map_err(LogError::io(dir))? {
            return Ok(Vec::new());
        }
        let mut indexes: Vec<u64> = fs
            .list(dir)
            .map_err(LogError::io(dir))?
            .iter()
            .filter_map(|path| path.file_name()?.to_str().and_then(parse_segment_file_name))
            .collect();
        indexes.sort_unstable();
        Ok(indexes)
    }

    /// Segment retention: deletes every segment of `dir` whose records are all at or below
    /// `covered_through` (its successor starts at or before `covered_through + 1`). The last
    /// segment is never deleted, nor is a sealed segment that holds a record after
    /// `covered_through`. Safe while the log is open: only sealed segments go.
    ///
    /// The segments are first renamed to `.tmp` names (oldest first; the directory fsynced), so a
    /// crash leaves either the segment or a leftover that open removes, then shrunk by
    /// [`GRADUAL_DELETE_STEP_BYTES`] at a time (each step fsynced) and removed, and the directory
    /// fsynced: freeing a large file at once stalls the file system's journal, and with it the
    /// active segment's `fdatasync`, for tens of milliseconds. Returns the deleted paths.
    pub fn remove_segments_through(
        fs: &dyn FileSystem,
        dir: &Path,
        covered_through: u64,
    ) -> Result<Vec<PathBuf>, LogError> {
        let mut segments: Vec<(u64, PathBuf)> = fs
            .list(dir)
            .map_err(LogError::io(dir))?
            .into_iter()
            .filter_map(|path| {
                let first_index = parse_segment_file_name(path.file_name()?.to_str()?)?;
                Some((first_index, path))
            })
            .collect();
        segments.sort();
        let mut removed = Vec::new();
        for pair in segments.windows(2) {
            let ((_, path), (next_first_index, _)) = (&pair[0], &pair[1]);
            if *next_first_index > covered_through.saturating_add(1) {
                break;
            }
            fs.rename(path, &temporary_path(path))
                .map_err(LogError::io(path))?;
            removed.push(path.clone());
        }
        if removed.is_empty() {
            return Ok(removed);
        }
        fs.sync_dir(dir).map_err(LogError::io(dir))?;
        for path in &removed {
            let temporary = temporary_path(path);
            remove_gradually(fs, &temporary).map_err(LogError::io(&temporary))?;
        }
        fs.sync_dir(dir).map_err(LogError::io(dir))?;
        Ok(removed)
    }

    /// Drops the segments that retention ([`SegmentLog::remove_segments_through`], from another
    /// thread) deleted from this log's list of segments, so [`SegmentLog::segment_count`] and
    /// [`SegmentLog::segment_paths`] count only what is there. One `exists` per listed segment.
    pub fn forget_removed_segments(&mut self) {
        let file_system = self.file_system.clone();
        let last = self.segments.last().cloned();
        self.segments
            .retain(|path| Some(path) == last.as_ref() || file_system.exists(path).unwrap_or(true));
    }

    /// The number of segment files, the active one included.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    fn check_not_halted(&self) -> Result<(), LogError> {
        match &self.halted {
            Some(cause) => Err(LogError::Halted {
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    fn write_chunks(
        &mut self,
        write_buffer: &[u8],
        chunks: &[PendingChunk],
    ) -> Result<(), LogError> {
        for (position, chunk) in chunks.iter().enumerate() {
            let buffer_end = chunks
                .get(position + 1)
                .map_or(write_buffer.len(), |next| next.buffer_start);
            let frames = &write_buffer[chunk.buffer_start..buffer_end];
            if let Some(new_segment) = chunk.new_segment {
                if let Some(active) = self.active.take() {
                    seal(active)?;
                }
                self.active = Some(self.create_segment(new_segment)?);
            }
            let active = self
                .active
                .as_mut()
                .expect("every chunk has a segment to go to");
            let frames_end = active.written_end + frames.len() as u64;
            assert!(
                frames_end <= active.capacity,
                "segment log planned frames past the end of {}",
                active.path.display()
            );
            active
                .file
                .write_all_at(active.written_end, frames)
                .map_err(LogError::io(&active.path))?;
            active.written_end = frames_end;
        }
        let active = self
            .active
            .as_mut()
            .expect("a synced batch has an active segment");
        active.file.sync_data().map_err(LogError::io(&active.path))
    }

    /// Creates a segment durably: temp file, header, preallocation, fsync, rename, directory fsync.
    fn create_segment(&mut self, new_segment: NewSegment) -> Result<ActiveSegment, LogError> {
        let path = self
            .directory
            .join(segment_file_name(new_segment.first_index));
        let temporary = temporary_path(&path);
        let format_version = self.options.format_version;
        let header = SegmentHeader {
            format_version,
            writer_version: self.options.writer_version,
            node_id: self.options.node_id,
            first_index: new_segment.first_index,
            first_revision: new_segment.first_revision,
            term: 0,
            cluster_id: if format_version >= 2 { self.options.cluster_id } else { 0 },
        };
        let mut file = self
            .file_system
            .create(&temporary)
            .map_err(LogError::io(&temporary))?;
        file.write_all_at(0, &header.encode())
            .map_err(LogError::io(&temporary))?;
        file.set_len(new_segment.capacity)
            .map_err(LogError::io(&temporary))?;
        file.sync_all().map_err(LogError::io(&temporary))?;
        // Replaces a record-less last segment of the same name left by a crash.
        self.file_system
            .rename(&temporary, &path)
            .map_err(LogError::io(&path))?;
        self.file_system
            .sync_dir(&self.directory)
            .map_err(LogError::io(&self.directory))?;
        if self.segments.last() != Some(&path) {
            self.segments.push(path.clone());
        }
        Ok(ActiveSegment {
            path,
            file,
            written_end: HEADER_BYTES,
            capacity: new_segment.capacity,
        })
    }
}

/// Shrinks a file by [`GRADUAL_DELETE_STEP_BYTES`] at a time, each step fsynced, then removes it
/// (the caller fsyncs the directory).
fn remove_gradually(file_system: &dyn FileSystem, path: &Path) -> std::io::Result<()> {
    let mut file = file_system.open(path)?;
    let mut length = file.len()?;
    while length > GRADUAL_DELETE_STEP_BYTES {
        length -= GRADUAL_DELETE_STEP_BYTES;
        file.set_len(length)?;
        file.sync_data()?;
    }
    drop(file);
    file_system.remove(path)
}

/// Seals a full segment: cut the preallocated tail, fsync. Never touched again.
fn seal(mut active: ActiveSegment) -> Result<(), LogError> {
    active
        .file
        .set_len(active.written_end)
        .map_err(LogError::io(&active.path))?;
    active.file.sync_all().map_err(LogError::io(&active.path))
}

/// Reads and checks a segment's header without modifying anything.
fn read_header(file_system: &dyn FileSystem, path: &Path) -> Result<SegmentHeader, LogError> {
    let file = file_system.open_read(path).map_err(LogError::io(path))?;
    let file_len = file.len().map_err(LogError::io(path))?;
    let mut bytes = vec![0; file_len.min(HEADER_BYTES) as usize];
    file.read_exact_at(0, &mut bytes)
        .map_err(LogError::io(path))?;
    SegmentHeader::decode(&bytes).map_err(|problem| header_error(path, problem))
}

fn header_error(path: &Path, problem: HeaderProblem) -> LogError {
    match problem {
        HeaderProblem::BadMagic => LogError::BadMagic {
            path: path.to_path_buf(),
        },
        HeaderProblem::UnsupportedFormat { found_version } => LogError::UnsupportedFormat {
            path: path.to_path_buf(),
            found_version,
            supported_version: FORMAT_VERSION_CURRENT,
        },
        HeaderProblem::Corrupt { offset, reason } => LogError::Corrupt {
            path: path.to_path_buf(),
            offset,
            reason,
        },
    }
}

/// What a read-only verification of one whole segment file found (see [`verify_segment`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentSummary {
    pub header: SegmentHeader,
    /// Valid records, from `header.first_index` on.
    pub record_count: u64,
    /// The index after the last valid record.
    pub next_index: u64,
    /// Where the valid records end.
    pub records_end: u64,
    /// Bytes of torn tail after the records (a last segment only; open would cut them).
    pub torn_tail_bytes: u64,
}

/// Verifies a whole segment file's bytes without any IO, as open does: the header, then every
/// frame, calling `on_record(index, payload)` for each valid one. A sealed segment (`last ==
/// false`) must be valid to its last byte; in the last segment a torn tail is allowed and
/// reported. Errors name the byte offset (the path in them is `path`, only for the message).
/// Never panics, whatever the bytes.
pub fn verify_segment(path: &Path, bytes: &[u8], last: bool, on_record: &mut RecordHandler<'_>) -> Result<SegmentSummary, LogError> {
    let header = SegmentHeader::decode(bytes).map_err(|problem| header_error(path, problem))?;
    let scan_error = |error: ScanError| match error {
        ScanError::Corrupt { offset, reason } => LogError::Corrupt { path: path.to_path_buf(), offset, reason },
        ScanError::RecordRejected { index, reason } => LogError::RecordRejected { index, reason },
    };
    if last {
        let scan = scan_last_segment(bytes, header.first_index, on_record).map_err(scan_error)?;
        Ok(SegmentSummary {
            header,
            record_count: scan.record_count,
            next_index: scan.next_index,
            records_end: scan.records_end,
            torn_tail_bytes: scan.torn_tail_bytes,
        })
    } else {
        let next_index = scan_sealed_segment(bytes, header.first_index, on_record).map_err(scan_error)?;
        Ok(SegmentSummary {
            header,
            record_count: next_index - header.first_index,
            next_index,
            records_end: bytes.len() as u64,
            torn_tail_bytes: 0,
        })
    }
}

/// The first index a segment file name says, if `name` is a segment's name.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    parse_segment_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_are_twenty_digit_first_indexes() {
        assert_eq!(segment_file_name(1), "00000000000000000001.seg");
        assert_eq!(
            parse_segment_file_name("00000000000000000042.seg"),
            Some(42)
        );
        assert_eq!(parse_segment_file_name("42.seg"), None);
        assert_eq!(
            parse_segment_file_name("00000000000000000042.seg.tmp"),
            None
        );
        assert_eq!(parse_segment_file_name("0000000000000000004x.seg"), None);
    }

    #[test]
    fn writer_version_encodes_the_crate_version() {
        let expected: u32 = env!("CARGO_PKG_VERSION_MAJOR").parse::<u32>().unwrap() * 1_000_000
            + env!("CARGO_PKG_VERSION_MINOR").parse::<u32>().unwrap() * 1_000
            + env!("CARGO_PKG_VERSION_PATCH").parse::<u32>().unwrap();
        assert_eq!(WRITER_VERSION_CURRENT, expected);
    }
}

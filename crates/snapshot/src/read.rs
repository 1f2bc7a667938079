//! Reading snapshots: [`SnapshotReader`] checks the prefix and header at open, then hands out
//! records one by one, reading the file in blocks (never the whole file at once) and checking each
//! frame's CRC; at the trailer it checks the counts and the CRC of every byte before it, and that
//! nothing follows. [`verify`] reads a whole file that way.
//!
//! Invariants:
//! - Nothing here modifies a file.
//! - A caller that got `Ok(None)` from [`SnapshotReader::next_record`] has read every record of an
//!   intact file; any damage, truncation included, is an error naming the byte offset.

use std::path::{Path, PathBuf};

use strata_io::{File, FileSystem};

use crate::error::SnapshotError;
use crate::format::{
    decode_header, decode_prefix, decode_trailer_payload, read_u32, HeaderProblem, Record, RecordKind, SnapshotHeader, FRAME_HEADER_BYTES, PREFIX_BYTES,
    RECORD_BYTES_MAX,
};

/// Bytes read from the file at a time.
pub const READ_BLOCK_BYTES: usize = 1024 * 1024;

/// Reads one snapshot file (see the module documentation).
pub struct SnapshotReader {
    path: PathBuf,
    file: Box<dyn File>,
    file_length: u64,
    header: SnapshotHeader,
    /// Bytes read from the file and not yet dropped; `buffer[0]` is at `buffer_offset`.
    buffer: Vec<u8>,
    buffer_offset: u64,
    /// The next unread byte in `buffer`.
    position: usize,
    /// CRC32C of every byte before `buffer_offset + position`.
    crc: u32,
    record_count: u64,
    key_count: u64,
    last_key: Option<Vec<u8>>,
    finished: bool,
}

impl SnapshotReader {
    /// Opens `path` and checks its prefix and header.
    pub fn open(file_system: &dyn FileSystem, path: &Path) -> Result<SnapshotReader, SnapshotError> {
        let file = file_system.open_read(path).map_err(SnapshotError::io(path))?;
        let file_length = file.len().map_err(SnapshotError::io(path))?;
        let mut reader = SnapshotReader {
            path: path.to_path_buf(),
            file,
            file_length,
            header: SnapshotHeader::default(),
            buffer: Vec::new(),
            buffer_offset: 0,
            position: 0,
            crc: 0,
            record_count: 0,
            key_count: 0,
            last_key: None,
            finished: false,
        };
        let available = reader.fill(PREFIX_BYTES)?;
        let prefix = decode_prefix(&reader.buffer[..available]).map_err(|problem| reader.header_error(problem))?;
        if !reader.ensure(PREFIX_BYTES + prefix.header_length)? {
            return Err(reader.corrupt(PREFIX_BYTES as u64, format!("the file ends inside its {}-byte header", prefix.header_length)));
        }
        let header_bytes = &reader.buffer[PREFIX_BYTES..PREFIX_BYTES + prefix.header_length];
        reader.header = decode_header(&prefix, header_bytes).map_err(|problem| reader.header_error(problem))?;
        reader.consume(PREFIX_BYTES + prefix.header_length);
        Ok(reader)
    }

    pub fn header(&self) -> &SnapshotHeader {
        &self.header
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's size in bytes.
    pub fn file_length(&self) -> u64 {
        self.file_length
    }

    /// Bytes read so far (for progress).
    pub fn position(&self) -> u64 {
        self.buffer_offset + self.position as u64
    }

    /// Distinct keys read so far.
    pub fn key_count(&self) -> u64 {
        self.key_count
    }

    /// The next record; `Ok(None)` after the trailer was read and checked.
    pub fn next_record(&mut self) -> Result<Option<Record>, SnapshotError> {
        if self.finished {
            return Ok(None);
        }
        let offset = self.position();
        if !self.ensure(FRAME_HEADER_BYTES)? {
            return Err(self.corrupt(offset, "the file ends without its trailer (truncated)".to_string()));
        }
        let frame = &self.buffer[self.position..];
        let length = read_u32(frame, 0) as usize;
        let crc = read_u32(frame, 4);
        let kind_byte = frame[8];
        if length > RECORD_BYTES_MAX {
            return Err(self.corrupt(offset, format!("a record of {length} bytes is larger than {RECORD_BYTES_MAX}")));
        }
        if !self.ensure(FRAME_HEADER_BYTES + length)? {
            return Err(self.corrupt(offset, format!("a record of {length} bytes runs past the end of the file ({} bytes)", self.file_length)));
        }
        let frame = &self.buffer[self.position..self.position + FRAME_HEADER_BYTES + length];
        if crc32c::crc32c(&frame[8..]) != crc {
            return Err(self.corrupt(offset, "record CRC mismatch".to_string()));
        }
        let Some(kind) = RecordKind::from_byte(kind_byte) else {
            return Err(self.corrupt(offset + 8, format!("unknown record kind {kind_byte} (written by a newer release?)")));
        };
        let payload = &frame[FRAME_HEADER_BYTES..];
        if kind == RecordKind::End {
            let Some((record_count, key_count, file_crc)) = decode_trailer_payload(payload) else {
                return Err(self.corrupt(offset, format!("a trailer of {length} bytes")));
            };
            if file_crc != self.crc {
                return Err(self.corrupt(offset, "the trailer's CRC of the file does not match its bytes".to_string()));
            }
            if (record_count, key_count) != (self.record_count, self.key_count) {
                return Err(self.corrupt(
                    offset,
                    format!("the trailer counts {record_count} records and {key_count} keys, the file holds {} and {}", self.record_count, self.key_count),
                ));
            }
            let end = offset + (FRAME_HEADER_BYTES + length) as u64;
            if end != self.file_length {
                return Err(self.corrupt(end, format!("{} bytes follow the trailer", self.file_length - end)));
            }
            self.consume(FRAME_HEADER_BYTES + length);
            self.finished = true;
            return Ok(None);
        }
        let record = Record::decode(kind, payload).map_err(|reason| self.corrupt(offset + FRAME_HEADER_BYTES as u64, reason))?;
        if let Record::Key(key) = &record {
            if self.last_key.as_deref() != Some(key.key.as_slice()) {
                self.key_count += 1;
                self.last_key = Some(key.key.clone());
            }
        }
        self.record_count += 1;
        self.consume(FRAME_HEADER_BYTES + length);
        Ok(Some(record))
    }

    /// Marks `count` buffered bytes as read, adding them to the running CRC.
    fn consume(&mut self, count: usize) {
        self.crc = crc32c::crc32c_append(self.crc, &self.buffer[self.position..self.position + count]);
        self.position += count;
    }

    /// Makes `count` unread bytes available if the file has them; false at end of file.
    fn ensure(&mut self, count: usize) -> Result<bool, SnapshotError> {
        Ok(self.fill(count)? >= count)
    }

    /// Reads until `count` unread bytes are buffered or the file ends; returns how many are.
    fn fill(&mut self, count: usize) -> Result<usize, SnapshotError> {
        let mut available = self.buffer.len() - self.position;
        if available >= count {
            return Ok(available);
        }
        self.buffer.drain(..self.position);
        self.buffer_offset += self.position as u64;
        self.position = 0;
        while available < count {
            let read_offset = self.buffer_offset + available as u64;
            if read_offset >= self.file_length {
                break;
            }
            let wanted = (count - available).max(READ_BLOCK_BYTES).min(usize::try_from(self.file_length - read_offset).unwrap_or(usize::MAX));
            self.buffer.resize(available + wanted, 0);
            let read = self.file.read_at(read_offset, &mut self.buffer[available..]).map_err(SnapshotError::io(&self.path))?;
            self.buffer.truncate(available + read);
            if read == 0 {
                break;
            }
            available += read;
        }
        Ok(available)
    }

    fn corrupt(&self, offset: u64, reason: String) -> SnapshotError {
        SnapshotError::Corrupt { path: self.path.clone(), offset, reason }
    }

    fn header_error(&self, problem: HeaderProblem) -> SnapshotError {
        match problem {
            HeaderProblem::BadMagic => SnapshotError::BadMagic { path: self.path.clone() },
            HeaderProblem::UnsupportedFormat { found_version } => SnapshotError::UnsupportedFormat { path: self.path.clone(), found_version },
            HeaderProblem::Corrupt { offset, reason } => self.corrupt(offset, reason),
        }
    }
}

/// What a snapshot holds, counted by [`verify`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotStatistics {
    pub header: SnapshotHeader,
    pub bytes: u64,
    pub record_count: u64,
    pub key_count: u64,
    pub version_count: u64,
    /// Key records without versions (an incremental snapshot's removed keys).
    pub removed_key_count: u64,
    pub lease_count: u64,
    pub member_count: u64,
    pub removed_member_count: u64,
    pub alarm_count: u64,
    pub auth_record_count: u64,
}

/// Reads a whole snapshot and checks every record, calling `progress(bytes read, file size)` now
/// and then.
pub fn verify(file_system: &dyn FileSystem, path: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<SnapshotStatistics, SnapshotError> {
    let mut reader = SnapshotReader::open(file_system, path)?;
    let mut statistics = SnapshotStatistics { header: reader.header().clone(), bytes: reader.file_length(), ..SnapshotStatistics::default() };
    let mut reported = 0;
    while let Some(record) = reader.next_record()? {
        statistics.record_count += 1;
        match record {
            Record::Key(key) => {
                statistics.version_count += key.versions.len() as u64;
                statistics.removed_key_count += u64::from(key.versions.is_empty());
            }
            Record::Lease(_) => statistics.lease_count += 1,
            Record::Member(_) => statistics.member_count += 1,
            Record::RemovedMember(_) => statistics.removed_member_count += 1,
            Record::Alarm(_) => statistics.alarm_count += 1,
            Record::Auth(_) => statistics.auth_record_count += 1,
        }
        if reader.position() - reported >= READ_BLOCK_BYTES as u64 {
            reported = reader.position();
            progress(reported, statistics.bytes);
        }
    }
    statistics.key_count = reader.key_count();
    progress(statistics.bytes, statistics.bytes);
    Ok(statistics)
}

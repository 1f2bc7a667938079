//! The disk seam: every file access of Strata's storage layers goes through [`FileSystem`] and
//! [`File`], so the same code runs on the real disk ([`RealFileSystem`]) and on a simulated disk
//! that loses unsynced data on a crash ([`SimulatedFileSystem`]).
//!
//! Invariants and contract of the seam:
//! - Written bytes are durable only after [`File::sync_data`] or [`File::sync_all`] on that file
//!   returned `Ok`. A failed sync guarantees nothing, not even for data written before it.
//! - A directory entry (create, rename, remove) is durable only after [`FileSystem::sync_dir`] on
//!   the directory that holds it returned `Ok`.
//! - [`FileSystem::rename`] atomically replaces the target if it exists.
//! - Both traits are object safe; callers hold an `Arc<dyn FileSystem>` and `Box<dyn File>`.
//!
//! The crate also holds [`LockFile`] (the data directory's exclusive lock, real disk only) and
//! [`SeededRandom`], the small deterministic random source the simulation uses.

mod lock;
mod random;
mod real;
mod simulated;

use std::io;
use std::path::{Path, PathBuf};

pub use lock::{LockFile, LOCK_FILE_NAME};
pub use random::SeededRandom;
pub use real::RealFileSystem;
pub use simulated::{CrashMode, SimulatedFileSystem, SimulatedStatistics};

/// An open file. Offsets are absolute; there is no cursor.
pub trait File: Send {
    /// Reads up to `buffer.len()` bytes at `offset`; returns how many were read (0 at end of file).
    fn read_at(&self, offset: u64, buffer: &mut [u8]) -> io::Result<usize>;

    /// Writes all of `bytes` at `offset`, extending the file if needed. Not durable until synced.
    fn write_all_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()>;

    /// Truncates or extends (with zeros) the file to `len` bytes. Not durable until synced.
    fn set_len(&mut self, len: u64) -> io::Result<()>;

    /// The file's current length in bytes.
    fn len(&self) -> io::Result<u64>;

    /// Makes written data (and the length) durable: `fdatasync`.
    fn sync_data(&mut self) -> io::Result<()>;

    /// Makes written data and all metadata durable: `fsync`.
    fn sync_all(&mut self) -> io::Result<()>;

    /// True when the file has no bytes.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Fills `buffer` from `offset`, failing with `UnexpectedEof` if the file is too short.
    fn read_exact_at(&self, offset: u64, buffer: &mut [u8]) -> io::Result<()> {
        let mut filled = 0;
        while filled < buffer.len() {
            let read = self.read_at(offset + filled as u64, &mut buffer[filled..])?;
            if read == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "file ended at byte {} while reading {} bytes at offset {offset}",
                        offset + filled as u64,
                        buffer.len()
                    ),
                ));
            }
            filled += read;
        }
        Ok(())
    }

    /// Reads the whole file.
    fn read_to_vec(&self) -> io::Result<Vec<u8>> {
        let len = usize::try_from(self.len()?).map_err(|_| {
            io::Error::new(
                io::ErrorKind::OutOfMemory,
                "file larger than the address space",
            )
        })?;
        let mut bytes = vec![0; len];
        self.read_exact_at(0, &mut bytes)?;
        Ok(bytes)
    }
}

/// A file system: the namespace operations the storage layers need, nothing more.
pub trait FileSystem: Send + Sync {
    /// Creates `path` (truncating it if it exists) and opens it for reading and writing.
    fn create(&self, path: &Path) -> io::Result<Box<dyn File>>;

    /// Opens an existing file for reading and writing.
    fn open(&self, path: &Path) -> io::Result<Box<dyn File>>;

    /// Opens an existing file for reading only; writes through the handle fail.
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn File>>;

    /// Renames `from` to `to`, atomically replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;

    /// The paths of the entries (files and directories) directly inside `directory`, sorted.
    fn list(&self, directory: &Path) -> io::Result<Vec<PathBuf>>;

    /// Creates `directory` and its missing parents.
    fn create_dir_all(&self, directory: &Path) -> io::Result<()>;

    /// Makes the entries of `directory` (creates, renames, removes) durable.
    fn sync_dir(&self, directory: &Path) -> io::Result<()>;

    /// Whether a file or directory exists at `path`.
    fn exists(&self, path: &Path) -> io::Result<bool>;

    /// The length of the file at `path` in bytes.
    fn file_len(&self, path: &Path) -> io::Result<u64>;

    /// Reads the whole file at `path`.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.open_read(path)?.read_to_vec()
    }
}

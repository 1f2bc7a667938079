//! The data directory's lock: an exclusive advisory lock on `<data-dir>/LOCK`, held by the serving
//! process for as long as the [`LockFile`] guard lives.
//!
//! Invariants: at most one guard per data directory exists across all processes of the machine
//! (the operating system's `flock`-style lock enforces it, and releases it when the process dies,
//! so a crashed process never leaves a stale lock behind). The lock file's contents mean nothing.
//! Real disk only: the simulated disk has a single process by construction.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The name of the lock file inside a data directory.
pub const LOCK_FILE_NAME: &str = "LOCK";

/// Holds the exclusive lock on a data directory until dropped.
#[derive(Debug)]
pub struct LockFile {
    path: PathBuf,
    // Keeping the file open keeps the lock; closing it (on drop) releases it.
    _file: fs::File,
}

impl LockFile {
    /// Takes the exclusive lock on `data_directory/LOCK`, creating the file if needed. Fails at once
    /// (without waiting) if another process holds it, with a message naming the directory.
    pub fn acquire(data_directory: &Path) -> io::Result<LockFile> {
        let path = data_directory.join(LOCK_FILE_NAME);
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|error| {
                io::Error::new(
                    error.kind(),
                    format!("cannot open the lock file {}: {error}", path.display()),
                )
            })?;
        match file.try_lock() {
            Ok(()) => Ok(LockFile { path, _file: file }),
            Err(fs::TryLockError::WouldBlock) => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "another process holds the data directory {} (its lock file {} is locked); stop that process or use another data directory",
                    data_directory.display(),
                    path.display()
                ),
            )),
            Err(fs::TryLockError::Error(error)) => Err(io::Error::new(
                error.kind(),
                format!("cannot lock the data directory {} (lock file {}): {error}", data_directory.display(), path.display()),
            )),
        }
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

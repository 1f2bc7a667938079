//! A simulated disk in memory that models what survives a power loss, so storage code can be
//! crashed at any point, deterministically, from a seed.
//!
//! The model, kept simple but honest:
//! - Every file (inode) has *durable* contents and a list of *pending* changes (writes and length
//!   changes) made since its last successful sync. Reads see the current contents: durable plus
//!   pending. `sync_data`/`sync_all` make the pending changes durable; a failed sync makes nothing
//!   durable (the changes stay pending and may be lost).
//! - The namespace (path → inode) has a current and a durable version. A create, rename or remove
//!   changes the current version at once; it becomes durable only when `sync_dir` is called on the
//!   directory holding the entry (a rename across directories needs both directories synced).
//!   `sync_dir` persists the directory's whole current listing.
//! - Directories themselves are durable as soon as `create_dir_all` returns (a simplification:
//!   Strata creates its directories once, before any data file).
//! - [`SimulatedFileSystem::crash`] is a power loss followed by a reboot: with
//!   [`CrashMode::LoseUnsynced`] every pending change and every unsynced directory entry vanishes;
//!   with [`CrashMode::TornTail`] each file keeps a random *prefix* of its pending changes, the
//!   last kept write possibly cut mid-way at a byte boundary, and each directory with unsynced
//!   entries keeps either all or none of them. The choice depends only on the seed.
//! - Handles opened before a crash fail afterwards (the process that held them is gone).
//! - Faults: a write budget after which writes fail with `StorageFull` (the part that fits is
//!   written, like a short `write` before `ENOSPC`), failing syncs (`EIO`), an operation budget
//!   after which every mutating call fails (the moment of a crash), and byte flips (corruption at
//!   rest). Faults survive a crash; [`SimulatedFileSystem::clear_faults`] removes them.
//!
//! Paths are compared exactly as given (no normalisation). All state sits behind one mutex, so
//! the simulated disk is `Send + Sync` and clones share it.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::{File, FileSystem, SeededRandom};

/// What a simulated power loss keeps of the unsynced state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashMode {
    /// Every unsynced write, length change and directory entry vanishes.
    LoseUnsynced,
    /// Each file keeps a random prefix of its unsynced changes (the last kept write possibly cut
    /// mid-way); each directory keeps all or none of its unsynced entries. Deterministic per seed.
    TornTail { seed: u64 },
}

/// Counters of the calls the simulated disk served, for tests that check IO patterns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimulatedStatistics {
    pub write_calls: u64,
    pub bytes_written: u64,
    pub data_syncs: u64,
    pub full_syncs: u64,
    pub directory_syncs: u64,
    pub crashes: u64,
}

/// The in-memory simulated disk. Clones share the same disk.
#[derive(Clone, Default)]
pub struct SimulatedFileSystem {
    state: Arc<Mutex<SimulatedState>>,
}

#[derive(Default)]
struct SimulatedState {
    /// Bumped by every crash; handles from an older generation are dead.
    generation: u64,
    inodes: BTreeMap<u64, Inode>,
    inode_next: u64,
    entries: BTreeMap<PathBuf, u64>,
    durable_entries: BTreeMap<PathBuf, u64>,
    directories: BTreeSet<PathBuf>,
    faults: Faults,
    statistics: SimulatedStatistics,
}

#[derive(Default)]
struct Faults {
    write_bytes_remaining: Option<u64>,
    operations_remaining: Option<u64>,
    syncs_failing: bool,
}

#[derive(Default)]
struct Inode {
    durable: Vec<u8>,
    current: Vec<u8>,
    pending: Vec<PendingChange>,
}

enum PendingChange {
    Write { offset: u64, bytes: Vec<u8> },
    SetLen(u64),
}

impl PendingChange {
    /// Applies the change to `contents`; for a write, only its first `byte_count` bytes.
    fn apply(&self, contents: &mut Vec<u8>, byte_count: Option<usize>) {
        match self {
            PendingChange::Write { offset, bytes } => {
                let bytes = &bytes[..byte_count.unwrap_or(bytes.len()).min(bytes.len())];
                write_into(contents, *offset, bytes);
            }
            PendingChange::SetLen(len) => contents.resize(to_usize(*len), 0),
        }
    }
}

fn to_usize(value: u64) -> usize {
    usize::try_from(value).expect("simulated file offsets fit in memory")
}

fn write_into(contents: &mut Vec<u8>, offset: u64, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    let start = to_usize(offset);
    let end = start + bytes.len();
    if contents.len() < end {
        contents.resize(end, 0);
    }
    contents[start..end].copy_from_slice(bytes);
}

fn error(kind: io::ErrorKind, message: impl Into<String>) -> io::Error {
    io::Error::new(kind, message.into())
}

fn not_found(path: &Path) -> io::Error {
    error(
        io::ErrorKind::NotFound,
        format!(
            "simulated disk: no such file or directory: {}",
            path.display()
        ),
    )
}

fn parent_of(path: &Path) -> Option<&Path> {
    path.parent()
        .filter(|parent| !parent.as_os_str().is_empty())
}

impl SimulatedState {
    /// Counts one mutating operation against the operation budget.
    fn begin_mutation(&mut self) -> io::Result<()> {
        match &mut self.faults.operations_remaining {
            Some(0) => Err(error(
                io::ErrorKind::Other,
                "simulated crash point: the disk accepts no more operations",
            )),
            Some(remaining) => {
                *remaining -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn check_sync(&self) -> io::Result<()> {
        if self.faults.syncs_failing {
            return Err(error(io::ErrorKind::Other, "simulated fsync failure (EIO)"));
        }
        Ok(())
    }

    fn parent_exists(&self, path: &Path) -> bool {
        parent_of(path).is_none_or(|parent| self.directories.contains(parent))
    }

    fn inode_of(&self, path: &Path) -> io::Result<u64> {
        self.entries
            .get(path)
            .copied()
            .ok_or_else(|| not_found(path))
    }

    fn open_handle(
        &self,
        state: &Arc<Mutex<SimulatedState>>,
        path: &Path,
        writable: bool,
    ) -> io::Result<Box<dyn File>> {
        let inode = self.inode_of(path)?;
        Ok(Box::new(SimulatedFile {
            state: Arc::clone(state),
            inode,
            generation: self.generation,
            writable,
            path: path.to_path_buf(),
        }))
    }

    fn crash(&mut self, mode: CrashMode) {
        let mut random = match mode {
            CrashMode::LoseUnsynced => None,
            CrashMode::TornTail { seed } => Some(SeededRandom::new(seed)),
        };
        // Directories: all or none of each directory's unsynced entries survive.
        let changed_directories: BTreeSet<PathBuf> = self
            .entries
            .keys()
            .chain(self.durable_entries.keys())
            .filter(|path| self.entries.get(*path) != self.durable_entries.get(*path))
            .map(|path| parent_of(path).map(Path::to_path_buf).unwrap_or_default())
            .collect();
        for directory in changed_directories {
            let keep = random.as_mut().is_some_and(|random| random.chance(1, 2));
            if keep {
                persist_directory(&self.entries, &mut self.durable_entries, &directory);
            }
        }
        self.entries = self.durable_entries.clone();
        // Files: a prefix of the pending changes survives, the next write possibly in part.
        for inode in self.inodes.values_mut() {
            let pending = std::mem::take(&mut inode.pending);
            let kept_count = match random.as_mut() {
                None => 0,
                Some(random) => to_usize(random.below(pending.len() as u64 + 1)),
            };
            for change in &pending[..kept_count] {
                change.apply(&mut inode.durable, None);
            }
            if let (Some(random), Some(change @ PendingChange::Write { bytes, .. })) =
                (random.as_mut(), pending.get(kept_count))
            {
                let cut = to_usize(random.below(bytes.len() as u64 + 1));
                change.apply(&mut inode.durable, Some(cut));
            }
            inode.current = inode.durable.clone();
        }
        let referenced: BTreeSet<u64> = self.entries.values().copied().collect();
        self.inodes.retain(|id, _| referenced.contains(id));
        self.generation += 1;
        self.statistics.crashes += 1;
    }
}

/// Makes the current entries of `directory` its durable entries.
fn persist_directory(
    entries: &BTreeMap<PathBuf, u64>,
    durable_entries: &mut BTreeMap<PathBuf, u64>,
    directory: &Path,
) {
    let in_directory = |path: &Path| parent_of(path).unwrap_or(Path::new("")) == directory;
    durable_entries.retain(|path, _| !in_directory(path));
    for (path, inode) in entries {
        if in_directory(path) {
            durable_entries.insert(path.clone(), *inode);
        }
    }
}

impl SimulatedFileSystem {
    pub fn new() -> SimulatedFileSystem {
        SimulatedFileSystem::default()
    }

    fn state(&self) -> MutexGuard<'_, SimulatedState> {
        // A panicking test thread must not hide the disk from the checks that follow.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Simulates a power loss and reboot; see [`CrashMode`]. Open handles die.
    pub fn crash(&self, mode: CrashMode) {
        self.state().crash(mode);
    }

    /// After `bytes` more bytes are written, writes fail with `StorageFull` (a write that crosses
    /// the limit writes the part that fits first).
    pub fn fail_writes_after(&self, bytes: u64) {
        self.state().faults.write_bytes_remaining = Some(bytes);
    }

    /// Makes every `sync_data`, `sync_all` and `sync_dir` fail (with nothing made durable) or work.
    pub fn fail_syncs(&self, failing: bool) {
        self.state().faults.syncs_failing = failing;
    }

    /// After `operations` more mutating calls (writes, length changes, syncs, creates, renames,
    /// removes), every mutating call fails: the moment the machine lost power. Call
    /// [`SimulatedFileSystem::crash`] next.
    pub fn fail_operations_after(&self, operations: u64) {
        self.state().faults.operations_remaining = Some(operations);
    }

    /// Removes every injected fault.
    pub fn clear_faults(&self) {
        self.state().faults = Faults::default();
    }

    /// Inverts every bit of the byte at `offset` in `path`, in both its current and durable
    /// contents: corruption at rest.
    pub fn flip_byte(&self, path: &Path, offset: u64) -> io::Result<()> {
        let mut state = self.state();
        let inode_id = state.inode_of(path)?;
        let inode = state
            .inodes
            .get_mut(&inode_id)
            .ok_or_else(|| not_found(path))?;
        let position = to_usize(offset);
        if position >= inode.current.len() {
            return Err(error(
                io::ErrorKind::InvalidInput,
                format!("offset {offset} is past the end of {}", path.display()),
            ));
        }
        inode.current[position] ^= 0xFF;
        if let Some(byte) = inode.durable.get_mut(position) {
            *byte ^= 0xFF;
        }
        Ok(())
    }

    /// The current contents of the file at `path` (what a read sees).
    pub fn contents(&self, path: &Path) -> io::Result<Vec<u8>> {
        let state = self.state();
        let inode = state.inode_of(path)?;
        Ok(state.inodes[&inode].current.clone())
    }

    /// The durable contents of the file at `path` (what a crash would keep at least).
    pub fn durable_contents(&self, path: &Path) -> io::Result<Vec<u8>> {
        let state = self.state();
        let inode = state.inode_of(path)?;
        Ok(state.inodes[&inode].durable.clone())
    }

    /// The counters of served calls so far.
    pub fn statistics(&self) -> SimulatedStatistics {
        self.state().statistics.clone()
    }
}

impl FileSystem for SimulatedFileSystem {
    fn create(&self, path: &Path) -> io::Result<Box<dyn File>> {
        let mut state = self.state();
        state.begin_mutation()?;
        if !state.parent_exists(path) || state.directories.contains(path) {
            return Err(not_found(path));
        }
        match state.entries.get(path).copied() {
            Some(existing) => {
                // O_TRUNC truncates the existing inode; the entry is unchanged.
                let inode = state
                    .inodes
                    .get_mut(&existing)
                    .expect("entries point at live inodes");
                inode.current.clear();
                inode.pending.push(PendingChange::SetLen(0));
            }
            None => {
                let id = state.inode_next;
                state.inode_next += 1;
                state.inodes.insert(id, Inode::default());
                state.entries.insert(path.to_path_buf(), id);
            }
        }
        state.open_handle(&self.state, path, true)
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn File>> {
        self.state().open_handle(&self.state, path, true)
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn File>> {
        self.state().open_handle(&self.state, path, false)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.state();
        state.begin_mutation()?;
        let inode = state.inode_of(from)?;
        if !state.parent_exists(to) || state.directories.contains(to) {
            return Err(not_found(to));
        }
        state.entries.remove(from);
        state.entries.insert(to.to_path_buf(), inode);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state();
        state.begin_mutation()?;
        state
            .entries
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| not_found(path))
    }

    fn list(&self, directory: &Path) -> io::Result<Vec<PathBuf>> {
        let state = self.state();
        if !state.directories.contains(directory) {
            return Err(not_found(directory));
        }
        let mut paths: Vec<PathBuf> = state
            .entries
            .keys()
            .chain(state.directories.iter())
            .filter(|path| parent_of(path) == Some(directory))
            .cloned()
            .collect();
        paths.sort();
        Ok(paths)
    }

    fn create_dir_all(&self, directory: &Path) -> io::Result<()> {
        let mut state = self.state();
        state.begin_mutation()?;
        if directory
            .ancestors()
            .any(|ancestor| state.entries.contains_key(ancestor))
        {
            return Err(error(
                io::ErrorKind::AlreadyExists,
                format!(
                    "simulated disk: a file is in the way of {}",
                    directory.display()
                ),
            ));
        }
        for ancestor in directory
            .ancestors()
            .filter(|ancestor| !ancestor.as_os_str().is_empty())
        {
            state.directories.insert(ancestor.to_path_buf());
        }
        Ok(())
    }

    fn sync_dir(&self, directory: &Path) -> io::Result<()> {
        let mut state = self.state();
        state.begin_mutation()?;
        if !state.directories.contains(directory) {
            return Err(not_found(directory));
        }
        state.check_sync()?;
        let state = &mut *state;
        persist_directory(&state.entries, &mut state.durable_entries, directory);
        state.statistics.directory_syncs += 1;
        Ok(())
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        let state = self.state();
        Ok(state.entries.contains_key(path) || state.directories.contains(path))
    }

    fn file_len(&self, path: &Path) -> io::Result<u64> {
        let state = self.state();
        let inode = state.inode_of(path)?;
        Ok(state.inodes[&inode].current.len() as u64)
    }
}

/// A handle on a simulated file; dies with the generation it was opened in.
struct SimulatedFile {
    state: Arc<Mutex<SimulatedState>>,
    inode: u64,
    generation: u64,
    writable: bool,
    path: PathBuf,
}

impl SimulatedFile {
    fn state(&self) -> io::Result<MutexGuard<'_, SimulatedState>> {
        let state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if state.generation != self.generation {
            return Err(error(
                io::ErrorKind::Other,
                format!(
                    "handle on {} was opened before a simulated crash",
                    self.path.display()
                ),
            ));
        }
        Ok(state)
    }

    fn writable_state(&self) -> io::Result<MutexGuard<'_, SimulatedState>> {
        if !self.writable {
            return Err(error(
                io::ErrorKind::PermissionDenied,
                format!("{} was opened read-only", self.path.display()),
            ));
        }
        let mut state = self.state()?;
        state.begin_mutation()?;
        Ok(state)
    }

    fn sync(&mut self, full: bool) -> io::Result<()> {
        let mut state = self.state()?;
        state.begin_mutation()?;
        state.check_sync()?;
        let inode = state
            .inodes
            .get_mut(&self.inode)
            .expect("open handles keep their inode");
        for change in std::mem::take(&mut inode.pending) {
            change.apply(&mut inode.durable, None);
        }
        debug_assert_eq!(inode.durable, inode.current);
        if full {
            state.statistics.full_syncs += 1;
        } else {
            state.statistics.data_syncs += 1;
        }
        Ok(())
    }
}

impl File for SimulatedFile {
    fn read_at(&self, offset: u64, buffer: &mut [u8]) -> io::Result<usize> {
        let state = self.state()?;
        let current = &state.inodes[&self.inode].current;
        let start = to_usize(offset).min(current.len());
        let count = buffer.len().min(current.len() - start);
        buffer[..count].copy_from_slice(&current[start..start + count]);
        Ok(count)
    }

    fn write_all_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.writable_state()?;
        let (accepted, full) = match state.faults.write_bytes_remaining {
            Some(remaining) if (bytes.len() as u64) > remaining => (to_usize(remaining), true),
            _ => (bytes.len(), false),
        };
        if let Some(remaining) = &mut state.faults.write_bytes_remaining {
            *remaining -= accepted as u64;
        }
        state.statistics.write_calls += 1;
        state.statistics.bytes_written += accepted as u64;
        let inode = state
            .inodes
            .get_mut(&self.inode)
            .expect("open handles keep their inode");
        if accepted > 0 {
            write_into(&mut inode.current, offset, &bytes[..accepted]);
            inode.pending.push(PendingChange::Write {
                offset,
                bytes: bytes[..accepted].to_vec(),
            });
        }
        if full {
            return Err(error(
                io::ErrorKind::StorageFull,
                format!("simulated disk full while writing {}", self.path.display()),
            ));
        }
        Ok(())
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let mut state = self.writable_state()?;
        let inode = state
            .inodes
            .get_mut(&self.inode)
            .expect("open handles keep their inode");
        inode.current.resize(to_usize(len), 0);
        inode.pending.push(PendingChange::SetLen(len));
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.state()?.inodes[&self.inode].current.len() as u64)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.sync(false)
    }

    fn sync_all(&mut self) -> io::Result<()> {
        self.sync(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk_with_directory() -> (SimulatedFileSystem, PathBuf) {
        let disk = SimulatedFileSystem::new();
        let directory = PathBuf::from("/data");
        disk.create_dir_all(&directory).unwrap();
        (disk, directory)
    }

    /// Creates `name` in `directory`, writes `bytes`, syncs the file and the directory.
    fn durable_file(
        disk: &SimulatedFileSystem,
        directory: &Path,
        name: &str,
        bytes: &[u8],
    ) -> PathBuf {
        let path = directory.join(name);
        let mut file = disk.create(&path).unwrap();
        file.write_all_at(0, bytes).unwrap();
        file.sync_data().unwrap();
        disk.sync_dir(directory).unwrap();
        path
    }

    #[test]
    fn synced_data_survives_and_unsynced_data_vanishes() {
        let (disk, directory) = disk_with_directory();
        let path = durable_file(&disk, &directory, "a", b"durable");
        let mut file = disk.open(&path).unwrap();
        file.write_all_at(7, b" and pending").unwrap();
        assert_eq!(disk.contents(&path).unwrap(), b"durable and pending");
        disk.crash(CrashMode::LoseUnsynced);
        assert_eq!(disk.contents(&path).unwrap(), b"durable");
    }

    #[test]
    fn directory_entries_need_a_directory_sync() {
        let (disk, directory) = disk_with_directory();
        let kept = durable_file(&disk, &directory, "kept", b"x");
        let new = directory.join("new");
        let mut file = disk.create(&new).unwrap();
        file.write_all_at(0, b"synced data, unsynced entry")
            .unwrap();
        file.sync_all().unwrap();
        let renamed = directory.join("renamed");
        disk.rename(&kept, &renamed).unwrap();
        disk.crash(CrashMode::LoseUnsynced);
        assert!(!disk.exists(&new).unwrap());
        assert!(disk.exists(&kept).unwrap());
        assert!(!disk.exists(&renamed).unwrap());

        disk.rename(&kept, &renamed).unwrap();
        disk.sync_dir(&directory).unwrap();
        disk.crash(CrashMode::LoseUnsynced);
        assert!(!disk.exists(&kept).unwrap());
        assert_eq!(disk.contents(&renamed).unwrap(), b"x");

        disk.remove(&renamed).unwrap();
        disk.crash(CrashMode::LoseUnsynced);
        assert!(
            disk.exists(&renamed).unwrap(),
            "an unsynced remove must not be durable"
        );
        disk.remove(&renamed).unwrap();
        disk.sync_dir(&directory).unwrap();
        disk.crash(CrashMode::LoseUnsynced);
        assert!(!disk.exists(&renamed).unwrap());
    }

    #[test]
    fn torn_tail_keeps_a_prefix_of_the_pending_writes() {
        let mut survivor_lengths = BTreeSet::new();
        for seed in 0..200 {
            let (disk, directory) = disk_with_directory();
            let path = durable_file(&disk, &directory, "log", b"base:");
            let mut file = disk.open(&path).unwrap();
            file.write_all_at(5, b"first,").unwrap();
            file.write_all_at(11, b"second").unwrap();
            disk.crash(CrashMode::TornTail { seed });
            let survived = disk.contents(&path).unwrap();
            assert!(
                b"base:first,second".starts_with(&survived),
                "seed {seed}: {survived:?}"
            );
            assert!(survived.len() >= 5, "seed {seed}: durable bytes lost");
            survivor_lengths.insert(survived.len());
        }
        assert!(
            survivor_lengths.len() > 8,
            "torn crashes should cut at many places: {survivor_lengths:?}"
        );
    }

    #[test]
    fn torn_tail_is_deterministic_per_seed() {
        let run = |seed| {
            let (disk, directory) = disk_with_directory();
            let path = durable_file(&disk, &directory, "log", b"");
            let mut file = disk.open(&path).unwrap();
            for index in 0..10u8 {
                file.write_all_at(u64::from(index) * 4, &[index; 4])
                    .unwrap();
            }
            disk.crash(CrashMode::TornTail { seed });
            disk.contents(&path).unwrap()
        };
        for seed in 0..20 {
            assert_eq!(run(seed), run(seed));
        }
    }

    #[test]
    fn full_disk_writes_the_part_that_fits_then_fails() {
        let (disk, directory) = disk_with_directory();
        let path = durable_file(&disk, &directory, "f", b"");
        let mut file = disk.open(&path).unwrap();
        disk.fail_writes_after(4);
        let failure = file.write_all_at(0, b"12345678").unwrap_err();
        assert_eq!(failure.kind(), io::ErrorKind::StorageFull);
        assert_eq!(disk.contents(&path).unwrap(), b"1234");
        assert_eq!(
            file.write_all_at(4, b"5").unwrap_err().kind(),
            io::ErrorKind::StorageFull
        );
        disk.clear_faults();
        file.write_all_at(4, b"5").unwrap();
    }

    #[test]
    fn failed_sync_makes_nothing_durable() {
        let (disk, directory) = disk_with_directory();
        let path = durable_file(&disk, &directory, "f", b"old");
        let mut file = disk.open(&path).unwrap();
        file.write_all_at(0, b"new").unwrap();
        disk.fail_syncs(true);
        assert!(file.sync_data().is_err());
        assert!(disk.sync_dir(&directory).is_err());
        disk.crash(CrashMode::LoseUnsynced);
        assert_eq!(disk.contents(&path).unwrap(), b"old");
    }

    #[test]
    fn operation_budget_stops_the_disk_and_handles_die_at_a_crash() {
        let (disk, directory) = disk_with_directory();
        let path = durable_file(&disk, &directory, "f", b"abc");
        let mut file = disk.open(&path).unwrap();
        disk.fail_operations_after(1);
        file.write_all_at(3, b"d").unwrap();
        assert!(file.sync_data().is_err());
        disk.crash(CrashMode::LoseUnsynced);
        disk.clear_faults();
        assert!(
            file.read_at(0, &mut [0; 3]).is_err(),
            "a handle from before the crash must be dead"
        );
        assert_eq!(disk.read(&path).unwrap(), b"abc");
    }

    #[test]
    fn flip_byte_corrupts_durable_and_current_contents() {
        let (disk, directory) = disk_with_directory();
        let path = durable_file(&disk, &directory, "f", b"abc");
        disk.flip_byte(&path, 1).unwrap();
        assert_eq!(disk.contents(&path).unwrap(), [b'a', !b'b', b'c']);
        disk.crash(CrashMode::LoseUnsynced);
        assert_eq!(disk.contents(&path).unwrap(), [b'a', !b'b', b'c']);
        assert!(disk.flip_byte(&path, 3).is_err());
    }

    #[test]
    fn create_truncates_an_existing_file_and_rename_replaces_the_target() {
        let (disk, directory) = disk_with_directory();
        let first = durable_file(&disk, &directory, "first", b"one");
        let second = durable_file(&disk, &directory, "second", b"two");
        disk.rename(&first, &second).unwrap();
        assert_eq!(disk.read(&second).unwrap(), b"one");
        assert_eq!(disk.list(&directory).unwrap(), vec![second.clone()]);
        let file = disk.create(&second).unwrap();
        assert_eq!(file.len().unwrap(), 0);
        assert!(disk.open_read(&second).unwrap().set_len(1).is_err());
    }
}

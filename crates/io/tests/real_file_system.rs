//! The real disk behind the seam: positional IO, renames, listing, and the data-directory lock.

use std::path::PathBuf;

use strata_io::{FileSystem, LockFile, RealFileSystem};

/// A fresh directory under the system temp dir, removed on drop.
struct ScratchDirectory(PathBuf);

impl ScratchDirectory {
    fn new(name: &str) -> ScratchDirectory {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path =
            std::env::temp_dir().join(format!("strata-io-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        ScratchDirectory(path)
    }
}

impl Drop for ScratchDirectory {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn positional_io_rename_and_listing() {
    let scratch = ScratchDirectory::new("basics");
    let disk = RealFileSystem::new();
    let temporary = scratch.0.join("a.tmp");
    let mut file = disk.create(&temporary).unwrap();
    file.write_all_at(0, b"hello").unwrap();
    file.write_all_at(10, b"world").unwrap();
    file.sync_data().unwrap();
    assert_eq!(file.len().unwrap(), 15);
    let mut middle = [0xAA; 5];
    file.read_exact_at(5, &mut middle).unwrap();
    assert_eq!(middle, [0; 5]);
    file.set_len(4096).unwrap();
    file.sync_all().unwrap();
    drop(file);

    let final_path = scratch.0.join("a");
    disk.rename(&temporary, &final_path).unwrap();
    disk.sync_dir(&scratch.0).unwrap();
    assert_eq!(disk.list(&scratch.0).unwrap(), vec![final_path.clone()]);
    assert_eq!(disk.file_len(&final_path).unwrap(), 4096);
    assert!(disk.exists(&final_path).unwrap());
    assert!(!disk.exists(&temporary).unwrap());
    assert_eq!(&disk.read(&final_path).unwrap()[..5], b"hello");
    assert!(disk
        .open_read(&final_path)
        .unwrap()
        .write_all_at(0, b"x")
        .is_err());
    disk.remove(&final_path).unwrap();
    assert!(disk.list(&scratch.0).unwrap().is_empty());
}

#[test]
fn lock_file_is_exclusive_and_released_on_drop() {
    let scratch = ScratchDirectory::new("lock");
    let lock = LockFile::acquire(&scratch.0).unwrap();
    assert_eq!(lock.path(), scratch.0.join("LOCK"));
    let refusal = LockFile::acquire(&scratch.0).unwrap_err();
    let message = refusal.to_string();
    assert!(
        message.contains("another process holds the data directory"),
        "{message}"
    );
    assert!(
        message.contains(&scratch.0.display().to_string()),
        "{message}"
    );
    drop(lock);
    let _again = LockFile::acquire(&scratch.0).unwrap();
}

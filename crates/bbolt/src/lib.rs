//! bbolt files, the format of etcd's snapshots (`etcdctl snapshot save`) and of its backend
//! database (`member/snap/db`): [`read`] a whole file from memory into its top-level buckets, and
//! [`write()`] buckets as a file that bbolt (and so etcd) opens. Pure: bytes in, bytes out, no IO.
//!
//! Only what etcd uses is modelled: top-level buckets holding key/value pairs. A nested bucket is
//! refused on read and cannot be written.
//!
//! Invariants (the format is described byte by byte in `docs/formats/bbolt.md`):
//! - [`read`] never panics, never loops forever and allocates at most a small multiple of its
//!   input, whatever the bytes: every page id is checked against the file length and the meta
//!   page's high-water mark before it is followed, every page is visited at most once (so a cycle
//!   or a shared page is an error, and the work is linear in the file), every element's key and
//!   value must lie inside its page, and keys must be strictly ascending in each bucket.
//! - [`read`] uses the valid meta page (magic, version 2, page size, FNV-1a 64 checksum) with the
//!   higher transaction id, as bbolt does.
//! - [`write()`] produces what [`read`] reads back equal, and what bbolt's `tx.Check` accepts: every
//!   page below the high-water mark is a meta page, the freelist page, or reachable exactly once
//!   from the root bucket; branch keys are their child's first key; both meta pages are valid.

mod error;
mod layout;
mod read;
mod write;

pub use error::{show, BoltError};
pub use layout::{FORMAT_VERSION, KEY_BYTES_MAX, MAGIC, PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, PAGE_SIZE_MIN, VALUE_BYTES_MAX};
pub use read::read;
pub use write::{write, WriteOptions};

use std::collections::BTreeMap;

/// One top-level bucket: its sequence number and its key/value pairs, keys strictly ascending.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bucket {
    /// The bucket's sequence (bbolt's `NextSequence`); etcd leaves it 0.
    pub sequence: u64,
    /// The pairs in bbolt's order: keys strictly ascending as bytes.
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A whole database: page size, the transaction id of the meta page used, and the top-level
/// buckets by name (etcd uses only top-level buckets; a nested bucket is an error on read).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Database {
    pub page_size: u32,
    pub txid: u64,
    pub buckets: BTreeMap<Vec<u8>, Bucket>,
}

/// True when `prefix` (at least the first 64 bytes of a file) starts like a bbolt file: page 0's
/// page header says meta and its meta's magic is [`MAGIC`]. Cheap sniffing for "is this an etcd
/// snapshot"; it checks no checksum, so [`read`] may still refuse the file.
pub fn looks_like_bbolt(prefix: &[u8]) -> bool {
    layout::u16_at(prefix, layout::PAGE_FLAGS_OFFSET) == Some(layout::PAGE_FLAG_META) && layout::u32_at(prefix, layout::PAGE_HEADER_BYTES) == Some(MAGIC)
}

/// Reads `bytes` and drops the result: the entry point of the fuzz target, which checks only that
/// [`read`] returns (no panic, no hang, no runaway allocation) on any input.
pub fn fuzz_read(bytes: &[u8]) {
    let _ = read(bytes);
}

/// The bytes of the SHA-256 digest `etcdctl snapshot save` appends to the database it received.
pub const ETCD_SNAPSHOT_HASH_BYTES: usize = 32;

/// Splits an etcd snapshot file into its bbolt database and the SHA-256 digest etcd appends to it,
/// by etcd's own rule (`hasChecksum`): a file whose length modulo 512 is 32 carries the digest in
/// its last 32 bytes. A file without one (a data directory's `member/snap/db`, or a database from
/// [`write()`]) comes back whole with `None`. The digest is not verified here.
pub fn split_etcd_snapshot(bytes: &[u8]) -> (&[u8], Option<&[u8]>) {
    if bytes.len() % 512 == ETCD_SNAPSHOT_HASH_BYTES {
        let (database, digest) = bytes.split_at(bytes.len() - ETCD_SNAPSHOT_HASH_BYTES);
        (database, Some(digest))
    } else {
        (bytes, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing_needs_the_meta_flag_and_the_magic() {
        let file = write(&BTreeMap::new(), &WriteOptions::default()).expect("write an empty database");
        assert!(looks_like_bbolt(&file[..64]));
        assert!(!looks_like_bbolt(&file[..19]), "too short to hold the magic");
        let mut wrong_flags = file[..64].to_vec();
        wrong_flags[layout::PAGE_FLAGS_OFFSET] = 0x02;
        assert!(!looks_like_bbolt(&wrong_flags));
        let mut wrong_magic = file[..64].to_vec();
        wrong_magic[layout::PAGE_HEADER_BYTES] ^= 1;
        assert!(!looks_like_bbolt(&wrong_magic));
        assert!(!looks_like_bbolt(b""));
    }

    #[test]
    fn the_etcd_digest_is_split_off_only_when_etcd_would() {
        let database = vec![0u8; 8192];
        let mut snapshot = database.clone();
        snapshot.extend_from_slice(&[7u8; 32]);
        assert_eq!(split_etcd_snapshot(&snapshot), (&database[..], Some(&[7u8; 32][..])));
        assert_eq!(split_etcd_snapshot(&database), (&database[..], None));
        assert_eq!(split_etcd_snapshot(&[1u8; 31]), (&[1u8; 31][..], None));
        assert_eq!(split_etcd_snapshot(&[1u8; 32]), (&[][..], Some(&[1u8; 32][..])));
    }

    #[test]
    fn fuzz_read_returns_on_garbage() {
        fuzz_read(b"");
        fuzz_read(&[0xFF; 5000]);
    }
}

#![allow(dead_code)]

//! The bodies of the fuzz targets, shared by `cargo fuzz` (`fuzz_targets/*.rs`) and by the replay
//! of the committed corpus in the normal test suite (`crates/cli/tests/fuzz_corpus.rs`), so both
//! run exactly the same code. Each decodes untrusted bytes the way Strata does at start-up or
//! import; the only acceptable outcomes are `Ok` or an error, never a panic, a hang or an
//! allocation out of proportion to the input.

use std::path::Path;
use std::sync::Arc;

use strata_io::{FileSystem, SimulatedFileSystem};

/// A manifest file (`<data-dir>/STRATA`).
pub fn manifest(data: &[u8]) {
    let _ = strata_node::Manifest::decode_file(Path::new("fuzz/STRATA"), data);
}

/// A segment file, as a sealed and as the last segment, with every valid record decoded as a log
/// entry and its changes.
pub fn segment(data: &[u8]) {
    use prost::Message;
    let path = Path::new("fuzz/00000000000000000001.seg");
    for last in [false, true] {
        let _ = strata_segment_log::verify_segment(path, data, last, &mut |_, payload| {
            let entry = strata_node::LogEntry::decode(payload).map_err(|error| error.to_string())?;
            entry.changes().map(|_| ())
        });
    }
}

/// A snapshot file (full or incremental): the reader's checks, then every record.
pub fn snapshot(data: &[u8]) {
    let file_system: Arc<dyn FileSystem> = Arc::new(SimulatedFileSystem::new());
    let directory = Path::new("/fuzz");
    let path = directory.join("00000000000000000005.snap");
    if file_system.create_dir_all(directory).is_err() {
        return;
    }
    let Ok(mut file) = file_system.create(&path) else { return };
    if file.write_all_at(0, data).is_err() {
        return;
    }
    drop(file);
    let _ = strata_snapshot::verify(file_system.as_ref(), &path, &mut |_, _| {});
}

/// A bbolt file (an etcd snapshot or an etcd data directory's `member/snap/db`), page by page.
pub fn bbolt(data: &[u8]) {
    strata_bbolt::fuzz_read(data);
}

/// etcd's bucket layout as an import reads it. A bbolt file's checksums stop most random bytes
/// before the layout is looked at, so this target builds a valid bbolt file from the input and
/// imports that: the input is a sequence of entries `[bucket u8][key length u8][key][value length
/// u16 LE][value]`, the bucket byte choosing one of etcd's bucket names (or, above them, a name of
/// its own). [`layout_input`] turns a database into such an input (the seeds are made from real
/// etcd files with it).
pub fn etcd_layout(data: &[u8]) {
    let Some(database) = layout_database(data) else { return };
    let Ok(bytes) = strata_bbolt::write(&database.buckets, &strata_bbolt::WriteOptions::default()) else { return };
    strata_etcd_api::fuzz_import(&bytes);
}

/// etcd's bucket names, in the order the layout input's bucket byte picks them.
const ETCD_BUCKETS: [&[u8]; 10] =
    [b"key", b"meta", b"lease", b"auth", b"authUsers", b"authRoles", b"members", b"members_removed", b"cluster", b"alarm"];

fn layout_database(mut data: &[u8]) -> Option<strata_bbolt::Database> {
    use std::collections::BTreeMap;
    let mut buckets: BTreeMap<Vec<u8>, BTreeMap<Vec<u8>, Vec<u8>>> = BTreeMap::new();
    while data.len() >= 4 {
        let selector = data[0];
        let key_length = usize::from(data[1]);
        let key = data.get(2..2 + key_length)?;
        let rest = &data[2 + key_length..];
        let value_length = usize::from(u16::from_le_bytes([*rest.first()?, *rest.get(1)?]));
        let value = rest.get(2..2 + value_length)?;
        data = &rest[2 + value_length..];
        let name = match ETCD_BUCKETS.get(usize::from(selector)) {
            Some(name) => name.to_vec(),
            None => vec![b'x', selector],
        };
        let bucket = buckets.entry(name).or_default();
        if !key.is_empty() {
            bucket.insert(key.to_vec(), value.to_vec());
        }
    }
    let buckets = buckets
        .into_iter()
        .map(|(name, entries)| (name, strata_bbolt::Bucket { sequence: 0, entries: entries.into_iter().collect() }))
        .collect();
    Some(strata_bbolt::Database { page_size: strata_bbolt::PAGE_SIZE_DEFAULT, txid: 2, buckets })
}

/// The layout input of a database's buckets (etcd's names only), for seeding [`etcd_layout`].
pub fn layout_input(database: &strata_bbolt::Database) -> Vec<u8> {
    let mut input = Vec::new();
    for (name, bucket) in &database.buckets {
        let Some(selector) = ETCD_BUCKETS.iter().position(|known| *known == name.as_slice()) else { continue };
        for (key, value) in &bucket.entries {
            if key.len() > usize::from(u8::MAX) || value.len() > usize::from(u16::MAX) {
                continue;
            }
            input.push(selector as u8);
            input.push(key.len() as u8);
            input.extend_from_slice(key);
            input.extend_from_slice(&(value.len() as u16).to_le_bytes());
            input.extend_from_slice(value);
        }
    }
    input
}

/// One file of an etcd data directory's WAL (`member/wal/*.wal`), as `strata migrate from-etcd`
/// reads it to find changes the database misses.
pub fn etcd_wal(data: &[u8]) {
    strata_etcd_api::etcd_db::wal::fuzz_wal(data);
}

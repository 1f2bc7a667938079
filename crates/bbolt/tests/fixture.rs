//! The committed real etcd 3.4.23 snapshot (`tests/fixtures/`, made by `regenerate_fixture` in
//! `tests/etcd.rs`; see the README there) reads back as the history that made it, without etcd:
//! inline buckets, a branch page, overflow pages, no synced freelist, unreachable free pages, the
//! SHA-256 digest after the database. And it survives a write → read round trip.

mod support;

use strata_bbolt::{looks_like_bbolt, read, split_etcd_snapshot, write, Bucket, Database, WriteOptions};
use support::{decode_key_value, main_revision, revision_key};

const FIXTURE: &[u8] = include_bytes!("fixtures/etcd-3.4.23-snapshot.db");

fn fixture() -> Database {
    let (database, digest) = split_etcd_snapshot(FIXTURE);
    assert!(digest.is_some());
    read(database).unwrap_or_else(|error| panic!("the fixture does not read: {error}"))
}

fn bucket<'a>(database: &'a Database, name: &str) -> &'a Bucket {
    database.buckets.get(name.as_bytes()).unwrap_or_else(|| panic!("no bucket {name:?}"))
}

fn value<'a>(bucket: &'a Bucket, key: &str) -> &'a [u8] {
    &bucket.entries.iter().find(|(found, _)| found == key.as_bytes()).unwrap_or_else(|| panic!("no key {key:?}")).1
}

#[test]
fn the_fixture_holds_etcds_buckets() {
    assert!(looks_like_bbolt(&FIXTURE[..64]));
    let database = fixture();
    assert_eq!((database.page_size, database.txid), (4096, 2));
    let names: Vec<&[u8]> = database.buckets.keys().map(Vec::as_slice).collect();
    let expected: &[&[u8]] = &[b"alarm", b"auth", b"authRoles", b"authUsers", b"cluster", b"key", b"lease", b"members", b"members_removed", b"meta"];
    assert_eq!(names, expected);
    assert_eq!(read(FIXTURE).as_ref(), Ok(&database), "the digest lies after the high-water mark");

    assert!(bucket(&database, "alarm").entries.is_empty());
    assert!(bucket(&database, "members_removed").entries.is_empty());
    assert_eq!(value(bucket(&database, "auth"), "authRevision"), 3u64.to_be_bytes());
    assert_eq!(value(bucket(&database, "cluster"), "clusterVersion"), b"3.4.0");
    assert_eq!(value(bucket(&database, "authRoles"), "reader"), b"\n\x06reader");
    assert!(value(bucket(&database, "authUsers"), "alice").starts_with(b"\n\x05alice\x12<$2a$10$"));
    assert_eq!(bucket(&database, "members").entries.len(), 1);
    assert_eq!(bucket(&database, "lease").entries.len(), 1);
    assert!(database.buckets.values().all(|bucket| bucket.sequence == 0));

    let meta = bucket(&database, "meta");
    assert_eq!(value(meta, "consistent_index"), 33u64.to_be_bytes());
    assert_eq!(value(meta, "scheduledCompactRev"), revision_key(3, 0));
    assert_eq!(value(meta, "finishedCompactRev"), revision_key(3, 0));
}

#[test]
fn the_fixture_key_bucket_is_the_history_after_compaction_at_3() {
    let database = fixture();
    let keys = &bucket(&database, "key").entries;
    // Revision 2 (foo=bar) was compacted away; 3..=27 remain, 5 is hello's tombstone.
    let revisions: Vec<i64> = keys.iter().map(|(key, _)| main_revision(key)).collect();
    assert_eq!(revisions, (3..=27).collect::<Vec<_>>());
    let decoded: Vec<(Vec<u8>, Vec<u8>)> = keys.iter().map(|(_, value)| decode_key_value(value)).collect();
    assert_eq!(decoded[0], (b"foo".to_vec(), b"baz".to_vec()));
    assert_eq!(decoded[1], (b"hello".to_vec(), b"world".to_vec()));
    assert_eq!((keys[2].0.len(), keys[2].0[17], decoded[2].0.as_slice()), (18, b't', &b"hello"[..]));
    assert_eq!(decoded[3], (b"leased".to_vec(), b"1".to_vec()));
    for index in 0..20 {
        assert_eq!(decoded[4 + index], (format!("k{index:02}").into_bytes(), "v".repeat(index * 60).into_bytes()));
    }
    assert_eq!(decoded[24], (b"big".to_vec(), vec![b'b'; 6000]), "the value on overflow pages");
}

#[test]
fn the_fixture_round_trips_through_write() {
    let database = fixture();
    for page_size in [1024, 4096, 65536] {
        let bytes = write(&database.buckets, &WriteOptions { page_size, txid: database.txid }).expect("write");
        assert_eq!(read(&bytes).expect("read").buckets, database.buckets, "page size {page_size}");
    }
}

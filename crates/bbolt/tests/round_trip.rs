//! `write` → `read` gives back exactly what was written: empty and many buckets, 50,000 keys (so
//! branch pages, and a branch level above branch pages, appear), values larger than a page (so
//! overflow pages appear), every supported kind of page size, from a seeded generator. Each case
//! names its seed.

mod support;

use std::collections::BTreeMap;

use strata_bbolt::{read, write, Bucket, Database, WriteOptions, PAGE_SIZE_MAX, PAGE_SIZE_MIN};
use support::{random_database, random_entries, Rng};

/// Writes, checks the file's shape, reads back, and checks equality; returns the file.
fn round_trip(buckets: &BTreeMap<Vec<u8>, Bucket>, options: WriteOptions) -> Vec<u8> {
    let bytes = write(buckets, &options).unwrap_or_else(|error| panic!("write: {error}"));
    assert_eq!(bytes.len() % options.page_size as usize, 0, "the file is whole pages");
    let database = read(&bytes).unwrap_or_else(|error| panic!("read back: {error}"));
    assert_eq!(database, Database { page_size: options.page_size, txid: options.txid, buckets: buckets.clone() });
    assert_eq!(write(&database.buckets, &options).as_ref(), Ok(&bytes), "writing is deterministic");
    bytes
}

/// Page `id`'s flags and overflow count.
fn page_header(bytes: &[u8], page_size: u32, id: u64) -> (u16, u32) {
    let at = (id * u64::from(page_size)) as usize;
    (u16::from_le_bytes([bytes[at + 8], bytes[at + 9]]), u32::from_le_bytes(bytes[at + 12..at + 16].try_into().expect("4 bytes")))
}

/// The root page of bucket `name` as the leaf of the root bucket holds it (a root bucket of one leaf).
fn bucket_root(bytes: &[u8], page_size: u32, name: &[u8]) -> u64 {
    let meta_root = u64::from_le_bytes(bytes[32..40].try_into().expect("8 bytes"));
    let page = &bytes[(meta_root * u64::from(page_size)) as usize..];
    let count = u16::from_le_bytes([page[10], page[11]]) as usize;
    for index in 0..count {
        let element = 16 + index * 16;
        let field = |offset: usize| u32::from_le_bytes(page[element + offset..element + offset + 4].try_into().expect("4 bytes")) as usize;
        let key = &page[element + field(4)..element + field(4) + field(8)];
        if key == name {
            let value = element + field(4) + field(8);
            return u64::from_le_bytes(page[value..value + 8].try_into().expect("8 bytes"));
        }
    }
    panic!("no bucket {name:?}");
}

#[test]
fn nothing_and_empty_buckets_round_trip() {
    round_trip(&BTreeMap::new(), WriteOptions::default());
    let empty: BTreeMap<Vec<u8>, Bucket> = (0..20u8).map(|index| (vec![b'b', index], Bucket { sequence: u64::from(index), entries: Vec::new() })).collect();
    round_trip(&empty, WriteOptions::default());
    round_trip(&empty, WriteOptions { page_size: PAGE_SIZE_MIN, txid: 1 });
}

#[test]
fn many_buckets_give_the_root_bucket_branch_pages() {
    let mut rng = Rng::new(0xB0B);
    // 500 buckets of up to 30 bytes of name: more than one 1 KiB leaf of the root bucket.
    let buckets = random_database(&mut rng, 500, 3);
    let options = WriteOptions { page_size: 1024, txid: 99 };
    let bytes = round_trip(&buckets, options);
    let meta_root = u64::from_le_bytes(bytes[32..40].try_into().expect("8 bytes"));
    assert_eq!(page_header(&bytes, 1024, meta_root).0, 0x01, "the root bucket's root is a branch page");
}

#[test]
fn fifty_thousand_keys_give_branch_pages_above_branch_pages() {
    let mut rng = Rng::new(50_000);
    let entries = random_entries(&mut rng, 50_000, 24, 40);
    let buckets: BTreeMap<Vec<u8>, Bucket> = [(b"key".to_vec(), Bucket { sequence: 7, entries })].into_iter().collect();
    let bytes = round_trip(&buckets, WriteOptions::default());
    let root = bucket_root(&bytes, 4096, b"key");
    let (flags, _) = page_header(&bytes, 4096, root);
    assert_eq!(flags, 0x01, "the bucket's root is a branch page");
    // Its first child is a branch page too: three levels.
    let first_child = u64::from_le_bytes(bytes[(root * 4096) as usize + 24..(root * 4096) as usize + 32].try_into().expect("8 bytes"));
    assert_eq!(page_header(&bytes, 4096, first_child).0, 0x01, "two levels of branch pages");
}

#[test]
fn values_larger_than_a_page_use_overflow_pages() {
    let mut rng = Rng::new(0x0F);
    for page_size in [1024u32, 4096] {
        let mut entries = random_entries(&mut rng, 40, 16, 100);
        // Every fifth value is 1 to 6 pages long.
        for (index, entry) in entries.iter_mut().enumerate().filter(|(index, _)| index % 5 == 0) {
            entry.1 = rng.bytes(page_size as usize * (1 + index % 6) + index);
        }
        let buckets: BTreeMap<Vec<u8>, Bucket> = [(b"big".to_vec(), Bucket { sequence: 0, entries })].into_iter().collect();
        let bytes = round_trip(&buckets, WriteOptions { page_size, txid: 5 });
        let overflowed = (3..(bytes.len() / page_size as usize) as u64).filter(|&id| page_header(&bytes, page_size, id).1 > 0).count();
        assert!(overflowed >= 8, "page size {page_size}: {overflowed} pages with overflow");
    }
    // A key of bbolt's maximum length next to a 1 MiB value.
    let buckets: BTreeMap<Vec<u8>, Bucket> =
        [(b"edge".to_vec(), Bucket { sequence: 0, entries: vec![(vec![b'k'; strata_bbolt::KEY_BYTES_MAX], vec![1; 1 << 20])] })].into_iter().collect();
    round_trip(&buckets, WriteOptions::default());
}

#[test]
fn random_databases_round_trip_at_every_page_size() {
    for seed in 0..40u64 {
        let mut rng = Rng::new(seed);
        let bucket_count = 1 + rng.below(12) as usize;
        let buckets = random_database(&mut rng, bucket_count, 400);
        let mut page_size = PAGE_SIZE_MIN << rng.below(5);
        if seed == 0 {
            page_size = PAGE_SIZE_MAX;
        }
        let txid = 1 + rng.below(1 << 40);
        let bytes = write(&buckets, &WriteOptions { page_size, txid }).unwrap_or_else(|error| panic!("seed {seed}: {error}"));
        let database = read(&bytes).unwrap_or_else(|error| panic!("seed {seed}: {error}"));
        assert_eq!(database, Database { page_size, txid, buckets }, "seed {seed}");
    }
}

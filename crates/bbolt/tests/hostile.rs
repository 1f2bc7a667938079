//! Hostile input: `read` returns (`Ok` or `Err`, never a panic or a hang) on truncations at every
//! page boundary and thousands of seeded random damages of valid files: ours (branch and overflow
//! pages) and the real etcd fixture (inline buckets, no freelist). Half of the damaged files get
//! their meta checksums repaired, so the damage reaches the meta's fields and the trees behind
//! them instead of stopping at the checksum.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use strata_bbolt::{read, split_etcd_snapshot, write, Bucket, WriteOptions};
use support::{random_entries, Rng};

const FIXTURE: &[u8] = include_bytes!("fixtures/etcd-3.4.23-snapshot.db");

/// A written file with several buckets, a two-level tree, overflow pages and an empty bucket.
fn our_file(page_size: u32) -> Vec<u8> {
    let mut rng = Rng::new(0xDAD);
    let mut buckets = BTreeMap::new();
    buckets.insert(b"key".to_vec(), Bucket { sequence: 0, entries: random_entries(&mut rng, 400, 17, 60) });
    let mut big = random_entries(&mut rng, 6, 8, 10);
    big[2].1 = rng.bytes(3 * page_size as usize);
    buckets.insert(b"big".to_vec(), Bucket { sequence: 3, entries: big });
    buckets.insert(b"empty".to_vec(), Bucket::default());
    write(&buckets, &WriteOptions { page_size, txid: 8 }).expect("write")
}

fn files() -> Vec<(&'static str, Vec<u8>)> {
    vec![("ours 1 KiB", our_file(1024)), ("ours 4 KiB", our_file(4096)), ("etcd fixture", split_etcd_snapshot(FIXTURE).0.to_vec())]
}

/// Repairs the checksums of whatever looks like the two meta pages (page size from each meta), so
/// damage to meta fields is judged by the reader's other checks.
fn repair_meta_checksums(bytes: &mut [u8]) {
    for page in 0..2usize {
        let page_size = if page == 0 { 0 } else { u32::from_le_bytes(bytes[24..28].try_into().expect("4 bytes")) as usize };
        let meta = 16 + page * page_size;
        if meta + 64 > bytes.len() {
            continue;
        }
        let checksum = fnv1a_64(&bytes[meta..meta + 56]);
        bytes[meta + 56..meta + 64].copy_from_slice(&checksum.to_le_bytes());
    }
}

fn fnv1a_64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xCBF2_9CE4_8422_2325u64, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01B3))
}

#[test]
fn truncations_at_every_page_boundary_are_refused() {
    for (name, bytes) in files() {
        assert!(read(&bytes).is_ok(), "{name} reads whole");
        for page_size in [512usize, 1024, 4096] {
            for end in (0..bytes.len()).step_by(page_size) {
                for cut in [end, end + 1, end + 17].into_iter().filter(|&cut| cut < bytes.len()) {
                    let error = read(&bytes[..cut]).err();
                    assert!(error.is_some(), "{name}: the first {cut} bytes were accepted");
                }
            }
        }
    }
}

#[test]
fn random_damage_never_panics() {
    let started = Instant::now();
    let (mut accepted, mut refused) = (0u32, 0u32);
    for (name, original) in files() {
        for case in 0..1500u64 {
            let seed = case ^ (original.len() as u64) << 20;
            let mut rng = Rng::new(seed);
            let mut bytes = original.clone();
            match rng.below(4) {
                // Flip a few random bits anywhere.
                0 => {
                    for _ in 0..1 + rng.below(8) {
                        let at = rng.below(bytes.len() as u64) as usize;
                        bytes[at] ^= 1 << rng.below(8);
                    }
                }
                // Overwrite a page header or an element's field with an extreme or small value.
                1 | 2 => {
                    let page_size = if name == "ours 1 KiB" { 1024 } else { 4096 };
                    let pages = bytes.len() / page_size;
                    let page = rng.below(pages as u64) as usize;
                    let field = 4 * rng.below(16) as usize;
                    let at = page * page_size + field;
                    let extremes = [0u32, 1, 2, 3, 0xFFFF, 0xFFFF_FFFF, 0x8000_0000, page as u32, rng.next_u64() as u32];
                    let value = extremes[rng.below(extremes.len() as u64) as usize];
                    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
                }
                // Random bytes over a random range.
                _ => {
                    let at = rng.below(bytes.len() as u64) as usize;
                    let length = (1 + rng.below(64) as usize).min(bytes.len() - at);
                    let noise = rng.bytes(length);
                    bytes[at..at + length].copy_from_slice(&noise);
                }
            }
            if rng.below(2) == 0 {
                repair_meta_checksums(&mut bytes);
            }
            match read(&bytes) {
                Ok(_) => accepted += 1,
                Err(error) => {
                    assert!(error.offset <= bytes.len() as u64, "{name} seed {seed}: offset {} past the file", error.offset);
                    assert!(!error.reason.is_empty());
                    refused += 1;
                }
            }
        }
    }
    eprintln!("random damage: {accepted} read (damage in values or unused bytes), {refused} refused, in {:?}", started.elapsed());
    assert!(refused > 1000, "most damage is detected: {refused} refused, {accepted} accepted");
    assert!(started.elapsed() < Duration::from_secs(120), "reading damaged files stays fast");
}

#[test]
fn garbage_of_any_length_is_refused() {
    let mut rng = Rng::new(0x6A7B);
    for case in 0..500 {
        let length = rng.below(20_000) as usize;
        let mut bytes = rng.bytes(length);
        // Half of them start like a bbolt file.
        if case % 2 == 0 && length >= 24 {
            bytes[8..10].copy_from_slice(&0x04u16.to_le_bytes());
            bytes[16..20].copy_from_slice(&strata_bbolt::MAGIC.to_le_bytes());
            bytes[20..24].copy_from_slice(&2u32.to_le_bytes());
            repair_meta_checksums(&mut bytes);
        }
        let _ = read(&bytes);
    }
    assert!(read(&[]).is_err());
    assert!(read(&[0; 100_000]).is_err());
}

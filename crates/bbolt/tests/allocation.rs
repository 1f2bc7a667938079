//! `read` allocates at most a small multiple of its input, whatever the bytes: measured with a
//! counting global allocator on valid files (the worst case is many tiny keys, each copied into
//! its own `Vec`) and on damaged ones.
//!
//! The allocator needs `unsafe` (the `GlobalAlloc` trait is unsafe to implement); it only
//! forwards to the system allocator and counts, per thread, so the test harness's other threads
//! do not disturb the measure.

#![allow(unsafe_code)]

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;

use strata_bbolt::{read, write, Bucket, WriteOptions};
use support::Rng;

struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call forwards to `System` with the caller's arguments unchanged; the counting
// touches only const-initialized thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        unsafe { System.dealloc(pointer, layout) }
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(pointer, layout, new_size) }
    }
}

fn count(change: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get().saturating_add_signed(change);
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The most bytes live at once during `read(bytes)`, beyond what was live before.
fn peak_bytes_of_read(bytes: &[u8]) -> usize {
    let before = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(before));
    let result = read(bytes);
    let peak = PEAK.with(Cell::get) - before;
    drop(result);
    peak
}

/// Keys of one byte and empty values: 17 bytes of file per entry, the most entries per byte.
fn tiny_entries_file() -> Vec<u8> {
    let mut buckets = BTreeMap::new();
    for bucket in 0..200u8 {
        let entries = (0..=255u8).map(|key| (vec![key], Vec::new())).collect();
        buckets.insert(vec![b'b', bucket], Bucket { sequence: 0, entries });
    }
    write(&buckets, &WriteOptions::default()).expect("write")
}

#[test]
fn reading_allocates_a_small_multiple_of_the_input() {
    let tiny = tiny_entries_file();
    let peak = peak_bytes_of_read(&tiny);
    // Each entry costs two Vec headers (48 bytes) and a 1-byte key allocation for 17 file bytes.
    assert!(peak <= 8 * tiny.len(), "{peak} bytes allocated to read {} bytes", tiny.len());
    eprintln!("tiny entries: {peak} bytes allocated for {} bytes of file", tiny.len());

    let mut rng = Rng::new(0xA110C);
    for case in 0..100 {
        let mut bytes = tiny.clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(bytes.len() as u64) as usize;
            bytes[at] = rng.next_u64() as u8;
        }
        let peak = peak_bytes_of_read(&bytes);
        assert!(peak <= 8 * bytes.len() + 4096, "case {case}: {peak} bytes allocated to read {} bytes", bytes.len());
    }
    let empty_huge_claims = vec![0xFFu8; 1 << 16];
    assert!(peak_bytes_of_read(&empty_huge_claims) <= 4096);
}

//! The space the key space would take in etcd's backend file: the `db_size` and `db_size_in_use`
//! that etcd reports, and that its `--quota-backend-bytes` limits. Pure arithmetic, no IO.
//!
//! etcd keeps every version of every key in a bbolt file: one leaf-page entry per version, keyed
//! by revision and so always appended at the end of the tree. Its size grows page by page as
//! versions are written; compaction frees pages (the size *in use* shrinks) but the file keeps its
//! size until a defragment rewrites it. Strata stores versions elsewhere, so it accounts for them
//! as bbolt would:
//!
//! - A version's *footprint* is its entry (`VERSION_OVERHEAD_BYTES` + key + value; a tombstone has
//!   no value) rounded to its share of a leaf page: entries are packed whole into pages of
//!   `PAGE_FILL_BYTES` payload, so a page holds `PAGE_FILL_BYTES / entry` of them (an entry larger
//!   than that takes whole pages of its own).
//! - In use: etcd's empty database (`EMPTY_IN_USE_BYTES`), plus the leaf pages of all footprints,
//!   plus `TREE_OVERHEAD_PAGES` (a branch page and a freelist page) once there is more than one.
//! - Size: the highest in-use value since the last defragment, plus the one free page an empty etcd
//!   already has (`FREE_PAGE_SLACK_BYTES`). A defragment lowers it to in use + that page.
//!
//! The constants were calibrated against etcd 3.4 with `--quota-backend-bytes=53248` and
//! `--backend-batch-limit=1` (a commit per write, so its size is current at every quota check):
//! puts of 10, 100, 500, 1000, 2000, 4000 and 8000-byte values raise NOSPACE after 301, 124, 28,
//! 11, 6, 4 and 2 puts on etcd, and after 301, 106, 26, 11, 6, 5 and 2 with this accounting.
//!
//! Invariants: in use never exceeds size; both are at least an empty etcd's (16 KiB, 20 KiB);
//! removing what was added restores the footprint total exactly.

/// bbolt's page size, as etcd uses it on Linux.
pub const PAGE_BYTES: u64 = 4096;
/// The payload a leaf page takes before bbolt starts the next one (calibrated, see above).
pub const PAGE_FILL_BYTES: u64 = 3008;
/// Per-version bytes beside key and value: the leaf element, the revision key, the encoding of
/// the revisions, version and lease.
pub const VERSION_OVERHEAD_BYTES: u64 = 32;
/// An empty etcd's bytes in use: two meta pages, the freelist and the root of the buckets.
pub const EMPTY_IN_USE_BYTES: u64 = 4 * PAGE_BYTES;
/// The free page an empty etcd's file already has beyond what is in use.
pub const FREE_PAGE_SLACK_BYTES: u64 = PAGE_BYTES;
/// Pages beyond the leaves once the key space spans more than one: a branch page, a freelist page.
pub const TREE_OVERHEAD_PAGES: u64 = 2;

/// The footprint of one stored version with a key and value of these lengths, in bytes of leaf
/// page payload (see the module documentation).
pub fn version_footprint_bytes(key_bytes: usize, value_bytes: usize) -> u64 {
    let entry_bytes = VERSION_OVERHEAD_BYTES + key_bytes as u64 + value_bytes as u64;
    if entry_bytes > PAGE_FILL_BYTES {
        return entry_bytes.div_ceil(PAGE_BYTES) * PAGE_FILL_BYTES;
    }
    PAGE_FILL_BYTES.div_ceil(PAGE_FILL_BYTES / entry_bytes)
}

/// The sizes etcd reports in Maintenance.Status, and checks its quota against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpaceUsage {
    /// etcd's `db_size`: the file, free pages included.
    pub size_bytes: u64,
    /// etcd's `db_size_in_use`: the pages that hold data.
    pub in_use_bytes: u64,
}

/// The running account of the stored versions' footprints and the size's high-water mark.
#[derive(Clone, Copy, Debug, Default)]
pub struct Space {
    footprint_bytes: u64,
    high_water_in_use_bytes: u64,
}

impl Space {
    /// A version of this footprint is now stored.
    pub fn add(&mut self, footprint_bytes: u64) {
        self.footprint_bytes += footprint_bytes;
        self.high_water_in_use_bytes = self.high_water_in_use_bytes.max(self.in_use_bytes());
    }

    /// A version of this footprint is no longer stored (compacted away or rolled back).
    pub fn remove(&mut self, footprint_bytes: u64) {
        self.footprint_bytes = self.footprint_bytes.saturating_sub(footprint_bytes);
    }

    /// etcd's defragment: the file shrinks to what is in use.
    pub fn defragment(&mut self) {
        self.high_water_in_use_bytes = self.in_use_bytes();
    }

    pub fn usage(&self) -> SpaceUsage {
        let in_use_bytes = self.in_use_bytes();
        SpaceUsage { size_bytes: self.high_water_in_use_bytes.max(in_use_bytes) + FREE_PAGE_SLACK_BYTES, in_use_bytes }
    }

    fn in_use_bytes(&self) -> u64 {
        let leaf_pages = self.footprint_bytes.div_ceil(PAGE_FILL_BYTES);
        let tree_pages = if leaf_pages > 1 { TREE_OVERHEAD_PAGES } else { 0 };
        EMPTY_IN_USE_BYTES + (leaf_pages + tree_pages) * PAGE_BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// etcd 3.4's quota check: a put is refused once `size + 256 + key + value >= quota`.
    fn puts_until_refused(quota_bytes: u64, key_bytes: usize, value_bytes: usize) -> usize {
        let mut space = Space::default();
        let mut puts = 0;
        let cost_bytes = 256 + key_bytes as u64 + value_bytes as u64;
        while space.usage().size_bytes + cost_bytes < quota_bytes {
            space.add(version_footprint_bytes(key_bytes, value_bytes));
            puts += 1;
        }
        puts
    }

    #[test]
    fn an_empty_key_space_is_as_large_as_an_empty_etcd() {
        assert_eq!(Space::default().usage(), SpaceUsage { size_bytes: 20480, in_use_bytes: 16384 });
    }

    #[test]
    fn a_small_quota_fills_after_as_many_puts_as_etcds() {
        // (value bytes, puts etcd 3.4 accepted with --quota-backend-bytes=53248, 8-byte keys)
        for (value_bytes, etcd_puts) in [(10, 301), (100, 124), (500, 28), (1000, 11), (2000, 6), (4000, 4), (8000, 2)] {
            let puts = puts_until_refused(53248, 8, value_bytes);
            let tolerance = (etcd_puts / 6).max(1);
            assert!(puts.abs_diff(etcd_puts) <= tolerance, "{value_bytes}-byte values: {puts} puts, etcd {etcd_puts}");
        }
    }

    #[test]
    fn compaction_frees_in_use_and_only_defragment_shrinks_the_size() {
        let mut space = Space::default();
        let footprint = version_footprint_bytes(8, 1000);
        for _ in 0..20 {
            space.add(footprint);
        }
        let full = space.usage();
        assert!(full.in_use_bytes > EMPTY_IN_USE_BYTES && full.size_bytes > full.in_use_bytes);
        for _ in 0..15 {
            space.remove(footprint);
        }
        let compacted = space.usage();
        assert!(compacted.in_use_bytes < full.in_use_bytes);
        assert_eq!(compacted.size_bytes, full.size_bytes);
        // Writes reuse the freed pages before the file grows again.
        space.add(footprint);
        assert_eq!(space.usage().size_bytes, full.size_bytes);
        space.defragment();
        let defragmented = space.usage();
        assert_eq!(defragmented.size_bytes, defragmented.in_use_bytes + FREE_PAGE_SLACK_BYTES);
        assert!(defragmented.size_bytes < full.size_bytes);
    }

    #[test]
    fn large_values_take_whole_pages() {
        assert_eq!(version_footprint_bytes(8, 8000), 2 * PAGE_FILL_BYTES);
        assert_eq!(version_footprint_bytes(8, 1000), PAGE_FILL_BYTES / 2);
        assert!(version_footprint_bytes(8, 10) >= 50);
    }
}

//! bbolt's on-disk layout as constants, the meta page both ways, and bounds-checked little-endian
//! field access. Every offset here is bbolt's (go.etcd.io/bbolt `page.go`, `meta.go`), for the
//! 64-bit layout every bbolt build uses; `docs/formats/bbolt.md` draws them.
//!
//! Invariant: the `*_at` readers never index out of bounds; they return `None` past the end.

/// bbolt's magic number (meta pages).
pub const MAGIC: u32 = 0xED0C_DAED;
/// The data file version bbolt writes and reads (meta `version`).
pub const FORMAT_VERSION: u32 = 2;
/// The page size [`crate::WriteOptions::default`] uses: the OS page size of the machines etcd runs on.
pub const PAGE_SIZE_DEFAULT: u32 = 4096;
/// The smallest page size read or written; bbolt looks for the second meta page from here.
pub const PAGE_SIZE_MIN: u32 = 1024;
/// The largest page size read or written (bbolt looks for the second meta page up to 16 MiB).
pub const PAGE_SIZE_MAX: u32 = 16 << 20;
/// bbolt's `MaxKeySize`: the longest key (and bucket name) bbolt stores.
pub const KEY_BYTES_MAX: usize = 32_768;
/// bbolt's `MaxValueSize`: the longest value bbolt stores.
pub const VALUE_BYTES_MAX: usize = (1 << 31) - 2;

/// Page header: id u64, flags u16, count u16, overflow u32.
pub(crate) const PAGE_HEADER_BYTES: usize = 16;
pub(crate) const PAGE_ID_OFFSET: usize = 0;
pub(crate) const PAGE_FLAGS_OFFSET: usize = 8;
pub(crate) const PAGE_COUNT_OFFSET: usize = 10;
pub(crate) const PAGE_OVERFLOW_OFFSET: usize = 12;

pub(crate) const PAGE_FLAG_BRANCH: u16 = 0x01;
pub(crate) const PAGE_FLAG_LEAF: u16 = 0x02;
pub(crate) const PAGE_FLAG_META: u16 = 0x04;
pub(crate) const PAGE_FLAG_FREELIST: u16 = 0x10;

/// Branch element: pos u32 (from the element's first byte to its key), ksize u32, pgid u64.
pub(crate) const BRANCH_ELEMENT_BYTES: usize = 16;
/// Leaf element: flags u32, pos u32 (from the element's first byte to its key), ksize u32, vsize u32.
pub(crate) const LEAF_ELEMENT_BYTES: usize = 16;
/// A leaf element's flag for "the value is a bucket".
pub(crate) const LEAF_FLAG_BUCKET: u32 = 0x01;
/// A bucket value's header: root pgid u64 (0: an inline page follows), sequence u64.
pub(crate) const BUCKET_HEADER_BYTES: usize = 16;

/// The freelist page count that means "the real count is the first u64".
pub(crate) const FREELIST_COUNT_OVERFLOW: u16 = 0xFFFF;
/// meta.freelist when no freelist was synced (bbolt's `NoFreelistSync`, etcd's default).
pub(crate) const FREELIST_NONE: u64 = u64::MAX;
/// The most elements one page holds: bbolt refuses to write a node of 0xFFFF inodes.
pub(crate) const PAGE_ELEMENTS_MAX: usize = 0xFFFF - 1;

/// The meta after its page header: magic, version, page size, flags (4 × u32), the root bucket
/// (root pgid u64, sequence u64), freelist pgid u64, high-water mark pgid u64, txid u64, checksum
/// u64: 64 bytes; the checksum covers the 56 before it.
pub(crate) const META_BYTES: usize = 64;
const META_CHECKSUM_OFFSET: usize = 56;

/// A meta page's fields (bbolt's `meta`), the checksum already verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    pub page_size: u32,
    pub flags: u32,
    pub root: u64,
    pub root_sequence: u64,
    pub freelist: u64,
    /// bbolt's `pgid`: the number of pages in use; every page id is below it.
    pub high_water_mark: u64,
    pub txid: u64,
}

/// FNV-1a, 64 bits: the meta checksum (Go's `hash/fnv.New64a`).
pub(crate) fn fnv1a_64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xCBF2_9CE4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01B3;
    bytes.iter().fold(OFFSET_BASIS, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(PRIME))
}

/// Whether bbolt would use `page_size`: a power of two from [`PAGE_SIZE_MIN`] to [`PAGE_SIZE_MAX`].
pub(crate) fn page_size_is_supported(page_size: u32) -> bool {
    page_size.is_power_of_two() && (PAGE_SIZE_MIN..=PAGE_SIZE_MAX).contains(&page_size)
}

/// Decodes the meta page that starts at `page` (its page header first) and is expected at page id
/// `page_id`; the error says what is wrong with it, for the caller to place.
pub(crate) fn decode_meta(page: &[u8], page_id: u64) -> Result<Meta, String> {
    let Some(meta) = page.get(PAGE_HEADER_BYTES..PAGE_HEADER_BYTES + META_BYTES) else {
        return Err(format!("the file ends {} bytes into this meta page, before its {} bytes", page.len(), PAGE_HEADER_BYTES + META_BYTES));
    };
    let field32 = |offset: usize| u32_at(meta, offset).unwrap_or_default();
    let field64 = |offset: usize| u64_at(meta, offset).unwrap_or_default();
    let flags = u16_at(page, PAGE_FLAGS_OFFSET).unwrap_or_default();
    if flags != PAGE_FLAG_META {
        return Err(format!("the page header's flags are {flags:#06x}, not a meta page's {PAGE_FLAG_META:#06x}"));
    }
    let magic = field32(0);
    if magic != MAGIC {
        return Err(format!("the magic is {magic:#010x}, not bbolt's {MAGIC:#010x}"));
    }
    let version = field32(4);
    if version != FORMAT_VERSION {
        return Err(format!("the format version is {version}, but only bbolt's version {FORMAT_VERSION} is read"));
    }
    let checksum = field64(META_CHECKSUM_OFFSET);
    let computed = fnv1a_64(&meta[..META_CHECKSUM_OFFSET]);
    if checksum != computed {
        return Err(format!("the checksum is {checksum:#018x} but the meta's bytes hash to {computed:#018x} (FNV-1a 64): the meta page is damaged"));
    }
    let found_id = u64_at(page, PAGE_ID_OFFSET).unwrap_or_default();
    if found_id != page_id {
        return Err(format!("the page header says page {found_id}, but this is page {page_id}"));
    }
    let page_size = field32(8);
    if !page_size_is_supported(page_size) {
        return Err(format!("the page size {page_size} is not a power of two from {PAGE_SIZE_MIN} to {PAGE_SIZE_MAX}"));
    }
    Ok(Meta {
        page_size,
        flags: field32(12),
        root: field64(16),
        root_sequence: field64(24),
        freelist: field64(32),
        high_water_mark: field64(40),
        txid: field64(48),
    })
}

/// The page header and meta of meta page `page_id` (0 or 1), checksum included.
pub(crate) fn encode_meta(meta: &Meta, page_id: u64) -> [u8; PAGE_HEADER_BYTES + META_BYTES] {
    let mut page = [0u8; PAGE_HEADER_BYTES + META_BYTES];
    page[PAGE_ID_OFFSET..PAGE_ID_OFFSET + 8].copy_from_slice(&page_id.to_le_bytes());
    page[PAGE_FLAGS_OFFSET..PAGE_FLAGS_OFFSET + 2].copy_from_slice(&PAGE_FLAG_META.to_le_bytes());
    let fields = &mut page[PAGE_HEADER_BYTES..];
    fields[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    fields[4..8].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    fields[8..12].copy_from_slice(&meta.page_size.to_le_bytes());
    fields[12..16].copy_from_slice(&meta.flags.to_le_bytes());
    fields[16..24].copy_from_slice(&meta.root.to_le_bytes());
    fields[24..32].copy_from_slice(&meta.root_sequence.to_le_bytes());
    fields[32..40].copy_from_slice(&meta.freelist.to_le_bytes());
    fields[40..48].copy_from_slice(&meta.high_water_mark.to_le_bytes());
    fields[48..56].copy_from_slice(&meta.txid.to_le_bytes());
    let checksum = fnv1a_64(&fields[..META_CHECKSUM_OFFSET]);
    fields[META_CHECKSUM_OFFSET..META_BYTES].copy_from_slice(&checksum.to_le_bytes());
    page
}

pub(crate) fn u16_at(bytes: &[u8], offset: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(offset..offset.checked_add(2)?)?.try_into().ok()?))
}

pub(crate) fn u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(offset..offset.checked_add(4)?)?.try_into().ok()?))
}

pub(crate) fn u64_at(bytes: &[u8], offset: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(offset..offset.checked_add(8)?)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_64_matches_the_reference_vectors() {
        // Go's hash/fnv and the FNV reference: "" and "a".
        assert_eq!(fnv1a_64(b""), 0xCBF2_9CE4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xAF63_DC4C_8601_EC8C);
        assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_F739_67E8);
    }

    #[test]
    fn a_meta_page_round_trips_and_any_flip_is_refused() {
        let meta = Meta { page_size: 4096, flags: 0, root: 3, root_sequence: 9, freelist: 2, high_water_mark: 4, txid: 7 };
        let page = encode_meta(&meta, 1);
        assert_eq!(decode_meta(&page, 1), Ok(meta));
        assert!(decode_meta(&page, 0).is_err(), "a meta page at the wrong position");
        for byte in 0..page.len() {
            let mut flipped = page;
            flipped[byte] ^= 0x10;
            // The page header's count and overflow are not part of a meta page's meaning.
            if (PAGE_COUNT_OFFSET..PAGE_HEADER_BYTES).contains(&byte) {
                continue;
            }
            assert!(decode_meta(&flipped, 1).is_err(), "flip of byte {byte} accepted");
        }
        assert!(decode_meta(&page[..79], 1).unwrap_err().contains("ends 79 bytes"));
    }

    #[test]
    fn page_sizes_are_powers_of_two_in_bbolts_range() {
        assert!(page_size_is_supported(4096));
        assert!(page_size_is_supported(1024));
        assert!(page_size_is_supported(16 << 20));
        assert!(!page_size_is_supported(512));
        assert!(!page_size_is_supported(32 << 20));
        assert!(!page_size_is_supported(4095));
        assert!(!page_size_is_supported(0));
    }

    #[test]
    fn field_readers_stop_at_the_end() {
        let bytes = [1u8, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(u64_at(&bytes, 0), Some(1));
        assert_eq!(u64_at(&bytes, 1), None);
        assert_eq!(u32_at(&bytes, usize::MAX), None);
        assert_eq!(u16_at(&bytes, 7), None);
    }
}

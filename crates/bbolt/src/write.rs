//! Writing buckets as a bbolt file, laid out as bbolt's `tx.WriteTo` would copy a compact
//! database: meta pages 0 and 1, an empty freelist page 2, then each bucket's B+tree (leaves
//! first, then each level of branch pages up to the root), then the root bucket's tree.
//!
//! Invariants:
//! - Every page below the high-water mark is a meta page, the freelist page, or reachable exactly
//!   once from the root bucket, so bbolt's `tx.Check` (run by `etcdctl snapshot status`) finds
//!   nothing; the file is exactly `high-water mark × page size` bytes.
//! - A node holds as many elements as fit in one page (at least one, at most 0xFFFE); a node
//!   larger than a page (one big element) gets overflow pages. Each branch element's key is its
//!   child's first key, as bbolt's own spill leaves them.
//! - The input is checked before anything is laid out: bbolt's key and value limits, and keys
//!   strictly ascending in each bucket; an error names the bucket and the key.
//! - No inline buckets: an empty bucket is an empty leaf page, which bbolt reads as it reads the
//!   root bucket of a new database.

use std::collections::BTreeMap;

use crate::error::{show, BoltError};
use crate::layout::{
    encode_meta, page_size_is_supported, Meta, BRANCH_ELEMENT_BYTES, BUCKET_HEADER_BYTES, KEY_BYTES_MAX, LEAF_ELEMENT_BYTES, LEAF_FLAG_BUCKET,
    PAGE_ELEMENTS_MAX, PAGE_FLAG_BRANCH, PAGE_FLAG_FREELIST, PAGE_FLAG_LEAF, PAGE_HEADER_BYTES, PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, PAGE_SIZE_MIN,
    VALUE_BYTES_MAX,
};
use crate::Bucket;

/// How [`write()`] lays out the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteOptions {
    /// A power of two from [`PAGE_SIZE_MIN`] to [`PAGE_SIZE_MAX`]; bbolt opens any such file
    /// whatever the OS page size.
    pub page_size: u32,
    /// The transaction id of the newer meta page (at least 1). The other meta page gets `txid - 1`
    /// and the same tree, each at page `txid % 2` as bbolt's commits place them, so a bbolt that
    /// opens the file and commits overwrites the older one first.
    pub txid: u64,
}

impl Default for WriteOptions {
    /// 4096-byte pages and txid 2: the first transaction after the two of a new bbolt database.
    fn default() -> WriteOptions {
        WriteOptions { page_size: PAGE_SIZE_DEFAULT, txid: 2 }
    }
}

/// The page id of the (always empty) freelist: the first page after the two meta pages.
const FREELIST_PAGE_ID: u64 = 2;

/// Writes a database holding these buckets as the bytes of a bbolt file that bbolt opens: meta
/// pages 0 and 1 (valid checksums), a freelist page, the root bucket's B+tree and each bucket's
/// B+tree (leaf pages, branch pages when a bucket needs more than one leaf, overflow pages for
/// elements larger than a page). Keys must be strictly ascending within a bucket: returns an error
/// naming the bucket and key otherwise (and for empty or oversized keys, names and values, which
/// bbolt refuses to store). The file length is a multiple of the page size.
pub fn write(buckets: &BTreeMap<Vec<u8>, Bucket>, options: &WriteOptions) -> Result<Vec<u8>, BoltError> {
    if !page_size_is_supported(options.page_size) {
        return Err(BoltError::at(
            0,
            format!("page size {} is not supported: use a power of two from {PAGE_SIZE_MIN} to {PAGE_SIZE_MAX} (bbolt uses the OS page size, usually {PAGE_SIZE_DEFAULT})", options.page_size),
        ));
    }
    if options.txid == 0 {
        return Err(BoltError::at(0, "txid 0 is not supported: the older meta page holds txid - 1, so use a txid of at least 1"));
    }
    for (name, bucket) in buckets {
        check_bucket(name, bucket)?;
    }
    let mut file = PageFile::new(options.page_size as usize);
    let mut root_items = Vec::with_capacity(buckets.len());
    for (name, bucket) in buckets {
        let items: Vec<LeafItem<'_>> = bucket.entries.iter().map(|(key, value)| LeafItem { flags: 0, key, value }).collect();
        let root = file.write_tree(&items)?;
        let mut header = [0u8; BUCKET_HEADER_BYTES];
        header[..8].copy_from_slice(&root.to_le_bytes());
        header[8..].copy_from_slice(&bucket.sequence.to_le_bytes());
        root_items.push((name.as_slice(), header));
    }
    let items: Vec<LeafItem<'_>> = root_items.iter().map(|(name, header)| LeafItem { flags: LEAF_FLAG_BUCKET, key: name, value: header }).collect();
    let root = file.write_tree(&items)?;
    Ok(file.finish(root, options.txid))
}

/// Refuses what bbolt would refuse to store, and keys out of order, naming the bucket and key.
fn check_bucket(name: &[u8], bucket: &Bucket) -> Result<(), BoltError> {
    if name.is_empty() || name.len() > KEY_BYTES_MAX {
        return Err(BoltError::at(0, format!("bucket name {} is {} bytes: bbolt needs 1 to {KEY_BYTES_MAX}", show(name), name.len())));
    }
    let mut previous: Option<&[u8]> = None;
    for (key, value) in &bucket.entries {
        if key.is_empty() || key.len() > KEY_BYTES_MAX {
            return Err(BoltError::at(0, format!("bucket {}: key {} is {} bytes: bbolt needs 1 to {KEY_BYTES_MAX}", show(name), show(key), key.len())));
        }
        if value.len() > VALUE_BYTES_MAX {
            return Err(BoltError::at(
                0,
                format!("bucket {}: the value of key {} is {} bytes: bbolt stores at most {VALUE_BYTES_MAX}", show(name), show(key), value.len()),
            ));
        }
        if let Some(previous) = previous.filter(|previous| *previous >= key.as_slice()) {
            return Err(BoltError::at(
                0,
                format!(
                    "bucket {}: key {} comes after key {}, but keys must be strictly ascending: sort them and drop duplicates",
                    show(name),
                    show(key),
                    show(previous)
                ),
            ));
        }
        previous = Some(key);
    }
    Ok(())
}

/// One element of a leaf page to be written.
struct LeafItem<'a> {
    flags: u32,
    key: &'a [u8],
    value: &'a [u8],
}

/// One written node as its parent refers to it: its first key and page id.
struct ChildRef<'a> {
    key: &'a [u8],
    page_id: u64,
}

/// The file being laid out, page by page; pages 0 to 2 (metas, freelist) are reserved.
struct PageFile {
    page_size: usize,
    bytes: Vec<u8>,
}

impl PageFile {
    fn new(page_size: usize) -> PageFile {
        let mut bytes = vec![0u8; 3 * page_size];
        let freelist = &mut bytes[2 * page_size..];
        write_page_header(freelist, FREELIST_PAGE_ID, PAGE_FLAG_FREELIST, 0, 0);
        PageFile { page_size, bytes }
    }

    fn next_page_id(&self) -> u64 {
        (self.bytes.len() / self.page_size) as u64
    }

    /// Writes a B+tree of `items` (already checked and in order) and returns its root page id.
    fn write_tree<'a>(&mut self, items: &[LeafItem<'a>]) -> Result<u64, BoltError> {
        let sizes: Vec<usize> = items.iter().map(|item| LEAF_ELEMENT_BYTES + item.key.len() + item.value.len()).collect();
        let mut level: Vec<ChildRef<'a>> = Vec::new();
        for range in self.group(&sizes) {
            let nodes = &items[range];
            let page_id = self.write_leaf(nodes)?;
            level.push(ChildRef { key: nodes.first().map_or(&[][..], |item| item.key), page_id });
        }
        while level.len() > 1 {
            let sizes: Vec<usize> = level.iter().map(|child| BRANCH_ELEMENT_BYTES + child.key.len()).collect();
            let mut parents = Vec::new();
            for range in self.group(&sizes) {
                let children = &level[range];
                let page_id = self.write_branch(children)?;
                parents.push(ChildRef { key: children[0].key, page_id });
            }
            level = parents;
        }
        Ok(level.first().map_or(0, |root| root.page_id))
    }

    /// Splits elements of these sizes into nodes: as many as fit in one page after the header, at
    /// least one, at most `PAGE_ELEMENTS_MAX`. No elements: one empty node.
    fn group(&self, sizes: &[usize]) -> Vec<std::ops::Range<usize>> {
        let mut ranges = Vec::new();
        let mut start = 0;
        let mut used = PAGE_HEADER_BYTES;
        for (index, &size) in sizes.iter().enumerate() {
            if index > start && (used + size > self.page_size || index - start >= PAGE_ELEMENTS_MAX) {
                ranges.push(start..index);
                start = index;
                used = PAGE_HEADER_BYTES;
            }
            used += size;
        }
        ranges.push(start..sizes.len());
        ranges
    }

    /// Appends a page (with overflow pages) of at least `bytes` bytes; returns its id and start.
    fn allocate(&mut self, bytes: usize) -> Result<(u64, usize, u32), BoltError> {
        let pages = bytes.div_ceil(self.page_size).max(1);
        let overflow =
            u32::try_from(pages - 1).map_err(|_| BoltError::at(0, format!("a node of {bytes} bytes needs more overflow pages than bbolt counts")))?;
        let id = self.next_page_id();
        let start = self.bytes.len();
        self.bytes.resize(start + pages * self.page_size, 0);
        Ok((id, start, overflow))
    }

    fn write_leaf(&mut self, items: &[LeafItem<'_>]) -> Result<u64, BoltError> {
        let bytes = PAGE_HEADER_BYTES + items.iter().map(|item| LEAF_ELEMENT_BYTES + item.key.len() + item.value.len()).sum::<usize>();
        let (id, start, overflow) = self.allocate(bytes)?;
        let page = &mut self.bytes[start..];
        write_page_header(page, id, PAGE_FLAG_LEAF, items.len(), overflow);
        let mut data = PAGE_HEADER_BYTES + items.len() * LEAF_ELEMENT_BYTES;
        for (index, item) in items.iter().enumerate() {
            let element = PAGE_HEADER_BYTES + index * LEAF_ELEMENT_BYTES;
            put_u32(page, element, item.flags);
            put_u32(page, element + 4, to_u32(data - element)?);
            put_u32(page, element + 8, to_u32(item.key.len())?);
            put_u32(page, element + 12, to_u32(item.value.len())?);
            page[data..data + item.key.len()].copy_from_slice(item.key);
            data += item.key.len();
            page[data..data + item.value.len()].copy_from_slice(item.value);
            data += item.value.len();
        }
        Ok(id)
    }

    fn write_branch(&mut self, children: &[ChildRef<'_>]) -> Result<u64, BoltError> {
        let bytes = PAGE_HEADER_BYTES + children.iter().map(|child| BRANCH_ELEMENT_BYTES + child.key.len()).sum::<usize>();
        let (id, start, overflow) = self.allocate(bytes)?;
        let page = &mut self.bytes[start..];
        write_page_header(page, id, PAGE_FLAG_BRANCH, children.len(), overflow);
        let mut data = PAGE_HEADER_BYTES + children.len() * BRANCH_ELEMENT_BYTES;
        for (index, child) in children.iter().enumerate() {
            let element = PAGE_HEADER_BYTES + index * BRANCH_ELEMENT_BYTES;
            put_u32(page, element, to_u32(data - element)?);
            put_u32(page, element + 4, to_u32(child.key.len())?);
            page[element + 8..element + 16].copy_from_slice(&child.page_id.to_le_bytes());
            page[data..data + child.key.len()].copy_from_slice(child.key);
            data += child.key.len();
        }
        Ok(id)
    }

    /// Writes both meta pages for the root bucket at page `root` and returns the file.
    fn finish(mut self, root: u64, txid: u64) -> Vec<u8> {
        let meta =
            Meta { page_size: self.page_size as u32, flags: 0, root, root_sequence: 0, freelist: FREELIST_PAGE_ID, high_water_mark: self.next_page_id(), txid };
        for txid in [txid, txid - 1] {
            let page_id = txid % 2;
            let start = page_id as usize * self.page_size;
            let page = encode_meta(&Meta { txid, ..meta }, page_id);
            self.bytes[start..start + page.len()].copy_from_slice(&page);
        }
        self.bytes
    }
}

fn write_page_header(page: &mut [u8], id: u64, flags: u16, count: usize, overflow: u32) {
    page[0..8].copy_from_slice(&id.to_le_bytes());
    page[8..10].copy_from_slice(&flags.to_le_bytes());
    // count <= PAGE_ELEMENTS_MAX by construction (group).
    page[10..12].copy_from_slice(&(count.min(PAGE_ELEMENTS_MAX) as u16).to_le_bytes());
    page[12..16].copy_from_slice(&overflow.to_le_bytes());
}

fn put_u32(page: &mut [u8], offset: usize, value: u32) {
    page[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
}

/// A size or position within one node: below 2^32 since keys, values and pages are bounded.
fn to_u32(value: usize) -> Result<u32, BoltError> {
    u32::try_from(value).map_err(|_| BoltError::at(0, format!("a size or position of {value} bytes in one page does not fit bbolt's 32-bit fields")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read;

    /// A bucket's name and its (key, value) pairs, as test literals.
    type BucketLiteral<'a> = (&'a [u8], &'a [(&'a [u8], &'a [u8])]);

    fn database(buckets: &[BucketLiteral<'_>]) -> BTreeMap<Vec<u8>, Bucket> {
        buckets
            .iter()
            .map(|(name, entries)| {
                let entries = entries.iter().map(|(key, value)| (key.to_vec(), value.to_vec())).collect();
                (name.to_vec(), Bucket { sequence: 0, entries })
            })
            .collect()
    }

    #[test]
    fn an_empty_database_is_metas_freelist_and_an_empty_root_leaf() {
        let file = write(&BTreeMap::new(), &WriteOptions::default()).expect("write");
        assert_eq!(file.len(), 4 * 4096);
        let read_back = read(&file).expect("read");
        assert_eq!(read_back, crate::Database { page_size: 4096, txid: 2, buckets: BTreeMap::new() });
    }

    #[test]
    fn metas_hold_txid_and_txid_minus_one_at_txid_mod_2() {
        let file = write(&BTreeMap::new(), &WriteOptions { page_size: 1024, txid: 7 }).expect("write");
        let txid_at = |page: usize| u64::from_le_bytes(file[page * 1024 + 64..page * 1024 + 72].try_into().unwrap());
        assert_eq!((txid_at(0), txid_at(1)), (6, 7));
        assert_eq!(read(&file).expect("read").txid, 7);
    }

    #[test]
    fn bad_options_and_bad_input_are_refused_by_name() {
        let error = write(&BTreeMap::new(), &WriteOptions { page_size: 3000, txid: 2 }).unwrap_err();
        assert!(error.reason.contains("page size 3000"), "{error}");
        let error = write(&BTreeMap::new(), &WriteOptions { page_size: 4096, txid: 0 }).unwrap_err();
        assert!(error.reason.contains("txid 0"), "{error}");

        let unsorted = database(&[(b"key", &[(b"b", b"1"), (b"a", b"2")])]);
        let error = write(&unsorted, &WriteOptions::default()).unwrap_err();
        assert_eq!(error.offset, 0);
        assert!(error.reason.contains("bucket \"key\": key \"a\" comes after key \"b\""), "{error}");

        let duplicate = database(&[(b"meta", &[(b"a", b"1"), (b"a", b"2")])]);
        assert!(write(&duplicate, &WriteOptions::default()).unwrap_err().reason.contains("strictly ascending"));

        let empty_key = database(&[(b"meta", &[(b"", b"1")])]);
        assert!(write(&empty_key, &WriteOptions::default()).unwrap_err().reason.contains("key \"\" is 0 bytes"));

        let empty_name = database(&[(b"", &[])]);
        assert!(write(&empty_name, &WriteOptions::default()).unwrap_err().reason.contains("bucket name \"\""));
    }

    #[test]
    fn an_element_larger_than_a_page_gets_overflow_pages() {
        let big = vec![0xAB; 10_000];
        let buckets = database(&[(b"key", &[(b"a", &big), (b"b", b"small")])]);
        let file = write(&buckets, &WriteOptions { page_size: 4096, txid: 2 }).expect("write");
        assert_eq!(file.len() % 4096, 0);
        assert_eq!(read(&file).expect("read").buckets, buckets);
        // The first bucket page (3) holds the big element alone, with two overflow pages.
        let overflow = u32::from_le_bytes(file[3 * 4096 + 12..3 * 4096 + 16].try_into().unwrap());
        assert_eq!(overflow, 2);
    }

    #[test]
    fn groups_fill_pages_and_never_leave_one_empty() {
        let file = PageFile::new(1024);
        assert_eq!(file.group(&[]), vec![0..0]);
        assert_eq!(file.group(&[2000]), vec![0..1]);
        assert_eq!(file.group(&[600, 600, 600]), vec![0..1, 1..2, 2..3]);
        assert_eq!(file.group(&[500, 500 - PAGE_HEADER_BYTES, 100]), vec![0..2, 2..3]);
    }
}

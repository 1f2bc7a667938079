//! Reading a whole bbolt file: choose the meta page as bbolt does, check the freelist page's shape,
//! then walk the root bucket's B+tree and each top-level bucket's B+tree (or inline page) into a
//! [`Database`].
//!
//! Invariants (the reader is fuzzed, so they hold for any bytes):
//! - No page is read before its id is checked against the meta's high-water mark, and the
//!   high-water mark against the file length; all other bounds are checked arithmetic on `usize`.
//! - Each page (with its overflow pages) is visited at most once: a page reached twice, from a
//!   cycle or from two parents, is an error. So the walk ends, its work is linear in the file, and
//!   the explicit stack (no recursion) holds at most one entry per branch element in the file.
//! - What is allocated is the visit map (one byte per page) and copies of keys and values the
//!   file holds, each element of which takes at least 16 bytes of the file.

use std::collections::BTreeMap;

use crate::error::{show, BoltError};
use crate::layout::{
    decode_meta, u16_at, u32_at, u64_at, Meta, BRANCH_ELEMENT_BYTES, BUCKET_HEADER_BYTES, FREELIST_COUNT_OVERFLOW, FREELIST_NONE, LEAF_ELEMENT_BYTES,
    LEAF_FLAG_BUCKET, PAGE_COUNT_OFFSET, PAGE_FLAGS_OFFSET, PAGE_FLAG_BRANCH, PAGE_FLAG_FREELIST, PAGE_FLAG_LEAF, PAGE_HEADER_BYTES, PAGE_ID_OFFSET,
    PAGE_OVERFLOW_OFFSET, PAGE_SIZE_MAX, PAGE_SIZE_MIN,
};
use crate::{Bucket, Database};

/// Reads a whole bbolt file from memory. Never panics, never loops forever, never allocates
/// more than a small multiple of `bytes.len()`, whatever the bytes (it is fuzzed): checks both
/// meta pages (magic, version 2, page size, FNV-1a 64 checksum) and uses the valid one with the
/// higher txid (as bbolt does), checks every page id against the file length, refuses page
/// cycles, and checks that keys are in order. Bytes after the meta's high-water mark are ignored
/// (a data directory's file is longer than its pages in use, and an etcd snapshot file ends with
/// a SHA-256 digest: see [`crate::split_etcd_snapshot`]).
pub fn read(bytes: &[u8]) -> Result<Database, BoltError> {
    let meta = choose_meta(bytes)?;
    let mut reader = Reader::new(bytes, &meta)?;
    reader.check_freelist(meta.freelist)?;
    let buckets = reader.read_buckets(meta.root)?;
    Ok(Database { page_size: meta.page_size, txid: meta.txid, buckets })
}

/// The meta page bbolt would use: the valid one of pages 0 and 1 with the higher txid (page 0 on a
/// tie). The page size comes from page 0's meta, or when that one is invalid from a valid meta
/// found at one of the page sizes bbolt tries (1 KiB … 16 MiB), as `getPageSizeFromSecondMeta`.
fn choose_meta(bytes: &[u8]) -> Result<Meta, BoltError> {
    let first = decode_meta(bytes, 0);
    let page_size = match &first {
        Ok(meta) => Some(meta.page_size),
        Err(_) => second_meta_page_size(bytes),
    };
    let Some(page_size) = page_size else {
        let reason = first.err().unwrap_or_default();
        return Err(BoltError::at(
            0,
            format!(
                "meta page 0 is invalid ({reason}) and no valid meta page 1 was found at any page size from {PAGE_SIZE_MIN} to {PAGE_SIZE_MAX}: \
                 this is not a bbolt file, or both its meta pages are damaged"
            ),
        ));
    };
    let second_offset = page_size as usize;
    let second = match bytes.get(second_offset..) {
        Some(page) => decode_meta(page, 1).and_then(|meta| {
            if meta.page_size == page_size {
                Ok(meta)
            } else {
                Err(format!("its page size {} differs from the {page_size} it was found at", meta.page_size))
            }
        }),
        None => Err(format!("the file ends at byte {}, before meta page 1", bytes.len())),
    };
    match (first, second) {
        (Ok(zero), Ok(one)) => Ok(if one.txid > zero.txid { one } else { zero }),
        (Ok(zero), Err(_)) => Ok(zero),
        (Err(_), Ok(one)) => Ok(one),
        (Err(zero), Err(one)) => {
            Err(BoltError::at(0, format!("both meta pages are invalid: page 0: {zero}; page 1 (offset {second_offset}): {one}; the file cannot be read")))
        }
    }
}

/// The page size of the first valid meta page 1 at the offsets bbolt tries when page 0 is bad.
fn second_meta_page_size(bytes: &[u8]) -> Option<u32> {
    (0..=14u32).map(|shift| PAGE_SIZE_MIN << shift).find(|&candidate| {
        let meta = bytes.get(candidate as usize..).map(|page| decode_meta(page, 1));
        matches!(meta, Some(Ok(meta)) if meta.page_size == candidate)
    })
}

/// One page (with its overflow pages) as found in the file.
struct Page<'a> {
    id: u64,
    /// Where the page starts in the file.
    offset: u64,
    flags: u16,
    count: u16,
    /// The page's bytes, header first, overflow pages included.
    bytes: &'a [u8],
}

/// One leaf element: its file offset (for errors), flags, key and value.
struct LeafElement<'a> {
    offset: u64,
    flags: u32,
    key: &'a [u8],
    value: &'a [u8],
}

/// Where a page id was found in the file (a meta, branch element or bucket value), for errors.
#[derive(Clone, Copy)]
struct Referrer {
    offset: u64,
}

struct Reader<'a> {
    bytes: &'a [u8],
    page_size: u64,
    /// The meta's high-water mark: page ids are below it.
    page_count: u64,
    /// One entry per page below the high-water mark: whether the walk has been there.
    visited: Vec<bool>,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], meta: &Meta) -> Result<Reader<'a>, BoltError> {
        let page_size = u64::from(meta.page_size);
        let file_bytes = bytes.len() as u64;
        let needed = meta.high_water_mark.checked_mul(page_size).filter(|&needed| needed <= file_bytes);
        if needed.is_none() {
            return Err(BoltError::at(
                file_bytes,
                format!(
                    "the meta page (txid {}) says the database has {} pages of {page_size} bytes, but the file is only {file_bytes} bytes: \
                     the file is truncated",
                    meta.txid, meta.high_water_mark
                ),
            ));
        }
        if meta.high_water_mark < 3 {
            return Err(BoltError::at(0, format!("the meta page's high-water mark is {} pages, but a bbolt file has at least 3", meta.high_water_mark)));
        }
        // page_count * page_size <= bytes.len(), so this allocation is at most bytes.len() / 1024.
        let visited = vec![false; usize::try_from(meta.high_water_mark).unwrap_or(0)];
        Ok(Reader { bytes, page_size, page_count: meta.high_water_mark, visited })
    }

    /// The page `id`, marked visited with its overflow pages; refused when it is a meta page,
    /// beyond the high-water mark, already visited, or its header names another id.
    fn page(&mut self, id: u64, referrer: Referrer, what: &str) -> Result<Page<'a>, BoltError> {
        if id < 2 || id >= self.page_count {
            return Err(BoltError::at(
                referrer.offset,
                format!("{what} is page {id}, which is not a page of the tree: page ids run from 2 to {} (below the high-water mark)", self.page_count - 1),
            ));
        }
        let offset = id * self.page_size;
        let start = offset as usize;
        let header = self.bytes.get(start..start + PAGE_HEADER_BYTES).unwrap_or_default();
        let found_id = u64_at(header, PAGE_ID_OFFSET).unwrap_or_default();
        if found_id != id {
            return Err(BoltError::at(offset, format!("{what}: page {id}'s header says it is page {found_id}: the page is damaged")));
        }
        let flags = u16_at(header, PAGE_FLAGS_OFFSET).unwrap_or_default();
        let count = u16_at(header, PAGE_COUNT_OFFSET).unwrap_or_default();
        let overflow = u64::from(u32_at(header, PAGE_OVERFLOW_OFFSET).unwrap_or_default());
        let end_page = id + overflow + 1;
        if end_page > self.page_count {
            return Err(BoltError::at(
                offset,
                format!("page {id} says {overflow} overflow pages follow it, which runs past the high-water mark of {} pages", self.page_count),
            ));
        }
        for page in id..end_page {
            let seen = &mut self.visited[page as usize];
            if *seen {
                return Err(BoltError::at(
                    page * self.page_size,
                    format!("{what}: page {page} is reached a second time (a page cycle, or a page shared by two parents): the tree is damaged"),
                ));
            }
            *seen = true;
        }
        let bytes = &self.bytes[start..(end_page * self.page_size) as usize];
        Ok(Page { id, offset, flags, count, bytes })
    }

    /// Checks the freelist page's shape: flags, count and ids inside the page, ids below the
    /// high-water mark. `FREELIST_NONE` (bbolt's `NoFreelistSync`) means there is none to check.
    fn check_freelist(&mut self, freelist: u64) -> Result<(), BoltError> {
        if freelist == FREELIST_NONE {
            return Ok(());
        }
        let page = self.page(freelist, Referrer { offset: 0 }, "the meta's freelist")?;
        if page.flags != PAGE_FLAG_FREELIST {
            return Err(BoltError::at(page.offset, format!("the freelist page {} has flags {:#06x}, not {PAGE_FLAG_FREELIST:#06x}", page.id, page.flags)));
        }
        let (skip, count) =
            if page.count == FREELIST_COUNT_OVERFLOW { (1u64, u64_at(page.bytes, PAGE_HEADER_BYTES).unwrap_or(u64::MAX)) } else { (0, u64::from(page.count)) };
        let ids_end = skip.checked_add(count).and_then(|ids| ids.checked_mul(8)).and_then(|ids| ids.checked_add(PAGE_HEADER_BYTES as u64));
        if ids_end.is_none_or(|end| end > page.bytes.len() as u64) {
            return Err(BoltError::at(page.offset, format!("the freelist page {} says it holds {count} page ids, more than fit in it", page.id)));
        }
        for index in skip..skip + count {
            let at = PAGE_HEADER_BYTES + index as usize * 8;
            let free = u64_at(page.bytes, at).unwrap_or_default();
            if free < 2 || free >= self.page_count {
                return Err(BoltError::at(
                    page.offset + at as u64,
                    format!("the freelist lists page {free}, but free pages run from 2 to {} (below the high-water mark)", self.page_count - 1),
                ));
            }
        }
        Ok(())
    }

    /// The top-level buckets, from the root bucket's tree at page `root`.
    fn read_buckets(&mut self, root: u64) -> Result<BTreeMap<Vec<u8>, Bucket>, BoltError> {
        let mut names: Vec<LeafElement<'a>> = Vec::new();
        self.walk_tree(root, Referrer { offset: 0 }, "the root bucket", &mut |element| {
            if element.flags & LEAF_FLAG_BUCKET == 0 {
                return Err(BoltError::at(
                    element.offset,
                    format!("the root bucket holds the plain key {}, but bbolt keeps only buckets there", show(element.key)),
                ));
            }
            check_order(names.last().map(|last| last.key), &element, "the root bucket")?;
            names.push(element);
            Ok(())
        })?;
        let mut buckets = BTreeMap::new();
        for name in names {
            let bucket = self.read_bucket(&name)?;
            buckets.insert(name.key.to_vec(), bucket);
        }
        Ok(buckets)
    }

    /// One top-level bucket from its root bucket element: the header, then its tree or inline page.
    fn read_bucket(&mut self, element: &LeafElement<'a>) -> Result<Bucket, BoltError> {
        let what = format!("bucket {}", show(element.key));
        let value = element.value;
        let (Some(root), Some(sequence)) = (u64_at(value, 0), u64_at(value, 8)) else {
            return Err(BoltError::at(
                element.offset,
                format!("{what}'s value is {} bytes, shorter than the {BUCKET_HEADER_BYTES}-byte bucket header", value.len()),
            ));
        };
        let value_offset = self.offset_of(value);
        let mut entries: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut add = |element: LeafElement<'_>| -> Result<(), BoltError> {
            if element.flags & LEAF_FLAG_BUCKET != 0 {
                return Err(BoltError::at(
                    element.offset,
                    format!("{what} holds a nested bucket {}: etcd uses only top-level buckets, so this is not an etcd database", show(element.key)),
                ));
            }
            check_order(entries.last().map(|(key, _)| key.as_slice()), &element, &what)?;
            entries.push((element.key.to_vec(), element.value.to_vec()));
            Ok(())
        };
        if root == 0 {
            let inline = &value[BUCKET_HEADER_BYTES..];
            let inline_offset = value_offset + BUCKET_HEADER_BYTES as u64;
            let flags = u16_at(inline, PAGE_FLAGS_OFFSET);
            let count = u16_at(inline, PAGE_COUNT_OFFSET);
            let (Some(flags), Some(count)) = (flags, count) else {
                return Err(BoltError::at(inline_offset, format!("{what} is inline but its value ends before the inline page's header")));
            };
            if flags != PAGE_FLAG_LEAF {
                return Err(BoltError::at(inline_offset, format!("{what}'s inline page has flags {flags:#06x}, not a leaf's {PAGE_FLAG_LEAF:#06x}")));
            }
            let page = Page { id: 0, offset: inline_offset, flags, count, bytes: inline };
            check_element_count(&page, LEAF_ELEMENT_BYTES, &what)?;
            for index in 0..count {
                add(leaf_element(&page, index, &what)?)?;
            }
        } else {
            if value.len() != BUCKET_HEADER_BYTES {
                return Err(BoltError::at(
                    element.offset,
                    format!("{what} has root page {root} but a {}-byte value; a bucket with a root page has a {BUCKET_HEADER_BYTES}-byte one", value.len()),
                ));
            }
            self.walk_tree(root, Referrer { offset: value_offset }, &what, &mut add)?;
        }
        Ok(Bucket { sequence, entries })
    }

    /// Visits the leaf elements of the tree rooted at page `root` in key order, depth first with an
    /// explicit stack; `what` names the tree in errors.
    fn walk_tree(
        &mut self,
        root: u64,
        referrer: Referrer,
        what: &str,
        visit: &mut dyn FnMut(LeafElement<'a>) -> Result<(), BoltError>,
    ) -> Result<(), BoltError> {
        let mut stack = vec![(root, referrer)];
        while let Some((id, referrer)) = stack.pop() {
            let page = self.page(id, referrer, &format!("a page of {what}"))?;
            match page.flags {
                PAGE_FLAG_LEAF => {
                    check_element_count(&page, LEAF_ELEMENT_BYTES, what)?;
                    for index in 0..page.count {
                        visit(leaf_element(&page, index, what)?)?;
                    }
                }
                PAGE_FLAG_BRANCH => {
                    if page.count == 0 {
                        return Err(BoltError::at(page.offset, format!("branch page {id} of {what} has no elements")));
                    }
                    check_element_count(&page, BRANCH_ELEMENT_BYTES, what)?;
                    let first_child = stack.len();
                    for index in 0..page.count {
                        stack.push(branch_child(&page, index, what)?);
                    }
                    // Popped from the end: reversed, the children are visited in key order.
                    stack[first_child..].reverse();
                }
                flags => {
                    return Err(BoltError::at(
                        page.offset,
                        format!("page {id} of {what} has flags {flags:#06x}, but a tree holds only branch ({PAGE_FLAG_BRANCH:#04x}) and leaf ({PAGE_FLAG_LEAF:#04x}) pages"),
                    ))
                }
            }
        }
        Ok(())
    }

    /// The file offset of `slice`, which lies inside `self.bytes`.
    fn offset_of(&self, slice: &[u8]) -> u64 {
        (slice.as_ptr() as usize).wrapping_sub(self.bytes.as_ptr() as usize) as u64
    }
}

/// Refuses `page` when its element array (`count` elements of `element_bytes`) overruns it.
fn check_element_count(page: &Page<'_>, element_bytes: usize, what: &str) -> Result<(), BoltError> {
    if PAGE_HEADER_BYTES + usize::from(page.count) * element_bytes > page.bytes.len() {
        let kind = if page.flags == PAGE_FLAG_BRANCH { "branch" } else { "leaf" };
        return Err(BoltError::at(
            page.offset,
            format!("{what}: {kind} page {} says it has {} elements, more than fit in it ({} bytes)", page.id, page.count, page.bytes.len()),
        ));
    }
    Ok(())
}

/// Leaf element `index` of `page`, its key and value checked to lie inside the page.
fn leaf_element<'a>(page: &Page<'a>, index: u16, what: &str) -> Result<LeafElement<'a>, BoltError> {
    let at = PAGE_HEADER_BYTES + usize::from(index) * LEAF_ELEMENT_BYTES;
    let offset = page.offset + at as u64;
    let fields = (u32_at(page.bytes, at), u32_at(page.bytes, at + 4), u32_at(page.bytes, at + 8), u32_at(page.bytes, at + 12));
    let (Some(flags), Some(position), Some(key_bytes), Some(value_bytes)) = fields else {
        return Err(BoltError::at(offset, format!("{what}: leaf page {} says it has {} elements, more than fit in it", page.id, page.count)));
    };
    let key_start = at.checked_add(position as usize);
    let key_end = key_start.and_then(|start| start.checked_add(key_bytes as usize));
    let value_end = key_end.and_then(|end| end.checked_add(value_bytes as usize));
    match (key_start, key_end, value_end) {
        (Some(key_start), Some(key_end), Some(value_end)) if value_end <= page.bytes.len() => {
            Ok(LeafElement { offset, flags, key: &page.bytes[key_start..key_end], value: &page.bytes[key_end..value_end] })
        }
        _ => Err(BoltError::at(
            offset,
            format!(
                "{what}: element {index} of leaf page {} (position {position}, key {key_bytes} bytes, value {value_bytes} bytes) runs past the page's {} bytes",
                page.id,
                page.bytes.len()
            ),
        )),
    }
}

/// The child page id of branch element `index` of `page`, its key checked to lie inside the page.
fn branch_child(page: &Page<'_>, index: u16, what: &str) -> Result<(u64, Referrer), BoltError> {
    let at = PAGE_HEADER_BYTES + usize::from(index) * BRANCH_ELEMENT_BYTES;
    let offset = page.offset + at as u64;
    let (Some(position), Some(key_bytes), Some(child)) = (u32_at(page.bytes, at), u32_at(page.bytes, at + 4), u64_at(page.bytes, at + 8)) else {
        return Err(BoltError::at(offset, format!("{what}: branch page {} says it has {} elements, more than fit in it", page.id, page.count)));
    };
    let key_end = at.checked_add(position as usize).and_then(|start| start.checked_add(key_bytes as usize));
    if key_end.is_none_or(|end| end > page.bytes.len()) {
        return Err(BoltError::at(
            offset,
            format!("{what}: element {index} of branch page {} (position {position}, key {key_bytes} bytes) runs past the page", page.id),
        ));
    }
    Ok((child, Referrer { offset: offset + 8 }))
}

/// Refuses `element` unless its key is strictly after `previous`.
fn check_order(previous: Option<&[u8]>, element: &LeafElement<'_>, what: &str) -> Result<(), BoltError> {
    match previous {
        Some(previous) if previous >= element.key => Err(BoltError::at(
            element.offset,
            format!("{what}: key {} follows key {}, but keys must be strictly ascending: the tree is damaged", show(element.key), show(previous)),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{encode_meta, LEAF_FLAG_BUCKET};
    use crate::{write, WriteOptions};

    const PAGE: usize = 1024;

    /// A page of `PAGE` bytes (or more, for overflow) holding a leaf with these elements.
    fn leaf_page(id: u64, elements: &[(u32, &[u8], &[u8])]) -> Vec<u8> {
        let mut page = page_header(id, PAGE_FLAG_LEAF, elements.len() as u16, 0);
        let mut data = Vec::new();
        for (index, (flags, key, value)) in elements.iter().enumerate() {
            let position = (elements.len() - index) * LEAF_ELEMENT_BYTES + data.len();
            for field in [*flags, position as u32, key.len() as u32, value.len() as u32] {
                page.extend_from_slice(&field.to_le_bytes());
            }
            data.extend_from_slice(key);
            data.extend_from_slice(value);
        }
        page.extend_from_slice(&data);
        page.resize(page.len().div_ceil(PAGE) * PAGE, 0);
        page
    }

    fn branch_page(id: u64, children: &[(&[u8], u64)]) -> Vec<u8> {
        let mut page = page_header(id, PAGE_FLAG_BRANCH, children.len() as u16, 0);
        let mut data = Vec::new();
        for (index, (key, child)) in children.iter().enumerate() {
            let position = (children.len() - index) * BRANCH_ELEMENT_BYTES + data.len();
            page.extend_from_slice(&(position as u32).to_le_bytes());
            page.extend_from_slice(&(key.len() as u32).to_le_bytes());
            page.extend_from_slice(&child.to_le_bytes());
            data.extend_from_slice(key);
        }
        page.extend_from_slice(&data);
        page.resize(PAGE, 0);
        page
    }

    fn page_header(id: u64, flags: u16, count: u16, overflow: u32) -> Vec<u8> {
        let mut header = id.to_le_bytes().to_vec();
        header.extend_from_slice(&flags.to_le_bytes());
        header.extend_from_slice(&count.to_le_bytes());
        header.extend_from_slice(&overflow.to_le_bytes());
        header
    }

    fn bucket_value(root: u64, sequence: u64) -> Vec<u8> {
        let mut value = root.to_le_bytes().to_vec();
        value.extend_from_slice(&sequence.to_le_bytes());
        value
    }

    fn meta(root: u64, freelist: u64, high_water_mark: u64, txid: u64) -> Meta {
        Meta { page_size: PAGE as u32, flags: 0, root, root_sequence: 0, freelist, high_water_mark, txid }
    }

    /// A file of meta pages for `meta` (txid at page 0, txid - 1 at page 1) and then `pages`,
    /// which start at page 2.
    fn file(meta: Meta, pages: &[Vec<u8>]) -> Vec<u8> {
        let mut bytes = vec![0u8; 2 * PAGE];
        bytes[..80].copy_from_slice(&encode_meta(&meta, 0));
        bytes[PAGE..PAGE + 80].copy_from_slice(&encode_meta(&Meta { txid: meta.txid - 1, ..meta }, 1));
        for page in pages {
            bytes.extend_from_slice(page);
        }
        bytes
    }

    fn freelist_page(id: u64, ids: &[u64], overflow_count: bool) -> Vec<u8> {
        let count = if overflow_count { FREELIST_COUNT_OVERFLOW } else { ids.len() as u16 };
        let mut page = page_header(id, PAGE_FLAG_FREELIST, count, 0);
        if overflow_count {
            page.extend_from_slice(&(ids.len() as u64).to_le_bytes());
        }
        for free in ids {
            page.extend_from_slice(&free.to_le_bytes());
        }
        page.resize(PAGE, 0);
        page
    }

    fn entries(pairs: &[(&[u8], &[u8])]) -> Vec<(Vec<u8>, Vec<u8>)> {
        pairs.iter().map(|(key, value)| (key.to_vec(), value.to_vec())).collect()
    }

    #[test]
    fn inline_buckets_are_read_like_bbolt_writes_them() {
        let inline_page = leaf_page(0, &[(0, b"a", b"1"), (0, b"b", b"22")]);
        let used = PAGE_HEADER_BYTES + 2 * LEAF_ELEMENT_BYTES + 5;
        let mut value = bucket_value(0, 5);
        value.extend_from_slice(&inline_page[..used]);
        let root = leaf_page(3, &[(LEAF_FLAG_BUCKET, b"alarm", &bucket_value(0, 0)), (LEAF_FLAG_BUCKET, b"inline", &value)]);
        // An empty inline bucket, as bbolt writes etcd's `alarm`: the header and an empty leaf header.
        let empty_inline = [bucket_value(0, 0), leaf_page(0, &[])[..PAGE_HEADER_BYTES].to_vec()].concat();
        let root_with_empty = leaf_page(3, &[(LEAF_FLAG_BUCKET, b"alarm", &empty_inline), (LEAF_FLAG_BUCKET, b"inline", &value)]);
        let database = read(&file(meta(3, FREELIST_NONE, 4, 9), &[freelist_page(2, &[], false), root_with_empty])).expect("read");
        assert_eq!(database.txid, 9);
        assert_eq!(database.buckets[&b"alarm"[..]], Bucket::default());
        assert_eq!(database.buckets[&b"inline"[..]], Bucket { sequence: 5, entries: entries(&[(b"a", b"1"), (b"b", b"22")]) });
        // A bucket value of only the header, with root 0, has no inline page header: refused.
        let error = read(&file(meta(3, FREELIST_NONE, 4, 9), &[freelist_page(2, &[], false), root])).unwrap_err();
        assert!(error.reason.contains("bucket \"alarm\" is inline but its value ends before the inline page's header"), "{error}");
    }

    #[test]
    fn branch_pages_are_walked_in_key_order() {
        let pages = [
            freelist_page(2, &[], false),
            leaf_page(3, &[(0, b"a", b"1"), (0, b"b", b"2")]),
            leaf_page(4, &[(0, b"c", b"3")]),
            branch_page(5, &[(b"a", 3), (b"c", 4)]),
            leaf_page(6, &[(LEAF_FLAG_BUCKET, b"key", &bucket_value(5, 0))]),
        ];
        let database = read(&file(meta(6, 2, 7, 4), &pages)).expect("read");
        assert_eq!(database.buckets[&b"key"[..]].entries, entries(&[(b"a", b"1"), (b"b", b"2"), (b"c", b"3")]));

        // Children out of order: the keys are no longer ascending.
        let mut swapped = pages.clone();
        swapped[3] = branch_page(5, &[(b"c", 4), (b"a", 3)]);
        let error = read(&file(meta(6, 2, 7, 4), &swapped)).unwrap_err();
        assert!(error.reason.contains("key \"a\" follows key \"c\""), "{error}");
    }

    #[test]
    fn cycles_and_shared_pages_are_refused() {
        let cycle = [freelist_page(2, &[], false), branch_page(3, &[(b"a", 3)]), leaf_page(4, &[(LEAF_FLAG_BUCKET, b"key", &bucket_value(3, 0))])];
        let error = read(&file(meta(4, 2, 5, 4), &cycle)).unwrap_err();
        assert!(error.reason.contains("page 3 is reached a second time"), "{error}");
        assert_eq!(error.offset, 3 * PAGE as u64);

        let shared = [
            freelist_page(2, &[], false),
            leaf_page(3, &[(0, b"a", b"1")]),
            leaf_page(4, &[(LEAF_FLAG_BUCKET, b"one", &bucket_value(3, 0)), (LEAF_FLAG_BUCKET, b"two", &bucket_value(3, 0))]),
        ];
        let error = read(&file(meta(4, 2, 5, 4), &shared)).unwrap_err();
        assert!(error.reason.contains("bucket \"two\"") && error.reason.contains("second time"), "{error}");

        let to_freelist = [freelist_page(2, &[], false), leaf_page(3, &[(LEAF_FLAG_BUCKET, b"key", &bucket_value(2, 0))])];
        assert!(read(&file(meta(3, 2, 4, 4), &to_freelist)).is_err());
        let to_meta = [freelist_page(2, &[], false), leaf_page(3, &[(LEAF_FLAG_BUCKET, b"key", &bucket_value(1, 0))])];
        let error = read(&file(meta(3, 2, 4, 4), &to_meta)).unwrap_err();
        assert!(error.reason.contains("page 1, which is not a page of the tree"), "{error}");
    }

    #[test]
    fn nested_buckets_and_plain_root_keys_are_refused() {
        let nested = [
            freelist_page(2, &[], false),
            leaf_page(3, &[(LEAF_FLAG_BUCKET, b"inner", &bucket_value(0, 0))]),
            leaf_page(4, &[(LEAF_FLAG_BUCKET, b"outer", &bucket_value(3, 0))]),
        ];
        let error = read(&file(meta(4, 2, 5, 4), &nested)).unwrap_err();
        assert!(error.reason.contains("bucket \"outer\" holds a nested bucket \"inner\""), "{error}");

        let plain = [freelist_page(2, &[], false), leaf_page(3, &[(0, b"loose", b"1")])];
        let error = read(&file(meta(3, 2, 4, 4), &plain)).unwrap_err();
        assert!(error.reason.contains("plain key \"loose\""), "{error}");
    }

    #[test]
    fn freelists_are_checked_including_the_overflowed_count() {
        let root = leaf_page(3, &[]);
        let free = vec![0u8; PAGE];
        let mut with_ids = file(meta(3, 2, 6, 4), &[freelist_page(2, &[4, 5], false), root.clone(), free.clone(), free.clone()]);
        assert!(read(&with_ids).is_ok());
        let overflowed = file(meta(3, 2, 6, 4), &[freelist_page(2, &[4, 5], true), root.clone(), free.clone(), free.clone()]);
        assert!(read(&overflowed).is_ok());

        let beyond = file(meta(3, 2, 6, 4), &[freelist_page(2, &[4, 9], false), root.clone(), free.clone(), free.clone()]);
        let error = read(&beyond).unwrap_err();
        assert!(error.reason.contains("the freelist lists page 9"), "{error}");

        // A count of 0xFFFF with a huge real count: more ids than fit.
        let mut huge = freelist_page(2, &[], true);
        huge[PAGE_HEADER_BYTES..PAGE_HEADER_BYTES + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        let error = read(&file(meta(3, 2, 4, 4), &[huge, root.clone()])).unwrap_err();
        assert!(error.reason.contains("more than fit in it"), "{error}");

        // Not a freelist page.
        with_ids[2 * PAGE + PAGE_FLAGS_OFFSET] = PAGE_FLAG_LEAF as u8;
        assert!(read(&with_ids).unwrap_err().reason.contains("the freelist page 2 has flags 0x0002"));

        // No freelist synced (etcd's NoFreelistSync): nothing to check.
        assert!(read(&file(meta(3, FREELIST_NONE, 4, 4), &[free, root])).is_ok());
    }

    #[test]
    fn the_valid_meta_with_the_higher_txid_is_used() {
        let buckets = [(b"key".to_vec(), Bucket { sequence: 0, entries: entries(&[(b"a", b"1")]) })].into_iter().collect();
        let bytes = write(&buckets, &WriteOptions { page_size: PAGE as u32, txid: 11 }).expect("write");
        // txid 11 is at page 1, txid 10 at page 0.
        assert_eq!(read(&bytes).expect("read").txid, 11);
        let mut newer_damaged = bytes.clone();
        newer_damaged[PAGE + PAGE_HEADER_BYTES + 40] ^= 1;
        assert_eq!(read(&newer_damaged).expect("falls back to page 0").txid, 10);
        let mut older_damaged = bytes.clone();
        older_damaged[PAGE_HEADER_BYTES] ^= 1;
        assert_eq!(read(&older_damaged).expect("page 1 found by probing page sizes").txid, 11);
        let mut both = newer_damaged.clone();
        both[PAGE_HEADER_BYTES] ^= 1;
        let error = read(&both).unwrap_err();
        assert!(error.reason.contains("meta page 0 is invalid (the magic is"), "{error}");
    }

    #[test]
    fn meta_selection_with_large_pages_probes_the_second_meta() {
        let bytes = write(&BTreeMap::new(), &WriteOptions { page_size: 65536, txid: 3 }).expect("write");
        let mut first_damaged = bytes.clone();
        first_damaged[PAGE_HEADER_BYTES + 60] ^= 1;
        let database = read(&first_damaged).expect("read");
        assert_eq!((database.page_size, database.txid), (65536, 3), "txid 3 is at page 1");
    }

    #[test]
    fn truncated_files_and_bad_high_water_marks_are_refused() {
        let bytes = write(&BTreeMap::new(), &WriteOptions { page_size: PAGE as u32, txid: 2 }).expect("write");
        let error = read(&bytes[..bytes.len() - PAGE]).unwrap_err();
        assert!(error.reason.contains("the file is truncated"), "{error}");
        assert_eq!(error.offset, (bytes.len() - PAGE) as u64);
        let error = read(&file(meta(3, 2, 2, 4), &[])).unwrap_err();
        assert!(error.reason.contains("high-water mark is 2 pages"), "{error}");
        let error = read(&file(meta(3, 2, u64::MAX, 4), &[])).unwrap_err();
        assert!(error.reason.contains("truncated"), "{error}");
    }

    #[test]
    fn elements_outside_their_page_are_refused() {
        let mut root = leaf_page(3, &[(LEAF_FLAG_BUCKET, b"key", &bucket_value(0, 0))]);
        // vsize of element 0: far past the page.
        root[PAGE_HEADER_BYTES + 12..PAGE_HEADER_BYTES + 16].copy_from_slice(&u32::MAX.to_le_bytes());
        let error = read(&file(meta(3, 2, 4, 4), &[freelist_page(2, &[], false), root.clone()])).unwrap_err();
        assert!(error.reason.contains("runs past the page's 1024 bytes"), "{error}");
        assert_eq!(error.offset, 3 * PAGE as u64 + PAGE_HEADER_BYTES as u64);
        // A count of elements that do not fit.
        root[PAGE_COUNT_OFFSET..PAGE_COUNT_OFFSET + 2].copy_from_slice(&0xFFFFu16.to_le_bytes());
        let error = read(&file(meta(3, 2, 4, 4), &[freelist_page(2, &[], false), root])).unwrap_err();
        assert!(error.reason.contains("more than fit in it"), "{error}");
    }

    #[test]
    fn a_page_header_naming_another_page_is_refused() {
        let root = leaf_page(7, &[]);
        let error = read(&file(meta(3, 2, 4, 4), &[freelist_page(2, &[], false), root])).unwrap_err();
        assert!(error.reason.contains("page 3's header says it is page 7"), "{error}");
    }
}

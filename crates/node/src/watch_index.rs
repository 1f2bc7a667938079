//! The watch hub's interval index: which watchers' key ranges contain a given key, without looking
//! at the watchers whose ranges do not. Pure: no IO, no locks, no clock.
//!
//! Single-key watchers sit in a hash map by key. Range watchers (`[start, end)`, or every key from
//! `start` on) sit in a treap ordered by `(start, watcher)` whose every node also knows the largest
//! end in its subtree, so a lookup visits only subtrees that can hold a matching range: expected
//! O(log n + matches) per key, and O(log n) per insert or removal.
//!
//! Invariants:
//! - A watcher is in the index at most once, under the range it was inserted with.
//! - Every node's `largest_end` is the largest `end` of its subtree; every node's priority is at
//!   least its children's (a heap), which keeps the tree's depth logarithmic in expectation.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// A watcher's identity inside the hub.
pub type WatcherKey = u64;

/// The exclusive end of a range; `Unbounded` is above every key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum End {
    Key(Arc<[u8]>),
    Unbounded,
}

impl End {
    fn is_above(&self, key: &[u8]) -> bool {
        match self {
            End::Key(end) => end.as_ref() > key,
            End::Unbounded => true,
        }
    }
}

#[derive(Debug)]
struct Node {
    start: Vec<u8>,
    watcher: WatcherKey,
    end: End,
    priority: u64,
    largest_end: End,
    left: Option<Box<Node>>,
    right: Option<Box<Node>>,
}

impl Node {
    fn update(&mut self) {
        let mut largest = self.end.clone();
        for child in [&self.left, &self.right].into_iter().flatten() {
            if child.largest_end > largest {
                largest = child.largest_end.clone();
            }
        }
        self.largest_end = largest;
    }

    fn orders_before(&self, start: &[u8], watcher: WatcherKey) -> bool {
        (self.start.as_slice(), self.watcher) < (start, watcher)
    }
}

#[derive(Debug, Default)]
pub struct IntervalIndex {
    single_keys: HashMap<Vec<u8>, BTreeSet<WatcherKey>>,
    ranges: Option<Box<Node>>,
    len: usize,
}

impl IntervalIndex {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds a watcher of `key`..`range_end`, read as etcd reads it: an empty `range_end` is the
    /// single key, `[0]` every key from `key` on, anything else `[key, range_end)`.
    pub fn insert(&mut self, key: &[u8], range_end: &[u8], watcher: WatcherKey) {
        self.len += 1;
        if range_end.is_empty() {
            self.single_keys.entry(key.to_vec()).or_default().insert(watcher);
            return;
        }
        let end = if range_end == [0] { End::Unbounded } else { End::Key(Arc::from(range_end)) };
        let node = Box::new(Node { start: key.to_vec(), watcher, largest_end: end.clone(), end, priority: priority(watcher), left: None, right: None });
        self.ranges = Some(insert(self.ranges.take(), node));
    }

    /// Removes a watcher inserted with the same `key` and `range_end`.
    pub fn remove(&mut self, key: &[u8], range_end: &[u8], watcher: WatcherKey) {
        if range_end.is_empty() {
            if let Some(watchers) = self.single_keys.get_mut(key) {
                if watchers.remove(&watcher) {
                    self.len -= 1;
                }
                if watchers.is_empty() {
                    self.single_keys.remove(key);
                }
            }
            return;
        }
        let mut removed = false;
        self.ranges = remove(self.ranges.take(), key, watcher, &mut removed);
        if removed {
            self.len -= 1;
        }
    }

    /// Appends every watcher whose range contains `key` to `matches`.
    pub fn matches(&self, key: &[u8], matches: &mut Vec<WatcherKey>) {
        if let Some(watchers) = self.single_keys.get(key) {
            matches.extend(watchers.iter().copied());
        }
        stab(&self.ranges, key, matches);
    }
}

/// splitmix64 of the watcher key: a fixed pseudo-random heap priority.
fn priority(watcher: WatcherKey) -> u64 {
    let mut z = watcher.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn insert(root: Option<Box<Node>>, node: Box<Node>) -> Box<Node> {
    let Some(mut root) = root else { return node };
    if node.orders_before(&root.start, root.watcher) {
        let left = insert(root.left.take(), node);
        let rotate = left.priority > root.priority;
        root.left = Some(left);
        root.update();
        if rotate {
            return rotate_right(root);
        }
    } else {
        let right = insert(root.right.take(), node);
        let rotate = right.priority > root.priority;
        root.right = Some(right);
        root.update();
        if rotate {
            return rotate_left(root);
        }
    }
    root
}

fn rotate_right(mut root: Box<Node>) -> Box<Node> {
    let mut left = root.left.take().expect("rotated only with a left child");
    root.left = left.right.take();
    root.update();
    left.right = Some(root);
    left.update();
    left
}

fn rotate_left(mut root: Box<Node>) -> Box<Node> {
    let mut right = root.right.take().expect("rotated only with a right child");
    root.right = right.left.take();
    root.update();
    right.left = Some(root);
    right.update();
    right
}

fn remove(root: Option<Box<Node>>, start: &[u8], watcher: WatcherKey, removed: &mut bool) -> Option<Box<Node>> {
    let mut root = root?;
    if root.start.as_slice() == start && root.watcher == watcher {
        *removed = true;
        return merge(root.left.take(), root.right.take());
    }
    if root.orders_before(start, watcher) {
        root.right = remove(root.right.take(), start, watcher, removed);
    } else {
        root.left = remove(root.left.take(), start, watcher, removed);
    }
    root.update();
    Some(root)
}

/// Joins two treaps where every node of `left` orders before every node of `right`.
fn merge(left: Option<Box<Node>>, right: Option<Box<Node>>) -> Option<Box<Node>> {
    match (left, right) {
        (None, right) => right,
        (left, None) => left,
        (Some(mut left), Some(mut right)) => {
            if left.priority > right.priority {
                left.right = merge(left.right.take(), Some(right));
                left.update();
                Some(left)
            } else {
                right.left = merge(Some(left), right.left.take());
                right.update();
                Some(right)
            }
        }
    }
}

fn stab(node: &Option<Box<Node>>, key: &[u8], matches: &mut Vec<WatcherKey>) {
    let Some(node) = node else { return };
    if !node.largest_end.is_above(key) {
        return;
    }
    stab(&node.left, key, matches);
    if node.start.as_slice() <= key {
        if node.end.is_above(key) {
            matches.push(node.watcher);
        }
        // Every node on the right starts at or after this one: only worth a visit if this one
        // starts at or before the key.
        stab(&node.right, key, matches);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// splitmix64, so a failing seed replays exactly.
    struct Random(u64);
    impl Random {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self.0.wrapping_add(1);
            priority(self.0) % n
        }
    }

    fn key(random: &mut Random) -> Vec<u8> {
        format!("k{:02}", random.below(40)).into_bytes()
    }

    #[test]
    fn matches_equal_a_scan_of_every_range_under_inserts_and_removals() {
        for seed in 0..20 {
            let mut random = Random(seed * 1_000_003);
            let mut index = IntervalIndex::default();
            let mut live: Vec<(Vec<u8>, Vec<u8>, WatcherKey)> = Vec::new();
            for watcher in 0..600u64 {
                if !live.is_empty() && random.below(3) == 0 {
                    let (start, end, removed) = live.swap_remove(random.below(live.len() as u64) as usize);
                    index.remove(&start, &end, removed);
                }
                let start = key(&mut random);
                let end = match random.below(4) {
                    0 => Vec::new(),
                    1 => vec![0],
                    _ => {
                        let other = key(&mut random);
                        if other > start {
                            other
                        } else {
                            [start.clone(), b"\xff".to_vec()].concat()
                        }
                    }
                };
                index.insert(&start, &end, watcher);
                live.push((start, end, watcher));
                assert_eq!(index.len(), live.len());
                let probe = key(&mut random);
                let mut found = Vec::new();
                index.matches(&probe, &mut found);
                found.sort_unstable();
                let mut expected: Vec<WatcherKey> =
                    live.iter().filter(|(start, end, _)| strata_mvcc::range_contains(start, end, &probe)).map(|(_, _, watcher)| *watcher).collect();
                expected.sort_unstable();
                assert_eq!(found, expected, "seed {seed} watcher {watcher} probe {probe:?}");
            }
        }
    }

    #[test]
    fn removing_an_unknown_watcher_changes_nothing() {
        let mut index = IntervalIndex::default();
        index.insert(b"a", b"c", 1);
        index.remove(b"a", b"c", 2);
        index.remove(b"b", b"", 1);
        let mut found = Vec::new();
        index.matches(b"b", &mut found);
        assert_eq!((found, index.len()), (vec![1], 1));
    }
}

//! The store against a plain model: a `BTreeMap` of live keys per revision, over random sequences
//! of put, delete, txn, compact and range-at-revision. Checks revisions, create/mod revisions,
//! versions, values, `count`, `more` and the compacted / future-revision errors, and the watch
//! events: every revision's events as the writer reads them, and random event reads (single key,
//! range, from-key; old and new revisions; with and without `prev_kv`) against the model's
//! changes in order.

use std::collections::BTreeMap;

use strata_mvcc::*;

/// splitmix64: a seedable generator, so a failing seed replays exactly.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

type State = BTreeMap<Vec<u8>, KeyValue>;

/// The changes of one revision that changed something, in order: a put (Some) or a delete (None).
type Changes = Vec<(Vec<u8>, Option<Vec<u8>>)>;

struct Model {
    /// `states[r]` is the state at revision `r` (index 0 unused; revision 1 is empty).
    states: Vec<State>,
    /// `changes[r]`: what revision `r` changed, in order.
    changes: Vec<Changes>,
    compacted: i64,
}

impl Model {
    fn current(&self) -> i64 {
        self.states.len() as i64 - 1
    }
    fn latest(&self) -> &State {
        self.states.last().unwrap()
    }
    /// Applies one revision's worth of puts (Some) and deletes (None), if any changes anything.
    fn commit(&mut self, writes: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> bool {
        let revision = self.current() + 1;
        let mut next = self.latest().clone();
        let mut effective = Changes::new();
        for (key, value) in writes {
            match value {
                Some(value) => {
                    let kv = match next.get(&key) {
                        Some(old) => KeyValue { version: old.version + 1, mod_revision: revision, value: value.clone(), ..old.clone() },
                        None => KeyValue { key: key.clone(), create_revision: revision, mod_revision: revision, version: 1, value: value.clone(), lease: 0 },
                    };
                    next.insert(key.clone(), kv);
                    effective.push((key, Some(value)));
                }
                None => {
                    if next.remove(&key).is_some() {
                        effective.push((key, None));
                    }
                }
            }
        }
        let changed = !effective.is_empty();
        if changed {
            self.states.push(next);
            self.changes.push(effective);
        }
        changed
    }

    /// What `Store::events` must answer: the changes of `from..=to` in range, in order; without a
    /// delete at exactly the compacted revision when `historical` (compaction drops those).
    fn events(&self, key: &[u8], range_end: &[u8], from: i64, to: i64, prev_kv: bool, historical: bool) -> Vec<Event> {
        let mut events = Vec::new();
        for revision in from.max(2)..=to.min(self.current()) {
            for (changed, value) in &self.changes[revision as usize] {
                if !range_contains(key, range_end, changed) || (historical && value.is_none() && revision == self.compacted) {
                    continue;
                }
                let (kind, kv) = match value {
                    Some(_) => (EventKind::Put, self.states[revision as usize][changed].clone()),
                    None => (EventKind::Delete, KeyValue { key: changed.clone(), mod_revision: revision, ..KeyValue::default() }),
                };
                let prev_kv = (prev_kv && revision > self.compacted).then(|| self.states[revision as usize - 1].get(changed).cloned()).flatten();
                events.push(Event { kind, kv, prev_kv });
            }
        }
        events
    }
}

fn key(rng: &mut Rng) -> Vec<u8> {
    format!("k{}", rng.below(12)).into_bytes()
}

fn stamp() -> Stamp {
    Stamp::default()
}

fn no_lease(_: i64) -> bool {
    false
}

#[test]
fn store_matches_a_btreemap_model() {
    for seed in 0..60u64 {
        let mut rng = Rng(seed);
        let mut store = Store::new();
        let mut model = Model { states: vec![State::new(), State::new()], changes: vec![Changes::new(), Changes::new()], compacted: -1 };
        for step in 0..400 {
            let context = format!("seed {seed} step {step}");
            let revision_before = model.current();
            match rng.below(13) {
                0..=2 => {
                    let key = key(&mut rng);
                    let value = format!("v{}", rng.next()).into_bytes();
                    let prev = model.latest().get(&key).cloned();
                    let request = PutRequest { key: key.clone(), value: value.clone(), prev_kv: true, ..Default::default() };
                    let (response, changes) = store.put(&request, stamp(), &no_lease).unwrap();
                    model.commit(vec![(key, Some(value))]);
                    assert_eq!(response.revision, model.current(), "{context}");
                    assert_eq!(response.prev_kv, prev, "{context}");
                    assert_eq!(changes.len(), 1);
                }
                3 => {
                    let (a, b) = (key(&mut rng), key(&mut rng));
                    let (start, end) = if a <= b { (a, b) } else { (b, a) };
                    let doomed: Vec<Vec<u8>> = model.latest().range(start.clone()..end.clone()).map(|(k, _)| k.clone()).collect();
                    let request = DeleteRangeRequest { key: start, range_end: end, prev_kv: false };
                    let (response, _) = store.delete_range(&request, stamp());
                    let changed = model.commit(doomed.iter().map(|k| (k.clone(), None)).collect());
                    assert_eq!(response.deleted, doomed.len() as i64, "{context}");
                    assert_eq!(changed, response.deleted > 0);
                    assert_eq!(response.revision, model.current(), "{context}");
                }
                4 | 5 => {
                    // A compare-and-swap txn on one key's version, with a put and a delete.
                    let target = key(&mut rng);
                    let expected_version = rng.below(3) as i64;
                    let actual_version = model.latest().get(&target).map_or(0, |kv| kv.version);
                    let (put_key, delete_key) = (key(&mut rng), key(&mut rng));
                    let value = format!("t{}", rng.next()).into_bytes();
                    let request = TxnRequest {
                        compare: vec![Compare {
                            result: CompareResult::Equal,
                            target: CompareTarget::Version,
                            key: target.clone(),
                            range_end: vec![],
                            operand: CompareOperand::Version(expected_version),
                        }],
                        success: vec![
                            RequestOp::Put(PutRequest { key: put_key.clone(), value: value.clone(), ..Default::default() }),
                            RequestOp::Range(RangeRequest { key: put_key.clone(), ..Default::default() }),
                        ],
                        failure: vec![RequestOp::DeleteRange(DeleteRangeRequest { key: delete_key.clone(), ..Default::default() })],
                    };
                    let (response, _) = store.txn(&request, stamp(), &no_lease).unwrap();
                    let succeeded = actual_version == expected_version;
                    assert_eq!(response.succeeded, succeeded, "{context}");
                    if succeeded {
                        model.commit(vec![(put_key.clone(), Some(value))]);
                        let ResponseOp::Range(range) = &response.responses[1] else { panic!("{context}") };
                        assert_eq!(range.kvs, vec![model.latest()[&put_key].clone()], "{context}: a txn reads its own put");
                    } else {
                        model.commit(vec![(delete_key, None)]);
                    }
                    assert_eq!(response.revision, model.current(), "{context}");
                }
                10 => {
                    // A txn of several changes to distinct keys: one revision, events in op order.
                    let mut keys: Vec<Vec<u8>> = Vec::new();
                    while keys.len() < 3 {
                        let candidate = key(&mut rng);
                        if !keys.contains(&candidate) {
                            keys.push(candidate);
                        }
                    }
                    let value = format!("m{}", rng.next()).into_bytes();
                    let request = TxnRequest {
                        compare: vec![],
                        success: vec![
                            RequestOp::Put(PutRequest { key: keys[0].clone(), value: value.clone(), ..Default::default() }),
                            RequestOp::DeleteRange(DeleteRangeRequest { key: keys[1].clone(), ..Default::default() }),
                            RequestOp::Put(PutRequest { key: keys[2].clone(), value: value.clone(), ..Default::default() }),
                        ],
                        failure: vec![],
                    };
                    let (response, _) = store.txn(&request, stamp(), &no_lease).unwrap();
                    model.commit(vec![(keys[0].clone(), Some(value.clone())), (keys[1].clone(), None), (keys[2].clone(), Some(value))]);
                    assert_eq!(response.revision, model.current(), "{context}");
                }
                11 | 12 => {
                    // A watch's read of history: a single key, a range or every key from one on.
                    let start = key(&mut rng);
                    let range_end = match rng.below(3) {
                        0 => Vec::new(),
                        1 => vec![0],
                        _ => key(&mut rng),
                    };
                    let from = if rng.below(4) == 0 { model.compacted } else { rng.below(model.current() as u64 + 2) as i64 };
                    let to = from + rng.below(model.current() as u64 + 2) as i64;
                    let prev_kv = rng.below(2) == 0;
                    store.mark_durable();
                    let result = store.events(&start, &range_end, from, to, prev_kv);
                    if from < model.compacted {
                        assert_eq!(result, Err(KvError::Compacted), "{context}");
                    } else {
                        let expected = model.events(&start, &range_end, from, to, prev_kv, true);
                        assert_eq!(result, Ok(expected), "{context}: events {start:?}..{range_end:?} at {from}..={to}");
                    }
                }
                6 => {
                    let revision = rng.below(model.current() as u64 + 2) as i64;
                    let result = store.compact(revision);
                    let expected = if revision <= model.compacted {
                        Err(KvError::Compacted)
                    } else if revision > model.current() {
                        Err(KvError::FutureRevision)
                    } else {
                        model.compacted = revision;
                        Ok(model.current())
                    };
                    assert_eq!(result, expected, "{context}");
                    store.mark_durable();
                    // Physical compaction runs later in the node; reads must not depend on it.
                    if rng.below(2) == 0 {
                        while !store.compact_step(3) {}
                    }
                }
                _ => {
                    let revision = rng.below(model.current() as u64 + 2) as i64;
                    let (a, b) = (key(&mut rng), key(&mut rng));
                    let (start, end) = if a <= b { (a, b) } else { (b, a) };
                    let limit = rng.below(4) as i64;
                    let request = RangeRequest { key: start.clone(), range_end: end.clone(), revision, limit, ..Default::default() };
                    store.mark_durable();
                    let result = store.range(&request, store.durable_revision());
                    let at = if revision == 0 { model.current() } else { revision };
                    if revision > model.current() {
                        assert_eq!(result, Err(KvError::FutureRevision), "{context}");
                    } else if at < model.compacted {
                        assert_eq!(result, Err(KvError::Compacted), "{context}");
                    } else {
                        let all: Vec<KeyValue> = model.states[at as usize].range(start..end).map(|(_, kv)| kv.clone()).collect();
                        let response = result.unwrap();
                        assert_eq!(response.count, all.len() as i64, "{context}");
                        let shown = if limit > 0 { all.len().min(limit as usize) } else { all.len() };
                        assert_eq!(response.kvs, all[..shown].to_vec(), "{context}");
                        assert_eq!(response.more, shown < all.len(), "{context}");
                        assert_eq!(response.revision, model.current(), "{context}");
                    }
                }
            }
            store.mark_durable();
            // What the writer hands the watch hub after each durable batch.
            if model.current() > revision_before {
                let revision = model.current();
                let expected = model.events(&[0], &[0], revision, revision, true, false);
                assert_eq!(store.revision_events(revision, revision, true), expected, "{context}: events of revision {revision}");
            }
        }
    }
}

#[test]
fn replaying_changes_rebuilds_the_same_store() {
    let mut rng = Rng(7);
    let mut store = Store::new();
    let mut log: Vec<(i64, Vec<Change>)> = Vec::new();
    for _ in 0..300 {
        let key = key(&mut rng);
        let (revision, changes) = if rng.below(4) == 0 {
            let (response, changes) = store.delete_range(&DeleteRangeRequest { key, ..Default::default() }, stamp());
            (response.revision, changes)
        } else {
            let request = PutRequest { key, value: rng.next().to_le_bytes().to_vec(), ..Default::default() };
            let (response, changes) = store.put(&request, stamp(), &no_lease).unwrap();
            (response.revision, changes)
        };
        if !changes.is_empty() {
            log.push((revision, changes));
        }
    }
    let mut replayed = Store::new();
    for (revision, changes) in &log {
        replayed.apply(*revision, changes, stamp());
    }
    let everything = RangeRequest { key: vec![0], range_end: vec![0], ..Default::default() };
    for revision in 1..=store.current_revision() {
        let request = RangeRequest { revision, ..everything.clone() };
        assert_eq!(store.range(&request, store.current_revision()), replayed.range(&request, replayed.current_revision()));
    }
}

#[test]
fn rollback_undoes_everything_after_the_durable_point() {
    let mut store = Store::new();
    let put = |key: &str, value: &str| PutRequest { key: key.into(), value: value.into(), ..Default::default() };
    store.put(&put("a", "1"), stamp(), &no_lease).unwrap();
    store.mark_durable();
    let before = store.range(&RangeRequest { key: vec![0], range_end: vec![0], ..Default::default() }, 2).unwrap();
    store.put(&put("a", "2"), stamp(), &no_lease).unwrap();
    store.put(&put("b", "1"), stamp(), &no_lease).unwrap();
    store.delete_range(&DeleteRangeRequest { key: "a".into(), ..Default::default() }, stamp());
    store.compact(3).unwrap();
    store.rollback();
    assert_eq!(store.current_revision(), 2);
    assert_eq!(store.compacted_revision(), -1);
    let after = store.range(&RangeRequest { key: vec![0], range_end: vec![0], ..Default::default() }, 2).unwrap();
    assert_eq!(before, after);
    let (response, _) = store.put(&put("c", "1"), stamp(), &no_lease).unwrap();
    assert_eq!(response.revision, 3);
}

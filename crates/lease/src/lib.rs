//! Leases with etcd's exact semantics: TTL-bound handles that keys are attached to, granted,
//! renewed (keep-alive), revoked (their keys are deleted) and expired. Pure: no IO and no clock;
//! every call that needs the time takes it as milliseconds of a logical clock that only moves
//! forward (the node passes a monotonic clock).
//!
//! Two types:
//! - [`Lessor`]: the leases by id, each with its granted TTL, its expiry and its attached keys, and
//!   the reverse map key → lease.
//! - [`LeaseBatch`]: grants, revokes and key attachments evaluated by the writer but not yet
//!   durable. Later requests of the same batch see them (through [`LeaseBatch::exists`] and
//!   [`LeaseBatch::revoke`]); the lessor sees them only when the batch is durable
//!   ([`Lessor::apply`]). A batch that cannot be made durable is dropped, leaving the lessor as it
//!   was.
//!
//! Invariants:
//! - A key is attached to at most one lease, and `key → lease` holds exactly when the lease's key
//!   set holds the key. Only live keys are attached: a put moves its key to the put's lease (or
//!   detaches it, lease 0), a delete detaches it.
//! - Every lease has exactly one entry in the expiry index, at its current expiry.
//! - Lease ids are never 0 ([`LEASE_NONE`], "no lease"); ids the lessor chooses are positive.
//! - Expiry and renewals are not durable state: only grants (with their TTL), revokes and the
//!   key attachments are logged; after a restart [`Lessor::promote`] gives every lease its full
//!   TTL again, as etcd does when a new leader takes over.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A lease's id, as etcd's `int64` on the wire.
pub type LeaseId = i64;

/// "No lease": what a key without a lease carries, and the id that asks the server to choose one.
pub const LEASE_NONE: LeaseId = 0;

/// etcd's `MaxLeaseTTL`: a grant above it fails with `etcdserver: too large lease TTL`.
pub const LEASE_TTL_MAX_SECONDS: i64 = 9_000_000_000;

/// etcd's minimum TTL: `ceil(3/2 × election timeout)` = 1.5 s → 2 s with etcd's defaults
/// (heartbeat 100 ms, election timeout 1000 ms). A smaller requested TTL (zero and negative
/// included) is raised to it, as etcd 3.4 does.
pub const LEASE_TTL_MIN_SECONDS: i64 = 2;

const MILLIS_PER_SECOND: u64 = 1000;

/// Errors of lease requests, each one of etcd's (see `strata-etcd-api`'s error table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseError {
    /// `etcdserver: requested lease not found`
    NotFound,
    /// `etcdserver: lease already exists`
    Exists,
    /// `etcdserver: too large lease TTL`
    TtlTooLarge,
}

impl std::fmt::Display for LeaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LeaseError::NotFound => "etcdserver: requested lease not found",
            LeaseError::Exists => "etcdserver: lease already exists",
            LeaseError::TtlTooLarge => "etcdserver: too large lease TTL",
        })
    }
}

impl std::error::Error for LeaseError {}

/// What a grant gave: the lease's id (chosen by the lessor when the request asked for 0) and its
/// TTL (the requested one, raised to the minimum).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Granted {
    pub id: LeaseId,
    pub ttl_seconds: i64,
}

/// The answer to a keep-alive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Renewal {
    /// The lease expires `ttl_seconds` from now again.
    Renewed {
        ttl_seconds: i64,
    },
    /// The lease has expired and waits for its revocation; etcd answers once it is gone.
    Expired,
    NotFound,
}

/// A lease as LeaseTimeToLive shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeToLive {
    pub id: LeaseId,
    /// Whole seconds left, truncated toward zero as etcd's `int64(Remaining().Seconds())`.
    pub remaining_seconds: i64,
    pub granted_ttl_seconds: i64,
    /// The attached keys in key order (only when asked for).
    pub keys: Vec<Vec<u8>>,
}

#[derive(Clone, Debug)]
struct Lease {
    ttl_seconds: i64,
    expiry_millis: u64,
    keys: BTreeSet<Vec<u8>>,
}

/// The id seed etcd's request-id generator would use: the member id's low 16 bits above 40 bits
/// of Unix milliseconds shifted by 8. Ids chosen from it are unique for this member across
/// restarts as long as the wall clock moves forward; the lessor skips ids in use regardless.
pub fn id_seed(member_id: u64, wall_clock_millis: u64) -> u64 {
    const MEMBER_BITS_SHIFT: u32 = 48;
    const TIME_BITS_MASK: u64 = (1 << 40) - 1;
    const TIME_SHIFT: u32 = 8;
    ((member_id & 0xffff) << MEMBER_BITS_SHIFT) | ((wall_clock_millis & TIME_BITS_MASK) << TIME_SHIFT)
}

/// etcd's checks of a grant, in etcd's order: a TTL above the maximum first, then an id in use;
/// a TTL below the minimum is raised. Returns the TTL to grant.
fn check_grant(ttl_seconds: i64, exists: bool) -> Result<i64, LeaseError> {
    if ttl_seconds > LEASE_TTL_MAX_SECONDS {
        return Err(LeaseError::TtlTooLarge);
    }
    if exists {
        return Err(LeaseError::Exists);
    }
    Ok(ttl_seconds.max(LEASE_TTL_MIN_SECONDS))
}

fn expiry_at(now_millis: u64, ttl_seconds: i64) -> u64 {
    let ttl_millis = u64::try_from(ttl_seconds).unwrap_or(0).saturating_mul(MILLIS_PER_SECOND);
    now_millis.saturating_add(ttl_millis)
}

/// The leases, their keys and their expiry. See the crate documentation for its invariants.
#[derive(Clone, Debug, Default)]
pub struct Lessor {
    leases: BTreeMap<LeaseId, Lease>,
    key_leases: HashMap<Vec<u8>, LeaseId>,
    /// `(expiry, id)` of every lease, soonest first.
    expiries: BTreeSet<(u64, LeaseId)>,
    /// The last value of the id generator.
    id_counter: u64,
}

impl Lessor {
    /// An empty lessor whose chosen ids start after `id_seed` (see [`id_seed`]).
    pub fn new(id_seed: u64) -> Lessor {
        Lessor { id_counter: id_seed, ..Lessor::default() }
    }

    pub fn contains(&self, id: LeaseId) -> bool {
        self.leases.contains_key(&id)
    }

    pub fn len(&self) -> usize {
        self.leases.len()
    }

    pub fn is_empty(&self) -> bool {
        self.leases.is_empty()
    }

    /// The lease `key` is attached to, [`LEASE_NONE`] if none.
    pub fn lease_of(&self, key: &[u8]) -> LeaseId {
        self.key_leases.get(key).copied().unwrap_or(LEASE_NONE)
    }

    /// The keys attached to `id`, in key order (empty for an unknown lease).
    pub fn keys(&self, id: LeaseId) -> Vec<Vec<u8>> {
        self.leases.get(&id).map(|lease| lease.keys.iter().cloned().collect()).unwrap_or_default()
    }

    /// A new positive id that `taken` does not claim and no lease has.
    pub fn choose_id(&mut self, taken: &dyn Fn(LeaseId) -> bool) -> LeaseId {
        loop {
            self.id_counter = self.id_counter.wrapping_add(1);
            let id = (self.id_counter & i64::MAX as u64) as LeaseId;
            if id != LEASE_NONE && !self.leases.contains_key(&id) && !taken(id) {
                return id;
            }
        }
    }

    /// etcd's Grant: `id` 0 lets the lessor choose. The lease expires `ttl` after `now_millis`.
    pub fn grant(&mut self, id: LeaseId, ttl_seconds: i64, now_millis: u64) -> Result<Granted, LeaseError> {
        let id = if id == LEASE_NONE { self.choose_id(&|_| false) } else { id };
        let ttl_seconds = check_grant(ttl_seconds, self.contains(id))?;
        self.insert(id, ttl_seconds, now_millis);
        Ok(Granted { id, ttl_seconds })
    }

    fn insert(&mut self, id: LeaseId, ttl_seconds: i64, now_millis: u64) {
        if let Some(previous) = self.leases.remove(&id) {
            // Not reachable through `grant`; keeps the invariants if a batch grants a stale id.
            self.expiries.remove(&(previous.expiry_millis, id));
            for key in previous.keys {
                self.key_leases.remove(&key);
            }
        }
        let expiry_millis = expiry_at(now_millis, ttl_seconds);
        self.expiries.insert((expiry_millis, id));
        self.leases.insert(id, Lease { ttl_seconds, expiry_millis, keys: BTreeSet::new() });
    }

    /// etcd's Revoke: removes the lease and returns the keys that were attached to it, in key
    /// order. The caller deletes them (in one revision).
    pub fn revoke(&mut self, id: LeaseId) -> Result<Vec<Vec<u8>>, LeaseError> {
        let lease = self.leases.remove(&id).ok_or(LeaseError::NotFound)?;
        self.expiries.remove(&(lease.expiry_millis, id));
        for key in &lease.keys {
            self.key_leases.remove(key);
        }
        Ok(lease.keys.into_iter().collect())
    }

    /// A put of `key` with `lease`: detaches the key from its previous lease and attaches it to
    /// `lease` ([`LEASE_NONE`]: to none). Returns false, leaving the key detached, if `lease`
    /// does not exist.
    pub fn attach(&mut self, key: &[u8], lease: LeaseId) -> bool {
        self.detach(key);
        if lease == LEASE_NONE {
            return true;
        }
        let Some(entry) = self.leases.get_mut(&lease) else { return false };
        entry.keys.insert(key.to_vec());
        self.key_leases.insert(key.to_vec(), lease);
        true
    }

    /// A delete of `key`: detaches it from its lease, if any.
    pub fn detach(&mut self, key: &[u8]) {
        if let Some(previous) = self.key_leases.remove(key) {
            if let Some(lease) = self.leases.get_mut(&previous) {
                lease.keys.remove(key);
            }
        }
    }

    /// etcd's Renew (one keep-alive): the lease expires its TTL after `now_millis` again. An
    /// expired lease is not renewed; it waits for its revocation.
    pub fn renew(&mut self, id: LeaseId, now_millis: u64) -> Renewal {
        let Some(lease) = self.leases.get_mut(&id) else { return Renewal::NotFound };
        if lease.expiry_millis <= now_millis {
            return Renewal::Expired;
        }
        self.expiries.remove(&(lease.expiry_millis, id));
        lease.expiry_millis = expiry_at(now_millis, lease.ttl_seconds);
        self.expiries.insert((lease.expiry_millis, id));
        Renewal::Renewed { ttl_seconds: lease.ttl_seconds }
    }

    /// etcd's TimeToLive at `now_millis`; `None` for an unknown lease. An expired lease that is
    /// not yet revoked is still shown (with 0 or fewer seconds left), as etcd shows it.
    pub fn time_to_live(&self, id: LeaseId, now_millis: u64, with_keys: bool) -> Option<TimeToLive> {
        let lease = self.leases.get(&id)?;
        let remaining_millis = i128::from(lease.expiry_millis) - i128::from(now_millis);
        let remaining_seconds = i64::try_from(remaining_millis / i128::from(MILLIS_PER_SECOND)).unwrap_or(i64::MAX);
        Some(TimeToLive {
            id,
            remaining_seconds,
            granted_ttl_seconds: lease.ttl_seconds,
            keys: if with_keys { lease.keys.iter().cloned().collect() } else { Vec::new() },
        })
    }

    /// etcd's Leases: every lease's id, soonest expiry first.
    pub fn leases(&self) -> Vec<LeaseId> {
        self.expiries.iter().map(|&(_, id)| id).collect()
    }

    /// Up to `count_max` leases expired at `now_millis` (expiry at or before it), soonest first.
    pub fn expired(&self, now_millis: u64, count_max: usize) -> Vec<LeaseId> {
        self.expiries.range(..=(now_millis, LeaseId::MAX)).take(count_max).map(|&(_, id)| id).collect()
    }

    /// Every lease expires its full TTL after `now_millis`: what etcd does when a member becomes
    /// the leader, and Strata at start-up.
    pub fn promote(&mut self, now_millis: u64) {
        self.expiries.clear();
        for (&id, lease) in &mut self.leases {
            lease.expiry_millis = expiry_at(now_millis, lease.ttl_seconds);
            self.expiries.insert((lease.expiry_millis, id));
        }
    }

    /// Applies a batch that is now durable, in the order its requests were evaluated. Grants
    /// start their TTL at `now_millis`.
    pub fn apply(&mut self, batch: LeaseBatch, now_millis: u64) {
        for operation in batch.operations {
            match operation {
                LeaseOperation::Grant { id, ttl_seconds } => self.insert(id, ttl_seconds, now_millis),
                LeaseOperation::Revoke { id } => {
                    let _ = self.revoke(id);
                }
                LeaseOperation::Attach { key, lease } => {
                    self.attach(&key, lease);
                }
            }
        }
    }
}

/// One change a batch makes to the lessor.
#[derive(Clone, Debug, PartialEq, Eq)]
enum LeaseOperation {
    Grant { id: LeaseId, ttl_seconds: i64 },
    Revoke { id: LeaseId },
    Attach { key: Vec<u8>, lease: LeaseId },
}

/// Lease changes of a batch that is not durable yet: the writer evaluates against the lessor as
/// this batch would leave it, and hands the batch to [`Lessor::apply`] once it is durable.
#[derive(Clone, Debug, Default)]
pub struct LeaseBatch {
    operations: Vec<LeaseOperation>,
    /// Leases this batch granted (`Some(ttl)`) or revoked (`None`), latest first-hand state.
    leases: HashMap<LeaseId, Option<i64>>,
    /// Keys this batch attached ([`LEASE_NONE`]: detached), latest state.
    keys: HashMap<Vec<u8>, LeaseId>,
}

impl LeaseBatch {
    pub fn new() -> LeaseBatch {
        LeaseBatch::default()
    }

    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }

    /// Whether lease `id` exists once this batch is applied to `lessor`.
    pub fn exists(&self, lessor: &Lessor, id: LeaseId) -> bool {
        match self.leases.get(&id) {
            Some(state) => state.is_some(),
            None => lessor.contains(id),
        }
    }

    /// The lease `key` is attached to once this batch is applied to `lessor`.
    pub fn lease_of(&self, lessor: &Lessor, key: &[u8]) -> LeaseId {
        self.keys.get(key).copied().unwrap_or_else(|| lessor.lease_of(key))
    }

    /// etcd's Grant, evaluated: `id` 0 lets the lessor choose (an id neither the lessor nor this
    /// batch uses).
    pub fn grant(&mut self, lessor: &mut Lessor, id: LeaseId, ttl_seconds: i64) -> Result<Granted, LeaseError> {
        let id = if id == LEASE_NONE { lessor.choose_id(&|candidate| self.leases.get(&candidate).is_some_and(Option::is_some)) } else { id };
        let ttl_seconds = check_grant(ttl_seconds, self.exists(lessor, id))?;
        self.leases.insert(id, Some(ttl_seconds));
        self.operations.push(LeaseOperation::Grant { id, ttl_seconds });
        Ok(Granted { id, ttl_seconds })
    }

    /// etcd's Revoke, evaluated: returns the keys attached to the lease (by the lessor or by this
    /// batch), in key order. The caller deletes them and reports the deletes with
    /// [`LeaseBatch::detach`].
    pub fn revoke(&mut self, lessor: &Lessor, id: LeaseId) -> Result<Vec<Vec<u8>>, LeaseError> {
        if !self.exists(lessor, id) {
            return Err(LeaseError::NotFound);
        }
        let mut keys: BTreeSet<Vec<u8>> = lessor.keys(id).into_iter().filter(|key| self.keys.get(key).is_none_or(|&lease| lease == id)).collect();
        keys.extend(self.keys.iter().filter(|&(_, &lease)| lease == id).map(|(key, _)| key.clone()));
        for key in &keys {
            self.keys.insert(key.clone(), LEASE_NONE);
        }
        self.leases.insert(id, None);
        self.operations.push(LeaseOperation::Revoke { id });
        Ok(keys.into_iter().collect())
    }

    /// A put of `key` with `lease` ([`LEASE_NONE`]: none) was evaluated.
    pub fn attach(&mut self, key: &[u8], lease: LeaseId) {
        self.keys.insert(key.to_vec(), lease);
        self.operations.push(LeaseOperation::Attach { key: key.to_vec(), lease });
    }

    /// A delete of `key` was evaluated.
    pub fn detach(&mut self, key: &[u8]) {
        self.attach(key, LEASE_NONE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND_MILLIS: u64 = 1000;

    fn key(text: &str) -> Vec<u8> {
        text.as_bytes().to_vec()
    }

    #[test]
    fn grant_with_a_chosen_id_keeps_it_and_refuses_a_duplicate() {
        let mut lessor = Lessor::new(0);
        assert_eq!(lessor.grant(42, 10, 0), Ok(Granted { id: 42, ttl_seconds: 10 }));
        assert_eq!(lessor.grant(42, 10, 0), Err(LeaseError::Exists));
        // etcd checks the TTL before the id.
        assert_eq!(lessor.grant(42, LEASE_TTL_MAX_SECONDS + 1, 0), Err(LeaseError::TtlTooLarge));
        assert!(lessor.contains(42));
        assert_eq!(lessor.len(), 1);
    }

    #[test]
    fn server_chosen_ids_are_unique_positive_and_skip_ids_in_use() {
        let mut lessor = Lessor::new(id_seed(0xabcd_1234, 1_700_000_000_000));
        let first = lessor.grant(LEASE_NONE, 10, 0).unwrap().id;
        lessor.grant(first + 1, 10, 0).unwrap();
        let second = lessor.grant(LEASE_NONE, 10, 0).unwrap().id;
        assert!(first > 0 && second > 0);
        assert_ne!(second, first + 1, "an id in use is skipped");
        assert_ne!(first, second);
        assert_eq!(first >> 48, 0x1234, "the member id's low bits lead, as in etcd");
        // The generator wraps around to positive ids and never yields 0.
        let mut lessor = Lessor::new(u64::MAX - 1);
        let ids: Vec<LeaseId> = (0..3).map(|_| lessor.grant(LEASE_NONE, 10, 0).unwrap().id).collect();
        assert!(ids.iter().all(|&id| id > 0), "{ids:?}");
    }

    #[test]
    fn ttl_below_the_minimum_is_raised_and_above_the_maximum_refused() {
        let mut lessor = Lessor::new(0);
        assert_eq!(lessor.grant(1, 1, 0).unwrap().ttl_seconds, LEASE_TTL_MIN_SECONDS);
        assert_eq!(lessor.grant(2, 0, 0).unwrap().ttl_seconds, LEASE_TTL_MIN_SECONDS);
        assert_eq!(lessor.grant(3, -5, 0).unwrap().ttl_seconds, LEASE_TTL_MIN_SECONDS);
        assert_eq!(lessor.grant(4, LEASE_TTL_MAX_SECONDS, 0).unwrap().ttl_seconds, LEASE_TTL_MAX_SECONDS);
        assert_eq!(lessor.grant(5, LEASE_TTL_MAX_SECONDS + 1, 0), Err(LeaseError::TtlTooLarge));
        assert!(!lessor.contains(5));
        assert_eq!(LeaseError::TtlTooLarge.to_string(), "etcdserver: too large lease TTL");
    }

    #[test]
    fn keys_follow_puts_and_deletes() {
        let mut lessor = Lessor::new(0);
        lessor.grant(1, 10, 0).unwrap();
        lessor.grant(2, 10, 0).unwrap();
        assert!(lessor.attach(&key("b"), 1));
        assert!(lessor.attach(&key("a"), 1));
        assert_eq!(lessor.keys(1), vec![key("a"), key("b")]);
        // A put that moves the key to another lease detaches it from the first.
        assert!(lessor.attach(&key("a"), 2));
        assert_eq!((lessor.keys(1), lessor.keys(2)), (vec![key("b")], vec![key("a")]));
        assert_eq!(lessor.lease_of(b"a"), 2);
        // A put without a lease, and a delete, detach.
        assert!(lessor.attach(&key("a"), LEASE_NONE));
        lessor.detach(b"b");
        assert!(lessor.keys(1).is_empty() && lessor.keys(2).is_empty());
        assert_eq!(lessor.lease_of(b"a"), LEASE_NONE);
        // An unknown lease attaches nothing.
        assert!(!lessor.attach(&key("c"), 99));
        assert_eq!(lessor.lease_of(b"c"), LEASE_NONE);
    }

    #[test]
    fn revoke_returns_the_keys_to_delete_and_forgets_the_lease() {
        let mut lessor = Lessor::new(0);
        lessor.grant(1, 10, 0).unwrap();
        lessor.attach(&key("z"), 1);
        lessor.attach(&key("y"), 1);
        assert_eq!(lessor.revoke(1), Ok(vec![key("y"), key("z")]));
        assert_eq!(lessor.lease_of(b"y"), LEASE_NONE);
        assert_eq!(lessor.revoke(1), Err(LeaseError::NotFound));
        assert!(lessor.leases().is_empty() && lessor.expired(u64::MAX, usize::MAX).is_empty());
    }

    #[test]
    fn renew_restarts_the_ttl_unless_expired() {
        let mut lessor = Lessor::new(0);
        lessor.grant(1, 10, 0).unwrap();
        assert_eq!(lessor.renew(1, 5 * SECOND_MILLIS), Renewal::Renewed { ttl_seconds: 10 });
        assert!(lessor.expired(14 * SECOND_MILLIS, usize::MAX).is_empty());
        assert_eq!(lessor.expired(15 * SECOND_MILLIS, usize::MAX), vec![1]);
        assert_eq!(lessor.renew(1, 15 * SECOND_MILLIS), Renewal::Expired);
        assert_eq!(lessor.renew(2, 0), Renewal::NotFound);
    }

    #[test]
    fn time_to_live_truncates_remaining_seconds_and_lists_keys_on_request() {
        let mut lessor = Lessor::new(0);
        lessor.grant(1, 10, 1000).unwrap();
        lessor.attach(&key("k2"), 1);
        lessor.attach(&key("k1"), 1);
        let shown = lessor.time_to_live(1, 1001, true).unwrap();
        assert_eq!(shown, TimeToLive { id: 1, remaining_seconds: 9, granted_ttl_seconds: 10, keys: vec![key("k1"), key("k2")] });
        assert!(lessor.time_to_live(1, 1001, false).unwrap().keys.is_empty());
        // Expired but not yet revoked: still shown, with no time left (etcd truncates toward 0).
        assert_eq!(lessor.time_to_live(1, 11_500, false).unwrap().remaining_seconds, 0);
        assert_eq!(lessor.time_to_live(1, 12_000, false).unwrap().remaining_seconds, -1);
        assert_eq!(lessor.time_to_live(2, 0, true), None);
    }

    #[test]
    fn leases_are_listed_soonest_expiry_first() {
        let mut lessor = Lessor::new(0);
        lessor.grant(7, 30, 0).unwrap();
        lessor.grant(8, 10, 0).unwrap();
        lessor.grant(9, 20, 0).unwrap();
        assert_eq!(lessor.leases(), vec![8, 9, 7]);
        assert_eq!(lessor.renew(9, 15 * SECOND_MILLIS), Renewal::Renewed { ttl_seconds: 20 });
        assert_eq!(lessor.leases(), vec![8, 7, 9]);
    }

    #[test]
    fn expired_lists_due_leases_up_to_a_count() {
        let mut lessor = Lessor::new(0);
        for id in 1..=5 {
            lessor.grant(id, id * 10, 0).unwrap();
        }
        assert!(lessor.expired(10 * SECOND_MILLIS - 1, usize::MAX).is_empty());
        assert_eq!(lessor.expired(30 * SECOND_MILLIS, usize::MAX), vec![1, 2, 3]);
        assert_eq!(lessor.expired(u64::MAX, 2), vec![1, 2]);
    }

    #[test]
    fn promote_gives_every_lease_its_full_ttl_from_now() {
        let mut lessor = Lessor::new(0);
        lessor.grant(1, 10, 0).unwrap();
        lessor.grant(2, 5, 0).unwrap();
        assert_eq!(lessor.expired(60 * SECOND_MILLIS, usize::MAX).len(), 2);
        lessor.promote(60 * SECOND_MILLIS);
        assert!(lessor.expired(64 * SECOND_MILLIS, usize::MAX).is_empty());
        assert_eq!(lessor.time_to_live(1, 60 * SECOND_MILLIS, false).unwrap().remaining_seconds, 10);
        assert_eq!(lessor.expired(65 * SECOND_MILLIS, usize::MAX), vec![2]);
        assert_eq!(lessor.leases(), vec![2, 1]);
    }

    #[test]
    fn a_batch_is_seen_by_later_requests_and_by_the_lessor_only_once_applied() {
        let mut lessor = Lessor::new(100);
        lessor.grant(1, 10, 0).unwrap();
        lessor.attach(&key("old"), 1);
        let mut batch = LeaseBatch::new();
        let granted = batch.grant(&mut lessor, LEASE_NONE, 1).unwrap();
        assert_eq!(granted.ttl_seconds, LEASE_TTL_MIN_SECONDS);
        assert!(batch.exists(&lessor, granted.id) && !lessor.contains(granted.id));
        assert_eq!(batch.grant(&mut lessor, granted.id, 10), Err(LeaseError::Exists));
        assert_eq!(batch.grant(&mut lessor, 1, 10), Err(LeaseError::Exists));
        // A chosen id skips ids the batch already granted.
        let other = batch.grant(&mut lessor, LEASE_NONE, 10).unwrap().id;
        assert_ne!(other, granted.id);
        batch.attach(b"new", 1);
        batch.attach(b"moved", granted.id);
        // Revoke sees the lessor's keys and the batch's, minus keys the batch moved away.
        batch.attach(b"old2", 1);
        batch.attach(b"old2", granted.id);
        assert_eq!(batch.revoke(&lessor, 1), Ok(vec![key("new"), key("old")]));
        assert!(!batch.exists(&lessor, 1) && lessor.contains(1));
        assert_eq!(batch.revoke(&lessor, 1), Err(LeaseError::NotFound));
        assert_eq!(batch.lease_of(&lessor, b"old"), LEASE_NONE);
        assert_eq!(batch.lease_of(&lessor, b"old2"), granted.id);
        // A lease granted and revoked in the same batch is gone; granted again, it is back.
        let short = batch.grant(&mut lessor, 500, 10).unwrap().id;
        assert_eq!(batch.revoke(&lessor, short), Ok(vec![]));
        assert!(batch.grant(&mut lessor, 500, 10).is_ok());

        lessor.apply(batch, 2 * SECOND_MILLIS);
        assert!(!lessor.contains(1));
        assert!(lessor.contains(granted.id) && lessor.contains(other) && lessor.contains(500));
        assert_eq!(lessor.keys(granted.id), vec![key("moved"), key("old2")]);
        assert_eq!(lessor.lease_of(b"old"), LEASE_NONE);
        assert_eq!(lessor.time_to_live(granted.id, 2 * SECOND_MILLIS, false).unwrap().remaining_seconds, LEASE_TTL_MIN_SECONDS);
    }

    #[test]
    fn a_dropped_batch_leaves_the_lessor_unchanged() {
        let mut lessor = Lessor::new(0);
        lessor.grant(1, 10, 0).unwrap();
        lessor.attach(&key("a"), 1);
        let mut batch = LeaseBatch::new();
        batch.revoke(&lessor, 1).unwrap();
        batch.grant(&mut lessor, 2, 10).unwrap();
        drop(batch);
        assert!(lessor.contains(1) && !lessor.contains(2));
        assert_eq!(lessor.keys(1), vec![key("a")]);
    }
}

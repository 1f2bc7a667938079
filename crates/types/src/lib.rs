//! Strata's shared vocabulary: the few value types every layer speaks, and the limits that bound
//! them. Nothing here does IO.
//!
//! Invariants:
//! - A [`Revision`] is node-local, starts at 1 for an empty store (as etcd's does) and grows by one
//!   per applied change.
//! - An [`Hlc`] packs 48 bits of wall-clock milliseconds above a 16-bit logical counter, so plain
//!   integer order is hybrid-clock order.

pub mod formats;

/// A node-local MVCC revision, as etcd counts them (`int64` on the wire).
pub type Revision = i64;

/// The revision of an empty store. etcd's first write gets revision 2.
pub const REVISION_INITIAL: Revision = 1;

/// A member's identity inside a cluster; the `member_id` etcd clients see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NodeId(pub u64);

/// A hybrid logical clock stamp: 48 bits of Unix milliseconds, 16 bits of counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hlc(pub u64);

impl Hlc {
    const COUNTER_BITS: u32 = 16;
    const COUNTER_MASK: u64 = (1 << Self::COUNTER_BITS) - 1;

    pub fn new(millis: u64, counter: u16) -> Hlc {
        Hlc((millis << Self::COUNTER_BITS) | u64::from(counter))
    }

    pub fn millis(self) -> u64 {
        self.0 >> Self::COUNTER_BITS
    }

    pub fn counter(self) -> u16 {
        (self.0 & Self::COUNTER_MASK) as u16
    }

    /// The stamp for a local event at wall-clock `now_millis`, strictly after `self`.
    /// A wall clock that goes backwards only advances the counter.
    pub fn tick(self, now_millis: u64) -> Hlc {
        if now_millis > self.millis() {
            Hlc::new(now_millis, 0)
        } else if self.counter() < u16::MAX {
            Hlc::new(self.millis(), self.counter() + 1)
        } else {
            Hlc::new(self.millis() + 1, 0)
        }
    }
}

/// Where a write was first accepted: the origin node and its per-origin sequence number.
/// Sequences start at 1 and are dense per origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Origin {
    pub node: NodeId,
    pub sequence: u64,
}

/// Limits shared by more than one layer. Units come last in every name.
pub mod limits {
    /// etcd's default `--max-request-bytes` (1.5 MiB).
    pub const REQUEST_BYTES_MAX_DEFAULT: u64 = 1536 * 1024;
    /// etcd adds this much to `--max-request-bytes` for gRPC's own receive limit.
    pub const GRPC_OVERHEAD_BYTES: u64 = 512 * 1024;
    /// etcd's default `--max-txn-ops`.
    pub const TXN_OPS_MAX_DEFAULT: u64 = 128;
    /// etcd's default `--quota-backend-bytes` (2 GiB).
    pub const QUOTA_BACKEND_BYTES_DEFAULT: u64 = 2 * 1024 * 1024 * 1024;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hlc_orders_by_millis_then_counter() {
        let a = Hlc::new(10, 5);
        assert_eq!((a.millis(), a.counter()), (10, 5));
        assert!(a < Hlc::new(10, 6));
        assert!(Hlc::new(10, u16::MAX) < Hlc::new(11, 0));
    }

    #[test]
    fn hlc_tick_is_strictly_monotonic_when_the_clock_goes_back() {
        let a = Hlc::new(100, 0);
        assert_eq!(a.tick(200), Hlc::new(200, 0));
        assert_eq!(a.tick(50), Hlc::new(100, 1));
        assert_eq!(Hlc::new(100, u16::MAX).tick(100), Hlc::new(101, 0));
    }
}

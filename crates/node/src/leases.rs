//! The node's side of leases: replaying lease log entries into the [`Lessor`], the lease reads
//! (keep-alive, time-to-live, list), and the expiry task.
//!
//! How lease state stays consistent with the store:
//! - The writer evaluates LeaseGrant and LeaseRevoke in order with the other requests of a batch,
//!   against the durable lessor plus a [`strata_lease::LeaseBatch`] of the batch's own lease
//!   changes (grants, revokes, and the key attachments of every put and delete), so later requests
//!   of the batch see earlier ones. The lessor takes the batch only once it is durable, under the
//!   store's write lock; a batch that fails is dropped with the store's rollback.
//! - A revoke logs one entry: the deletes of the lease's keys (one revision) and the lease's id.
//! - Replay rebuilds the lessor from grants, revokes and the puts' and deletes' lease
//!   attachments, then promotes it: every lease gets its full TTL back (expiry is not logged).
//! - Expiry goes through the same path as any write: this task finds expired leases on a timer
//!   and queues a `LeaseRevoke` for each, exactly as [`Node::write`] queues a client's. Keep-alive
//!   renewals change only the in-memory expiry and are not logged, as in etcd.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Duration;

use strata_lease::{LeaseBatch, LeaseError, LeaseId, Lessor, Renewal, TimeToLive, LEASE_NONE};
use strata_mvcc::{Change, DeleteRangeRequest, RequestOp, Stamp, Store, TxnRequest};
use tokio::sync::{mpsc, oneshot};

use crate::writer::Command;
use crate::{LogChangeKind, LogEntry, Node, NodeError, Shared, WriteRequest};

/// How often the expiry task looks for expired leases.
pub const LEASE_EXPIRY_CHECK_INTERVAL_MILLIS: u64 = 100;
/// Expired leases revoked per check, at most: etcd revokes at most 1000 leases a second.
pub const LEASE_REVOKES_PER_CHECK_MAX: usize = 100;
/// How long a keep-alive of an expired lease waits for the lease's revocation before it answers
/// that the lease is gone (etcd waits for the revocation too).
const LEASE_REVOCATION_WAIT_MAX_MILLIS: u64 = 5000;

impl Shared {
    /// Now, on the lease clock.
    pub(crate) fn lease_now_millis(&self) -> u64 {
        u64::try_from(self.lease_clock.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub(crate) fn lessor(&self) -> std::sync::MutexGuard<'_, Lessor> {
        self.lessor.lock().expect("lessor lock poisoned")
    }
}

/// Whether an entry only grants or revokes a lease, changing no key (and so no revision).
pub(crate) fn is_lease_only(entry: &LogEntry) -> bool {
    entry.changes.is_empty() && (entry.lease_grant.is_some() || entry.lease_revoke.is_some())
}

/// Replays one entry's lease effects: key attachments of its puts and deletes, then its grant or
/// revoke. A put to a lease that was never granted means the log and the lessor disagree.
pub(crate) fn replay(lessor: &mut Lessor, index: u64, entry: &LogEntry) -> Result<(), String> {
    for change in &entry.changes {
        if change.kind == LogChangeKind::Delete as i32 {
            lessor.detach(&change.key);
        } else if !lessor.attach(&change.key, change.lease) {
            return Err(format!("log record {index} attaches a key to lease {:x}, which is not granted", change.lease));
        }
    }
    if let Some(grant) = &entry.lease_grant {
        if grant.id == LEASE_NONE {
            return Err(format!("log record {index} grants a lease without an id"));
        }
        lessor.grant(grant.id, grant.ttl, 0).map_err(|error| format!("log record {index} grants lease {:x}: {error}", grant.id))?;
    }
    if let Some(id) = entry.lease_revoke {
        lessor.revoke(id).map_err(|error| format!("log record {index} revokes lease {id:x}: {error}"))?;
    }
    Ok(())
}

/// Tells the batch which keys an entry's changes attached to or detached from leases (changes of
/// keys without a lease before and after are left out: most writes never touch a lease).
pub(crate) fn record_attachments(batch: &mut LeaseBatch, lessor: &Lessor, entry: &LogEntry) {
    for change in &entry.changes {
        let lease = if change.kind == LogChangeKind::Delete as i32 { LEASE_NONE } else { change.lease };
        if lease != LEASE_NONE || batch.lease_of(lessor, &change.key) != LEASE_NONE {
            batch.attach(&change.key, lease);
        }
    }
}

/// Deletes `keys` in one revision (one txn of deletes, as etcd's revoke does) and returns the
/// changes to log.
pub(crate) fn delete_keys(store: &mut Store, keys: Vec<Vec<u8>>, stamp: Stamp) -> Vec<Change> {
    if keys.is_empty() {
        return Vec::new();
    }
    let deletes = keys.into_iter().map(|key| RequestOp::DeleteRange(DeleteRangeRequest { key, range_end: Vec::new(), prev_kv: false })).collect();
    let request = TxnRequest { compare: Vec::new(), success: deletes, failure: Vec::new() };
    let (_, changes) = store.txn(&request, stamp, &|_| true).expect("a txn of deletes without compares cannot fail");
    changes
}

impl Node {
    /// One keep-alive: the lease's TTL, or `NotFound`. A lease that has expired but is not yet
    /// revoked is not renewed: as etcd, the answer waits until its revocation is durable.
    pub async fn lease_renew(&self, id: LeaseId) -> Result<i64, LeaseError> {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(LEASE_REVOCATION_WAIT_MAX_MILLIS);
        loop {
            let changed = self.shared.leases_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let now = self.shared.lease_now_millis();
            match self.shared.lessor().renew(id, now) {
                Renewal::Renewed { ttl_seconds } => return Ok(ttl_seconds),
                Renewal::NotFound => return Err(LeaseError::NotFound),
                Renewal::Expired => {}
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Err(LeaseError::NotFound);
            }
        }
    }

    /// The lease's remaining and granted TTL (and its keys when asked), `None` if unknown.
    pub fn lease_time_to_live(&self, id: LeaseId, with_keys: bool) -> Option<TimeToLive> {
        let now = self.shared.lease_now_millis();
        self.shared.lessor().time_to_live(id, now, with_keys)
    }

    /// Every lease's id, soonest expiry first.
    pub fn leases(&self) -> Vec<LeaseId> {
        self.shared.lessor().leases()
    }
}

/// The thread that revokes expired leases. It stops when told to, when the node is dropped (the
/// stop channel disconnects) or when the writer stops.
pub(crate) struct ExpiryTask {
    stop: Sender<()>,
    handle: std::thread::JoinHandle<()>,
}

impl ExpiryTask {
    pub(crate) fn start(shared: Arc<Shared>, queue: mpsc::WeakSender<Command>) -> std::io::Result<ExpiryTask> {
        let (stop, stopped) = std::sync::mpsc::channel();
        let handle = std::thread::Builder::new().name("strata-lease-expiry".into()).spawn(move || run(&shared, &queue, &stopped))?;
        Ok(ExpiryTask { stop, handle })
    }

    /// Stops the task and waits for it (it finishes the revokes it has queued).
    pub(crate) async fn stop(self) {
        let ExpiryTask { stop, handle } = self;
        let _ = stop.send(());
        let _ = tokio::task::spawn_blocking(move || handle.join()).await;
    }
}

fn run(shared: &Shared, queue: &mpsc::WeakSender<Command>, stopped: &Receiver<()>) {
    let interval = Duration::from_millis(LEASE_EXPIRY_CHECK_INTERVAL_MILLIS);
    loop {
        match stopped.recv_timeout(interval) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        let expired = shared.lessor().expired(shared.lease_now_millis(), LEASE_REVOKES_PER_CHECK_MAX);
        if expired.is_empty() {
            continue;
        }
        let Some(queue) = queue.upgrade() else { return };
        let mut replies = Vec::with_capacity(expired.len());
        for id in expired {
            let (reply, response) = oneshot::channel();
            if queue.blocking_send(Command { request: WriteRequest::LeaseRevoke { id }, reply, caller: crate::Caller::Node }).is_err() {
                return;
            }
            replies.push((id, response));
        }
        drop(queue);
        for (id, response) in replies {
            match response.blocking_recv() {
                Ok(Ok(_)) => tracing::debug!(lease = %format!("{id:x}"), "revoked an expired lease"),
                // A client revoked it first.
                Ok(Err(NodeError::Lease(LeaseError::NotFound))) => {}
                Ok(Err(error)) => {
                    tracing::error!(lease = %format!("{id:x}"), %error, "cannot revoke an expired lease; lease expiry stops");
                    return;
                }
                Err(_) => return,
            }
        }
    }
}

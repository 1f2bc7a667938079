//! The writer: the one task that changes the store. It drains a batch from the bounded queue,
//! evaluates each request in order (later requests see earlier ones), appends one log record per
//! changing request, makes the batch durable with one `fdatasync` (group commit), publishes it to
//! readers and watchers and answers the batch. Between batches it advances physical compaction in steps.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use prost::Message;
use strata_lease::LeaseBatch;
use strata_mvcc::{Change, Stamp};
use strata_segment_log::SegmentLog;
use strata_types::{Hlc, NodeId, Origin, Revision};
use tokio::sync::{mpsc, oneshot};

use crate::{leases, LogEntry, LogLeaseGrant, NodeError, Shared, WriteRequest, WriteResponse, COMPACTION_STEP_KEYS_MAX, WRITE_BATCH_REQUESTS_MAX};

type Reply = oneshot::Sender<Result<WriteResponse, NodeError>>;

pub(crate) struct Command {
    pub(crate) request: WriteRequest,
    pub(crate) reply: Reply,
    /// Whose request it is: a client's is checked against the auth state first.
    pub(crate) caller: crate::Caller,
}

impl Command {
    /// A command that stops the writer once the requests queued before it are done.
    pub(crate) fn shutdown(reply: oneshot::Sender<Result<WriteResponse, NodeError>>) -> Command {
        Command { request: WriteRequest::Compact { revision: SHUTDOWN_MARKER, physical: false }, reply, caller: crate::Caller::Node }
    }

    fn is_shutdown(&self) -> bool {
        matches!(self.request, WriteRequest::Compact { revision: SHUTDOWN_MARKER, .. })
    }
}

/// No client can ask to compact at `i64::MIN`; the writer reads it as "stop".
const SHUTDOWN_MARKER: Revision = i64::MIN;

pub(crate) struct Writer {
    shared: Arc<Shared>,
    log: SegmentLog,
    node: NodeId,
    hlc: Hlc,
    sequence: u64,
    /// Set when the log failed: every later write fails too.
    failure: Option<String>,
    /// Physical compactions whose callers wait for the superseded versions to be gone.
    compaction_waiters: Vec<(Reply, Revision)>,
}

impl Writer {
    pub(crate) fn new(shared: Arc<Shared>, log: SegmentLog, node: NodeId, hlc: Hlc, sequence: u64) -> Writer {
        Writer { shared, log, node, hlc, sequence, failure: None, compaction_waiters: Vec::new() }
    }

    pub(crate) fn run(mut self, mut queue: mpsc::Receiver<Command>) {
        let mut batch: Vec<Command> = Vec::with_capacity(WRITE_BATCH_REQUESTS_MAX);
        loop {
            if batch.is_empty() {
                // Idle: finish physical compaction before sleeping on the queue.
                if self.compaction_pending() {
                    self.compaction_step();
                    match queue.try_recv() {
                        Ok(command) => batch.push(command),
                        Err(mpsc::error::TryRecvError::Empty) => continue,
                        Err(mpsc::error::TryRecvError::Disconnected) => return,
                    }
                } else {
                    match queue.blocking_recv() {
                        Some(command) => batch.push(command),
                        None => return,
                    }
                }
            }
            while batch.len() < WRITE_BATCH_REQUESTS_MAX {
                match queue.try_recv() {
                    Ok(command) => batch.push(command),
                    Err(_) => break,
                }
            }
            let shutdown_at = batch.iter().position(Command::is_shutdown);
            let rest = shutdown_at.map(|at| batch.split_off(at));
            self.commit(std::mem::take(&mut batch));
            if let Some(mut rest) = rest {
                let shutdown = rest.remove(0);
                for command in rest {
                    let _ = command.reply.send(Err(NodeError::Stopped));
                }
                queue.close();
                while let Ok(command) = queue.try_recv() {
                    let _ = command.reply.send(Err(NodeError::Stopped));
                }
                for (reply, _) in self.compaction_waiters.drain(..) {
                    let _ = reply.send(Err(NodeError::Stopped));
                }
                let _ = shutdown.reply.send(Ok(WriteResponse::Compact(0)));
                return;
            }
            if self.compaction_pending() {
                self.compaction_step();
            }
        }
    }

    /// Evaluates, logs, syncs and answers one batch.
    fn commit(&mut self, batch: Vec<Command>) {
        if let Some(failure) = &self.failure {
            self.shared.metrics.proposals_failed.add(batch.len() as u64);
            for command in batch {
                let _ = command.reply.send(Err(NodeError::Storage(failure.clone())));
            }
            return;
        }
        let mut outcomes: Vec<(Reply, Result<WriteResponse, NodeError>, bool)> = Vec::with_capacity(batch.len());
        let mut appended_bytes = 0u64;
        let mut append_error = None;
        // The batch's lease changes: seen by its later requests, applied to the lessor once durable.
        let mut lease_batch = LeaseBatch::new();
        // The batch's membership and alarm changes, published once durable.
        let mut cluster_batch = crate::maintenance::ClusterBatch::default();
        // The batch's auth changes: seen by its later requests' checks, published once durable.
        let mut auth_batch = crate::auth::AuthBatch::new(&self.shared);
        let started = std::time::Instant::now();
        let mut tally = crate::metrics::BatchTally::default();
        {
            let mut store = self.shared.store.write().expect("store lock poisoned");
            let mut lessor = self.shared.lessor();
            for Command { request, reply, caller } in batch {
                if append_error.is_some() {
                    outcomes.push((reply, Err(NodeError::Stopped), false));
                    continue;
                }
                if let Err(error) = auth_batch.check(&caller, &request, &lessor, &lease_batch) {
                    let result = Err(error);
                    tally.count(&request, &result);
                    outcomes.push((reply, result, false));
                    continue;
                }
                let stamp = self.next_stamp();
                let lease_exists = |id: i64| lease_batch.exists(&lessor, id);
                let (result, entry) = match &request {
                    WriteRequest::Put(put) => match store.put(put, stamp, &lease_exists) {
                        Ok((response, changes)) => (Ok(WriteResponse::Put(response)), self.entry(&store, stamp, &changes)),
                        Err(error) => (Err(error.into()), None),
                    },
                    WriteRequest::DeleteRange(delete) => {
                        let (response, changes) = store.delete_range(delete, stamp);
                        (Ok(WriteResponse::DeleteRange(response)), self.entry(&store, stamp, &changes))
                    }
                    WriteRequest::Txn(txn) => match store.txn(txn, stamp, &lease_exists) {
                        Ok((response, changes)) => (Ok(WriteResponse::Txn(response)), self.entry(&store, stamp, &changes)),
                        Err(error) => (Err(error.into()), None),
                    },
                    WriteRequest::Compact { revision, .. } => match store.compact(*revision) {
                        Ok(header_revision) => {
                            let entry = LogEntry {
                                revision: store.current_revision(),
                                compact_revision: Some(*revision),
                                ..LogEntry::from_changes(store.current_revision(), stamp, &[])
                            };
                            (Ok(WriteResponse::Compact(header_revision)), Some(entry))
                        }
                        Err(error) => (Err(error.into()), None),
                    },
                    WriteRequest::LeaseGrant { id, ttl } => match lease_batch.grant(&mut lessor, *id, *ttl) {
                        Ok(granted) => {
                            let revision = store.current_revision();
                            let grant = LogLeaseGrant { id: granted.id, ttl: granted.ttl_seconds };
                            let entry = LogEntry { lease_grant: Some(grant), ..LogEntry::from_changes(revision, stamp, &[]) };
                            (Ok(WriteResponse::LeaseGrant { id: granted.id, ttl: granted.ttl_seconds, revision }), Some(entry))
                        }
                        Err(error) => (Err(error.into()), None),
                    },
                    WriteRequest::LeaseRevoke { id } => match lease_batch.revoke(&lessor, *id) {
                        Ok(keys) => {
                            let changes = leases::delete_keys(&mut store, keys, stamp);
                            let revision = store.current_revision();
                            let entry = LogEntry { lease_revoke: Some(*id), ..LogEntry::from_changes(revision, stamp, &changes) };
                            (Ok(WriteResponse::LeaseRevoke { revision }), Some(entry))
                        }
                        Err(error) => (Err(error.into()), None),
                    },
                    WriteRequest::Cluster(request) => cluster_batch.evaluate(&self.shared, store.current_revision(), stamp, request),
                    WriteRequest::Auth(request) => auth_batch.evaluate(store.current_revision(), stamp, &caller, request),
                };
                tally.count(&request, &result);
                if let Some(entry) = &entry {
                    leases::record_attachments(&mut lease_batch, &lessor, entry);
                }
                let mut logged = false;
                if let Some(entry) = entry {
                    self.sequence += 1;
                    self.hlc = stamp.hlc;
                    let payload = entry.encode_to_vec();
                    match self.log.append(entry.revision, &payload) {
                        Ok(_) => {
                            appended_bytes += payload.len() as u64;
                            logged = true;
                        }
                        Err(error) => append_error = Some(error.to_string()),
                    }
                }
                let physical = matches!(request, WriteRequest::Compact { physical: true, .. });
                outcomes.push((reply, result, physical && logged));
            }
        }

        let synced = match append_error {
            Some(error) => Err(error),
            None if appended_bytes > 0 => {
                let fsync_started = std::time::Instant::now();
                let synced = self.log.sync().map_err(|error| error.to_string());
                self.shared.metrics.wal_fsync.observe_duration(fsync_started.elapsed());
                synced
            }
            None => Ok(()),
        };
        let mut store = self.shared.store.write().expect("store lock poisoned");
        match synced {
            Ok(()) => {
                store.mark_durable();
                self.shared.snapshots.mark_durable(self.log.last_index(), self.sequence, self.hlc, appended_bytes);
                if self.shared.snapshots.take_segments_removed() {
                    self.log.forget_removed_segments();
                }
                cluster_batch.publish(&self.shared);
                auth_batch.publish(&self.shared);
                let leases_changed = !lease_batch.is_empty();
                if leases_changed {
                    self.shared.lessor().apply(lease_batch, self.shared.lease_now_millis());
                }
                drop(store);
                if leases_changed {
                    self.shared.leases_changed.notify_waiters();
                }
                // Watchers get the batch before its clients get their answers.
                self.shared.watches.publish(&self.shared.store);
                self.shared.log_bytes.fetch_add(appended_bytes, Ordering::Relaxed);
                self.shared.last_log_index.store(self.log.last_index(), Ordering::Relaxed);
                self.shared.metrics.batch_durable(&tally, started.elapsed(), appended_bytes > 0, self.log.segment_count());
                for (reply, result, wait_for_physical) in outcomes {
                    match (wait_for_physical, result) {
                        (true, Ok(WriteResponse::Compact(revision))) => self.compaction_waiters.push((reply, revision)),
                        (_, result) => {
                            let _ = reply.send(result);
                        }
                    }
                }
            }
            Err(error) => {
                store.rollback();
                drop(store);
                tracing::error!(%error, "the log could not be written; the batch was rolled back and the node refuses further writes");
                self.failure = Some(error.clone());
                self.shared.metrics.proposals_failed.add(tally.requests);
                for (reply, _, _) in outcomes {
                    let _ = reply.send(Err(NodeError::Storage(error.clone())));
                }
            }
        }
    }

    fn next_stamp(&self) -> Stamp {
        Stamp {
            hlc: self.hlc.tick(crate::wall_clock_millis()),
            origin: Origin { node: self.node, sequence: self.sequence + 1 },
        }
    }

    fn entry(&self, store: &strata_mvcc::Store, stamp: Stamp, changes: &[Change]) -> Option<LogEntry> {
        (!changes.is_empty()).then(|| LogEntry::from_changes(store.current_revision(), stamp, changes))
    }

    fn compaction_pending(&self) -> bool {
        self.shared.store.read().expect("store lock poisoned").compaction_pending()
    }

    fn compaction_step(&mut self) {
        let done = self.shared.store.write().expect("store lock poisoned").compact_step(COMPACTION_STEP_KEYS_MAX);
        if done {
            for (reply, revision) in self.compaction_waiters.drain(..) {
                let _ = reply.send(Ok(WriteResponse::Compact(revision)));
            }
        }
    }
}

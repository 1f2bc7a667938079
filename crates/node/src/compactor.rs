//! Automatic compaction (`--auto-compaction-mode`, `--auto-compaction-retention`): a thread that
//! follows etcd's schedule (`strata_mvcc::AutoCompactor`) and compacts through the writer queue
//! exactly as a client's Compact does, so the compaction is logged, replayed and answered like
//! any other, and never pauses writes (physical compaction runs in steps between batches).
//!
//! Invariants: only this thread's clock decides when; a compaction to a revision already
//! compacted counts as done (as etcd's `ErrCompacted`); the thread stops when told to, when the
//! node is dropped, or when the writer stops.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_mvcc::{AutoCompaction, AutoCompactor, KvError};
use tokio::sync::{mpsc, oneshot};

use crate::writer::Command;
use crate::{NodeError, Shared, WriteRequest};

/// The automatic compaction thread.
pub(crate) struct CompactorTask {
    stop: Sender<()>,
    handle: std::thread::JoinHandle<()>,
}

impl CompactorTask {
    pub(crate) fn start(shared: Arc<Shared>, queue: mpsc::WeakSender<Command>, mode: AutoCompaction) -> std::io::Result<CompactorTask> {
        let (stop, stopped) = std::sync::mpsc::channel();
        let handle = std::thread::Builder::new().name("strata-compactor".into()).spawn(move || run(&shared, &queue, &stopped, mode))?;
        Ok(CompactorTask { stop, handle })
    }

    /// Stops the thread and waits for it (a compaction it queued is answered first).
    pub(crate) async fn stop(self) {
        let CompactorTask { stop, handle } = self;
        let _ = stop.send(());
        let _ = tokio::task::spawn_blocking(move || handle.join()).await;
    }
}

fn durable_revision(shared: &Shared) -> strata_types::Revision {
    shared.store.read().unwrap_or_else(|poisoned| poisoned.into_inner()).durable_revision()
}

fn run(shared: &Shared, queue: &mpsc::WeakSender<Command>, stopped: &Receiver<()>, mode: AutoCompaction) {
    let clock = Instant::now();
    let now_millis = || u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut compactor = AutoCompactor::new(mode, 0);
    tracing::info!(?mode, "automatic compaction enabled");
    loop {
        compactor.sample(durable_revision(shared));
        match stopped.recv_timeout(Duration::from_millis(compactor.interval_millis())) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        let Some(revision) = compactor.due(now_millis(), durable_revision(shared)) else { continue };
        let Some(queue) = queue.upgrade() else { return };
        let (reply, response) = oneshot::channel();
        if queue.blocking_send(Command { request: WriteRequest::Compact { revision, physical: false }, reply, caller: crate::Caller::Node }).is_err() {
            return;
        }
        drop(queue);
        tracing::info!(revision, "starting automatic compaction");
        let succeeded = match response.blocking_recv() {
            Ok(Ok(_)) => {
                tracing::info!(revision, "finished automatic compaction");
                true
            }
            Ok(Err(NodeError::Kv(KvError::Compacted))) => true,
            Ok(Err(error)) => {
                tracing::warn!(revision, %error, "automatic compaction failed; retrying later");
                false
            }
            Err(_) => return,
        };
        compactor.finished(revision, now_millis(), succeeded);
    }
}

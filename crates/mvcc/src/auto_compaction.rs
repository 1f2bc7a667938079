//! etcd's automatic compaction (`--auto-compaction-mode`, `--auto-compaction-retention`) as a pure
//! schedule: the node's compactor thread asks it how long to wait, what revision to compact to
//! when it wakes, and tells it how the compaction went. Time is passed in as milliseconds of a
//! monotonic clock. The rules are etcd 3.4's (`etcdserver/api/v3compactor`):
//!
//! - **periodic** (retention `P`): every `P / 10` (capped at 6 minutes) the current revision is
//!   sampled, keeping the last `P / (P / 10) + 1` samples, so the oldest is the revision of about
//!   one period ago. The first compaction happens `P` after start, to the oldest sample; later ones
//!   every `min(P, 1 hour)` after the last success. A failed compaction is retried at the next
//!   sample; compacting to a revision already compacted counts as success.
//! - **revision** (retention `N`): every 5 minutes, compact to `current − N` unless that is not
//!   positive or was the last revision compacted to.
//!
//! Invariant: a compaction is only ever asked for a revision that was current at some point, so it
//! is never in the future.

use std::collections::VecDeque;

use strata_types::Revision;

/// etcd's `retryDivisor`: periodic mode samples the revision `PERIOD / 10` apart.
pub const PERIODIC_RETRY_DIVISOR: u64 = 10;
/// Periodic mode compacts at most this far apart (and samples at most a tenth of it apart).
pub const PERIODIC_COMPACT_INTERVAL_MAX_MILLIS: u64 = 60 * 60 * 1000;
/// etcd's `revInterval`: revision mode looks at the revision every 5 minutes.
pub const REVISION_CHECK_INTERVAL_MILLIS: u64 = 5 * 60 * 1000;
/// The shortest wait between two looks, whatever the retention.
const INTERVAL_MIN_MILLIS: u64 = 1;

/// The configured mode and retention.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutoCompaction {
    /// Keep `period_millis` of history.
    Periodic { period_millis: u64 },
    /// Keep the last `retention` revisions, looking every `check_interval_millis` (etcd: 5 minutes).
    Revision { retention: i64, check_interval_millis: u64 },
}

/// The schedule's state (see the module documentation).
#[derive(Clone, Debug)]
pub struct AutoCompactor {
    mode: AutoCompaction,
    /// Periodic: the sampled revisions, oldest first.
    samples: VecDeque<Revision>,
    /// Periodic: when the last compaction succeeded (start-up counts as one).
    last_success_millis: u64,
    /// Periodic: the wait after a success; the full period before the first compaction.
    base_interval_millis: u64,
    /// Revision: the revision last compacted to.
    previous: Revision,
}

impl AutoCompactor {
    pub fn new(mode: AutoCompaction, now_millis: u64) -> AutoCompactor {
        let base_interval_millis = match mode {
            AutoCompaction::Periodic { period_millis } => period_millis,
            AutoCompaction::Revision { .. } => 0,
        };
        AutoCompactor { mode, samples: VecDeque::new(), last_success_millis: now_millis, base_interval_millis, previous: 0 }
    }

    /// How long to wait between two looks.
    pub fn interval_millis(&self) -> u64 {
        match self.mode {
            AutoCompaction::Periodic { period_millis } => {
                (period_millis.min(PERIODIC_COMPACT_INTERVAL_MAX_MILLIS) / PERIODIC_RETRY_DIVISOR).max(INTERVAL_MIN_MILLIS)
            }
            AutoCompaction::Revision { check_interval_millis, .. } => check_interval_millis.max(INTERVAL_MIN_MILLIS),
        }
    }

    /// Before each wait: periodic mode samples the current revision.
    pub fn sample(&mut self, current_revision: Revision) {
        if let AutoCompaction::Periodic { period_millis } = self.mode {
            let samples_max = usize::try_from(period_millis / self.interval_millis()).unwrap_or(usize::MAX).saturating_add(1);
            self.samples.push_back(current_revision);
            while self.samples.len() > samples_max {
                self.samples.pop_front();
            }
        }
    }

    /// After a wait: the revision to compact to now, if any.
    pub fn due(&mut self, now_millis: u64, current_revision: Revision) -> Option<Revision> {
        match self.mode {
            AutoCompaction::Periodic { period_millis } => {
                if now_millis.saturating_sub(self.last_success_millis) < self.base_interval_millis {
                    return None;
                }
                if self.base_interval_millis == period_millis {
                    self.base_interval_millis = period_millis.min(PERIODIC_COMPACT_INTERVAL_MAX_MILLIS);
                }
                self.samples.front().copied()
            }
            AutoCompaction::Revision { retention, .. } => {
                let revision = current_revision.saturating_sub(retention);
                (revision > 0 && revision != self.previous).then_some(revision)
            }
        }
    }

    /// The outcome of the compaction [`AutoCompactor::due`] asked for: `succeeded` when it was
    /// done or the revision was already compacted.
    pub fn finished(&mut self, revision: Revision, now_millis: u64, succeeded: bool) {
        if !succeeded {
            return;
        }
        match self.mode {
            AutoCompaction::Periodic { .. } => self.last_success_millis = now_millis,
            AutoCompaction::Revision { .. } => self.previous = revision,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR_MILLIS: u64 = 60 * 60 * 1000;

    /// Runs the schedule as the node's thread does, with the revision growing by `per_look` each
    /// look; returns `(time, revision)` of each compaction.
    fn run(mode: AutoCompaction, looks: u64, per_look: Revision) -> Vec<(u64, Revision)> {
        let mut compactor = AutoCompactor::new(mode, 0);
        let mut now = 0;
        let mut revision = 1;
        let mut compactions = Vec::new();
        for _ in 0..looks {
            compactor.sample(revision);
            now += compactor.interval_millis();
            revision += per_look;
            if let Some(target) = compactor.due(now, revision) {
                assert!(target <= revision);
                compactions.push((now, target));
                compactor.finished(target, now, true);
            }
        }
        compactions
    }

    #[test]
    fn periodic_compacts_to_the_revision_of_one_period_ago_every_period() {
        // One hour: a sample every 6 minutes, the first compaction after an hour to the start's
        // revision, then every hour to the revision of an hour before.
        let compactions = run(AutoCompaction::Periodic { period_millis: HOUR_MILLIS }, 30, 10);
        assert_eq!(compactions, vec![(HOUR_MILLIS, 1), (2 * HOUR_MILLIS, 91), (3 * HOUR_MILLIS, 191)]);
        // Ten hours: samples 6 minutes apart, compactions every hour to ten hours before.
        let compactions = run(AutoCompaction::Periodic { period_millis: 10 * HOUR_MILLIS }, 200, 1);
        assert_eq!(compactions[0], (10 * HOUR_MILLIS, 1));
        assert_eq!(compactions[1], (11 * HOUR_MILLIS, 10));
        assert_eq!(AutoCompactor::new(AutoCompaction::Periodic { period_millis: 10 * HOUR_MILLIS }, 0).interval_millis(), 6 * 60 * 1000);
    }

    #[test]
    fn periodic_retries_a_failed_compaction_at_the_next_look() {
        let mut compactor = AutoCompactor::new(AutoCompaction::Periodic { period_millis: 1000 }, 0);
        for look in 1..=10 {
            compactor.sample(look);
            let due = compactor.due(look as u64 * 100, look + 1);
            assert_eq!(due.is_some(), look == 10, "look {look}");
            if let Some(revision) = due {
                compactor.finished(revision, 1000, false);
            }
        }
        compactor.sample(11);
        assert_eq!(compactor.due(1100, 12), Some(1), "retried");
    }

    #[test]
    fn revision_mode_keeps_the_last_revisions_and_skips_repeats() {
        let mode = AutoCompaction::Revision { retention: 100, check_interval_millis: REVISION_CHECK_INTERVAL_MILLIS };
        let mut compactor = AutoCompactor::new(mode, 0);
        assert_eq!(compactor.interval_millis(), 5 * 60 * 1000);
        assert_eq!(compactor.due(1, 50), None, "nothing to compact below the retention");
        assert_eq!(compactor.due(2, 150), Some(50));
        compactor.finished(50, 2, true);
        assert_eq!(compactor.due(3, 150), None, "the same revision again");
        assert_eq!(compactor.due(4, 151), Some(51));
        compactor.finished(51, 4, false);
        assert_eq!(compactor.due(5, 151), Some(51), "a failure is retried");
    }
}

//! When to take the checkpoint a Flink 2.x rescale waits for.
//!
//! Since FLIP-461 (Flink 2.0; the 1.20.5 jar has no such trigger) the adaptive scheduler
//! of a job with checkpointing rescales only when a checkpoint **completes** after it holds
//! the slots of the new requirements: `DefaultStateTransitionManager.Stabilizing#onTrigger`
//! is called by `Executing#onCompletedCheckpoint`, and without one it waits
//! `jobmanager.adaptive-scheduler.rescale-trigger.max-delay` (default: the checkpoint
//! interval × 3). With a production interval (30 s – 10 min) that is most of a rescale's
//! latency. Any completed checkpoint counts, also one triggered over REST, so the scaler
//! triggers one as soon as the job holds the slots — what FLINK-36753 (unreleased) would do
//! inside Flink.
//!
//! The rule, pure: a checkpoint is **due** while the job still runs at another
//! parallelism than the target and its TaskManagers hold at least the slots the target
//! needs (the slots are allocated to the job before it restarts); at most
//! [`MAX_NUDGES`] per rescale, [`NUDGE_RETRY`] apart, in case one completed before the
//! scheduler saw the slots (it then ignores the trigger) or during its cooldown.

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, Utc};

use super::TaskManagerSlots;
use crate::{JobStatus, VertexId};

/// Checkpoints triggered for one rescale at most.
pub const MAX_NUDGES: u32 = 3;
/// Wait before triggering another one while the rescale has still not started.
pub const NUDGE_RETRY: Duration = Duration::from_secs(5);

/// Slots of the cluster's TaskManagers that are allocated (the job's, in an application
/// cluster; a session cluster's other jobs count too, which at worst fires early and
/// is retried).
pub fn slots_held(task_managers: &[TaskManagerSlots]) -> u64 {
    task_managers
        .iter()
        .map(|t| u64::from(t.slots_total.saturating_sub(t.slots_free)))
        .sum()
}

/// True while the job runs and some vertex of `target` is at another parallelism (the
/// rescale has not restarted the job yet).
pub fn awaits_restart(
    status: JobStatus,
    parallelism: &BTreeMap<VertexId, u32>,
    target: &BTreeMap<VertexId, u32>,
) -> bool {
    status == JobStatus::Running
        && target
            .iter()
            .any(|(v, p)| parallelism.get(v).is_some_and(|now| now != p))
}

/// The checkpoints triggered for one rescale.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckpointNudge {
    fired: u32,
    last: Option<DateTime<Utc>>,
}

impl CheckpointNudge {
    /// Whether to trigger a checkpoint now: the job is `ready` (it awaits the restart and
    /// holds the target's slots), none was triggered in the last [`NUDGE_RETRY`], and
    /// fewer than [`MAX_NUDGES`] were.
    pub fn due(&self, now: DateTime<Utc>, ready: bool) -> bool {
        let rested = self
            .last
            .is_none_or(|at| (now - at).to_std().is_ok_and(|since| since >= NUDGE_RETRY));
        ready && rested && !self.exhausted()
    }

    /// Records a trigger at `now`.
    pub fn fire(&mut self, now: DateTime<Utc>) {
        self.fired = self.fired.saturating_add(1);
        self.last = Some(now);
    }

    /// Checkpoints triggered so far.
    pub fn fired(&self) -> u32 {
        self.fired
    }

    /// True when no more may be triggered for this rescale.
    pub fn exhausted(&self) -> bool {
        self.fired >= MAX_NUDGES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).expect("valid timestamp")
    }

    fn tm(total: u32, free: u32) -> TaskManagerSlots {
        TaskManagerSlots {
            id: format!("tm-{total}-{free}"),
            slots_total: total,
            slots_free: free,
        }
    }

    fn p(a: u32, b: u32) -> BTreeMap<VertexId, u32> {
        [(VertexId::new("a"), a), (VertexId::new("b"), b)].into()
    }

    /// Held slots are the allocated ones; a spare TaskManager's free slots are not.
    #[test]
    fn held_slots_leave_free_ones_out() {
        assert_eq!(slots_held(&[tm(2, 0), tm(2, 1), tm(4, 4)]), 3);
        assert_eq!(slots_held(&[]), 0);
        // a malformed report (more free than total) counts as nothing held
        assert_eq!(slots_held(&[tm(1, 3)]), 0);
    }

    /// Only a running job not yet at the target awaits the restart.
    #[test]
    fn awaits_the_restart_while_running_at_another_parallelism() {
        assert!(awaits_restart(JobStatus::Running, &p(2, 2), &p(6, 6)));
        assert!(awaits_restart(JobStatus::Running, &p(6, 2), &p(6, 6)));
        assert!(!awaits_restart(JobStatus::Running, &p(6, 6), &p(6, 6)));
        assert!(!awaits_restart(JobStatus::Restarting, &p(2, 2), &p(6, 6)));
        assert!(!awaits_restart(JobStatus::Created, &p(2, 2), &p(6, 6)));
        // a vertex the job does not report is not evidence of anything
        let only_c: BTreeMap<VertexId, u32> = [(VertexId::new("c"), 3)].into();
        assert!(!awaits_restart(JobStatus::Running, &p(2, 2), &only_c));
    }

    /// First when ready, again only after the retry wait, never more than the cap.
    #[test]
    fn due_when_ready_retried_after_the_wait_and_capped() {
        let mut n = CheckpointNudge::default();
        assert!(!n.due(at(0), false));
        assert!(n.due(at(0), true));
        n.fire(at(0));
        assert!(!n.due(at(4), true));
        assert!(n.due(at(5), true));
        n.fire(at(5));
        n.fire(at(10));
        assert_eq!(n.fired(), MAX_NUDGES);
        assert!(n.exhausted());
        assert!(!n.due(at(60), true));
        // a clock that went backwards does not fire early
        let mut m = CheckpointNudge::default();
        m.fire(at(10));
        assert!(!m.due(at(9), true));
    }
}

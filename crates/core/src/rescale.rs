//! The in-place rescale state machine (pure transitions): which TaskManager count to
//! report to KEDA while a rescale is in flight, and when a rescale is complete, timed out
//! or broken by a failover.
//!
//! ```text
//!             accepted (PUT 200 / already at target)
//!   Pending ───────────────► Applying ── RUNNING at target ──► Completed      (up / same TMs)
//!      │                        │                      └──► Draining ── surplus TMs idle ──► Completed (down)
//!      └── deadline ──► TimedOut ◄── deadline ──┘                │
//!   any non-terminal phase ── job terminal ──► Aborted           └── deadline ──► TimedOut
//! ```
//!
//! KEDA ordering ([`Rescale::task_managers_to_report`], combined with the spare, the
//! requirements and the monotone drain in [`super::report`]): a scale-up reports the
//! **new** TaskManager count at once (Flink rescales when the slots arrive); a scale-down
//! keeps reporting the **current** count until Flink runs at the lower parallelism *and*
//! enough TaskManagers hold no slots, so KEDA never removes a busy TaskManager.
//!
//! Failovers (restarts that are not our rescale) are detected by [`FailoverWatch`]: new
//! exception-history entries, `FAILING`, or restarts beyond those a rescale explains.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub mod nudge;
pub mod raise;

pub use super::failover::{FailoverCause, FailoverWatch, HistoryRecord, RescaleTrigger};
use super::{
    decision::{Direction, Plan},
    ids::JobId,
    observation::JobStatus,
    topology::{Topology, VertexId},
};

/// How long a rescale may take before it is declared timed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RescaleTimeouts {
    /// Fixed part: restart, slot allocation, redeploy, adaptive-scheduler stabilization.
    pub base: Duration,
    /// Checkpoint intervals added to the deadline (Flink 2.x waits for a completed
    /// checkpoint before rescaling, FLIP-461).
    pub checkpoint_intervals: u32,
    /// Extra time for a scale-down until the surplus TaskManagers hold no slots (slots
    /// return to the ResourceManager after `slot.idle.timeout`, 50 s by default).
    pub drain: Duration,
}

impl Default for RescaleTimeouts {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(120),
            checkpoint_intervals: 3,
            drain: Duration::from_secs(90),
        }
    }
}

impl RescaleTimeouts {
    /// The deadline budget for a rescale in `direction` with this checkpoint interval.
    pub fn budget(&self, direction: Direction, checkpoint_interval: Option<Duration>) -> Duration {
        let ckpt = checkpoint_interval
            .map(|i| i.saturating_mul(self.checkpoint_intervals))
            .unwrap_or_default();
        let drain = if direction == Direction::Down {
            self.drain
        } else {
            Duration::ZERO
        };
        self.base.saturating_add(ckpt).saturating_add(drain)
    }
}

/// Phase of a rescale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RescalePhase {
    /// Created; the new requirements are not accepted by Flink yet (or dry run).
    Pending,
    /// Requirements accepted; waiting for the job to run at the target parallelism.
    Applying,
    /// Scale-down: running at the target; waiting for surplus TaskManagers to be idle.
    Draining,
    /// Done: running at the target (and, for a scale-down, surplus TaskManagers idle).
    Completed,
    /// The deadline passed first. Terminal: alert, do not re-PUT in a loop.
    TimedOut,
    /// The job ended (terminal state or vanished) while rescaling. Terminal.
    Aborted,
}

impl RescalePhase {
    /// Stable label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RescalePhase::Pending => "pending",
            RescalePhase::Applying => "applying",
            RescalePhase::Draining => "draining",
            RescalePhase::Completed => "completed",
            RescalePhase::TimedOut => "timed_out",
            RescalePhase::Aborted => "aborted",
        }
    }
    /// True for Completed, TimedOut and Aborted.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RescalePhase::Completed | RescalePhase::TimedOut | RescalePhase::Aborted
        )
    }
}

/// Slots of one TaskManager (from `/taskmanagers`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskManagerSlots {
    /// TaskManager id.
    pub id: String,
    /// Total slots.
    pub slots_total: u32,
    /// Free slots.
    pub slots_free: u32,
}

impl TaskManagerSlots {
    /// Holds no slot of any job.
    pub fn is_idle(&self) -> bool {
        self.slots_free >= self.slots_total
    }
}

/// What the driver observed about the job at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RescaleObservation {
    /// When.
    pub at: DateTime<Utc>,
    /// Job status (`Other` for terminal / unknown states).
    pub status: JobStatus,
    /// True when the job is in a terminal state (FINISHED, CANCELED, FAILED, SUSPENDED).
    pub terminal: bool,
    /// Per-vertex parallelism from `/jobs/:id`.
    pub parallelism: BTreeMap<VertexId, u32>,
    /// True when every subtask of every vertex is RUNNING (or FINISHED).
    pub all_tasks_running: bool,
    /// TaskManagers and their slots.
    pub task_managers: Vec<TaskManagerSlots>,
    /// `numRestarts` of the job, if readable.
    pub num_restarts: Option<u64>,
    /// Timestamp (ms) of the newest exception-history entry, if any.
    pub latest_exception_ms: Option<i64>,
    /// Flink 2.3's rescale history (newest first), when it is on and readable.
    #[serde(default)]
    pub rescale_history: Option<Vec<HistoryRecord>>,
}

impl RescaleObservation {
    /// A failover watch starting from this observation: exact (rescale history) when the
    /// observation carries one, counting restarts and exceptions otherwise.
    pub fn failover_baseline(&self) -> FailoverWatch {
        let watch = FailoverWatch::new(self.num_restarts, self.latest_exception_ms);
        match &self.rescale_history {
            Some(h) => watch.with_history(h),
            None => watch,
        }
    }
}

/// Something that happened to a rescale, for logs, metrics and Kubernetes Events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RescaleEvent {
    /// Flink accepted the new requirements (or they were already in place).
    Accepted,
    /// A scale-up still waiting for its TaskManagers was raised to a higher target
    /// ([`raise`]): new requirements, the same rescale.
    Raised {
        /// TaskManagers of the target before.
        from_task_managers: u32,
        /// TaskManagers of the new target.
        to_task_managers: u32,
    },
    /// The job runs at the target parallelism, `after_ms` after acceptance.
    ReachedParallelism {
        /// ms from acceptance (or start) to RUNNING at the target.
        after_ms: u64,
    },
    /// Scale-down: enough TaskManagers are idle for KEDA to remove the surplus.
    SurplusIdle {
        /// Idle TaskManagers.
        idle: u32,
        /// TaskManagers to remove.
        surplus: u32,
    },
    /// The rescale is complete.
    Completed {
        /// ms from start to completion.
        took_ms: u64,
    },
    /// The deadline passed in `phase`.
    TimedOut {
        /// The phase it was stuck in.
        phase: RescalePhase,
    },
    /// The job ended while rescaling.
    Aborted {
        /// Why.
        reason: String,
    },
    /// A restart that is not the rescale.
    Failover(FailoverCause),
}

/// Why a new rescale cannot start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    /// The job.
    pub job_id: JobId,
    /// Phase of the rescale in flight.
    pub phase: RescalePhase,
}

/// One in-place rescale of one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rescale {
    /// Flink job id.
    pub job_id: JobId,
    /// Plan before.
    pub from: Plan,
    /// Target plan.
    pub to: Plan,
    /// Direction (by TaskManagers; `None` when only parallelism moves).
    pub direction: Direction,
    /// Current phase.
    pub phase: RescalePhase,
    /// When it was created.
    pub started_at: DateTime<Utc>,
    /// When Flink accepted the requirements.
    pub accepted_at: Option<DateTime<Utc>>,
    /// When the job first ran at the target parallelism.
    pub reached_at: Option<DateTime<Utc>>,
    /// When it became terminal.
    pub finished_at: Option<DateTime<Utc>>,
    /// When it times out.
    pub deadline: DateTime<Utc>,
    /// Failovers seen while in flight.
    pub failovers: u32,
    watch: FailoverWatch,
}

/// Restarts one rescale may cause (the adaptive scheduler can take two steps: to the
/// slots it has, then to the target once more slots arrive).
pub const RESCALE_RESTARTS_ALLOWED: u64 = 2;

/// Refuses a second rescale of a job while one is in flight.
pub fn ensure_none_in_flight(existing: Option<&Rescale>) -> Result<(), InFlight> {
    match existing {
        Some(r) if !r.phase.is_terminal() => Err(InFlight {
            job_id: r.job_id.clone(),
            phase: r.phase,
        }),
        _ => Ok(()),
    }
}

/// TaskManagers needed to run `parallelism` on `topology`:
/// `ceil(Σ over slot sharing groups of max(parallelism in group) / slots_per_tm)`, at least 1.
pub fn required_task_managers(
    topology: &Topology,
    parallelism: &BTreeMap<VertexId, u32>,
    slots_per_task_manager: u32,
) -> u32 {
    super::slots::task_managers_for(topology, parallelism, slots_per_task_manager).max(1)
}

fn ms_between(a: DateTime<Utc>, b: DateTime<Utc>) -> u64 {
    u64::try_from((b - a).num_milliseconds()).unwrap_or(0)
}

/// Which way a rescale from `from` to `to` goes: the way the TaskManager count moves,
/// except against the parallelism. A scale-up onto a warm spare asks for fewer
/// TaskManagers than are registered (2 → 5 on 6 registered, 4 of them the spare), yet
/// every vertex grows and nothing drains: never `Down` while no vertex shrinks (nor `Up`
/// while no vertex grows); such a move is `None` when it does not also change the count.
fn direction(from: &Plan, to: &Plan) -> Direction {
    let moved = |cmp: std::cmp::Ordering| {
        to.parallelism
            .iter()
            .any(|(v, p)| from.parallelism.get(v).is_some_and(|f| p.cmp(f) == cmp))
    };
    let (grew, shrank) = (
        moved(std::cmp::Ordering::Greater),
        moved(std::cmp::Ordering::Less),
    );
    match to.task_managers.cmp(&from.task_managers) {
        std::cmp::Ordering::Less if grew && !shrank => Direction::Up,
        std::cmp::Ordering::Greater if shrank && !grew => Direction::None,
        std::cmp::Ordering::Greater => Direction::Up,
        std::cmp::Ordering::Less => Direction::Down,
        std::cmp::Ordering::Equal => Direction::None,
    }
}

impl Rescale {
    /// A new rescale from `from` to `to`, started at `now`. `baseline` is a failover
    /// watch built from the job's current restart counter and newest exception (it is
    /// given [`RESCALE_RESTARTS_ALLOWED`] expected restarts).
    pub fn new(
        job_id: JobId,
        from: Plan,
        to: Plan,
        now: DateTime<Utc>,
        timeouts: &RescaleTimeouts,
        checkpoint_interval: Option<Duration>,
        baseline: FailoverWatch,
    ) -> Self {
        let direction = direction(&from, &to);
        let budget = timeouts.budget(direction, checkpoint_interval);
        let deadline =
            now + chrono::Duration::from_std(budget).unwrap_or_else(|_| chrono::Duration::days(1));
        let mut watch = baseline;
        watch.expect_restarts(RESCALE_RESTARTS_ALLOWED);
        Self {
            job_id,
            from,
            to,
            direction,
            phase: RescalePhase::Pending,
            started_at: now,
            accepted_at: None,
            reached_at: None,
            finished_at: None,
            deadline,
            failovers: 0,
            watch,
        }
    }

    /// The next `n` failovers are the rescale's own (reactive mode removing `n`
    /// TaskManagers): not reported.
    pub fn expect_failovers(&mut self, n: u64) {
        self.watch.expect_failovers(n);
    }

    /// True when failovers are told exactly from Flink 2.3's rescale history.
    pub fn exact_failovers(&self) -> bool {
        self.watch.exact()
    }

    /// Flink accepted the requirements (PUT 200, or nothing to PUT): Pending → Applying.
    pub fn accepted(&mut self, now: DateTime<Utc>) -> Vec<RescaleEvent> {
        if self.phase != RescalePhase::Pending {
            return Vec::new();
        }
        self.phase = RescalePhase::Applying;
        self.accepted_at = Some(now);
        vec![RescaleEvent::Accepted]
    }

    /// The job vanished (404): → Aborted.
    pub fn job_gone(&mut self, now: DateTime<Utc>) -> Vec<RescaleEvent> {
        if self.phase.is_terminal() {
            return Vec::new();
        }
        self.finish(RescalePhase::Aborted, now);
        vec![RescaleEvent::Aborted {
            reason: "job not found".into(),
        }]
    }

    fn finish(&mut self, phase: RescalePhase, now: DateTime<Utc>) {
        self.phase = phase;
        self.finished_at = Some(now);
    }

    fn at_target(&self, obs: &RescaleObservation) -> bool {
        obs.status == JobStatus::Running
            && obs.all_tasks_running
            && self
                .to
                .parallelism
                .iter()
                .all(|(v, p)| obs.parallelism.get(v) == Some(p))
    }

    /// (idle TaskManagers, surplus TaskManagers) in this observation.
    fn idle_and_surplus(&self, obs: &RescaleObservation) -> (u32, u32) {
        let registered = u32::try_from(obs.task_managers.len()).unwrap_or(u32::MAX);
        let idle = u32::try_from(obs.task_managers.iter().filter(|t| t.is_idle()).count())
            .unwrap_or(u32::MAX);
        (idle, registered.saturating_sub(self.to.task_managers))
    }

    /// Feeds one observation: failovers, progress, completion, deadline.
    pub fn observe(&mut self, obs: &RescaleObservation) -> Vec<RescaleEvent> {
        let mut events = Vec::new();
        if self.phase.is_terminal() {
            return events;
        }
        for cause in self.watch.observe_with_history(
            obs.status,
            obs.num_restarts,
            obs.latest_exception_ms,
            obs.rescale_history.as_deref(),
        ) {
            self.failovers += 1;
            events.push(RescaleEvent::Failover(cause));
        }
        if obs.terminal {
            self.finish(RescalePhase::Aborted, obs.at);
            events.push(RescaleEvent::Aborted {
                reason: "job reached a terminal state".into(),
            });
            return events;
        }
        if self.phase == RescalePhase::Applying && self.at_target(obs) {
            self.reached_at = Some(obs.at);
            let since = self.accepted_at.unwrap_or(self.started_at);
            events.push(RescaleEvent::ReachedParallelism {
                after_ms: ms_between(since, obs.at),
            });
            self.phase = if self.direction == Direction::Down {
                RescalePhase::Draining
            } else {
                self.finish(RescalePhase::Completed, obs.at);
                events.push(RescaleEvent::Completed {
                    took_ms: ms_between(self.started_at, obs.at),
                });
                return events;
            };
        }
        if self.phase == RescalePhase::Draining {
            let (idle, surplus) = self.idle_and_surplus(obs);
            if self.at_target(obs) && idle >= surplus {
                events.push(RescaleEvent::SurplusIdle { idle, surplus });
                self.finish(RescalePhase::Completed, obs.at);
                events.push(RescaleEvent::Completed {
                    took_ms: ms_between(self.started_at, obs.at),
                });
                return events;
            }
        }
        if obs.at >= self.deadline {
            let phase = self.phase;
            self.finish(RescalePhase::TimedOut, obs.at);
            events.push(RescaleEvent::TimedOut { phase });
        }
        events
    }

    /// The TaskManager count to report to KEDA in the current phase:
    /// * scale-up: the new count in every phase (slots must arrive for Flink to rescale);
    ///   after an abort, the old one;
    /// * scale-down: the old (higher) count until Completed; also after a timeout or abort
    ///   (never remove TaskManagers Flink may still use);
    /// * same TaskManagers: that count.
    pub fn task_managers_to_report(&self) -> u32 {
        match (self.direction, self.phase) {
            (_, RescalePhase::Completed) => self.to.task_managers,
            (_, RescalePhase::Aborted) => self.from.task_managers,
            (Direction::Up, _) => self.to.task_managers,
            (Direction::Down, _) => self.from.task_managers,
            (Direction::None, _) => self.to.task_managers.max(self.from.task_managers),
        }
    }
}

#[cfg(test)]
mod tests;

//! The per-job worker: one per ScaledObject, the one owner of that job's state across
//! ticks (the core's [`JobState`], the rescale in flight, the persisted copy, what was
//! logged and marked). Once per `evaluation.interval`, at the ScaledObject's own phase of
//! it (every 2 s while a rescale is in flight), a tick observes the job, runs the
//! decision core, drives the in-place rescale state machine, and publishes one [`Published`] value that answers every GetMetrics,
//! IsActive and HPA call until the next tick.
//!
//! What is reported to KEDA is never below what the job's running parallelism needs: a
//! scale-down lowers Flink's requirements first and the count KEDA sees drops only when
//! the surplus TaskManagers hold no slots (see [`crate::core::rescale`]).
//!
//! | concern | file |
//! |---|---|
//! | the tick: observe → decide → act → publish | [`tick`] |
//! | start and advance the in-place rescale | [`rescale`] |
//! | Kubernetes Events (set-up warnings, rescale lifecycle) | [`events`] |
//! | pod-deletion-cost of idle TaskManagers | [`pods`] |
//! | `/debug/jobs` report, metrics, decision logs | [`report`] |
//! | persisted state (load, claim, save) | [`persist`] |
//! | the job's in-process rescale claim, shared with `POST /admin/rescale` | this file, [`crate::runtime::claims`] |
//! | the JobManager set-up (reactive mode, Flink's rescale delays) | [`setup`] |
//! | native FlinkDeployments: refusals, pinned answer, overrides by SSA | [`native`] |

mod events;
mod native;
mod persist;
mod pods;
mod raise;
mod report;
mod reported;
mod rescale;
mod setup;
mod tick;

use std::{sync::Arc, time::Duration};

pub use report::{JobReport, Published, StoredReport};

use self::persist::PersistState;
use super::{
    apply::CheckpointNudger, claims::ClaimGuard, context::Context, flink_setup::SetupCache,
    progress::Progress, rest_cache::JobView,
};
use crate::{
    core::{JobId, JobState, Rescale, Rule},
    keda::ScalerTarget,
};

/// Poll interval while a rescale is in flight.
const IN_FLIGHT_POLL: Duration = Duration::from_secs(2);

/// What a stopping worker hands to the next worker of the same ScaledObject.
#[derive(Debug)]
pub struct Carry {
    job_state: JobState,
    rescale: Option<Box<Rescale>>,
}

/// Per-job memory across ticks.
pub struct Worker {
    ctx: Arc<Context>,
    target: ScalerTarget,
    job_state: JobState,
    /// The last rescale (boxed: ~700 bytes most workers hold only after a rescale).
    rescale: Option<Box<Rescale>>,
    persist: PersistState,
    last_rule: Option<Rule>,
    registered_job: Option<String>,
    marked_pods: bool,
    warned: bool,
    flink_setup: SetupCache,
    /// The job's details and topology, read again when its id/state/parallelism changes.
    rest_view: JobView,
    /// The job's rescale claim while this worker's rescale is in flight.
    rescale_claim: Option<ClaimGuard>,
    /// The step the tick waits on (read by an rpc that times out).
    progress: Progress,
    /// The checkpoint nudge of the rescale in flight (Flink 2.x; dropped when it ends).
    nudger: Option<CheckpointNudger>,
    /// While the scale-up in flight may still be raised: the raise's decision windows.
    raise: Option<crate::core::rescale::raise::RaiseMemory>,
}

impl Worker {
    /// A worker for one ScaledObject.
    pub fn new(ctx: Arc<Context>, target: ScalerTarget) -> Self {
        Self {
            ctx,
            target,
            job_state: JobState::default(),
            rescale: None,
            persist: PersistState::default(),
            last_rule: None,
            registered_job: None,
            marked_pods: false,
            warned: false,
            flink_setup: SetupCache::default(),
            rest_view: JobView::default(),
            rescale_claim: None,
            progress: Progress::default(),
            nudger: None,
            raise: None,
        }
    }

    /// What the tick waits on, shared with the rpc layer.
    pub fn progress(&self) -> Progress {
        self.progress.clone()
    }

    /// How long to wait before the next tick: the ScaledObject's phase of the interval
    /// ([`super::schedule`]), or the fast poll while a rescale is in flight.
    pub fn next_delay(&self) -> Duration {
        if self.in_flight() {
            IN_FLIGHT_POLL
        } else {
            super::schedule::next_tick_delay(
                &self.target.to_string(),
                self.ctx.config.evaluation.interval,
            )
        }
    }

    /// True while a rescale is in flight (started and not terminal).
    fn in_flight(&self) -> bool {
        self.rescale
            .as_ref()
            .is_some_and(|r| !r.phase.is_terminal())
    }

    /// Takes (or keeps) `job`'s rescale claim for this worker; Err names the holder (a
    /// manual rescale in flight).
    fn take_claim(&mut self, job: &JobId) -> Result<(), String> {
        if self.rescale_claim.as_ref().is_some_and(|c| c.job() == job) {
            return Ok(());
        }
        let holder = format!("automatic rescale of {}", self.target.scaled_object);
        self.rescale_claim = Some(self.ctx.claims.try_claim(job, holder)?);
        Ok(())
    }

    /// True (logged) when `job`'s claim is held by another rescale, so a decision to
    /// rescale must wait; otherwise this worker now holds it.
    fn defer(&mut self, job: &JobId) -> bool {
        match self.take_claim(job) {
            Ok(()) => false,
            Err(holder) => {
                tracing::info!(%holder, "rescale deferred: another rescale of the job is in flight");
                true
            }
        }
    }

    /// Holds the claim exactly while a rescale is in flight (leader only): resumed and
    /// running rescales keep it, a finished one releases it.
    fn sync_claim(&mut self, job: &JobId) {
        if !self.in_flight() || !self.ctx.is_leader() {
            self.rescale_claim = None;
        } else if let Err(holder) = self.take_claim(job) {
            tracing::warn!(%holder, "a rescale is in flight while another holds the job's claim");
        }
    }

    /// Continues from a previous worker's state (same ScaledObject, changed metadata).
    pub fn resume(&mut self, carry: Carry) {
        self.job_state = carry.job_state;
        self.rescale = carry.rescale;
    }

    /// The state to hand to the next worker.
    pub fn carry(self) -> Carry {
        Carry {
            job_state: self.job_state,
            rescale: self.rescale,
        }
    }

    /// Drops the job's metric series (when the worker stops).
    pub fn forget(&self) {
        if let Some(job) = &self.registered_job {
            self.ctx.metrics.remove_job(&self.key(job));
        }
    }
}

//! The JobManager's set-up as the runtime uses it (issue 14 §1, issue 13 §5): read once
//! per job id from `GET /jobmanager/config` (+ 2.3's `/jobs/:id/rescales/config`) and kept
//! until the job id changes; it chooses the decision path (reactive mode is sized in
//! TaskManagers and never PUT to, [`crate::core::reactive`]) and lists the Flink settings
//! that would hold back a rescale the scaler asks for ([`crate::flink::rescale_delays`]).
//! Shared by the worker and `explain`, so both decide the same way.

use chrono::{DateTime, Utc};

use crate::{
    core::{self, Decision, JobId, JobState, Observation, Policy},
    flink::{read_setup, rescale_delays, FlinkClient, FlinkError, FlinkSetup, RescaleDelay},
};

/// The set-up of one job's cluster, read once per job id.
#[derive(Debug, Clone, Default)]
pub struct SetupCache {
    /// The job the cached set-up belongs to.
    job_id: Option<JobId>,
    /// The set-up (None until read).
    setup: Option<FlinkSetup>,
    /// Its settings that delay the scaler's rescales.
    delays: Vec<RescaleDelay>,
    /// A native-mode refusal was announced (Event once per worker).
    refusal_announced: bool,
    /// When the last read of this job's set-up failed.
    failed_at: Option<std::time::Instant>,
}

/// A failed set-up read of the same job is retried after this long.
const RETRY_FAILED_READ: std::time::Duration = std::time::Duration::from_secs(300);

/// What changed when the set-up was (re)read: the caller logs, emits Events and metrics.
#[derive(Debug, Clone)]
pub struct FreshSetup {
    /// The set-up just read.
    pub setup: FlinkSetup,
    /// The settings that would delay the scaler's rescales.
    pub delays: Vec<RescaleDelay>,
}

impl SetupCache {
    /// The cached set-up of `job_id`, reading it when the job id changed (or it was never
    /// read; a failed read is retried after [`RETRY_FAILED_READ`]). `Ok(Some(fresh))` on a
    /// new read, `Ok(None)` when the cache was used.
    pub async fn refresh(
        &mut self,
        client: &FlinkClient,
        job_id: &JobId,
        policy: &Policy,
    ) -> Result<Option<FreshSetup>, FlinkError> {
        if self.job_id.as_ref() == Some(job_id)
            && (self.setup.is_some()
                || self
                    .failed_at
                    .is_some_and(|t| t.elapsed() < RETRY_FAILED_READ))
        {
            return Ok(None);
        }
        self.job_id = Some(job_id.clone());
        self.setup = None;
        self.delays.clear();
        let setup = match read_setup(client, job_id, None).await {
            Ok(s) => s,
            Err(e) => {
                // bounded REST traffic: a failed read is retried after a while, not every tick
                self.failed_at = Some(std::time::Instant::now());
                return Err(e);
            }
        };
        self.failed_at = None;
        self.setup = Some(setup.clone());
        let delays = rescale_delays(&setup, policy.stabilization);
        self.delays.clone_from(&delays);
        Ok(Some(FreshSetup { setup, delays }))
    }

    /// The cached set-up (None before the first successful read).
    pub fn get(&self) -> Option<&FlinkSetup> {
        self.setup.as_ref()
    }

    /// The cached set-up's settings that delay the scaler's rescales.
    pub fn delays(&self) -> &[RescaleDelay] {
        &self.delays
    }

    /// True the first time only: announce a refusal once.
    pub fn announce_refusal(&mut self) -> bool {
        !std::mem::replace(&mut self.refusal_announced, true)
    }

    /// True when the cached set-up says reactive mode.
    pub fn reactive(&self) -> bool {
        self.setup.as_ref().is_some_and(|s| s.reactive)
    }
}

/// The decision for a job with set-up `setup`: reactive mode sizes in TaskManagers
/// ([`core::reactive::decide_reactive`]), anything else decides per vertex.
pub fn decide(
    setup: Option<&FlinkSetup>,
    obs: &Observation,
    state: &JobState,
    policy: &Policy,
    now: DateTime<Utc>,
) -> (Decision, JobState) {
    if setup.is_some_and(|s| s.reactive) {
        core::reactive::decide_reactive(obs, state, policy, now)
    } else {
        core::decide(obs, state, policy, now)
    }
}

/// The sentence every surface (log, Event, `explain`) uses for reactive mode.
pub const REACTIVE_NOTE: &str = "scheduler-mode: reactive: Flink refuses every \
    resource-requirements update, so the scaler never PUTs to this job and sizes it in \
    TaskManagers (every vertex runs at slots × TaskManagers, bounded by maxParallelism); \
    every scale-down is a failover (Flink has no graceful TaskManager removal), so the \
    scaler takes a checkpoint first and holds scale-downs twice as long";

/// One line per finding of a freshly read set-up (reactive mode, each delaying setting).
pub fn notes(fresh: &FreshSetup) -> Vec<String> {
    let mut out = Vec::new();
    if fresh.setup.reactive {
        out.push(REACTIVE_NOTE.to_owned());
    }
    out.extend(fresh.delays.iter().map(RescaleDelay::summary));
    out
}

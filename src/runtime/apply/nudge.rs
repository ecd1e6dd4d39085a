//! The checkpoint a Flink 2.x rescale waits for, taken as soon as the job holds the new
//! slots (the rule and why: [`crate::core::rescale::nudge`]). A task beside the rescale:
//! it reads the job and its JobManager's TaskManagers every `poll`, triggers a
//! `CONFIGURED` checkpoint when one is due, and ends when the job restarts, the deadline
//! passes or the triggers are used up; dropping its [`CheckpointNudger`] stops it. Read
//! and trigger errors are logged and never fail the rescale: Flink then rescales at its
//! next periodic checkpoint, as it would without the scaler.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use chrono::Utc;
use tracing::Instrument;

use crate::{
    core::{
        rescale::nudge::{awaits_restart, slots_held, CheckpointNudge},
        JobId, VertexId,
    },
    flink::{
        job_status, task_manager_slots, vertex_parallelism, CheckpointKind, FlinkClient, FlinkError,
    },
};

/// What the nudge waits for: the job, its target parallelism and the slots it needs.
#[derive(Debug, Clone)]
pub struct NudgeTarget {
    /// The job being rescaled.
    pub job_id: JobId,
    /// Its target parallelism per vertex.
    pub parallelism: BTreeMap<VertexId, u32>,
    /// Slots the target needs ([`crate::core::slots::slots_needed`]).
    pub slots: u64,
}

/// The running nudge of one rescale; dropping it stops the task.
#[derive(Debug)]
pub struct CheckpointNudger {
    task: tokio::task::JoinHandle<u32>,
}

impl CheckpointNudger {
    /// Starts the nudge of `target` (in the current span) for at most `deadline`.
    pub fn spawn(
        client: FlinkClient,
        target: NudgeTarget,
        deadline: Duration,
        poll: Duration,
    ) -> Self {
        let span = tracing::info_span!("checkpoint_nudge", job_id = %target.job_id);
        let task = tokio::spawn(run(client, target, deadline, poll).instrument(span));
        Self { task }
    }

    /// True once the task ended.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for CheckpointNudger {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The nudge loop; returns the checkpoints it triggered.
async fn run(client: FlinkClient, target: NudgeTarget, deadline: Duration, poll: Duration) -> u32 {
    let until = Instant::now() + deadline;
    let mut nudge = CheckpointNudge::default();
    while Instant::now() < until && !nudge.exhausted() {
        match look(&client, &target).await {
            Ok(Look::Restarted) => break,
            Ok(Look::Waiting { ready }) => {
                let now = Utc::now();
                if nudge.due(now, ready) {
                    nudge.fire(now);
                    trigger(&client, &target.job_id, nudge.fired()).await;
                }
            }
            Err(e) => tracing::debug!(error = %e, "cannot read the job for the checkpoint nudge"),
        }
        tokio::time::sleep(poll).await;
    }
    nudge.fired()
}

/// Where the rescale stands for the nudge.
enum Look {
    /// The job left the old parallelism (or is not running): nothing more to do.
    Restarted,
    /// Still at the old parallelism; `ready` when it holds the target's slots.
    Waiting { ready: bool },
}

async fn look(client: &FlinkClient, target: &NudgeTarget) -> Result<Look, FlinkError> {
    let details = client.job(&target.job_id).await?;
    let parallelism = vertex_parallelism(&details);
    if !awaits_restart(
        job_status(&details.state),
        &parallelism,
        &target.parallelism,
    ) {
        return Ok(Look::Restarted);
    }
    let slots = task_manager_slots(&client.task_managers().await?);
    Ok(Look::Waiting {
        ready: slots_held(&slots) >= target.slots,
    })
}

async fn trigger(client: &FlinkClient, job_id: &JobId, n: u32) {
    match client
        .trigger_checkpoint(job_id, CheckpointKind::Configured)
        .await
    {
        Ok(request) => tracing::info!(
            request_id = %request,
            nth = n,
            "checkpoint triggered: the job holds the new slots and Flink rescales at the next completed checkpoint"
        ),
        Err(e) => tracing::warn!(
            error = %e,
            kind = e.kind(),
            "cannot trigger the checkpoint the rescale waits for; Flink rescales at its next periodic one"
        ),
    }
}

//! What the rescale state machine observes of a job, read over REST and mapped to the
//! core's [`RescaleObservation`]: state, per-vertex parallelism, task states, registered
//! TaskManagers and their slots, and the failover signals (`numRestarts`, the newest
//! exception) — the last two best effort.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::core::{JobId, JobStatus, RescaleObservation, TaskManagerSlots, VertexId};

use super::{
    client::{is_terminal_state, FlinkClient},
    error::FlinkError,
    model::{JobDetails, TaskManagerInfo},
};

/// Maps Flink's job state string to the core status.
pub fn job_status(state: &str) -> JobStatus {
    match state {
        "RUNNING" => JobStatus::Running,
        "RESTARTING" => JobStatus::Restarting,
        "FAILING" => JobStatus::Failing,
        "CANCELLING" => JobStatus::Cancelling,
        "CREATED" | "INITIALIZING" | "RECONCILING" => JobStatus::Created,
        _ => JobStatus::Other,
    }
}

/// True when every subtask of every vertex is RUNNING or FINISHED.
pub fn all_tasks_running(details: &JobDetails) -> bool {
    details
        .vertices
        .iter()
        .all(|v| v.tasks.running + v.tasks.finished == v.parallelism)
}

/// Reads everything the state machine needs at `now`. `numRestarts` and the exception
/// history are best effort (`None` when unreadable).
pub async fn observe_rescale(
    client: &FlinkClient,
    job_id: &JobId,
    now: DateTime<Utc>,
) -> Result<RescaleObservation, FlinkError> {
    observe_rescale_with(client, job_id, now, false).await
}

/// [`observe_rescale`], plus Flink 2.3's rescale history when `history` is on (best
/// effort: `None` when unreadable).
pub async fn observe_rescale_with(
    client: &FlinkClient,
    job_id: &JobId,
    now: DateTime<Utc>,
    history: bool,
) -> Result<RescaleObservation, FlinkError> {
    let details = client.job(job_id).await?;
    let task_managers = client.task_managers().await?;
    Ok(observe_rescale_from(client, &details, &task_managers, now, history).await)
}

/// [`observe_rescale_with`] on a job's details and its JobManager's TaskManagers read
/// already (the scaler's tick shares them between the jobs of a JobManager): reads only
/// the job's failover signals (`numRestarts`, the exception history and, when
/// `history` is on, the rescale history; each best effort).
pub async fn observe_rescale_from(
    client: &FlinkClient,
    details: &JobDetails,
    task_managers: &[TaskManagerInfo],
    now: DateTime<Utc>,
    history: bool,
) -> RescaleObservation {
    let job_id = &details.jid;
    let num_restarts = client
        .job_metrics(job_id, &["numRestarts"])
        .await
        .ok()
        .and_then(|m| m.get("numRestarts").copied())
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| v as u64);
    let latest_exception_ms = match client.exceptions(job_id).await {
        Ok(h) => h.entries.iter().map(|e| e.timestamp).max(),
        Err(_) => None,
    };
    RescaleObservation {
        at: now,
        status: job_status(&details.state),
        terminal: is_terminal_state(&details.state),
        parallelism: vertex_parallelism(details),
        all_tasks_running: all_tasks_running(details),
        task_managers: task_manager_slots(task_managers),
        num_restarts,
        latest_exception_ms,
        rescale_history: read_history(client, job_id, history).await,
    }
}

/// Each vertex's parallelism as `/jobs/:id` reports it.
pub fn vertex_parallelism(details: &JobDetails) -> BTreeMap<VertexId, u32> {
    details
        .vertices
        .iter()
        .map(|v| (VertexId::new(v.id.clone()), v.parallelism))
        .collect()
}

/// The slots of each TaskManager as `/taskmanagers` reports them.
pub fn task_manager_slots(task_managers: &[TaskManagerInfo]) -> Vec<TaskManagerSlots> {
    task_managers
        .iter()
        .map(|t| TaskManagerSlots {
            id: t.id.clone(),
            slots_total: t.slots_number,
            slots_free: t.free_slots,
        })
        .collect()
}

async fn read_history(
    client: &FlinkClient,
    job_id: &JobId,
    history: bool,
) -> Option<Vec<crate::core::HistoryRecord>> {
    if !history {
        return None;
    }
    let records = client.rescale_history(job_id).await.ok().flatten()?;
    Some(super::history::history_records(&records))
}

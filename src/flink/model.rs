//! Wire types of the Flink REST API (the subset the scaler reads), with the field
//! differences between Flink 1.18, 1.19, 1.20 and 2.x:
//!
//! * `vertices[].slotSharingGroupId` exists from 1.20 on (absent before → `None`).
//! * `vertices[].maxParallelism` exists from 1.16 on; kept optional.
//! * The `plan` embedded in `/jobs/:id` was serialized as the string
//!   `RawJson{json='…'}` by 1.17–1.18 (an object from 1.19 on); see [`parse_plan`].
//! * `/jobs/:id/exceptions`: 2.x dropped `root-exception`/`all-exceptions`; only
//!   `exceptionHistory.entries` is read (present since 1.13).
//! * `/jobs/:id/checkpoints/config`: `interval` is `Long.MAX_VALUE` when checkpointing is
//!   off (older versions answer 404 instead).
//! * `/jobs/:id` reports `schedulerType` (`Adaptive`, `Default`) in newer versions only.
//! * `/overview` gained `taskmanagers-blocked`/`slots-free-and-blocked` (ignored) and
//!   `/jobs/:id/run` answers `applicationId` in 2.x (ignored).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::PlanError;
use crate::core::JobId;

/// `GET /overview`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterOverview {
    /// Registered TaskManagers.
    pub taskmanagers: u32,
    /// Total task slots.
    #[serde(rename = "slots-total")]
    pub slots_total: u32,
    /// Free task slots.
    #[serde(rename = "slots-available")]
    pub slots_available: u32,
    /// Running jobs.
    #[serde(rename = "jobs-running", default)]
    pub jobs_running: u32,
    /// Flink version, e.g. `2.3.0`.
    #[serde(rename = "flink-version", default)]
    pub flink_version: String,
}

/// One entry of `GET /jobs/overview`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSummary {
    /// Job id.
    pub jid: JobId,
    /// Job name.
    pub name: String,
    /// Job state (`RUNNING`, `RESTARTING`, `CREATED`, `FAILED`, ...).
    pub state: String,
    /// Start time, ms since the epoch.
    #[serde(rename = "start-time", default)]
    pub start_time: i64,
    /// Last state change, ms since the epoch (an in-place rescale moves it too, on 1.20
    /// and 2.x); 0 when absent.
    #[serde(rename = "last-modification", default)]
    pub last_modification: i64,
    /// Subtask counts (`total`: the sum of the vertices' parallelism).
    #[serde(default)]
    pub tasks: SubtaskCounts,
}

impl JobSummary {
    /// What changes whenever the job's id, state or parallelism changes: the key of the
    /// scaler's cached job details and topology.
    pub fn change_key(&self) -> (JobId, String, i64, Option<u32>) {
        (
            self.jid.clone(),
            self.state.clone(),
            self.last_modification,
            self.tasks.total,
        )
    }
}

/// `GET /jobs/overview`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct JobsOverview {
    pub jobs: Vec<JobSummary>,
}

/// A vertex of `GET /jobs/:id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VertexDetails {
    /// Vertex id (32 hex).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Current parallelism.
    pub parallelism: u32,
    /// Max parallelism (key groups); absent in old versions.
    #[serde(rename = "maxParallelism", default)]
    pub max_parallelism: Option<u32>,
    /// Slot sharing group id (Flink 1.20+).
    #[serde(rename = "slotSharingGroupId", default)]
    pub slot_sharing_group_id: Option<String>,
    /// Vertex execution state (`RUNNING`, `CREATED`, ...).
    #[serde(default)]
    pub status: String,
    /// Subtask counts by execution state.
    #[serde(default)]
    pub tasks: SubtaskCounts,
}

/// `GET /jobs/:id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobDetails {
    /// Job id.
    pub jid: JobId,
    /// Job name.
    pub name: String,
    /// Job state.
    pub state: String,
    /// Start time, ms since the epoch.
    #[serde(rename = "start-time", default)]
    pub start_time: i64,
    /// Last time the job entered each state (ms since the epoch).
    #[serde(default)]
    pub timestamps: StateTimes,
    /// Job vertices.
    pub vertices: Vec<VertexDetails>,
    /// Scheduler (`Adaptive`, `Default`, ...); reported by newer versions only.
    #[serde(rename = "schedulerType", default)]
    pub scheduler_type: Option<String>,
    /// The embedded plan (object, or the `RawJson{json='…'}` string of 1.17–1.18).
    #[serde(default)]
    pub plan: Option<serde_json::Value>,
}

/// One input of a plan node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanInput {
    /// Upstream vertex id.
    pub id: String,
    /// Partitioning (`HASH`, `REBALANCE`, `FORWARD`, ...).
    #[serde(default)]
    pub ship_strategy: String,
}

/// One node of the job plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanNode {
    /// Vertex id.
    pub id: String,
    /// Parallelism at plan time.
    #[serde(default)]
    pub parallelism: u32,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Inputs (absent for sources).
    #[serde(default)]
    pub inputs: Vec<PlanInput>,
}

/// The job plan (`plan` of `/jobs/:id/plan`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobPlan {
    /// Nodes.
    pub nodes: Vec<PlanNode>,
}

/// The subtask counts the scaler reads of Flink's `tasks` map (counts by execution state):
/// Flink lists all eleven states and a worker keeps its job's details until the job
/// changes, so the rest is not kept (a map per vertex was 2.4 kB per job at 1,000 jobs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubtaskCounts {
    /// `RUNNING`.
    #[serde(rename = "RUNNING", default)]
    pub running: u32,
    /// `FINISHED`.
    #[serde(rename = "FINISHED", default)]
    pub finished: u32,
    /// `total` (`/jobs/overview` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u32>,
}

/// The state times the scaler reads of Flink's `timestamps` map (ms since the epoch of
/// the last entry into each job state).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateTimes {
    /// `RUNNING` (0 or absent: never).
    #[serde(rename = "RUNNING", default, skip_serializing_if = "Option::is_none")]
    pub running: Option<i64>,
}

/// Parses a plan value: an object `{nodes: […]}` (possibly wrapped as `{plan: {…}}`), a
/// JSON string, or Flink 1.17–1.18's `RawJson{json='…'}` string.
pub fn parse_plan(value: &serde_json::Value) -> Result<JobPlan, PlanError> {
    match value {
        serde_json::Value::String(s) => {
            let s = s.trim();
            let inner = s
                .strip_prefix("RawJson{json='")
                .and_then(|r| r.strip_suffix("'}"))
                .unwrap_or(s);
            let v: serde_json::Value = serde_json::from_str(inner)
                .map_err(|e| PlanError::NotJson(super::response::json_problem(&e)))?;
            parse_plan(&v)
        }
        serde_json::Value::Object(map) => {
            if let Some(inner) = map.get("plan") {
                return parse_plan(inner);
            }
            serde_json::from_value(value.clone())
                .map_err(|e| PlanError::Shape(super::response::json_problem(&e)))
        }
        serde_json::Value::Array(_) => Err(PlanError::Type("array")),
        serde_json::Value::Number(_) => Err(PlanError::Type("number")),
        serde_json::Value::Bool(_) => Err(PlanError::Type("boolean")),
        serde_json::Value::Null => Err(PlanError::Type("null")),
    }
}

/// One entry of `exceptionHistory.entries` of `GET /jobs/:id/exceptions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExceptionEntry {
    /// Exception class.
    #[serde(rename = "exceptionName", default)]
    pub exception_name: String,
    /// When it happened, ms since the epoch.
    #[serde(default)]
    pub timestamp: i64,
    /// The failing task, if task-local.
    #[serde(rename = "taskName", default)]
    pub task_name: Option<String>,
    /// Failure labels (1.18+).
    #[serde(rename = "failureLabels", default)]
    pub failure_labels: BTreeMap<String, String>,
}

/// The exception history of a job.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ExceptionHistory {
    /// Entries, newest first.
    #[serde(default)]
    pub entries: Vec<ExceptionEntry>,
    /// True when Flink truncated the list.
    #[serde(default)]
    pub truncated: bool,
}

/// `GET /jobs/:id/exceptions`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct JobExceptions {
    #[serde(rename = "exceptionHistory", default)]
    pub exception_history: ExceptionHistory,
}

/// One TaskManager of `GET /taskmanagers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskManagerInfo {
    /// TaskManager id (resource id).
    pub id: String,
    /// Akka/Pekko path (contains the address).
    #[serde(default)]
    pub path: String,
    /// Data port.
    #[serde(rename = "dataPort", default)]
    pub data_port: u32,
    /// Total slots.
    #[serde(rename = "slotsNumber")]
    pub slots_number: u32,
    /// Free slots.
    #[serde(rename = "freeSlots")]
    pub free_slots: u32,
    /// ms since the last heartbeat.
    #[serde(rename = "timeSinceLastHeartbeat", default)]
    pub time_since_last_heartbeat: i64,
}

impl TaskManagerInfo {
    /// The host part of `path` (`pekko.tcp://flink@10.0.0.5:6122/user/rpc/taskmanager_0`
    /// → `10.0.0.5`), if present.
    pub fn host(&self) -> Option<&str> {
        let after = self.path.split('@').nth(1)?;
        let hostport = after.split('/').next()?;
        Some(hostport.rsplit_once(':').map_or(hostport, |(h, _)| h))
    }
}

/// `GET /taskmanagers`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TaskManagers {
    pub taskmanagers: Vec<TaskManagerInfo>,
}

/// `GET /jobs/:id/checkpoints/config` (subset).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CheckpointConfig {
    pub interval: i64,
}

/// Summary of `GET /jobs/:id/checkpoints`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CheckpointStats {
    /// Completed checkpoints.
    pub completed: u64,
    /// Failed checkpoints.
    pub failed: u64,
    /// Id of the latest completed checkpoint.
    pub latest_completed_id: Option<u64>,
    /// Id of the checkpoint the job last restored from (rescale or failover).
    pub restored_id: Option<u64>,
    /// When that restore happened, ms since the epoch.
    pub restored_at_ms: Option<i64>,
}

/// A vertex's bounds in the resource-requirements body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParallelismBounds {
    /// Lower bound (≥ 1; `-1` means 1, never sent by us).
    #[serde(rename = "lowerBound")]
    pub lower_bound: i64,
    /// Upper bound (≥ lower, ≤ maxParallelism; `-1` means maxParallelism, never sent by us).
    #[serde(rename = "upperBound")]
    pub upper_bound: i64,
}

/// Requirements of one vertex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VertexRequirements {
    /// Parallelism bounds.
    pub parallelism: ParallelismBounds,
}

/// `GET/PUT /jobs/:id/resource-requirements`: vertex id → requirements (a flat map).
pub type ResourceRequirements = BTreeMap<String, VertexRequirements>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_counts_and_times_it_reads() {
        let v: VertexDetails = serde_json::from_value(serde_json::json!({
            "id": "a", "name": "map", "parallelism": 3, "status": "RUNNING",
            "tasks": {"CREATED": 0, "RUNNING": 2, "FAILED": 0, "FINISHED": 1}
        }))
        .expect("vertex");
        assert_eq!(
            (v.tasks.running, v.tasks.finished, v.tasks.total),
            (2, 1, None)
        );
        let d: JobDetails = serde_json::from_value(serde_json::json!({
            "jid": "0123456789abcdef0123456789abcdef", "name": "j", "state": "RUNNING",
            "timestamps": {"RUNNING": 5, "FAILED": 0, "CREATED": 1},
            "vertices": []
        }))
        .expect("details");
        assert_eq!(d.timestamps.running, Some(5));
    }
}

//! What the decision core knows about a job at one instant: its topology and state as
//! Flink reports them, plus the signals read from Prometheus. Every signal is optional:
//! a missing or non-finite value is kept as such so the core can refuse to decide with a
//! reason instead of treating it as "no load".

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    signal::Signal,
    topology::{Topology, VertexId},
};

/// Flink job status (subset of `JobStatus` that matters for scaling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    /// Created, waiting for resources.
    Created,
    /// Running (all tasks deployed or deploying).
    Running,
    /// Restarting (failover or in-place rescale).
    Restarting,
    /// Failing.
    Failing,
    /// Cancelling.
    Cancelling,
    /// Terminal or unknown state.
    Other,
}

/// Per-vertex signals (aggregated across the vertex's subtasks).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VertexSignals {
    /// `busyTimeMsPerSecond`, max across subtasks (0..=1000).
    pub busy_ms_per_s: Option<f64>,
    /// `backPressuredTimeMsPerSecond`, max across subtasks (0..=1000).
    pub backpressured_ms_per_s: Option<f64>,
    /// Records in per second, summed across subtasks (for sources: the source operator's
    /// `numRecordsInPerSecond`/`numRecordsOutPerSecond`, i.e. the ingest rate).
    pub records_in_per_s: Option<f64>,
    /// Records out per second, summed across subtasks.
    pub records_out_per_s: Option<f64>,
    /// Sources only: FLIP-33 `pendingRecords` summed across subtasks (the backlog).
    pub pending_records: Option<f64>,
    /// Sources only: growth of `pendingRecords` in records per second (may be negative).
    pub lag_growth_per_s: Option<f64>,
    /// Sources only: records arriving per second (consumed + backlog growth) over the
    /// short arrival window; when present it is the source's arrival rate.
    #[serde(default)]
    pub arrival_per_s: Option<f64>,
    /// Sources only: number of partitions/splits when known (alignment).
    pub partitions: Option<u32>,
}

/// Per-TaskManager resource signals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskManagerSignals {
    /// TaskManager id (`tm_id` label).
    pub tm_id: String,
    /// `Status_JVM_CPU_Load` (0..=1, fraction of the TaskManager's CPUs).
    pub cpu_load: Option<f64>,
    /// Heap used, bytes.
    pub heap_used_bytes: Option<f64>,
    /// Heap max, bytes.
    pub heap_max_bytes: Option<f64>,
    /// GC time in ms per second (all collectors).
    pub gc_ms_per_s: Option<f64>,
}

/// Job-level signals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobSignals {
    /// `numRestarts` (includes rescale restarts on most versions).
    pub num_restarts: Option<f64>,
    /// `numRescales` where Flink exports it (FLINK-36871).
    pub num_rescales: Option<f64>,
    /// Cluster slots in total.
    pub slots_total: Option<f64>,
    /// Cluster slots available.
    pub slots_available: Option<f64>,
}

/// Everything the core needs for one decision about one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// When the signals were read.
    pub at: DateTime<Utc>,
    /// Flink job id.
    pub job_id: String,
    /// Flink job name.
    pub job_name: String,
    /// Job status from Flink REST.
    pub status: JobStatus,
    /// When the job last entered RUNNING (`timestamps.RUNNING`); used for stabilization.
    pub running_since: Option<DateTime<Utc>>,
    /// The job graph with current parallelism.
    pub topology: Topology,
    /// Slots per TaskManager (`taskmanager.numberOfTaskSlots`), if known.
    pub slots_per_task_manager: Option<u32>,
    /// TaskManagers currently registered with the JobManager.
    pub task_managers_registered: Option<u32>,
    /// Per-vertex signals, keyed by vertex id. A vertex absent here has no signals.
    pub vertices: BTreeMap<VertexId, VertexSignals>,
    /// Per-TaskManager signals.
    pub task_managers: Vec<TaskManagerSignals>,
    /// Job-level signals.
    pub job: JobSignals,
    /// Predictive pre-scaling: TaskManagers last period's peak at this time of day/week
    /// needs (computed by the runtime from history with [`super::predictive_floor`]).
    #[serde(default)]
    pub predicted_floor: Option<u32>,
    /// How long the signal queries take to show a change in full (their longest window
    /// plus a scrape), when the runtime knows it; `None` otherwise. Drives the settle
    /// times of [`super::Policy::scale_down_settle`] and `scale_up_settle`.
    #[serde(default)]
    pub signal_window: Option<std::time::Duration>,
    /// How long after the first tick that saw a change `arrivalRate` shows it in full (its
    /// window), when the runtime knows it. A scale-up settles within this when every
    /// source has an arrival rate: a load step moves the arrival, not a vertex's true
    /// processing rate.
    #[serde(default)]
    pub arrival_window: Option<std::time::Duration>,
}

impl VertexSignals {
    /// Stores `value` as `signal` (per-vertex signals only; others are ignored).
    pub fn set(&mut self, signal: Signal, value: f64) {
        match signal {
            Signal::BusyTime => self.busy_ms_per_s = Some(value),
            Signal::BackPressuredTime => self.backpressured_ms_per_s = Some(value),
            Signal::RecordsIn => self.records_in_per_s = Some(value),
            Signal::RecordsOut => self.records_out_per_s = Some(value),
            Signal::PendingRecords => self.pending_records = Some(value),
            Signal::LagGrowth => self.lag_growth_per_s = Some(value),
            Signal::ArrivalRate => self.arrival_per_s = Some(value),
            Signal::SourcePartitions => {
                self.partitions =
                    (value.is_finite() && value >= 0.0 && value <= f64::from(u32::MAX))
                        .then(|| value.round() as u32)
            }
            _ => {}
        }
    }
}

impl TaskManagerSignals {
    /// Stores `value` as `signal` (per-TaskManager signals only; others are ignored).
    pub fn set(&mut self, signal: Signal, value: f64) {
        match signal {
            Signal::CpuLoad => self.cpu_load = Some(value),
            Signal::HeapUsed => self.heap_used_bytes = Some(value),
            Signal::HeapMax => self.heap_max_bytes = Some(value),
            Signal::GcTime => self.gc_ms_per_s = Some(value),
            _ => {}
        }
    }
}

impl JobSignals {
    /// Stores `value` as `signal` (job and cluster signals only; others are ignored).
    pub fn set(&mut self, signal: Signal, value: f64) {
        match signal {
            Signal::NumRestarts => self.num_restarts = Some(value),
            Signal::NumRescales => self.num_rescales = Some(value),
            Signal::SlotsTotal => self.slots_total = Some(value),
            Signal::SlotsAvailable => self.slots_available = Some(value),
            _ => {}
        }
    }
}

impl Observation {
    /// How long a scale-up's signals take to settle: the arrival window when every source
    /// has a short-window arrival rate (`arrival_known`: a load step moves the arrival at
    /// once; a vertex's true processing rate is a property of its code and does not step
    /// with the load), else the load signals' window.
    pub fn scale_up_signal_window(&self, arrival_known: bool) -> Option<std::time::Duration> {
        match (arrival_known, self.arrival_window, self.signal_window) {
            (true, Some(a), Some(w)) => Some(a.min(w)),
            (true, Some(a), None) => Some(a),
            (_, _, w) => w,
        }
    }
}

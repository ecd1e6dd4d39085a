//! The vocabulary of a signal read: the scope of each signal, what a failed required
//! signal is ([`SignalError`]), the issues of optional ones, per-query statistics and the
//! [`SignalRead`] a job gets. The read itself is in [`super::read`].
//!
//! Required signals (`busyTime`, `recordsIn`) must answer for every vertex of the
//! topology: an unreachable server, an empty result or a missing vertex is a
//! [`SignalError`] naming the signal (and the vertex). Optional signals that fail or are
//! empty become `None` plus a [`SignalIssue`]. Non-finite values are kept as they are
//! (the core refuses to decide on them) and reported as issues too.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};

use super::{error::QueryError, queries::TemplateError, windows::Windows};
use crate::core::{JobSignals, Observation, Signal, TaskManagerSignals, VertexId, VertexSignals};

/// Default deadline for all queries of one job.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default number of queries in flight per job.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// Options of one read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOptions {
    /// Evaluation time for every query (consistent snapshot); server time when `None`.
    pub at: Option<DateTime<Utc>>,
    /// Deadline for all queries together (retries included).
    pub timeout: Duration,
    /// Queries in flight at once.
    pub concurrency: usize,
    /// `{{interval}}` and `{{window}}` (the learned or configured scrape interval).
    pub windows: Windows,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            at: None,
            timeout: DEFAULT_READ_TIMEOUT,
            concurrency: DEFAULT_CONCURRENCY,
            windows: Windows::default(),
        }
    }
}

/// How a signal groups its series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One series per vertex, keyed by `task_id`.
    Vertex,
    /// One series per TaskManager, keyed by `tm_id`.
    TaskManager,
    /// A single series for the job (or cluster).
    Job,
}

impl Scope {
    /// The scope of a signal.
    pub fn of(signal: Signal) -> Self {
        match signal {
            Signal::BusyTime
            | Signal::BackPressuredTime
            | Signal::RecordsIn
            | Signal::RecordsOut
            | Signal::PendingRecords
            | Signal::LagGrowth
            | Signal::ArrivalRate
            | Signal::SourcePartitions => Scope::Vertex,
            Signal::CpuLoad | Signal::HeapUsed | Signal::HeapMax | Signal::GcTime => {
                Scope::TaskManager
            }
            Signal::NumRestarts
            | Signal::NumRescales
            | Signal::SlotsTotal
            | Signal::SlotsAvailable => Scope::Job,
        }
    }

    /// The label that keys the series (`None` for job scope).
    pub fn key_label(self) -> Option<&'static str> {
        match self {
            Scope::Vertex => Some("task_id"),
            Scope::TaskManager => Some("tm_id"),
            Scope::Job => None,
        }
    }
}

/// What a required signal's failure was.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SignalErrorKind {
    /// The query template could not be rendered.
    #[error("{0}")]
    Template(#[source] TemplateError),
    /// The query failed (unreachable, HTTP error, PromQL error, malformed answer).
    #[error("query for job {job_id} failed: {source}")]
    Query {
        /// Flink job id.
        job_id: String,
        /// The client error (shared by every job of a batch query).
        #[source]
        source: Arc<QueryError>,
    },
    /// The query returned no series at all.
    #[error("query returned no series for job {job_id} (query: {query})")]
    Empty {
        /// Flink job id.
        job_id: String,
        /// Rendered PromQL.
        query: String,
    },
    /// The result has series but none carries the key label (query not grouped by it).
    #[error("no series carries the label {label} for job {job_id}; group the query by ({label})")]
    MissingLabel {
        /// Flink job id.
        job_id: String,
        /// `task_id` or `tm_id`.
        label: &'static str,
    },
    /// Several series share one key (query not aggregated by the key label).
    #[error("{count} series for {label}={key} of job {job_id}; aggregate the query by ({label})")]
    Duplicate {
        /// Flink job id.
        job_id: String,
        /// `task_id`.
        label: &'static str,
        /// The repeated key.
        key: String,
        /// How many series carry it.
        count: usize,
    },
    /// A vertex of the topology has no series.
    #[error("no series for vertex {vertex} ({name}) of job {job_id}")]
    MissingVertex {
        /// Flink job id.
        job_id: String,
        /// The vertex.
        vertex: VertexId,
        /// Its name.
        name: String,
    },
    /// The deadline passed before the query answered.
    #[error("no answer within {timeout:?} for job {job_id}")]
    Timeout {
        /// Flink job id.
        job_id: String,
        /// The deadline.
        timeout: Duration,
    },
}

/// A required signal could not be read; no decision is possible.
#[derive(Debug, Clone, thiserror::Error)]
#[error("signal {signal}: {source}")]
pub struct SignalError {
    /// The signal.
    pub signal: Signal,
    /// What went wrong.
    #[source]
    pub source: SignalErrorKind,
}

impl SignalError {
    /// Bounded label value (the query error's kind for query failures).
    pub fn kind(&self) -> &'static str {
        self.source.kind()
    }
}

impl SignalErrorKind {
    /// The same error for another job (a shared query's outcome handed to each job).
    pub fn for_job(&self, id: &str) -> Self {
        let mut e = self.clone();
        match &mut e {
            SignalErrorKind::Template(_) => {}
            SignalErrorKind::Query { job_id, .. }
            | SignalErrorKind::Empty { job_id, .. }
            | SignalErrorKind::MissingLabel { job_id, .. }
            | SignalErrorKind::Duplicate { job_id, .. }
            | SignalErrorKind::MissingVertex { job_id, .. }
            | SignalErrorKind::Timeout { job_id, .. } => *job_id = id.to_string(),
        }
        e
    }

    /// Bounded label value (the query error's kind for query failures).
    pub fn kind(&self) -> &'static str {
        match self {
            SignalErrorKind::Template(e) => e.kind(),
            SignalErrorKind::Query { source, .. } => source.kind(),
            SignalErrorKind::Empty { .. } => "empty_result",
            SignalErrorKind::MissingLabel { .. } => "missing_label",
            SignalErrorKind::Duplicate { .. } => "duplicate_series",
            SignalErrorKind::MissingVertex { .. } => "missing_vertex",
            SignalErrorKind::Timeout { .. } => "timeout",
        }
    }
}

/// Something worth reporting that did not stop the read (optional signal failed or
/// empty, non-finite value, series for an unknown vertex).
#[derive(Debug, Clone, PartialEq)]
pub struct SignalIssue {
    /// The signal.
    pub signal: Signal,
    /// Bounded kind: a [`SignalError::kind`] value, `non_finite`, `unknown_vertex` or
    /// `too_many_task_managers`.
    pub kind: &'static str,
    /// Human-readable detail.
    pub message: String,
}

/// Timing of one query.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryStat {
    /// The signal.
    pub signal: Signal,
    /// Wall time of the query (retries included).
    pub duration: Duration,
    /// Series of this job the query returned (0 on failure).
    pub series: usize,
    /// Jobs the query answered at once (1: read for this job alone).
    pub jobs: usize,
    /// `ok` or the error kind.
    pub outcome: &'static str,
}

/// The signals of one job at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalRead {
    /// When the read started (or the requested evaluation time).
    pub at: DateTime<Utc>,
    /// Per-vertex signals for the vertices of the topology.
    pub vertices: BTreeMap<VertexId, VertexSignals>,
    /// Per-TaskManager signals, sorted by `tm_id`.
    pub task_managers: Vec<TaskManagerSignals>,
    /// Job and cluster signals.
    pub job: JobSignals,
    /// One entry per query made.
    pub queries: Vec<QueryStat>,
    /// Non-fatal problems.
    pub issues: Vec<SignalIssue>,
    /// Wall time of the whole read.
    pub elapsed: Duration,
    /// The windows the queries were rendered with.
    pub windows: Windows,
    /// Age of the oldest rows used (batched rows come from the hub's last round; 0 when
    /// every query was made for this read).
    pub age: Duration,
    /// How long the signals take to show a load change in full (the counter window plus
    /// a scrape), when that is known: the scrape interval was learned or configured and
    /// the load queries follow `{{window}}`. `None` otherwise (set by the runtime's
    /// signal hub; a plain read leaves it `None`).
    pub signal_window: Option<Duration>,
    /// How long `arrivalRate` takes to show a load change in full (its window plus a
    /// scrape), when known (set by the runtime's signal hub, like `signal_window`).
    pub arrival_window: Option<Duration>,
}

impl SignalRead {
    /// Queries made for this read (one per enabled signal).
    pub fn query_count(&self) -> usize {
        self.queries.len()
    }

    /// Copies the signals into an observation (`at`, `vertices`, `task_managers`, `job`).
    pub fn apply_to(&self, obs: &mut Observation) {
        obs.at = self.at;
        obs.vertices = self.vertices.clone();
        obs.task_managers = self.task_managers.clone();
        obs.job = self.job.clone();
    }
}

//! `read_signals`: one grouped query per enabled signal for one job, run concurrently
//! under one deadline, mapped to vertices (`task_id`), TaskManagers (`tm_id`) and the job.
//!
//! Required signals (`busyTime`, `recordsIn`) must answer for every vertex of the
//! topology: an unreachable server, an empty result or a missing vertex is a
//! [`SignalError`] naming the signal (and the vertex). Optional signals that fail or are
//! empty become `None` plus a [`SignalIssue`]. Non-finite values are kept as they are
//! (the core refuses to decide on them) and reported as issues too.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use futures_util::{stream, StreamExt};

use super::{
    client::PromClient,
    error::QueryError,
    keying::{check_coverage, key_by_scope, unknown_vertex},
    queries::{JobVars, SignalQueries, TemplateError},
    response::Sample,
};
use crate::core::{
    JobSignals, Observation, Signal, TaskManagerSignals, Topology, VertexId, VertexSignals,
};

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
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            at: None,
            timeout: DEFAULT_READ_TIMEOUT,
            concurrency: DEFAULT_CONCURRENCY,
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
#[derive(Debug, thiserror::Error)]
pub enum SignalErrorKind {
    /// The query template could not be rendered.
    #[error("{0}")]
    Template(#[source] TemplateError),
    /// The query failed (unreachable, HTTP error, PromQL error, malformed answer).
    #[error("query for job {job_id} failed: {source}")]
    Query {
        /// Flink job id.
        job_id: String,
        /// The client error.
        #[source]
        source: QueryError,
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
#[derive(Debug, thiserror::Error)]
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
    /// Bounded kind: a [`SignalError::kind`] value, `non_finite` or `unknown_vertex`.
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
    /// Series returned (0 on failure).
    pub series: usize,
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

/// The outcome of one signal's query.
type Outcome = (Signal, Duration, Result<Vec<Sample>, SignalErrorKind>);

/// A signal's rendered query (or why it could not be rendered).
type Rendered = (Signal, Result<String, TemplateError>);

/// Reads every enabled signal of one job: one query per signal, concurrently, under one
/// deadline. Fails only when a required signal cannot be read for every vertex.
pub async fn read_signals(
    client: &PromClient,
    queries: &SignalQueries,
    vars: &JobVars,
    topology: &Topology,
    options: &ReadOptions,
) -> Result<SignalRead, SignalError> {
    let started = Instant::now();
    let at = options.at.unwrap_or_else(Utc::now);
    let job_id = vars.job_id.as_str();
    let rendered = render_all(queries, vars)?;
    let outcomes = run_queries(client, rendered, job_id, options).await;
    let mut read = SignalRead {
        at,
        vertices: BTreeMap::new(),
        task_managers: Vec::new(),
        job: JobSignals::default(),
        queries: Vec::with_capacity(outcomes.len()),
        issues: Vec::new(),
        elapsed: Duration::ZERO,
    };
    let by_signal = key_outcomes(outcomes, job_id, &mut read)?;
    for (signal, values) in &by_signal {
        check_coverage(*signal, values, topology, job_id)?;
    }
    distribute(&by_signal, topology, job_id, &mut read);
    read.elapsed = started.elapsed();
    tracing::debug!(
        job_id,
        queries = read.queries.len(),
        issues = read.issues.len(),
        elapsed_ms = read.elapsed.as_millis() as u64,
        "read signals"
    );
    Ok(read)
}

/// Renders the query of every enabled signal; a required signal's template error stops
/// the read, an optional one's is kept to be reported.
fn render_all(queries: &SignalQueries, vars: &JobVars) -> Result<Vec<Rendered>, SignalError> {
    let mut rendered = Vec::new();
    for (signal, _) in queries.enabled() {
        match queries.render(signal, vars) {
            Ok(Some(q)) => rendered.push((signal, Ok(q))),
            Ok(None) => {}
            Err(e) if signal.is_required() => {
                return Err(SignalError {
                    signal,
                    source: SignalErrorKind::Template(e),
                })
            }
            Err(e) => rendered.push((signal, Err(e))),
        }
    }
    Ok(rendered)
}

/// Runs the rendered queries, `options.concurrency` at a time, under one deadline;
/// returns the outcomes sorted by signal.
async fn run_queries(
    client: &PromClient,
    rendered: Vec<Rendered>,
    job_id: &str,
    options: &ReadOptions,
) -> Vec<Outcome> {
    let deadline = tokio::time::Instant::now() + options.timeout;
    let mut outcomes: Vec<Outcome> = stream::iter(rendered)
        .map(|(signal, promql)| async move {
            let t0 = Instant::now();
            let result = match promql {
                Ok(q) => query_one(client, &q, job_id, options, deadline).await,
                Err(e) => Err(SignalErrorKind::Template(e)),
            };
            (signal, t0.elapsed(), result)
        })
        .buffer_unordered(options.concurrency.max(1))
        .collect()
        .await;
    outcomes.sort_by_key(|o| o.0);
    outcomes
}

/// One signal's query, bounded by the read's deadline; an empty result is its own error.
async fn query_one(
    client: &PromClient,
    promql: &str,
    job_id: &str,
    options: &ReadOptions,
    deadline: tokio::time::Instant,
) -> Result<Vec<Sample>, SignalErrorKind> {
    match tokio::time::timeout_at(deadline, client.query(promql, options.at)).await {
        Err(_) => Err(SignalErrorKind::Timeout {
            job_id: job_id.to_string(),
            timeout: options.timeout,
        }),
        Ok(Err(QueryError::EmptyResult { query })) => Err(SignalErrorKind::Empty {
            job_id: job_id.to_string(),
            query,
        }),
        Ok(Err(source)) => Err(SignalErrorKind::Query {
            job_id: job_id.to_string(),
            source,
        }),
        Ok(Ok(samples)) => Ok(samples),
    }
}

/// Keys each outcome's samples ([`key_by_scope`]) and records one [`QueryStat`] per
/// query; a required signal's failure stops the read, an optional one's is an issue.
fn key_outcomes(
    outcomes: Vec<Outcome>,
    job_id: &str,
    read: &mut SignalRead,
) -> Result<BTreeMap<Signal, BTreeMap<String, f64>>, SignalError> {
    let mut by_signal = BTreeMap::new();
    for (signal, duration, result) in outcomes {
        let keyed = result.and_then(|samples| {
            key_by_scope(signal, samples, job_id).map(|m| {
                m.into_iter()
                    .map(|(k, s)| (k, s.value))
                    .collect::<BTreeMap<_, _>>()
            })
        });
        let (series, outcome) = match &keyed {
            Ok(map) => (map.len(), "ok"),
            Err(e) => (0, e.kind()),
        };
        read.queries.push(QueryStat {
            signal,
            duration,
            series,
            outcome,
        });
        match keyed {
            Ok(map) => {
                by_signal.insert(signal, map);
            }
            Err(source) if signal.is_required() => return Err(SignalError { signal, source }),
            Err(source) => {
                let e = SignalError { signal, source };
                read.issues.push(SignalIssue {
                    signal,
                    kind: e.kind(),
                    message: e.to_string(),
                });
            }
        }
    }
    Ok(by_signal)
}

/// Puts every keyed value on its vertex, TaskManager or the job; non-finite values and
/// series for unknown vertices become issues.
fn distribute(
    by_signal: &BTreeMap<Signal, BTreeMap<String, f64>>,
    topology: &Topology,
    job_id: &str,
    read: &mut SignalRead,
) {
    let mut tms: BTreeMap<String, TaskManagerSignals> = BTreeMap::new();
    for (signal, values) in by_signal {
        let signal = *signal;
        for (key, value) in values {
            if !value.is_finite() {
                read.issues.push(SignalIssue {
                    signal,
                    kind: "non_finite",
                    message: format!("signal {signal}: non-finite value {value} for {key}"),
                });
            }
            match Scope::of(signal) {
                Scope::Vertex => {
                    let id = VertexId::new(key.clone());
                    if topology.vertex(&id).is_none() {
                        read.issues.push(SignalIssue {
                            signal,
                            kind: "unknown_vertex",
                            message: unknown_vertex(signal, key, job_id),
                        });
                        continue;
                    }
                    VertexSignals::set(read.vertices.entry(id).or_default(), signal, *value);
                }
                Scope::TaskManager => {
                    let entry = tms
                        .entry(key.clone())
                        .or_insert_with(|| TaskManagerSignals {
                            tm_id: key.clone(),
                            ..TaskManagerSignals::default()
                        });
                    TaskManagerSignals::set(entry, signal, *value);
                }
                Scope::Job => JobSignals::set(&mut read.job, signal, *value),
            }
        }
    }
    read.task_managers = tms.into_values().collect();
}

//! Reads the history: ONE `query_range` per enabled signal over the whole range at the
//! step (grouped by `task_id`/`tm_id` exactly like the live queries, rendered from the
//! same [`SignalQueries`] and [`JobVars`]), plus two count queries for what actually ran:
//! subtasks per vertex and TaskManagers running a task of the job.
//!
//! A required signal that fails or is empty over the whole range, and any query that
//! fails (unreachable, PromQL error), is an error naming the signal. An optional signal
//! that is empty over the range is reported as an issue and stays `None`. Points a
//! default query answered with its fallback gauge (a series marked `fks_fallback`, for
//! the steps where the counters had fewer than two samples in the window) are merged into
//! the series of the same group and counted as an issue.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use futures_util::{stream, StreamExt};

use super::{range::TimeRange, BacktestError};
use crate::{
    core::Signal,
    promql::{
        defaults::FALLBACK_LABEL, queries::render, JobVars, PromClient, QueryError, Series,
        SignalError, SignalErrorKind, SignalQueries, Windows,
    },
};

/// Range queries in flight at once.
const CONCURRENCY: usize = 4;

/// Subtasks per vertex over time (the job's actual parallelism).
pub const PARALLELISM_QUERY: &str = r#"count by (task_id) (flink_taskmanager_job_task_busyTimeMsPerSecond{ {{matchers}}job_id="{{job_id}}"})"#;
/// TaskManagers running a task of the job over time.
pub const TASK_MANAGERS_QUERY: &str = r#"count(count by (tm_id) (flink_taskmanager_job_task_busyTimeMsPerSecond{ {{matchers}}job_id="{{job_id}}"}))"#;

/// One range query made.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeQuery {
    /// Signal name, `parallelism` or `taskManagers`.
    pub name: String,
    /// Rendered PromQL.
    pub promql: String,
    /// Series returned.
    pub series: usize,
    /// Wall time (retries included).
    pub duration: Duration,
    /// `ok` or the error kind.
    pub outcome: &'static str,
}

/// The raw history of one job.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Series per signal (absent: disabled or empty optional signal).
    pub signals: BTreeMap<Signal, Vec<Series>>,
    /// `count by (task_id)` series.
    pub parallelism: Vec<Series>,
    /// The TaskManager count series.
    pub task_managers: Vec<Series>,
    /// Every query made, in signal order then the two counts.
    pub queries: Vec<RangeQuery>,
    /// Optional signals without any series over the range (left `None`).
    pub empty_optional: Vec<Signal>,
    /// Other non-fatal problems (unusable optional query templates).
    pub issues: Vec<String>,
}

/// `(index, target, promql, duration, result)` of one range query.
type Outcome = (
    usize,
    Target,
    String,
    Duration,
    Result<Vec<Series>, QueryError>,
);

enum Target {
    Signal(Signal),
    Count(&'static str),
}

impl Target {
    fn name(&self) -> String {
        match self {
            Target::Signal(s) => s.name().to_string(),
            Target::Count(w) => (*w).to_string(),
        }
    }
}

/// Runs the range queries (at most [`CONCURRENCY`] at once).
pub async fn fetch(
    client: &PromClient,
    queries: &SignalQueries,
    vars: &JobVars,
    windows: &Windows,
    range: &TimeRange,
) -> Result<History, BacktestError> {
    let mut history = History::default();
    let jobs = plan(queries, vars, windows, &mut history.issues)?;
    let results = run(client, jobs, range).await;
    let mut first_error: Option<BacktestError> = None;
    for (_, target, promql, duration, result) in results {
        history.queries.push(RangeQuery {
            name: target.name(),
            promql,
            series: result.as_ref().map(Vec::len).unwrap_or(0),
            duration,
            outcome: result.as_ref().map(|_| "ok").unwrap_or_else(|e| e.kind()),
        });
        let error = keep(&mut history, target, result, &vars.job_id);
        if first_error.is_none() {
            first_error = error;
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(history),
    }
}

/// The queries to run: every enabled signal's (a required signal's template error
/// stops the backtest, an optional one's is an issue), then the two counts.
fn plan(
    queries: &SignalQueries,
    vars: &JobVars,
    windows: &Windows,
    issues: &mut Vec<String>,
) -> Result<Vec<(Target, String)>, BacktestError> {
    let mut jobs: Vec<(Target, String)> = Vec::new();
    for (signal, _) in queries.enabled() {
        match queries.render(signal, vars, windows) {
            Ok(Some(q)) => jobs.push((Target::Signal(signal), q)),
            Ok(None) => {}
            Err(e) if signal.is_required() => {
                return Err(SignalError {
                    signal,
                    source: SignalErrorKind::Template(e),
                }
                .into())
            }
            Err(e) => issues.push(format!("signal {signal}: {e}")),
        }
    }
    for (what, template) in [
        ("parallelism", PARALLELISM_QUERY),
        ("taskManagers", TASK_MANAGERS_QUERY),
    ] {
        let q = render(Signal::BusyTime, template, vars, windows).map_err(|e| SignalError {
            signal: Signal::BusyTime,
            source: SignalErrorKind::Template(e),
        })?;
        jobs.push((Target::Count(what), q));
    }
    Ok(jobs)
}

/// Runs the queries concurrently; the outcomes in the order they were planned.
async fn run(client: &PromClient, jobs: Vec<(Target, String)>, range: &TimeRange) -> Vec<Outcome> {
    let mut results: Vec<Outcome> = stream::iter(jobs.into_iter().enumerate())
        .map(|(i, (target, promql))| async move {
            let t0 = Instant::now();
            let r = client
                .query_range(&promql, range.from, range.to, range.step)
                .await;
            (i, target, promql, t0.elapsed(), r)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    results.sort_by_key(|r| r.0);
    results
}

/// Keeps one query's series in the history, or returns why it cannot be used (an empty
/// optional signal is no error: it is listed and stays `None`).
fn keep(
    history: &mut History,
    target: Target,
    result: Result<Vec<Series>, QueryError>,
    job_id: &str,
) -> Option<BacktestError> {
    match (target, result) {
        (Target::Signal(s), Ok(series)) => {
            let (series, fallback) = merge_fallback(series);
            if fallback > 0 {
                history.issues.push(format!(
                    "signal {s}: {fallback} point(s) answered by the fallback gauge (fewer than 2 counter samples in the window)"
                ));
            }
            history.signals.insert(s, series);
            None
        }
        (Target::Count("parallelism"), Ok(series)) => {
            history.parallelism = series;
            None
        }
        (Target::Count(_), Ok(series)) => {
            history.task_managers = series;
            None
        }
        (Target::Signal(s), Err(QueryError::EmptyResult { .. })) if !s.is_required() => {
            history.empty_optional.push(s);
            None
        }
        (Target::Signal(signal), Err(QueryError::EmptyResult { query })) => {
            Some(BacktestError::from(SignalError {
                signal,
                source: SignalErrorKind::Empty {
                    job_id: job_id.to_string(),
                    query,
                },
            }))
        }
        (Target::Signal(signal), Err(source)) => Some(BacktestError::from(SignalError {
            signal,
            source: SignalErrorKind::Query {
                job_id: job_id.to_string(),
                source: std::sync::Arc::new(source),
            },
        })),
        (Target::Count(what), Err(source)) => Some(BacktestError::Count { what, source }),
    }
}

/// One point of a range series.
type Point = (chrono::DateTime<chrono::Utc>, f64);

/// Merges each series marked with [`FALLBACK_LABEL`] into the unmarked series of the same
/// labels (their points alternate in time); returns the series and the fallback points.
fn merge_fallback(series: Vec<Series>) -> (Vec<Series>, usize) {
    let mut merged: BTreeMap<BTreeMap<String, String>, Vec<Point>> = BTreeMap::new();
    let mut fallback = 0;
    for mut s in series {
        if s.labels.remove(FALLBACK_LABEL).is_some() {
            fallback += s.points.len();
        }
        merged.entry(s.labels).or_default().extend(s.points);
    }
    let series = merged
        .into_iter()
        .map(|(labels, mut points)| {
            points.sort_by_key(|p| p.0);
            points.dedup_by_key(|p| p.0);
            Series { labels, points }
        })
        .collect();
    (series, fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fallback points fill the steps the counter series misses, under one label set.
    #[test]
    fn fallback_points_merge_into_their_group() {
        let at = |s: i64| chrono::DateTime::from_timestamp(s, 0).unwrap_or_default();
        let labels = |fallback: bool| {
            let mut l = BTreeMap::from([("task_id".to_string(), "v".to_string())]);
            if fallback {
                l.insert(
                    FALLBACK_LABEL.to_string(),
                    "busyTimeMsPerSecond".to_string(),
                );
            }
            l
        };
        let (series, fallback) = merge_fallback(vec![
            Series {
                labels: labels(false),
                points: vec![(at(20), 2.0), (at(30), 3.0)],
            },
            Series {
                labels: labels(true),
                points: vec![(at(10), 1.0)],
            },
        ]);
        assert_eq!(fallback, 1);
        assert_eq!(series.len(), 1);
        let values: Vec<f64> = series[0].points.iter().map(|p| p.1).collect();
        assert_eq!(values, vec![1.0, 2.0, 3.0]);
    }
}

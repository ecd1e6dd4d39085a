//! `read_signals`: one job's signals read directly (one query per enabled signal, run
//! concurrently under one deadline — each a batch of one, demultiplexed exactly like a
//! batch of many), and [`assemble`]: per-signal outcomes → the job's [`SignalRead`],
//! shared with the runtime's signal hub, which hands each job the outcomes of its
//! batched queries.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use futures_util::{stream, StreamExt};

use super::{
    batch::{BatchQuery, JobOutcome, JobRows},
    client::PromClient,
    error::QueryError,
    keying::{check_coverage, unknown_vertex, unknown_vertices},
    queries::{JobVars, SignalQueries},
    response::Sample,
    signals::{
        QueryStat, ReadOptions, Scope, SignalError, SignalErrorKind, SignalIssue, SignalRead,
    },
    windows::{promql_duration, Windows},
};
use crate::core::{JobSignals, Signal, TaskManagerSignals, Topology, VertexId, VertexSignals};

/// One signal's outcome for one job, with the statistics of the query behind it.
#[derive(Debug, Clone)]
pub struct SignalOutcome {
    /// The query's statistics (for this job).
    pub stat: QueryStat,
    /// The job's rows, or why there are none.
    pub result: JobOutcome,
}

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
    let signals: Vec<Signal> = queries.enabled().map(|(s, _)| s).collect();
    let outcomes = read_direct(client, queries, &signals, vars, options).await;
    let mut read = assemble(at, outcomes, topology, &vars.job_id, options.windows)?;
    read.elapsed = started.elapsed();
    Ok(read)
}

/// Queries `signals` for one job alone (the hub's path for per-job templates and for a
/// job that missed its batch), concurrently under `options`' deadline.
pub async fn read_direct(
    client: &PromClient,
    queries: &SignalQueries,
    signals: &[Signal],
    vars: &JobVars,
    options: &ReadOptions,
) -> Vec<SignalOutcome> {
    let deadline = tokio::time::Instant::now() + options.timeout;
    let planned: Vec<BatchQuery<'_>> = signals
        .iter()
        .filter_map(|s| Some(BatchQuery::new(*s, queries.get(*s)?, options.windows)))
        .collect();
    let futures: Vec<_> = planned
        .into_iter()
        .map(|query| direct_one(client, query, vars, options, deadline))
        .collect();
    let mut outcomes: Vec<SignalOutcome> = stream::iter(futures)
        .buffer_unordered(options.concurrency.max(1))
        .collect()
        .await;
    outcomes.sort_by_key(|o| o.stat.signal);
    outcomes
}

/// One signal's query for one job alone.
async fn direct_one(
    client: &PromClient,
    query: BatchQuery<'_>,
    vars: &JobVars,
    options: &ReadOptions,
    deadline: tokio::time::Instant,
) -> SignalOutcome {
    let jobs = std::slice::from_ref(vars);
    let t0 = Instant::now();
    let result = match query.render(jobs) {
        Ok(promql) => query_until(client, &promql, options, deadline).await,
        Err(e) => Err(Fault::Template(e)),
    };
    let duration = t0.elapsed();
    let result = match result {
        Ok(samples) => one(query.demux(jobs, Ok(samples)), &vars.job_id),
        Err(Fault::Query(e)) => one(query.demux(jobs, Err(e)), &vars.job_id),
        Err(Fault::Template(e)) => Err(SignalErrorKind::Template(e)),
        Err(Fault::Timeout) => Err(SignalErrorKind::Timeout {
            job_id: vars.job_id.clone(),
            timeout: options.timeout,
        }),
    };
    SignalOutcome {
        stat: stat(query.signal, duration, 1, &result),
        result,
    }
}

/// Why a query gave no rows.
pub enum Fault {
    /// The template could not be rendered.
    Template(super::queries::TemplateError),
    /// The query failed (an empty result included).
    Query(QueryError),
    /// The deadline passed first.
    Timeout,
}

/// One query bounded by `deadline`.
pub async fn query_until(
    client: &PromClient,
    promql: &str,
    options: &ReadOptions,
    deadline: tokio::time::Instant,
) -> Result<Vec<Sample>, Fault> {
    match tokio::time::timeout_at(deadline, client.query(promql, options.at)).await {
        Err(_) => Err(Fault::Timeout),
        Ok(Err(e)) => Err(Fault::Query(e)),
        Ok(Ok(samples)) => Ok(samples),
    }
}

/// The outcome of the only job of a batch of one.
fn one(mut by_job: BTreeMap<String, JobOutcome>, job_id: &str) -> JobOutcome {
    by_job.remove(job_id).unwrap_or_else(|| {
        Err(SignalErrorKind::MissingLabel {
            job_id: job_id.to_string(),
            label: "job_id",
        })
    })
}

/// The statistics of one query for one job.
pub fn stat(signal: Signal, duration: Duration, jobs: usize, result: &JobOutcome) -> QueryStat {
    let (series, outcome) = match result {
        Ok(rows) => (rows.values.len(), "ok"),
        Err(e) => (0, e.kind()),
    };
    QueryStat {
        signal,
        duration,
        series,
        jobs,
        outcome,
    }
}

/// A job's read from its per-signal outcomes: a required signal that failed or misses a
/// vertex fails the read; optional failures, fallback gauges, non-finite values and
/// series of unknown vertices become issues.
pub fn assemble(
    at: DateTime<Utc>,
    outcomes: Vec<SignalOutcome>,
    topology: &Topology,
    job_id: &str,
    windows: Windows,
) -> Result<SignalRead, SignalError> {
    let mut read = SignalRead {
        at,
        vertices: BTreeMap::new(),
        task_managers: Vec::new(),
        job: JobSignals::default(),
        queries: Vec::with_capacity(outcomes.len()),
        issues: Vec::new(),
        elapsed: Duration::ZERO,
        windows,
        age: Duration::ZERO,
        signal_window: None,
        arrival_window: None,
    };
    let mut by_signal: BTreeMap<Signal, Arc<JobRows>> = BTreeMap::new();
    for SignalOutcome { stat, result } in outcomes {
        let signal = stat.signal;
        read.queries.push(stat);
        match result {
            Ok(rows) => {
                by_signal.insert(signal, rows);
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
    for (signal, rows) in &by_signal {
        check_coverage(*signal, |k| rows.values.contains_key(k), topology, job_id)?;
    }
    distribute(&by_signal, topology, job_id, &mut read);
    Ok(read)
}

/// Puts every keyed value on its vertex, TaskManager or the job; fallback gauges,
/// non-finite values and series for unknown vertices become issues.
fn distribute(
    by_signal: &BTreeMap<Signal, Arc<JobRows>>,
    topology: &Topology,
    job_id: &str,
    read: &mut SignalRead,
) {
    let mut tms: BTreeMap<String, TaskManagerSignals> = BTreeMap::new();
    for (signal, rows) in by_signal {
        let signal = *signal;
        if !rows.fallback.is_empty() {
            read.issues.push(fallback_issue(signal, rows, read.windows));
        }
        // one issue per signal and kind however many series (a query without its job
        // filter answers thousands of other jobs' series: issue 12)
        let (mut non_finite, mut unknown, mut over) =
            (Keys::default(), Keys::default(), Keys::default());
        for (key, value) in rows.values.iter() {
            let key: &str = key;
            if !value.is_finite() {
                non_finite.add(key, value);
            }
            match Scope::of(signal) {
                Scope::Vertex => {
                    let id = VertexId::new(key.to_string());
                    if topology.vertex(&id).is_none() {
                        unknown.add(key, value);
                        continue;
                    }
                    VertexSignals::set(read.vertices.entry(id).or_default(), signal, value);
                }
                Scope::TaskManager => {
                    if tms.len() >= MAX_TASK_MANAGERS && !tms.contains_key(key) {
                        over.add(key, value);
                        continue;
                    }
                    let entry = tms
                        .entry(key.to_string())
                        .or_insert_with(|| TaskManagerSignals {
                            tm_id: key.to_string(),
                            ..TaskManagerSignals::default()
                        });
                    TaskManagerSignals::set(entry, signal, value);
                }
                Scope::Job => JobSignals::set(&mut read.job, signal, value),
            }
        }
        if non_finite.count > 0 {
            read.issues.push(SignalIssue {
                signal,
                kind: "non_finite",
                message: format!(
                    "signal {signal}: non-finite value for {} series: {}",
                    non_finite.count,
                    non_finite.examples()
                ),
            });
        }
        if over.count > 0 {
            read.issues.push(SignalIssue {
                signal,
                kind: "too_many_task_managers",
                message: format!(
                    "signal {signal}: {} TaskManager series of job {job_id} beyond the {MAX_TASK_MANAGERS} kept \
                     ({}); does the query keep its job filter?",
                    over.count,
                    over.examples()
                ),
            });
        }
        if unknown.count > 0 {
            read.issues.push(SignalIssue {
                signal,
                kind: "unknown_vertex",
                message: match unknown.first.as_slice() {
                    [(key, _)] => unknown_vertex(signal, key, job_id),
                    _ => unknown_vertices(signal, unknown.count, &unknown.examples(), job_id),
                },
            });
        }
    }
    read.task_managers = tms.into_values().collect();
}

/// TaskManagers kept per job and read (the rest of a query's series are counted in one
/// issue): a query that lost its job filter must not grow a job's observation and report
/// by thousands of other jobs' TaskManagers.
pub const MAX_TASK_MANAGERS: usize = 1_000;

/// Series of one signal that make one issue: how many, and the first few.
#[derive(Debug, Default)]
struct Keys {
    count: usize,
    first: Vec<(String, f64)>,
}

impl Keys {
    /// Series named in an issue.
    const EXAMPLES: usize = 3;

    fn add(&mut self, key: &str, value: f64) {
        self.count += 1;
        if self.first.len() < Self::EXAMPLES {
            self.first.push((key.to_string(), value));
        }
    }

    /// `key = value, ...` of the first few, `…` when there are more.
    fn examples(&self) -> String {
        let mut out: Vec<String> = self
            .first
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect();
        if self.count > self.first.len() {
            out.push("…".into());
        }
        out.join(", ")
    }
}

/// One issue per signal listing the keys a fallback gauge answered.
fn fallback_issue(signal: Signal, rows: &JobRows, windows: Windows) -> SignalIssue {
    let mut gauges: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (key, gauge) in &rows.fallback {
        gauges.entry(gauge.as_str()).or_default().push(key.as_str());
    }
    let detail: Vec<String> = gauges
        .into_iter()
        .map(|(gauge, keys)| format!("{} by the gauge {gauge}", keys.join(", ")))
        .collect();
    SignalIssue {
        signal,
        kind: "fallback_gauge",
        message: format!(
            "signal {signal}: fewer than 2 counter samples in the {} window (task just (re)started?); answered {}",
            promql_duration(windows.window),
            detail.join("; ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Vertex;

    /// 20,000 series of other jobs' vertices, 5 NaN TaskManagers and 500 TaskManagers
    /// beyond the cap make one issue per signal and kind, naming the count and the first
    /// few; the vertex still gets its value, the job at most the cap of TaskManagers.
    #[test]
    fn a_flood_of_stray_series_is_one_issue() {
        let topology = Topology {
            vertices: vec![Vertex {
                id: VertexId::new("v1"),
                name: "Source: events".into(),
                parallelism: 2,
                max_parallelism: 128,
                slot_sharing_group: None,
            }],
            edges: vec![],
        };
        let mut busy = JobRows::default();
        busy.values.insert("v1".into(), 500.0);
        for i in 0..20_000 {
            busy.values.insert(format!("stray{i:05}").into(), 1.0);
        }
        let mut cpu = JobRows::default();
        for i in 0..5 {
            cpu.values.insert(format!("tm{i}").into(), f64::NAN);
        }
        let mut heap = JobRows::default();
        for i in 0..MAX_TASK_MANAGERS + 500 {
            heap.values.insert(format!("tm{i:05}").into(), 1e9);
        }
        let outcome = |signal, rows: JobRows| SignalOutcome {
            stat: QueryStat {
                signal,
                duration: Duration::ZERO,
                series: rows.values.len(),
                jobs: 1,
                outcome: "ok",
            },
            result: Ok(Arc::new(rows)),
        };
        let mut records = JobRows::default();
        records.values.insert("v1".into(), 10.0);
        let read = assemble(
            Utc::now(),
            vec![
                outcome(Signal::BusyTime, busy),
                outcome(Signal::RecordsIn, records),
                outcome(Signal::CpuLoad, cpu),
                outcome(Signal::HeapUsed, heap),
            ],
            &topology,
            "job1",
            Windows::default(),
        )
        .expect("read");
        let kinds: Vec<(&str, &str)> = read
            .issues
            .iter()
            .map(|i| (i.signal.name(), i.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("busyTime", "unknown_vertex"),
                ("cpuLoad", "non_finite"),
                ("heapUsed", "too_many_task_managers")
            ]
        );
        assert!(
            read.issues[2]
                .message
                .contains("505 TaskManager series of job job1 beyond the 1000 kept"),
            "{}",
            read.issues[2].message
        );
        assert_eq!(read.task_managers.len(), MAX_TASK_MANAGERS);
        assert!(
            read.issues[0]
                .message
                .contains("20000 series for task_ids which are not vertices of job job1 (stray00000 = 1, stray00001 = 1, stray00002 = 1, …)"),
            "{}",
            read.issues[0].message
        );
        assert!(
            read.issues[1]
                .message
                .contains("non-finite value for 5 series"),
            "{}",
            read.issues[1].message
        );
        assert_eq!(
            read.vertices[&VertexId::new("v1")].busy_ms_per_s,
            Some(500.0)
        );
    }
}

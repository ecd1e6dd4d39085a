//! Batching and demultiplexing preserve per-job results exactly: for arbitrary sets of
//! jobs and vertices, with missing series, NaN values and duplicate series, each job's
//! outcome of one batched query (`{{job_ids}}`) equals the outcome of the query made for
//! that job alone (today's per-job read: its rows keyed by scope, "no series" when it has
//! none), and the job's assembled read (coverage of required signals, issues) is the same.

use std::collections::BTreeMap;

use chrono::DateTime;
use flink_keda_scaler::{
    core::{Signal, Topology, Vertex, VertexId},
    promql::{
        assemble, keying::key_by_scope, read::stat, BatchQuery, JobOutcome, JobRows, JobVars,
        Sample, SignalErrorKind, SignalOutcome, Windows,
    },
};
use proptest::prelude::*;

/// What the series of one (job, vertex) look like in Prometheus' answer.
#[derive(Debug, Clone, Copy)]
enum Cell {
    Value(f64),
    Nan,
    Missing,
    Duplicate(f64),
}

fn cell() -> impl Strategy<Value = Cell> {
    prop_oneof![
        6 => (0.0..1000.0f64).prop_map(Cell::Value),
        1 => Just(Cell::Nan),
        2 => Just(Cell::Missing),
        1 => (0.0..1000.0f64).prop_map(Cell::Duplicate),
    ]
}

/// Jobs, each with 1–4 vertices and a cell per vertex (plus one series of a vertex that
/// is not in the topology for some jobs).
fn fleet() -> impl Strategy<Value = Vec<(Vec<Cell>, bool)>> {
    proptest::collection::vec(
        (proptest::collection::vec(cell(), 1..5), any::<bool>()),
        1..8,
    )
}

fn job_id(j: usize) -> String {
    format!("{j:032x}")
}

fn vertex(j: usize, v: usize) -> String {
    format!("v{j}x{v}")
}

fn sample(job: &str, task: &str, value: f64) -> Sample {
    Sample {
        labels: BTreeMap::from([
            ("job_id".to_string(), job.to_string()),
            ("task_id".to_string(), task.to_string()),
        ]),
        at: DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
        value,
    }
}

/// The rows Prometheus returns for one job.
fn rows_of(j: usize, cells: &[Cell], stray: bool) -> Vec<Sample> {
    let id = job_id(j);
    let mut rows = Vec::new();
    for (v, c) in cells.iter().enumerate() {
        let task = vertex(j, v);
        match *c {
            Cell::Value(x) => rows.push(sample(&id, &task, x)),
            Cell::Nan => rows.push(sample(&id, &task, f64::NAN)),
            Cell::Missing => {}
            Cell::Duplicate(x) => {
                rows.push(sample(&id, &task, x));
                rows.push(sample(&id, &task, x + 1.0));
            }
        }
    }
    if stray {
        rows.push(sample(&id, "not-a-vertex", 1.0));
    }
    rows
}

fn topology(j: usize, n: usize) -> Topology {
    Topology {
        vertices: (0..n)
            .map(|v| Vertex {
                id: VertexId::new(vertex(j, v)),
                name: format!("vertex {v}"),
                parallelism: 1,
                max_parallelism: 128,
                slot_sharing_group: None,
            })
            .collect(),
        edges: Vec::new(),
    }
}

/// Today's per-job semantics, written independently of the demultiplexer: the query
/// for the job alone returns only its rows; none is "no series" naming that query.
fn per_job(query: &BatchQuery<'_>, job: &JobVars, rows: Vec<Sample>) -> JobOutcome {
    if rows.is_empty() {
        let promql = query.render(std::slice::from_ref(job)).expect("renders");
        return Err(SignalErrorKind::Empty {
            job_id: job.job_id.clone(),
            query: promql,
        });
    }
    let keyed = key_by_scope(query.signal, rows, &job.job_id)?;
    Ok(std::sync::Arc::new(JobRows {
        values: keyed
            .into_iter()
            .map(|(k, s)| (k.into(), s.value))
            .collect(),
        fallback: BTreeMap::new(),
    }))
}

/// Debug text compares NaN equal to NaN and errors by their content.
fn text<T: std::fmt::Debug>(x: &T) -> String {
    format!("{x:?}")
}

fn read_of(outcome: JobOutcome, signal: Signal, topology: &Topology, job: &str) -> String {
    let stat = stat(signal, std::time::Duration::ZERO, 1, &outcome);
    let outcomes = vec![SignalOutcome {
        stat,
        result: outcome,
    }];
    let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
    match assemble(at, outcomes, topology, job, Windows::default()) {
        Ok(read) => text(&(&read.vertices, &read.issues)),
        Err(e) => format!("error: {e}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A batch result equals the union of the per-job results, for a required (busy
    /// time) and an optional (back-pressure) vertex signal.
    #[test]
    fn batch_equals_union_of_per_job_reads(fleet in fleet(), required in any::<bool>()) {
        let signal = if required { Signal::BusyTime } else { Signal::BackPressuredTime };
        let template = "max by (job_id, task_id) (m{ {{matchers}}job_id=~\"{{job_ids}}\"})";
        let query = BatchQuery::new(signal, template, Windows::default());
        let jobs: Vec<JobVars> = (0..fleet.len())
            .map(|j| JobVars::new(job_id(j), format!("job-{j}")))
            .collect();
        let mut all = Vec::new();
        for (j, (cells, stray)) in fleet.iter().enumerate() {
            all.extend(rows_of(j, cells, *stray));
        }
        let promql = query.render(&jobs).expect("renders");
        let result = if all.is_empty() {
            Err(flink_keda_scaler::promql::QueryError::EmptyResult { query: promql })
        } else {
            Ok(all)
        };
        let batched = query.demux(&jobs, result);
        prop_assert_eq!(batched.len(), jobs.len());
        for (j, (cells, stray)) in fleet.iter().enumerate() {
            let job = &jobs[j];
            let alone = per_job(&query, job, rows_of(j, cells, *stray));
            let got = batched.get(&job.job_id).cloned().expect("every job answered");
            prop_assert_eq!(text(&got), text(&alone), "job {}", j);
            let topo = topology(j, cells.len());
            prop_assert_eq!(
                read_of(got, signal, &topo, &job.job_id),
                read_of(alone, signal, &topo, &job.job_id),
                "read of job {}", j
            );
        }
    }
}

/// A job whose query override differs gets its own batch key and is still answered
/// from its own rows: two templates, the same jobs, each demultiplexed correctly.
#[test]
fn an_override_is_its_own_batch_and_still_correct() {
    let defaults = BatchQuery::new(
        Signal::BusyTime,
        "max by (job_id, task_id) (m{job_id=~\"{{job_ids}}\"})",
        Windows::default(),
    );
    let overridden = BatchQuery::new(
        Signal::BusyTime,
        "max by (task_id) (my_busy{job=\"{{job_name}}\"})",
        Windows::default(),
    );
    assert_ne!(defaults.batching, overridden.batching);
    let a = JobVars::new(job_id(0), "a");
    let b = JobVars::new(job_id(1), "b");
    let rendered = defaults.render(&[a.clone(), b.clone()]).expect("renders");
    assert!(
        rendered.contains(&format!("{}|{}", a.job_id, b.job_id)),
        "{rendered}"
    );
    let out = defaults.demux(
        std::slice::from_ref(&a),
        Ok(vec![
            sample(&a.job_id, "v", 100.0),
            sample(&b.job_id, "v", 1.0),
        ]),
    );
    assert_eq!(
        out[&a.job_id]
            .as_ref()
            .map(|r| r.values.get("v"))
            .ok()
            .flatten(),
        Some(100.0)
    );
    // the per-job template's rows carry no job_id: all of them are the one job's
    let mut row = sample("", "w", 7.0);
    row.labels.remove("job_id");
    let out = overridden.demux(std::slice::from_ref(&b), Ok(vec![row]));
    assert_eq!(
        out[&b.job_id]
            .as_ref()
            .map(|r| r.values.get("w"))
            .ok()
            .flatten(),
        Some(7.0)
    );
    assert_eq!(
        overridden
            .render(std::slice::from_ref(&b))
            .expect("renders"),
        "max by (task_id) (my_busy{job=\"b\"})"
    );
}

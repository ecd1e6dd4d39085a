//! `read_signals` and `PromClient` against a real Prometheus scraping a synthetic
//! exporter that serves Flink's PrometheusReporter series for a 3-vertex job.
//!
//! Run: `cargo test --test it prometheus_real:: -- --nocapture` (needs `/usr/bin/prometheus`;
//! prints SKIPPED without it, fails in CI).

use crate::support;

use std::{collections::BTreeMap, time::Duration};

use chrono::Utc;
use flink_keda_scaler::{
    core::{Signal, VertexId},
    promql::{
        read_signals, JobVars, PromClient, QueryError, ReadOptions, SignalErrorKind, SignalQueries,
        SignalRead,
    },
};
use support::{
    prometheus::{PrometheusHarness, SyntheticExporter, SyntheticJob, FIRST_SCRAPE_WAIT},
    stack::scraped,
};

/// Per-subtask load of the synthetic job: busy, backpressured, records in/out per
/// subtask, source rate and pending records per source subtask.
#[derive(Debug, Clone)]
struct Load {
    busy: [[f64; 2]; 3],
    backpressured: [[f64; 2]; 3],
    records_in: [[f64; 2]; 3],
    records_out: [[f64; 2]; 3],
    source_rate: [f64; 2],
    pending: [f64; 2],
    cpu: [f64; 3],
    heap_used: [f64; 3],
    gc_time: [f64; 3],
}

impl Load {
    fn base() -> Self {
        Self {
            busy: [[310.0, 420.0], [150.0, 90.0], [40.0, 0.0]],
            backpressured: [[12.0, 0.0], [0.0, 3.0], [0.0, 0.0]],
            records_in: [[0.0, 0.0], [480.0, 520.0], [1000.0, 0.0]],
            records_out: [[500.0, 500.0], [490.0, 510.0], [0.0, 0.0]],
            source_rate: [505.0, 495.0],
            pending: [1000.0, 3000.0],
            cpu: [0.25, 0.35, 0.9],
            heap_used: [2.0e8, 3.0e8, 9.0e8],
            gc_time: [100.0, 200.0, 300.0],
        }
    }

    /// Doubles the input rate: busier vertices, more backlog, more GC.
    fn stepped(&self) -> Self {
        let mut l = self.clone();
        for v in 0..3 {
            for s in 0..2 {
                l.busy[v][s] = (l.busy[v][s] * 2.0).min(1000.0);
                l.records_in[v][s] *= 2.0;
                l.records_out[v][s] *= 2.0;
            }
        }
        l.source_rate = [l.source_rate[0] * 2.0, l.source_rate[1] * 2.0];
        l.pending = [l.pending[0] + 5000.0, l.pending[1] + 7000.0];
        l.cpu = [0.6, 0.7, 0.9];
        l.gc_time = [l.gc_time[0] + 500.0, l.gc_time[1] + 500.0, l.gc_time[2]];
        l
    }

    /// Writes the load to the exporter. Only subtasks within each vertex's parallelism.
    fn export(&self, job: &SyntheticJob, e: &SyntheticExporter) {
        for (v, vertex) in job.vertices.iter().enumerate() {
            for s in 0..vertex.parallelism {
                let i = s as usize;
                job.set_task(e, "busyTimeMsPerSecond", v, s, self.busy[v][i]);
                job.set_task(
                    e,
                    "backPressuredTimeMsPerSecond",
                    v,
                    s,
                    self.backpressured[v][i],
                );
                job.set_task(e, "numRecordsInPerSecond", v, s, self.records_in[v][i]);
                job.set_task(e, "numRecordsOutPerSecond", v, s, self.records_out[v][i]);
            }
        }
        for s in 0..2u32 {
            let i = s as usize;
            // The source operator and the operator chained after it in the same task.
            e.set(
                &job.operator_series("numRecordsOutPerSecond", 0, "Source: events", s, ""),
                self.source_rate[i],
            );
            e.set(
                &job.operator_series("numRecordsInPerSecond", 0, "Map", s, ""),
                self.source_rate[i],
            );
            e.set(
                &job.operator_series("numRecordsOutPerSecond", 0, "Map", s, ""),
                self.source_rate[i] * 3.0,
            );
            e.set(
                &job.operator_series("pendingRecords", 0, "Source: events", s, ""),
                self.pending[i],
            );
            // Two partitions per source subtask.
            for p in [s * 2, s * 2 + 1] {
                e.set(
                    &job.operator_series(
                        "KafkaSourceReader_topic_partition_currentOffset",
                        0,
                        "Source: events",
                        s,
                        &format!(r#"topic="orders",partition="{p}""#),
                    ),
                    1234.0 + f64::from(p),
                );
            }
        }
        // tm 0 and 1 run the job; tm 2 ("idle_tm") runs nothing of it.
        let tms = [
            job.tms[0].as_str(),
            job.tms[1].as_str(),
            "10_0_0_3:6122_cccccc",
        ];
        for (i, tm) in tms.iter().enumerate() {
            e.set(
                &SyntheticJob::tm_series("Status_JVM_CPU_Load", tm),
                self.cpu[i],
            );
            e.set(
                &SyntheticJob::tm_series("Status_JVM_Memory_Heap_Used", tm),
                self.heap_used[i],
            );
            e.set(
                &SyntheticJob::tm_series("Status_JVM_Memory_Heap_Max", tm),
                1.0e9,
            );
            e.set(
                &SyntheticJob::tm_series(
                    "Status_JVM_GarbageCollector_G1_Young_Generation_Time",
                    tm,
                ),
                self.gc_time[i],
            );
            e.set(
                &SyntheticJob::tm_series("Status_JVM_GarbageCollector_All_Time", tm),
                self.gc_time[i] * 100.0,
            );
        }
        e.set(&job.jm_job_series("numRestarts"), 2.0);
        e.set(&SyntheticJob::jm_series("taskSlotsTotal"), 4.0);
        e.set(&SyntheticJob::jm_series("taskSlotsAvailable"), 1.0);
    }
}

/// Another job on the same cluster whose series must never leak into ours.
fn export_other_job(e: &SyntheticExporter) -> SyntheticJob {
    let mut other = SyntheticJob::three_vertices();
    other.job_id = "ffffffffffffffffffffffffffffffff".into();
    other.job_name = "other".into();
    other.tms = vec!["10_0_0_9:6122_zzzzzz".into()];
    // ... on another cluster whose JobManager reports more slots.
    e.set(r#"flink_jobmanager_taskSlotsTotal{host="other_jm"}"#, 64.0);
    e.set(
        r#"flink_jobmanager_taskSlotsAvailable{host="other_jm"}"#,
        60.0,
    );
    e.set(
        &format!(
            r#"flink_jobmanager_job_numRestarts{{host="other_jm",job_id="{}",job_name="other"}}"#,
            other.job_id
        ),
        7.0,
    );
    for v in 0..3 {
        other.set_task(e, "busyTimeMsPerSecond", v, 0, 999.0);
        other.set_task(e, "numRecordsInPerSecond", v, 0, 99999.0);
    }
    other
}

fn client(prom: &PrometheusHarness) -> PromClient {
    support::prometheus::prom_client(&prom.url())
}

fn max2(a: [f64; 2], p: u32) -> f64 {
    a.iter().take(p as usize).copied().fold(f64::MIN, f64::max)
}

fn sum2(a: [f64; 2], p: u32) -> f64 {
    a.iter().take(p as usize).sum()
}

/// Checks a read against the exported load: per-vertex max/sum by task_id, source rate
/// from the source operator, TMs of this job only, job/cluster values.
fn assert_matches(read: &SignalRead, job: &SyntheticJob, load: &Load) {
    assert_eq!(read.vertices.len(), 3, "{read:#?}");
    for (v, vertex) in job.vertices.iter().enumerate() {
        let s = &read.vertices[&VertexId::new(vertex.id.clone())];
        let p = vertex.parallelism;
        assert_eq!(
            s.busy_ms_per_s,
            Some(max2(load.busy[v], p)),
            "busy of {}",
            vertex.name
        );
        assert_eq!(
            s.backpressured_ms_per_s,
            Some(max2(load.backpressured[v], p)),
            "bp of {}",
            vertex.name
        );
        assert_eq!(
            s.records_out_per_s,
            Some(sum2(load.records_out[v], p)),
            "out of {}",
            vertex.name
        );
        let records_in = if v == 0 {
            sum2(load.source_rate, p)
        } else {
            sum2(load.records_in[v], p)
        };
        assert_eq!(
            s.records_in_per_s,
            Some(records_in),
            "in of {}",
            vertex.name
        );
        if v == 0 {
            assert_eq!(s.pending_records, Some(load.pending.iter().sum()));
            assert_eq!(s.partitions, Some(4));
            assert!(s.lag_growth_per_s.is_some(), "lag growth of the source");
        } else {
            assert_eq!(s.pending_records, None);
            assert_eq!(s.partitions, None);
        }
    }
    let tm_ids: Vec<&str> = read
        .task_managers
        .iter()
        .map(|t| t.tm_id.as_str())
        .collect();
    assert_eq!(
        tm_ids,
        vec![job.tms[0].as_str(), job.tms[1].as_str()],
        "only TMs running the job"
    );
    for (i, tm) in read.task_managers.iter().enumerate() {
        assert_eq!(tm.cpu_load, Some(load.cpu[i]));
        assert_eq!(tm.heap_used_bytes, Some(load.heap_used[i]));
        assert_eq!(tm.heap_max_bytes, Some(1.0e9));
        assert!(
            tm.gc_ms_per_s.is_some_and(|g| g.is_finite() && g >= 0.0),
            "{tm:?}"
        );
    }
    assert_eq!(read.job.num_restarts, Some(2.0));
    assert_eq!(read.job.num_rescales, None, "not exported by this Flink");
    assert_eq!(read.job.slots_total, Some(4.0));
    assert_eq!(read.job.slots_available, Some(1.0));
    assert_eq!(
        read.query_count(),
        Signal::ALL.len(),
        "one query per signal"
    );
    let rescales = read
        .issues
        .iter()
        .find(|i| i.signal == Signal::NumRescales)
        .expect("numRescales issue");
    assert_eq!(rescales.kind, "empty_result");
}

fn report(label: &str, read: &SignalRead) {
    let mut d: Vec<Duration> = read.queries.iter().map(|q| q.duration).collect();
    d.sort();
    eprintln!(
        "{label}: {} queries, read_signals {:?}, per-query min {:?} median {:?} max {:?}",
        read.query_count(),
        read.elapsed,
        d.first().copied().unwrap_or_default(),
        d.get(d.len() / 2).copied().unwrap_or_default(),
        d.last().copied().unwrap_or_default(),
    );
}

/// read_signals maps Prometheus' grouped answers to the right vertices, TaskManagers and
/// job fields, and follows a load step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_follow_a_load_step() {
    let job = SyntheticJob::three_vertices();
    let base = Load::base();
    let Some((exporter, prom)) = scraped(|e| {
        base.export(&job, e);
        export_other_job(e);
    })
    .await
    else {
        return;
    };
    let client = client(&prom);
    let queries = SignalQueries::defaults();
    let vars = JobVars::new(&job.job_id, &job.job_name);
    let topology = job.topology();
    let opts = ReadOptions::default();

    // gcTime's subquery (5 s resolution) needs two aligned points: poll until it answers.
    let started = std::time::Instant::now();
    let read = loop {
        let read = read_signals(&client, &queries, &vars, &topology, &opts)
            .await
            .expect("read");
        if read.task_managers.iter().all(|t| t.gc_ms_per_s.is_some()) {
            break read;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "gcTime never answered: {read:#?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    eprintln!(
        "all signals answered {:?} after the first scrapes",
        started.elapsed()
    );
    report("base", &read);
    assert_matches(&read, &job, &base);
    let growth_before = read.vertices[&topology.vertices[0].id]
        .lag_growth_per_s
        .expect("lag growth");

    // Load step.
    let stepped = base.stepped();
    stepped.export(&job, &exporter);
    exporter.wait_scrapes(2, FIRST_SCRAPE_WAIT).await;
    let want_busy = max2(stepped.busy[0], 2);
    let started = std::time::Instant::now();
    let read = loop {
        let read = read_signals(&client, &queries, &vars, &topology, &opts)
            .await
            .expect("read");
        let seen = read.vertices[&topology.vertices[0].id].busy_ms_per_s;
        let tm_gc = read
            .task_managers
            .first()
            .and_then(|t| t.gc_ms_per_s)
            .unwrap_or(0.0);
        if seen == Some(want_busy) && tm_gc > 0.0 {
            break read;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "load step not visible: {read:#?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    eprintln!("load step visible after {:?}", started.elapsed());
    report("stepped", &read);
    assert_matches(&read, &job, &stepped);
    let source = &read.vertices[&topology.vertices[0].id];
    let growth_after = source.lag_growth_per_s.expect("lag growth");
    assert!(
        growth_after > growth_before,
        "backlog grows: {growth_before} → {growth_after}"
    );
    assert!(
        read.task_managers[0].gc_ms_per_s.is_some_and(|g| g > 0.0),
        "GC rate after GC time grew"
    );

    // Extra matchers restrict every query; a matcher nothing has makes required signals fail.
    let none = JobVars::new(&job.job_id, &job.job_name).with_matchers(r#"namespace="nowhere""#);
    let e = read_signals(&client, &queries, &none, &topology, &opts)
        .await
        .expect_err("no series");
    assert_eq!(e.signal, Signal::BusyTime);
    assert!(e.to_string().contains("namespace=\"nowhere\""), "{e}");
    let host = JobVars::new(&job.job_id, &job.job_name).with_matchers(r#"host="localhost""#);
    let read = read_signals(&client, &queries, &host, &topology, &opts)
        .await
        .expect("read with matchers");
    assert_matches(&read, &job, &stepped);

    // The signals a job-name-based override sees, with Flink's sanitised job name.
    let mut o = BTreeMap::new();
    o.insert(
        Signal::BusyTime,
        r#"max by (task_id) (flink_taskmanager_job_task_busyTimeMsPerSecond{job_name="{{job_name}}"})"#.to_string(),
    );
    let by_name = SignalQueries::defaults()
        .with_overrides(&o)
        .expect("override");
    let read = read_signals(&client, &by_name, &vars, &topology, &opts)
        .await
        .expect("by job name");
    assert_eq!(
        read.vertices[&topology.vertices[0].id].busy_ms_per_s,
        Some(want_busy)
    );
}

/// Errors from a real Prometheus: a signal without series names the signal, a vertex
/// without series names the vertex, PromQL syntax errors carry Prometheus' message,
/// NaN is kept, range/scalar queries decode, and a stopped server is unreachable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_from_a_real_prometheus() {
    let job = SyntheticJob::three_vertices();
    let base = Load::base();
    let Some((_exporter, mut prom)) = scraped(|e| {
        base.export(&job, e);
        // A vertex whose busy time is NaN (Flink reports NaN before the first measurement).
        job.set_task(e, "busyTimeMsPerSecond", 2, 0, f64::NAN);
    })
    .await
    else {
        return;
    };
    let client = client(&prom);
    let queries = SignalQueries::defaults();
    let vars = JobVars::new(&job.job_id, &job.job_name);
    let opts = ReadOptions::default();

    // NaN is kept for the core and reported as an issue.
    let topology = job.topology();
    let read = read_signals(&client, &queries, &vars, &topology, &opts)
        .await
        .expect("read");
    let sink = &read.vertices[&topology.vertices[2].id];
    assert!(sink.busy_ms_per_s.is_some_and(f64::is_nan), "{sink:?}");
    assert!(
        read.issues
            .iter()
            .any(|i| i.kind == "non_finite" && i.signal == Signal::BusyTime),
        "{:?}",
        read.issues
    );

    // A job without any series: the required signal is named.
    let ghost = JobVars::new("00000000000000000000000000000000", "ghost");
    let e = read_signals(&client, &queries, &ghost, &topology, &opts)
        .await
        .expect_err("ghost job");
    let msg = e.to_string();
    assert!(
        msg.starts_with(
            "signal busyTime: query returned no series for job 00000000000000000000000000000000"
        ),
        "{msg}"
    );
    assert_eq!(e.kind(), "empty_result");

    // A vertex Flink reports but Prometheus has no series for.
    let mut topology_extra = job.topology();
    let mut extra = topology_extra.vertices[2].clone();
    extra.id = VertexId::new("deadbeefdeadbeefdeadbeefdeadbeef");
    extra.name = "Sink: audit".into();
    topology_extra.vertices.push(extra);
    let e = read_signals(&client, &queries, &vars, &topology_extra, &opts)
        .await
        .expect_err("missing vertex");
    assert!(
        matches!(e.source, SignalErrorKind::MissingVertex { ref vertex, .. } if vertex.as_str() == "deadbeefdeadbeefdeadbeefdeadbeef"),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("no series for vertex deadbeefdeadbeefdeadbeefdeadbeef (Sink: audit)"),
        "{e}"
    );

    // PromQL syntax error: Prometheus' own errorType and message.
    let e = client
        .query("sum(flink_taskmanager_job_task_busyTimeMsPerSecond", None)
        .await
        .expect_err("syntax");
    match &e {
        QueryError::PromQl { error_type, error } => {
            assert_eq!(error_type, "bad_data");
            assert!(error.contains("parse error"), "{error}");
        }
        other => panic!("expected PromQl, got {other:?}"),
    }
    let mut o = BTreeMap::new();
    o.insert(
        Signal::RecordsIn,
        "sum by (task_id) (rate(x[1m])".to_string(),
    );
    let broken = SignalQueries::defaults()
        .with_overrides(&o)
        .expect("override");
    let e = read_signals(&client, &broken, &vars, &topology, &opts)
        .await
        .expect_err("broken override");
    assert_eq!((e.signal, e.kind()), (Signal::RecordsIn, "promql"), "{e}");
    assert!(
        e.to_string().starts_with("signal recordsIn: query for job"),
        "{e}"
    );

    // Scalars, multi-series and range queries.
    let v = client
        .query_value("scalar(flink_jobmanager_taskSlotsTotal)", None)
        .await
        .expect("scalar");
    assert_eq!(v, 4.0);
    let e = client
        .query_value("flink_taskmanager_Status_JVM_CPU_Load", None)
        .await
        .expect_err("3 series");
    assert!(
        matches!(e, QueryError::MultipleSeries { count: 3, .. }),
        "{e:?}"
    );
    let end = Utc::now();
    let series = client
        .query_range(
            "max by (tm_id) (flink_taskmanager_Status_JVM_CPU_Load)",
            end - chrono::Duration::seconds(3),
            end,
            Duration::from_secs(1),
        )
        .await
        .expect("range");
    assert_eq!(series.len(), 3, "one series per TaskManager");
    assert!(series
        .iter()
        .all(|s| s.labels.contains_key("tm_id") && !s.points.is_empty()));
    let e = client
        .query("flink_taskmanager_Status_JVM_CPU_Load[1m]", None)
        .await
        .expect_err("matrix");
    assert_eq!(e.kind(), "unexpected_result_type");

    // Prometheus stopped: unreachable, for the client and as a required-signal error.
    prom.stop();
    let e = client.query("up", None).await.expect_err("stopped");
    assert!(
        matches!(e, QueryError::Unreachable { attempts: 3, .. }),
        "{e:?}"
    );
    let e = read_signals(&client, &queries, &vars, &topology, &opts)
        .await
        .expect_err("stopped");
    assert_eq!(
        (e.signal, e.kind()),
        (Signal::BusyTime, "unreachable"),
        "{e}"
    );
    assert!(e.to_string().contains("unreachable"), "{e}");
}

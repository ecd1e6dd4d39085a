//! The default PromQL of every [`Signal`], in two presets, written for Flink's
//! PrometheusReporter names and labels (Flink 1.18–2.x; checked on 1.20.5 and 2.3.0 by
//! the `flink_queries` suite at 1 s and 15 s scrape intervals).
//!
//! Every default is **batched**: it selects the jobs of a batch with
//! `job_id=~"{{job_ids}}"` and returns one series per job and group — per vertex
//! `by (job_id, task_id)`, per TaskManager `by (job_id, tm_id)`, per job `by (job_id)` —
//! so one query per signal answers every job that shares a server, matchers and template.
//!
//! # `counters` (the default preset): react within a few scrape intervals
//! * Load signals are the per-second slope over `{{window}}` of Flink's counters:
//!   `accumulateBusyTimeMs`, `accumulateBackPressuredTimeMs`, `numRecordsIn`,
//!   `numRecordsOut`, the source operators' `numRecordsOut`; the lag's growth is the
//!   slope of `pendingRecords`. The window is derived from the learned scrape interval
//!   (see [`super::windows`]): `max(4 × interval, 10 s)`.
//! * `deriv`, not `rate`/`irate`: Flink exports every counter as a Prometheus *gauge*, and
//!   `accumulateBusyTimeMs` is not monotone — it is `now − start − idle − back-pressured`
//!   where idle and back-pressured time are accounted when a period ends or at the 5 s
//!   `TimerGauge` update (`TaskIOMetricGroup#getAccumulatedBusyTime`,
//!   `TimerGauge#update`), so it dips by up to the ongoing idle period. `rate` would read a
//!   dip as a counter reset and add the whole counter (a spike of millions of ms/s);
//!   `deriv` (least squares) tolerates it. A task attempt is one series (its labels carry
//!   `task_attempt_id`), so real resets never happen inside a series. Busy time and record
//!   rates use the same estimator over the same window, so their ratio (the DS2 true
//!   processing rate) stays consistent; the 10 s floor keeps two of Flink's 5 s updates
//!   inside the window.
//! * A source's arrival (`arrivalRate`: its `numRecordsOut` slope plus its
//!   `pendingRecords` slope) is read over the shorter `{{arrival_window}}`
//!   (`max(4 × interval, 5 s)`): both count every record, so a load step shows in the
//!   arrival within seconds, while the true processing rates keep the busy-time window.
//!   Absent (a source that just restarted), the core uses `recordsIn + lagGrowth`.
//! * `… and <counter>` keeps only series that still exist: a task attempt that ended
//!   (rescale, failover) still has samples inside the window and would be summed with its
//!   successor.
//! * A vertex whose counters have fewer than two samples in the window (a task that just
//!   (re)started) is answered by Flink's per-second gauge instead (`or on (job_id,
//!   task_id)`), marked with the label `fks_fallback`; the read reports it as an issue. A
//!   window that is too short never yields an empty signal.
//!
//! # `gauges`: Flink's own per-second metrics
//! `busyTimeMsPerSecond`, `numRecordsInPerSecond`, ...: 60 s moving averages updated every
//! 5 s (`MeterView`, `TimerGauge`), so a load step shows in full after about a minute.
//! Independent of the scrape interval.
//!
//! # Choices shared by both presets
//! * `recordsIn` of a **source** vertex is the source operator's `numRecordsOut` (records
//!   it emits): the task-level `numRecordsIn` of a source task counts network input and is
//!   0, and operator `numRecordsIn` is only counted by FLIP-27 readers built on
//!   `SourceReaderBase`, while `numRecordsOut` is counted for every source. Source
//!   operators are found by Flink's `Source: <name>` naming (`operator_name=~"Source.*"`);
//!   other vertices use the task-level `numRecordsIn`. The halves are joined with `or`.
//! * `gcTime` uses Flink's `GarbageCollector_All_TimeMsPerSecond` gauge where it exists
//!   (Flink 1.19+), else the rate of the per-collector `..._Time` counters summed per
//!   TaskManager *before* `rate` (a subquery): `rate` drops the metric name, so rating the
//!   collectors separately fails with "vector cannot contain metrics with the same
//!   labelset" (seen on real Flink 2.3 with G1 Young + Old).
//! * TaskManager signals are taken for the TaskManagers that run a task of the job (`group
//!   by (job_id, tm_id)` of a task metric `* on (tm_id) group_left` the TaskManager's
//!   value), so session clusters work and each row names its job.
//! * Cluster slots have no job label: they are taken from the JobManager that runs the job
//!   (`* on (host) group_left`, both carry Flink's `host` label), so several clusters and
//!   standby JobManagers in one Prometheus do not mix.

use crate::core::Signal;

/// Which default query set a policy starts from (`queryPreset` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum QueryPreset {
    /// Slopes of Flink's counters over a window derived from the scrape interval.
    #[default]
    Counters,
    /// Flink's per-second gauges (60 s moving averages).
    Gauges,
}

impl QueryPreset {
    /// The name used in the config.
    pub fn name(self) -> &'static str {
        match self {
            QueryPreset::Counters => "counters",
            QueryPreset::Gauges => "gauges",
        }
    }
}

/// The label that marks a row answered by a fallback gauge; its value names the gauge.
pub const FALLBACK_LABEL: &str = "fks_fallback";

/// The batch-wide job selector of the defaults.
macro_rules! sel {
    () => {
        r#"{ {{matchers}}job_id=~"{{job_ids}}"}"#
    };
    (source) => {
        r#"{ {{matchers}}job_id=~"{{job_ids}}",operator_name=~"Source.*"}"#
    };
}

/// `agg by (job_id, task_id) (deriv(m[window]) and m)` over a task metric.
macro_rules! slope {
    ($agg:literal, $metric:literal) => {
        concat!(
            $agg,
            " by (job_id, task_id) (deriv(",
            $metric,
            sel!(),
            "[{{window}}]) and ",
            $metric,
            sel!(),
            ")"
        )
    };
}

/// `or on (job_id, task_id)` the gauge expression, marked with [`FALLBACK_LABEL`].
macro_rules! or_gauge {
    ($gauge:literal, $($expr:tt)+) => {
        concat!(
            " or on (job_id, task_id) label_replace(",
            $($expr)+,
            r#", "fks_fallback", ""#,
            $gauge,
            r#"", "", "")"#
        )
    };
}

/// A TaskManager gauge for the TaskManagers running a task of each job.
macro_rules! per_tm {
    ($($expr:tt)+) => {
        concat!(
            "group by (job_id, tm_id) (flink_taskmanager_job_task_busyTimeMsPerSecond",
            sel!(),
            ") * on (tm_id) group_left() ",
            $($expr)+
        )
    };
}

/// A JobManager gauge for the JobManager running each job.
macro_rules! per_jm {
    ($metric:literal) => {
        concat!(
            "max by (job_id) (group by (job_id, host) (flink_jobmanager_job_numRestarts",
            sel!(),
            ") * on (host) group_left() max by (host) (",
            $metric,
            "{ {{matchers}}}))"
        )
    };
}

/// `gcTime` with the subquery range of the preset.
macro_rules! gc {
    ($range:literal) => {
        per_tm!(concat!(
            "(max by (tm_id) (flink_taskmanager_Status_JVM_GarbageCollector_All_TimeMsPerSecond{ {{matchers}}})",
            r#" or sum by (tm_id) (rate((sum by (tm_id) ({ {{matchers}}__name__=~"flink_taskmanager_Status_JVM_GarbageCollector_.+_Time",__name__!="flink_taskmanager_Status_JVM_GarbageCollector_All_Time"}))"#,
            $range,
            ")))"
        ))
    };
}

/// Flink's per-second gauge of a load signal, per vertex.
macro_rules! gauge {
    (busy) => {
        concat!(
            "max by (job_id, task_id) (flink_taskmanager_job_task_busyTimeMsPerSecond",
            sel!(),
            ")"
        )
    };
    (backpressure) => {
        concat!(
            "max by (job_id, task_id) (flink_taskmanager_job_task_backPressuredTimeMsPerSecond",
            sel!(),
            ")"
        )
    };
    (records_in) => {
        concat!(
            "(sum by (job_id, task_id) (flink_taskmanager_job_task_operator_numRecordsOutPerSecond",
            sel!(source),
            ") or sum by (job_id, task_id) (flink_taskmanager_job_task_numRecordsInPerSecond",
            sel!(),
            "))"
        )
    };
    (records_out) => {
        concat!(
            "sum by (job_id, task_id) (flink_taskmanager_job_task_numRecordsOutPerSecond",
            sel!(),
            ")"
        )
    };
}

const PENDING: &str = concat!(
    "sum by (job_id, task_id) (flink_taskmanager_job_task_operator_pendingRecords",
    sel!(),
    ")"
);
/// A source's arrival: the slope of its `numRecordsOut` plus the slope of its backlog,
/// over `{{arrival_window}}`; a source without `pendingRecords` is answered by its
/// consumption alone.
macro_rules! arrival_out {
    () => {
        concat!(
            "sum by (job_id, task_id) (deriv(flink_taskmanager_job_task_operator_numRecordsOut",
            sel!(source),
            "[{{arrival_window}}]) and flink_taskmanager_job_task_operator_numRecordsOut",
            sel!(source),
            ")"
        )
    };
}
const ARRIVAL: &str = concat!(
    "(",
    arrival_out!(),
    " + on (job_id, task_id) sum by (job_id, task_id) (deriv(flink_taskmanager_job_task_operator_pendingRecords",
    sel!(),
    "[{{arrival_window}}]) and flink_taskmanager_job_task_operator_pendingRecords",
    sel!(),
    ")) or on (job_id, task_id) ",
    arrival_out!()
);
const PARTITIONS: &str = concat!(
    "count by (job_id, task_id) (count by (job_id, task_id, topic, partition) (flink_taskmanager_job_task_operator_KafkaSourceReader_topic_partition_currentOffset",
    sel!(),
    "))"
);
const CPU: &str = per_tm!("max by (tm_id) (flink_taskmanager_Status_JVM_CPU_Load{ {{matchers}}})");
const HEAP_USED: &str =
    per_tm!("max by (tm_id) (flink_taskmanager_Status_JVM_Memory_Heap_Used{ {{matchers}}})");
const HEAP_MAX: &str =
    per_tm!("max by (tm_id) (flink_taskmanager_Status_JVM_Memory_Heap_Max{ {{matchers}}})");
const RESTARTS: &str = concat!(
    "max by (job_id) (flink_jobmanager_job_numRestarts",
    sel!(),
    ")"
);
const RESCALES: &str = concat!(
    "max by (job_id) (flink_jobmanager_job_numRescales",
    sel!(),
    ")"
);
const SLOTS_TOTAL: &str = per_jm!("flink_jobmanager_taskSlotsTotal");
const SLOTS_AVAILABLE: &str = per_jm!("flink_jobmanager_taskSlotsAvailable");

/// The `counters` preset.
fn counters(signal: Signal) -> &'static str {
    match signal {
        Signal::BusyTime => concat!(
            slope!("max", "flink_taskmanager_job_task_accumulateBusyTimeMs"),
            or_gauge!("busyTimeMsPerSecond", gauge!(busy))
        ),
        Signal::BackPressuredTime => concat!(
            slope!(
                "max",
                "flink_taskmanager_job_task_accumulateBackPressuredTimeMs"
            ),
            or_gauge!("backPressuredTimeMsPerSecond", gauge!(backpressure))
        ),
        Signal::RecordsIn => concat!(
            "(sum by (job_id, task_id) (deriv(flink_taskmanager_job_task_operator_numRecordsOut",
            sel!(source),
            "[{{window}}]) and flink_taskmanager_job_task_operator_numRecordsOut",
            sel!(source),
            ") or on (job_id, task_id) ",
            slope!("sum", "flink_taskmanager_job_task_numRecordsIn"),
            ")",
            or_gauge!("numRecordsInPerSecond", gauge!(records_in))
        ),
        Signal::RecordsOut => concat!(
            slope!("sum", "flink_taskmanager_job_task_numRecordsOut"),
            or_gauge!("numRecordsOutPerSecond", gauge!(records_out))
        ),
        Signal::LagGrowth => slope!("sum", "flink_taskmanager_job_task_operator_pendingRecords"),
        Signal::ArrivalRate => ARRIVAL,
        Signal::GcTime => gc!("[{{window}}:5s]"),
        other => gauges(other),
    }
}

/// The `gauges` preset (also the `counters` preset's gauges).
fn gauges(signal: Signal) -> &'static str {
    match signal {
        Signal::BusyTime => gauge!(busy),
        Signal::BackPressuredTime => gauge!(backpressure),
        Signal::RecordsIn => gauge!(records_in),
        Signal::RecordsOut => gauge!(records_out),
        Signal::PendingRecords => PENDING,
        Signal::LagGrowth => concat!(
            "sum by (job_id, task_id) (deriv(flink_taskmanager_job_task_operator_pendingRecords",
            sel!(),
            "[1m]))"
        ),
        // the gauges' sources are sized from `recordsIn + lagGrowth` (60 s averages)
        Signal::ArrivalRate => "",
        Signal::SourcePartitions => PARTITIONS,
        Signal::CpuLoad => CPU,
        Signal::HeapUsed => HEAP_USED,
        Signal::HeapMax => HEAP_MAX,
        Signal::GcTime => gc!("[1m:5s]"),
        Signal::NumRestarts => RESTARTS,
        Signal::NumRescales => RESCALES,
        Signal::SlotsTotal => SLOTS_TOTAL,
        Signal::SlotsAvailable => SLOTS_AVAILABLE,
    }
}

/// The default PromQL of a signal in a preset.
pub fn preset_query(preset: QueryPreset, signal: Signal) -> &'static str {
    match preset {
        QueryPreset::Counters => counters(signal),
        QueryPreset::Gauges => gauges(signal),
    }
}

/// The default PromQL of a signal (the `counters` preset).
pub fn default_query(signal: Signal) -> &'static str {
    preset_query(QueryPreset::Counters, signal)
}

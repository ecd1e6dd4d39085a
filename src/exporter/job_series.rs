//! The per-job series, held compactly and written straight into the `/metrics` text.
//!
//! At 1,000 ScaledObjects the scaler exports tens of thousands of per-job series. The
//! `prometheus` crate keeps each child of a labelled family as its own allocation with a
//! copy of the family's descriptor (name, help, label names) and one protobuf label pair
//! per label, and `gather()` builds a protobuf copy of every series for each scrape: about
//! 32 kB per job held, plus megabytes per scrape. Here each job is one small entry
//! (namespace → job name → [`JobEntry`]) with its values as plain numbers, and the text
//! is written from them into the scrape's buffer.
//!
//! The names, HELP texts, label names (in the order the `prometheus` crate writes them:
//! sorted) and values are exactly those of the families they replace; a family without
//! series is left out, as `gather()` leaves it out.

mod text;

use std::{collections::BTreeMap, sync::Mutex};

use text::Writer;
pub(super) use text::FAMILIES;

use super::{
    metrics::{JobKey, RescaleOutcome},
    scaling::IDLE_PHASE,
};
use crate::core::Direction;

/// The per-ScaledObject gauges, in [`ObjectSeries::gauges`] order: (name, help).
const OBJECT_GAUGES: [(&str, &str); 7] = [
    ("desired_task_managers", "TaskManagers the last decision wants."),
    ("current_task_managers", "TaskManagers registered with the JobManager."),
    (
        "reported_task_managers",
        "TaskManager count last reported to KEDA (GetMetrics).",
    ),
    (
        "spare_task_managers",
        "Warm spare TaskManagers included in the reported count (spareTaskManagers, bounded by maxTaskManagers).",
    ),
    ("min_task_managers", "Lower TaskManager bound of the job's policy."),
    ("max_task_managers", "Upper TaskManager bound of the job's policy."),
    (
        "flink_reactive_mode",
        "1 when the job's JobManager runs scheduler-mode: reactive (sized in TaskManagers, never PUT to; every scale-down is a failover).",
    ),
];

/// Index of a per-ScaledObject gauge in [`OBJECT_GAUGES`].
#[derive(Debug, Clone, Copy)]
pub(super) enum ObjectGauge {
    Desired = 0,
    Current = 1,
    Reported = 2,
    Spare = 3,
    Min = 4,
    Max = 5,
    Reactive = 6,
}

/// The per-vertex signal gauges, in [`VertexSeries::signals`] order: (name, help).
const SIGNAL_GAUGES: [(&str, &str); 4] = [
    (
        "signal_pending_records",
        "Pending records (lag) of a source vertex used by the last decision.",
    ),
    (
        "signal_busy_ratio",
        "Busy ratio (0..1) of a vertex used by the last decision.",
    ),
    (
        "signal_true_processing_records_per_second",
        "True processing rate (records/s at 100% busy) of a vertex used by the last decision.",
    ),
    (
        "signal_input_records_per_second",
        "Observed input rate (records/s) of a vertex used by the last decision.",
    ),
];

/// Directions of `rescales_total`, in [`ObjectSeries::rescales`] order.
const DIRECTIONS: [Direction; 3] = [Direction::Up, Direction::Down, Direction::None];

/// The series of one ScaledObject of a job (labels `namespace`, `scaled_object`, `job_name`).
#[derive(Debug, Default)]
struct ObjectSeries {
    name: Box<str>,
    gauges: [Option<i64>; OBJECT_GAUGES.len()],
    last_rescale: Option<f64>,
    /// `rescales_total` by direction × outcome; `None`: no such series.
    rescales: [[Option<u64>; RescaleOutcome::ALL.len()]; DIRECTIONS.len()],
    /// `flink_rescale_delay_seconds` by setting.
    delays: Vec<(Box<str>, f64)>,
}

/// The series of one vertex (labels `namespace`, `job_name`, `vertex`[, `vertex_name`]).
#[derive(Debug, Default)]
struct VertexSeries {
    id: Box<str>,
    name: Box<str>,
    /// (desired, current) parallelism.
    parallelism: Option<(i64, i64)>,
    signals: [Option<f64>; SIGNAL_GAUGES.len()],
}

impl VertexSeries {
    fn is_empty(&self) -> bool {
        self.parallelism.is_none() && self.signals.iter().all(Option::is_none)
    }
}

/// Every per-job series of one job (namespace, job name).
#[derive(Debug, Default)]
struct JobEntry {
    objects: Vec<ObjectSeries>,
    vertices: Vec<VertexSeries>,
    /// `decisions_total` by rule.
    decisions: Vec<(&'static str, u64)>,
    /// The one `rescale_phase` series at 1.
    phase: Option<&'static str>,
    failovers: Option<u64>,
}

impl JobEntry {
    fn object(&mut self, name: &str) -> &mut ObjectSeries {
        let i = match self.objects.iter().position(|o| &*o.name == name) {
            Some(i) => i,
            None => {
                // exact: a job has one or two objects and a handful of vertices, and
                // doubling growth left ~1 kB of spare capacity per job at 1,000 jobs
                self.objects.reserve_exact(1);
                self.objects.push(ObjectSeries {
                    name: name.into(),
                    ..ObjectSeries::default()
                });
                self.objects.len() - 1
            }
        };
        &mut self.objects[i]
    }

    fn vertex(&mut self, id: &str) -> &mut VertexSeries {
        let i = match self.vertices.iter().position(|v| &*v.id == id) {
            Some(i) => i,
            None => {
                self.vertices.reserve_exact(1);
                self.vertices.push(VertexSeries {
                    id: id.into(),
                    ..VertexSeries::default()
                });
                self.vertices.len() - 1
            }
        };
        &mut self.vertices[i]
    }
}

/// Namespace → job name → the job's series.
type Jobs = BTreeMap<Box<str>, BTreeMap<Box<str>, JobEntry>>;

/// The per-job series of every job (one per [`super::Metrics`]).
#[derive(Debug, Default)]
pub(super) struct JobSeries {
    jobs: Mutex<Jobs>,
}

impl JobSeries {
    /// Runs `f` on the job's entry, creating it (keys allocated only then).
    fn with(&self, key: &JobKey<'_>, f: impl FnOnce(&mut JobEntry)) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        if !jobs.contains_key(key.namespace()) {
            jobs.insert(key.namespace().into(), BTreeMap::new());
        }
        if let Some(by_name) = jobs.get_mut(key.namespace()) {
            if !by_name.contains_key(key.job) {
                by_name.insert(key.job.into(), JobEntry::default());
            }
            if let Some(entry) = by_name.get_mut(key.job) {
                f(entry);
            }
        }
    }

    /// Sets a per-ScaledObject gauge.
    pub(super) fn set_gauge(&self, key: &JobKey<'_>, gauge: ObjectGauge, value: i64) {
        self.with(key, |j| {
            j.object(&key.scaled_object.name).gauges[gauge as usize] = Some(value)
        });
    }

    /// Sets `last_rescale_timestamp_seconds`.
    pub(super) fn set_last_rescale(&self, key: &JobKey<'_>, secs: f64) {
        self.with(key, |j| {
            j.object(&key.scaled_object.name).last_rescale = Some(secs)
        });
    }

    /// Creates the job's `rescales_total` (every direction × outcome) and
    /// `failovers_total` at 0 where absent.
    pub(super) fn register(&self, key: &JobKey<'_>) {
        self.with(key, |j| {
            for row in &mut j.object(&key.scaled_object.name).rescales {
                for count in row {
                    count.get_or_insert(0);
                }
            }
            j.failovers.get_or_insert(0);
        });
    }

    /// Counts a rescale by direction and outcome.
    pub(super) fn count_rescale(
        &self,
        key: &JobKey<'_>,
        direction: Direction,
        outcome: RescaleOutcome,
    ) {
        let d = DIRECTIONS.iter().position(|x| *x == direction).unwrap_or(0);
        let o = RescaleOutcome::ALL
            .iter()
            .position(|x| *x == outcome)
            .unwrap_or(0);
        self.with(key, |j| {
            *j.object(&key.scaled_object.name).rescales[d][o].get_or_insert(0) += 1
        });
    }

    /// Replaces the Flink set-up series (reactive mode, rescale delays by setting).
    pub(super) fn set_setup(&self, key: &JobKey<'_>, reactive: bool, delays: &[(&str, f64)]) {
        self.with(key, |j| {
            for o in &mut j.objects {
                o.delays = Vec::new();
            }
            let o = j.object(&key.scaled_object.name);
            o.gauges[ObjectGauge::Reactive as usize] = Some(i64::from(reactive));
            o.delays = delays.iter().map(|(s, v)| ((*s).into(), *v)).collect();
        });
    }

    /// Removes the Flink set-up series of every ScaledObject of the job.
    #[cfg(test)]
    pub(super) fn remove_setup(&self, key: &JobKey<'_>) {
        self.with(key, |j| {
            for o in &mut j.objects {
                o.gauges[ObjectGauge::Reactive as usize] = None;
                o.delays = Vec::new();
            }
        });
    }

    /// Desired and current parallelism of a vertex.
    pub(super) fn set_parallelism(
        &self,
        key: &JobKey<'_>,
        vertex: &str,
        name: &str,
        desired: i64,
        current: i64,
    ) {
        self.with(key, |j| {
            let v = j.vertex(vertex);
            if &*v.name != name {
                v.name = name.into();
            }
            v.parallelism = Some((desired, current));
        });
    }

    /// Sets (or with `None` removes) a vertex's signal gauges, in [`SIGNAL_GAUGES`] order.
    pub(super) fn set_signals(
        &self,
        key: &JobKey<'_>,
        vertex: &str,
        values: [Option<f64>; SIGNAL_GAUGES.len()],
    ) {
        self.with(key, |j| {
            j.vertex(vertex).signals = values;
            j.vertices.retain(|v| !v.is_empty());
        });
    }

    /// Drops a vertex's series (parallelism and signals).
    pub(super) fn remove_vertex(&self, key: &JobKey<'_>, vertex: &str) {
        self.with(key, |j| j.vertices.retain(|v| &*v.id != vertex));
    }

    /// Counts a decision under its rule.
    pub(super) fn count_decision(&self, key: &JobKey<'_>, rule: &'static str) {
        self.with(key, |j| {
            match j.decisions.iter_mut().find(|(r, _)| *r == rule) {
                Some((_, n)) => *n += 1,
                None => j.decisions.push((rule, 1)),
            }
        });
    }

    /// Sets the one `rescale_phase` series of the job.
    pub(super) fn set_phase(&self, key: &JobKey<'_>, phase: Option<&'static str>) {
        self.with(key, |j| j.phase = Some(phase.unwrap_or(IDLE_PHASE)));
    }

    /// Counts a failover.
    pub(super) fn count_failover(&self, key: &JobKey<'_>) {
        self.with(key, |j| *j.failovers.get_or_insert(0) += 1);
    }

    /// Drops every series of the job (all its ScaledObjects).
    pub(super) fn remove(&self, key: &JobKey<'_>) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(by_name) = jobs.get_mut(key.namespace()) {
            by_name.remove(key.job);
            if by_name.is_empty() {
                jobs.remove(key.namespace());
            }
        }
    }

    /// Appends every family with series in the text exposition format.
    pub(super) fn encode(&self, out: &mut String) {
        self.write(out, None);
    }

    /// Appends family number `family` (of [`FAMILIES`]; nothing when it has no series):
    /// `/metrics` is sent one family at a time, so no scrape holds the whole text.
    pub(super) fn encode_family(&self, family: usize, out: &mut String) {
        self.write(out, Some(family));
    }

    fn write(&self, out: &mut String, only: Option<usize>) {
        let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        let mut w = Writer {
            out,
            jobs: &jobs,
            only,
            next: 0,
        };
        w.objects();
        w.vertices();
        w.job_families();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ScaledObjectRef;
    use crate::exporter::metrics::PREFIX;
    use ::prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

    /// The text the `prometheus` crate writes for the same series (the format this
    /// store must keep: label order, escaping, integer values).
    /// (name, help, label names, series (label values, value), counter).
    type Family<'a> = (
        &'a str,
        &'a str,
        &'a [&'a str],
        &'a [(&'a [&'a str], i64)],
        bool,
    );

    fn reference(families: &[Family<'_>]) -> String {
        let registry = Registry::new_custom(Some(PREFIX.into()), None).unwrap();
        for (name, help, labels, series, counter) in families {
            if *counter {
                let c = IntCounterVec::new(Opts::new(*name, *help), labels).unwrap();
                registry.register(Box::new(c.clone())).unwrap();
                for (values, n) in *series {
                    c.with_label_values(values).inc_by(*n as u64);
                }
            } else {
                let g = IntGaugeVec::new(Opts::new(*name, *help), labels).unwrap();
                registry.register(Box::new(g.clone())).unwrap();
                for (values, n) in *series {
                    g.with_label_values(values).set(*n);
                }
            }
        }
        TextEncoder::new()
            .encode_to_string(&registry.gather())
            .unwrap()
    }

    #[test]
    fn text_matches_the_prometheus_crate() {
        let so = ScaledObjectRef::new("team\"a", "so\\1");
        let key = JobKey {
            scaled_object: &so,
            job: "job\nname",
        };
        let store = JobSeries::default();
        store.set_gauge(&key, ObjectGauge::Desired, 4);
        store.set_parallelism(&key, "v1", "Source: \"x\"", 3, 2);
        store.count_decision(&key, "scale_up");
        store.count_decision(&key, "scale_up");
        let mut ours = String::new();
        store.encode(&mut ours);
        let so_labels: &[&str] = &["namespace", "scaled_object", "job_name"];
        let vertex: &[&str] = &["namespace", "job_name", "vertex", "vertex_name"];
        let (ns, name, job) = ("team\"a", "so\\1", "job\nname");
        let expected = reference(&[
            (
                OBJECT_GAUGES[0].0,
                OBJECT_GAUGES[0].1,
                so_labels,
                &[(&[ns, name, job], 4)],
                false,
            ),
            (
                "vertex_desired_parallelism",
                "Parallelism the last decision wants per job vertex.",
                vertex,
                &[(&[ns, job, "v1", "Source: \"x\""], 3)],
                false,
            ),
            (
                "vertex_current_parallelism",
                "Parallelism Flink reports per job vertex.",
                vertex,
                &[(&[ns, job, "v1", "Source: \"x\""], 2)],
                false,
            ),
            (
                "decisions_total",
                "Decisions by the rule that settled them.",
                &["namespace", "job_name", "rule"],
                &[(&[ns, job, "scale_up"], 2)],
                true,
            ),
        ]);
        let sorted = |t: &str| {
            let mut lines: Vec<String> = t.lines().map(str::to_string).collect();
            lines.sort();
            lines
        };
        assert_eq!(sorted(&ours), sorted(&expected), "{ours}\n---\n{expected}");
        let mut by_family = String::new();
        for family in 0..FAMILIES {
            store.encode_family(family, &mut by_family);
        }
        assert_eq!(by_family, ours, "family by family: the same text");
        let mut w = String::new();
        let mut count = Writer {
            out: &mut w,
            jobs: &Jobs::new(),
            only: Some(usize::MAX),
            next: 0,
        };
        count.objects();
        count.vertices();
        count.job_families();
        assert_eq!(count.next, FAMILIES);
    }

    #[test]
    fn removing_the_last_series_removes_the_vertex_and_job() {
        let so = ScaledObjectRef::new("ns", "so");
        let key = JobKey {
            scaled_object: &so,
            job: "j",
        };
        let store = JobSeries::default();
        store.set_signals(&key, "v", [Some(1.0), None, None, None]);
        store.set_signals(&key, "v", [None; 4]);
        let mut text = String::new();
        store.encode(&mut text);
        assert_eq!(text, "", "no family without series");
        store.remove(&key);
        assert!(store.jobs.lock().unwrap().is_empty());
    }
}

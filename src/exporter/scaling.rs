//! Recording helpers for the scaling side: rescales, TaskManager counts, per-vertex
//! parallelism, decisions by rule, the in-flight phase, the signals a decision used,
//! failovers, and [`Metrics::remove_job`] to drop a job's series when it goes away.

use std::{collections::HashMap, time::Duration};

use ::prometheus::core::{Collector, MetricVec, MetricVecBuilder};
use chrono::{DateTime, Utc};

use super::metrics::{JobKey, Metrics, RescaleOutcome, SignalValues, JOB_LABEL};
use crate::core::{Direction, Rule};

/// Phase label value when no rescale is in flight.
pub const IDLE_PHASE: &str = "idle";

/// Every value of the `phase` label: [`IDLE_PHASE`] and each rescale phase.
fn phases() -> impl Iterator<Item = &'static str> {
    use crate::core::RescalePhase as P;
    let rescale = [
        P::Pending,
        P::Applying,
        P::Draining,
        P::Completed,
        P::TimedOut,
        P::Aborted,
    ];
    std::iter::once(IDLE_PHASE).chain(rescale.map(P::as_str))
}

/// Removes every child of `vec` whose labels match all `(name, value)` pairs.
pub(super) fn remove_where<T: MetricVecBuilder>(vec: &MetricVec<T>, matchers: &[(&str, &str)]) {
    for family in vec.collect() {
        for metric in family.get_metric() {
            let labels: HashMap<&str, &str> = metric
                .get_label()
                .iter()
                .map(|l| (l.name(), l.value()))
                .collect();
            if matchers.iter().all(|(n, v)| labels.get(n) == Some(v)) {
                // The series was just listed, so it exists; a concurrent removal is fine.
                let _ = vec.remove(&labels);
            }
        }
    }
}

/// Sets a gauge child when `value` is `Some`, removes it when `None`.
fn set_or_remove(vec: &::prometheus::GaugeVec, labels: &[&str], value: Option<f64>) {
    match value {
        Some(v) => vec.with_label_values(labels).set(v),
        None => {
            let _ = vec.remove_label_values(labels);
        }
    }
}

fn clamp_i64(v: u32) -> i64 {
    i64::from(v)
}

impl Metrics {
    /// Counts a finished rescale and observes its duration.
    pub fn record_rescale(
        &self,
        key: &JobKey<'_>,
        direction: Direction,
        outcome: RescaleOutcome,
        duration: Duration,
    ) {
        let d = direction.as_str();
        self.job
            .rescales
            .with_label_values(&[
                &key.scaled_object.namespace,
                &key.scaled_object.name,
                key.job,
                d,
                outcome.as_str(),
            ])
            .inc();
        self.job
            .rescale_duration
            .with_label_values(&[
                &key.scaled_object.namespace,
                &key.scaled_object.name,
                key.job,
                d,
            ])
            .observe(duration.as_secs_f64());
    }

    /// Sets the time of the last rescale applied to the job.
    pub fn set_last_rescale(&self, key: &JobKey<'_>, at: DateTime<Utc>) {
        let secs = at.timestamp_millis() as f64 / 1000.0;
        self.job
            .last_rescale_timestamp
            .with_label_values(&key.labels())
            .set(secs);
    }

    /// TaskManagers the last decision wants.
    pub fn set_desired_task_managers(&self, key: &JobKey<'_>, n: u32) {
        self.job
            .desired_task_managers
            .with_label_values(&key.labels())
            .set(clamp_i64(n));
    }

    /// TaskManagers registered with the JobManager.
    pub fn set_current_task_managers(&self, key: &JobKey<'_>, n: u32) {
        self.job
            .current_task_managers
            .with_label_values(&key.labels())
            .set(clamp_i64(n));
    }

    /// TaskManager count last reported to KEDA.
    pub fn set_reported_task_managers(&self, key: &JobKey<'_>, n: u32) {
        self.job
            .reported_task_managers
            .with_label_values(&key.labels())
            .set(clamp_i64(n));
    }

    /// Warm spare TaskManagers included in the count reported to KEDA.
    pub fn set_spare_task_managers(&self, key: &JobKey<'_>, n: u32) {
        self.job
            .spare_task_managers
            .with_label_values(&key.labels())
            .set(clamp_i64(n));
    }

    /// The policy's TaskManager bounds (used by the `AtMaxTaskManagersWithLag` alert).
    pub fn set_task_manager_bounds(&self, key: &JobKey<'_>, min: u32, max: u32) {
        let l = key.labels();
        self.job
            .min_task_managers
            .with_label_values(&l)
            .set(clamp_i64(min));
        self.job
            .max_task_managers
            .with_label_values(&l)
            .set(clamp_i64(max));
    }

    /// Creates the job's counters at 0 (every direction × outcome, failovers) so the
    /// first increment is visible to `increase()`/`rate()`. Call when a job is first seen.
    pub fn register_job(&self, key: &JobKey<'_>) {
        for d in [Direction::Up, Direction::Down, Direction::None] {
            for o in RescaleOutcome::ALL {
                self.job.rescales.with_label_values(&[
                    &key.scaled_object.namespace,
                    &key.scaled_object.name,
                    key.job,
                    d.as_str(),
                    o.as_str(),
                ]);
            }
        }
        self.job
            .failovers
            .with_label_values(&[key.namespace(), key.job]);
    }

    /// Desired and current parallelism of one vertex (`vertex` is the JobVertexID).
    pub fn set_vertex_parallelism(
        &self,
        key: &JobKey<'_>,
        vertex: &str,
        vertex_name: &str,
        desired: u32,
        current: u32,
    ) {
        let labels = [key.namespace(), key.job, vertex, vertex_name];
        self.job
            .vertex_desired_parallelism
            .with_label_values(&labels)
            .set(clamp_i64(desired));
        self.job
            .vertex_current_parallelism
            .with_label_values(&labels)
            .set(clamp_i64(current));
    }

    /// Counts one decision under the rule that settled it.
    pub fn record_decision(&self, key: &JobKey<'_>, rule: Rule) {
        self.job
            .decisions
            .with_label_values(&[key.namespace(), key.job, rule.as_str()])
            .inc();
    }

    /// Counts `decision` under its main rule ([`crate::core::Decision::main_rule`]);
    /// a decision without reasons is not counted.
    pub fn record_decision_of(&self, key: &JobKey<'_>, decision: &crate::core::Decision) {
        if let Some(rule) = decision.main_rule() {
            self.record_decision(key, rule);
        }
    }

    /// Sets the job's rescale phase: `Some(phase)` (a [`crate::core::RescalePhase`]'s
    /// `as_str`) while a rescale is in flight, `None` when idle. Exactly one `rescale_phase` series per job is 1; the others are removed
    /// by their label values (a few map lookups, not a walk over every job's series: at
    /// 1,000 jobs that walk allocated the whole family on every tick).
    pub fn set_rescale_phase(&self, key: &JobKey<'_>, phase: Option<&'static str>) {
        let (namespace, job) = (key.namespace(), key.job);
        let phase = phase.unwrap_or(IDLE_PHASE);
        for other in phases().filter(|p| *p != phase) {
            let _ = self
                .job
                .rescale_phase
                .remove_label_values(&[namespace, job, other]);
        }
        self.job
            .rescale_phase
            .with_label_values(&[namespace, job, phase])
            .set(1);
    }

    /// The signal values a decision used for one vertex; absent values remove the series.
    pub fn set_signals(&self, key: &JobKey<'_>, vertex: &str, values: &SignalValues) {
        let labels = [key.namespace(), key.job, vertex];
        set_or_remove(
            &self.signals.signal_pending_records,
            &labels,
            values.pending_records,
        );
        set_or_remove(&self.signals.signal_busy_ratio, &labels, values.busy_ratio);
        set_or_remove(
            &self.signals.signal_true_processing_rate,
            &labels,
            values.true_processing_rate,
        );
        set_or_remove(&self.signals.signal_input_rate, &labels, values.input_rate);
    }

    /// Counts a job failover (a restart not caused by our rescale).
    pub fn record_failover(&self, key: &JobKey<'_>) {
        self.job
            .failovers
            .with_label_values(&[key.namespace(), key.job])
            .inc();
    }

    /// Drops every series of a job (all families with a job label), e.g. when its
    /// ScaledObject is deleted.
    pub fn remove_job(&self, key: &JobKey<'_>) {
        let job = [("namespace", key.namespace()), (JOB_LABEL, key.job)];
        let job = &job[..];
        remove_where(&self.job.rescales, job);
        remove_where(&self.job.rescale_duration, job);
        remove_where(&self.job.desired_task_managers, job);
        remove_where(&self.job.current_task_managers, job);
        remove_where(&self.job.reported_task_managers, job);
        remove_where(&self.job.spare_task_managers, job);
        remove_where(&self.job.min_task_managers, job);
        remove_where(&self.job.max_task_managers, job);
        remove_where(&self.job.vertex_desired_parallelism, job);
        remove_where(&self.job.vertex_current_parallelism, job);
        remove_where(&self.job.decisions, job);
        remove_where(&self.job.rescale_phase, job);
        remove_where(&self.job.last_rescale_timestamp, job);
        remove_where(&self.signals.signal_pending_records, job);
        remove_where(&self.signals.signal_busy_ratio, job);
        remove_where(&self.signals.signal_true_processing_rate, job);
        remove_where(&self.signals.signal_input_rate, job);
        remove_where(&self.job.failovers, job);
        self.remove_setup(key);
    }

    /// Drops the per-vertex series of one vertex (parallelism and signals), e.g. after a
    /// job graph change.
    pub fn remove_vertex(&self, key: &JobKey<'_>, vertex: &str) {
        let m = [
            ("namespace", key.namespace()),
            (JOB_LABEL, key.job),
            ("vertex", vertex),
        ];
        remove_where(&self.job.vertex_desired_parallelism, &m);
        remove_where(&self.job.vertex_current_parallelism, &m);
        self.set_signals(key, vertex, &SignalValues::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ScaledObjectRef;

    static SO: std::sync::LazyLock<ScaledObjectRef> =
        std::sync::LazyLock::new(|| ScaledObjectRef::new("ns", "so"));

    fn key() -> JobKey<'static> {
        JobKey {
            scaled_object: &SO,
            job: "wordcount",
        }
    }

    fn job(name: &'static str) -> JobKey<'static> {
        JobKey {
            scaled_object: &SO,
            job: name,
        }
    }

    #[test]
    fn rescale_counts_by_direction_and_outcome_and_observes_duration() {
        let m = Metrics::new().unwrap();
        m.record_rescale(
            &key(),
            Direction::Up,
            RescaleOutcome::Succeeded,
            Duration::from_secs(12),
        );
        m.record_rescale(
            &key(),
            Direction::Up,
            RescaleOutcome::Succeeded,
            Duration::from_secs(3),
        );
        m.record_rescale(
            &key(),
            Direction::Down,
            RescaleOutcome::TimedOut,
            Duration::from_secs(600),
        );
        let ok = m
            .job
            .rescales
            .with_label_values(&["ns", "so", "wordcount", "up", "succeeded"])
            .get();
        let timed_out = m
            .job
            .rescales
            .with_label_values(&["ns", "so", "wordcount", "down", "timed_out"])
            .get();
        assert_eq!((ok, timed_out), (2, 1));
        let h = m
            .job
            .rescale_duration
            .with_label_values(&["ns", "so", "wordcount", "up"]);
        assert_eq!(h.get_sample_count(), 2);
        assert!((h.get_sample_sum() - 15.0).abs() < 1e-9);
    }

    #[test]
    fn task_manager_gauges_and_last_rescale() {
        let m = Metrics::new().unwrap();
        m.set_desired_task_managers(&key(), 4);
        m.set_current_task_managers(&key(), 3);
        m.set_reported_task_managers(&key(), 4);
        m.set_spare_task_managers(&key(), 1);
        let at = DateTime::from_timestamp(1_700_000_000, 500_000_000).unwrap();
        m.set_last_rescale(&key(), at);
        let l = ["ns", "so", "wordcount"];
        assert_eq!(m.job.desired_task_managers.with_label_values(&l).get(), 4);
        assert_eq!(m.job.current_task_managers.with_label_values(&l).get(), 3);
        assert_eq!(m.job.reported_task_managers.with_label_values(&l).get(), 4);
        assert_eq!(m.job.spare_task_managers.with_label_values(&l).get(), 1);
        assert_eq!(
            m.job.last_rescale_timestamp.with_label_values(&l).get(),
            1_700_000_000.5
        );
    }

    #[test]
    fn register_job_creates_zero_counters_and_bounds_are_set() {
        let m = Metrics::new().unwrap();
        m.register_job(&key());
        m.set_task_manager_bounds(&key(), 1, 10);
        let text = m.encode();
        let zero_rescales = text
            .lines()
            .filter(|l| l.starts_with("flink_keda_scaler_rescales_total{") && l.ends_with(" 0"))
            .count();
        assert_eq!(zero_rescales, 3 * RescaleOutcome::ALL.len(), "{text}");
        assert!(text.contains(
            r#"flink_keda_scaler_failovers_total{job_name="wordcount",namespace="ns"} 0"#
        ));
        let l = ["ns", "so", "wordcount"];
        assert_eq!(m.job.max_task_managers.with_label_values(&l).get(), 10);
        assert_eq!(m.job.min_task_managers.with_label_values(&l).get(), 1);
    }

    #[test]
    fn decisions_count_by_rule() {
        let m = Metrics::new().unwrap();
        m.record_decision(&job("j"), Rule::Cooldown);
        m.record_decision(&job("j"), Rule::Cooldown);
        m.record_decision(&job("j"), Rule::ScaleUp);
        assert_eq!(
            m.job
                .decisions
                .with_label_values(&["ns", "j", Rule::Cooldown.as_str()])
                .get(),
            2
        );
        assert_eq!(
            m.job
                .decisions
                .with_label_values(&["ns", "j", "scale_up"])
                .get(),
            1
        );
    }

    #[test]
    fn phase_keeps_exactly_one_series_per_job() {
        let m = Metrics::new().unwrap();
        m.set_rescale_phase(&job("a"), Some("pending"));
        m.set_rescale_phase(&job("b"), Some("applying"));
        m.set_rescale_phase(&job("a"), Some("applying"));
        m.set_rescale_phase(&job("a"), None);
        let text = m.encode();
        let phases: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("flink_keda_scaler_rescale_phase{"))
            .collect();
        assert_eq!(phases.len(), 2, "{text}");
        assert!(text.contains(r#"rescale_phase{job_name="a",namespace="ns",phase="idle"} 1"#));
        assert!(text.contains(r#"rescale_phase{job_name="b",namespace="ns",phase="applying"} 1"#));
    }

    #[test]
    fn signals_set_and_remove() {
        let m = Metrics::new().unwrap();
        let v = SignalValues {
            pending_records: Some(1200.0),
            busy_ratio: Some(0.8),
            true_processing_rate: Some(5000.0),
            input_rate: Some(4000.0),
        };
        m.set_signals(&job("j"), "v1", &v);
        assert_eq!(
            m.signals
                .signal_pending_records
                .with_label_values(&["ns", "j", "v1"])
                .get(),
            1200.0
        );
        assert_eq!(
            m.signals
                .signal_true_processing_rate
                .with_label_values(&["ns", "j", "v1"])
                .get(),
            5000.0
        );
        m.set_signals(
            &job("j"),
            "v1",
            &SignalValues {
                pending_records: None,
                ..v
            },
        );
        assert!(!m.encode().contains("signal_pending_records{"));
        assert_eq!(
            m.signals
                .signal_busy_ratio
                .with_label_values(&["ns", "j", "v1"])
                .get(),
            0.8
        );
    }

    #[test]
    fn remove_job_drops_only_that_job() {
        let m = Metrics::new().unwrap();
        let other = JobKey {
            job: "other",
            ..key()
        };
        for k in [&key(), &other] {
            m.set_desired_task_managers(k, 2);
            m.record_rescale(
                k,
                Direction::Up,
                RescaleOutcome::Failed,
                Duration::from_secs(1),
            );
            m.set_vertex_parallelism(k, "abc", "Source", 2, 1);
            m.record_decision(k, Rule::NoChange);
            m.record_failover(k);
            m.set_rescale_phase(k, None);
        }
        // the same job name in another namespace is another job
        let elsewhere_so = ScaledObjectRef::new("other-ns", "so");
        let elsewhere = JobKey {
            scaled_object: &elsewhere_so,
            job: "wordcount",
        };
        m.record_failover(&elsewhere);
        m.set_vertex_parallelism(&elsewhere, "abc", "Source", 3, 3);
        m.remove_job(&key());
        let text = m.encode();
        assert!(
            !text.contains(r#"job_name="wordcount",namespace="ns""#),
            "{text}"
        );
        assert_eq!(
            m.job.failovers.with_label_values(&["ns", "other"]).get(),
            1,
            "other job kept"
        );
        assert_eq!(
            m.job
                .failovers
                .with_label_values(&["other-ns", "wordcount"])
                .get(),
            1,
            "the same job name in another namespace kept"
        );
        assert!(text.contains(r#"job_name="other""#));
    }

    #[test]
    fn vertex_parallelism_and_remove_vertex() {
        let m = Metrics::new().unwrap();
        m.set_vertex_parallelism(&job("j"), "v1", "Source: Kafka", 4, 2);
        m.set_vertex_parallelism(&job("j"), "v2", "Sink", 1, 1);
        assert_eq!(
            m.job
                .vertex_desired_parallelism
                .with_label_values(&["ns", "j", "v1", "Source: Kafka"])
                .get(),
            4
        );
        m.remove_vertex(&job("j"), "v1");
        let text = m.encode();
        assert!(!text.contains(r#"vertex="v1""#), "{text}");
        assert!(text.contains(r#"vertex="v2""#));
    }
}

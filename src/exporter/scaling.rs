//! Recording helpers for the scaling side: rescales, TaskManager counts, per-vertex
//! parallelism, decisions by rule, the in-flight phase, the signals a decision used,
//! failovers, and [`Metrics::remove_job`] to drop a job's series when it goes away.

use std::{collections::HashMap, time::Duration};

use ::prometheus::core::{Collector, MetricVec, MetricVecBuilder};
use chrono::{DateTime, Utc};

use super::{
    job_series::ObjectGauge,
    metrics::{JobKey, Metrics, RescaleOutcome, SignalValues, JOB_LABEL},
};
use crate::core::{Direction, Rule};

/// Phase label value when no rescale is in flight.
pub const IDLE_PHASE: &str = "idle";

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

impl Metrics {
    /// Counts a finished rescale and observes its duration.
    pub fn record_rescale(
        &self,
        key: &JobKey<'_>,
        direction: Direction,
        outcome: RescaleOutcome,
        duration: Duration,
    ) {
        self.jobs.count_rescale(key, direction, outcome);
        self.rescale_duration
            .with_label_values(&[
                &key.scaled_object.namespace,
                &key.scaled_object.name,
                key.job,
                direction.as_str(),
            ])
            .observe(duration.as_secs_f64());
    }

    /// Sets the time of the last rescale applied to the job.
    pub fn set_last_rescale(&self, key: &JobKey<'_>, at: DateTime<Utc>) {
        let secs = at.timestamp_millis() as f64 / 1000.0;
        self.jobs.set_last_rescale(key, secs);
    }

    /// TaskManagers the last decision wants.
    pub fn set_desired_task_managers(&self, key: &JobKey<'_>, n: u32) {
        self.jobs.set_gauge(key, ObjectGauge::Desired, n.into());
    }

    /// TaskManagers registered with the JobManager.
    pub fn set_current_task_managers(&self, key: &JobKey<'_>, n: u32) {
        self.jobs.set_gauge(key, ObjectGauge::Current, n.into());
    }

    /// TaskManager count last reported to KEDA.
    pub fn set_reported_task_managers(&self, key: &JobKey<'_>, n: u32) {
        self.jobs.set_gauge(key, ObjectGauge::Reported, n.into());
    }

    /// Warm spare TaskManagers included in the count reported to KEDA.
    pub fn set_spare_task_managers(&self, key: &JobKey<'_>, n: u32) {
        self.jobs.set_gauge(key, ObjectGauge::Spare, n.into());
    }

    /// The policy's TaskManager bounds (used by the `AtMaxTaskManagersWithLag` alert).
    pub fn set_task_manager_bounds(&self, key: &JobKey<'_>, min: u32, max: u32) {
        self.jobs.set_gauge(key, ObjectGauge::Min, min.into());
        self.jobs.set_gauge(key, ObjectGauge::Max, max.into());
    }

    /// Creates the job's counters at 0 (every direction × outcome, failovers) so the
    /// first increment is visible to `increase()`/`rate()`. Call when a job is first seen.
    pub fn register_job(&self, key: &JobKey<'_>) {
        self.jobs.register(key);
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
        self.jobs
            .set_parallelism(key, vertex, vertex_name, desired.into(), current.into());
    }

    /// Counts one decision under the rule that settled it.
    pub fn record_decision(&self, key: &JobKey<'_>, rule: Rule) {
        self.jobs.count_decision(key, rule.as_str());
    }

    /// Counts `decision` under its main rule ([`crate::core::Decision::main_rule`]);
    /// a decision without reasons is not counted.
    pub fn record_decision_of(&self, key: &JobKey<'_>, decision: &crate::core::Decision) {
        if let Some(rule) = decision.main_rule() {
            self.record_decision(key, rule);
        }
    }

    /// Sets the job's rescale phase: `Some(phase)` (a [`crate::core::RescalePhase`]'s
    /// `as_str`) while a rescale is in flight, `None` when idle ([`IDLE_PHASE`]). Exactly
    /// one `rescale_phase` series per job is 1.
    pub fn set_rescale_phase(&self, key: &JobKey<'_>, phase: Option<&'static str>) {
        self.jobs.set_phase(key, phase);
    }

    /// The signal values a decision used for one vertex; absent values remove the series.
    pub fn set_signals(&self, key: &JobKey<'_>, vertex: &str, values: &SignalValues) {
        self.jobs.set_signals(
            key,
            vertex,
            [
                values.pending_records,
                values.busy_ratio,
                values.true_processing_rate,
                values.input_rate,
            ],
        );
    }

    /// Counts a job failover (a restart not caused by our rescale).
    pub fn record_failover(&self, key: &JobKey<'_>) {
        self.jobs.count_failover(key);
    }

    /// Drops every series of a job (all families with a job label), e.g. when its
    /// ScaledObject is deleted.
    pub fn remove_job(&self, key: &JobKey<'_>) {
        let job = [("namespace", key.namespace()), (JOB_LABEL, key.job)];
        remove_where(&self.rescale_duration, &job);
        self.jobs.remove(key);
    }

    /// Drops the per-vertex series of one vertex (parallelism and signals), e.g. after a
    /// job graph change.
    pub fn remove_vertex(&self, key: &JobKey<'_>, vertex: &str) {
        self.jobs.remove_vertex(key, vertex);
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

    const SO_LABELS: &str = r#"{job_name="wordcount",namespace="ns",scaled_object="so"}"#;

    /// The value of the series `flink_keda_scaler_<series>` in `text`, if exported.
    fn value(text: &str, series: &str) -> Option<f64> {
        let prefix = format!("{}_{series} ", super::super::metrics::PREFIX);
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.parse().ok())
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
        let text = m.encode();
        let ok = value(
            &text,
            r#"rescales_total{direction="up",job_name="wordcount",namespace="ns",outcome="succeeded",scaled_object="so"}"#,
        );
        let timed_out = value(
            &text,
            r#"rescales_total{direction="down",job_name="wordcount",namespace="ns",outcome="timed_out",scaled_object="so"}"#,
        );
        assert_eq!((ok, timed_out), (Some(2.0), Some(1.0)));
        let h = m
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
        let text = m.encode();
        let so = |name: &str| value(&text, &format!("{name}{SO_LABELS}"));
        assert_eq!(so("desired_task_managers"), Some(4.0));
        assert_eq!(so("current_task_managers"), Some(3.0));
        assert_eq!(so("reported_task_managers"), Some(4.0));
        assert_eq!(so("spare_task_managers"), Some(1.0));
        assert_eq!(so("last_rescale_timestamp_seconds"), Some(1_700_000_000.5));
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
        let max = value(&text, &format!("max_task_managers{SO_LABELS}"));
        let min = value(&text, &format!("min_task_managers{SO_LABELS}"));
        assert_eq!((min, max), (Some(1.0), Some(10.0)));
    }

    #[test]
    fn decisions_count_by_rule() {
        let m = Metrics::new().unwrap();
        m.record_decision(&job("j"), Rule::Cooldown);
        m.record_decision(&job("j"), Rule::Cooldown);
        m.record_decision(&job("j"), Rule::ScaleUp);
        let text = m.encode();
        let rule = |r: &str| {
            value(
                &text,
                &format!(r#"decisions_total{{job_name="j",namespace="ns",rule="{r}"}}"#),
            )
        };
        assert_eq!(rule(Rule::Cooldown.as_str()), Some(2.0));
        assert_eq!(rule("scale_up"), Some(1.0));
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
        let text = m.encode();
        let l = r#"{job_name="j",namespace="ns",vertex="v1"}"#;
        let signal = |text: &str, name: &str| value(text, &format!("signal_{name}{l}"));
        assert_eq!(signal(&text, "pending_records"), Some(1200.0));
        assert_eq!(
            signal(&text, "true_processing_records_per_second"),
            Some(5000.0)
        );
        assert_eq!(signal(&text, "input_records_per_second"), Some(4000.0));
        m.set_signals(
            &job("j"),
            "v1",
            &SignalValues {
                pending_records: None,
                ..v
            },
        );
        let text = m.encode();
        assert!(!text.contains("signal_pending_records"), "{text}");
        assert_eq!(signal(&text, "busy_ratio"), Some(0.8));
        m.set_signals(&job("j"), "v1", &SignalValues::default());
        assert!(!m.encode().contains("signal_"), "every signal removed");
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
        let failovers = |l: &str| value(&text, &format!("failovers_total{l}"));
        assert_eq!(
            failovers(r#"{job_name="other",namespace="ns"}"#),
            Some(1.0),
            "other job kept"
        );
        assert_eq!(
            failovers(r#"{job_name="wordcount",namespace="other-ns"}"#),
            Some(1.0),
            "the same job name in another namespace kept"
        );
        assert!(
            !text.contains(r#"rescale_duration_seconds_count{direction="up",job_name="wordcount",namespace="ns""#),
            "{text}"
        );
        assert!(text.contains(r#"job_name="other""#));
    }

    #[test]
    fn vertex_parallelism_and_remove_vertex() {
        let m = Metrics::new().unwrap();
        m.set_vertex_parallelism(&job("j"), "v1", "Source: Kafka", 4, 2);
        m.set_vertex_parallelism(&job("j"), "v2", "Sink", 1, 1);
        let text = m.encode();
        assert_eq!(
            value(
                &text,
                r#"vertex_desired_parallelism{job_name="j",namespace="ns",vertex="v1",vertex_name="Source: Kafka"}"#
            ),
            Some(4.0)
        );
        assert_eq!(
            value(
                &text,
                r#"vertex_current_parallelism{job_name="j",namespace="ns",vertex="v1",vertex_name="Source: Kafka"}"#
            ),
            Some(2.0)
        );
        m.remove_vertex(&job("j"), "v1");
        let text = m.encode();
        assert!(!text.contains(r#"vertex="v1""#), "{text}");
        assert!(text.contains(r#"vertex="v2""#));
    }
}

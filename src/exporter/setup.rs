//! Per-job series about the Flink set-up (issue 14 §1, issue 13 §5): whether the job runs
//! in reactive mode (sized in TaskManagers, never PUT to) and which of Flink's own
//! cooldown/stabilization settings would hold back the scaler's rescales, by how much.

use ::prometheus::{GaugeVec, IntGaugeVec};

use super::{
    families::Builder,
    metrics::{JobKey, Metrics, MetricsError, JOB_LABEL},
    scaling::remove_where,
};

/// The set-up families.
#[derive(Debug)]
pub(super) struct SetupFamilies {
    reactive: IntGaugeVec,
    rescale_delay: GaugeVec,
}

impl SetupFamilies {
    pub(super) fn register(b: &Builder<'_>) -> Result<Self, MetricsError> {
        Ok(Self {
            reactive: b.int_gauge(
                "flink_reactive_mode",
                "1 when the job's JobManager runs scheduler-mode: reactive (sized in \
                 TaskManagers, never PUT to; every scale-down is a failover).",
                &["namespace", "scaled_object", JOB_LABEL],
            )?,
            rescale_delay: b.gauge(
                "flink_rescale_delay_seconds",
                "Longest delay a Flink setting (label `setting`) adds to a rescale the scaler \
                 asks for (cooldown, stabilization, restart back-off); absent when none.",
                &["namespace", "scaled_object", JOB_LABEL, "setting"],
            )?,
        })
    }
}

impl Metrics {
    /// Records the set-up of `job`: reactive mode and the delaying settings (replacing
    /// the previous ones).
    pub fn set_flink_setup(&self, key: &JobKey<'_>, reactive: bool, delays: &[(&str, f64)]) {
        let [namespace, scaled_object, job] = key.labels();
        self.setup
            .reactive
            .with_label_values(&[namespace, scaled_object, job])
            .set(i64::from(reactive));
        remove_where(&self.setup.rescale_delay, &Self::setup_match(key));
        for (setting, secs) in delays {
            self.setup
                .rescale_delay
                .with_label_values(&[namespace, scaled_object, job, setting])
                .set(*secs);
        }
    }

    /// Drops the set-up series of the job.
    pub(super) fn remove_setup(&self, key: &JobKey<'_>) {
        remove_where(&self.setup.reactive, &Self::setup_match(key));
        remove_where(&self.setup.rescale_delay, &Self::setup_match(key));
    }

    fn setup_match<'a>(key: &JobKey<'a>) -> [(&'static str, &'a str); 2] {
        [("namespace", key.namespace()), (JOB_LABEL, key.job)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_up_series_are_replaced_and_removed() {
        let m = Metrics::new().unwrap();
        let so = crate::core::ScaledObjectRef {
            namespace: "ns".into(),
            name: "so".into(),
        };
        let key = JobKey {
            scaled_object: &so,
            job: "j",
        };
        m.set_flink_setup(&key, true, &[("a", 30.0), ("b", 60.0)]);
        m.set_flink_setup(&key, true, &[("b", 60.0)]);
        let text = m.encode();
        assert!(text.contains(
            "flink_keda_scaler_flink_reactive_mode{job_name=\"j\",namespace=\"ns\",scaled_object=\"so\"} 1"
        ), "{text}");
        assert!(!text.contains("setting=\"a\""));
        assert!(text.contains("setting=\"b\"} 60"));
        m.remove_setup(&key);
        assert!(!m.encode().contains("job_name=\"j\""));
    }
}

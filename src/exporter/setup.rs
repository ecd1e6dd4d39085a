//! Per-job series about the Flink set-up (issue 14 §1, issue 13 §5): whether the job runs
//! in reactive mode (sized in TaskManagers, never PUT to) and which of Flink's own
//! cooldown/stabilization settings would hold back the scaler's rescales, by how much.

use ::prometheus::{GaugeVec, IntGaugeVec};

use super::{
    families::Builder,
    metrics::{Metrics, MetricsError, JOB_LABEL},
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
                &[JOB_LABEL],
            )?,
            rescale_delay: b.gauge(
                "flink_rescale_delay_seconds",
                "Longest delay a Flink setting (label `setting`) adds to a rescale the scaler \
                 asks for (cooldown, stabilization, restart back-off); absent when none.",
                &[JOB_LABEL, "setting"],
            )?,
        })
    }
}

impl Metrics {
    /// Records the set-up of `job`: reactive mode and the delaying settings (replacing
    /// the previous ones).
    pub fn set_flink_setup(&self, job: &str, reactive: bool, delays: &[(&str, f64)]) {
        self.setup
            .reactive
            .with_label_values(&[job])
            .set(i64::from(reactive));
        remove_where(&self.setup.rescale_delay, &[(JOB_LABEL, job)]);
        for (setting, secs) in delays {
            self.setup
                .rescale_delay
                .with_label_values(&[job, setting])
                .set(*secs);
        }
    }

    /// Drops the set-up series of `job`.
    pub(super) fn remove_setup(&self, job: &str) {
        remove_where(&self.setup.reactive, &[(JOB_LABEL, job)]);
        remove_where(&self.setup.rescale_delay, &[(JOB_LABEL, job)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_up_series_are_replaced_and_removed() {
        let m = Metrics::new().unwrap();
        m.set_flink_setup("j", true, &[("a", 30.0), ("b", 60.0)]);
        m.set_flink_setup("j", true, &[("b", 60.0)]);
        let text = m.encode();
        assert!(text.contains("flink_keda_scaler_flink_reactive_mode{job_name=\"j\"} 1"));
        assert!(!text.contains("setting=\"a\""));
        assert!(text.contains("setting=\"b\"} 60"));
        m.remove_setup("j");
        assert!(!m.encode().contains("job_name=\"j\""));
    }
}

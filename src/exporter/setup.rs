//! Per-job series about the Flink set-up (issue 14 §1, issue 13 §5): whether the job runs
//! in reactive mode (sized in TaskManagers, never PUT to) and which of Flink's own
//! cooldown/stabilization settings would hold back the scaler's rescales, by how much.

//! The series live in [`super::job_series`] (`flink_reactive_mode` per ScaledObject,
//! `flink_rescale_delay_seconds` per ScaledObject and setting).

use super::metrics::{JobKey, Metrics};

impl Metrics {
    /// Records the set-up of `job`: reactive mode and the delaying settings (replacing
    /// the previous ones of every ScaledObject of the job).
    pub fn set_flink_setup(&self, key: &JobKey<'_>, reactive: bool, delays: &[(&str, f64)]) {
        self.jobs.set_setup(key, reactive, delays);
    }

    /// Drops the set-up series of the job.
    #[cfg(test)]
    pub(super) fn remove_setup(&self, key: &JobKey<'_>) {
        self.jobs.remove_setup(key);
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

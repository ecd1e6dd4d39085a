//! Baseline 1: a fixed allocation sized for the trace's peak, never rescaled.

use super::{
    constants::FIXED_PEAK_UTILIZATION,
    job::{Actuation, JobSpec, JobView, Target},
    policy::SimPolicy,
};

/// Enough TaskManagers for the peak rate at [`FIXED_PEAK_UTILIZATION`] busy.
#[derive(Debug, Clone)]
pub struct FixedPeak {
    /// Peak input rate of the trace (records/s).
    pub peak_rate: f64,
}

impl SimPolicy for FixedPeak {
    fn name(&self) -> String {
        "fixed-peak".to_string()
    }
    fn actuation(&self) -> Actuation {
        Actuation::InPlace
    }
    fn initial(&self, spec: &JobSpec) -> Option<Target> {
        let p = spec.uniform_parallelism_for(self.peak_rate, FIXED_PEAK_UTILIZATION);
        let parallelism = vec![p; spec.vertices.len()];
        Some(Target {
            task_managers: spec.task_managers_for(&parallelism),
            parallelism,
        })
    }
    fn step(&mut self, _view: &JobView, _now: f64) -> Option<Target> {
        None
    }
}

//! The policy interface of the simulator: every compared autoscaler sees a [`JobView`]
//! each tick and may return a new [`Target`], actuated the policy's way.

use super::job::{Actuation, JobSpec, JobView, Target};

/// A scaling policy under simulation.
pub trait SimPolicy {
    /// Short name used in tables, CSV and plots (`fixed-peak`, `ours`, ...).
    fn name(&self) -> String;
    /// How its targets are actuated.
    fn actuation(&self) -> Actuation;
    /// Initial allocation; `None` = the common initial allocation of the run.
    fn initial(&self, spec: &JobSpec) -> Option<Target> {
        let _ = spec;
        None
    }
    /// Called once per simulation step with the job's state at `now` (s since start).
    fn step(&mut self, view: &JobView, now: f64) -> Option<Target>;
}

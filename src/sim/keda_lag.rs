//! Baseline 2: KEDA's built-in Prometheus scaler on a consumer-lag query
//! (`sum(pendingRecords)`), AverageValue `threshold` records per replica, driving
//! `spec.taskManager.replicas` of a FlinkDeployment through the HPA (10 % tolerance,
//! 5 min scale-down stabilization). In native mode every replica change is a spec
//! UPGRADE: the job restarts with parallelism = replicas × slots (keda-external-scaler
//! notes §4). The reactive-mode variant (standalone + `scheduler-mode: reactive`) uses
//! every slot and restarts from the latest checkpoint on each TaskManager change.

use super::{
    hpa::Hpa,
    job::{Actuation, JobView, Target},
    policy::SimPolicy,
};

/// KEDA Prometheus scaler on lag.
#[derive(Debug, Clone)]
pub struct KedaLag {
    /// Records of lag per TaskManager replica (the trigger's `threshold`).
    pub threshold: f64,
    /// Reactive mode instead of native (restart) mode.
    pub reactive: bool,
    hpa: Hpa,
    slots_per_tm: u32,
    vertices: usize,
}

impl KedaLag {
    /// A scaler starting at `replicas` within `[min, max]`.
    pub fn new(
        threshold: f64,
        reactive: bool,
        replicas: u32,
        min: u32,
        max: u32,
        slots_per_tm: u32,
        vertices: usize,
    ) -> Self {
        Self {
            threshold,
            reactive,
            hpa: Hpa::new(replicas, min, max),
            slots_per_tm,
            vertices,
        }
    }
}

impl SimPolicy for KedaLag {
    fn name(&self) -> String {
        if self.reactive {
            "keda-lag-reactive".to_string()
        } else {
            "keda-lag-restart".to_string()
        }
    }
    fn actuation(&self) -> Actuation {
        if self.reactive {
            Actuation::Reactive
        } else {
            Actuation::Restart
        }
    }
    fn step(&mut self, view: &JobView, now: f64) -> Option<Target> {
        // native mode: status.taskManager.labelSelector is empty unless RUNNING, so the HPA
        // cannot compute a scale while the job restarts
        if !self.reactive && view.restarting {
            return None;
        }
        let replicas = self.hpa.sync(now, view.lag_records, self.threshold)?;
        Some(Target {
            parallelism: vec![replicas * self.slots_per_tm; self.vertices],
            task_managers: replicas,
        })
    }
}

//! Baseline 4: AWS Managed Service for Apache Flink's automatic scaling: CPU only
//! (`containerCPUUtilization`, maximum); ≥ 75 % for 15 consecutive minutes ⇒ parallelism
//! doubles; < 10 % for 6 h ⇒ parallelism halves (rounded up, never below the configured
//! parallelism). Applied by snapshot and restart (AWS docs, "how-scaling-auto").

use super::{
    constants::{
        AWS_SCALE_DOWN_CPU, AWS_SCALE_DOWN_MINUTES, AWS_SCALE_UP_CPU, AWS_SCALE_UP_MINUTES,
    },
    job::{Actuation, JobView, Target},
    policy::SimPolicy,
};

/// The AWS CPU rule.
#[derive(Debug, Clone)]
pub struct AwsCpu {
    /// Configured (minimum) parallelism.
    pub min_parallelism: u32,
    /// Parallelism cap (max TaskManagers × slots).
    pub max_parallelism: u32,
    slots_per_tm: u32,
    vertices: usize,
    next_sample: f64,
    above: u32,
    below: u32,
}

impl AwsCpu {
    /// The rule for a job configured at `min_parallelism`.
    pub fn new(
        min_parallelism: u32,
        max_parallelism: u32,
        slots_per_tm: u32,
        vertices: usize,
    ) -> Self {
        Self {
            min_parallelism,
            max_parallelism,
            slots_per_tm,
            vertices,
            next_sample: 60.0,
            above: 0,
            below: 0,
        }
    }
}

impl SimPolicy for AwsCpu {
    fn name(&self) -> String {
        "aws-cpu".to_string()
    }
    fn actuation(&self) -> Actuation {
        Actuation::Restart
    }
    fn step(&mut self, view: &JobView, now: f64) -> Option<Target> {
        if now < self.next_sample {
            return None;
        }
        self.next_sample = now + 60.0;
        if view.restarting {
            self.above = 0;
            self.below = 0;
            return None;
        }
        if view.cpu >= AWS_SCALE_UP_CPU {
            self.above += 1;
        } else {
            self.above = 0;
        }
        if view.cpu < AWS_SCALE_DOWN_CPU {
            self.below += 1;
        } else {
            self.below = 0;
        }
        let current = view.parallelism.iter().copied().max().unwrap_or(1);
        let new = if self.above >= AWS_SCALE_UP_MINUTES {
            (current * 2).min(self.max_parallelism)
        } else if self.below >= AWS_SCALE_DOWN_MINUTES {
            current.div_ceil(2).max(self.min_parallelism)
        } else {
            return None;
        };
        self.above = 0;
        self.below = 0;
        (new != current).then(|| Target {
            parallelism: vec![new; self.vertices],
            task_managers: new.div_ceil(self.slots_per_tm.max(1)),
        })
    }
}

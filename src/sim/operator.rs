//! Baseline 3: the Flink Kubernetes operator autoscaler with its documented defaults
//! (reference: operator docs and `ScalingMetricEvaluator`/`JobVertexScaler`): one
//! evaluation per reconcile (60 s); no decision for 5 min after RUNNING, then a full
//! 15 min metrics window; DS2 sizing with target utilization 0.7 and bounds 0.7 ± 0.3;
//! catch-up 30 min; restart time 5 min; scale-down at most by factor 0.6, only after the
//! 1 h scale-down interval using the highest recommendation seen; no scale-down while the
//! lag exceeds 5 min of input; parallelism aligned to divisors of the max parallelism.
//! Restart-based (native upgrade) or in place (adaptive scheduler, Flink 1.18+).

use std::collections::VecDeque;

use super::{
    constants::{
        OPERATOR_BACKLOG_THRESHOLD_S, OPERATOR_CATCH_UP_S, OPERATOR_LOOP_S,
        OPERATOR_METRICS_WINDOW_S, OPERATOR_RESTART_TIME_S, OPERATOR_SCALE_DOWN_INTERVAL_S,
        OPERATOR_SCALE_DOWN_MAX_FACTOR, OPERATOR_STABILIZATION_S, OPERATOR_TARGET_UTILIZATION,
        OPERATOR_UTILIZATION_BOUNDARY, TM_IDLE_TIMEOUT_S,
    },
    job::{Actuation, JobSpec, JobView, Target},
    policy::SimPolicy,
};

#[derive(Debug, Clone)]
struct Sample {
    t: f64,
    rate: f64,
    busy: Vec<f64>,
    lag: f64,
}

/// The operator autoscaler.
#[derive(Debug, Clone)]
pub struct OperatorAutoscaler {
    /// In place (adaptive scheduler) instead of restart-based.
    pub in_place: bool,
    spec: JobSpec,
    max_task_managers: u32,
    next_loop: f64,
    samples: VecDeque<Sample>,
    scale_down_since: Option<f64>,
    scale_down_highest: Vec<u32>,
    release: Option<(Vec<u32>, Option<f64>)>,
}

impl OperatorAutoscaler {
    /// The autoscaler for `spec`, capped at `max_task_managers` (a quota).
    pub fn new(spec: JobSpec, in_place: bool, max_task_managers: u32) -> Self {
        Self {
            in_place,
            spec,
            max_task_managers,
            next_loop: OPERATOR_LOOP_S,
            samples: VecDeque::new(),
            scale_down_since: None,
            scale_down_highest: Vec::new(),
            release: None,
        }
    }

    /// Smallest divisor of `max_p` that is ≥ `p` (EVENLY_SPREAD alignment).
    fn align(p: u32, max_p: u32) -> u32 {
        (p.max(1)..=max_p).find(|d| max_p % d == 0).unwrap_or(max_p)
    }

    fn evaluate(&mut self, view: &JobView) -> Option<Vec<u32>> {
        let (first, last) = (self.samples.front()?, self.samples.back()?);
        let span = last.t - first.t;
        if self.samples.len() < 2 || span < OPERATOR_METRICS_WINDOW_S - OPERATOR_LOOP_S {
            return None;
        }
        let n = self.samples.len() as f64;
        let avg_rate = self.samples.iter().map(|s| s.rate).sum::<f64>() / n;
        let lag_growth = (last.lag - first.lag) / span;
        let target_rate = (avg_rate + lag_growth).max(0.0);
        let catch_up = last.lag / OPERATOR_CATCH_UP_S;
        let backlog = last.lag / view.input_rate.max(1.0) > OPERATOR_BACKLOG_THRESHOLD_S;
        let u_target = OPERATOR_TARGET_UTILIZATION;
        let (u_max, u_min) = if backlog {
            (1.0, 0.0)
        } else {
            (
                u_target + OPERATOR_UTILIZATION_BOUNDARY,
                u_target - OPERATOR_UTILIZATION_BOUNDARY,
            )
        };
        let restart_term = target_rate * OPERATOR_RESTART_TIME_S / OPERATOR_CATCH_UP_S;
        let target_capacity = catch_up + restart_term + target_rate / u_target;
        let mut out_of_bounds = false;
        let mut new = Vec::with_capacity(view.parallelism.len());
        for (i, v) in self.spec.vertices.iter().enumerate() {
            let p = view.parallelism[i];
            let busy = self.samples.iter().map(|s| s.busy[i]).sum::<f64>() / n;
            let tpr = if busy > 0.0 {
                avg_rate / busy
            } else {
                f64::INFINITY
            };
            let up_bound = catch_up + target_rate / u_max;
            let down_bound = if u_min > 0.0 {
                catch_up + restart_term + target_rate / u_min
            } else {
                f64::INFINITY
            };
            if tpr < up_bound || tpr > down_bound {
                out_of_bounds = true;
            }
            let factor = if tpr.is_finite() {
                (target_capacity / tpr).max(1.0 - OPERATOR_SCALE_DOWN_MAX_FACTOR)
            } else {
                1.0 - OPERATOR_SCALE_DOWN_MAX_FACTOR
            };
            let raw = (factor * f64::from(p))
                .ceil()
                .clamp(1.0, f64::from(v.max_parallelism));
            new.push(Self::align(raw as u32, v.max_parallelism));
        }
        out_of_bounds.then_some(new)
    }
}

impl OperatorAutoscaler {
    /// In-place mode: TaskManagers freed by a scale-down are released by Flink's resource
    /// manager `TM_IDLE_TIMEOUT_S` after the job runs at the lower parallelism.
    fn release_idle(&mut self, view: &JobView, now: f64) -> Option<Target> {
        let (p, since) = self.release.as_mut()?;
        if view.parallelism != *p || view.rescale_pending || view.restarting {
            return None;
        }
        let since = *since.get_or_insert(now);
        if now - since < TM_IDLE_TIMEOUT_S {
            return None;
        }
        let (p, _) = self.release.take()?;
        Some(Target {
            task_managers: self.spec.task_managers_for(&p),
            parallelism: p,
        })
    }

    /// Adds a sample and drops those older than the metrics window.
    fn record(&mut self, view: &JobView, now: f64) {
        self.samples.push_back(Sample {
            t: now,
            rate: view.processed_rate,
            busy: view.busy.clone(),
            lag: view.lag_records,
        });
        while self
            .samples
            .front()
            .is_some_and(|s| s.t < now - OPERATOR_METRICS_WINDOW_S)
        {
            self.samples.pop_front();
        }
    }

    /// A scale-up at once (never lowering a vertex); a scale-down only after the
    /// scale-down interval, to the highest parallelism evaluated meanwhile.
    fn choose(&mut self, new: Vec<u32>, current: &[u32], now: f64) -> Option<Vec<u32>> {
        let up = new.iter().zip(current).any(|(n, c)| n > c);
        if up {
            self.scale_down_since = None;
            self.scale_down_highest.clear();
            return Some(new.iter().zip(current).map(|(n, c)| (*n).max(*c)).collect());
        }
        let since = *self.scale_down_since.get_or_insert(now);
        if self.scale_down_highest.len() != new.len() {
            self.scale_down_highest = new.clone();
        }
        for (h, n) in self.scale_down_highest.iter_mut().zip(&new) {
            *h = (*h).max(*n);
        }
        if now - since < OPERATOR_SCALE_DOWN_INTERVAL_S {
            return None;
        }
        let chosen = self.scale_down_highest.clone();
        self.scale_down_since = None;
        self.scale_down_highest.clear();
        Some(chosen)
    }
}

impl SimPolicy for OperatorAutoscaler {
    fn name(&self) -> String {
        if self.in_place {
            "operator-inplace".to_string()
        } else {
            "operator-restart".to_string()
        }
    }
    fn actuation(&self) -> Actuation {
        if self.in_place {
            Actuation::InPlace
        } else {
            Actuation::Restart
        }
    }
    fn step(&mut self, view: &JobView, now: f64) -> Option<Target> {
        if let Some(t) = self.release_idle(view, now) {
            return Some(t);
        }
        if now < self.next_loop {
            return None;
        }
        self.next_loop = now + OPERATOR_LOOP_S;
        // RUNNING newer than the oldest sample ⇒ restarted: history cleared
        if view.restarting
            || self
                .samples
                .front()
                .is_some_and(|s| s.t < view.running_since)
        {
            self.samples.clear();
        }
        if view.restarting
            || view.rescale_pending
            || now - view.running_since < OPERATOR_STABILIZATION_S
        {
            return None;
        }
        self.record(view, now);
        let new = self.evaluate(view)?;
        let current = &view.parallelism;
        let chosen = self.choose(new, current, now)?;
        // quota: at most max_task_managers × slots per vertex
        let cap = self.max_task_managers * self.spec.slots_per_tm;
        let chosen: Vec<u32> = chosen.into_iter().map(|p| p.min(cap)).collect();
        if &chosen == current {
            return None;
        }
        self.samples.clear();
        let needed = self.spec.task_managers_for(&chosen);
        let task_managers = if self.in_place && needed < view.tms_requested {
            // Flink releases the freed TaskManagers itself once they are idle
            self.release = Some((chosen.clone(), None));
            view.tms_requested
        } else {
            self.release = None;
            needed
        };
        Some(Target {
            task_managers,
            parallelism: chosen,
        })
    }
}

//! The job model: a source → keyed operator → sink pipeline with per-subtask capacities and
//! skew, slot sharing, a Kafka-like backlog, and the three ways a rescale is actuated
//! (in place through the adaptive scheduler, full restart, reactive mode). Pure state
//! transitions driven by [`JobModel::advance`] and [`JobModel::apply`].

use super::constants::{
    CHECKPOINT_INTERVAL_S, CPU_IDLE, FULL_RESTART_S, HEARTBEAT_TIMEOUT_S, IN_PLACE_PAUSE_S,
    KAFKA_REBALANCE_S, NUDGED_CHECKPOINT_S, RESOURCE_STABILIZATION_TIMEOUT_S, TM_STARTUP_S,
};

/// One vertex of the modelled job.
#[derive(Debug, Clone, PartialEq)]
pub struct VertexSpec {
    /// Display name.
    pub name: String,
    /// Records/s one subtask processes at 100 % busy.
    pub capacity_per_subtask: f64,
    /// Load of the hottest subtask relative to the average (≥ 1; key skew).
    pub skew: f64,
    /// Max parallelism (key groups).
    pub max_parallelism: u32,
    /// Fed through a keyBy (HASH) edge.
    pub keyed: bool,
}

impl VertexSpec {
    /// Records/s the vertex sustains at parallelism `p` (limited by its hottest subtask).
    pub fn capacity(&self, p: u32) -> f64 {
        f64::from(p) * self.capacity_per_subtask / self.skew
    }
}

/// The modelled job: a linear pipeline, all vertices in one slot sharing group.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    /// Vertices in pipeline order (the first is the Kafka source).
    pub vertices: Vec<VertexSpec>,
    /// `taskmanager.numberOfTaskSlots`.
    pub slots_per_tm: u32,
}

impl Default for JobSpec {
    /// Source 2 500 rec/s/subtask; keyed aggregation 1 000 rec/s/subtask with a 1.25 hot-key
    /// skew (the bottleneck: 800 rec/s effective); sink 4 000 rec/s/subtask; max
    /// parallelism 120 (the operator docs' recommended highly divisible value); 2 slots per
    /// TaskManager.
    fn default() -> Self {
        let v = |name: &str, cap: f64, skew: f64, keyed: bool| VertexSpec {
            name: name.to_string(),
            capacity_per_subtask: cap,
            skew,
            max_parallelism: 120,
            keyed,
        };
        Self {
            vertices: vec![
                v("Source: kafka", 2_500.0, 1.0, false),
                v("KeyedAggregate", 1_000.0, 1.25, true),
                v("Sink: kafka", 4_000.0, 1.0, false),
            ],
            slots_per_tm: 2,
        }
    }
}

impl JobSpec {
    /// Processing capacity at per-vertex parallelism `p`: the minimum over vertices.
    pub fn capacity(&self, p: &[u32]) -> f64 {
        self.vertices
            .iter()
            .zip(p)
            .map(|(v, p)| v.capacity(*p))
            .fold(f64::INFINITY, f64::min)
    }

    /// TaskManagers needed with slot sharing: ceil(max parallelism / slots per TM).
    pub fn task_managers_for(&self, p: &[u32]) -> u32 {
        let max = p.iter().copied().max().unwrap_or(1);
        max.div_ceil(self.slots_per_tm.max(1))
    }

    /// Uniform parallelism for all vertices so the bottleneck runs at `utilization` busy at
    /// `rate`.
    pub fn uniform_parallelism_for(&self, rate: f64, utilization: f64) -> u32 {
        let per_subtask = self
            .vertices
            .iter()
            .map(|v| v.capacity_per_subtask / v.skew)
            .fold(f64::INFINITY, f64::min);
        let max_p = self.max_parallelism();
        let p = (rate / (per_subtask * utilization)).ceil();
        if p.is_finite() && p >= 1.0 {
            (p as u32).min(max_p)
        } else {
            1
        }
    }

    /// Smallest max parallelism over the vertices.
    pub fn max_parallelism(&self) -> u32 {
        self.vertices
            .iter()
            .map(|v| v.max_parallelism)
            .min()
            .unwrap_or(1)
    }

    /// Records/s one TaskManager sustains at `utilization` (uniform parallelism, bottleneck).
    pub fn rate_per_task_manager(&self, utilization: f64) -> f64 {
        let per_subtask = self
            .vertices
            .iter()
            .map(|v| v.capacity_per_subtask / v.skew)
            .fold(f64::INFINITY, f64::min);
        per_subtask * f64::from(self.slots_per_tm) * utilization
    }
}

/// How a policy's target is put into effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actuation {
    /// Adaptive scheduler: PUT resource requirements; rescale once slots exist (or after
    /// the resource-stabilization timeout with what is there), after the next checkpoint,
    /// with a short pause. TaskManagers start after the start-up time.
    InPlace,
    /// [`Actuation::InPlace`] by a scaler that triggers the checkpoint the rescale waits for
    /// as soon as the slots are usable (ours: `runtime::apply::CheckpointNudger`), so the
    /// rescale follows after [`NUDGED_CHECKPOINT_S`] instead of at the next periodic one.
    InPlaceNudged,
    /// Full restart (operator native-mode upgrade, AWS snapshot-and-restart): the job is down
    /// for the full-restart time.
    Restart,
    /// Reactive mode: parallelism = available slots; every TaskManager change restarts the
    /// job from the latest checkpoint; removals stall for the heartbeat timeout.
    Reactive,
}

impl Actuation {
    /// True for the adaptive scheduler's in-place rescale (nudged or not).
    pub fn in_place(self) -> bool {
        matches!(self, Actuation::InPlace | Actuation::InPlaceNudged)
    }
}

/// What a policy asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Parallelism per vertex (ignored in reactive mode).
    pub parallelism: Vec<u32>,
    /// TaskManager replicas.
    pub task_managers: u32,
}

/// What a policy can see of the job at one tick (instantaneous values of this tick).
#[derive(Debug, Clone, PartialEq)]
pub struct JobView {
    /// Simulation time (s).
    pub t: f64,
    /// Input rate into the topic (records/s).
    pub input_rate: f64,
    /// Records/s processed (source output) this tick.
    pub processed_rate: f64,
    /// Backlog (records), i.e. `pendingRecords`.
    pub lag_records: f64,
    /// Busy fraction of the hottest subtask per vertex.
    pub busy: Vec<f64>,
    /// Back-pressured fraction per vertex.
    pub backpressure: Vec<f64>,
    /// CPU load of the hottest TaskManager (0..=1).
    pub cpu: f64,
    /// Running parallelism per vertex.
    pub parallelism: Vec<u32>,
    /// TaskManagers registered.
    pub tms_ready: u32,
    /// TaskManager pods requested (ready + starting).
    pub tms_requested: u32,
    /// True while the job is not processing (restart or rescale pause).
    pub restarting: bool,
    /// When the job last became RUNNING (s).
    pub running_since: f64,
    /// True while an in-place target differs from the running parallelism.
    pub rescale_pending: bool,
}

impl JobView {
    /// Lag in seconds of current input.
    pub fn lag_seconds(&self) -> f64 {
        self.lag_records / self.input_rate.max(1.0)
    }
}

/// Counters accumulated over a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    /// Parallelism changes applied.
    pub rescales: u32,
    /// Full restarts and failovers.
    pub restarts: u32,
    /// Seconds without processing.
    pub downtime_s: f64,
    /// TaskManager pod-seconds (ready + starting).
    pub tm_seconds: f64,
}

/// Kind of an actuation event (for the plot and the counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// In-place or reactive rescale.
    Rescale,
    /// Full restart.
    Restart,
    /// Failover caused by removing a TaskManager that still ran tasks.
    Failover,
}

/// The mutable job state.
#[derive(Debug, Clone)]
pub struct JobModel {
    spec: JobSpec,
    actuation: Actuation,
    parallelism: Vec<u32>,
    tms_ready: u32,
    tms_starting: Vec<f64>,
    pending: Option<(Vec<u32>, f64)>,
    trigger_at: Option<f64>,
    pause_until: f64,
    running_since: f64,
    lag: f64,
    /// Counters so far.
    pub counters: Counters,
    /// Events `(t, kind)` so far.
    pub events: Vec<(f64, EventKind)>,
}

impl JobModel {
    /// A job running at `parallelism` on `tms` ready TaskManagers, with no backlog.
    pub fn new(spec: JobSpec, actuation: Actuation, parallelism: Vec<u32>, tms: u32) -> Self {
        Self {
            spec,
            actuation,
            parallelism,
            tms_ready: tms,
            tms_starting: Vec::new(),
            pending: None,
            trigger_at: None,
            pause_until: 0.0,
            running_since: 0.0,
            lag: 0.0,
            counters: Counters::default(),
            events: Vec::new(),
        }
    }

    /// The job specification.
    pub fn spec(&self) -> &JobSpec {
        &self.spec
    }

    fn slots(&self) -> u32 {
        self.tms_ready * self.spec.slots_per_tm
    }

    fn reactive_parallelism(&self) -> Vec<u32> {
        let p = self.slots().clamp(1, self.spec.max_parallelism());
        vec![p; self.spec.vertices.len()]
    }

    fn pause(&mut self, t: f64, seconds: f64) {
        self.pause_until = self.pause_until.max(t + seconds);
        self.running_since = self.pause_until;
    }

    /// Applies a policy target at time `t`.
    pub fn apply(&mut self, t: f64, target: &Target) {
        let tms = target.task_managers.max(1);
        match self.actuation {
            Actuation::Restart => {
                let mut p = target.parallelism.clone();
                let max_p = tms * self.spec.slots_per_tm;
                p.iter_mut().for_each(|x| *x = (*x).clamp(1, max_p));
                if (p == self.parallelism && tms == self.tms_ready) || t < self.pause_until {
                    return;
                }
                self.parallelism = p;
                self.tms_ready = tms;
                self.tms_starting.clear();
                self.pause(t, FULL_RESTART_S);
                self.counters.restarts += 1;
                self.counters.rescales += 1;
                self.events.push((t, EventKind::Restart));
            }
            Actuation::InPlace | Actuation::InPlaceNudged | Actuation::Reactive => {
                self.set_task_managers(t, tms);
                if self.actuation.in_place() {
                    let changed =
                        self.pending.as_ref().map(|(p, _)| p) != Some(&target.parallelism);
                    if target.parallelism == self.parallelism {
                        self.pending = None;
                        self.trigger_at = None;
                    } else if changed {
                        self.pending = Some((target.parallelism.clone(), t));
                        self.trigger_at = None;
                    }
                }
            }
        }
    }

    fn set_task_managers(&mut self, t: f64, tms: u32) {
        let requested = self.tms_ready + self.tms_starting.len() as u32;
        if tms > requested {
            for _ in requested..tms {
                self.tms_starting.push(t + TM_STARTUP_S);
            }
            return;
        }
        let mut remove = requested - tms;
        while remove > 0 && self.tms_starting.pop().is_some() {
            remove -= 1;
        }
        if remove == 0 {
            return;
        }
        self.tms_ready -= remove.min(self.tms_ready.saturating_sub(1));
        match self.actuation {
            Actuation::Reactive => {
                self.parallelism = self.reactive_parallelism();
                self.pause(
                    t,
                    HEARTBEAT_TIMEOUT_S + IN_PLACE_PAUSE_S + KAFKA_REBALANCE_S,
                );
                self.counters.rescales += 1;
                self.events.push((t, EventKind::Rescale));
            }
            _ => {
                let slots = self.slots();
                if self.parallelism.iter().any(|p| *p > slots) {
                    // a TaskManager with running tasks was removed: heartbeat timeout, failover
                    self.parallelism
                        .iter_mut()
                        .for_each(|p| *p = (*p).min(slots));
                    self.pause(
                        t,
                        HEARTBEAT_TIMEOUT_S + IN_PLACE_PAUSE_S + KAFKA_REBALANCE_S,
                    );
                    self.counters.restarts += 1;
                    self.events.push((t, EventKind::Failover));
                }
            }
        }
    }

    fn scheduler(&mut self, t: f64) {
        if t < self.pause_until {
            return;
        }
        let Some((target, requested_at)) = self.pending.clone() else {
            return;
        };
        let slots = self.slots();
        let need = target.iter().copied().max().unwrap_or(1);
        let running_max = self.parallelism.iter().copied().max().unwrap_or(1);
        let usable = need <= slots
            || (slots > running_max && t - requested_at >= RESOURCE_STABILIZATION_TIMEOUT_S);
        if !usable {
            self.trigger_at = None;
            return;
        }
        match self.trigger_at {
            None => {
                // Flink 2.x (FLIP-461): wait for the next completed checkpoint
                let next = if self.actuation == Actuation::InPlaceNudged {
                    t + NUDGED_CHECKPOINT_S
                } else {
                    (t / CHECKPOINT_INTERVAL_S).floor() * CHECKPOINT_INTERVAL_S
                        + CHECKPOINT_INTERVAL_S
                };
                self.trigger_at = Some(next);
            }
            Some(at) if t >= at => {
                let p: Vec<u32> = target.iter().map(|x| (*x).clamp(1, slots.max(1))).collect();
                if p == target {
                    self.pending = None;
                } else {
                    // rescaled to what was there; keep the rest pending, restart the timer
                    self.pending = Some((target, t));
                }
                self.trigger_at = None;
                if p != self.parallelism {
                    self.parallelism = p;
                    self.pause(t, IN_PLACE_PAUSE_S + KAFKA_REBALANCE_S);
                    self.counters.rescales += 1;
                    self.events.push((t, EventKind::Rescale));
                }
            }
            Some(_) => {}
        }
    }

    /// Advances the job by `dt` seconds at time `t` with `input_rate` records/s arriving;
    /// returns the view at the end of the tick.
    pub fn advance(&mut self, t: f64, input_rate: f64, dt: f64) -> JobView {
        // TaskManagers that finished starting
        let before = self.tms_ready;
        let arrived = self.tms_starting.iter().filter(|r| **r <= t).count() as u32;
        self.tms_starting.retain(|r| *r > t);
        self.tms_ready += arrived;
        if self.actuation == Actuation::Reactive && self.tms_ready != before {
            let p = self.reactive_parallelism();
            if p != self.parallelism {
                self.parallelism = p;
                self.pause(t, IN_PLACE_PAUSE_S + KAFKA_REBALANCE_S);
                self.counters.rescales += 1;
                self.events.push((t, EventKind::Rescale));
            }
        }
        if self.actuation.in_place() {
            self.scheduler(t);
        }
        let restarting = t < self.pause_until;
        let capacity = self.spec.capacity(&self.parallelism);
        let processed = if restarting {
            0.0
        } else {
            capacity.min(input_rate + self.lag / dt).max(0.0)
        };
        self.lag = (self.lag + (input_rate - processed) * dt).max(0.0);
        let busy: Vec<f64> = self
            .spec
            .vertices
            .iter()
            .zip(&self.parallelism)
            .map(|(v, p)| (processed / v.capacity(*p)).clamp(0.0, 1.0))
            .collect();
        // vertices upstream of the bottleneck are back-pressured when it is saturated
        let bottleneck = busy
            .iter()
            .enumerate()
            .fold(
                (0, 0.0),
                |acc, (i, b)| if *b > acc.1 { (i, *b) } else { acc },
            )
            .0;
        let saturated = !restarting && processed >= capacity * 0.999;
        let backpressure: Vec<f64> = busy
            .iter()
            .enumerate()
            .map(|(i, b)| {
                if saturated && i < bottleneck {
                    1.0 - b
                } else {
                    0.0
                }
            })
            .collect();
        let max_busy = busy.iter().copied().fold(0.0, f64::max);
        let cpu = CPU_IDLE + (1.0 - CPU_IDLE) * max_busy;
        if restarting {
            self.counters.downtime_s += dt;
        }
        let requested = self.tms_ready + self.tms_starting.len() as u32;
        self.counters.tm_seconds += f64::from(requested) * dt;
        JobView {
            t,
            input_rate,
            processed_rate: processed,
            lag_records: self.lag,
            busy,
            backpressure,
            cpu,
            parallelism: self.parallelism.clone(),
            tms_ready: self.tms_ready,
            tms_requested: requested,
            restarting,
            running_since: self.running_since,
            rescale_pending: self.pending.is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backlog_grows_when_input_exceeds_capacity_and_drains_after() {
        let spec = JobSpec::default();
        let cap = spec.capacity(&[4, 4, 4]);
        let mut job = JobModel::new(spec, Actuation::InPlace, vec![4, 4, 4], 2);
        let v = job.advance(0.0, cap + 100.0, 5.0);
        assert!((v.lag_records - 500.0).abs() < 1e-6);
        let v = job.advance(5.0, cap - 200.0, 5.0);
        assert!(v.lag_records < 1e-6, "lag {}", v.lag_records);
    }

    #[test]
    fn in_place_rescale_waits_for_task_managers_and_checkpoint() {
        let spec = JobSpec::default();
        let mut job = JobModel::new(spec, Actuation::InPlace, vec![4, 4, 4], 2);
        job.apply(
            0.0,
            &Target {
                parallelism: vec![8, 8, 8],
                task_managers: 4,
            },
        );
        let mut t = 0.0;
        while t < TM_STARTUP_S {
            let v = job.advance(t, 1_000.0, 5.0);
            assert_eq!(v.parallelism, vec![4, 4, 4]);
            t += 5.0;
        }
        while t < 200.0 {
            job.advance(t, 1_000.0, 5.0);
            t += 5.0;
        }
        assert_eq!(job.parallelism, vec![8, 8, 8]);
        assert_eq!(job.counters.rescales, 1);
        assert_eq!(job.counters.restarts, 0);
        assert!(job.counters.downtime_s >= IN_PLACE_PAUSE_S);
    }

    /// A nudged rescale starts right after the slots are usable; an un-nudged one waits for
    /// the next periodic checkpoint.
    #[test]
    fn a_nudged_rescale_does_not_wait_for_the_periodic_checkpoint() {
        let rescaled_at = |actuation| {
            let mut job = JobModel::new(JobSpec::default(), actuation, vec![4, 4, 4], 4);
            let target = Target {
                parallelism: vec![8, 8, 8],
                task_managers: 4,
            };
            job.apply(1.0, &target);
            let mut t = 1.0;
            while job.parallelism != vec![8, 8, 8] && t < 200.0 {
                job.advance(t, 1_000.0, 1.0);
                t += 1.0;
            }
            t
        };
        let nudged = rescaled_at(Actuation::InPlaceNudged);
        let periodic = rescaled_at(Actuation::InPlace);
        // applied at 1 s, ticks of 1 s: the first tick after the nudged checkpoint, + 1
        assert!(nudged <= 1.0 + NUDGED_CHECKPOINT_S + 2.0, "{nudged}");
        assert!(periodic >= CHECKPOINT_INTERVAL_S, "{periodic}");
    }

    #[test]
    fn removing_a_busy_task_manager_fails_over() {
        let spec = JobSpec::default();
        let mut job = JobModel::new(spec, Actuation::InPlace, vec![8, 8, 8], 4);
        job.apply(
            0.0,
            &Target {
                parallelism: vec![8, 8, 8],
                task_managers: 2,
            },
        );
        assert_eq!(job.counters.restarts, 1);
        assert_eq!(job.parallelism, vec![4, 4, 4]);
    }
}

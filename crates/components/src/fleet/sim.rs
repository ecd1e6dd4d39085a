//! The load model of one synthetic job: five vertices in a chain, each with a cost per
//! record (busy milliseconds) and a parallelism; a source rate set by the test; a backlog
//! (`pendingRecords`) that grows when the slowest vertex cannot keep up and drains when it
//! can; Flink's counters integrated over time; and the in-place rescale a
//! resource-requirements PUT asks for, applied after the fleet's rescale delay.
//!
//! The model is advanced lazily to "now" whenever something reads it (a scrape, a REST
//! call), so idle jobs cost nothing.
//!
//! * Capacity of vertex `v` at parallelism `p`: `p × 1000 / cost_ms` records/s.
//! * Throughput: the source rate while there is no backlog and every vertex keeps up;
//!   with a backlog the source reads as fast as the slowest vertex allows, so the backlog
//!   drains at `capacity − rate`.
//! * Busy time of a subtask: `throughput / p × cost_ms` ms per second (≤ 1000).
//!   Back-pressured time: vertices upstream of a saturated vertex spend the rest of each
//!   second back-pressured; the others are idle.
//! * Per-second gauges are the instantaneous values (Flink's are 60 s moving averages);
//!   the counters (`numRecordsIn`, `accumulateBusyTimeMs`, ...) are exact integrals and
//!   restart from 0 with every new task attempt (a rescale), as Flink's do.

use std::time::{Duration, Instant};

/// Vertices of every synthetic job.
pub const VERTICES: usize = 5;

/// Names (as Flink names chained tasks) and busy milliseconds per record.
pub const VERTEX_SPECS: [(&str, f64); VERTICES] = [
    ("Source: events", 0.25),
    ("Parse -> Filter", 0.5),
    ("Window(TumblingEventTimeWindows(10000)) -> Aggregate", 1.0),
    ("Enrich", 0.6),
    ("Sink: out", 0.4),
];

/// Ship strategy of the input of vertex `v` (the source has none).
pub fn input_ship_strategy(v: usize) -> Option<&'static str> {
    match v {
        0 => None,
        2 => Some("HASH"),
        _ => Some("REBALANCE"),
    }
}

/// One subtask's counters (since its task attempt started).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counters {
    /// `numRecordsIn` (the source's operator-level input).
    pub records_in: f64,
    /// `numRecordsOut`.
    pub records_out: f64,
    /// `accumulateBusyTimeMs`.
    pub busy_ms: f64,
    /// `accumulateBackPressuredTimeMs`.
    pub back_pressured_ms: f64,
    /// `accumulateIdleTimeMs`.
    pub idle_ms: f64,
}

/// Per-second values of one vertex's subtasks (all subtasks of a vertex get the same).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rates {
    /// Records in per second per subtask.
    pub records_in: f64,
    /// Records out per second per subtask.
    pub records_out: f64,
    /// Busy ms per second.
    pub busy: f64,
    /// Back-pressured ms per second.
    pub back_pressured: f64,
    /// Idle ms per second.
    pub idle: f64,
}

/// A vertex of a synthetic job.
#[derive(Debug, Clone)]
pub struct VertexSim {
    /// Current parallelism.
    pub parallelism: u32,
    /// `lowerBound` of its resource requirements.
    pub lower_bound: u32,
    /// `upperBound` of its resource requirements.
    pub upper_bound: u32,
    /// One entry per subtask.
    pub counters: Vec<Counters>,
    /// The current per-second values.
    pub rates: Rates,
}

/// A rescale asked for by a PUT, applied at `due`.
#[derive(Debug, Clone)]
pub struct PendingRescale {
    /// When the new parallelism becomes visible.
    pub due: Instant,
    /// The parallelism of every vertex afterwards.
    pub parallelism: [u32; VERTICES],
}

/// One synthetic job.
#[derive(Debug, Clone)]
pub struct JobSim {
    /// Records per second the source is offered.
    pub rate: f64,
    /// Records waiting at the source (`pendingRecords`, summed over its subtasks).
    pub backlog: f64,
    /// The vertices, source first.
    pub vertices: Vec<VertexSim>,
    /// Task attempt number (0, +1 per rescale).
    pub attempt: u32,
    /// In-place rescales applied (`numRescales`).
    pub rescales: u64,
    /// The rescale a PUT asked for, not yet applied.
    pub pending: Option<PendingRescale>,
    /// `timestamps.RUNNING` (ms since the epoch).
    pub running_since_ms: i64,
    /// `start-time` (ms since the epoch).
    pub start_ms: i64,
    /// `last-modification` (ms since the epoch).
    pub last_modification_ms: i64,
    /// Resource-requirements PUTs received.
    pub puts: u64,
    /// Vertex whose series are left out of the exposition (a broken job), if any.
    pub hidden_vertex: Option<usize>,
    /// The job was cancelled: REST answers 404, the reporter drops its series.
    pub gone: bool,
    max_parallelism: u32,
    last: Instant,
}

impl JobSim {
    /// A job at `parallelism` everywhere, offered `rate` records/s, RUNNING since `now_ms`.
    pub fn new(
        parallelism: u32,
        max_parallelism: u32,
        rate: f64,
        now: Instant,
        now_ms: i64,
    ) -> Self {
        let p = parallelism.clamp(1, max_parallelism.max(1));
        let vertices = (0..VERTICES)
            .map(|_| VertexSim {
                parallelism: p,
                lower_bound: 1,
                upper_bound: p,
                counters: vec![Counters::default(); p as usize],
                rates: Rates::default(),
            })
            .collect();
        let mut job = Self {
            rate,
            backlog: 0.0,
            vertices,
            attempt: 0,
            rescales: 0,
            pending: None,
            running_since_ms: now_ms,
            start_ms: now_ms - 2_000,
            last_modification_ms: now_ms,
            puts: 0,
            hidden_vertex: None,
            gone: false,
            max_parallelism: max_parallelism.max(1),
            last: now,
        };
        job.update_rates(0.0);
        job
    }

    /// maxParallelism of every vertex.
    pub fn max_parallelism(&self) -> u32 {
        self.max_parallelism
    }

    /// Current parallelism of every vertex.
    pub fn parallelism(&self) -> [u32; VERTICES] {
        let mut out = [1; VERTICES];
        for (o, v) in out.iter_mut().zip(&self.vertices) {
            *o = v.parallelism;
        }
        out
    }

    /// Slots the job uses (one slot sharing group: the highest parallelism).
    pub fn slots(&self) -> u32 {
        self.vertices
            .iter()
            .map(|v| v.parallelism)
            .max()
            .unwrap_or(1)
    }

    /// Subtasks over all vertices (`tasks.total` of `/jobs/overview`).
    pub fn tasks(&self) -> u32 {
        self.vertices.iter().map(|v| v.parallelism).sum()
    }

    /// Advances the model to `now`, applying a due rescale at its due time.
    pub fn advance(&mut self, now: Instant, now_ms: i64) {
        if let Some(p) = self.pending.clone() {
            if p.due <= now {
                self.integrate(p.due);
                let late = now.saturating_duration_since(p.due);
                self.apply_rescale(&p.parallelism, now_ms - late.as_millis() as i64);
            }
        }
        self.integrate(now);
    }

    /// A PUT of resource requirements: records the bounds (what a GET returns at once)
    /// and schedules the parallelism change (`upperBound`, clamped to maxParallelism)
    /// after `delay`. A PUT that changes nothing schedules nothing.
    pub fn put_requirements(
        &mut self,
        bounds: &[(u32, u32); VERTICES],
        now: Instant,
        delay: Duration,
    ) {
        self.puts += 1;
        let mut target = self.parallelism();
        for (i, (lower, upper)) in bounds.iter().enumerate() {
            let upper = (*upper).clamp(1, self.max_parallelism);
            self.vertices[i].lower_bound = (*lower).clamp(1, upper);
            self.vertices[i].upper_bound = upper;
            target[i] = upper;
        }
        self.pending = (target != self.parallelism()).then(|| PendingRescale {
            due: now + delay,
            parallelism: target,
        });
    }

    fn apply_rescale(&mut self, parallelism: &[u32; VERTICES], at_ms: i64) {
        for (v, p) in self.vertices.iter_mut().zip(parallelism) {
            v.parallelism = *p;
            v.counters = vec![Counters::default(); *p as usize];
        }
        self.pending = None;
        self.attempt += 1;
        self.rescales += 1;
        self.running_since_ms = at_ms;
        self.last_modification_ms = at_ms;
        self.update_rates(0.0);
    }

    /// Integrates the counters from the last update to `to` at the current rates.
    fn integrate(&mut self, to: Instant) {
        let dt = to.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(to);
        if dt <= 0.0 {
            return;
        }
        let throughput = self.update_rates(dt);
        self.backlog = (self.backlog + (self.rate - throughput) * dt).max(0.0);
        for v in &mut self.vertices {
            let r = v.rates;
            for c in &mut v.counters {
                c.records_in += r.records_in * dt;
                c.records_out += r.records_out * dt;
                c.busy_ms += r.busy * dt;
                c.back_pressured_ms += r.back_pressured * dt;
                c.idle_ms += r.idle * dt;
            }
        }
    }

    /// Sets every vertex's per-second values for a step of `dt` seconds; returns the
    /// throughput (records/s through the job).
    fn update_rates(&mut self, dt: f64) -> f64 {
        let capacities: Vec<f64> = self
            .vertices
            .iter()
            .zip(VERTEX_SPECS)
            .map(|(v, (_, cost))| f64::from(v.parallelism) * 1000.0 / cost)
            .collect();
        let slowest = capacities.iter().copied().fold(f64::INFINITY, f64::min);
        let drain = if dt > 0.0 { self.backlog / dt } else { 0.0 };
        let throughput = (self.rate + drain).min(slowest).max(0.0);
        let saturated = capacities
            .iter()
            .position(|c| throughput >= c * 0.999)
            .unwrap_or(VERTICES);
        for (i, (v, (_, cost))) in self.vertices.iter_mut().zip(VERTEX_SPECS).enumerate() {
            let per_subtask = throughput / f64::from(v.parallelism);
            let busy = (per_subtask * cost).min(1000.0);
            // `saturated` is VERTICES when no vertex is at capacity.
            let back_pressured = if i < saturated { 1000.0 - busy } else { 0.0 };
            v.rates = Rates {
                records_in: per_subtask,
                records_out: if i + 1 == VERTICES { 0.0 } else { per_subtask },
                busy,
                back_pressured,
                idle: (1000.0 - busy - back_pressured).max(0.0),
            };
        }
        throughput
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(p: u32, rate: f64) -> (JobSim, Instant) {
        let t0 = Instant::now();
        (JobSim::new(p, 128, rate, t0, 1_000_000), t0)
    }

    #[test]
    fn busy_time_follows_rate_and_parallelism() {
        let (mut j, t0) = job(1, 400.0);
        j.advance(t0 + Duration::from_secs(10), 1_010_000);
        // The window vertex costs 1 ms per record: 400 records/s → 400 ms/s busy.
        assert!((j.vertices[2].rates.busy - 400.0).abs() < 1e-6);
        assert!((j.vertices[2].counters[0].busy_ms - 4000.0).abs() < 1e-6);
        assert!((j.vertices[0].counters[0].records_out - 4000.0).abs() < 1e-6);
        assert_eq!(j.backlog, 0.0);
        j.put_requirements(
            &[(1, 2); VERTICES],
            t0 + Duration::from_secs(10),
            Duration::from_secs(2),
        );
        assert_eq!(j.parallelism(), [1; VERTICES], "not before the delay");
        assert_eq!(
            j.vertices[0].upper_bound, 2,
            "GET shows the new bounds at once"
        );
        j.advance(t0 + Duration::from_secs(13), 1_013_000);
        assert_eq!(j.parallelism(), [2; VERTICES]);
        assert_eq!(j.attempt, 1);
        assert_eq!(j.running_since_ms, 1_012_000);
        assert!(
            (j.vertices[2].rates.busy - 200.0).abs() < 1e-6,
            "half per subtask"
        );
        // Counters restarted with the new attempt: 1 s at 200 records/s per subtask.
        assert!((j.vertices[2].counters[1].records_in - 200.0).abs() < 1e-6);
    }

    #[test]
    fn overload_builds_a_backlog_and_back_pressure_then_drains() {
        let (mut j, t0) = job(1, 1500.0);
        j.advance(t0 + Duration::from_secs(10), 1_010_000);
        // The window vertex saturates at 1000 records/s: 500 records/s pile up.
        assert!((j.backlog - 5000.0).abs() < 1e-6, "{}", j.backlog);
        assert_eq!(j.vertices[2].rates.busy, 1000.0);
        assert!(
            j.vertices[0].rates.back_pressured > 0.0,
            "upstream back-pressured"
        );
        assert_eq!(j.vertices[3].rates.back_pressured, 0.0, "downstream not");
        j.rate = 500.0;
        j.advance(t0 + Duration::from_secs(20), 1_020_000);
        assert!(j.backlog < 5000.0, "draining: {}", j.backlog);
    }
}

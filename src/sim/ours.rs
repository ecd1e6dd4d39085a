//! Policy 5, ours: every tick, build a core [`Observation`] from the model (busy time,
//! rates, back-pressure, pendingRecords, lag growth, CPU, all averaged over a `[1m]`
//! window as the Prometheus queries would), call [`crate::core::decide`], apply the
//! target parallelism in place (the PUT) and report the target TaskManager count to KEDA
//! (while a scale-up settles, what its recommendation needs, as `core::report` does), whose
//! HPA (10 % tolerance, 5 min scale-down stabilization) sets the replicas. The
//! reported count never drops below what the running parallelism needs, so TaskManagers
//! go away only after the job runs at the lower parallelism. With
//! [`PredictiveConfig`] a TaskManager floor from yesterday's input (a dynamic schedule
//! floor in the core policy) pre-scales ahead of recurring peaks.

use std::collections::VecDeque;

use chrono::{DateTime, TimeZone, Utc};

use super::{
    constants::{CHECKPOINT_INTERVAL_S, OBS_WINDOW_S, OURS_TICK_S},
    hpa::{Hpa, HpaConfig},
    job::{Actuation, JobSpec, JobView, Target},
    policy::SimPolicy,
    predictive::{predictive_floor, PredictiveConfig},
    trace::Trace,
};
use crate::core::{
    decide, Edge, JobSignals, JobState, JobStatus, Observation, Policy, RescaleTimeouts,
    ShipStrategy, TaskManagerSignals, Topology, Vertex, VertexId, VertexSignals,
};

/// Simulation time 0 as a wall-clock instant (a Monday, 00:00 UTC), so daily traces line up
/// with calendar days.
pub fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// Simulation seconds as an instant.
pub fn instant(t: f64) -> DateTime<Utc> {
    epoch() + chrono::Duration::milliseconds((t * 1000.0).round() as i64)
}

#[derive(Debug, Clone)]
struct Sample {
    t: f64,
    rate: f64,
    busy: Vec<f64>,
    backpressure: Vec<f64>,
    cpu: f64,
    lag: f64,
}

/// Our scaler under simulation.
#[derive(Debug, Clone)]
pub struct Ours {
    policy: Policy,
    spec: JobSpec,
    ids: Vec<VertexId>,
    state: JobState,
    window: VecDeque<Sample>,
    next_tick: f64,
    desired: Option<Vec<u32>>,
    target_tms: Option<u32>,
    hpa: Hpa,
    predictive: Option<(PredictiveConfig, Trace)>,
    last: Option<Target>,
    /// When the rescale in flight ends at the latest (its start plus the runtime's deadline).
    in_flight_until: f64,
    /// Decisions taken (ticks where `decide` ran).
    pub decisions: u32,
}

impl Ours {
    /// Our scaler with core `policy` behind an HPA with `hpa` for `spec`, starting at
    /// `replicas` TaskManagers;
    /// `predictive` adds the floor from the trace's own history.
    pub fn new(
        policy: Policy,
        hpa: HpaConfig,
        spec: JobSpec,
        replicas: u32,
        predictive: Option<(PredictiveConfig, Trace)>,
    ) -> Self {
        let ids = (0..spec.vertices.len())
            .map(|i| VertexId::new(format!("{:032x}", 0xa0 + i)))
            .collect();
        let hpa = Hpa::with_config(replicas, hpa);
        Self {
            policy,
            spec,
            ids,
            state: JobState::default(),
            window: VecDeque::new(),
            next_tick: OURS_TICK_S,
            desired: None,
            target_tms: None,
            hpa,
            predictive,
            last: None,
            in_flight_until: 0.0,
            decisions: 0,
        }
    }

    fn topology(&self, parallelism: &[u32]) -> Topology {
        let vertices = self
            .spec
            .vertices
            .iter()
            .zip(&self.ids)
            .zip(parallelism)
            .map(|((v, id), p)| Vertex {
                id: id.clone(),
                name: v.name.clone(),
                parallelism: *p,
                max_parallelism: v.max_parallelism,
                slot_sharing_group: None,
            })
            .collect();
        let edges = self
            .ids
            .windows(2)
            .zip(self.spec.vertices.iter().skip(1))
            .map(|(w, v)| Edge {
                from: w[0].clone(),
                to: w[1].clone(),
                ship_strategy: if v.keyed {
                    ShipStrategy::Hash
                } else {
                    ShipStrategy::Rebalance
                },
            })
            .collect();
        Topology { vertices, edges }
    }

    /// The observation the runtime would assemble from Prometheus and Flink REST.
    fn observe(&self, view: &JobView, now: f64) -> Observation {
        let n = self.window.len().max(1) as f64;
        let avg = |f: &dyn Fn(&Sample) -> f64| self.window.iter().map(f).sum::<f64>() / n;
        let rate = avg(&|s| s.rate);
        let cpu = avg(&|s| s.cpu);
        let lag_growth = match (self.window.front(), self.window.back()) {
            (Some(a), Some(b)) if b.t > a.t => (b.lag - a.lag) / (b.t - a.t),
            _ => 0.0,
        };
        let vertices = self
            .ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let source = i == 0;
                let sig = VertexSignals {
                    busy_ms_per_s: Some(1000.0 * avg(&|s| s.busy[i])),
                    backpressured_ms_per_s: Some(1000.0 * avg(&|s| s.backpressure[i])),
                    records_in_per_s: Some(rate),
                    records_out_per_s: Some(rate),
                    pending_records: source.then_some(view.lag_records),
                    lag_growth_per_s: source.then_some(lag_growth),
                    arrival_per_s: None,
                    partitions: None,
                };
                (id.clone(), sig)
            })
            .collect();
        let slots_total = f64::from(view.tms_ready * self.spec.slots_per_tm);
        let used = f64::from(view.parallelism.iter().copied().max().unwrap_or(0));
        Observation {
            at: instant(now),
            job_id: "sim".to_string(),
            job_name: "simulated".to_string(),
            status: if view.restarting {
                JobStatus::Restarting
            } else {
                JobStatus::Running
            },
            running_since: Some(instant(view.running_since)),
            topology: self.topology(&view.parallelism),
            slots_per_task_manager: Some(self.spec.slots_per_tm),
            task_managers_registered: Some(view.tms_ready),
            vertices,
            task_managers: (0..view.tms_ready)
                .map(|i| TaskManagerSignals {
                    tm_id: format!("tm-{i}"),
                    cpu_load: Some(cpu),
                    ..Default::default()
                })
                .collect(),
            job: JobSignals {
                slots_total: Some(slots_total),
                slots_available: Some((slots_total - used).max(0.0)),
                ..Default::default()
            },
            predicted_floor: None,
            signal_window: None,
            arrival_window: None,
        }
    }

    /// The predictive floor at `now`, if configured and history exists.
    fn floor(&self, now: f64, current_rate: f64) -> Option<u32> {
        let (cfg, trace) = self.predictive.as_ref()?;
        let from = now - cfg.period_s;
        if from < 0.0 {
            return None;
        }
        let steps = (cfg.lead_s / 60.0).ceil().max(0.0) as u32;
        let past: Vec<f64> = (0..=steps)
            .map(|k| trace.rate_at(from + f64::from(k) * 60.0))
            .collect();
        let per_tm = self
            .spec
            .rate_per_task_manager(self.policy.target_utilization);
        predictive_floor(&past, current_rate, cfg, per_tm)
    }
}

impl SimPolicy for Ours {
    fn name(&self) -> String {
        if self.predictive.is_some() {
            "ours-predictive".to_string()
        } else {
            "ours".to_string()
        }
    }
    fn actuation(&self) -> Actuation {
        Actuation::InPlaceNudged
    }
    fn step(&mut self, view: &JobView, now: f64) -> Option<Target> {
        self.window.push_back(Sample {
            t: now,
            rate: view.processed_rate,
            busy: view.busy.clone(),
            backpressure: view.backpressure.clone(),
            cpu: view.cpu,
            lag: view.lag_records,
        });
        while self
            .window
            .front()
            .is_some_and(|s| s.t <= now - OBS_WINDOW_S)
        {
            self.window.pop_front();
        }
        if now >= self.next_tick {
            self.next_tick = now + OURS_TICK_S;
            let mut obs = self.observe(view, now);
            // the signals are [1m] averages: a change shows in full one window (and a
            // tick) later
            obs.signal_window = Some(std::time::Duration::from_secs_f64(
                OBS_WINDOW_S + OURS_TICK_S,
            ));
            obs.predicted_floor = self.floor(now, view.input_rate);
            let (decision, state) = decide(&obs, &self.state, &self.policy, instant(now));
            self.decisions += 1;
            if self.in_flight(view, now) {
                // as the runtime's worker (`runtime/worker/tick.rs`, `act`): while a rescale
                // is in flight (until it completes or its deadline passes) the state it
                // decided stays, no other rescale starts and the report follows it
                return self.report(view, now);
            }
            self.state = state;
            if let Some(plan) = &decision.target {
                // as the runtime reports (core::report): a held rescale (cooldown, budget,
                // delay) reports what runs, not its target; a TaskManager-only difference
                // (the minimum) is KEDA's to apply
                let current = obs.topology.parallelism();
                self.target_tms = if decision.rescale || plan.parallelism == current {
                    Some(plan.task_managers)
                } else {
                    Some(self.spec.task_managers_for(&view.parallelism))
                };
                if decision.rescale {
                    let deadline = RescaleTimeouts::default().budget(
                        decision.direction,
                        Some(std::time::Duration::from_secs_f64(CHECKPOINT_INTERVAL_S)),
                    );
                    self.in_flight_until = now + deadline.as_secs_f64();
                    self.desired = Some(
                        self.ids
                            .iter()
                            .zip(&view.parallelism)
                            .map(|(id, p)| plan.parallelism.get(id).copied().unwrap_or(*p))
                            .collect(),
                    );
                }
            }
        }
        self.report(view, now)
    }
}

impl Ours {
    /// A rescale is in flight: pending, and its deadline not passed (as the runtime's
    /// worker holds it).
    fn in_flight(&self, view: &JobView, now: f64) -> bool {
        view.rescale_pending && now < self.in_flight_until
    }

    /// What a scale-up that waits for its signals to settle needs, as `core::report`'s
    /// settling rule: the pods it will need start while the signals settle (0 when none
    /// settles, in a dry run, or while a rescale is in flight).
    fn settling(&self, view: &JobView, now: f64) -> u32 {
        if self.policy.dry_run || self.in_flight(view, now) {
            return 0;
        }
        let Some(window) = &self.state.scale_up_window else {
            return 0;
        };
        crate::core::report::settling_need(
            &self.topology(&view.parallelism),
            &window.proposed,
            self.spec.slots_per_tm,
            &self.policy,
        )
    }

    /// The count reported to KEDA (through the HPA) and the target put in place.
    fn report(&mut self, view: &JobView, now: f64) -> Option<Target> {
        let desired = self
            .desired
            .clone()
            .unwrap_or_else(|| view.parallelism.clone());
        // never report fewer TaskManagers than the running or the target parallelism needs;
        // the spare on top, bounded by the maximum, only while no rescale is in flight (then
        // at least the replicas it started with: core::report)
        let in_flight = self.in_flight(view, now);
        let needed = self
            .target_tms
            .unwrap_or(view.tms_requested)
            .max(self.spec.task_managers_for(&view.parallelism))
            .max(self.spec.task_managers_for(&desired))
            .max(self.policy.min_task_managers)
            .min(self.policy.max_task_managers);
        let (needed, spare) = if in_flight {
            (needed.max(self.hpa.replicas), 0)
        } else {
            (needed, self.policy.spare_task_managers)
        };
        let reported = needed
            .saturating_add(spare)
            .min(self.policy.max_task_managers.max(needed))
            .max(self.settling(view, now));
        self.hpa.sync(now, f64::from(reported), 1.0);
        let target = Target {
            parallelism: desired,
            task_managers: self.hpa.replicas,
        };
        if self.last.as_ref() == Some(&target) {
            return None;
        }
        self.last = Some(target.clone());
        Some(target)
    }
}

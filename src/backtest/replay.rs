//! Pure replay of the decision core over a [`Timeline`]: at each tick an
//! [`Observation`] (status RUNNING, `running_since` = start of the range, the last change
//! of the observed parallelism or our last simulated rescale, whichever is latest) goes
//! through [`decide`], carrying the [`JobState`] across ticks. A rescale decision is
//! applied to the simulated parallelism from then on — what the scaler WOULD have done —
//! while the observed parallelism and TaskManagers record what actually ran.
//!
//! The history was measured at the actual parallelism. When ours differs, each vertex's
//! busy time is rescaled by `actual / ours` parallelism (the work per record is
//! conserved, capped at 1000 ms/s); rates, backlog, backpressure and TaskManager signals
//! are replayed as observed (the backlog is not re-simulated).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::assemble::{Tick, Timeline};
use crate::{
    core::{
        decide, task_managers_for, Decision, Direction, JobState, JobStatus, Observation, Policy,
        Reason, Topology, VertexId,
    },
    promql::JobVars,
};

/// The outcome of one tick.
#[derive(Debug, Clone, PartialEq)]
pub struct TickResult {
    /// The tick.
    pub at: DateTime<Utc>,
    /// Parallelism that actually ran (observed; carried over gaps).
    pub actual_parallelism: BTreeMap<VertexId, u32>,
    /// TaskManagers that actually ran (observed; carried over gaps).
    pub actual_task_managers: u32,
    /// Simulated parallelism after this tick's decision.
    pub ours_parallelism: BTreeMap<VertexId, u32>,
    /// Simulated TaskManagers after this tick's decision.
    pub ours_task_managers: u32,
    /// Ingest rate: records in per second summed over source vertices.
    pub input_rate: Option<f64>,
    /// Backlog: pending records summed over source vertices.
    pub lag: Option<f64>,
    /// The rule that settled the decision (`missing_signal`, `within_band`, `scale_up`, …).
    pub rule: &'static str,
    /// True when ours rescaled at this tick.
    pub rescaled: bool,
}

/// A rescale ours would have made.
#[derive(Debug, Clone, PartialEq)]
pub struct RescaleEvent {
    /// When.
    pub at: DateTime<Utc>,
    /// Up, down, or none (parallelism moved between vertices).
    pub direction: Direction,
    /// TaskManagers before.
    pub from_task_managers: u32,
    /// TaskManagers after.
    pub to_task_managers: u32,
    /// Parallelism before.
    pub from_parallelism: BTreeMap<VertexId, u32>,
    /// Parallelism after.
    pub to_parallelism: BTreeMap<VertexId, u32>,
    /// `Decision::summary()`.
    pub summary: String,
    /// The decision's reasons.
    pub reasons: Vec<Reason>,
}

/// A change of the parallelism that actually ran.
#[derive(Debug, Clone, PartialEq)]
pub struct ActualChange {
    /// First tick at the new parallelism.
    pub at: DateTime<Utc>,
    /// Parallelism before.
    pub from: BTreeMap<VertexId, u32>,
    /// Parallelism after.
    pub to: BTreeMap<VertexId, u32>,
}

/// The whole replay.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Replay {
    /// One result per tick.
    pub ticks: Vec<TickResult>,
    /// Rescales ours would have made.
    pub rescales: Vec<RescaleEvent>,
    /// Changes of the actual parallelism.
    pub actual_changes: Vec<ActualChange>,
}

/// Replays `policy` over the timeline.
pub fn replay(
    timeline: &Timeline,
    topology: &Topology,
    policy: &Policy,
    slots_per_task_manager: u32,
    vars: &JobVars,
) -> Replay {
    let mut out = Replay::default();
    let mut state = JobState::default();
    let mut actual: BTreeMap<VertexId, u32> = topology.parallelism();
    let mut actual_tms: Option<u32> = None;
    let mut ours: Option<(BTreeMap<VertexId, u32>, u32)> = None;
    let mut running_since: Option<DateTime<Utc>> = None;
    for tick in &timeline.ticks {
        let Some(at) = tick.at else { continue };
        actual = what_ran(
            tick,
            at,
            actual,
            &mut running_since,
            &mut out.actual_changes,
        );
        let tms_now = tick
            .task_managers_running
            .or(actual_tms)
            .unwrap_or_else(|| task_managers_for(topology, &actual, slots_per_task_manager));
        actual_tms = Some(tms_now);
        let (ours_p, ours_tms) = ours.get_or_insert_with(|| (actual.clone(), tms_now));

        let obs = observation(
            tick,
            topology,
            &actual,
            ours_p,
            *ours_tms,
            slots_per_task_manager,
            vars,
            running_since,
            at,
        );
        let (decision, next) = decide(&obs, &state, policy, at);
        state = next;
        let rescaled = apply(&decision, ours_p, ours_tms, &mut out.rescales);
        if rescaled {
            running_since = Some(at);
        }
        let (rate, lag) = source_load(tick, topology);
        out.ticks.push(TickResult {
            at,
            actual_parallelism: actual.clone(),
            actual_task_managers: tms_now,
            ours_parallelism: ours_p.clone(),
            ours_task_managers: *ours_tms,
            input_rate: rate,
            lag,
            rule: decision.main_rule().map(|r| r.as_str()).unwrap_or("none"),
            rescaled,
        });
    }
    out
}

/// The parallelism that ran at this tick (the last one known for vertices without a
/// count); a change is recorded and restarts the stabilization clock.
fn what_ran(
    tick: &Tick,
    at: DateTime<Utc>,
    actual: BTreeMap<VertexId, u32>,
    running_since: &mut Option<DateTime<Utc>>,
    changes: &mut Vec<ActualChange>,
) -> BTreeMap<VertexId, u32> {
    let mut observed = actual.clone();
    for (id, n) in &tick.parallelism {
        observed.insert(id.clone(), *n);
    }
    if observed != actual && running_since.is_some() {
        changes.push(ActualChange {
            at,
            from: actual,
            to: observed.clone(),
        });
        *running_since = Some(at);
    }
    running_since.get_or_insert(at);
    observed
}

/// The job's input rate and lag: the sums over its source vertices (`None` when no
/// source has a finite value).
fn source_load(tick: &Tick, topology: &Topology) -> (Option<f64>, Option<f64>) {
    let (mut rate, mut lag) = (None::<f64>, None::<f64>);
    let sources = topology
        .vertices
        .iter()
        .filter(|v| topology.is_source(&v.id));
    for v in sources {
        if let Some(s) = tick.vertices.get(&v.id) {
            if let Some(r) = s.records_in_per_s.filter(|x| x.is_finite()) {
                rate = Some(rate.unwrap_or(0.0) + r);
            }
            if let Some(p) = s.pending_records.filter(|x| x.is_finite()) {
                lag = Some(lag.unwrap_or(0.0) + p);
            }
        }
    }
    (rate, lag)
}

/// Applies a decision to the simulated job; returns true on a rescale.
fn apply(
    decision: &Decision,
    ours_p: &mut BTreeMap<VertexId, u32>,
    ours_tms: &mut u32,
    rescales: &mut Vec<RescaleEvent>,
) -> bool {
    let Some(target) = &decision.target else {
        return false;
    };
    if decision.rescale {
        rescales.push(RescaleEvent {
            at: decision.at,
            direction: decision.direction,
            from_task_managers: *ours_tms,
            to_task_managers: target.task_managers,
            from_parallelism: ours_p.clone(),
            to_parallelism: target.parallelism.clone(),
            summary: decision.summary(),
            reasons: decision.reasons.clone(),
        });
        *ours_p = target.parallelism.clone();
        *ours_tms = target.task_managers;
        true
    } else {
        // a TaskManager-only change (min/max clamp, schedule) is applied by KEDA alone
        if target.parallelism == *ours_p {
            *ours_tms = target.task_managers;
        }
        false
    }
}

/// The observation of one tick, at our simulated parallelism.
#[allow(clippy::too_many_arguments)]
fn observation(
    tick: &Tick,
    topology: &Topology,
    actual: &BTreeMap<VertexId, u32>,
    ours: &BTreeMap<VertexId, u32>,
    ours_tms: u32,
    slots: u32,
    vars: &JobVars,
    running_since: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) -> Observation {
    let mut topo = topology.clone();
    for v in &mut topo.vertices {
        if let Some(p) = ours.get(&v.id) {
            v.parallelism = *p;
        }
    }
    let vertices = tick
        .vertices
        .iter()
        .map(|(id, s)| {
            let mut s = s.clone();
            let (a, o) = (
                actual.get(id).copied().unwrap_or(1).max(1),
                ours.get(id).copied().unwrap_or(1).max(1),
            );
            if a != o {
                s.busy_ms_per_s = s
                    .busy_ms_per_s
                    .map(|b| (b * f64::from(a) / f64::from(o)).min(1000.0));
            }
            (id.clone(), s)
        })
        .collect();
    Observation {
        at,
        job_id: vars.job_id.clone(),
        job_name: vars.job_name.clone(),
        status: JobStatus::Running,
        running_since,
        topology: topo,
        slots_per_task_manager: Some(slots),
        task_managers_registered: Some(ours_tms),
        vertices,
        task_managers: tick.task_managers.clone(),
        job: tick.job.clone(),
        predicted_floor: None,
        signal_window: None,
        arrival_window: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        backtest::assemble::Tick,
        core::{AlignmentMode, Vertex, VertexSignals},
    };

    fn source() -> Topology {
        Topology {
            vertices: vec![Vertex {
                id: VertexId::new("src"),
                name: "Source: s".into(),
                parallelism: 2,
                max_parallelism: 128,
                slot_sharing_group: None,
            }],
            edges: vec![],
        }
    }

    /// Overloaded from the start: ours scales up once stabilized, then sees the busy time
    /// rescaled to its own parallelism (within band, holds); an observed parallelism
    /// change is recorded as an actual change.
    #[test]
    fn applies_own_rescales_and_tracks_actual() {
        let id = VertexId::new("src");
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).expect("ts");
        let ticks: Vec<Tick> = (0..12)
            .map(|i| {
                let actual = if i >= 10 { 3 } else { 2 };
                let mut vertices = BTreeMap::new();
                vertices.insert(
                    id.clone(),
                    VertexSignals {
                        busy_ms_per_s: Some(900.0 * 2.0 / f64::from(actual)),
                        records_in_per_s: Some(1000.0),
                        ..VertexSignals::default()
                    },
                );
                Tick {
                    at: Some(t0 + chrono::Duration::seconds(15 * i)),
                    vertices,
                    parallelism: [(id.clone(), actual)].into_iter().collect(),
                    task_managers_running: Some(actual),
                    ..Tick::default()
                }
            })
            .collect();
        let timeline = Timeline {
            ticks,
            issues: vec![],
        };
        let policy = Policy {
            alignment: AlignmentMode::Off,
            ..Policy::default()
        };
        let r = replay(&timeline, &source(), &policy, 1, &JobVars::new("j", "n"));
        assert_eq!(r.ticks.len(), 12);
        assert_eq!(r.ticks[0].rule, "stabilizing");
        // 2 · 0.9 / 0.7 = 2.57 → 3, once 30 s of stabilization have passed
        let want = (2.0_f64 * 0.9 / policy.target_utilization).ceil() as u32;
        assert_eq!(r.rescales.len(), 1, "{:#?}", r.rescales);
        let up = &r.rescales[0];
        assert_eq!(up.at, t0 + chrono::Duration::seconds(30));
        assert_eq!((up.from_task_managers, up.to_task_managers), (2, want));
        assert!(r.ticks[2].rescaled);
        // after our rescale: busy 900 at p=2 is 600 at p=3, within the band
        let rules: Vec<&str> = r.ticks.iter().map(|t| t.rule).collect();
        assert!(
            rules[5..10].iter().all(|r| *r == "within_band"),
            "{rules:?}"
        );
        // the observed parallelism change restarts the stabilization period
        assert_eq!(rules[10], "stabilizing", "{rules:?}");
        assert!(r.ticks.iter().skip(2).all(|t| t.ours_task_managers == want));
        assert_eq!(r.ticks[9].actual_task_managers, 2);
        assert_eq!(r.ticks[10].actual_task_managers, 3);
        assert_eq!(r.actual_changes.len(), 1);
        assert_eq!(r.actual_changes[0].at, t0 + chrono::Duration::seconds(150));
        assert_eq!(r.ticks[0].input_rate, Some(1000.0));
        assert_eq!(r.ticks[0].lag, None);
    }
}

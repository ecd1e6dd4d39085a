//! Reactive mode (`scheduler-mode: reactive`, standalone application clusters, what the
//! Flink Kubernetes Operator runs for a standalone FlinkDeployment that scales in place):
//! Flink refuses every resource-requirements update and runs **every vertex at the slot
//! count**, `min(slots × TaskManagers, maxParallelism)` (`ReactiveModeUtils`
//! sets each vertex's upper bound to its maxParallelism; measured on 2.3.0 and 1.20.5).
//! The only lever is the number of TaskManagers, so this module sizes in TaskManagers:
//!
//! * [`decide_reactive`] runs [`decide`] (every guard, DS2 sizing, alignment, bounds,
//!   cooldown, budget) and turns its per-vertex target into one number: the TaskManagers
//!   the most demanding vertex needs (with its alignment to key groups or partitions
//!   applied, and the TaskManager bounds and schedules already in `decide`'s count). The
//!   plan is then every vertex at [`reactive_parallelism`].
//! * Scale-downs are held twice as long ([`SCALE_DOWN_HOLD_FACTOR`]): in reactive mode
//!   every TaskManager holds a busy slot, so removing one is always a failover (measured:
//!   one exception-history entry "The TaskExecutor is shutting down.", restart from the
//!   latest checkpoint), and with Flink's default `exponential-delay` restart strategy each
//!   one stops processing longer than the last (1.5 → 12 s over seven in an hour).
//! * [`task_managers_to_report`]: a scale-up reports the new count at once; a scale-down
//!   reports the lower count once the checkpoint before it is taken (the rescale is
//!   accepted), never before.

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, Utc};

use super::{
    decide::decide,
    decision::{Decision, Direction, Plan, Reason, Rule},
    observation::Observation,
    policy::Policy,
    rescale::{Rescale, RescalePhase},
    state::JobState,
    topology::{Topology, VertexId},
};

/// Reactive scale-downs wait this many times the policy's `scaleDownDelay`.
pub const SCALE_DOWN_HOLD_FACTOR: u32 = 2;

/// The parallelism of every vertex with `task_managers` × `slots` slots in reactive mode:
/// `min(slots × TaskManagers, maxParallelism)`, at least 1.
pub fn reactive_parallelism(
    topology: &Topology,
    task_managers: u32,
    slots: u32,
) -> BTreeMap<VertexId, u32> {
    let total = task_managers.saturating_mul(slots.max(1)).max(1);
    topology
        .vertices
        .iter()
        .map(|v| (v.id.clone(), total.min(v.max_parallelism.max(1))))
        .collect()
}

/// The policy reactive mode decides with: scale-downs held [`SCALE_DOWN_HOLD_FACTOR`]
/// times longer.
pub fn reactive_policy(policy: &Policy) -> Policy {
    Policy {
        scale_down_delay: policy
            .scale_down_delay
            .saturating_mul(SCALE_DOWN_HOLD_FACTOR)
            .max(Duration::from_secs(1)),
        ..policy.clone()
    }
}

/// [`decide`] for a job in reactive mode: the target is a TaskManager count, every vertex
/// at [`reactive_parallelism`]; a target with the current count is no rescale (and the
/// returned state records none).
pub fn decide_reactive(
    obs: &Observation,
    state: &JobState,
    policy: &Policy,
    now: DateTime<Utc>,
) -> (Decision, JobState) {
    let (mut decision, mut next) = decide(obs, state, &reactive_policy(policy), now);
    let (Some(target), Some(slots)) = (
        decision.target.clone(),
        policy
            .slots_per_task_manager
            .or(obs.slots_per_task_manager)
            .filter(|s| *s > 0),
    ) else {
        return (decision, next);
    };
    let tms = target.task_managers.max(1);
    let current = decision.current.task_managers;
    let reason = Reason::new(
        Rule::Reactive,
        format!(
            "reactive mode: every vertex runs at slots × TaskManagers (bounded by its \
             maxParallelism), so the job is sized in TaskManagers: {tms} × {slots} slots"
        ),
    )
    .input("task_managers", f64::from(tms))
    .input("slots_per_task_manager", f64::from(slots));
    decision.target = Some(Plan {
        parallelism: reactive_parallelism(&obs.topology, tms, slots),
        task_managers: tms,
    });
    decision.direction = match tms.cmp(&current) {
        std::cmp::Ordering::Greater => Direction::Up,
        std::cmp::Ordering::Less => Direction::Down,
        std::cmp::Ordering::Equal => Direction::None,
    };
    if tms == current {
        if decision.rescale {
            // `decide` recorded a rescale that the TaskManager count does not make
            next.last_rescale_at = state.last_rescale_at;
            next.history.clone_from(&state.history);
        }
        decision.rescale = false;
        decision.reasons.push(reason);
        decision.reasons.push(Reason::new(
            Rule::NoChange,
            format!("reactive mode: the job keeps {tms} TaskManagers"),
        ));
    } else {
        let at = decision.reasons.len().saturating_sub(1);
        decision.reasons.insert(at, reason);
    }
    (decision, next)
}

/// The TaskManager count to report to KEDA in reactive mode: with no rescale in flight,
/// what the job runs at or the last count it was scaled to, whichever is higher (a lost
/// TaskManager never shrinks the job); a scale-up's new count at once; a scale-down's
/// lower count only once accepted (its checkpoint taken); the old count after an abort.
pub fn task_managers_to_report(running: u32, last_target: Option<u32>, r: Option<&Rescale>) -> u32 {
    let Some(r) = r.filter(|r| !r.phase.is_terminal() || r.phase == RescalePhase::Completed) else {
        return running.max(last_target.unwrap_or(0));
    };
    match (r.direction, r.phase) {
        (Direction::Down, RescalePhase::Pending) => r.from.task_managers,
        _ => r.to.task_managers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        fixtures::{at, t0},
        observation::Observation,
        rescale::{FailoverWatch, RescaleTimeouts},
        state::RescaleRecord,
        topology::ShipStrategy,
    };

    /// src(2) → agg(2, keyed over 128 key groups), 1 slot per TaskManager, 2 registered.
    fn job(src_busy: f64, agg_busy: f64, rate: f64) -> Observation {
        Observation::test()
            .vertex("src", 2, 128)
            .vertex("agg", 2, 128)
            .edge("src", "agg", ShipStrategy::Hash)
            .load("src", src_busy, rate)
            .load("agg", agg_busy, rate)
            .lag("src", 0.0, 0.0)
            .registered(2)
    }

    /// Uniform plan: every vertex at slots × TaskManagers, capped by its maxParallelism.
    #[test]
    fn every_vertex_runs_at_the_slot_count() {
        let t = Observation::test()
            .vertex("a", 1, 128)
            .vertex("b", 1, 6)
            .topology;
        let p = reactive_parallelism(&t, 4, 2);
        assert_eq!(p.get(&VertexId::new("a")), Some(&8));
        assert_eq!(p.get(&VertexId::new("b")), Some(&6));
    }

    /// A scale-up: the most demanding vertex sets the TaskManager count; every vertex gets
    /// the same parallelism; the final rule stays ScaleUp with a Reactive reason before it.
    #[test]
    fn scale_up_sizes_in_task_managers() {
        let obs = job(400.0, 950.0, 1000.0);
        let (d, s) = decide_reactive(&obs, &JobState::default(), &Policy::test(), t0());
        let target = d.target.clone().expect("target");
        assert!(d.rescale, "{}", d.summary());
        assert_eq!(d.direction, Direction::Up);
        let p: Vec<u32> = target.parallelism.values().copied().collect();
        assert!(p.iter().all(|x| *x == target.task_managers), "{p:?}");
        assert!(target.task_managers > 2);
        let rules: Vec<Rule> = d.reasons.iter().map(|r| r.rule).collect();
        assert_eq!(rules.last(), Some(&Rule::ScaleUp));
        assert!(rules.contains(&Rule::Reactive));
        assert_eq!(s.last_rescale_at, Some(t0()));
    }

    /// A vertex that could shrink while the busiest cannot: the count stays, no rescale is
    /// recorded (cooldown and budget untouched). `decide` holds it too: a scale-down that
    /// frees no TaskManager is not worth an in-place restart, and it closes the window.
    #[test]
    fn same_count_is_no_rescale() {
        let obs = job(100.0, 600.0, 1000.0);
        // the scale-down window of the source is long open, yet no TaskManager is freed
        let state = JobState {
            history: vec![RescaleRecord {
                at: at(-7200),
                from_task_managers: 1,
                to_task_managers: 2,
            }],
            scale_down_window: Some(crate::state::ScaleDownWindow {
                started_at: at(-3600),
                highest: [(VertexId::new("src"), 1), (VertexId::new("agg"), 2)].into(),
                settled: [(VertexId::new("src"), 1), (VertexId::new("agg"), 2)].into(),
                lowest: Default::default(),
                draining: false,
                drained_at: None,
            }),
            ..JobState::default()
        };
        let policy = Policy::test();
        let (plain, after) = decide(&obs, &state, &reactive_policy(&policy), t0());
        assert!(!plain.rescale, "{}", plain.summary());
        assert_eq!(plain.target.as_ref().map(|t| t.task_managers), Some(2));
        assert!(
            plain.summary().contains("free no TaskManager"),
            "{}",
            plain.summary()
        );
        assert_eq!(after.scale_down_window, None);
        let (d, s) = decide_reactive(&obs, &state, &policy, t0());
        assert!(!d.rescale, "{}", d.summary());
        assert_eq!(d.target.map(|t| t.task_managers), Some(2));
        assert_eq!(d.reasons.last().map(|r| r.rule), Some(Rule::NoChange));
        assert_eq!(s.history, state.history);
        assert_eq!(s.last_rescale_at, state.last_rescale_at);
    }

    /// Scale-downs wait twice the policy's delay.
    #[test]
    fn scale_down_is_held_twice_as_long() {
        let obs = job(100.0, 100.0, 100.0);
        let policy = Policy {
            scale_down_delay: Duration::from_secs(60),
            ..Policy::test()
        };
        let mut state = JobState::default();
        for (secs, rescale) in [(0, false), (90, false), (121, true)] {
            let (d, s) = decide_reactive(&obs, &state, &policy, at(secs));
            assert_eq!(d.rescale, rescale, "at +{secs}s: {}", d.summary());
            state = s;
        }
    }

    /// What KEDA gets: idle → max(running, last target); up → new count at once; down →
    /// old count until accepted, then the new one; aborted → the old one.
    #[test]
    fn report_follows_the_reactive_order() {
        assert_eq!(task_managers_to_report(2, Some(3), None), 3);
        assert_eq!(task_managers_to_report(3, None, None), 3);
        let plan = |n| Plan {
            parallelism: BTreeMap::new(),
            task_managers: n,
        };
        let new = |from, to| {
            Rescale::new(
                "0123456789abcdef0123456789abcdef".parse().expect("job id"),
                plan(from),
                plan(to),
                t0(),
                &RescaleTimeouts::default(),
                None,
                FailoverWatch::new(None, None),
            )
        };
        let up = new(2, 4);
        assert_eq!(task_managers_to_report(2, None, Some(&up)), 4);
        let mut down = new(4, 2);
        assert_eq!(task_managers_to_report(4, None, Some(&down)), 4);
        down.accepted(t0());
        assert_eq!(task_managers_to_report(4, None, Some(&down)), 2);
        down.job_gone(t0());
        assert_eq!(task_managers_to_report(4, Some(4), Some(&down)), 4);
    }
}

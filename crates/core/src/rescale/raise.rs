//! Raising a scale-up that still waits for its TaskManagers (pure rules).
//!
//! A scale-up is decided as soon as its signals are calm, a few seconds after a load step,
//! on windows that may still hold part of the step's transition (a source's consumption
//! and its lag growth fill at different speeds): the estimate can fall short by a few
//! percent, and at a TaskManager boundary that is one TaskManager (seen in the lab: 5
//! TaskManagers for a step that needs 5.14 at the target utilization, the backlog then
//! drained at 700 instead of 1,200 records/s). Without a warm spare the new pods take tens
//! of seconds to register, and until they do **Flink has not restarted anything**: the
//! adaptive scheduler waits for the slots of the requirements. New requirements put in
//! that time change what it waits for, not how many times it restarts. So while a
//! scale-up waits for its slots, the scaler keeps deciding — cooldown aside, since it is
//! the same rescale — and when a settled decision needs more than the rescale in flight,
//! the rescale's target is raised to it (one PUT, the report to KEDA follows).
//!
//! ```text
//! raisable = scale-up in flight, accepted (Applying)
//!            ∧ the job RUNNING at the parallelism it started from
//!            ∧ fewer TaskManagers registered than the target needs   (Flink cannot have
//!              begun the restart: the slots it waits for are not there)
//! raise to   = a decision to scale up (settled, as any scale-up) whose plan is at least
//!              the target's on every vertex and needs more TaskManagers
//! ```
//!
//! Never lowered (a lower estimate leaves the rescale as it is), never once the slots are
//! there (the restart may have begun: a raise then would be a second restart), and never
//! in reactive mode or for a FlinkDeployment the operator applies (the runtime's gates).

use chrono::{DateTime, Utc};

use super::{Rescale, RescaleEvent, RescalePhase};
use crate::{
    decision::{Decision, Direction, Plan},
    observation::{JobStatus, Observation},
    state::{JobState, RateTrend, ScaleUpWindow},
};

/// What the decisions made while a scale-up waits remember between ticks: their own
/// scale-up window and rate trend, so a raise settles as any scale-up does. Not
/// persisted: a new leader starts them afresh (at worst one settle time later).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RaiseMemory {
    window: Option<ScaleUpWindow>,
    trend: RateTrend,
}

impl RaiseMemory {
    /// The state the core decides a raise on: the job's, without the cooldown the
    /// rescale in flight started (a raise is that rescale), with the raise's own windows.
    pub fn state_for_decision(&self, state: &JobState) -> JobState {
        JobState {
            last_rescale_at: None,
            scale_up_window: self.window.clone(),
            trend: self.trend.clone(),
            ..state.clone()
        }
    }

    /// Keeps the windows of the state the decision returned.
    pub fn remember(&mut self, next: &JobState) {
        self.window.clone_from(&next.scale_up_window);
        self.trend.clone_from(&next.trend);
    }

    /// The recommendation of a raise still settling (the report asks KEDA for it).
    pub fn settling(&self) -> Option<&std::collections::BTreeMap<crate::VertexId, u32>> {
        self.window.as_ref().and_then(ScaleUpWindow::proposal)
    }
}

/// True while `rescale` is a scale-up Flink has accepted but cannot have begun: the job
/// runs at the parallelism it started from and fewer TaskManagers are registered than the
/// target needs.
pub fn raisable(rescale: &Rescale, obs: &Observation) -> bool {
    let waiting_for_slots = obs
        .task_managers_registered
        .is_some_and(|n| n < rescale.to.task_managers);
    rescale.direction == Direction::Up
        && rescale.phase == RescalePhase::Applying
        && obs.status == JobStatus::Running
        && obs.topology.parallelism() == rescale.from.parallelism
        && waiting_for_slots
}

/// The plan to raise `rescale` to: the decision's, when it is a scale-up the core would
/// start now (settled) that needs more TaskManagers and lowers no vertex of the target.
pub fn raised_plan(rescale: &Rescale, decision: &Decision) -> Option<Plan> {
    let target = decision.target.as_ref()?;
    let covers = rescale
        .to
        .parallelism
        .iter()
        .all(|(v, p)| target.parallelism.get(v).is_some_and(|t| t >= p));
    (decision.rescale
        && decision.direction == Direction::Up
        && target.task_managers > rescale.to.task_managers
        && covers)
        .then(|| target.clone())
}

impl Rescale {
    /// Raises the target of a scale-up that still waits ([`raisable`]) to `to`, whose
    /// requirements Flink accepted at `now`. Started-at, deadline and failover watch stay:
    /// it is the same rescale, and Flink restarts once.
    pub fn raise(&mut self, to: Plan, now: DateTime<Utc>) -> RescaleEvent {
        let from = self.to.task_managers;
        self.to = to;
        self.accepted_at = Some(now);
        RescaleEvent::Raised {
            from_task_managers: from,
            to_task_managers: self.to.task_managers,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::{
        decision::Reason,
        rescale::{FailoverWatch, RescaleTimeouts},
        topology::VertexId,
        JobId, Rule,
    };

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).expect("valid timestamp")
    }
    fn par(a: u32, b: u32) -> BTreeMap<VertexId, u32> {
        [(VertexId::new("a"), a), (VertexId::new("b"), b)].into()
    }
    fn plan(a: u32, b: u32, tms: u32) -> Plan {
        Plan {
            parallelism: par(a, b),
            task_managers: tms,
        }
    }
    fn accepted_up(from: Plan, to: Plan) -> Rescale {
        let job: JobId = "0123456789abcdef0123456789abcdef".parse().expect("job id");
        let mut r = Rescale::new(
            job,
            from,
            to,
            t0(),
            &RescaleTimeouts::default(),
            None,
            FailoverWatch::new(Some(0), None),
        );
        r.accepted(t0());
        r
    }
    fn observation(a: u32, b: u32, registered: u32, status: JobStatus) -> Observation {
        let mut obs = Observation::test()
            .vertex("a", a, 128)
            .vertex("b", b, 128)
            .registered(registered);
        obs.status = status;
        obs
    }
    fn decision(to: Plan, rescale: bool) -> Decision {
        Decision {
            at: t0(),
            current: plan(2, 2, 2),
            direction: Direction::Up,
            rescale,
            reasons: vec![Reason::new(Rule::ScaleUp, "scale up")],
            vertical: None,
            target: Some(to),
        }
    }

    #[test]
    fn a_scale_up_waiting_for_its_task_managers_is_raisable() {
        let r = accepted_up(plan(2, 2, 2), plan(5, 5, 5));
        assert!(raisable(&r, &observation(2, 2, 2, JobStatus::Running)));
        // the slots are there: Flink may have begun the restart
        assert!(!raisable(&r, &observation(2, 2, 5, JobStatus::Running)));
        // restarting, or already at another parallelism
        assert!(!raisable(&r, &observation(2, 2, 2, JobStatus::Restarting)));
        assert!(!raisable(&r, &observation(5, 5, 5, JobStatus::Running)));
        assert!(!raisable(&r, &observation(3, 3, 3, JobStatus::Running)));
        // registered TaskManagers unknown: not raisable
        let mut unknown = observation(2, 2, 2, JobStatus::Running);
        unknown.task_managers_registered = None;
        assert!(!raisable(&r, &unknown));
    }

    #[test]
    fn only_an_accepted_scale_up_is_raisable() {
        let obs = observation(4, 4, 2, JobStatus::Running);
        let down = accepted_up(plan(4, 4, 4), plan(2, 2, 2));
        assert!(!raisable(&down, &obs), "a scale-down never");
        let job: JobId = "0123456789abcdef0123456789abcdef".parse().expect("job id");
        let pending = Rescale::new(
            job,
            plan(4, 4, 4),
            plan(6, 6, 6),
            t0(),
            &RescaleTimeouts::default(),
            None,
            FailoverWatch::new(Some(0), None),
        );
        assert!(!raisable(&pending, &obs), "not accepted yet");
    }

    #[test]
    fn raised_to_a_settled_decision_that_needs_more_and_lowers_no_vertex() {
        let r = accepted_up(plan(2, 2, 2), plan(2, 5, 5));
        assert_eq!(
            raised_plan(&r, &decision(plan(2, 6, 6), true)),
            Some(plan(2, 6, 6))
        );
        // still settling (the core holds it): not yet
        assert_eq!(raised_plan(&r, &decision(plan(2, 6, 6), false)), None);
        // the same TaskManagers, or fewer: never lowered
        assert_eq!(raised_plan(&r, &decision(plan(2, 5, 5), true)), None);
        assert_eq!(raised_plan(&r, &decision(plan(2, 4, 4), true)), None);
        // more TaskManagers but a vertex below the target's: not a raise
        assert_eq!(raised_plan(&r, &decision(plan(1, 6, 6), true)), None);
    }

    #[test]
    fn a_raise_keeps_the_rescale_and_reports_the_new_count() {
        let mut r = accepted_up(plan(2, 2, 2), plan(5, 5, 5));
        let (started, deadline) = (r.started_at, r.deadline);
        let later = t0() + chrono::Duration::seconds(4);
        let event = r.raise(plan(6, 6, 6), later);
        assert_eq!(
            event,
            RescaleEvent::Raised {
                from_task_managers: 5,
                to_task_managers: 6
            }
        );
        assert_eq!((r.started_at, r.deadline), (started, deadline));
        assert_eq!(r.accepted_at, Some(later));
        assert_eq!(r.task_managers_to_report(), 6);
        assert_eq!(r.phase, RescalePhase::Applying);
    }

    /// The whole core: a scale-up 2 → 5 in flight (cooldown running) while the load needs
    /// 6. Decided on the job's state, the cooldown holds every tick; on the raise's state
    /// the same signals settle like any scale-up's (two calm ticks) and then ask for 6.
    #[test]
    fn a_settled_decision_in_flight_raises_where_the_cooldown_would_hold() {
        use crate::{decide, fixtures::Line, Policy};
        let line = Line {
            // 120 key groups, as the lab's job: 6 subtasks split them evenly
            vertices: vec![("src", 120, 10_000.0, false), ("agg", 120, 500.0, true)],
        };
        let policy = Policy::test();
        let start = crate::fixtures::t0();
        let r = accepted_up(plan(2, 2, 2), plan(2, 5, 5));
        let r = Rescale {
            from: Plan {
                parallelism: [(VertexId::new("src"), 2), (VertexId::new("agg"), 2)].into(),
                task_managers: 2,
            },
            to: Plan {
                parallelism: [(VertexId::new("src"), 2), (VertexId::new("agg"), 5)].into(),
                task_managers: 5,
            },
            ..r
        };
        let mut state = JobState::default();
        state.record(start, 2, 5);
        let mut memory = RaiseMemory::default();
        let mut raised = None;
        for tick in 1..=6 {
            let now = start + chrono::Duration::seconds(tick);
            let mut obs = line.observe(1_800.0, &[2, 2], 500.0 * tick as f64);
            obs.at = now;
            obs.signal_window = Some(std::time::Duration::from_secs(6));
            obs.task_managers_registered = Some(2);
            assert!(raisable(&r, &obs));
            let (held, _) = decide(&obs, &state, &policy, now);
            assert!(
                !held.rescale,
                "tick {tick}: the cooldown holds: {}",
                held.summary()
            );
            let (decision, next) = decide(&obs, &memory.state_for_decision(&state), &policy, now);
            memory.remember(&next);
            if let Some(p) = raised_plan(&r, &decision) {
                raised = Some((tick, p));
                break;
            }
        }
        let (tick, p) = raised.expect("a raise within the settle time");
        assert!(
            tick >= 2,
            "settled first (two calm ticks), raised at tick {tick}"
        );
        assert_eq!(
            p.task_managers,
            line.optimal(1, 1_800.0, policy.target_utilization)
        );
        assert_eq!(p.task_managers, 6);
    }

    #[test]
    fn the_raise_decides_without_the_rescales_cooldown_on_its_own_windows() {
        let state = JobState {
            last_rescale_at: Some(t0()),
            ..JobState::default()
        };
        let mut memory = RaiseMemory::default();
        let for_decision = memory.state_for_decision(&state);
        assert_eq!(for_decision.last_rescale_at, None);
        assert_eq!(for_decision.scale_up_window, None);
        let window = ScaleUpWindow {
            started_at: t0(),
            highest: par(6, 6),
            last_rates: BTreeMap::new(),
            last_projected: BTreeMap::new(),
            calm_ticks: 1,
            proposed: par(6, 6),
            settle_from: None,
        };
        let next = JobState {
            scale_up_window: Some(window.clone()),
            ..for_decision
        };
        memory.remember(&next);
        assert_eq!(memory.settling(), Some(&par(6, 6)));
        let again = memory.state_for_decision(&state);
        assert_eq!(again.scale_up_window, Some(window));
        assert_eq!(again.history, state.history);
    }
}

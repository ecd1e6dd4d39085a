//! `decide`: observation + state + policy + now → decision with reasons. Pure.

use chrono::{DateTime, Utc};

use super::{
    decision::{Decision, Direction, Plan, Reason, Rule},
    observation::Observation,
    policy::Policy,
    state::JobState,
};

/// Decides what the job should run at. Returns the decision and the updated state
/// (scale-down window, cooldown, history) that the runtime must persist.
pub fn decide(
    obs: &Observation,
    state: &JobState,
    policy: &Policy,
    now: DateTime<Utc>,
) -> (Decision, JobState) {
    let _ = policy;
    let current = Plan {
        parallelism: obs.topology.parallelism(),
        task_managers: obs.task_managers_registered.unwrap_or(0),
    };
    (
        Decision {
            at: now,
            current,
            target: None,
            direction: Direction::None,
            rescale: false,
            reasons: vec![Reason::new(
                Rule::MissingSignal,
                "decision core not implemented yet",
            )],
            vertical: None,
        },
        state.clone(),
    )
}

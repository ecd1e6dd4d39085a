//! Guards that run before any sizing: job status, stabilization after a (re)start, a
//! usable topology, and slots per TaskManager. Each refusal is a reason; `decide` turns
//! it into a decision without target.

use chrono::{DateTime, Utc};

use super::{
    decision::{Reason, Rule},
    observation::{JobStatus, Observation},
    policy::Policy,
    topology::VertexId,
};

/// Seconds left of `total` after `elapsed` (saturating; never panics on extreme durations).
pub fn remaining_s(total: chrono::TimeDelta, elapsed: chrono::TimeDelta) -> f64 {
    total
        .checked_sub(&elapsed)
        .map_or(f64::MAX, |d| d.num_milliseconds() as f64 / 1000.0)
}

/// Refuses unless the job is RUNNING and has been for `policy.stabilization`.
pub fn running_and_stable(
    obs: &Observation,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<(), Reason> {
    if obs.status != JobStatus::Running {
        return Err(Reason::new(
            Rule::NotRunning,
            format!("job is {:?}, not RUNNING", obs.status),
        ));
    }
    let Some(since) = obs.running_since else {
        return Err(Reason::new(
            Rule::MissingSignal,
            "runningSince unknown: cannot tell whether the job is stable",
        ));
    };
    let stabilization =
        chrono::Duration::from_std(policy.stabilization).unwrap_or(chrono::TimeDelta::MAX);
    let running_for = now.signed_duration_since(since);
    if running_for < stabilization {
        let remaining = remaining_s(stabilization, running_for);
        return Err(Reason::new(
            Rule::Stabilizing,
            format!(
                "running for {}s, stabilizing {remaining:.0}s more",
                running_for.num_seconds()
            ),
        )
        .input("running_s", running_for.num_milliseconds() as f64 / 1000.0)
        .input("remaining_s", remaining));
    }
    Ok(())
}

/// Refuses a topology that cannot be sized: no vertices, a cycle or dangling edge, a
/// vertex with parallelism 0 or maxParallelism 0. Returns the topological order.
pub fn usable_topology(obs: &Observation) -> Result<Vec<VertexId>, Reason> {
    let t = &obs.topology;
    if t.vertices.is_empty() {
        return Err(Reason::new(
            Rule::InvalidTopology,
            "topology has no vertices",
        ));
    }
    if let Some(v) = t
        .vertices
        .iter()
        .find(|v| v.parallelism == 0 || v.max_parallelism == 0)
    {
        return Err(Reason::new(
            Rule::InvalidTopology,
            format!(
                "vertex parallelism {} / maxParallelism {} must be ≥ 1",
                v.parallelism, v.max_parallelism
            ),
        )
        .vertex(&v.id));
    }
    let graph = super::graph::Graph::new(t);
    let order = graph.topological_order().map(|o| {
        o.into_iter()
            .filter_map(|i| t.vertices.get(i).map(|v| v.id.clone()))
            .collect()
    });
    order.ok_or_else(|| {
        Reason::new(
            Rule::InvalidTopology,
            "topology has a cycle or an edge to an unknown vertex",
        )
    })
}

/// Slots per TaskManager: the policy's, else Flink's; zero or unknown refuses.
pub fn slots_per_task_manager(obs: &Observation, policy: &Policy) -> Result<u32, Reason> {
    policy
        .slots_per_task_manager
        .or(obs.slots_per_task_manager)
        .filter(|s| *s > 0)
        .ok_or_else(|| {
            Reason::new(
                Rule::MissingSignal,
                "slotsPerTaskManager unknown (neither policy nor Flink reports it)",
            )
        })
}

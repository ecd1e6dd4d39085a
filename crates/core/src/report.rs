//! What the scaler reports to KEDA: the TaskManagers the job needs plus the warm spare.
//! Pure; the runtime calls [`task_managers_to_report`] once per tick.
//!
//! ```text
//! needed = no rescale in flight:  max(running, requirements)
//!          scale-up in flight:    max(target, running, from)   (no spare on top)
//!          scale-down in flight:  max(from, running)   (until the surplus is idle)
//!          then at least minTaskManagers
//! report = needed + spare (the spare bounded by maxTaskManagers)
//!          while a scale-up settles (or a raise of one waiting for its TaskManagers):
//!            at least what its recommendation needs
//!          while a scale-down drains: never above the previous report
//! ```
//!
//! * **running**: the TaskManagers the running parallelism needs. The report never goes
//!   below it, whatever else the rules say: KEDA must never remove a busy TaskManager.
//! * **requirements**: the TaskManagers the job's resource requirements (their upper
//!   bounds) need, at most `maxTaskManagers`. When the job runs below them because something broke — no TaskManager
//!   registered (RESTARTING, every TaskManager lost), or one lost and the adaptive scheduler
//!   running degraded — the report stays at what the requirements need, not the policy
//!   minimum nor the degraded parallelism: the HPA keeps the replicas and the lost pod is
//!   replaced. Only the scaler's own decision (a new PUT) lowers them.
//! * **spare** (`spareTaskManagers`): idle TaskManagers on top, so a scale-up that fits in
//!   them is a PUT only (no HPA sync, no pod start); KEDA replenishes them once the
//!   rescale completed: while a scale-up (or a same-count rescale) is in flight the report
//!   is what it needs and at least the TaskManagers it started from, with no spare on top,
//!   so only the pods the restart needs start during it (a pod's JVM start competes with
//!   the restarting tasks for the node's CPU) and none is removed under it.
//! * **settling**: while a scale-up waits for its signals to settle, the report is at
//!   least what this tick's recommendation needs (the spare counts toward it), so the
//!   pods it will need start while the signals settle; the PUT follows once they have.
//!   A step the spare covers asks for nothing more until the PUT; a dry run never does.
//!   The same holds for the raise of a scale-up still waiting for its TaskManagers
//!   ([`crate::rescale::raise`]): the pods a raise needs start while it settles, in the
//!   same HPA sync as the scale-up's own where possible.
//! * **monotone drain**: while a scale-down is in flight the report never rises (no
//!   3 → 4 → 2), so the HPA's scale-down window is not restarted and no busy pod is kept
//!   and then removed.
//! * Slots per TaskManager: the policy's, else Flink's now, else the last value Flink
//!   showed (remembered); unknown is an error, never a guess below the need.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    decision::Direction,
    policy::Policy,
    rescale::Rescale,
    slots::task_managers_for,
    topology::{Topology, VertexId},
};

/// What the report remembers between ticks (persisted with the job's state).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportMemory {
    /// The job's resource requirements (upper bound per vertex): set when one of the
    /// scaler's rescales is accepted, or learned from Flink.
    #[serde(default)]
    pub requirements: Option<BTreeMap<VertexId, u32>>,
    /// Slots per TaskManager, as Flink last showed them.
    #[serde(default)]
    pub slots_per_task_manager: Option<u32>,
    /// The count reported on the last tick.
    #[serde(default)]
    pub reported: Option<u32>,
}

/// The inputs of one report.
#[derive(Debug, Clone, Copy)]
pub struct ReportInputs<'a> {
    /// The job graph at its running parallelism.
    pub topology: &'a Topology,
    /// Slots per TaskManager Flink shows now (`None`: no TaskManager registered).
    pub slots_now: Option<u32>,
    /// The job's requirements (upper bound per vertex), when known.
    pub requirements: Option<&'a BTreeMap<VertexId, u32>>,
    /// The rescale in flight (non-terminal), if any.
    pub rescale: Option<&'a Rescale>,
    /// A scale-up waiting for its signals to settle: this tick's recommendation.
    pub settling: Option<&'a BTreeMap<VertexId, u32>>,
    /// What the report remembers.
    pub memory: &'a ReportMemory,
    /// The effective policy.
    pub policy: &'a Policy,
}

/// Which rule set the needed count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// What the running parallelism needs.
    Running,
    /// The job runs below its requirements (degraded, restarting): what they need.
    Requirements,
    /// A scale-up in flight: its target.
    ScaleUp,
    /// A scale-down in flight: the count before it until the surplus is idle.
    Draining,
    /// A scale-up settling: what its recommendation needs.
    Settling,
    /// The policy's minimum.
    Minimum,
}

impl Basis {
    /// Stable name for logs and `/debug/jobs`.
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Running => "running",
            Basis::Requirements => "requirements",
            Basis::ScaleUp => "scale_up",
            Basis::Draining => "draining",
            Basis::Settling => "settling",
            Basis::Minimum => "minimum",
        }
    }
}

/// The count to report and how it is made up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// What KEDA gets.
    pub task_managers: u32,
    /// What the job needs (without the spare).
    pub needed: u32,
    /// The spare included in `task_managers`.
    pub spare: u32,
    /// What the running parallelism needs (the report's floor).
    pub running: u32,
    /// The rule that set `needed`.
    pub basis: Basis,
    /// The slots per TaskManager used.
    pub slots_per_task_manager: u32,
}

/// Why no count can be reported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// Neither the policy, Flink nor the memory knows the slots per TaskManager.
    #[error(
        "slots per TaskManager unknown: no TaskManager is registered and none was seen before; \
         set slotsPerTaskManager in the policy or the ScaledObject"
    )]
    SlotsUnknown,
}

/// The TaskManager count to report to KEDA now (module docs).
pub fn task_managers_to_report(i: ReportInputs<'_>) -> Result<Report, ReportError> {
    let slots = i
        .policy
        .slots_per_task_manager
        .or(i.slots_now)
        .or(i.memory.slots_per_task_manager)
        .filter(|s| *s > 0)
        .ok_or(ReportError::SlotsUnknown)?;
    let need = |p: &BTreeMap<VertexId, u32>| task_managers_for(i.topology, p, slots);
    let running = need(&i.topology.parallelism());
    let (mut needed, mut basis) = match i.rescale.filter(|r| !r.phase.is_terminal()) {
        Some(r) if r.direction == Direction::Down => {
            (r.task_managers_to_report().max(running), Basis::Draining)
        }
        Some(r) => (
            r.task_managers_to_report()
                .max(running)
                .max(r.from.task_managers),
            Basis::ScaleUp,
        ),
        None => {
            // bounded by maxTaskManagers: requirements above it are not the scaler's
            // (e.g. Flink's default upper bound, the max parallelism)
            let required = i
                .requirements
                .map_or(0, |r| need(&capped(i.topology, r)))
                .min(i.policy.max_task_managers);
            if required > running {
                (required, Basis::Requirements)
            } else {
                (running, Basis::Running)
            }
        }
    };
    if needed < i.policy.min_task_managers {
        (needed, basis) = (i.policy.min_task_managers, Basis::Minimum);
    }
    let spare = if basis == Basis::ScaleUp {
        0
    } else {
        i.policy
            .spare_task_managers
            .min(i.policy.max_task_managers.saturating_sub(needed))
    };
    let mut task_managers = needed.saturating_add(spare);
    let settling = i
        .settling
        .filter(|_| !i.policy.dry_run && i.rescale.is_none_or(raising_allowed))
        .map_or(0, |p| settling_need(i.topology, p, slots, i.policy));
    if settling > task_managers {
        (task_managers, needed, basis) = (settling, settling, Basis::Settling);
    }
    if basis == Basis::Draining {
        if let Some(previous) = i.memory.reported {
            let floor = running.max(i.policy.min_task_managers);
            task_managers = task_managers.min(previous).max(floor);
        }
    }
    Ok(Report {
        task_managers,
        needed,
        spare: task_managers.saturating_sub(needed),
        running,
        basis,
        slots_per_task_manager: slots,
    })
}

/// A settling recommendation counts with no rescale in flight, and with a scale-up in
/// flight (the runtime passes one only while that scale-up may still be raised:
/// [`crate::rescale::raise`]); never under a scale-down or a same-count rescale.
fn raising_allowed(r: &Rescale) -> bool {
    r.phase.is_terminal() || r.direction == Direction::Up
}

/// The TaskManagers a settling scale-up's recommendation `proposed` needs (vertices it
/// leaves out at their running parallelism), at most `maxTaskManagers`: the settling rule's
/// floor, without its conditions (no dry run, no rescale in flight), which the caller checks.
pub fn settling_need(
    topology: &Topology,
    proposed: &BTreeMap<VertexId, u32>,
    slots_per_task_manager: u32,
    policy: &Policy,
) -> u32 {
    task_managers_for(
        topology,
        &capped(topology, proposed),
        slots_per_task_manager,
    )
    .min(policy.max_task_managers)
}

/// `requirements` with each vertex at most its maxParallelism (a requirement above it
/// cannot run; Flink's default upper bound for an unset parallelism is the max).
fn capped(topology: &Topology, requirements: &BTreeMap<VertexId, u32>) -> BTreeMap<VertexId, u32> {
    requirements
        .iter()
        .map(|(v, p)| {
            let max = topology.vertex(v).map_or(*p, |x| x.max_parallelism.max(1));
            (v.clone(), (*p).min(max))
        })
        .collect()
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;

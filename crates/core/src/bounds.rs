//! TaskManager bounds, in order: the policy maximum (parallelism shrinks proportionally
//! to fit), an open schedule ceiling (same), an open schedule floor (parallelism grows
//! proportionally to use the slots: pre-scaling before a known peak), the predictive floor
//! (same, from last period's history), the policy minimum
//! (extra TaskManagers only; parallelism grows only if DS2 wants).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{
    decision::{Reason, Rule},
    policy::Policy,
    schedule,
    slots::{fit_to_task_managers, spread_to_task_managers, task_managers_for},
    topology::{Topology, VertexId},
};

/// Bounds the TaskManagers `parallelism` needs to `[min, max]` and the open schedules at
/// `now`, adjusting parallelism where a bound moves it. Pushes `ClampedToMax`,
/// `ScheduleCeiling`, `ScheduleFloor`, `ClampedToMin` reasons; returns the parallelism and
/// the TaskManager count (always within `[min, max(min, max)]`).
pub fn bound_task_managers(
    topology: &Topology,
    mut parallelism: BTreeMap<VertexId, u32>,
    slots: u32,
    policy: &Policy,
    predicted_floor: Option<u32>,
    now: DateTime<Utc>,
    reasons: &mut Vec<Reason>,
) -> (BTreeMap<VertexId, u32>, u32) {
    let lo = policy.min_task_managers;
    let hi = policy.max_task_managers.max(lo);
    let mut tms = task_managers_for(topology, &parallelism, slots);
    if tms > hi {
        reasons.push(
            Reason::new(
                Rule::ClampedToMax,
                format!("needs {tms} TaskManagers, max {hi}: parallelism reduced to fit"),
            )
            .input("needed", f64::from(tms))
            .input("max", f64::from(hi)),
        );
        parallelism = fit_to_task_managers(topology, &parallelism, slots, hi);
        // the job gets every TaskManager it may have; rounding leaves spare slots at most
        tms = hi;
    }
    let bounds = schedule::bounds(policy, now);
    if let Some((ceiling, name)) = &bounds.ceiling {
        let ceiling = (*ceiling).clamp(lo, hi);
        if tms > ceiling {
            reasons.push(
                Reason::new(
                    Rule::ScheduleCeiling,
                    format!("schedule {name}: at most {ceiling} TaskManagers"),
                )
                .input("needed", f64::from(tms))
                .input("ceiling", f64::from(ceiling)),
            );
            parallelism = fit_to_task_managers(topology, &parallelism, slots, ceiling);
            tms = ceiling;
        }
    }
    // floors: an open schedule's, then the predictive one (both capped by the ceiling)
    let floors = bounds
        .floor
        .iter()
        .map(|(floor, name)| {
            (
                *floor,
                Rule::ScheduleFloor,
                format!("schedule {name}: at least"),
            )
        })
        .chain(predicted_floor.map(|floor| {
            (
                floor,
                Rule::PredictiveFloor,
                "last period's peak at this time (pre-scaling): at least".to_string(),
            )
        }));
    for (floor, rule, why) in floors {
        let floor = floor.clamp(lo, hi);
        let capped = bounds
            .ceiling
            .as_ref()
            .map_or(floor, |(c, _)| floor.min(*c).max(lo));
        if tms < capped {
            reasons.push(
                Reason::new(rule, format!("{why} {capped} TaskManagers"))
                    .input("needed", f64::from(tms))
                    .input("floor", f64::from(capped)),
            );
            parallelism = spread_to_task_managers(topology, &parallelism, slots, capped);
            tms = capped;
        }
    }
    if tms < lo {
        reasons.push(
            Reason::new(
                Rule::ClampedToMin,
                format!("needs {tms} TaskManagers, min {lo}"),
            )
            .input("needed", f64::from(tms))
            .input("min", f64::from(lo)),
        );
        tms = lo;
    }

    (parallelism, tms)
}

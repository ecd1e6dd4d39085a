//! TaskManager bounds, in order: the policy maximum (parallelism shrinks proportionally
//! to fit, no vertex below where it runs when what runs fits: a cap takes growth away, it
//! never shrinks a vertex the scale-down rules held), an open schedule ceiling (same), an open schedule floor (parallelism grows
//! proportionally to use the slots: pre-scaling before a known peak), the predictive floor
//! (same, from last period's history), the policy minimum
//! (extra TaskManagers only; parallelism grows only if DS2 wants).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{
    decision::{Reason, Rule},
    policy::Policy,
    schedule,
    slots::{fit_above_floor, spread_to_task_managers, task_managers_for},
    topology::{Topology, VertexId},
};

/// Bounds the TaskManagers `parallelism` needs to `[min, max]` and the open schedules at
/// `now`, adjusting parallelism where a bound moves it (a cap keeps each vertex at least
/// at `min(current, proposed)` when that fits). Pushes `ClampedToMax`,
/// `ScheduleCeiling`, `ScheduleFloor`, `ClampedToMin` reasons; returns the parallelism and
/// the TaskManager count (always within `[min, max(min, max)]`).
pub fn bound_task_managers(
    topology: &Topology,
    (current, parallelism): (&BTreeMap<VertexId, u32>, BTreeMap<VertexId, u32>),
    slots: u32,
    policy: &Policy,
    predicted_floor: Option<u32>,
    now: DateTime<Utc>,
    reasons: &mut Vec<Reason>,
) -> (BTreeMap<VertexId, u32>, u32) {
    let lo = policy.min_task_managers;
    let hi = policy.max_task_managers.max(lo);
    let floor = parallelism
        .iter()
        .map(|(v, p)| (v.clone(), current.get(v).map_or(*p, |c| (*c).min(*p))))
        .collect();
    let mut fit = Fit {
        topology,
        slots,
        tms: task_managers_for(topology, &parallelism, slots),
        parallelism,
        floor,
        reasons,
    };
    fit.clamp_to_max(hi);
    let bounds = schedule::bounds(policy, now);
    if let Some((ceiling, name)) = &bounds.ceiling {
        fit.schedule_ceiling((*ceiling).clamp(lo, hi), name);
    }
    fit.floors(&bounds, predicted_floor, lo, hi);
    fit.clamp_to_min(lo);
    (fit.parallelism, fit.tms)
}

/// The parallelism and TaskManager count as each bound moves them.
struct Fit<'a> {
    topology: &'a Topology,
    slots: u32,
    parallelism: BTreeMap<VertexId, u32>,
    /// Per vertex, `min(current, proposed)`: what a cap does not shrink below.
    floor: BTreeMap<VertexId, u32>,
    tms: u32,
    reasons: &'a mut Vec<Reason>,
}

impl Fit<'_> {
    /// The policy maximum: parallelism shrinks proportionally to fit.
    fn clamp_to_max(&mut self, hi: u32) {
        let tms = self.tms;
        if tms > hi {
            let reason = Reason::new(
                Rule::ClampedToMax,
                format!("needs {tms} TaskManagers, max {hi}: parallelism reduced to fit"),
            )
            .input("needed", f64::from(tms))
            .input("max", f64::from(hi));
            self.shrink_to(hi, reason);
        }
    }

    /// An open schedule's ceiling (already within `[min, max]`): shrinks like the maximum.
    fn schedule_ceiling(&mut self, ceiling: u32, name: &str) {
        let tms = self.tms;
        if tms > ceiling {
            let reason = Reason::new(
                Rule::ScheduleCeiling,
                format!("schedule {name}: at most {ceiling} TaskManagers"),
            )
            .input("needed", f64::from(tms))
            .input("ceiling", f64::from(ceiling));
            self.shrink_to(ceiling, reason);
        }
    }

    /// Fits the parallelism into `tms` TaskManagers, proportionally above the floor, for
    /// `reason`: the job gets every TaskManager it may have (rounding leaves spare slots
    /// at most).
    fn shrink_to(&mut self, tms: u32, reason: Reason) {
        self.reasons.push(reason);
        self.parallelism = fit_above_floor(
            self.topology,
            &self.parallelism,
            &self.floor,
            self.slots,
            tms,
        );
        self.tms = tms;
    }

    /// Floors: an open schedule's, then the predictive one (both capped by the ceiling);
    /// parallelism grows proportionally to use the slots.
    fn floors(
        &mut self,
        bounds: &schedule::ScheduleBounds,
        predicted_floor: Option<u32>,
        lo: u32,
        hi: u32,
    ) {
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
            if self.tms < capped {
                self.reasons.push(
                    Reason::new(rule, format!("{why} {capped} TaskManagers"))
                        .input("needed", f64::from(self.tms))
                        .input("floor", f64::from(capped)),
                );
                self.parallelism =
                    spread_to_task_managers(self.topology, &self.parallelism, self.slots, capped);
                self.tms = capped;
            }
        }
    }

    /// The policy minimum: extra TaskManagers only (parallelism grows only if DS2 wants).
    fn clamp_to_min(&mut self, lo: u32) {
        let tms = self.tms;
        if tms >= lo {
            return;
        }
        self.reasons.push(
            Reason::new(
                Rule::ClampedToMin,
                format!("needs {tms} TaskManagers, min {lo}"),
            )
            .input("needed", f64::from(tms))
            .input("min", f64::from(lo)),
        );
        self.tms = lo;
    }
}

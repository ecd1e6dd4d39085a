//! `decide`: observation + state + policy + now → decision with reasons. Pure.
//!
//! ```text
//! guards ─► signals ─► DS2 sizing ─► band? ─► alignment ─► scale-down rules
//!   (NotRunning, Stabilizing,  (Ds2Size, CatchUp,  (WithinBand)  (Aligned)   (ScaleDownDelayed,
//!    InvalidTopology,           IoBoundSource,                                CatchingUp,
//!    MissingSignal)             Over/Underutilized)                           ScaleDownCapped)
//!   ─► TaskManagers: max clamp, schedule ceiling/floor, min clamp
//!   ─► cooldown, hourly budget ─► ScaleUp / ScaleDown / NoChange
//! ```
//!
//! A refusal (first row) yields `target: None` and the state unchanged. Otherwise the
//! target is always a full plan; `rescale` says whether to apply it now.

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, Utc};

use super::{
    align::align,
    bounds::bound_task_managers,
    decision::{Decision, Direction, Plan, Reason, Rule},
    downscale,
    ds2::{self, Band, VertexSizing},
    guards::{self, remaining_s},
    inputs::{self, VertexInputs},
    observation::Observation,
    policy::{AlignmentMode, Policy},
    slots::task_managers_for,
    state::JobState,
    topology::{Topology, VertexId},
    upscale, vertical,
};

/// Relative difference from today's TaskManager size above which vertical advice is
/// worth a reason of its own.
const VERTICAL_REPORT_DELTA: f64 = 0.1;

/// Decides what the job should run at. Returns the decision and the updated state
/// (scale-down window, cooldown, history) that the runtime must persist.
///
/// `rescale` is true only when the target parallelism differs from the current one and
/// every guard (cooldown, hourly budget) allows it now; the returned state then records
/// the rescale. A TaskManager-only difference (e.g. a minimum clamp) is not a rescale:
/// KEDA applies it without touching the job. `policy.dry_run` is not looked at here: the
/// runtime decides whether to apply, so a dry run reports realistic cadence.
pub fn decide(
    obs: &Observation,
    state: &JobState,
    policy: &Policy,
    now: DateTime<Utc>,
) -> (Decision, JobState) {
    let current_parallelism = obs.topology.parallelism();
    let slots = guards::slots_per_task_manager(obs, policy);
    // What the running parallelism needs, not what is registered: registered idle
    // TaskManagers (a warm spare, a surplus not yet removed) are no part of the plan, and
    // counting them would turn a scale-up into the spare into a "scale-down".
    let current_tms = match &slots {
        Ok(s) => task_managers_for(&obs.topology, &current_parallelism, *s),
        Err(_) => obs.task_managers_registered.unwrap_or(0),
    };
    let mut decision = Decision {
        at: now,
        current: Plan {
            parallelism: current_parallelism,
            task_managers: current_tms,
        },
        target: None,
        direction: Direction::None,
        rescale: false,
        reasons: Vec::new(),
        vertical: vertical::advise(&obs.task_managers, policy),
    };
    let checked = guards::running_and_stable(obs, policy, now)
        .and_then(|()| guards::usable_topology(obs))
        .and_then(|order| Ok((order, inputs::validate(obs)?)))
        .and_then(|(order, inputs)| Ok((order, inputs, slots?)));
    let (order, inputs, slots) = match checked {
        Ok(ok) => ok,
        Err(reason) => {
            decision.reasons.push(reason);
            return (decision, state.clone());
        }
    };
    let mut next = state.clone();
    settle(
        &mut decision,
        &mut next,
        JobSizing::new(obs, &order, &inputs, policy),
        obs,
        policy,
        slots,
        now,
    );
    (decision, next)
}

/// DS2 output for the whole job.
struct JobSizing {
    sizings: Vec<VertexSizing>,
    reasons: Vec<Reason>,
    partitions: BTreeMap<VertexId, Option<u32>>,
    /// Every source was sized from a short-window arrival rate.
    arrival_known: bool,
}

impl JobSizing {
    fn new(
        obs: &Observation,
        order: &[VertexId],
        inputs: &BTreeMap<VertexId, VertexInputs>,
        policy: &Policy,
    ) -> Self {
        let cpu = inputs::max_cpu_load(&obs.task_managers);
        let (sizings, reasons) = ds2::size(&obs.topology, order, inputs, policy, cpu);
        let partitions = inputs
            .iter()
            .map(|(id, i)| (id.clone(), i.partitions))
            .collect();
        let arrival_known = sizings
            .iter()
            .filter(|s| s.source)
            .all(|s| inputs.get(&s.id).is_some_and(|i| i.arrival.is_some()));
        Self {
            sizings,
            reasons,
            partitions,
            arrival_known,
        }
    }
}

/// Required parallelism per vertex, aligned (BALANCED: sources to their partition count,
/// keyed vertices to their key groups; see [`align`]), with `Aligned` reasons.
pub fn aligned_parallelism(
    sizings: &[VertexSizing],
    partitions: &BTreeMap<VertexId, Option<u32>>,
    mode: AlignmentMode,
) -> (BTreeMap<VertexId, u32>, Vec<Reason>) {
    let mut reasons = Vec::new();
    let out = sizings
        .iter()
        .map(|s| {
            let units = match mode {
                AlignmentMode::Off => None,
                AlignmentMode::Balanced if s.source => {
                    partitions.get(&s.id).copied().flatten().filter(|n| *n > 0)
                }
                AlignmentMode::Balanced if s.keyed => Some(s.max_parallelism),
                AlignmentMode::Balanced => None,
            };
            let p = match units {
                Some(n) => align(s.current, s.required, n, s.max_parallelism),
                None => s.required,
            };
            if p != s.required {
                if let Some(n) = units {
                    reasons.push(
                        Reason::new(
                            Rule::Aligned,
                            format!("{} → {p} to split {n} units evenly", s.required),
                        )
                        .vertex(&s.id)
                        .input("required", f64::from(s.required))
                        .input("aligned", f64::from(p))
                        .input("units", f64::from(n)),
                    );
                }
            }
            (s.id.clone(), p)
        })
        .collect();
    (out, reasons)
}

/// Everything after sizing: band, alignment, scale-down rules, TaskManagers, schedules,
/// guards; fills `decision` and `state`.
fn settle(
    decision: &mut Decision,
    state: &mut JobState,
    sized: JobSizing,
    obs: &Observation,
    policy: &Policy,
    slots: u32,
    now: DateTime<Utc>,
) {
    let current = decision.current.parallelism.clone();
    let rising_since =
        state
            .trend
            .observe(&target_rates(&sized.sizings), upscale::SETTLE_GROWTH, now);
    let catching_up = sized.sizings.iter().any(|s| s.catching_up);
    let draining = sized.sizings.iter().any(|s| s.draining);
    let act = catching_up || sized.sizings.iter().any(|s| s.band != Band::Within);
    let mut proposal = if act {
        let settle = (
            policy.scale_down_settle(obs.signal_window),
            policy.scale_up_settle(obs.scale_up_signal_window(sized.arrival_known)),
        );
        Proposal::act_on_bands(
            sized,
            (&current, (&obs.topology, slots)),
            ((catching_up, draining), settle),
            (state, rising_since),
            policy,
            now,
        )
    } else {
        Proposal::within_band(sized.reasons, &current, state, policy)
    };
    let (parallelism, tms) = bound_task_managers(
        &obs.topology,
        (&current, proposal.parallelism),
        slots,
        policy,
        obs.predicted_floor,
        now,
        &mut proposal.reasons,
    );
    if let Some(r) = vertical_reason(decision, obs, policy) {
        proposal.reasons.push(r);
    }
    let target = Plan {
        parallelism,
        task_managers: tms,
    };
    decision.direction = match tms.cmp(&decision.current.task_managers) {
        std::cmp::Ordering::Greater => Direction::Up,
        std::cmp::Ordering::Less => Direction::Down,
        std::cmp::Ordering::Equal => Direction::None,
    };
    let mut reasons = proposal.reasons;
    if target.parallelism != current {
        if let Some(h) = proposal.hold {
            // keep firing order: the hold fired before the clamps and schedules
            reasons.insert(proposal.hold_at.min(reasons.len()), h);
        }
        reasons.push(final_reason(decision, &target, state, policy, now));
        decision.rescale = reasons
            .last()
            .is_some_and(|r| matches!(r.rule, Rule::ScaleUp | Rule::ScaleDown));
        if decision.rescale {
            state.record(now, decision.current.task_managers, tms);
        }
    } else {
        reasons.push(
            proposal.hold.unwrap_or_else(|| {
                Reason::new(Rule::NoChange, "target equals current parallelism")
            }),
        );
    }
    decision.target = Some(target);
    decision.reasons.extend(reasons);
}

/// Each vertex's target input rate.
fn target_rates(sizings: &[VertexSizing]) -> BTreeMap<VertexId, f64> {
    sizings
        .iter()
        .map(|s| (s.id.clone(), s.target_rate))
        .collect()
}

/// The parallelism the bands call for, before the TaskManager bounds: with the reasons so
/// far and the hold that settles the decision if nothing else changes it.
struct Proposal {
    parallelism: BTreeMap<VertexId, u32>,
    reasons: Vec<Reason>,
    hold: Option<Reason>,
    /// Where the hold goes among `reasons` when it is reported next to a change.
    hold_at: usize,
}

impl Proposal {
    /// Some vertex is out of band or catching up: alignment, the scale-down rules (a
    /// scale-down must free a TaskManager of `topology` at `slots` per TaskManager) and the
    /// scale-up confirmation (updating both windows in `state`).
    fn act_on_bands(
        sized: JobSizing,
        (current, (topology, slots)): (&BTreeMap<VertexId, u32>, (&Topology, u32)),
        ((catching_up, draining), (down_settle, up_settle)): ((bool, bool), (Duration, Duration)),
        (state, rising_since): (&mut JobState, Option<DateTime<Utc>>),
        policy: &Policy,
        now: DateTime<Utc>,
    ) -> Self {
        let rates = target_rates(&sized.sizings);
        let projected: BTreeMap<VertexId, f64> = sized
            .sizings
            .iter()
            .filter(|s| s.projected_utilization.is_finite())
            .map(|s| (s.id.clone(), s.projected_utilization))
            .collect();
        let mut reasons = sized.reasons;
        let (mut aligned, r) =
            aligned_parallelism(&sized.sizings, &sized.partitions, policy.alignment);
        reasons.extend(r);
        let over = sized.sizings.iter().any(|s| s.band == Band::Over);
        if !over && !catching_up {
            scale_down_only(&mut aligned, &mut reasons, current);
        }
        let shaped = downscale::shape(
            current,
            aligned,
            downscale::Conditions {
                catching_up,
                draining,
                over,
                window: state.scale_down_window.as_ref(),
                settle: down_settle,
                slots: (topology, slots),
            },
            policy,
            now,
        );
        let hold_at = reasons.len();
        reasons.extend(shaped.reasons);
        state.scale_down_window = shaped.window;
        let confirmed = upscale::confirm_with(
            current,
            shaped.parallelism,
            (&rates, &projected),
            (state.scale_up_window.as_ref(), rising_since),
            (policy, up_settle),
            now,
        );
        state.scale_up_window = confirmed.window;
        Self {
            parallelism: confirmed.parallelism,
            reasons,
            hold: confirmed.hold.or(shaped.hold),
            hold_at,
        }
    }

    /// Every vertex is within the band: hold at the current parallelism and close both
    /// windows.
    fn within_band(
        mut reasons: Vec<Reason>,
        current: &BTreeMap<VertexId, u32>,
        state: &mut JobState,
        policy: &Policy,
    ) -> Self {
        // holding: per-vertex sizing of in-band vertices is noise, not a reason
        reasons.retain(|r| r.rule != Rule::Ds2Size);
        state.scale_down_window = None;
        state.scale_up_window = None;
        let hold = Reason::new(
            Rule::WithinBand,
            format!(
                "every vertex within [{}, {}]",
                policy.utilization_low, policy.utilization_high
            ),
        );
        Self {
            parallelism: current.clone(),
            hold_at: reasons.len(),
            reasons,
            hold: Some(hold),
        }
    }
}

/// Only under-utilized vertices triggered: a scale-down decision, in which in-band
/// vertices do not grow (that keeps "more load ⇒ never fewer TaskManagers": a busier job
/// that is merely in band holds instead); their DS2 sizing is then no reason.
fn scale_down_only(
    aligned: &mut BTreeMap<VertexId, u32>,
    reasons: &mut Vec<Reason>,
    current: &BTreeMap<VertexId, u32>,
) {
    for (v, p) in aligned.iter_mut() {
        *p = (*p).min(current.get(v).copied().unwrap_or(*p));
    }
    reasons.retain(|r| {
        r.rule != Rule::Ds2Size
            || r.vertex
                .as_ref()
                .is_none_or(|v| aligned.get(v).copied() != current.get(v).copied())
    });
}

/// Cooldown, budget, or the scale itself.
fn final_reason(
    decision: &Decision,
    target: &Plan,
    state: &JobState,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Reason {
    if let Some(last) = state.last_rescale_at {
        let cooldown =
            chrono::Duration::from_std(policy.cooldown).unwrap_or(chrono::TimeDelta::MAX);
        let since = now.signed_duration_since(last);
        if since < cooldown {
            let remaining = remaining_s(cooldown, since);
            return Reason::new(
                Rule::Cooldown,
                format!(
                    "last rescale {}s ago, cooldown {remaining:.0}s more",
                    since.num_seconds()
                ),
            )
            .input("remaining_s", remaining);
        }
    }
    let sum = |p: &BTreeMap<VertexId, u32>| p.values().map(|x| u64::from(*x)).sum::<u64>();
    let up = match decision.direction {
        Direction::Up => true,
        Direction::Down => false,
        Direction::None => sum(&target.parallelism) >= sum(&decision.current.parallelism),
    };
    let used = state.rescales_in_last_hour(now);
    if !up && used >= policy.max_rescales_per_hour as usize {
        return Reason::new(
            Rule::BudgetExhausted,
            format!(
                "{used} rescales in the last hour, budget {}",
                policy.max_rescales_per_hour
            ),
        )
        .input("rescales_last_hour", used as f64);
    }
    let (rule, word) = if up {
        (Rule::ScaleUp, "up")
    } else {
        (Rule::ScaleDown, "down")
    };
    Reason::new(
        rule,
        format!(
            "scale {word}: {} → {} TaskManagers",
            decision.current.task_managers, target.task_managers
        ),
    )
    .input(
        "from_task_managers",
        f64::from(decision.current.task_managers),
    )
    .input("to_task_managers", f64::from(target.task_managers))
}

/// A `VerticalAdvice` reason when the advice differs from today's size by more than
/// [`VERTICAL_REPORT_DELTA`].
fn vertical_reason(decision: &Decision, obs: &Observation, policy: &Policy) -> Option<Reason> {
    let advice = decision.vertical.as_ref()?;
    let differs = |advised: Option<f64>, now: Option<f64>| match (advised, now) {
        (Some(a), Some(n)) if n > 0.0 => ((a - n) / n).abs() > VERTICAL_REPORT_DELTA,
        _ => false,
    };
    let heap_now = inputs::max_finite(obs.task_managers.iter().map(|t| t.heap_max_bytes));
    let heap = differs(advice.heap_bytes, heap_now);
    let cpu = differs(advice.cpu_cores, policy.task_manager_cpu_cores);
    if !heap && !cpu {
        return None;
    }
    let mut r = Reason::new(
        Rule::VerticalAdvice,
        "TaskManager size differs from the advice (reported, not applied)",
    );
    if let (Some(a), Some(n)) = (advice.heap_bytes, heap_now) {
        r = r.input("heap_bytes", a).input("heap_max_bytes", n);
    }
    if let (Some(a), Some(n)) = (advice.cpu_cores, policy.task_manager_cpu_cores) {
        r = r.input("cpu_cores", a).input("cpu_cores_now", n);
    }
    Some(r)
}

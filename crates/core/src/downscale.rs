//! Anti-flap rules for scale-downs (scale-ups are applied at once):
//!
//! * a scale-up anywhere holds every scale-down and clears the window;
//! * no scale-down while a backlog is being caught up (FLINK-31318), nor while a vertex
//!   is over-utilized (even one already at its maxParallelism);
//! * a scale-down waits for `scale_down_delay` of continuous scale-down
//!   recommendations, and until the signals have **settled** (the settle time of
//!   [`Policy::scale_down_settle`]: the signal windows have fully passed the drop). It then
//!   applies the **highest** recommendation made since they settled: one rescale to the
//!   lowest safe target per load drop, instead of one to a target still sized from
//!   windows that held part of the old load, then another (FLINK-36018/36535);
//! * a source still draining a backlog ([`crate::ds2::draining`]) is a drop not yet over
//!   for the vertices behind it (they process more than arrives): the settle time counts
//!   from the first tick that no longer sees the drain, and what settled before is dropped;
//! * a window opened for one load level restarts when the load drops to a clearly lower
//!   level while it is open ([`LEVEL_DROP`]): an over-sized job scaled down at the high
//!   load and again after the drop would take two rescales for one load change;
//! * no vertex shrinks by more than `max_scale_down_factor` in one decision;
//! * a scale-down that **frees no TaskManager** is held and closes the window: lowering a
//!   vertex that is not the widest of its slot sharing group (a source 2 → 1 next to a
//!   keyed vertex at 6) costs an in-place restart and saves nothing. Such a tick does not
//!   count towards a scale-down window either: the window's settled recommendations are a
//!   running maximum, so a window opened while only the narrow vertex could shrink would
//!   hold the wide vertex at its old size for as long as it stayed open, and every later
//!   tick would apply the same TaskManager-neutral plan (this is why a first version of
//!   the rule, which held the plan but kept the window, never scaled the lab down).

use std::collections::BTreeMap;

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{
    decision::{Reason, Rule},
    policy::Policy,
    slots::task_managers_for,
    state::ScaleDownWindow,
    topology::{Topology, VertexId},
};

/// Parallelism after the scale-down rules, the window to persist, and the reasons.
#[derive(Debug, Clone, PartialEq)]
pub struct Shaped {
    /// Parallelism per vertex to go on with.
    pub parallelism: BTreeMap<VertexId, u32>,
    /// The scale-down window to persist (`None` closes it).
    pub window: Option<ScaleDownWindow>,
    /// Reasons that fired (caps), in order.
    pub reasons: Vec<Reason>,
    /// A hold that settles the decision if nothing else changes.
    pub hold: Option<Reason>,
}

/// Smallest parallelism `current` may shrink to in one decision.
pub fn scale_down_floor(current: u32, max_scale_down_factor: f64) -> u32 {
    let f = if max_scale_down_factor.is_finite() {
        max_scale_down_factor.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let floor = (f64::from(current) * (1.0 - f) - 1e-9).ceil();
    if floor < 1.0 {
        1
    } else {
        (floor as u32).min(current)
    }
}

/// What [`shape`] reads besides the proposal: the job's state this tick.
#[derive(Debug, Clone, Copy)]
pub struct Conditions<'a> {
    /// Some source is catching up a backlog.
    pub catching_up: bool,
    /// Some source is draining a backlog (below the catch-up threshold).
    pub draining: bool,
    /// Some vertex is over-utilized.
    pub over: bool,
    /// The open scale-down window, if any.
    pub window: Option<&'a ScaleDownWindow>,
    /// How long the signals take to settle after a load change.
    pub settle: Duration,
    /// The job's topology and slots per TaskManager: what a plan needs in TaskManagers.
    pub slots: (&'a Topology, u32),
}

impl Conditions<'_> {
    /// TaskManagers the job is billed for at `parallelism`: what its slots need, at least
    /// the policy minimum (below it no pod is ever freed).
    fn task_managers(&self, parallelism: &BTreeMap<VertexId, u32>, policy: &Policy) -> u32 {
        let (topology, slots) = self.slots;
        task_managers_for(topology, parallelism, slots).max(policy.min_task_managers)
    }

    /// True when `plan` needs fewer TaskManagers than `current`.
    pub fn frees_a_task_manager(
        &self,
        current: &BTreeMap<VertexId, u32>,
        plan: &BTreeMap<VertexId, u32>,
        policy: &Policy,
    ) -> bool {
        self.task_managers(plan, policy) < self.task_managers(current, policy)
    }
}

/// Applies the scale-down rules to `proposed` against `current`. `over` says some vertex
/// is over-utilized: then nothing shrinks, even when that vertex cannot grow (it is at
/// its maxParallelism), so more load never yields fewer TaskManagers.
pub fn shape(
    current: &BTreeMap<VertexId, u32>,
    proposed: BTreeMap<VertexId, u32>,
    c: Conditions<'_>,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Shaped {
    let Conditions {
        catching_up,
        over,
        window,
        settle,
        ..
    } = c;
    let ups = proposed.iter().any(|(v, p)| *p > cur(current, v));
    let downs = proposed
        .iter()
        .filter(|(v, p)| **p < cur(current, v))
        .count();
    if downs == 0 {
        return Shaped {
            parallelism: proposed,
            window: None,
            reasons: Vec::new(),
            hold: None,
        };
    }
    if let Some((hold, window)) = held_outright(ups, downs, catching_up, over, window) {
        return Shaped::held(current, &proposed, window, hold);
    }
    if !c.frees_a_task_manager(current, &capped(current, &proposed, policy), policy) {
        // not a scale-down worth a window: held, and any open window closes
        return Shaped::held(current, &proposed, None, frees_nothing(downs));
    }
    let restarted = window.is_some_and(|w| level_dropped(w, current, &proposed));
    let open = if restarted { None } else { window };
    let w = widen_window(current, &proposed, open, (settle, c.draining), now);
    if let Some(hold) = window_still_open(&w, policy, settle, now) {
        let hold = if restarted {
            hold.input("restarted_on_drop", 1.0)
        } else {
            hold
        };
        return Shaped::held(current, &proposed, Some(w), hold);
    }
    let (parallelism, reasons) = highest_capped(current, &proposed, &w, policy);
    if parallelism.iter().all(|(v, p)| *p >= cur(current, v)) {
        // the window's highest recommendation is today's parallelism: start afresh
        return Shaped {
            parallelism,
            window: None,
            reasons,
            hold: Some(Reason::new(
                Rule::ScaleDownDelayed,
                "highest recommendation in the scale-down window is the current parallelism",
            )),
        };
    }
    if !c.frees_a_task_manager(current, &parallelism, policy) {
        // each tick freed one, their highest together does not (several slot sharing
        // groups, each held up by a different tick): start afresh
        return Shaped::held(current, &proposed, None, frees_nothing(downs));
    }
    Shaped {
        parallelism,
        window: Some(w),
        reasons,
        hold: None,
    }
}

/// The hold of a scale-down that frees no TaskManager.
fn frees_nothing(downs: usize) -> Reason {
    Reason::new(
        Rule::NoChange,
        format!(
            "{downs} scale-down(s) held: they free no TaskManager (not worth an in-place restart)"
        ),
    )
}

/// `proposed` with every vertex at least at its [`scale_down_floor`] (what would apply).
fn capped(
    current: &BTreeMap<VertexId, u32>,
    proposed: &BTreeMap<VertexId, u32>,
    policy: &Policy,
) -> BTreeMap<VertexId, u32> {
    proposed
        .iter()
        .map(|(v, p)| {
            let c = cur(current, v);
            let floor = scale_down_floor(c, policy.max_scale_down_factor);
            (v.clone(), (*p).min(c).max(floor))
        })
        .collect()
}

impl Shaped {
    /// Every vertex kept at least at its current parallelism, settled by `hold`.
    fn held(
        current: &BTreeMap<VertexId, u32>,
        proposed: &BTreeMap<VertexId, u32>,
        window: Option<ScaleDownWindow>,
        hold: Reason,
    ) -> Self {
        Self {
            parallelism: proposed
                .iter()
                .map(|(v, p)| (v.clone(), (*p).max(cur(current, v))))
                .collect(),
            window,
            reasons: Vec::new(),
            hold: Some(hold),
        }
    }
}

/// Current parallelism of `v` (1 when unknown).
fn cur(current: &BTreeMap<VertexId, u32>, v: &VertexId) -> u32 {
    current.get(v).copied().unwrap_or(1)
}

/// The hold when `downs` scale-downs wait whatever the window says: a scale-up elsewhere or
/// a backlog (both close the window), an over-utilized vertex (keeps it).
fn held_outright(
    ups: bool,
    downs: usize,
    catching_up: bool,
    over: bool,
    window: Option<&ScaleDownWindow>,
) -> Option<(Reason, Option<ScaleDownWindow>)> {
    if ups {
        let hold = Reason::new(
            Rule::ScaleDownDelayed,
            format!("{downs} scale-down(s) held: the job scales up"),
        );
        Some((hold, None))
    } else if catching_up {
        let hold = Reason::new(
            Rule::CatchingUp,
            "no scale-down while a backlog is being caught up",
        );
        Some((hold, None))
    } else if over {
        let hold = Reason::new(
            Rule::ScaleDownDelayed,
            "scale-downs held: an over-utilized vertex cannot grow further",
        );
        Some((hold, window.cloned()))
    } else {
        None
    }
}

/// `d` as a chrono duration (saturating).
fn chrono_of(d: Duration) -> chrono::TimeDelta {
    chrono::Duration::from_std(d).unwrap_or(chrono::TimeDelta::MAX)
}

/// A recommendation at or below this share of an open window's settled highest, and below
/// every recommendation the window has seen, is a new, lower load level: the load dropped
/// while the window was open.
pub const LEVEL_DROP: f64 = 0.5;

/// True when some vertex's recommendation is a new, lower load level for `w` (see
/// [`LEVEL_DROP`]). Such a window was opened for the load before the drop (an over-sized
/// job still at the high load): applying its settled highest would size for that load and
/// take a second rescale once the drop settles, so the window starts afresh at the drop
/// and the drop gets one rescale to its settled target. A window opened at the drop itself
/// has settled nothing before it (its own settling never restarts it); one that has seen
/// the low level before (a dip, a noisy load) keeps its highest, as a stabilization window
/// does; each restart needs a new lowest, so a noisy load restarts it once at most.
fn level_dropped(
    w: &ScaleDownWindow,
    current: &BTreeMap<VertexId, u32>,
    proposed: &BTreeMap<VertexId, u32>,
) -> bool {
    proposed.iter().any(|(v, p)| {
        let rec = (*p).min(cur(current, v));
        let below_lowest = w.lowest.get(v).is_some_and(|low| rec < *low);
        let halved = w
            .settled
            .get(v)
            .is_some_and(|high| f64::from(rec) <= f64::from(*high) * LEVEL_DROP);
        below_lowest && halved
    })
}

/// The scale-down window (opened `now` if none is) with today's recommendations merged
/// into its highest-per-vertex, and into its settled highest once the signals have been
/// settling for `settle` (see [`ScaleDownWindow::settling_since`]); a `draining` tick
/// drops what had settled, and the settling restarts at the first tick without the drain.
fn widen_window(
    current: &BTreeMap<VertexId, u32>,
    proposed: &BTreeMap<VertexId, u32>,
    window: Option<&ScaleDownWindow>,
    (settle, draining): (Duration, bool),
    now: DateTime<Utc>,
) -> ScaleDownWindow {
    let mut w = window.cloned().unwrap_or_else(|| ScaleDownWindow {
        started_at: now,
        highest: BTreeMap::new(),
        settled: BTreeMap::new(),
        lowest: BTreeMap::new(),
        draining: false,
        drained_at: None,
    });
    if draining {
        w.settled.clear();
    }
    if draining || w.draining {
        // settling starts at the first tick that no longer sees the drain: the drain
        // ended up to a tick before it (seen in the lab, Flink 2.3.0: busy time still
        // held the drain 12 s after the last draining tick)
        w.drained_at = Some(now);
    }
    w.draining = draining;
    let settled = now.signed_duration_since(w.settling_since()) >= chrono_of(settle);
    for (v, p) in proposed {
        let rec = (*p).min(cur(current, v));
        let h = w.highest.entry(v.clone()).or_insert(rec);
        *h = (*h).max(rec);
        let l = w.lowest.entry(v.clone()).or_insert(rec);
        *l = (*l).min(rec);
        if settled {
            let s = w.settled.entry(v.clone()).or_insert(rec);
            *s = (*s).max(rec);
        }
    }
    w
}

/// The hold while the window has been open for less than `scale_down_delay`, or the
/// signals have been settling for less than `settle` (they still hold part of the load
/// before the drop, or of a drain).
fn window_still_open(
    w: &ScaleDownWindow,
    policy: &Policy,
    settle: Duration,
    now: DateTime<Utc>,
) -> Option<Reason> {
    let delay = chrono_of(policy.scale_down_delay);
    let settle = chrono_of(settle);
    let open_for = now.signed_duration_since(w.started_at);
    let settling_for = now.signed_duration_since(w.settling_since());
    if open_for >= delay && settling_for >= settle {
        return None;
    }
    let remaining = super::guards::remaining_s(delay, open_for)
        .max(super::guards::remaining_s(settle, settling_for));
    let why = if settling_for < settle {
        "signals settling; the lowest safe target applies"
    } else {
        "highest settled recommendation applies"
    };
    Some(
        Reason::new(
            Rule::ScaleDownDelayed,
            format!("scale-down waits {remaining:.0}s more ({why})"),
        )
        .input("window_s", open_for.num_milliseconds() as f64 / 1000.0)
        .input("settle_s", settle.num_milliseconds() as f64 / 1000.0)
        .input(
            "settling_s",
            settling_for.num_milliseconds() as f64 / 1000.0,
        )
        .input("remaining_s", remaining),
    )
}

/// The window's highest settled recommendation per vertex (its highest when nothing has
/// settled, as in a window persisted by an older version), capped by
/// `max_scale_down_factor` (with a [`Rule::ScaleDownCapped`] reason per capped vertex).
fn highest_capped(
    current: &BTreeMap<VertexId, u32>,
    proposed: &BTreeMap<VertexId, u32>,
    w: &ScaleDownWindow,
    policy: &Policy,
) -> (BTreeMap<VertexId, u32>, Vec<Reason>) {
    let mut reasons = Vec::new();
    let parallelism = proposed
        .keys()
        .map(|v| {
            let c = cur(current, v);
            let recorded = if w.settled.is_empty() {
                &w.highest
            } else {
                &w.settled
            };
            let highest = recorded.get(v).copied().unwrap_or(c).min(c);
            let floor = scale_down_floor(c, policy.max_scale_down_factor);
            if highest < floor {
                reasons.push(
                    Reason::new(
                        Rule::ScaleDownCapped,
                        format!("{c} → {highest} capped at {floor}"),
                    )
                    .vertex(v)
                    .input("current", f64::from(c))
                    .input("required", f64::from(highest))
                    .input("max_scale_down_factor", policy.max_scale_down_factor),
                );
            }
            (v.clone(), highest.max(floor))
        })
        .collect();
    (parallelism, reasons)
}

//! Scale-up confirmation: the signals settling, and `scaleUpDelay` (0, the default).
//!
//! DS2 sizes a source from its arrival rate (records consumed + the backlog's growth), so
//! a saturated vertex whose busy time caps at 1.0 is still sized for the whole load. But
//! right after a load step the signal windows hold part of the old load: the estimate
//! grows tick by tick until the longest window has passed the step. Applying the first
//! over-utilized tick's recommendation would under-size the step and take a second
//! rescale. So a scale-up waits while its vertices' target rates or projected utilizations
//! still move (by more than [`SETTLE_GROWTH`] since the previous tick, either way, until
//! [`CALM_TICKS`] ticks in a row are calm), at most the settle time of
//! [`Policy::scale_up_settle`], and then applies the recommendation of the first settled
//! tick, or of the tick where the settle time ran out (every signal window then lies after
//! the step; the window's highest recommendation can be an overshoot made while they
//! filled). With settled signals (a slow ramp, or windows already past the step) it
//! applies on the next tick.
//!
//! `scaleUpDelay` is a fixed confirmation on top (kept as an option): the scale-up applies
//! only after it was recommended on every tick for that long.

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, Utc};

use super::{
    decision::{Reason, Rule},
    policy::Policy,
    state::ScaleUpWindow,
    topology::VertexId,
};

/// Parallelism to go on with, the window to persist, and a hold while waiting.
#[derive(Debug, Clone, PartialEq)]
pub struct Confirmed {
    /// Parallelism per vertex.
    pub parallelism: BTreeMap<VertexId, u32>,
    /// The window to persist (`None` closes it).
    pub window: Option<ScaleUpWindow>,
    /// Set while the scale-up waits for its window.
    pub hold: Option<Reason>,
}

/// Relative growth of a vertex's target rate between two ticks above which the signals
/// still fill with a new load (5 %: a step shows as tens of percent per tick while the
/// windows fill; a backlog's catch-up term grows well under 1 % per tick).
pub const SETTLE_GROWTH: f64 = 0.05;

/// Applies the confirmation window to `proposed` against `current`; `rates` are this
/// tick's target input rates per vertex and `settle` the longest the signals take to
/// show a change.
pub fn confirm(
    current: &BTreeMap<VertexId, u32>,
    proposed: BTreeMap<VertexId, u32>,
    rates: &BTreeMap<VertexId, f64>,
    window: Option<&ScaleUpWindow>,
    settings: (&Policy, Duration),
    now: DateTime<Utc>,
) -> Confirmed {
    let none = BTreeMap::new();
    confirm_with(
        current,
        proposed,
        (rates, &none),
        (window, None),
        settings,
        now,
    )
}

/// [`confirm`], where the signals also count as still filling while a vertex's projected
/// utilization (target rate over its true processing rate) grows: after a step a
/// bottleneck's busy time rises tick by tick while its target rate may already look flat
/// (its upstream is not back-pressured yet), and sizing then would under-size it. A window
/// opened while the target rates rise settles from the first tick of that rise
/// (`rising_since`, see [`crate::state::RateTrend`]).
pub fn confirm_with(
    current: &BTreeMap<VertexId, u32>,
    proposed: BTreeMap<VertexId, u32>,
    (rates, projected): (&BTreeMap<VertexId, f64>, &BTreeMap<VertexId, f64>),
    (window, rising_since): (Option<&ScaleUpWindow>, Option<DateTime<Utc>>),
    (policy, settle): (&Policy, Duration),
    now: DateTime<Utc>,
) -> Confirmed {
    let grows = proposed
        .iter()
        .any(|(v, p)| current.get(v).is_some_and(|c| p > c));
    if (policy.scale_up_delay.is_zero() && settle.is_zero()) || !grows {
        return Confirmed {
            parallelism: proposed,
            window: None,
            hold: None,
        };
    }
    let mut w = window.cloned().unwrap_or_else(|| ScaleUpWindow {
        started_at: now,
        highest: BTreeMap::new(),
        last_rates: BTreeMap::new(),
        last_projected: BTreeMap::new(),
        calm_ticks: 0,
        proposed: BTreeMap::new(),
        settle_from: rising_since,
    });
    w.proposed.clone_from(&proposed);
    for (v, p) in &proposed {
        let h = w.highest.entry(v.clone()).or_insert(*p);
        *h = (*h).max(*p);
    }
    let moved = moving(&w.last_rates, rates)
        || (!projected.is_empty() && utilization_moving(&w.last_projected, projected));
    w.calm_ticks = if moved {
        0
    } else {
        w.calm_ticks.saturating_add(1)
    };
    let unsettled = w.calm_ticks < CALM_TICKS;
    w.last_rates = rates.clone();
    w.last_projected = projected.clone();
    let open_for = now.signed_duration_since(w.started_at);
    let settling_for = now.signed_duration_since(w.settling_since());
    if let Some(hold) = delayed(open_for, policy.scale_up_delay)
        .or_else(|| settling(settling_for, settle, unsettled))
    {
        return Confirmed {
            parallelism: current.clone(),
            window: Some(w),
            hold: Some(hold),
        };
    }
    // confirmed. With no fixed delay: this tick's recommendation, made on windows that
    // hold the whole new load — the signals settled, or the settle time (the longest signal
    // window) has passed since the window opened, so every window lies after the step. An
    // earlier tick's, made while they still filled, can overshoot (a source's consumption
    // and its lag growth fill at different speeds: the lab's 2 → 8 for a load that needs
    // 6). With `scaleUpDelay`: every vertex at the highest recommendation of the window,
    // never below this tick's (a confirmation window, as the HPA's).
    let settled = policy.scale_up_delay.is_zero() && !settle.is_zero();
    let parallelism = if settled {
        proposed
    } else {
        proposed
            .iter()
            .map(|(v, p)| (v.clone(), w.highest.get(v).copied().unwrap_or(*p).max(*p)))
            .collect()
    };
    Confirmed {
        parallelism,
        window: Some(w),
        hold: None,
    }
}

/// Calm ticks in a row after which the signals count as settled. Two: right after a step
/// a saturated vertex's busy time (Flink accounts it every 5 s) reaches 1.0 before its
/// record counts catch up, so its true processing rate reads low and its projected
/// utilization high for a tick or two — the lab saw 2.24 then 2.00 on consecutive ticks
/// (7 → 8 aligned instead of 6). One calm tick could sit on that overshoot; the second
/// comparison sees it fall.
pub const CALM_TICKS: u32 = 2;

/// True when `now` moved from `last` by more than a `relative` share of `last` (and, when
/// given, by more than `absolute`), either way.
fn moved_by(last: f64, now: f64, relative: f64, absolute: f64) -> bool {
    let last = last.max(0.0);
    let delta = (now - last).abs();
    now.max(last) > 0.0 && delta > last * relative && delta > absolute
}

/// True when some vertex's target rate grew or fell by more than [`SETTLE_GROWTH`] since
/// `last` (always on a window's first tick: nothing to compare with yet).
fn moving(last: &BTreeMap<VertexId, f64>, rates: &BTreeMap<VertexId, f64>) -> bool {
    last.is_empty()
        || rates.iter().any(|(v, r)| {
            last.get(v)
                .is_none_or(|l| moved_by(*l, *r, SETTLE_GROWTH, 0.0))
        })
}

/// Least absolute growth of a projected utilization between two ticks that counts as
/// still rising (a nearly idle source going from 0.01 to 0.02 is noise, not a filling
/// window).
pub const SETTLE_UTILIZATION: f64 = 0.05;

/// True when some vertex's projected utilization grew or fell by more than
/// [`SETTLE_GROWTH`] and [`SETTLE_UTILIZATION`] since `last` (always on a window's first
/// tick).
fn utilization_moving(last: &BTreeMap<VertexId, f64>, now: &BTreeMap<VertexId, f64>) -> bool {
    last.is_empty()
        || now.iter().any(|(v, u)| {
            last.get(v)
                .is_none_or(|l| moved_by(*l, *u, SETTLE_GROWTH, SETTLE_UTILIZATION))
        })
}

/// Seconds of a chrono duration.
fn secs(d: chrono::TimeDelta) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

/// The `scaleUpDelay` hold while the window has been open for less than `delay`.
fn delayed(open_for: chrono::TimeDelta, delay: Duration) -> Option<Reason> {
    let delay = chrono::Duration::from_std(delay).unwrap_or(chrono::TimeDelta::MAX);
    (open_for < delay).then(|| {
        let remaining = secs(delay - open_for);
        Reason::new(
            Rule::ScaleUpDelayed,
            format!(
                "scale-up recommended for {:.0}s, confirming {remaining:.0}s more",
                secs(open_for)
            ),
        )
        .input("open_s", secs(open_for))
        .input("remaining_s", remaining)
    })
}

/// How early a tick may be on the settle time and still end it. Ticks fire every
/// evaluation interval and take their clock after reading Flink and Prometheus, so the
/// tick due exactly at the settle time (the lab's: window opened on one tick, settle 6 s,
/// the third tick 2 s apart) reads a few milliseconds early or late, and early held the
/// scale-up one whole interval more (2 s of P1 in about half the runs). 250 ms is far
/// under the scrape the settle time already adds for the last sample landing late.
pub const SETTLE_SLACK: Duration = Duration::from_millis(250);

/// The hold while the signals have not been calm for [`CALM_TICKS`] ticks, within
/// `settle` (less [`SETTLE_SLACK`]) of the window's start.
fn settling(open_for: chrono::TimeDelta, settle: Duration, unsettled: bool) -> Option<Reason> {
    let settle = chrono::Duration::from_std(settle.saturating_sub(SETTLE_SLACK))
        .unwrap_or(chrono::TimeDelta::MAX);
    (unsettled && open_for < settle).then(|| {
        Reason::new(
            Rule::ScaleUpDelayed,
            format!(
                "scale-up waits for the signals to settle (target rates or utilization still moving, at most {:.0}s more)",
                secs(settle - open_for)
            ),
        )
        .input("open_s", secs(open_for))
        .input("settle_s", secs(settle))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(id: &str) -> VertexId {
        VertexId(id.to_string())
    }

    fn plan(a: u32, b: u32) -> BTreeMap<VertexId, u32> {
        [(v("a"), a), (v("b"), b)].into_iter().collect()
    }

    fn policy(delay_s: u64) -> Policy {
        Policy {
            scale_up_delay: Duration::from_secs(delay_s),
            ..Policy::test()
        }
    }

    fn rates(a: f64, b: f64) -> BTreeMap<VertexId, f64> {
        [(v("a"), a), (v("b"), b)].into_iter().collect()
    }

    #[test]
    fn zero_delay_and_no_settle_scale_up_at_once() {
        let c = confirm(
            &plan(1, 1),
            plan(2, 1),
            &rates(1.0, 1.0),
            None,
            (&policy(0), Duration::ZERO),
            Utc::now(),
        );
        assert_eq!((c.parallelism, c.window, c.hold), (plan(2, 1), None, None));
    }

    /// Flat target rates but a bottleneck whose projected utilization still rises (its busy
    /// time fills the window): the scale-up waits, then applies the first settled tick's
    /// recommendation (not an overshoot made while the windows filled).
    #[test]
    fn waits_while_the_projected_utilization_rises() {
        let t0 = Utc::now();
        let p = (&policy(0), Duration::from_secs(10));
        let current = plan(2, 2);
        let at = |s: i64| t0 + chrono::Duration::seconds(s);
        let flat = rates(1800.0, 1800.0);
        // vertex a (a nearly idle source) doubles from 0.1 to 0.2 percent: noise
        let step = |i: i64, proposed, util: f64, w: Option<&ScaleUpWindow>| {
            confirm_with(
                &current,
                proposed,
                (&flat, &rates(0.001 * i as f64, util)),
                (w, None),
                p,
                at(i),
            )
        };
        let c = step(0, plan(3, 2), 1.2, None);
        assert_eq!(
            c.parallelism, current,
            "first tick: nothing to compare with"
        );
        let c = step(2, plan(3, 4), 1.6, c.window.as_ref());
        assert_eq!(
            c.parallelism, current,
            "projected still rising: {:?}",
            c.hold
        );
        // an overshoot while the windows still fill ...
        let c = step(4, plan(3, 7), 1.97, c.window.as_ref());
        assert_eq!(c.parallelism, current);
        // ... is not applied: one calm tick is not settled yet ...
        let c = step(6, plan(3, 6), 1.98, c.window.as_ref());
        assert_eq!(c.parallelism, current, "one calm tick");
        // ... the second calm tick's recommendation is
        let c = step(8, plan(3, 6), 1.99, c.window.as_ref());
        assert_eq!((c.parallelism, c.hold), (plan(3, 6), None), "settled");
    }

    #[test]
    fn waits_while_the_target_rates_rise_then_applies_the_settled_tick() {
        let t0 = Utc::now();
        let p = (&policy(0), Duration::from_secs(10));
        let current = plan(2, 2);
        let at = |s: i64| t0 + chrono::Duration::seconds(s);
        // the windows fill with a 3× step: 1000 → 1500 → 1800 → 1810 rec/s
        let c = confirm(&current, plan(4, 4), &rates(1000.0, 1000.0), None, p, at(0));
        assert_eq!(c.parallelism, current);
        let c = confirm(
            &current,
            plan(5, 5),
            &rates(1500.0, 1500.0),
            c.window.as_ref(),
            p,
            at(2),
        );
        assert_eq!(c.parallelism, current);
        let c = confirm(
            &current,
            plan(6, 6),
            &rates(1800.0, 1800.0),
            c.window.as_ref(),
            p,
            at(4),
        );
        assert_eq!(c.parallelism, current);
        // grown < 5 % on two ticks in a row: settled, that tick's recommendation applies
        let c = confirm(
            &current,
            plan(6, 6),
            &rates(1810.0, 1810.0),
            c.window.as_ref(),
            p,
            at(6),
        );
        assert_eq!(c.parallelism, current, "one calm tick");
        let c = confirm(
            &current,
            plan(6, 6),
            &rates(1805.0, 1805.0),
            c.window.as_ref(),
            p,
            at(8),
        );
        assert_eq!((c.parallelism, c.hold), (plan(6, 6), None));
    }

    #[test]
    fn the_settle_time_bounds_the_wait_even_if_rates_keep_rising() {
        let t0 = Utc::now();
        let p = (&policy(0), Duration::from_secs(4));
        let current = plan(1, 1);
        let c = confirm(&current, plan(2, 2), &rates(100.0, 100.0), None, p, t0);
        assert!(c.hold.is_some());
        let c = confirm(
            &current,
            plan(3, 3),
            &rates(200.0, 200.0),
            c.window.as_ref(),
            p,
            t0 + chrono::Duration::seconds(4),
        );
        assert_eq!((c.parallelism, c.hold), (plan(3, 3), None));
    }

    /// The tick due at the settle time reads its clock a few milliseconds early: it still
    /// ends the wait (not one evaluation interval later).
    #[test]
    fn the_tick_due_at_the_settle_time_applies_despite_clock_jitter() {
        let t0 = Utc::now();
        let p = (&policy(0), Duration::from_secs(6));
        let current = plan(2, 2);
        let at = |ms: i64| t0 + chrono::Duration::milliseconds(ms);
        let c = confirm(&current, plan(2, 5), &rates(1000.0, 1000.0), None, p, at(0));
        let c = confirm(
            &current,
            plan(2, 6),
            &rates(1500.0, 1500.0),
            c.window.as_ref(),
            p,
            at(2_000),
        );
        let c = confirm(
            &current,
            plan(2, 6),
            &rates(1800.0, 1800.0),
            c.window.as_ref(),
            p,
            at(4_010),
        );
        assert_eq!(c.parallelism, current, "still moving, 4 s of 6");
        let early = confirm(
            &current,
            plan(2, 6),
            &rates(1900.0, 1900.0),
            c.window.as_ref(),
            p,
            at(5_700),
        );
        assert!(
            early.hold.is_some(),
            "more than the slack early: {:?}",
            early.parallelism
        );
        let c = confirm(
            &current,
            plan(2, 6),
            &rates(1900.0, 1900.0),
            c.window.as_ref(),
            p,
            at(5_990),
        );
        assert_eq!((c.parallelism, c.hold), (plan(2, 6), None));
    }

    /// A saturated vertex's projected utilization overshoots on one calm tick (busy time at
    /// 1.0 before the record counts catch up) and falls back on the next: the fall counts as
    /// movement, and the settled tick after it applies (6, not the overshoot's 8).
    #[test]
    fn an_overshoot_that_falls_back_is_not_applied() {
        let t0 = Utc::now();
        let p = (&policy(0), Duration::from_secs(11));
        let current = plan(2, 2);
        let at = |s: i64| t0 + chrono::Duration::seconds(s);
        let flat = rates(1830.0, 1830.0);
        let step = |i: i64, proposed, util: f64, w: Option<&ScaleUpWindow>| {
            confirm_with(
                &current,
                proposed,
                (&flat, &rates(0.01, util)),
                (w, None),
                p,
                at(i),
            )
        };
        let c = step(0, plan(2, 3), 0.94, None);
        let c = step(2, plan(2, 7), 1.9, c.window.as_ref());
        let c = step(4, plan(2, 8), 2.24, c.window.as_ref());
        assert_eq!(c.parallelism, current);
        let c = step(6, plan(2, 6), 2.0, c.window.as_ref());
        assert_eq!(c.parallelism, current, "fell by 11 %: still moving");
        let c = step(8, plan(2, 6), 2.01, c.window.as_ref());
        assert_eq!(c.parallelism, current, "one calm tick");
        let c = step(10, plan(2, 6), 2.0, c.window.as_ref());
        assert_eq!((c.parallelism, c.hold), (plan(2, 6), None));
    }

    /// The settle time runs out while a rate still rises: the tick's own recommendation
    /// applies, not an overshoot made while the windows filled (the lab's 2 → 8 for 6).
    #[test]
    fn a_timed_out_settle_applies_the_tick_not_the_windows_overshoot() {
        let t0 = Utc::now();
        let p = (&policy(0), Duration::from_secs(10));
        let current = plan(2, 2);
        let at = |s: i64| t0 + chrono::Duration::seconds(s);
        let c = confirm(&current, plan(4, 5), &rates(1000.0, 1000.0), None, p, at(0));
        let c = confirm(
            &current,
            plan(4, 8),
            &rates(1500.0, 1500.0),
            c.window.as_ref(),
            p,
            at(5),
        );
        assert_eq!(c.parallelism, current, "still rising: {:?}", c.hold);
        let c = confirm(
            &current,
            plan(4, 6),
            &rates(1700.0, 1700.0),
            c.window.as_ref(),
            p,
            at(10),
        );
        assert_eq!((c.parallelism, c.hold), (plan(4, 6), None));
    }

    #[test]
    fn holds_then_applies_the_highest_recommendation_of_the_window() {
        let t0 = Utc::now();
        let p = policy(10);
        let current = plan(1, 1);
        let r = rates(1.0, 1.0);
        let c = confirm(&current, plan(2, 1), &r, None, (&p, Duration::ZERO), t0);
        assert_eq!(c.parallelism, current);
        assert_eq!(c.hold.as_ref().map(|h| h.rule), Some(Rule::ScaleUpDelayed));
        let w = c.window.expect("window opened");
        // the demand shows: 4 recommended 6 s later, 3 at 10 s; 4 is applied
        let c = confirm(
            &current,
            plan(4, 1),
            &r,
            Some(&w),
            (&p, Duration::ZERO),
            t0 + chrono::Duration::seconds(6),
        );
        assert_eq!(c.parallelism, current);
        let w = c.window.expect("window kept");
        let c = confirm(
            &current,
            plan(3, 1),
            &r,
            Some(&w),
            (&p, Duration::ZERO),
            t0 + chrono::Duration::seconds(10),
        );
        assert_eq!(c.hold, None);
        assert_eq!(c.parallelism, plan(4, 1));
    }

    #[test]
    fn a_tick_without_scale_up_closes_the_window() {
        let t0 = Utc::now();
        let p = policy(10);
        let r = rates(1.0, 1.0);
        let c = confirm(&plan(1, 1), plan(2, 1), &r, None, (&p, Duration::ZERO), t0);
        assert!(c.window.is_some());
        let c = confirm(
            &plan(1, 1),
            plan(1, 1),
            &r,
            c.window.as_ref(),
            (&p, Duration::ZERO),
            t0 + chrono::Duration::seconds(5),
        );
        assert_eq!((c.window, c.hold), (None, None));
    }
}

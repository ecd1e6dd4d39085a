//! One rescale per load change: a scale-down applies the lowest safe target once the
//! signals have settled after a drop; a scale-up waits while its arrival-rate estimate
//! still rises (the signal windows filling with a step), then sizes the step once.

use super::*;
use crate::{ds2, inputs::VertexInputs};

/// A source (100 000 rec/s per subtask) and a keyed operator (1 000 rec/s per subtask).
pub(super) fn keyed_line() -> Line {
    Line {
        vertices: vec![("src", 120, 100_000.0, false), ("map", 120, 1000.0, true)],
    }
}

pub(super) fn settle_policy(delay_s: u64, settle_s: u64) -> Policy {
    Policy {
        scale_down_delay: Duration::from_secs(delay_s),
        signal_settle: Some(Duration::from_secs(settle_s)),
        max_scale_down_factor: 0.9,
        cooldown: Duration::ZERO,
        ..Policy::test()
    }
}

/// Decides each `(seconds, observation)` in turn from `state`, asserting that every tick
/// holds a scale-down (and rescales nothing); returns the state after the last.
pub(super) fn held_on_each(
    ticks: impl IntoIterator<Item = (i64, Observation)>,
    mut state: JobState,
    policy: &Policy,
) -> JobState {
    for (t, obs) in ticks {
        let (d, s) = decide(&obs, &state, policy, at(t));
        assert_eq!(
            d.main_rule(),
            Some(Rule::ScaleDownDelayed),
            "t={t}: {}",
            d.summary()
        );
        assert!(!d.rescale);
        state = s;
    }
    state
}

fn map_target(d: &Decision) -> Option<u32> {
    d.target
        .as_ref()
        .and_then(|t| t.parallelism.get(&vid("map")).copied())
}

#[test]
fn a_drop_scales_down_once_to_the_settled_target() {
    let l = keyed_line();
    let policy = settle_policy(20, 12);
    let at8 = [8, 8];
    // 6000 → 1200 rec/s at p=8: while the 10 s windows still hold part of the old load
    // the estimate falls 3000 → 2000 → 1500, then settles at 1200 (→ 2 at 0.7)
    let ticks = [
        (0, 3000.0),
        (4, 2000.0),
        (8, 1500.0),
        (12, 1200.0),
        (16, 1200.0),
    ];
    let ticks = ticks.map(|(t, rate)| (t, l.observe(rate, &at8, 0.0)));
    let state = held_on_each(ticks, JobState::default(), &policy);
    let w = state.scale_down_window.clone().expect("window open");
    assert_eq!(
        w.highest.get(&vid("map")),
        Some(&5),
        "3000 → ceil(3000/700)"
    );
    assert_eq!(
        w.settled.get(&vid("map")),
        Some(&2),
        "from 12 s on: 1200 → 2"
    );
    let (d, s) = decide(&l.observe(1200.0, &at8, 0.0), &state, &policy, at(20));
    assert!(d.rescale, "{}", d.summary());
    assert_eq!(d.main_rule(), Some(Rule::ScaleDown));
    assert_eq!(map_target(&d), Some(2), "{}", d.summary());
    assert!(s.scale_down_window.is_none());
}

#[test]
fn a_drain_that_ends_inside_the_window_settles_from_its_end() {
    let l = keyed_line();
    let policy = settle_policy(20, 12);
    let at8 = [8, 8];
    // 1200 rec/s arrive at p=8 while the source drains a backlog at 3000 rec/s (lag
    // shrinking by 1800/s): DS2 sizes the arrival (→ 2) and the window opens at 0 s. The
    // 4 s tick is the first without the drain; the 10 s windows still hold it at 4, 8 and
    // 12 s (the estimate falls 2000 → 1500: → 3), then settle at 1200. Counted from the
    // window's start, the 12 s tick would have settled at 3 and taken a second rescale.
    let draining = l.observe(3000.0, &at8, 0.0).lag("src", 20_000.0, -1800.0);
    let ticks = [
        (0, draining),
        (4, l.observe(2000.0, &at8, 0.0)),
        (8, l.observe(2000.0, &at8, 0.0)),
        (12, l.observe(1500.0, &at8, 0.0)),
        (16, l.observe(1200.0, &at8, 0.0)),
    ];
    let state = held_on_each(ticks, JobState::default(), &policy);
    let w = state.scale_down_window.clone().expect("window open");
    assert_eq!((w.started_at, w.drained_at), (at(0), Some(at(4))));
    assert!(!w.draining);
    assert_eq!(w.highest.get(&vid("map")), Some(&3));
    assert_eq!(w.settled.get(&vid("map")), Some(&2), "from 16 s on");
    let (d, s) = decide(&l.observe(1200.0, &at8, 0.0), &state, &policy, at(20));
    assert!(d.rescale, "{}", d.summary());
    assert_eq!(map_target(&d), Some(2), "{}", d.summary());
    assert!(s.scale_down_window.is_none());
}

#[test]
fn a_drain_late_in_the_window_holds_the_scale_down_for_the_settle_time() {
    let l = keyed_line();
    let policy = settle_policy(20, 12);
    let at8 = [8, 8];
    let settled = |s: &JobState| s.scale_down_window.as_ref().map(|w| w.settled.len());
    let idle = l.observe(1200.0, &at8, 0.0);
    let (_, s) = decide(&idle, &JobState::default(), &policy, at(0));
    let (_, s) = decide(&idle, &s, &policy, at(14));
    assert_eq!(settled(&s), Some(2));
    // a backlog drains at 16 s: what had settled is dropped; the 18 s tick no longer
    // sees the drain, so the delay (20 s) is not enough: the signals settle until 30 s
    let drain = l.observe(3000.0, &at8, 0.0).lag("src", 5_000.0, -1800.0);
    let (_, s) = decide(&drain, &s, &policy, at(16));
    assert_eq!(settled(&s), Some(0));
    let (_, s) = decide(&idle, &s, &policy, at(18));
    let (d, s) = decide(&idle, &s, &policy, at(24));
    let hold = d
        .reasons
        .iter()
        .find(|r| r.rule == Rule::ScaleDownDelayed)
        .expect("held while settling");
    let remaining = hold.inputs.get("remaining_s");
    assert_eq!(remaining, Some(&6.0), "{}", d.summary());
    let (d, _) = decide(&idle, &s, &policy, at(30));
    assert!(d.rescale, "{}", d.summary());
    assert_eq!(map_target(&d), Some(2), "{}", d.summary());
}

#[test]
fn a_backlog_drains_when_it_shrinks_by_more_than_the_noise() {
    let source = |pending: f64, lag_growth: f64| VertexInputs {
        busy: 0.5,
        rate_in: 1000.0,
        rate_out: None,
        backpressure: None,
        pending: Some(pending),
        lag_growth,
        arrival: None,
        partitions: None,
    };
    // arrival = 1000 + growth; draining when the backlog shrinks by > 10 % of it
    assert!(ds2::draining(&source(5000.0, -200.0)));
    assert!(!ds2::draining(&source(5000.0, -80.0)), "within the noise");
    assert!(!ds2::draining(&source(5000.0, 50.0)), "growing");
    assert!(!ds2::draining(&source(0.0, -200.0)), "nothing pending");
}

#[test]
fn the_settle_time_holds_a_scale_down_longer_than_its_delay() {
    let l = keyed_line();
    let policy = settle_policy(5, 12);
    let idle = l.observe(1200.0, &[8, 8], 0.0);
    let (_, s) = decide(&idle, &JobState::default(), &policy, at(0));
    let (d, s) = decide(&idle, &s, &policy, at(6));
    assert_eq!(
        d.main_rule(),
        Some(Rule::ScaleDownDelayed),
        "{}",
        d.summary()
    );
    let hold = d
        .reasons
        .iter()
        .find(|r| r.rule == Rule::ScaleDownDelayed)
        .expect("hold");
    assert_eq!(hold.inputs.get("settle_s"), Some(&12.0));
    let (d, _) = decide(&idle, &s, &policy, at(12));
    assert!(d.rescale, "{}", d.summary());
}

#[test]
fn safety_rules_still_hold_a_settled_scale_down() {
    let l = keyed_line();
    let policy = Policy {
        max_scale_down_factor: 0.5,
        cooldown: Duration::from_secs(60),
        ..settle_policy(0, 0)
    };
    let idle = l.observe(1200.0, &[8, 8], 0.0);
    // capped by the max factor: 8 → 4, not 2
    let (d, _) = decide(&idle, &JobState::default(), &policy, at(0));
    assert_eq!(map_target(&d), Some(4), "{}", d.summary());
    assert!(d.reasons.iter().any(|r| r.rule == Rule::ScaleDownCapped));
    // a backlog holds it
    let (d, _) = decide(
        &l.observe(1200.0, &[8, 8], 500_000.0),
        &JobState::default(),
        &policy,
        at(0),
    );
    assert!(
        !d.rescale && d.main_rule() == Some(Rule::CatchingUp),
        "{}",
        d.summary()
    );
    // the cooldown holds it
    let recent = JobState {
        last_rescale_at: Some(at(-10)),
        ..JobState::default()
    };
    let (d, _) = decide(&idle, &recent, &policy, at(0));
    assert_eq!(d.main_rule(), Some(Rule::Cooldown), "{}", d.summary());
}

#[test]
fn a_step_waits_for_the_rising_estimate_then_scales_up_once() {
    let l = keyed_line();
    let policy = settle_policy(300, 10);
    // 600 → 1800 rec/s at p=1 (capacity 1000, 0.7 target → 3): the windows fill,
    // the arrival-rate estimate rises 1200 → 1600 → 1800 and settles (two calm ticks)
    let ticks = [(0, 1200.0), (2, 1600.0), (4, 1800.0), (6, 1805.0)];
    let mut state = JobState::default();
    for (t, rate) in ticks {
        let (d, s) = decide(&l.observe(rate, &[1, 1], 0.0), &state, &policy, at(t));
        assert_eq!(
            d.main_rule(),
            Some(Rule::ScaleUpDelayed),
            "t={t}: {}",
            d.summary()
        );
        state = s;
    }
    let (d, s) = decide(&l.observe(1810.0, &[1, 1], 0.0), &state, &policy, at(8));
    assert!(d.rescale, "{}", d.summary());
    assert_eq!(map_target(&d), Some(3), "ceil(1810 / 700): {}", d.summary());
    assert!(s.scale_up_window.is_none());
    // without a settle time the first tick scales up at once, under-sized
    let eager = Policy {
        signal_settle: None,
        ..policy
    };
    let (d, _) = decide(
        &l.observe(1200.0, &[1, 1], 0.0),
        &JobState::default(),
        &eager,
        at(0),
    );
    assert!(d.rescale);
    assert_eq!(map_target(&d), Some(2), "{}", d.summary());
}

#[test]
fn the_runtime_signal_window_is_the_default_settle_time() {
    let p = Policy::test();
    let w = Some(Duration::from_secs(4));
    assert_eq!(p.scale_down_settle(w), Duration::from_secs(4));
    assert_eq!(p.scale_up_settle(w), Duration::from_secs(4));
    assert_eq!(p.scale_down_settle(None), p.stabilization);
    assert_eq!(p.scale_up_settle(None), Duration::ZERO);
    let explicit = Policy {
        signal_settle: Some(Duration::from_secs(9)),
        ..p
    };
    assert_eq!(explicit.scale_up_settle(w), Duration::from_secs(9));
}

#[test]
fn the_budget_holds_a_scale_down() {
    let l = keyed_line();
    let policy = settle_policy(0, 0);
    let full = JobState {
        history: (1..=6)
            .map(|i| RescaleRecord {
                at: at(-500 * i),
                from_task_managers: 8,
                to_task_managers: 8,
            })
            .collect(),
        ..JobState::default()
    };
    let (d, _) = decide(&l.observe(1200.0, &[8, 8], 0.0), &full, &policy, at(0));
    assert!(!d.rescale, "{}", d.summary());
    assert_eq!(
        d.main_rule(),
        Some(Rule::BudgetExhausted),
        "{}",
        d.summary()
    );
    // a scale-up is never held by it: the downs bound the flapping, and lag costs more
    // than a restart
    let (d, _) = decide(&l.observe(3000.0, &[1, 1], 0.0), &full, &policy, at(0));
    assert!(d.rescale, "{}", d.summary());
    assert_eq!(d.main_rule(), Some(Rule::ScaleUp));
}

/// True when the decision's hold says its scale-down window restarted at a drop.
fn restarted(d: &Decision) -> bool {
    d.reasons
        .iter()
        .any(|r| r.inputs.contains_key("restarted_on_drop"))
}

/// Runs `ticks` (second, rate) on the keyed line at `parallelism`, returning the decisions.
fn run_ticks(
    policy: &Policy,
    parallelism: &[u32],
    ticks: &[(i64, f64)],
) -> (Vec<(i64, Decision)>, JobState) {
    let l = keyed_line();
    let mut state = JobState::default();
    let mut out = Vec::new();
    for (t, rate) in ticks {
        let (d, s) = decide(&l.observe(*rate, parallelism, 0.0), &state, policy, at(*t));
        state = s;
        out.push((*t, d));
    }
    (out, state)
}

/// An over-sized job (8 for a load that needs 6) opens a window at the high load; the load
/// drops to a level that needs 2 before the window ends. Without the restart the window's
/// settled 6 would apply at 30 s, then another rescale to 2: one rescale to 2 instead,
/// one delay after the drop.
#[test]
fn a_drop_while_a_window_is_open_restarts_it_and_scales_down_once() {
    let policy = settle_policy(30, 12);
    let high = (0..=16).step_by(4).map(|t| (t, 4200.0));
    // the drop: the windows still hold part of the high load for 12 s
    let drop = [(20, 2600.0), (24, 2000.0), (28, 1200.0), (32, 1200.0)];
    let after = (36..=52).step_by(4).map(|t| (t, 1200.0));
    let ticks: Vec<_> = high.chain(drop).chain(after).collect();
    let (ds, state) = run_ticks(&policy, &[8, 8], &ticks);
    for (t, d) in &ds {
        assert!(!d.rescale, "t={t}: {}", d.summary());
        assert_eq!(d.main_rule(), Some(Rule::ScaleDownDelayed), "t={t}");
    }
    let restart = ds.iter().find(|(_, d)| restarted(d)).map(|(t, _)| *t);
    assert_eq!(restart, Some(24), "2000 → 3 ≤ 6 / 2 (2600 → 4 is not)");
    let w = state.scale_down_window.clone().expect("window open");
    assert_eq!(w.started_at, at(24));
    assert_eq!(w.settled.get(&vid("map")), Some(&2), "from 36 s on");
    let l = keyed_line();
    let (d, _) = decide(&l.observe(1200.0, &[8, 8], 0.0), &state, &policy, at(54));
    assert!(d.rescale, "{}", d.summary());
    assert_eq!(map_target(&d), Some(2), "{}", d.summary());
}

/// A noisy load alternating between two levels restarts the window at most once and then
/// applies its highest (the low level is the window's lowest after the first dip).
#[test]
fn a_noisy_load_does_not_keep_restarting_the_window() {
    let policy = settle_policy(20, 4);
    // 2800 → 4, 1400 → 2, alternating every 4 s
    let ticks: Vec<_> = (0..=15)
        .map(|i| (i * 4, if i % 2 == 0 { 2800.0 } else { 1400.0 }))
        .collect();
    let (ds, _) = run_ticks(&policy, &[8, 8], &ticks);
    let restarts = ds.iter().filter(|(_, d)| restarted(d)).count();
    assert!(restarts <= 1, "{restarts} restarts");
    let applied: Vec<_> = ds
        .iter()
        .filter(|(_, d)| d.rescale)
        .map(|(t, d)| (*t, map_target(d)))
        .collect();
    assert_eq!(applied.first().map(|a| a.1), Some(Some(4)), "{applied:?}");
}

/// A step as the keyed line sees it at `t`: the load windows still fill (`slow`, what
/// `recordsIn + lagGrowth` read) while the sources' short-window arrival may already hold
/// the step; the windows as the runtime reports them at a 1 s scrape.
fn step_tick(slow: f64, arrival: Option<f64>) -> Observation {
    let mut obs = keyed_line().observe(slow, &[1, 1], 0.0);
    obs.signal_window = Some(Duration::from_secs(11));
    obs.arrival_window = Some(Duration::from_secs(5));
    if let Some(src) = obs.vertices.get_mut(&vid("src")) {
        src.arrival_per_s = arrival;
    }
    obs
}

/// With every source's arrival read over the short window, a step settles within that
/// window even while the arrival stays noisy: a load step moves the arrival, not a
/// vertex's true processing rate. Without it the scale-up waits for the load window.
#[test]
fn a_step_in_the_arrival_settles_within_the_arrival_window() {
    let policy = Policy {
        signal_settle: None,
        ..settle_policy(300, 0)
    };
    // (second, slow estimate, arrival): 600 → 1800 rec/s, the arrival ±8 % noisy
    let ticks = [
        (0, 1100.0, 1800.0),
        (2, 1400.0, 1950.0),
        (4, 1600.0, 1750.0),
        (6, 1750.0, 1900.0),
    ];
    let mut fast = JobState::default();
    let mut slow = JobState::default();
    for (t, rate, arrival) in ticks {
        let (d, s) = decide(&step_tick(rate, Some(arrival)), &fast, &policy, at(t));
        fast = s;
        let (ds, s) = decide(&step_tick(rate, None), &slow, &policy, at(t));
        slow = s;
        assert_eq!(
            ds.main_rule(),
            Some(Rule::ScaleUpDelayed),
            "t={t}: {}",
            ds.summary()
        );
        if t < 6 {
            assert_eq!(d.main_rule(), Some(Rule::ScaleUpDelayed), "t={t}");
        } else {
            assert!(d.rescale, "t={t}: {}", d.summary());
            assert_eq!(map_target(&d), Some(3), "ceil(1900 / 700): {}", d.summary());
        }
    }
    // the arrival is the source's target rate: the slow estimate alone under-sizes
    let (d, _) = decide(
        &step_tick(1100.0, Some(1800.0)),
        &JobState::default(),
        &settle_policy(300, 0),
        at(0),
    );
    assert_eq!(map_target(&d), Some(3), "{}", d.summary());
    let (d, _) = decide(
        &step_tick(1100.0, None),
        &JobState::default(),
        &settle_policy(300, 0),
        at(0),
    );
    assert_eq!(map_target(&d), Some(2), "{}", d.summary());
}

/// The settle time counts from the first tick of the rise, not from the later tick that
/// first crossed the band: the rise shows a load change that happened by then, so the
/// arrival window (5 s here) holds only the new load 5 s after it. Without a rising tick
/// before the crossing (a flat tick, then the step past the band) the wait runs from the
/// crossing, as before.
#[test]
fn a_scale_up_settles_from_the_first_rising_tick() {
    let policy = Policy {
        signal_settle: None,
        ..settle_policy(300, 0)
    };
    let run = |arrivals: [f64; 6]| {
        let mut state = JobState::default();
        let mut applied = None;
        for (i, arrival) in arrivals.into_iter().enumerate() {
            let t = 2 * i as i64;
            let (d, s) = decide(&step_tick(arrival, Some(arrival)), &state, &policy, at(t));
            state = s;
            if d.rescale {
                applied = Some((t, map_target(&d)));
                break;
            }
        }
        (applied, state)
    };
    // 500 → 800 (+60 %, still in band) → 1500 (over) → 1750 → 1800 → 1790
    let (applied, _) = run([500.0, 800.0, 1500.0, 1750.0, 1800.0, 1790.0]);
    assert_eq!(
        applied,
        Some((8, Some(3))),
        "2 s (the rise) + 5 s, on the next tick, ceil(1800 / 700)"
    );
    // 500 → 500 (flat) → 1500 (over) → ...: the rise starts at the crossing
    let (applied, _) = run([500.0, 500.0, 1500.0, 1750.0, 1800.0, 1790.0]);
    assert_eq!(
        applied,
        Some((10, Some(3))),
        "4 s (the crossing) + 5 s, on the next tick"
    );
    // a rescale forgets the trend: rates after a restart are no rise of the load
    let (_, state) = run([500.0, 800.0, 1500.0, 1750.0, 1800.0, 1790.0]);
    assert_eq!(state.trend, crate::state::RateTrend::default());
}

/// A step as the default arrival query reads it, tick by tick at a 1 s scrape: `deriv` over
/// the 5 s window fills as `3u² − 2u³` of the step (`u`, the share of the window after it),
/// so the early ticks under-size it. The first tick that saw the rise already held a sample
/// taken after the step, so the window holds only the new load one window later: the
/// scale-up applies exactly then (not a scrape later), sized for the whole step, once.
#[test]
fn a_step_filling_the_arrival_window_applies_one_window_after_the_rise() {
    let policy = Policy {
        signal_settle: None,
        ..settle_policy(300, 0)
    };
    let fill = |u: f64| 600.0 + 1600.0 * (3.0 * u * u - 2.0 * u * u * u);
    // 600 → 2200 rec/s between t=0 and t=1 (ceil(2200 / 700) = 4; 3 fits 2100)
    let arrivals = [
        600.0,
        fill(0.2),
        fill(0.4),
        fill(0.6),
        fill(0.8),
        2200.0,
        2190.0,
        2210.0,
    ];
    let mut state = JobState::default();
    let mut applied = Vec::new();
    for (t, arrival) in arrivals.into_iter().enumerate() {
        let t = t as i64;
        let (d, s) = decide(&step_tick(arrival, Some(arrival)), &state, &policy, at(t));
        state = s;
        if d.rescale {
            applied.push((t, map_target(&d)));
        }
        if (2..6).contains(&t) {
            assert_eq!(
                d.main_rule(),
                Some(Rule::ScaleUpDelayed),
                "t={t}: {}",
                d.summary()
            );
        }
    }
    assert_eq!(
        applied,
        vec![(6, Some(4))],
        "the rise at 1 s + the 5 s window; t=4 read {:.0} (3)",
        fill(0.8)
    );
}

//! Table-driven tests of [`super::decide::decide`]: each case asserts the whole decision
//! — target plan (or none), TaskManagers, direction, rescale flag and the exact sequence
//! of (rule, vertex) reasons — plus the state it hands back.

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, TimeZone, Utc};

use super::{
    decide::decide,
    decision::{Decision, Direction, Rule},
    fixtures::{at, policy_with_delay, t0, vid, Line},
    observation::{JobStatus, Observation},
    policy::{Policy, Schedule, ScheduleKind},
    state::{JobState, RescaleRecord, ScaleDownWindow},
    topology::ShipStrategy,
};

/// What a case expects.
struct Expect {
    /// Target parallelism per vertex and TaskManagers; `None` = no decision.
    target: Option<(Vec<(&'static str, u32)>, u32)>,
    direction: Direction,
    rescale: bool,
    /// Every reason, in order: (rule, vertex).
    rules: Vec<(Rule, Option<&'static str>)>,
}

struct Case {
    name: &'static str,
    obs: Observation,
    state: JobState,
    policy: Policy,
    now: DateTime<Utc>,
    expect: Expect,
}

fn plan(p: &[(&'static str, u32)], tms: u32) -> Option<(Vec<(&'static str, u32)>, u32)> {
    Some((p.to_vec(), tms))
}

/// Runs a case and asserts the whole decision; returns it with the new state.
fn check(c: Case) -> (Decision, JobState) {
    let (d, s) = decide(&c.obs, &c.state, &c.policy, c.now);
    let got_rules: Vec<(Rule, Option<String>)> = d
        .reasons
        .iter()
        .map(|r| (r.rule, r.vertex.as_ref().map(|v| v.to_string())))
        .collect();
    let want_rules: Vec<(Rule, Option<String>)> = c
        .expect
        .rules
        .iter()
        .map(|(r, v)| (*r, v.map(String::from)))
        .collect();
    assert_eq!(got_rules, want_rules, "{}: rules ({})", c.name, d.summary());
    let got_target = d.target.as_ref().map(|t| {
        let p: BTreeMap<String, u32> = t
            .parallelism
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        (p, t.task_managers)
    });
    let want_target = c.expect.target.as_ref().map(|(p, tms)| {
        let p: BTreeMap<String, u32> = p.iter().map(|(k, v)| ((*k).to_string(), *v)).collect();
        (p, *tms)
    });
    assert_eq!(
        got_target,
        want_target,
        "{}: target ({})",
        c.name,
        d.summary()
    );
    assert_eq!(d.direction, c.expect.direction, "{}: direction", c.name);
    assert_eq!(d.rescale, c.expect.rescale, "{}: rescale", c.name);
    assert_eq!(d.at, c.now, "{}: at", c.name);
    if d.rescale {
        assert_eq!(
            s.last_rescale_at,
            Some(c.now),
            "{}: rescale recorded",
            c.name
        );
        assert_eq!(s.scale_down_window, None, "{}: window closed", c.name);
    } else {
        assert_eq!(s.history, c.state.history, "{}: history untouched", c.name);
    }
    (d, s)
}

/// src(2) → map(2), both 60 % busy at 1000 rec/s: inside the band.
fn steady() -> Observation {
    Observation::test()
        .vertex("src", 2, 128)
        .vertex("map", 2, 128)
        .edge("src", "map", ShipStrategy::Rebalance)
        .load("src", 600.0, 1000.0)
        .load("map", 600.0, 1000.0)
}

#[test]
fn guards_refuse_without_target() {
    let none = |rule, v| Expect {
        target: None,
        direction: Direction::None,
        rescale: false,
        rules: vec![(rule, v)],
    };
    let mut cyclic = steady().edge("map", "src", ShipStrategy::Forward);
    cyclic.running_since = Some(at(-3600));
    let cases = vec![
        Case {
            name: "restarting",
            obs: Observation {
                status: JobStatus::Restarting,
                ..steady()
            },
            state: JobState::default(),
            policy: Policy::test(),
            now: t0(),
            expect: none(Rule::NotRunning, None),
        },
        Case {
            name: "stabilizing after a restart 10 s ago",
            obs: Observation {
                running_since: Some(at(-10)),
                ..steady()
            },
            state: JobState::default(),
            policy: Policy::test(),
            now: t0(),
            expect: none(Rule::Stabilizing, None),
        },
        Case {
            name: "cycle",
            obs: cyclic,
            state: JobState::default(),
            policy: Policy::test(),
            now: t0(),
            expect: none(Rule::InvalidTopology, None),
        },
        Case {
            name: "empty topology",
            obs: Observation::test(),
            state: JobState::default(),
            policy: Policy::test(),
            now: t0(),
            expect: none(Rule::InvalidTopology, None),
        },
        Case {
            name: "no signals at all",
            obs: Observation {
                vertices: BTreeMap::new(),
                ..steady()
            },
            state: JobState::default(),
            policy: Policy::test(),
            now: t0(),
            expect: none(Rule::MissingSignal, Some("src")),
        },
        Case {
            name: "running since unknown",
            obs: Observation {
                running_since: None,
                ..steady()
            },
            state: JobState::default(),
            policy: Policy::test(),
            now: t0(),
            expect: none(Rule::MissingSignal, None),
        },
        Case {
            name: "maxParallelism 0",
            obs: steady().vertex("bad", 1, 0).load("bad", 1.0, 1.0),
            state: JobState::default(),
            policy: Policy::test(),
            now: t0(),
            expect: none(Rule::InvalidTopology, Some("bad")),
        },
        Case {
            name: "busy NaN",
            obs: steady().with("map", |s| s.busy_ms_per_s = Some(f64::NAN)),
            state: JobState::default(),
            policy: Policy::test(),
            now: t0(),
            expect: none(Rule::MissingSignal, Some("map")),
        },
        Case {
            name: "records-in missing",
            obs: steady().with("src", |s| s.records_in_per_s = None),
            state: JobState::default(),
            policy: Policy::test(),
            now: t0(),
            expect: none(Rule::MissingSignal, Some("src")),
        },
        Case {
            name: "pendingRecords infinite",
            obs: steady().with("src", |s| s.pending_records = Some(f64::INFINITY)),
            state: JobState::default(),
            policy: Policy::test(),
            now: t0(),
            expect: none(Rule::MissingSignal, Some("src")),
        },
        Case {
            name: "slots per TaskManager unknown",
            obs: Observation {
                slots_per_task_manager: None,
                ..steady()
            },
            state: JobState::default(),
            policy: Policy::test(),
            now: t0(),
            expect: none(Rule::MissingSignal, None),
        },
        Case {
            name: "legacy source without pendingRecords decides",
            obs: steady(),
            state: JobState::default(),
            policy: Policy::test(),
            now: t0(),
            expect: Expect {
                target: plan(&[("src", 2), ("map", 2)], 2),
                direction: Direction::None,
                rescale: false,
                rules: vec![(Rule::WithinBand, None)],
            },
        },
    ];
    for c in cases {
        check(c);
    }
}

/// The three-vertex line used by the step tests: caps 500, 250, 300 rec/s per subtask,
/// the last vertex keyed over 128 key groups. At 1000 rec/s and [4, 8, 8] every vertex
/// sits in the band (50 %, 50 %, 42 %).
fn line() -> Line {
    Line {
        vertices: vec![
            ("src", 128, 500.0, false),
            ("map", 128, 250.0, false),
            ("agg", 128, 300.0, true),
        ],
    }
}

/// A 3× load step is sized right in ONE decision (DS2), and the next decision at the new
/// parallelism holds inside the band.
#[test]
fn three_x_step_lands_in_one_decision() {
    let l = line();
    let policy = Policy::test();
    let u = policy.target_utilization;
    let before = l.observe(1000.0, &[4, 8, 8], 0.0);
    let (d0, _) = decide(&before, &JobState::default(), &policy, t0());
    assert_eq!(d0.main_rule(), Some(Rule::WithinBand), "{}", d0.summary());

    let (src, map) = (l.optimal(0, 3000.0, u), l.optimal(1, 3000.0, u));
    // agg needs ceil(3000 / 210) = 15; aligned to 16, a divisor of 128 within reach
    let agg = 16;
    assert_eq!(l.optimal(2, 3000.0, u), 15);
    let tms = src.max(map).max(agg);
    let (_, state) = check(Case {
        name: "3x step",
        obs: l.observe(3000.0, &[4, 8, 8], 0.0),
        state: JobState::default(),
        policy: policy.clone(),
        now: t0(),
        expect: Expect {
            target: plan(&[("src", src), ("map", map), ("agg", agg)], tms),
            direction: Direction::Up,
            rescale: true,
            rules: vec![
                (Rule::Overutilized, Some("src")),
                (Rule::Overutilized, Some("map")),
                (Rule::Overutilized, Some("agg")),
                (Rule::Aligned, Some("agg")),
                (Rule::ScaleUp, None),
            ],
        },
    });
    let mut after = l.observe(3000.0, &[src, map, agg], 0.0);
    after.running_since = Some(at(10));
    check(Case {
        name: "after the step",
        obs: after,
        state,
        policy,
        now: at(120),
        expect: Expect {
            target: plan(&[("src", src), ("map", map), ("agg", agg)], tms),
            direction: Direction::None,
            rescale: false,
            rules: vec![(Rule::WithinBand, None)],
        },
    });
}

/// src(4, 12 partitions) → map(4), 2 slots per TaskManager; the source reads 2000 rec/s at
/// 20 % busy while 100 k records wait and the backlog grows by 500/s.
fn io_bound(cpu: f64) -> Observation {
    Observation::test()
        .slots(2)
        .vertex("src", 4, 128)
        .vertex("map", 4, 128)
        .edge("src", "map", ShipStrategy::Rebalance)
        .load("src", 200.0, 2000.0)
        .lag("src", 100_000.0, 500.0)
        .partitions("src", 12)
        .load("map", 500.0, 2000.0)
        .cpu(3, cpu)
}

#[test]
fn seed_policies() {
    // target = 2000 + 500 + 100000/300 = 2833.3 rec/s
    // IO-bound: observed 500 rec/s per subtask → ceil(5.67) = 6 (a divisor of 12)
    // map: true rate 4000 at p=4 → ceil(2833.3 / (1000 × 0.7)) = 5
    // not IO-bound: DS2 gives src ceil(2833.3 / 1750) = 2, a delayed scale-down
    let mut window_obs = Observation::test()
        .vertex("src", 8, 128)
        .vertex("map", 8, 128)
        .edge("src", "map", ShipStrategy::Rebalance)
        .load("src", 100.0, 1000.0)
        .load("map", 100.0, 1000.0);
    window_obs.task_managers_registered = Some(8);
    let idle = || window_obs.clone();
    // idle: true rate 10000 at p=8 → ceil(1000 / (1250 × 0.7)) = 2 for both
    let window = |started: i64, src: u32, map: u32| ScaleDownWindow {
        started_at: at(started),
        highest: [(vid("src"), src), (vid("map"), map)].into_iter().collect(),
    };
    let cases = vec![
        Case {
            name: "lag growing + CPU low: IO-bound source scales out by lag",
            obs: io_bound(0.15),
            state: JobState::default(),
            policy: Policy::test(),
            now: t0(),
            expect: Expect {
                target: plan(&[("src", 6), ("map", 5)], 3),
                direction: Direction::Up,
                rescale: true,
                rules: vec![
                    (Rule::CatchUp, Some("src")),
                    (Rule::IoBoundSource, Some("src")),
                    (Rule::Overutilized, Some("src")),
                    (Rule::Ds2Size, Some("map")),
                    (Rule::ScaleUp, None),
                ],
            },
        },
        Case {
            // the sink behind a FORWARD edge keeps the source's parallelism (DS2 alone
            // would give it ceil(2833.3 / (2000/0.2/4 × 0.7)) = 2)
            name: "IO-bound source scales its FORWARD chain",
            obs: io_bound(0.15)
                .vertex("sink", 4, 128)
                .edge("src", "sink", ShipStrategy::Forward)
                .load("sink", 200.0, 2000.0),
            state: JobState::default(),
            policy: Policy::test(),
            now: t0(),
            expect: Expect {
                target: plan(&[("src", 6), ("map", 5), ("sink", 6)], 3),
                direction: Direction::Up,
                rescale: true,
                rules: vec![
                    (Rule::CatchUp, Some("src")),
                    (Rule::IoBoundSource, Some("src")),
                    (Rule::Overutilized, Some("src")),
                    (Rule::Ds2Size, Some("map")),
                    (Rule::IoBoundSource, Some("sink")),
                    (Rule::Overutilized, Some("sink")),
                    (Rule::ScaleUp, None),
                ],
            },
        },
        Case {
            // src is under the band, map (71 %) inside it: a scale-down decision, which
            // waits for its window; map does not grow
            name: "same lag, CPU high: busy time is trusted",
            obs: io_bound(0.8),
            state: JobState::default(),
            policy: Policy::test(),
            now: t0(),
            expect: Expect {
                target: plan(&[("src", 4), ("map", 4)], 2),
                direction: Direction::None,
                rescale: false,
                rules: vec![
                    (Rule::CatchUp, Some("src")),
                    (Rule::Underutilized, Some("src")),
                    (Rule::ScaleDownDelayed, None),
                ],
            },
        },
        Case {
            name: "idle slots: first scale-down recommendation opens the window",
            obs: idle(),
            state: JobState::default(),
            policy: Policy::test(),
            now: t0(),
            expect: Expect {
                target: plan(&[("src", 8), ("map", 8)], 8),
                direction: Direction::None,
                rescale: false,
                rules: vec![
                    (Rule::Underutilized, Some("src")),
                    (Rule::Underutilized, Some("map")),
                    (Rule::ScaleDownDelayed, None),
                ],
            },
        },
        Case {
            name: "idle slots for the whole window: highest recommendation, capped at 50 %",
            obs: idle(),
            state: JobState {
                scale_down_window: Some(window(-301, 5, 3)),
                ..JobState::default()
            },
            policy: Policy::test(),
            now: t0(),
            expect: Expect {
                target: plan(&[("src", 5), ("map", 4)], 5),
                direction: Direction::Down,
                rescale: true,
                rules: vec![
                    (Rule::Underutilized, Some("src")),
                    (Rule::Underutilized, Some("map")),
                    (Rule::ScaleDownCapped, Some("map")),
                    (Rule::ScaleDown, None),
                ],
            },
        },
    ];
    for c in cases {
        check(c);
    }
}

#[test]
fn scale_down_window_keeps_highest_and_clears_on_scale_up() {
    let idle = Observation::test()
        .vertex("src", 8, 128)
        .vertex("map", 8, 128)
        .edge("src", "map", ShipStrategy::Rebalance)
        .load("src", 100.0, 1000.0)
        .load("map", 100.0, 1000.0);
    let policy = policy_with_delay(300);
    // t0: window opens with the recommendation (2, 2)
    let (_, s1) = decide(&idle, &JobState::default(), &policy, t0());
    let w = s1.scale_down_window.clone();
    assert_eq!(
        w.as_ref().map(|w| (w.started_at, w.highest.clone())),
        Some((
            t0(),
            [(vid("map"), 2), (vid("src"), 2)].into_iter().collect()
        )),
    );
    // t0+100: more load, still under the band: true rate 3000/0.3 = 10000 at p=8 →
    // ceil(3000 / (1250 × 0.7)) = 4 for both; the window keeps its start, highest = 4
    let busier = idle
        .clone()
        .load("src", 300.0, 3000.0)
        .load("map", 300.0, 3000.0);
    let (d2, s2) = decide(&busier, &s1, &policy, at(100));
    assert_eq!(
        d2.main_rule(),
        Some(Rule::ScaleDownDelayed),
        "{}",
        d2.summary()
    );
    assert_eq!(
        s2.scale_down_window
            .as_ref()
            .map(|w| (w.started_at, w.highest.clone())),
        Some((
            t0(),
            [(vid("map"), 4), (vid("src"), 4)].into_iter().collect()
        )),
    );
    // t0+301: idle again (recommends 2), but the highest in the window (4) applies
    let loose = Policy {
        max_scale_down_factor: 0.9,
        ..policy.clone()
    };
    let (d3, s3) = decide(&idle, &s2, &loose, at(301));
    let target = d3.target.as_ref().map(|t| t.parallelism.clone());
    assert_eq!(
        target,
        Some([(vid("map"), 4), (vid("src"), 4)].into_iter().collect()),
        "{}",
        d3.summary()
    );
    assert_eq!(d3.main_rule(), Some(Rule::ScaleDown));
    assert!(d3.rescale && s3.scale_down_window.is_none());

    // a scale-up anywhere clears an open window
    let hot = idle.clone().load("map", 950.0, 1000.0);
    let (d4, s4) = decide(&hot, &s2, &policy, at(200));
    assert_eq!(d4.main_rule(), Some(Rule::ScaleUp), "{}", d4.summary());
    assert_eq!(s4.scale_down_window, None);
}

#[test]
fn guards_after_sizing() {
    let l = line();
    let step = l.observe(3000.0, &[4, 8, 8], 0.0);
    let sized = |p: &[(&'static str, u32)], tms| plan(p, tms);
    let step_rules = |last: Rule| {
        vec![
            (Rule::Overutilized, Some("src")),
            (Rule::Overutilized, Some("map")),
            (Rule::Overutilized, Some("agg")),
            (Rule::Aligned, Some("agg")),
            (last, None),
        ]
    };
    let history: Vec<RescaleRecord> = (1..=6)
        .map(|i| RescaleRecord {
            at: at(-500 * i),
            from_task_managers: 4,
            to_task_managers: 8,
        })
        .collect();
    // src 9, map 18, agg 16 (see three_x_step_lands_in_one_decision)
    let full = [("src", 9), ("map", 18), ("agg", 16)];
    let mut catching = Observation::test()
        .vertex("src", 8, 128)
        .vertex("map", 8, 128)
        .edge("src", "map", ShipStrategy::Rebalance)
        .load("src", 100.0, 1000.0)
        .load("map", 100.0, 1000.0)
        .lag("src", 120_000.0, 0.0);
    catching.task_managers_registered = Some(8);
    let cases = vec![
        Case {
            name: "cooldown: 30 s since the last rescale",
            obs: step.clone(),
            state: JobState {
                last_rescale_at: Some(at(-30)),
                ..JobState::default()
            },
            policy: Policy::test(),
            now: t0(),
            expect: Expect {
                target: sized(&full, 18),
                direction: Direction::Up,
                rescale: false,
                rules: step_rules(Rule::Cooldown),
            },
        },
        Case {
            name: "budget: 6 rescales in the last hour",
            obs: step.clone(),
            state: JobState {
                last_rescale_at: Some(at(-500)),
                history: history.clone(),
                ..JobState::default()
            },
            policy: Policy::test(),
            now: t0(),
            expect: Expect {
                target: sized(&full, 18),
                direction: Direction::Up,
                rescale: false,
                rules: step_rules(Rule::BudgetExhausted),
            },
        },
        Case {
            name: "budget refills after an hour",
            obs: step.clone(),
            state: JobState {
                last_rescale_at: Some(at(-500)),
                history: history.iter().skip(1).cloned().collect(),
                ..JobState::default()
            },
            policy: Policy::test(),
            now: t0(),
            expect: Expect {
                target: sized(&full, 18),
                direction: Direction::Up,
                rescale: true,
                rules: step_rules(Rule::ScaleUp),
            },
        },
        Case {
            // 18 slots needed, 6 TMs × 2 slots = 12: each vertex × 12/18
            name: "clamped at max: parallelism shrinks proportionally",
            obs: step.clone().slots(2),
            state: JobState::default(),
            policy: Policy {
                max_task_managers: 6,
                ..Policy::test()
            },
            now: t0(),
            expect: Expect {
                target: sized(&[("src", 6), ("map", 12), ("agg", 10)], 6),
                direction: Direction::Up,
                rescale: true,
                rules: vec![
                    (Rule::Overutilized, Some("src")),
                    (Rule::Overutilized, Some("map")),
                    (Rule::Overutilized, Some("agg")),
                    (Rule::Aligned, Some("agg")),
                    (Rule::ClampedToMax, None),
                    (Rule::ScaleUp, None),
                ],
            },
        },
        Case {
            name: "clamped at min: extra TaskManagers, same parallelism",
            obs: steady(),
            state: JobState::default(),
            policy: Policy {
                min_task_managers: 3,
                ..Policy::test()
            },
            now: t0(),
            expect: Expect {
                target: sized(&[("src", 2), ("map", 2)], 3),
                direction: Direction::Up,
                rescale: false,
                rules: vec![(Rule::ClampedToMin, None), (Rule::WithinBand, None)],
            },
        },
        Case {
            // map needs ceil(1000 / (1000/0.95/4 × 0.7)) = 6 but maxParallelism is 4: it
            // cannot grow, and src's due scale-down still waits (more load never shrinks)
            name: "over-utilized vertex at its limit holds scale-downs",
            obs: Observation::test()
                .vertex("src", 8, 128)
                .vertex("map", 4, 4)
                .edge("src", "map", ShipStrategy::Rebalance)
                .load("src", 100.0, 1000.0)
                .load("map", 950.0, 1000.0),
            state: JobState {
                scale_down_window: Some(ScaleDownWindow {
                    started_at: at(-301),
                    highest: [(vid("src"), 2), (vid("map"), 4)].into_iter().collect(),
                }),
                ..JobState::default()
            },
            policy: Policy::test(),
            now: t0(),
            expect: Expect {
                target: sized(&[("src", 8), ("map", 4)], 8),
                direction: Direction::None,
                rescale: false,
                rules: vec![
                    (Rule::Underutilized, Some("src")),
                    (Rule::ClampedToMaxParallelism, Some("map")),
                    (Rule::Overutilized, Some("map")),
                    (Rule::ScaleDownDelayed, None),
                ],
            },
        },
        Case {
            // 120 s of backlog > 60 s threshold: the idle vertices may not shrink
            name: "no scale-down while catching up",
            obs: catching,
            state: JobState::default(),
            policy: Policy::test(),
            now: t0(),
            expect: Expect {
                target: sized(&[("src", 8), ("map", 8)], 8),
                direction: Direction::None,
                rescale: false,
                rules: vec![
                    (Rule::CatchUp, Some("src")),
                    (Rule::Underutilized, Some("src")),
                    (Rule::Underutilized, Some("map")),
                    (Rule::CatchingUp, None),
                ],
            },
        },
    ];
    for c in cases {
        check(c);
    }
}

fn schedule(kind: ScheduleKind, cron: &str, hours: u64, tms: u32) -> Schedule {
    Schedule {
        name: "peak".into(),
        cron: cron.into(),
        timezone: "Europe/Berlin".into(),
        duration: Duration::from_secs(hours * 3600),
        kind,
        task_managers: tms,
    }
}

#[test]
fn schedules_floor_and_ceiling_across_time_zones() {
    let utc = |m, d, h, min| {
        Utc.with_ymd_and_hms(2026, m, d, h, min, 0)
            .single()
            .unwrap_or_default()
    };
    let floor = Policy {
        schedules: vec![schedule(ScheduleKind::Floor, "0 0 8 * * Mon-Fri", 2, 6)],
        ..Policy::test()
    };
    let steady_at = |now: DateTime<Utc>| Observation {
        running_since: Some(now - chrono::Duration::hours(1)),
        ..steady()
    };
    let pre_scaled = || plan(&[("src", 6), ("map", 6)], 6);
    let held = || plan(&[("src", 2), ("map", 2)], 2);
    let floor_rules = vec![
        (Rule::WithinBand, None),
        (Rule::ScheduleFloor, None),
        (Rule::ScaleUp, None),
    ];
    let mut cases = Vec::new();
    // 06:30 UTC is 08:30 in Berlin in July (CEST) but 07:30 in January (CET)
    for (name, now, open) in [
        ("July 06:30 UTC = 08:30 CEST: open", utc(7, 15, 6, 30), true),
        (
            "July 05:30 UTC = 07:30 CEST: closed",
            utc(7, 15, 5, 30),
            false,
        ),
        (
            "January 06:30 UTC = 07:30 CET: closed",
            utc(1, 15, 6, 30),
            false,
        ),
        (
            "January 07:30 UTC = 08:30 CET: open",
            utc(1, 15, 7, 30),
            true,
        ),
        ("Saturday: closed", utc(7, 18, 6, 30), false),
    ] {
        cases.push(Case {
            name,
            obs: steady_at(now),
            state: JobState::default(),
            policy: floor.clone(),
            now,
            expect: if open {
                Expect {
                    target: pre_scaled(),
                    direction: Direction::Up,
                    rescale: true,
                    rules: floor_rules.clone(),
                }
            } else {
                Expect {
                    target: held(),
                    direction: Direction::None,
                    rescale: false,
                    rules: vec![(Rule::WithinBand, None)],
                }
            },
        });
    }
    // ceiling 4 TaskManagers (t0 = 13:00 CET, inside 08:00 + 12 h): the 3× step needs
    // 18 slots; each vertex × 4/18 → src 2, map 4, agg 3
    cases.push(Case {
        name: "ceiling caps the 3x step",
        obs: line().observe(3000.0, &[4, 8, 8], 0.0),
        state: JobState::default(),
        policy: Policy {
            schedules: vec![schedule(ScheduleKind::Ceiling, "0 0 8 * * *", 12, 4)],
            ..Policy::test()
        },
        now: t0(),
        expect: Expect {
            target: plan(&[("src", 2), ("map", 4), ("agg", 3)], 4),
            direction: Direction::Down,
            rescale: true,
            rules: vec![
                (Rule::Overutilized, Some("src")),
                (Rule::Overutilized, Some("map")),
                (Rule::Overutilized, Some("agg")),
                (Rule::Aligned, Some("agg")),
                (Rule::ScheduleCeiling, None),
                (Rule::ScaleDown, None),
            ],
        },
    });
    for c in cases {
        check(c);
    }
}

#[test]
fn summary_is_one_line_in_firing_order() {
    let (d, _) = decide(&steady(), &JobState::default(), &Policy::test(), t0());
    assert_eq!(d.summary(), "within_band: every vertex within [0.4, 0.85]");
    let (d, _) = decide(
        &line().observe(3000.0, &[4, 8, 8], 0.0),
        &JobState::default(),
        &Policy::test(),
        t0(),
    );
    let s = d.summary();
    let order: Vec<usize> = [
        "overutilized[src]",
        "overutilized[map]",
        "aligned[agg]",
        "scale_up:",
    ]
    .iter()
    .filter_map(|needle| s.find(needle))
    .collect();
    assert_eq!(order.len(), 4, "{s}");
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{s}");
    assert!(!s.contains('\n'));
}

/// Vertical advice is reported (with a reason when it differs from today's size by more
/// than 10 %) and never changes the plan.
#[test]
fn vertical_advice_is_reported_not_applied() {
    let mut obs = steady();
    obs.task_managers = vec![super::observation::TaskManagerSignals {
        tm_id: "tm-0".into(),
        cpu_load: Some(0.3),
        heap_used_bytes: Some(1e9),
        heap_max_bytes: Some(4e9),
        gc_ms_per_s: Some(5.0),
    }];
    check(Case {
        name: "heap over-provisioned",
        obs,
        state: JobState::default(),
        policy: Policy::test(),
        now: t0(),
        expect: Expect {
            target: plan(&[("src", 2), ("map", 2)], 2),
            direction: Direction::None,
            rescale: false,
            rules: vec![(Rule::VerticalAdvice, None), (Rule::WithinBand, None)],
        },
    });
}

//! Sizing: the 3× step in one decision, the seed policies, reasons and vertical advice.

use super::*;

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
    // recommendations made once the signals had settled (the settle time is the test
    // policy's 30 s stabilization)
    let window = |started: i64, src: u32, map: u32| {
        let highest: BTreeMap<crate::VertexId, u32> =
            [(vid("src"), src), (vid("map"), map)].into_iter().collect();
        ScaleDownWindow {
            started_at: at(started),
            settled: highest.clone(),
            // the idle recommendation was seen too: a dip, not a new level
            lowest: [(vid("src"), 2), (vid("map"), 2)].into_iter().collect(),
            draining: false,
            drained_at: None,
            highest,
        }
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
            // src is under the band, map (71 %) inside it: a scale-down decision in which
            // map does not grow; src 4 → 2 next to map at 4 frees no TaskManager: held
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
                    (Rule::NoChange, None),
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
    obs.task_managers = vec![crate::observation::TaskManagerSignals {
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

/// A lagging source with low CPU that is back-pressured, or whose consumer is busier than
/// the target utilization, lags because of its downstream:
/// the IO-bound seed does not apply (a source-only scale-up would absorb nothing), and
/// the downstream vertex is sized by DS2 from the source's target rate.
#[test]
fn a_back_pressured_source_is_not_io_bound() {
    // map busy 0.8 at 2,000 rec/s: the bottleneck (projected 2,833 / 2,500 = 1.13)
    let obs = io_bound(0.15)
        .with("src", |s| s.backpressured_ms_per_s = Some(600.0))
        .load("map", 800.0, 2000.0);
    let (d, _) = decide(&obs, &JobState::default(), &Policy::test(), t0());
    assert!(
        !d.reasons.iter().any(|r| r.rule == Rule::IoBoundSource),
        "no IO-bound seed: {}",
        d.summary()
    );
    let target = d.target.as_ref().expect("a scale-up target");
    assert!(
        target.parallelism.get(&vid("map")).is_some_and(|p| *p > 4),
        "the bottleneck grows: {}",
        d.summary()
    );
    assert!(
        target.parallelism.get(&vid("src")).is_some_and(|p| *p <= 4),
        "the source does not grow: {}",
        d.summary()
    );
    // a consumer busier than the target utilization tells the same without back-pressure
    // (the windows still fill after a step, or the source reports none)
    let busy_consumer = io_bound(0.15).load("map", 800.0, 2000.0);
    let (d, _) = decide(&busy_consumer, &JobState::default(), &Policy::test(), t0());
    assert!(
        !d.reasons.iter().any(|r| r.rule == Rule::IoBoundSource),
        "no IO-bound seed next to a busy consumer: {}",
        d.summary()
    );
    // with neither, the same observation is IO-bound (the `seed_policies` case)
    let (d, _) = decide(&io_bound(0.15), &JobState::default(), &Policy::test(), t0());
    assert!(
        d.reasons.iter().any(|r| r.rule == Rule::IoBoundSource),
        "{}",
        d.summary()
    );
}

/// An edge's output ratio comes from the upstream's own counters when it has one,
/// non-broadcast output: records in flight between the two (buffers filling as
/// back-pressure starts) do not skew it. A broadcast edge still reads the downstream's
/// records in (every copy is work for it).
#[test]
fn edge_ratios_read_the_upstreams_own_counters() {
    use crate::{edge_output_ratio, inputs::validate};
    let mut obs = keyed_line_for_ratio();
    // the source sent 1,266 records/s, the keyed operator read 885 of them so far
    if let Some(v) = obs.vertices.get_mut(&vid("src")) {
        v.records_in_per_s = Some(1266.0);
        v.records_out_per_s = Some(1266.0);
    }
    if let Some(v) = obs.vertices.get_mut(&vid("map")) {
        v.records_in_per_s = Some(885.0);
    }
    let inputs = validate(&obs).expect("valid signals");
    let r = edge_output_ratio(&obs.topology, &inputs, &vid("src"), &vid("map"));
    assert!((r - 1.0).abs() < 1e-9, "{r}");
    obs.topology.edges[0].ship_strategy = ShipStrategy::Broadcast;
    let r = edge_output_ratio(&obs.topology, &inputs, &vid("src"), &vid("map"));
    assert!((r - 885.0 / 1266.0).abs() < 1e-9, "{r}");
}

/// `src → map` (HASH) at parallelism 2 and 2.
fn keyed_line_for_ratio() -> Observation {
    super::settle::keyed_line().observe(1000.0, &[2, 2], 0.0)
}

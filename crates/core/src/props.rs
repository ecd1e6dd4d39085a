//! Property tests of the decision core: bounds always hold, bad signals give "no decision"
//! with a reason (never a panic, never a zero), more load never yields fewer
//! TaskManagers, and alignment never cancels or inverts a scale.

use std::time::Duration;

use proptest::prelude::*;

use super::{
    align::align,
    decide::decide,
    decision::{Decision, Rule},
    fixtures::t0,
    observation::Observation,
    policy::Policy,
    state::JobState,
    topology::ShipStrategy,
};

/// One generated vertex: parallelism, maxParallelism, busy ms/s, rate, input picks.
#[derive(Debug, Clone)]
struct GenVertex {
    parallelism: u32,
    max_parallelism: u32,
    busy: f64,
    rate: f64,
    ratio: f64,
    /// Index seeds for the upstream vertices (reduced modulo the position).
    inputs: Vec<usize>,
    ship: ShipStrategy,
    group: u8,
    pending: Option<f64>,
    growth: f64,
    partitions: Option<u32>,
}

fn ship() -> impl Strategy<Value = ShipStrategy> {
    prop_oneof![
        Just(ShipStrategy::Hash),
        Just(ShipStrategy::Rebalance),
        Just(ShipStrategy::Forward),
        Just(ShipStrategy::Broadcast),
    ]
}

fn gen_vertex() -> impl Strategy<Value = GenVertex> {
    (
        prop_oneof![Just(128u32), Just(720u32), 1u32..=64],
        0.0f64..=1.0,
        0.0f64..=1000.0,
        0.0f64..1e5,
        0.1f64..3.0,
        prop::collection::vec(any::<usize>(), 1..=2),
        ship(),
        0u8..3,
        prop::option::of(0.0f64..1e7),
        -1e3f64..1e3,
        prop::option::of(prop_oneof![
            Just(3u32),
            Just(5),
            Just(7),
            Just(11),
            Just(13),
            1u32..=64
        ]),
    )
        .prop_map(
            |(max_p, pf, busy, rate, ratio, inputs, ship, group, pending, growth, partitions)| {
                GenVertex {
                    parallelism: ((f64::from(max_p) * pf).ceil() as u32).clamp(1, max_p),
                    max_parallelism: max_p,
                    busy,
                    rate,
                    ratio,
                    inputs,
                    ship,
                    group,
                    pending,
                    growth,
                    partitions,
                }
            },
        )
}

/// A random DAG job (vertex i reads from earlier vertices only).
fn build(vs: &[GenVertex], slots: u32) -> Observation {
    let mut obs = Observation::test().slots(slots);
    for (i, v) in vs.iter().enumerate() {
        let name = format!("v{i}");
        obs = obs
            .vertex(&name, v.parallelism, v.max_parallelism)
            .group(&name, &format!("g{}", v.group))
            .load(&name, v.busy, v.rate)
            .with(&name, |s| s.records_out_per_s = Some(v.rate * v.ratio));
        if i == 0 || v.inputs.first().is_some_and(|s| s % 3 == 0) {
            // a source
            obs = obs.with(&name, |s| {
                s.pending_records = v.pending;
                s.lag_growth_per_s = Some(v.growth);
                s.partitions = v.partitions;
            });
        } else {
            let mut ups: Vec<usize> = v.inputs.iter().map(|s| s % i).collect();
            ups.sort_unstable();
            ups.dedup();
            for u in ups {
                obs = obs.edge(&format!("v{u}"), &name, v.ship);
            }
        }
    }
    obs
}

fn gen_policy() -> impl Strategy<Value = Policy> {
    (
        0u32..5,
        0u32..60,
        prop_oneof![Just(0u64), Just(300)],
        0.0f64..=1.0,
        any::<bool>(),
    )
        .prop_map(|(min, span, delay, io, slots_in_policy)| Policy {
            min_task_managers: min,
            max_task_managers: min + span,
            scale_down_delay: Duration::from_secs(delay),
            io_bound_cpu_max: io,
            slots_per_task_manager: slots_in_policy.then_some(3),
            ..Policy::test()
        })
}

/// Asserts the bounds of a decision with a target.
fn assert_bounds(d: &Decision, obs: &Observation, p: &Policy) -> Result<(), TestCaseError> {
    prop_assert!(!d.reasons.is_empty(), "a decision always has a reason");
    let Some(t) = &d.target else {
        return Ok(());
    };
    let hi = p.max_task_managers.max(p.min_task_managers);
    prop_assert!(
        (p.min_task_managers..=hi).contains(&t.task_managers),
        "TMs {} outside [{}, {hi}]: {}",
        t.task_managers,
        p.min_task_managers,
        d.summary()
    );
    prop_assert_eq!(t.parallelism.len(), obs.topology.vertices.len());
    for v in &obs.topology.vertices {
        let got = t.parallelism.get(&v.id).copied().unwrap_or(0);
        prop_assert!(
            (1..=v.max_parallelism).contains(&got),
            "{} parallelism {got} outside [1, {}]: {}",
            v.id,
            v.max_parallelism,
            d.summary()
        );
    }
    Ok(())
}

fn target_tms(d: &Decision) -> u32 {
    d.target.as_ref().map_or(0, |t| t.task_managers)
}

// 256 cases by default; PROPTEST_CASES=5000 for a longer run.
proptest! {

    #[test]
    fn decisions_stay_within_bounds(
        vs in prop::collection::vec(gen_vertex(), 1..10),
        slots in 1u32..8,
        cpu in 0.0f64..1.0,
        policy in gen_policy(),
    ) {
        let obs = build(&vs, slots).cpu(2, cpu);
        let (d, _) = decide(&obs, &JobState::default(), &policy, t0());
        prop_assert!(d.target.is_some(), "valid signals decide: {}", d.summary());
        assert_bounds(&d, &obs, &policy)?;
    }

    /// While a vertex is over-utilized no vertex shrinks, even when the maximum clamps
    /// the growth (the clamp takes growth away only), as long as what runs fits the
    /// maximum: no "scale_down: 4 → 4" rescale of a held vertex.
    #[test]
    fn the_max_clamp_never_shrinks_a_vertex_while_another_is_over(
        vs in prop::collection::vec(gen_vertex(), 1..8),
        slots in 1u32..4,
        room in 0u32..4,
    ) {
        let obs = build(&vs, slots);
        let current = obs.topology.parallelism();
        let running = super::slots::task_managers_for(&obs.topology, &current, slots);
        let policy = Policy { max_task_managers: running + room, ..Policy::test() };
        let (d, _) = decide(&obs, &JobState::default(), &policy, t0());
        prop_assume!(d.reasons.iter().any(|r| r.rule == Rule::Overutilized));
        let target = d.target.clone().ok_or_else(|| TestCaseError::fail(d.summary()))?;
        for (v, c) in &current {
            let t = target.parallelism.get(v).copied().unwrap_or(*c);
            prop_assert!(t >= *c, "{v}: {c} → {t}: {}", d.summary());
        }
    }

    /// A scale-down that is applied (no vertex grows, some shrinks) always frees at least
    /// one TaskManager: the plan needs fewer than what runs, the minimum included. No
    /// exception: a vertex above its need is kept (held) rather than restarted for nothing.
    /// Lines of vertices with consistent signals at random parallelism (narrow vertices
    /// next to wide ones, each in one of two slot sharing groups).
    #[test]
    fn an_applied_scale_down_frees_a_task_manager(
        vs in prop::collection::vec((100.0f64..5000.0, any::<bool>(), 1u32..=12, 0u8..2), 2..5),
        rate in 10.0f64..20_000.0,
        slots in 1u32..4,
        min in 0u32..4,
        factor in prop_oneof![Just(0.5f64), Just(0.9), Just(1.0)],
    ) {
        let names = ["v0", "v1", "v2", "v3", "v4"];
        let line = super::fixtures::Line {
            vertices: vs
                .iter()
                .enumerate()
                .map(|(i, (cap, keyed, ..))| (names[i], 120, *cap, *keyed && i > 0))
                .collect(),
        };
        let parallelism: Vec<u32> = vs.iter().map(|v| v.2).collect();
        let mut obs = line.observe(rate, &parallelism, 0.0).slots(slots);
        for (i, v) in vs.iter().enumerate() {
            obs = obs.group(names[i], &format!("g{}", v.3));
        }
        let policy = Policy {
            min_task_managers: min,
            scale_down_delay: Duration::ZERO,
            signal_settle: Some(Duration::ZERO),
            max_scale_down_factor: factor,
            ..Policy::test()
        };
        let (d, _) = decide(&obs, &JobState::default(), &policy, t0());
        let current = obs.topology.parallelism();
        let target = d.target.clone().ok_or_else(|| TestCaseError::fail(d.summary()))?;
        let grows = target.parallelism.iter().any(|(v, p)| current.get(v).is_some_and(|c| p > c));
        let shrinks = target.parallelism.iter().any(|(v, p)| current.get(v).is_some_and(|c| p < c));
        let running = super::slots::task_managers_for(&obs.topology, &current, slots);
        if d.rescale && shrinks && !grows {
            prop_assert!(
                target.task_managers < running.max(min),
                "{running} → {} TMs: {}", target.task_managers, d.summary()
            );
        }
    }

    #[test]
    fn bad_signals_give_no_decision_with_a_reason(
        vs in prop::collection::vec(gen_vertex(), 1..8),
        pick in any::<usize>(),
        which in 0usize..3,
        bad in prop_oneof![Just(Some(f64::NAN)), Just(Some(f64::INFINITY)), Just(Some(f64::NEG_INFINITY)), Just(None)],
    ) {
        let obs = build(&vs, 2);
        let victim = format!("v{}", pick % vs.len());
        let obs = obs.with(&victim, |s| match which {
            0 => s.busy_ms_per_s = bad,
            1 => s.records_in_per_s = bad,
            _ => {
                s.busy_ms_per_s = bad;
                s.records_in_per_s = bad;
            }
        });
        let (d, s) = decide(&obs, &JobState::default(), &Policy::test(), t0());
        prop_assert_eq!(d.target, None);
        prop_assert!(!d.rescale);
        prop_assert_eq!(s, JobState::default());
        prop_assert_eq!(d.reasons.len(), 1);
        prop_assert_eq!(d.reasons[0].rule, Rule::MissingSignal);
        prop_assert!(d.reasons[0].vertex.is_some());
    }

    #[test]
    fn arbitrary_floats_never_panic(
        vs in prop::collection::vec(gen_vertex(), 1..6),
        junk in prop::collection::vec(any::<f64>(), 12),
        policy in gen_policy(),
    ) {
        let mut obs = build(&vs, 2);
        for (i, (_, s)) in obs.vertices.iter_mut().enumerate() {
            let j = |k: usize| junk[(i * 5 + k) % junk.len()];
            s.busy_ms_per_s = Some(j(0));
            s.records_in_per_s = Some(j(1));
            s.records_out_per_s = Some(j(2));
            s.pending_records = s.pending_records.map(|_| j(3));
            s.lag_growth_per_s = s.lag_growth_per_s.map(|_| j(4));
        }
        let policy = Policy { target_utilization: junk[0], max_scale_down_factor: junk[1], ..policy };
        let (d, _) = decide(&obs, &JobState::default(), &policy, t0());
        assert_bounds(&d, &obs, &policy)?;
    }

    #[test]
    fn extreme_durations_never_panic(
        vs in prop::collection::vec(gen_vertex(), 1..5),
        secs in prop_oneof![Just(0u64), Just(1), Just(u64::MAX)],
        offset in prop_oneof![Just(i64::MIN / 4), Just(-1i64), Just(0), Just(i64::MAX / 4)],
        window in any::<bool>(),
        guard_stabilization in any::<bool>(),
    ) {
        let long = Duration::from_secs(secs);
        let policy = Policy {
            stabilization: if guard_stabilization { long } else { Duration::ZERO },
            scale_down_delay: long,
            cooldown: long,
            catch_up_duration: long,
            backlog_threshold: long,
            // a zero-length window is refused when built (never open, as before)
            schedules: super::schedule::Schedule::new(
                "s",
                "0 0 * * * *",
                "Europe/Berlin",
                long,
                super::schedule::ScheduleKind::Floor,
                3,
            )
            .into_iter()
            .collect(),
            ..Policy::test()
        };
        let when = t0()
            .checked_add_signed(chrono::Duration::milliseconds(offset))
            .unwrap_or(t0());
        let obs = Observation { running_since: Some(when), ..build(&vs, 2) };
        let state = JobState {
            last_rescale_at: Some(when),
            scale_down_window: window.then(|| super::state::ScaleDownWindow {
                started_at: when,
                highest: Default::default(),
                settled: Default::default(),
                lowest: Default::default(),
                draining: false,
                drained_at: None,
            }),
            scale_up_window: None,
            history: Vec::new(),
            report: Default::default(),
            trend: Default::default(),
        };
        let (d, _) = decide(&obs, &state, &policy, t0());
        assert_bounds(&d, &obs, &policy)?;
    }

    #[test]
    fn more_lag_never_fewer_task_managers(
        vs in prop::collection::vec(gen_vertex(), 1..8),
        extra in 0.0f64..1e7,
        policy in gen_policy(),
        cpu in 0.0f64..1.0,
    ) {
        let base = build(&vs, 2).cpu(1, cpu);
        let sources: Vec<_> = base.topology.vertices.iter()
            .filter(|v| base.topology.is_source(&v.id)).map(|v| v.id.to_string()).collect();
        let mut more = base.clone();
        for s in &sources {
            more = more.with(s, |x| x.pending_records = Some(x.pending_records.unwrap_or(0.0) + extra));
        }
        let (d1, _) = decide(&base, &JobState::default(), &policy, t0());
        let (d2, _) = decide(&more, &JobState::default(), &policy, t0());
        prop_assert!(target_tms(&d2) >= target_tms(&d1), "{} TMs with more lag vs {}: {} | {}",
            target_tms(&d2), target_tms(&d1), d2.summary(), d1.summary());
    }

    #[test]
    fn more_input_never_fewer_task_managers(
        vs in prop::collection::vec(gen_vertex(), 1..8),
        k in 1.0f64..4.0,
        policy in gen_policy(),
    ) {
        // scale rates and busy time together (same true rate), no backlog
        let vs: Vec<GenVertex> = vs.into_iter().map(|v| GenVertex {
            busy: v.busy / k, pending: None, growth: 0.0, ..v
        }).collect();
        let base = build(&vs, 2);
        let mut more = base.clone();
        for (_, s) in more.vertices.iter_mut() {
            s.busy_ms_per_s = s.busy_ms_per_s.map(|b| b * k);
            s.records_in_per_s = s.records_in_per_s.map(|r| r * k);
            s.records_out_per_s = s.records_out_per_s.map(|r| r * k);
        }
        let (d1, _) = decide(&base, &JobState::default(), &policy, t0());
        let (d2, _) = decide(&more, &JobState::default(), &policy, t0());
        prop_assert!(target_tms(&d2) >= target_tms(&d1), "{} TMs at ×{k} vs {}: {} | {}",
            target_tms(&d2), target_tms(&d1), d2.summary(), d1.summary());
    }

    #[test]
    fn alignment_never_cancels_or_inverts(
        n in prop_oneof![Just(3u32), Just(5), Just(7), Just(11), Just(13), Just(128), Just(720)],
        max_p in prop_oneof![Just(128u32), Just(720)],
        current in 1u32..=720,
        required in 1u32..=720,
    ) {
        let required = required.min(max_p);
        let got = align(current, required, n, max_p);
        prop_assert!((1..=max_p).contains(&got));
        prop_assert_eq!(got.cmp(&current), required.cmp(&current),
            "align({}, {}, {}, {}) = {}", current, required, n, max_p, got);
    }

    #[test]
    fn alignment_is_monotone_in_required(
        n in prop_oneof![Just(3u32), Just(5), Just(7), Just(11), Just(13), Just(128), Just(720)],
        max_p in prop_oneof![Just(128u32), Just(720)],
        current in 1u32..=128,
        a in 1u32..=128,
        b in 1u32..=128,
    ) {
        let (lo, hi) = (a.min(b), a.max(b));
        prop_assert!(align(current, lo, n, max_p) <= align(current, hi, n, max_p));
    }
}

/// Vertex names of the step lines.
const STEP_NAMES: [&str; 4] = ["v0", "v1", "v2", "v3"];

/// A line of vertices with capacities `caps` (keyed where set, never the source).
fn step_line(caps: &[(f64, bool)], keyed_max: u32) -> super::fixtures::Line {
    super::fixtures::Line {
        vertices: caps
            .iter()
            .enumerate()
            .map(|(i, (cap, keyed))| (STEP_NAMES[i], keyed_max, *cap, *keyed && i > 0))
            .collect(),
    }
}

/// No vertex of `line` lands more than one parallelism step below what `rate` needs.
fn at_most_one_step_short(
    d: &Decision,
    line: &super::fixtures::Line,
    rate: f64,
    utilization: f64,
) -> Result<(), TestCaseError> {
    let target = d
        .target
        .clone()
        .ok_or_else(|| TestCaseError::fail(d.summary()))?;
    for (i, v) in line.vertices.iter().enumerate() {
        let need = line.optimal(i, rate, utilization);
        let got = target
            .parallelism
            .get(&super::fixtures::vid(v.0))
            .copied()
            .unwrap_or(0);
        prop_assert!(
            got + 1 >= need,
            "{}: {got} for {need} at {rate:.0} rec/s: {}",
            v.0,
            d.summary()
        );
    }
    Ok(())
}

proptest! {
    /// Arrival-rate sizing: a load step on a line of vertices, observed once the signals
    /// show it (the bottleneck saturated, busy at 1.0, consuming its capacity; the
    /// backlog growing by the rest), is sized in one decision: no vertex lands more than
    /// one parallelism step below what the new rate needs at the target utilization.
    #[test]
    fn arrival_rate_sizing_never_under_sizes_a_step_by_more_than_one(
        caps in prop::collection::vec((100.0f64..5000.0, any::<bool>()), 2..4),
        before in 1u32..=8,
        factor in 1.2f64..6.0,
        pending in 0.0f64..1e5,
        keyed_max in prop_oneof![Just(120u32), Just(128)],
    ) {
        let line = step_line(&caps, keyed_max);
        let policy = Policy::test();
        let parallelism = vec![before; caps.len()];
        let capacity = caps
            .iter()
            .map(|(c, _)| c * f64::from(before))
            .fold(f64::INFINITY, f64::min);
        let rate = capacity * factor;
        let fits = (0..caps.len())
            .all(|i| line.optimal(i, rate, policy.target_utilization) <= 60);
        prop_assume!(fits);
        let obs = line.observe(rate, &parallelism, pending);
        let (d, _) = decide(&obs, &JobState::default(), &policy, t0());
        at_most_one_step_short(&d, &line, rate, policy.target_utilization)?;
    }

    /// The same step seen while the load windows still fill: the source's short-window
    /// arrival holds the whole step, its consumption and lag growth only part of it, and
    /// records in flight make every downstream vertex read less than its upstream sent.
    /// The step is still sized in one decision, no vertex more than one step short.
    #[test]
    fn a_filling_window_with_the_arrival_still_sizes_the_step(
        caps in prop::collection::vec((100.0f64..5000.0, any::<bool>()), 2..4),
        before in 1u32..=8,
        factor in 1.2f64..6.0,
        filled in 0.0f64..1.0,
        in_flight in 0.5f64..1.0,
    ) {
        let line = step_line(&caps, 120);
        let policy = Policy::test();
        let capacity = caps
            .iter()
            .map(|(c, _)| c * f64::from(before))
            .fold(f64::INFINITY, f64::min);
        let rate = capacity * factor;
        prop_assume!((0..caps.len()).all(|i| line.optimal(i, rate, policy.target_utilization) <= 60));
        let mut obs = line.observe(capacity + (rate - capacity) * filled, &vec![before; caps.len()], 0.0);
        for (i, name) in STEP_NAMES.iter().take(caps.len()).enumerate() {
            let v = obs.vertices.get_mut(&super::fixtures::vid(name));
            let v = v.ok_or_else(|| TestCaseError::fail("vertex"))?;
            if i == 0 {
                v.arrival_per_s = Some(rate);
            } else {
                v.records_in_per_s = v.records_in_per_s.map(|r| r * in_flight);
            }
        }
        let (d, _) = decide(&obs, &JobState::default(), &policy, t0());
        // in-flight records over-size the downstream; the clamps then cut every vertex
        prop_assume!(!d.reasons.iter().any(|r| matches!(r.rule, Rule::ClampedToMax | Rule::ClampedToMaxParallelism)));
        at_most_one_step_short(&d, &line, rate, policy.target_utilization)?;
    }

    /// The O(V + E) order of the DS2 graph index is exactly `Topology::topological_order`
    /// (same tie-breaking, same refusals), on random graphs with cycles and dangling edges.
    #[test]
    fn graph_order_matches_topology_order(
        n in 1usize..10,
        edges in prop::collection::vec((0usize..11, 0usize..11), 0..20),
    ) {
        let mut obs = Observation::test();
        for i in 0..n {
            obs = obs.vertex(&format!("v{i}"), 1, 1);
        }
        for (a, b) in edges {
            obs = obs.edge(&format!("v{a}"), &format!("v{b}"), ShipStrategy::Rebalance);
        }
        let t = &obs.topology;
        let ours = super::graph::Graph::new(t).topological_order().map(|o| {
            o.into_iter().map(|i| t.vertices[i].id.clone()).collect::<Vec<_>>()
        });
        prop_assert_eq!(ours, t.topological_order());
    }
}

//! Table-driven tests of [`super::decide::decide`]: each case asserts the whole decision
//! — target plan (or none), TaskManagers, direction, rescale flag and the exact sequence
//! of (rule, vertex) reasons — plus the state it hands back. The harness lives here; the
//! tables live in `decide_tests/*.rs` by topic.

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

mod anti_flap;
mod frees;
mod guards;
mod schedules;
mod settle;
mod sizing;

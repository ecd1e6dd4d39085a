//! Refusals: no target, one reason naming the rule (and the vertex, for signals).

use super::*;

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

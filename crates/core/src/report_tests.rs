//! The report to KEDA: a decision table (steady, spare, degraded, restarting, scale-up,
//! drain) and properties (never below what the running parallelism needs; never rising
//! while a scale-down drains).

use std::time::Duration;

use chrono::{DateTime, Utc};
use proptest::prelude::*;

use super::*;
use crate::{
    decision::Plan,
    fixtures::vid,
    ids::JobId,
    observation::Observation,
    rescale::{FailoverWatch, RescalePhase, RescaleTimeouts},
};

fn topology(p: u32) -> Topology {
    Observation::test()
        .vertex("src", p, 120)
        .vertex("agg", p, 120)
        .topology
}

fn par(p: u32) -> BTreeMap<VertexId, u32> {
    [(vid("src"), p), (vid("agg"), p)].into_iter().collect()
}

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default()
}

fn rescale(from: u32, to: u32, phase: RescalePhase) -> Rescale {
    let job: JobId = "0123456789abcdef0123456789abcdef"
        .parse()
        .expect("a job id");
    let mut r = Rescale::new(
        job,
        Plan {
            parallelism: par(from),
            task_managers: from,
        },
        Plan {
            parallelism: par(to),
            task_managers: to,
        },
        t0(),
        &RescaleTimeouts::default(),
        Some(Duration::from_secs(2)),
        FailoverWatch::new(Some(0), None),
    );
    r.phase = phase;
    r
}

fn policy(spare: u32) -> Policy {
    Policy {
        min_task_managers: 1,
        max_task_managers: 8,
        spare_task_managers: spare,
        ..Policy::default()
    }
}

struct Case {
    name: &'static str,
    running: u32,
    slots_now: Option<u32>,
    requirements: Option<u32>,
    rescale: Option<Rescale>,
    /// A settling scale-up's recommendation (every vertex at this parallelism).
    settling: Option<u32>,
    memory: ReportMemory,
    policy: Policy,
    expect: Result<(u32, Basis), ReportError>,
}

fn steady(name: &'static str, running: u32, policy: Policy) -> Case {
    Case {
        name,
        running,
        slots_now: Some(1),
        requirements: Some(running),
        rescale: None,
        settling: None,
        memory: ReportMemory::default(),
        policy,
        expect: Ok((running, Basis::Running)),
    }
}

fn remembered(slots: Option<u32>, reported: Option<u32>) -> ReportMemory {
    ReportMemory {
        requirements: None,
        slots_per_task_manager: slots,
        reported,
    }
}

#[test]
fn decision_table() {
    let cases = vec![
        steady("steady: what the running parallelism needs", 2, policy(0)),
        Case {
            expect: Ok((4, Basis::Running)),
            ..steady("a spare of 2 on top", 2, policy(2))
        },
        Case {
            expect: Ok((8, Basis::Running)),
            ..steady("the spare is bounded by maxTaskManagers", 6, policy(4))
        },
        Case {
            expect: Ok((3, Basis::Minimum)),
            ..steady(
                "the minimum",
                2,
                Policy {
                    min_task_managers: 3,
                    ..policy(0)
                },
            )
        },
        Case {
            name: "one TaskManager lost: the requirements, not the degraded parallelism",
            running: 1,
            requirements: Some(2),
            expect: Ok((2, Basis::Requirements)),
            ..steady("", 1, policy(0))
        },
        Case {
            name: "no TaskManager registered (RESTARTING): remembered slots, the requirements",
            running: 2,
            slots_now: None,
            requirements: Some(2),
            memory: remembered(Some(1), Some(2)),
            expect: Ok((2, Basis::Running)),
            ..steady("", 2, policy(0))
        },
        Case {
            name: "no TaskManager and nothing remembered: an error, never a guess",
            running: 2,
            slots_now: None,
            requirements: Some(2),
            memory: remembered(None, Some(2)),
            expect: Err(ReportError::SlotsUnknown),
            ..steady("", 2, policy(0))
        },
        Case {
            name: "no TaskManager, the policy's slots",
            running: 4,
            slots_now: None,
            requirements: Some(4),
            expect: Ok((2, Basis::Running)),
            ..steady(
                "",
                4,
                Policy {
                    slots_per_task_manager: Some(2),
                    ..policy(0)
                },
            )
        },
        Case {
            name: "requirements above what maxTaskManagers allow count at the max",
            running: 2,
            requirements: Some(1000),
            expect: Ok((8, Basis::Requirements)),
            ..steady("", 2, policy(0))
        },
        Case {
            name: "scale-up in flight: the target, the spare only once it completed",
            running: 2,
            rescale: Some(rescale(2, 6, RescalePhase::Applying)),
            expect: Ok((6, Basis::ScaleUp)),
            ..steady("", 2, policy(2))
        },
        Case {
            name:
                "scale-up onto the spare in flight: what it started from (6 registered, 5 needed)",
            running: 2,
            rescale: Some({
                let mut r = rescale(2, 5, RescalePhase::Applying);
                r.from.task_managers = 6;
                r
            }),
            expect: Ok((6, Basis::ScaleUp)),
            ..steady("", 2, policy(4))
        },
        Case {
            name: "scale-up settling: what its recommendation needs, pods start now",
            running: 2,
            settling: Some(6),
            expect: Ok((6, Basis::Settling)),
            ..steady("", 2, policy(0))
        },
        Case {
            name: "scale-up settling within the spare: nothing more until the PUT",
            running: 2,
            settling: Some(5),
            expect: Ok((6, Basis::Running)),
            ..steady("", 2, policy(4))
        },
        Case {
            name: "scale-up settling beyond the spare: what it needs, no spare on top yet",
            running: 2,
            settling: Some(7),
            expect: Ok((7, Basis::Settling)),
            ..steady("", 2, policy(4))
        },
        Case {
            name: "a dry run never asks for a settling scale-up's pods",
            running: 2,
            settling: Some(6),
            expect: Ok((2, Basis::Running)),
            ..steady(
                "",
                2,
                Policy {
                    dry_run: true,
                    ..policy(0)
                },
            )
        },
        Case {
            name: "a scale-up waiting for its TaskManagers, a raise settling: its pods start now",
            running: 2,
            requirements: Some(5),
            rescale: Some(rescale(2, 5, RescalePhase::Applying)),
            settling: Some(6),
            expect: Ok((6, Basis::Settling)),
            ..steady("", 2, policy(0))
        },
        Case {
            name: "a raise settling below the scale-up's target: the target",
            running: 2,
            requirements: Some(5),
            rescale: Some(rescale(2, 5, RescalePhase::Applying)),
            settling: Some(4),
            expect: Ok((5, Basis::ScaleUp)),
            ..steady("", 2, policy(0))
        },
        Case {
            name: "never a settling recommendation under a scale-down",
            running: 6,
            requirements: Some(2),
            rescale: Some(rescale(6, 2, RescalePhase::Applying)),
            settling: Some(8),
            memory: remembered(None, Some(6)),
            expect: Ok((6, Basis::Draining)),
            ..steady("", 6, policy(0))
        },
        Case {
            name: "a settling recommendation counts at most maxTaskManagers",
            running: 2,
            settling: Some(50),
            expect: Ok((8, Basis::Settling)),
            ..steady("", 2, policy(0))
        },
        Case {
            name: "scale-down applying: the count before it",
            running: 6,
            requirements: Some(2),
            rescale: Some(rescale(6, 2, RescalePhase::Applying)),
            settling: None,
            memory: remembered(None, Some(6)),
            expect: Ok((6, Basis::Draining)),
            ..steady("", 6, policy(0))
        },
        Case {
            name: "scale-down draining: the count before it until the surplus is idle",
            running: 2,
            requirements: Some(2),
            rescale: Some(rescale(6, 2, RescalePhase::Draining)),
            settling: None,
            memory: remembered(None, Some(6)),
            expect: Ok((6, Basis::Draining)),
            ..steady("", 2, policy(0))
        },
        Case {
            name: "a drain never rises above the previous report (spare not refilled yet)",
            running: 2,
            requirements: Some(2),
            rescale: Some(rescale(6, 2, RescalePhase::Draining)),
            settling: None,
            memory: remembered(None, Some(7)),
            expect: Ok((7, Basis::Draining)),
            ..steady("", 2, policy(2))
        },
        Case {
            name: "scale-down completed: the target plus the spare",
            running: 2,
            rescale: Some(rescale(6, 2, RescalePhase::Completed)),
            settling: None,
            memory: remembered(None, Some(8)),
            expect: Ok((4, Basis::Running)),
            ..steady("", 2, policy(2))
        },
    ];
    for c in cases {
        let req = c.requirements.map(par);
        let settling = c.settling.map(par);
        let t = topology(c.running);
        let got = task_managers_to_report(ReportInputs {
            topology: &t,
            slots_now: c.slots_now,
            requirements: req.as_ref(),
            rescale: c.rescale.as_ref(),
            settling: settling.as_ref(),
            memory: &c.memory,
            policy: &c.policy,
        })
        .map(|r| {
            assert!(r.task_managers >= r.running, "{}: {r:?}", c.name);
            (r.task_managers, r.basis)
        });
        assert_eq!(got, c.expect, "{}", c.name);
    }
}

proptest! {
    /// Whatever the rescale, phase, requirements, memory and policy: the report is never
    /// below what the running parallelism needs.
    #[test]
    fn never_below_what_the_running_parallelism_needs(
        running in 1u32..=64,
        from in 1u32..=64,
        to in 1u32..=64,
        phase in 0usize..5,
        requirements in prop::option::of(1u32..=200),
        previous in prop::option::of(0u32..=80),
        slots in 1u32..=4,
        spare in 0u32..=8,
        (min, max) in (1u32..=8, 0u32..=40).prop_map(|(a, b)| (a, a + b)),
    ) {
        let phases = [
            RescalePhase::Pending,
            RescalePhase::Applying,
            RescalePhase::Draining,
            RescalePhase::Completed,
            RescalePhase::TimedOut,
        ];
        let r = rescale(from, to, phases[phase]);
        let p = Policy {
            min_task_managers: min,
            max_task_managers: max,
            spare_task_managers: spare,
            slots_per_task_manager: Some(slots),
            ..Policy::default()
        };
        let t = topology(running);
        let req = requirements.map(par);
        let memory = remembered(None, previous);
        let got = task_managers_to_report(ReportInputs {
            topology: &t,
            slots_now: Some(slots),
            requirements: req.as_ref(),
            rescale: Some(&r),
            settling: None,
            memory: &memory,
            policy: &p,
        });
        let Ok(got) = got else {
            return Err(TestCaseError::fail("slots are known"));
        };
        prop_assert!(got.task_managers >= running.div_ceil(slots));
        prop_assert!(got.task_managers >= min);
    }

    /// A scale-down from `from` to `to` observed tick by tick (the job restarting at any
    /// parallelism between the two, then at `to`, the phase moving on): the report never
    /// rises while it drains, and is what `to` needs plus the spare once it completed.
    #[test]
    fn monotone_during_a_drain(
        from in 2u32..=8,
        down in 1u32..=7,
        spare in 0u32..=4,
        running in prop::collection::vec(0u32..=8, 1..12),
    ) {
        let to = from.saturating_sub(down).max(1);
        let p = policy(spare);
        let mut memory = ReportMemory::default();
        let mut last = None::<u32>;
        let ticks = running.len();
        for (i, r) in running.iter().enumerate() {
            let phase = match i {
                0 => RescalePhase::Applying,
                i if i + 1 == ticks => RescalePhase::Completed,
                _ => RescalePhase::Draining,
            };
            // Flink runs at the old parallelism, then anywhere down to the target
            let now_running = if i == 0 { from } else { (*r).clamp(to, from) };
            let t = topology(now_running);
            let resc = rescale(from, to, phase);
            let req = par(to);
            let got = task_managers_to_report(ReportInputs {
                topology: &t,
                slots_now: Some(1),
                requirements: Some(&req),
                rescale: Some(&resc),
                settling: None,
                memory: &memory,
                policy: &p,
            });
            let Ok(got) = got else {
                return Err(TestCaseError::fail("slots are known"));
            };
            if phase != RescalePhase::Completed {
                if let Some(l) = last {
                    prop_assert!(got.task_managers <= l, "rose {l} → {}", got.task_managers);
                }
            }
            prop_assert!(got.task_managers >= now_running);
            memory.reported = Some(got.task_managers);
            last = Some(got.task_managers);
        }
    }
}

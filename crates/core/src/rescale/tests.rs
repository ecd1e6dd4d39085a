//! The rescale state machine's transitions, phase by phase, and what it reports to KEDA.

use super::*;
use crate::topology::Vertex;

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).expect("valid timestamp")
}
fn secs(s: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::seconds(s)
}
fn plan(p: u32, tms: u32) -> Plan {
    Plan {
        parallelism: [(VertexId::new("a"), p), (VertexId::new("b"), p)].into(),
        task_managers: tms,
    }
}
fn tms(slots: &[(u32, u32)]) -> Vec<TaskManagerSlots> {
    slots
        .iter()
        .enumerate()
        .map(|(i, (total, free))| TaskManagerSlots {
            id: format!("tm{i}"),
            slots_total: *total,
            slots_free: *free,
        })
        .collect()
}
fn obs(at: i64, status: JobStatus, p: u32, slots: &[(u32, u32)]) -> RescaleObservation {
    RescaleObservation {
        at: secs(at),
        status,
        terminal: false,
        parallelism: plan(p, 0).parallelism,
        all_tasks_running: status == JobStatus::Running,
        task_managers: tms(slots),
        num_restarts: Some(0),
        latest_exception_ms: None,
        rescale_history: None,
    }
}
fn job() -> JobId {
    "0123456789abcdef0123456789abcdef"
        .parse()
        .expect("a job id")
}
fn rescale(from: Plan, to: Plan) -> Rescale {
    Rescale::new(
        job(),
        from,
        to,
        t0(),
        &RescaleTimeouts::default(),
        Some(Duration::from_secs(10)),
        FailoverWatch::new(Some(0), None),
    )
}

#[test]
fn scale_up_reports_new_count_at_once_and_completes_at_target() {
    let mut r = rescale(plan(2, 1), plan(4, 2));
    assert_eq!(r.direction, Direction::Up);
    assert_eq!(r.task_managers_to_report(), 2);
    assert_eq!(r.accepted(secs(1)), vec![RescaleEvent::Accepted]);
    // still at 2 while the new TaskManager starts; restarting counts as expected
    let mut o = obs(5, JobStatus::Restarting, 2, &[(2, 0), (2, 2)]);
    o.num_restarts = Some(1);
    assert!(r.observe(&o).is_empty());
    assert_eq!(r.phase, RescalePhase::Applying);
    let mut o = obs(9, JobStatus::Running, 4, &[(2, 0), (2, 0)]);
    o.num_restarts = Some(1);
    let ev = r.observe(&o);
    assert_eq!(
        ev,
        vec![
            RescaleEvent::ReachedParallelism { after_ms: 8000 },
            RescaleEvent::Completed { took_ms: 9000 }
        ]
    );
    assert_eq!(r.phase, RescalePhase::Completed);
    assert_eq!(r.task_managers_to_report(), 2);
    // terminal: further observations change nothing
    assert!(r.observe(&obs(10, JobStatus::Failing, 1, &[])).is_empty());
}

#[test]
fn running_but_tasks_deploying_is_not_done() {
    let mut r = rescale(plan(1, 1), plan(2, 1));
    r.accepted(secs(0));
    let mut o = obs(3, JobStatus::Running, 2, &[(2, 0)]);
    o.all_tasks_running = false;
    assert!(r.observe(&o).is_empty());
    assert_eq!(r.phase, RescalePhase::Applying);
    assert_eq!(r.direction, Direction::None);
}

#[test]
fn scale_down_keeps_old_count_until_surplus_is_idle() {
    let mut r = rescale(plan(4, 2), plan(2, 1));
    assert_eq!(r.direction, Direction::Down);
    assert_eq!(r.task_managers_to_report(), 2);
    r.accepted(secs(0));
    // reached parallelism 2 but the second TaskManager still holds a slot
    let ev = r.observe(&obs(4, JobStatus::Running, 2, &[(2, 0), (2, 1)]));
    assert_eq!(
        ev,
        vec![RescaleEvent::ReachedParallelism { after_ms: 4000 }]
    );
    assert_eq!(r.phase, RescalePhase::Draining);
    assert_eq!(r.task_managers_to_report(), 2);
    let ev = r.observe(&obs(8, JobStatus::Running, 2, &[(2, 0), (2, 2)]));
    assert_eq!(
        ev,
        vec![
            RescaleEvent::SurplusIdle {
                idle: 1,
                surplus: 1
            },
            RescaleEvent::Completed { took_ms: 8000 }
        ]
    );
    assert_eq!(r.task_managers_to_report(), 1);
}

#[test]
fn timeout_is_terminal_and_keeps_safe_count() {
    let mut r = rescale(plan(4, 2), plan(2, 1));
    r.accepted(secs(0));
    // default budget: 120 s + 3 × 10 s + 90 s drain = 240 s
    assert_eq!(r.deadline, secs(240));
    assert!(r
        .observe(&obs(239, JobStatus::Running, 4, &[(2, 0), (2, 0)]))
        .is_empty());
    let ev = r.observe(&obs(240, JobStatus::Running, 4, &[(2, 0), (2, 0)]));
    assert_eq!(
        ev,
        vec![RescaleEvent::TimedOut {
            phase: RescalePhase::Applying
        }]
    );
    assert_eq!(r.task_managers_to_report(), 2);
    let mut up = rescale(plan(2, 1), plan(4, 2));
    assert_eq!(up.deadline, secs(150));
    up.observe(&obs(151, JobStatus::Running, 2, &[(2, 0)]));
    assert_eq!(up.phase, RescalePhase::TimedOut);
    assert_eq!(up.task_managers_to_report(), 2);
}

#[test]
fn failovers_are_reported_once_and_aborts_are_terminal() {
    let mut r = rescale(plan(2, 1), plan(4, 2));
    r.accepted(secs(0));
    let mut o = obs(2, JobStatus::Restarting, 2, &[(2, 0)]);
    o.latest_exception_ms = Some(1_700_000_001_000);
    let ev = r.observe(&o);
    assert_eq!(
        ev,
        vec![RescaleEvent::Failover(FailoverCause::NewException {
            at_ms: 1_700_000_001_000
        })]
    );
    assert!(
        r.observe(&o).is_empty(),
        "same exception is not reported twice"
    );
    assert_eq!(r.failovers, 1);
    let mut o = obs(3, JobStatus::Other, 2, &[(2, 0)]);
    o.terminal = true;
    o.latest_exception_ms = Some(1_700_000_001_000);
    let ev = r.observe(&o);
    assert!(
        matches!(ev.as_slice(), [RescaleEvent::Aborted { .. }]),
        "{ev:?}"
    );
    assert_eq!(r.task_managers_to_report(), 1);
}

#[test]
fn only_one_rescale_in_flight_and_report_without_rescale() {
    let mut r = rescale(plan(2, 1), plan(4, 2));
    assert!(ensure_none_in_flight(None).is_ok());
    assert_eq!(
        ensure_none_in_flight(Some(&r)),
        Err(InFlight {
            job_id: job(),
            phase: RescalePhase::Pending
        })
    );
    r.job_gone(secs(1));
    assert!(ensure_none_in_flight(Some(&r)).is_ok());
    assert_eq!(r.task_managers_to_report(), 1);
}

#[test]
fn task_managers_sum_slot_sharing_groups() {
    let v = |id: &str, p: u32, g: Option<&str>| Vertex {
        id: VertexId::new(id),
        name: id.into(),
        parallelism: p,
        max_parallelism: 128,
        slot_sharing_group: g.map(str::to_string),
    };
    let topo = Topology {
        vertices: vec![v("a", 1, None), v("b", 1, None), v("c", 1, Some("other"))],
        edges: vec![],
    };
    let p: BTreeMap<VertexId, u32> = [
        (VertexId::new("a"), 3),
        (VertexId::new("b"), 5),
        (VertexId::new("c"), 2),
    ]
    .into();
    // max(3,5) + 2 = 7 slots → 4 TaskManagers of 2 slots
    assert_eq!(required_task_managers(&topo, &p, 2), 4);
    assert_eq!(required_task_managers(&topo, &BTreeMap::new(), 4), 1);
}

/// A scale-up onto a warm spare asks for fewer TaskManagers than are registered (2 → 5 on
/// 6 registered, 4 of them the spare): every vertex grows, so it is a scale-up (no drain).
/// Otherwise the TaskManager count decides (a parallelism change on the same count is
/// `None`, as is a shrinking parallelism that asks for more TaskManagers than are there).
#[test]
fn a_growing_parallelism_is_never_a_scale_down() {
    assert_eq!(rescale(plan(2, 6), plan(5, 5)).direction, Direction::Up);
    assert_eq!(rescale(plan(6, 6), plan(2, 2)).direction, Direction::Down);
    assert_eq!(rescale(plan(2, 2), plan(2, 3)).direction, Direction::Up);
    assert_eq!(rescale(plan(2, 2), plan(4, 2)).direction, Direction::None);
    assert_eq!(rescale(plan(6, 2), plan(4, 3)).direction, Direction::None);
    let mut mixed = plan(4, 4);
    mixed.parallelism.insert(VertexId::new("a"), 2);
    mixed.parallelism.insert(VertexId::new("b"), 6);
    assert_eq!(
        rescale(plan(4, 5), mixed.clone()).direction,
        Direction::Down
    );
    mixed.task_managers = 6;
    assert_eq!(rescale(plan(4, 4), mixed).direction, Direction::Up);
}

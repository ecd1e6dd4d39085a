//! The step figures of hand-built timelines: a clean run, a second rescale, a failover,
//! no scale-up, and readings taken while Flink rebuilt the job.

use super::*;
use crate::{driver::FlinkView, timeline::Point};

fn point(at: f64, phase: &'static str, rate: f64, lag: f64, par: u32) -> Point {
    Point {
        at,
        phase,
        input_rate: rate,
        produced_rate: Some(rate),
        lag: Some(lag),
        flink: Some(FlinkView {
            task_managers: par.div_ceil(2),
            vertices: vec![("src".into(), par)],
            job_id: "j1".into(),
            job_state: "RUNNING".into(),
            slots_per_task_manager: 2,
        }),
        all_running: true,
        ..Point::default()
    }
}

/// steady (0–9 s, p=1) → step at 10 s (visible at 12 s, p=4 RUNNING at 30 s, lag
/// peaks 900 at 25 s, back to 50 at 40 s) → back at 60 s (p=1 at 80 s).
fn run() -> Timeline {
    let mut t = Timeline::default();
    for i in 0..100 {
        let at = f64::from(i);
        let p = match i {
            0..=9 => point(at, "steady", 100.0, 50.0, 1),
            10..=59 => {
                let mut p = point(at, "step", 300.0, 0.0, if i >= 30 { 4 } else { 1 });
                p.produced_rate = Some(if i < 12 { 150.0 } else { 300.0 });
                // the report asks for the 2 TaskManagers of parallelism 4 from 13 s on
                p.reported = Some(if i < 13 { 1 } else { 2 });
                p.lag = Some(match i {
                    10..=25 => 60.0 * (at - 10.0),
                    26..=39 => 900.0 - 60.0 * (at - 25.0),
                    _ => 40.0,
                });
                p
            }
            _ => point(at, "back", 100.0, 30.0, if i >= 80 { 1 } else { 4 }),
        };
        t.points.push(p);
    }
    t.push_event(10.0, EventKind::Load, "100 → 300");
    t.push_event(14.0, EventKind::RescaleStarted, "up 1→2 TMs");
    t.push_event(20.0, EventKind::HpaScaled, "1→2 replicas");
    t.push_event(25.0, EventKind::TaskManagerStarted, "fks-tm-1");
    t.push_event(60.0, EventKind::Load, "300 → 100");
    t.push_event(70.0, EventKind::RescaleStarted, "down 2→1 TMs");
    t
}

#[test]
fn figures_of_a_clean_run() {
    let m = measure(&run());
    assert_eq!(m.up.visible_at, Some(12.0));
    assert_eq!(m.up.running_at, Some(30.0));
    assert_eq!(m.up.reaction_s, Some(18.0));
    assert_eq!(m.up.first_reaction_s, Some(18.0));
    assert_eq!(m.down.first_reaction_s, Some(20.0));
    assert_eq!((m.up.from_parallelism, m.up.to_parallelism), (1, 4));
    assert_eq!((m.down.from_parallelism, m.down.to_parallelism), (4, 1));
    assert_eq!(m.down.running_at, Some(80.0));
    assert_eq!((m.up.rescales, m.down.rescales), (1, 1));
    assert_eq!(
        (m.up.decided_at, m.up.capacity_at),
        (Some(14.0), Some(25.0))
    );
    assert_eq!(m.pre_step_lag, 50.0);
    assert_eq!(m.peak_lag, 900.0);
    // first sample at or under 50 after the peak: 40 at t=40 → 28 s after visible
    assert_eq!(m.recovery_s, Some(28.0));
    assert_eq!((m.failovers, m.job_ids), (0, 1));
    // TMs: 1 for 0..30, 2 for 30..80, 1 for 80..99
    assert_eq!(m.tm_seconds, 30.0 + 100.0 + 19.0);
    assert_eq!(m.fixed_peak_tm_seconds, 2.0 * 99.0);
    // registered: 1 before the step, 2 once running at 4; 0 idle at the ends
    assert_eq!(
        (m.up.registered_before, m.up.registered_by_first_running),
        (1, Some(2))
    );
    assert_eq!(m.up.first_parallelism, Some(4));
    assert_eq!((m.up.idle_at_end, m.down.idle_at_end), (Some(0), Some(0)));
    // an oracle needing 1 TM per 100 records/s: 1 × 10 + 3 × 50 + 1 × 39
    let oracle = oracle_tm_seconds(&run(), |r| (r / 100.0) as u32);
    assert_eq!(oracle, 10.0 + 150.0 + 39.0);
    let md = m.markdown();
    assert!(md.contains("| 18.0 s | ≤ 30 s | met |"), "{md}");
    assert!(md.contains("| 1 / 1 | 1 / 1 | met |"), "{md}");
    assert_eq!(
        (m.up.asked_at, m.up.scaled_at, m.up.capacity_at),
        (Some(13.0), Some(20.0), Some(25.0))
    );
    // the pods' path: asked 1 s after visible, HPA 7 s, start 5 s, Flink 5 s = P1 18 s
    assert!(md.contains("| 1 s / 7 s / 5 s / 5 s |"), "{md}");
}

/// A rescale that ran on TaskManagers registered before it started (a warm spare, or
/// pods that came up while it settled) has the rescale on its critical path, not the pods.
#[test]
fn a_rescale_onto_registered_task_managers_is_its_own_critical_path() {
    let mut spare = run();
    spare
        .events
        .retain(|e| !matches!(e.kind, EventKind::HpaScaled | EventKind::TaskManagerStarted));
    let b = measure(&spare).up.breakdown().expect("breakdown");
    assert_eq!(b.cells(), "2 s / — / — / 16 s");
    let mut early = run();
    early.push_event(13.5, EventKind::HpaScaled, "1→2 replicas");
    for e in early.events.iter_mut() {
        if e.kind == EventKind::TaskManagerStarted {
            e.at = 13.8;
        }
    }
    early
        .events
        .retain(|e| !(e.kind == EventKind::HpaScaled && e.at == 20.0));
    let m = measure(&early);
    assert_eq!(m.up.capacity_at, Some(13.8));
    assert_eq!(
        m.up.breakdown().map(|b| b.cells()).as_deref(),
        Some("2 s / — / — / 16 s")
    );
}

#[test]
fn a_lag_that_never_rose_recovered_at_once() {
    let mut t = run();
    for p in t.points.iter_mut() {
        p.lag = Some(0.0);
    }
    let m = measure(&t);
    assert_eq!((m.peak_lag, m.recovery_s), (0.0, Some(0.0)));
}

#[test]
fn a_second_rescale_and_a_failover_are_counted() {
    let mut t = run();
    t.push_event(20.0, EventKind::RescaleStarted, "up 2→3 TMs");
    t.push_event(21.0, EventKind::Failover, "java.lang.Exception");
    // a parallelism-only rescale in the step phase counts too
    t.push_event(
        40.0,
        EventKind::RescaleStarted,
        "none 2→2 TMs, parallelism 4→4",
    );
    let m = measure(&t);
    assert_eq!(m.up.rescales, 3);
    assert_eq!(m.failovers, 1);
    assert!(m.markdown().contains("**missed**"));
}

/// P2 counts Flink's restarts: a raise before Flink restarted is one rescale and one
/// restart; a job that ran at an intermediate parallelism on the way restarted twice.
#[test]
fn p2_counts_flinks_restarts_and_a_raise_is_the_same_rescale() {
    let mut raised = run();
    raised.push_event(16.0, EventKind::RescaleRaised, "up 1→2 TMs");
    let m = measure(&raised);
    assert_eq!((m.up.rescales, m.up.raises, m.up.restarts), (1, 1, 1));
    assert!(m.p2_met());
    assert!(m
        .markdown()
        .contains("raised before Flink restarted: 1) | 1 / 1 | 1 / 1 | met |"));
    let mut twice = raised;
    for p in twice
        .points
        .iter_mut()
        .filter(|p| (26.0..30.0).contains(&p.at))
    {
        if let Some(f) = p.flink.as_mut() {
            f.vertices = vec![("src".into(), 3)];
        }
    }
    let m = measure(&twice);
    assert_eq!((m.up.rescales, m.up.restarts), (1, 2), "1 → 3 → 4");
    assert!(!m.p2_met());
}

#[test]
fn no_scale_up_means_no_reaction_time() {
    let mut t = run();
    for p in t.points.iter_mut().filter(|p| p.phase == "step") {
        if let Some(f) = p.flink.as_mut() {
            f.vertices = vec![("src".into(), 1)];
        }
    }
    let m = measure(&t);
    assert_eq!(m.up.reaction_s, None);
    assert!(m.markdown().contains("not reached"));
}

#[test]
fn readings_while_flink_rebuilds_the_job_are_not_a_parallelism_reached() {
    // the scale-down is 4 → 2; while Flink rebuilds the job (70–72 s) its REST API lists
    // the submitted parallelism 1, not RUNNING; then it runs at 2 from 73 s on
    let mut t = run();
    for p in t.points.iter_mut().filter(|p| p.at >= 70.0) {
        let (par, state) = if p.at <= 72.0 {
            (1, "CREATED")
        } else {
            (2, "RUNNING")
        };
        if let Some(f) = p.flink.as_mut() {
            f.vertices = vec![("src".into(), par)];
            f.job_state = state.into();
        }
        p.all_running = p.at > 72.0;
    }
    let m = measure(&t);
    assert_eq!(m.down.to_parallelism, 2);
    assert_eq!(m.down.running_at, Some(73.0));
    assert_eq!(m.down.first_parallelism, Some(2));
}

/// P1 runs between the components' own instants when the observer got them: Prometheus'
/// first evaluation showing the step (a `Visible` event before the sample that saw it)
/// and Flink's timestamp of the last subtask switching to RUNNING (read at a sample its
/// REST cache let see it later).
#[test]
fn p1_runs_between_the_exact_instants_the_samples_round_up() {
    let mut t = run();
    t.push_event(11.4, EventKind::Visible, "300 records/s");
    for p in t.points.iter_mut().filter(|p| (30.0..60.0).contains(&p.at)) {
        p.running_since = Some(27.6);
    }
    let m = measure(&t);
    assert_eq!(m.up.visible_at, Some(11.4));
    assert_eq!(m.up.running_at, Some(27.6));
    assert_eq!(
        m.up.reaction_s.map(|s| (s * 10.0).round() / 10.0),
        Some(16.2)
    );
    assert_eq!(m.up.first_reaction_s, m.up.reaction_s);
    // the parallelism is the sample's; the TaskManagers those the samples up to Flink's
    // instant saw (here 1: this timeline ties them to the parallelism)
    assert_eq!(
        (m.up.first_parallelism, m.up.registered_by_first_running),
        (Some(4), Some(1))
    );
    let b = m.up.breakdown().expect("breakdown");
    let sum = b.scaler + b.hpa_and_start.map_or(0.0, |(hpa, tm)| hpa + tm) + b.flink;
    assert!((sum - 16.2).abs() < 1e-9, "{b:?}");
    // a Visible event of the step down does not move the step up
    let mut other = run();
    other.push_event(61.0, EventKind::Visible, "100 records/s");
    assert_eq!(measure(&other).up.visible_at, Some(12.0));
}

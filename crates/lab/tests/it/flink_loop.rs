//! The closed loop on real Flink, short profile of the demo's I/O-bound scenario
//! (`fks_lab`, the same code `fks-lab demo` runs): a standalone session
//! cluster (adaptive scheduler, slot packing, 1 slot per TaskManager, 2 TaskManagers to
//! start, at most 8) runs the LoadJob, whose keyed operator processes at most 500
//! records/s per subtask by waiting (so capacity follows parallelism, not this machine's
//! CPU); Prometheus scrapes the PrometheusReporters; the built scaler
//! (`serve`) decides and rescales in place; the KEDA + HPA driver (`fks_lab::driver`, gRPC and
//! process control only) starts and stops TaskManagers from what the scaler reports.
//!
//! Scenario: steady 600 records/s (2 TaskManagers) → 3× load step (needs 6) → scale-up in
//! place → low rate again → scale-down in place (TaskManagers stopped by the driver while
//! idle).
//!
//! Asserts: it scaled up and down, in place (one JobID, exception history empty: no
//! failover), never more than one rescale in flight (the scaler's own rescale timestamps),
//! the TaskManager count reported to KEDA never below what Flink's running slots need
//! (`ceil(max vertex parallelism / slots)`), the driver never found the TaskManager it
//! had to stop busy, and the timeline's CSV and plot are written.
//!
//! `cargo test -p fks-lab --test it flink_loop -- --nocapture` prints the timeline. Version from
//! `FKS_FLINK_VERSION` (default 2.3.0).

use fks_lab::{report, scenario::Profile, timeline::EventKind};

use crate::support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keda_loop_scales_up_and_down_in_place() {
    let _one = support::ONE_LAB.lock().await;
    let work = support::tempdir("fks-loop-");
    let Some(lab) = support::start_lab(Profile::short(), work.path()).await else {
        return;
    };
    let outcome = support::run_lab(&lab).await;
    let t = &outcome.timeline;
    eprintln!("rescales: {:#?}", outcome.rescales);
    for line in lab.scaler.log().lines() {
        if line.contains("rescale started in place") {
            eprintln!("scaler: {line}");
        }
    }

    let m = &outcome.measurements;
    let context = || {
        format!(
            "{}\nrescales {:#?}\nscaler log tail:\n{}",
            t.table(0.0),
            outcome.rescales,
            lab.scaler
                .log()
                .lines()
                .rev()
                .take(40)
                .collect::<Vec<_>>()
                .join("\n")
        )
    };
    // Up and down, in place.
    assert!(
        m.up.to_parallelism > m.up.from_parallelism && m.up.running_at.is_some(),
        "no scale-up: {:?}\n{}",
        m.up,
        context()
    );
    assert!(
        m.down.to_parallelism < m.up.to_parallelism && m.down.running_at.is_some(),
        "no scale-down: {:?}\n{}",
        m.down,
        context()
    );
    let count = |k: EventKind| t.events.iter().filter(|e| e.kind == k).count();
    assert!(count(EventKind::TaskManagerStarted) >= 1, "{}", context());
    assert!(count(EventKind::TaskManagerStopped) >= 1, "{}", context());
    assert!(
        outcome.rescales.iter().any(|r| r.direction == "up")
            && outcome.rescales.iter().any(|r| r.direction == "down"),
        "{}",
        context()
    );
    // Same JobID, no failover, one rescale at a time, reported ≥ required, no busy TM
    // stopped.
    assert_eq!(m.job_ids, 1, "{}", context());
    assert_eq!(m.failovers, 0, "{}", context());
    let violations = outcome.violations();
    assert!(violations.is_empty(), "{violations:#?}\n{}", context());
    // The samples really carried the scaler's answer and Flink's view.
    assert!(t.points.iter().filter(|p| p.reported.is_some()).count() > t.points.len() / 2);
    assert!(t.points.iter().all(|p| p.flink.is_some()), "{}", context());

    // The artefacts the demo writes.
    let out = work.path().join("out");
    report::write_artefacts(&lab, &outcome, &out).expect("artefacts");
    let csv = std::fs::read_to_string(out.join("timeline.csv")).expect("csv");
    assert_eq!(csv.lines().count(), t.points.len() + 1);
    assert!(csv.contains("rescale-start up"), "{csv}");
    let svg = std::fs::read_to_string(out.join("timeline.svg")).expect("svg");
    assert!(svg.starts_with("<svg") && svg.contains("TaskManagers registered"));
}

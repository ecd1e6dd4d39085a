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

use fks_lab::{
    report,
    scenario::Profile,
    timeline::{EventKind, Point},
};

use crate::support::{self, Checks, Failed};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keda_loop_scales_up_and_down_in_place() -> Result<(), Failed> {
    let _one = support::ONE_LAB.lock().await;
    let work = support::tempdir("fks-loop-");
    let Some(lab) = support::start_lab(Profile::short(), work.path()).await else {
        return Ok(());
    };
    let outcome = support::run_lab(&lab).await;
    let t = &outcome.timeline;
    let m = &outcome.measurements;
    let mut check = Checks::default();
    // Up and down, in place.
    check.that(
        m.up.to_parallelism > m.up.from_parallelism && m.up.running_at.is_some(),
        || format!("no scale-up: {:?}", m.up),
    );
    check.that(
        m.down.to_parallelism < m.up.to_parallelism && m.down.running_at.is_some(),
        || format!("no scale-down: {:?}", m.down),
    );
    let count = |k: EventKind| t.events.iter().filter(|e| e.kind == k).count();
    check.that(count(EventKind::TaskManagerStarted) >= 1, || {
        "the driver started no TaskManager".into()
    });
    check.that(count(EventKind::TaskManagerStopped) >= 1, || {
        "the driver stopped no TaskManager".into()
    });
    for direction in ["up", "down"] {
        check.that(
            outcome.rescales.iter().any(|r| r.direction == direction),
            || format!("the scaler showed no rescale {direction}"),
        );
    }
    // Same JobID, no failover, one rescale at a time, reported ≥ required, no busy TM
    // stopped.
    check.eq("JobIDs seen", m.job_ids, 1);
    check.eq("failovers", m.failovers, 0);
    for v in outcome.violations() {
        check.that(false, || v);
    }
    // The samples really carried the scaler's answer and Flink's view.
    let with = |f: fn(&Point) -> bool| t.points.iter().filter(|p| f(p)).count();
    check.that(with(|p| p.reported.is_some()) > t.points.len() / 2, || {
        format!(
            "the scaler answered in {} of {} samples",
            with(|p| p.reported.is_some()),
            t.points.len()
        )
    });
    check.that(with(|p| p.flink.is_some()) == t.points.len(), || {
        format!(
            "Flink answered in {} of {} samples",
            with(|p| p.flink.is_some()),
            t.points.len()
        )
    });
    check.finish(|| support::context(&lab, &outcome))?;

    // The artefacts the demo writes.
    let out = work.path().join("out");
    report::write_artefacts(&lab, &outcome, &out).expect("artefacts");
    let csv = std::fs::read_to_string(out.join("timeline.csv")).expect("csv");
    assert_eq!(csv.lines().count(), t.points.len() + 1);
    assert!(csv.contains("rescale-start up"), "{csv}");
    let svg = std::fs::read_to_string(out.join("timeline.svg")).expect("svg");
    assert!(svg.starts_with("<svg") && svg.contains("TaskManagers registered"));
    Ok(())
}

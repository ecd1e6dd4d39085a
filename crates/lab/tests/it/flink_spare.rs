//! The closed loop with a warm spare that covers the step: the short I/O-bound profile of
//! [`flink_loop`](super::flink_loop) with `spareTaskManagers` = the step's extra
//! TaskManagers (2 → 6 needed, spare 4, at most 10). The spare is registered before the
//! step; the scale-up is then a PUT only, and KEDA replenishes the spare afterwards.
//!
//! Asserts: the spare was registered before the step; the job was RUNNING at the new
//! parallelism (its target, or every registered slot if the core sized the step beyond
//! the spare) before any new TaskManager registered (the timeline's registered count from
//! the step to that moment never rose above the count before the step, and the driver
//! started no TaskManager in between);
//! the spare was replenished and kept idle after the step and after the scale-down
//! (registered − what the running slots need == the spare); in place throughout (one
//! JobID, no failover, the loop's checks).
//!
//! Runs on the Flink line of the main test run only (2.3.0 in CI): scripts/test.sh
//! repeats the `flink_loop::` module on 1.20.5, and this one (`flink_spare::`, ~3 more
//! minutes) is left out there on purpose — the spare adds nothing Flink-specific to the
//! in-place rescale both lines already run (the same PUT of the resource requirements,
//! onto TaskManagers that are already registered).

use fks_lab::{scenario::Profile, timeline::EventKind};

use crate::support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spare_that_covers_the_step_makes_the_scale_up_a_put_only() {
    let _one = support::ONE_LAB.lock().await;
    let work = support::tempdir("fks-spare-");
    let profile = Profile::short().with_spare();
    let spare = profile.spare;
    assert!(spare > 0, "{profile:?}");
    let Some(lab) = support::start_lab(profile.clone(), work.path()).await else {
        return;
    };
    let outcome = support::run_lab(&lab).await;
    let t = &outcome.timeline;
    let m = &outcome.measurements;
    let context = || format!("{}\n{m:#?}\nrescales {:#?}", t.table(0.0), outcome.rescales);

    // The spare was registered before the step.
    assert!(
        m.up.to_parallelism > m.up.from_parallelism && m.up.running_at.is_some(),
        "no scale-up\n{}",
        context()
    );
    assert_eq!(
        m.up.registered_before,
        profile.with_spare_on(m.up.from_parallelism),
        "the spare was not registered before the step\n{}",
        context()
    );
    // The first in-place rescale ran on it: RUNNING at the new parallelism (all of the
    // target, or all the registered slots if the core sized beyond the spare) before any
    // new TaskManager registered, and before the driver started one.
    let first_at =
        m.up.visible_at
            .zip(m.up.first_reaction_s)
            .map(|(v, r)| v + r);
    let first_at = first_at.unwrap_or_else(|| panic!("no first rescale\n{}", context()));
    assert_eq!(
        m.up.first_parallelism,
        Some(
            m.up.to_parallelism
                .min(m.up.registered_before * profile.slots)
        ),
        "{}",
        context()
    );
    assert_eq!(
        m.up.registered_by_first_running,
        Some(m.up.registered_before),
        "a TaskManager registered before the job ran at {:?}\n{}",
        m.up.first_parallelism,
        context()
    );
    let started_before = t
        .events
        .iter()
        .filter(|e| e.kind == EventKind::TaskManagerStarted)
        .filter(|e| e.at >= m.up.changed_at && e.at <= first_at)
        .count();
    assert_eq!(started_before, 0, "{}", context());
    // Replenished and idle after the step, kept through the scale-down.
    let required_up = m.up.to_parallelism.div_ceil(profile.slots);
    assert_eq!(
        m.up.idle_at_end,
        Some(profile.with_spare_on(required_up) - required_up),
        "the spare was not replenished after the step\n{}",
        context()
    );
    assert!(
        m.down.to_parallelism < m.up.to_parallelism && m.down.running_at.is_some(),
        "no scale-down\n{}",
        context()
    );
    let required_down = m.down.to_parallelism.div_ceil(profile.slots);
    assert_eq!(
        m.down.idle_at_end,
        Some(profile.with_spare_on(required_down) - required_down),
        "the spare was not kept through the scale-down\n{}",
        context()
    );
    // In place, the loop's checks.
    assert_eq!((m.job_ids, m.failovers), (1, 0), "{}", context());
    let violations = outcome.violations();
    assert!(violations.is_empty(), "{violations:#?}\n{}", context());
}

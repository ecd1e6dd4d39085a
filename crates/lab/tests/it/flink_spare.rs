//! The closed loop with a warm spare that covers the step: the short I/O-bound profile of
//! [`flink_loop`](super::flink_loop) with `spareTaskManagers` = the step's extra
//! TaskManagers (2 → 6 needed, spare 4, at most 10). The spare is registered before the
//! step; the scale-up is then a PUT only, and KEDA replenishes the spare afterwards.
//!
//! Asserts: the spare was registered before the step; the job was RUNNING at the new
//! parallelism (its target, or every registered slot if the core sized the step beyond
//! the spare) before any new TaskManager registered (the timeline's registered count from
//! the step to that moment never rose above the count before the step, and no pod the
//! HPA created after the step had registered by then);
//! the spare was replenished and kept idle after the step and after the scale-down
//! (registered − what the running slots need == the spare); in place throughout (one
//! JobID, no failover, the loop's checks).
//!
//! Runs on the Flink line of the main test run only (2.3.0 in CI): scripts/test.sh
//! repeats the `flink_loop::` module on 1.20.5, and this one (`flink_spare::`, ~3 more
//! minutes) is left out there on purpose — the spare adds nothing Flink-specific to the
//! in-place rescale both lines already run (the same PUT of the resource requirements,
//! onto TaskManagers that are already registered).

use fks_lab::scenario::Profile;

use crate::support::{self, Checks, Failed};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spare_that_covers_the_step_makes_the_scale_up_a_put_only() -> Result<(), Failed> {
    let _one = support::ONE_LAB.lock().await;
    let work = support::tempdir("fks-spare-");
    let profile = Profile::short().with_spare();
    let spare = profile.spare;
    assert!(spare > 0, "{profile:?}");
    let Some(lab) = support::start_lab(profile.clone(), work.path()).await else {
        return Ok(());
    };
    let outcome = support::run_lab(&lab).await;
    let m = &outcome.measurements;
    let mut check = Checks::default();

    // The spare was registered before the step.
    check.that(
        m.up.to_parallelism > m.up.from_parallelism && m.up.running_at.is_some(),
        || format!("no scale-up: {:?}", m.up),
    );
    check.eq(
        "registered before the step (the spare on the low rate's TaskManagers)",
        m.up.registered_before,
        profile.with_spare_on(m.up.from_parallelism),
    );
    // The first in-place rescale ran on it: RUNNING at the new parallelism (all of the
    // target, or all the registered slots if the core sized beyond the spare) before any
    // new TaskManager registered, and before the driver started one.
    let first_at =
        m.up.visible_at
            .zip(m.up.first_reaction_s)
            .map(|(v, r)| v + r);
    check.that(first_at.is_some(), || "no first rescale".to_string());
    check.eq(
        "parallelism after the first rescale",
        m.up.first_parallelism,
        Some(
            m.up.to_parallelism
                .min(m.up.registered_before * profile.slots),
        ),
    );
    check.eq(
        "TaskManagers registered when the job first ran at the new parallelism",
        m.up.registered_by_first_running,
        Some(m.up.registered_before),
    );
    let started_before = first_at.map(|first_at| {
        outcome
            .driver
            .created_and_registered_within(m.up.changed_at, first_at)
    });
    check.eq(
        "TaskManagers created for the step and registered before the first rescale ran",
        started_before,
        Some(0),
    );
    // Replenished and idle after the step, kept through the scale-down.
    let required_up = m.up.to_parallelism.div_ceil(profile.slots);
    check.eq(
        "idle TaskManagers at the end of the step (the spare replenished)",
        m.up.idle_at_end,
        Some(profile.with_spare_on(required_up) - required_up),
    );
    check.that(
        m.down.to_parallelism < m.up.to_parallelism && m.down.running_at.is_some(),
        || format!("no scale-down: {:?}", m.down),
    );
    let required_down = m.down.to_parallelism.div_ceil(profile.slots);
    check.eq(
        "idle TaskManagers at the end (the spare kept through the scale-down)",
        m.down.idle_at_end,
        Some(profile.with_spare_on(required_down) - required_down),
    );
    // In place, the loop's checks.
    check.eq("(JobIDs, failovers)", (m.job_ids, m.failovers), (1, 0));
    for v in outcome.violations() {
        check.that(false, || v);
    }
    check.finish(|| support::context(&lab, &outcome))
}

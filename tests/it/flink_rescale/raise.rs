//! Raising a scale-up that still waits for its TaskManagers, on real Flink: the job runs
//! at 2 on one TaskManager (2 slots), the scaler asks for 4 (a second TaskManager that
//! has not started), then — before any new TaskManager registered — raises the same
//! rescale to 6 (`runtime::apply::raise`). Two TaskManagers then start at once, as the
//! HPA's one sync starts their pods. Flink, which had not restarted anything while the
//! slots were missing, restarts once: straight from 2 to 6, never through 4; same JobID,
//! no failover, the job's requirements say 6.

use super::*;

use chrono::Utc;
use flink_keda_scaler::{
    flink::{observe_rescale_with, read_setup, upper_bounds},
    runtime::apply::raise,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_up_raised_before_its_task_managers_register_restarts_once() {
    let _g = LOCK.lock().await;
    let Some((mut c, client, job)) = start(ClusterOptions::default(), 2).await else {
        return;
    };
    wait_checkpoint(&client, &job, 0).await;
    let setup = read_setup(&client, &job, None).await.expect("set-up");
    let options = ApplyOptions {
        checkpoint_nudge: setup.rescales_at_checkpoints(),
        nudge_poll: Duration::from_millis(200),
        ..test_options()
    };
    let topo = client.topology(&job).await.expect("topology");
    let plan = |p| plan_for(&client, &topo, uniform_parallelism(&topo, p), None);
    let (four, six) = (plan(4).await.expect("plan"), plan(6).await.expect("plan"));
    assert_eq!((four.task_managers, six.task_managers), (2, 3));

    let mut started = Rescaler::start(&client, &job, four, &options, None)
        .await
        .expect("start the scale-up");
    let _first_nudge = started.take_nudger();
    let mut rescale = started.into_outcome().rescale;
    assert_eq!(rescale.phase, RescalePhase::Applying);
    // Flink accepted 4 and waits for its slots: still RUNNING at 2
    tokio::time::sleep(Duration::from_secs(3)).await;
    let waiting = client.job(&job).await.expect("job");
    assert_eq!(waiting.state, "RUNNING");
    assert!(
        waiting.vertices.iter().all(|v| v.parallelism == 2),
        "{waiting:?}"
    );

    let (event, _nudge) = raise(&client, &mut rescale, six, &options)
        .await
        .expect("raise the scale-up");
    assert_eq!(
        event,
        RescaleEvent::Raised {
            from_task_managers: 2,
            to_task_managers: 3
        }
    );
    let requirements = client
        .resource_requirements(&job)
        .await
        .expect("requirements");
    assert!(upper_bounds(&requirements).values().all(|p| *p == 6));

    // the pods of the raised target start together, as one HPA sync starts them
    c.add_task_managers(2).await;
    let mut seen = std::collections::BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while !rescale.phase.is_terminal() && tokio::time::Instant::now() < deadline {
        let obs = observe_rescale_with(&client, &job, Utc::now(), false)
            .await
            .expect("observe");
        if obs.all_tasks_running {
            seen.extend(obs.parallelism.values().copied());
        }
        let events = rescale.observe(&obs);
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, RescaleEvent::Failover(_))),
            "{events:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(rescale.phase, RescalePhase::Completed, "{rescale:?}");
    // (2 is seen only if the restart had not begun when the polling started: on 1.20.5,
    // which does not wait for a checkpoint, it has by the time both registered)
    assert!(
        seen.contains(&6) && seen.iter().all(|p| [2, 6].contains(p)),
        "ran at {seen:?}: straight from 2 to 6, never through 4"
    );
    let details = client.job(&job).await.expect("job");
    assert_eq!(details.jid, job, "same job id");
    assert_no_exceptions(&client, &job).await;
    eprintln!(
        "flink {}: scale-up 2→4 raised to 6 before its TaskManagers registered: one restart, \
         accepted→RUNNING {:?}",
        c.installed.version,
        rescale
            .reached_at
            .zip(rescale.accepted_at)
            .map(|(r, a)| (r - a).to_std().unwrap_or_default())
    );
}

//! The checkpoint a Flink 2.x rescale waits for (FLIP-461), on real Flink with a 10 min
//! checkpoint interval: the driver triggers it as soon as the job holds the new slots, so
//! the scale-up completes within seconds instead of at the next periodic checkpoint (up
//! to 10 min; Flink's `rescale-trigger.max-delay` default is 30 min here). On 1.20.5 the
//! set-up says rescales do not wait for checkpoints: no nudge, and the rescale is as fast.

use super::*;

use flink_keda_scaler::{
    core::RescaleTimeouts,
    flink::{read_setup, FlinkLine},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checkpoint_a_rescale_waits_for_is_taken_once_the_slots_are_there() {
    let _g = LOCK.lock().await;
    let opts = ClusterOptions {
        checkpoint_interval: Duration::from_secs(600),
        ..ClusterOptions::default()
    };
    let Some((mut c, client, job)) = start(opts, 2).await else {
        return;
    };
    let setup = read_setup(&client, &job, None).await.expect("set-up");
    let v2 = setup.line == Some(FlinkLine::V2);
    assert_eq!(setup.rescales_at_checkpoints(), v2, "{setup:?}");
    // a spare TaskManager: the scale-up's slots are there as soon as Flink asks for them
    c.add_task_manager().await;
    let before = client.checkpoint_stats(&job).await.expect("stats");
    let topo = client.topology(&job).await.expect("topology");
    let target = plan_for(&client, &topo, uniform_parallelism(&topo, 4), None)
        .await
        .expect("plan");
    let options = ApplyOptions {
        poll_interval: Duration::from_millis(200),
        nudge_poll: Duration::from_millis(200),
        checkpoint_nudge: setup.rescales_at_checkpoints(),
        // no checkpoint intervals in the deadline: only the nudge makes it in time on 2.x
        timeouts: RescaleTimeouts {
            base: Duration::from_secs(60),
            checkpoint_intervals: 0,
            drain: Duration::from_secs(40),
        },
        ..ApplyOptions::default()
    };
    let out = rescale_completed(&client, &job, target, &options).await;
    assert_eq!(out.failovers(), 0, "{:?}", out.events);
    let after = client.checkpoint_stats(&job).await.expect("stats");
    if v2 {
        // restored from the checkpoint taken after the PUT, long before a periodic one
        let newer = before.latest_completed_id.unwrap_or(0);
        assert!(after.completed > before.completed, "{before:?} → {after:?}");
        assert!(
            after.restored_id.is_some_and(|id| id > newer),
            "{before:?} → {after:?}"
        );
    }
    eprintln!(
        "flink {}: checkpoint interval 10 min, scale-up 2→4 onto a spare TaskManager, \
         PUT→RUNNING {:?} (checkpoint nudge {}; checkpoints completed {} → {})",
        c.installed.version,
        out.put_to_running,
        options.checkpoint_nudge,
        before.completed,
        after.completed
    );
}

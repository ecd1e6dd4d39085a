//! Real-Flink test of issue 13 §5 (session cluster, adaptive scheduler; version from
//! `FKS_FLINK_VERSION`, the second pass of `scripts/test.sh` runs 1.20.5): the scaler
//! reads the JobManager's set-up (`/jobmanager/config`, 2.3's `/jobs/:id/rescales/config`)
//! and, on 2.3 with `web.adaptive-scheduler.rescale-history.size` > 0, tells its own
//! rescales from failovers exactly from the rescale history (`triggerCause`
//! `UPDATE_REQUIREMENT` vs `RECOVERABLE_FAILOVER`); 1.20.5 answers 404 on every
//! `/rescales/...` path and the scaler falls back to counting restarts and exceptions.
//!
//! `cargo test --test it flink_setup:: -- --nocapture`

use crate::support;

use std::time::Duration;

use flink_keda_scaler::{
    core::{FailoverCause, RescaleEvent, RescalePhase, RescaleTimeouts},
    flink::{
        observe_rescale_with, plan_for, read_setup, rescale_delays, uniform_parallelism,
        ClientOptions, FlinkClient, FlinkLine,
    },
    runtime::apply::{ApplyOptions, Rescaler},
};
use support::flink::{install, ClusterOptions, FlinkCluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rescale_history_tells_own_rescales_from_failovers() {
    let _g = crate::support::flink::REAL_FLINK.lock().await;
    let Some(installed) = install() else {
        return;
    };
    let opts = ClusterOptions {
        task_managers: 2,
        // 1.20 does not know the key and ignores it
        extra_config: "web.adaptive-scheduler.rescale-history.size: 10\n".into(),
        ..ClusterOptions::default()
    };
    let mut c = FlinkCluster::start(installed, opts).await;
    let rate = c.path("rate");
    std::fs::write(&rate, "200").expect("write rate file");
    let args: Vec<String> = [
        "--name",
        "fks-setup-job",
        "--partitions",
        "8",
        "--rate-file",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([rate.to_string_lossy().into_owned()])
    .collect();
    let job = c.submit_job(&args, 2).await;
    let client = FlinkClient::new(&c.rest_url, ClientOptions::default()).expect("client");

    // the set-up: 2.3 reports the effective settings and the history size; 1.20 falls back
    let setup = read_setup(&client, &job, None).await.expect("set-up");
    let v2 = setup.line == Some(FlinkLine::V2);
    assert!(!setup.reactive);
    assert_eq!(setup.rescale_history(), v2, "{setup:?}");
    // the lab's cluster sets short cooldown/stabilization: nothing to warn about
    let delays = rescale_delays(&setup, Duration::from_secs(10));
    assert!(delays.is_empty(), "{delays:?}");

    // the scaler's own rescale: no failover, exact on 2.3
    let topo = client.topology(&job).await.expect("topology");
    let target = plan_for(&client, &topo, uniform_parallelism(&topo, 4), None)
        .await
        .expect("plan");
    let options = ApplyOptions {
        poll_interval: Duration::from_millis(250),
        timeouts: RescaleTimeouts {
            base: Duration::from_secs(90),
            checkpoint_intervals: 3,
            drain: Duration::from_secs(40),
        },
        rescale_history: setup.rescale_history(),
        ..ApplyOptions::default()
    };
    let mut r = Rescaler::start(&client, &job, target, &options, None)
        .await
        .expect("start");
    assert_eq!(r.rescale().exact_failovers(), v2);
    let mut events = Vec::new();
    while !r.phase().is_terminal() {
        tokio::time::sleep(Duration::from_millis(250)).await;
        events.extend(r.poll().await.unwrap_or_default());
    }
    assert_eq!(r.phase(), RescalePhase::Completed, "{events:?}");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, RescaleEvent::Failover(_))),
        "{events:?}"
    );

    // a failover (a busy TaskManager stopped): exactly a RECOVERABLE_FAILOVER on 2.3,
    // counted from restarts/exceptions on 1.20
    tokio::time::sleep(Duration::from_secs(3)).await; // the metric fetcher's lag
    let base = observe_rescale_with(&client, &job, chrono::Utc::now(), v2)
        .await
        .expect("observe");
    assert_eq!(base.rescale_history.is_some(), v2);
    let mut watch = base.failover_baseline();
    assert_eq!(watch.exact(), v2);
    let busy = client
        .task_managers()
        .await
        .expect("taskmanagers")
        .into_iter()
        .find(|t| t.free_slots < t.slots_number)
        .expect("a busy TaskManager");
    let idx = FlinkCluster::tm_index(&busy.id).expect("our TaskManager");
    tokio::task::block_in_place(|| c.stop_task_manager(idx));
    let mut seen = Vec::new();
    for _ in 0..120 {
        let o = observe_rescale_with(&client, &job, chrono::Utc::now(), v2)
            .await
            .expect("observe");
        seen.extend(watch.observe_with_history(
            o.status,
            o.num_restarts,
            o.latest_exception_ms,
            o.rescale_history.as_deref(),
        ));
        if !seen.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(!seen.is_empty(), "failover not detected\n{}", c.log_tail());
    if v2 {
        assert!(
            seen.iter()
                .all(|f| matches!(f, FailoverCause::RecoverableFailover { .. })),
            "{seen:?}"
        );
    }
    eprintln!(
        "flink {}: history {} → own rescale {events:?}; failover {seen:?}",
        c.installed.version,
        setup.rescale_history()
    );
}

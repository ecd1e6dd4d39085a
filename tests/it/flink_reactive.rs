//! Real-Flink test of reactive mode (issue 14 §1), run the way the Flink Kubernetes
//! Operator runs a standalone FlinkDeployment with `scheduler-mode: reactive`: a
//! standalone **application** cluster (`standalone-job.sh`, the job jar in `usrlib`, a
//! fixed job id), TaskManagers as processes stopped the way the kubelet stops a pod
//! (SIGTERM, then SIGKILL after the grace period). Version from `FKS_FLINK_VERSION`
//! (2.3.0 by default; the second pass of `scripts/test.sh` runs 1.20.5).
//!
//! What it shows, on each line: the scaler detects reactive mode from `/jobmanager/config`;
//! a resource-requirements PUT is refused (500) and reported as reactive mode; a scale-up
//! is one more TaskManager (no PUT, no failover, same job id, every vertex at the slot
//! count); a scale-down takes a checkpoint, then the TaskManager is stopped by SIGTERM and
//! Flink fails over exactly once ("The TaskExecutor is shutting down.", as README's
//! set-ups table says) and restores from that checkpoint (or a periodic one completed
//! after it); the scaler counts that
//! failover as its own (no failover event) and reports the lower count once the
//! checkpoint is taken.
//!
//! `cargo test --test it flink_reactive:: -- --nocapture`

use crate::support;

use std::time::Duration;

use fks_components::flink_cluster::ApplicationJob;
use flink_keda_scaler::{
    core::{reactive, JobId, Plan, RescaleEvent, RescalePhase, RescaleTimeouts},
    flink::{read_setup, ClientOptions, FlinkClient, FlinkError},
    runtime::apply::{ApplyError, ApplyOptions, Rescaler},
};
use support::flink::{install, ClusterOptions, FlinkCluster};

/// The fixed job id (the operator derives one per FlinkDeployment).
const JOB_ID: &str = "fc0ffee0fc0ffee0fc0ffee0fc0ffee0";

fn options() -> ApplyOptions {
    ApplyOptions {
        poll_interval: Duration::from_millis(250),
        timeouts: RescaleTimeouts {
            base: Duration::from_secs(150),
            checkpoint_intervals: 3,
            drain: Duration::from_secs(60),
        },
        checkpoint_timeout: Duration::from_secs(30),
        ..ApplyOptions::default()
    }
}

/// Reactive application cluster with `tms` TaskManagers of one slot each.
/// Also returns the dir of the rate file (the job reads it while it runs).
async fn start(tms: usize) -> Option<(FlinkCluster, FlinkClient, JobId, tempfile::TempDir)> {
    let installed = install()?;
    let dir_rate = support::tempdir("fks-reactive-rate-");
    let rate = dir_rate.path().join("rate");
    std::fs::write(&rate, "200").expect("write rate file");
    let app = ApplicationJob {
        class: "fks.LoadJob".into(),
        job_id: JOB_ID.into(),
        args: [
            "--name",
            "fks-reactive-job",
            "--partitions",
            "4",
            "--rate",
            "200",
            "--rate-file",
            rate.to_str().expect("utf-8 path"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    };
    let opts = ClusterOptions {
        slots_per_task_manager: 1,
        task_managers: tms,
        checkpoint_interval: Duration::from_secs(2),
        // reactive mode as the README recommends it: a restart strategy without growing
        // back-off (every reactive scale-down is a failover)
        reactive: true,
        extra_config: "restart-strategy.type: fixed-delay\n\
                       restart-strategy.fixed-delay.attempts: 1000\n\
                       restart-strategy.fixed-delay.delay: 0s\n"
            .into(),
        ..ClusterOptions::default()
    };
    let c = FlinkCluster::start_application(installed, opts, &app).await;
    let job: JobId = JOB_ID.parse().expect("job id");
    c.wait_job_running(&job, Some(tms as u32), Duration::from_secs(180))
        .await;
    let client = FlinkClient::new(&c.rest_url, ClientOptions::default()).expect("client");
    Some((c, client, job, dir_rate))
}

/// The exception-history entries as (exceptionName, first stack-trace line).
async fn exceptions(c: &FlinkCluster, job: &JobId) -> Vec<(String, String)> {
    let v = c
        .get_json(&format!("jobs/{job}/exceptions"))
        .await
        .expect("exceptions");
    v["exceptionHistory"]["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let name = e["exceptionName"].as_str().unwrap_or_default().to_string();
            let head = e["stacktrace"]
                .as_str()
                .and_then(|s| s.lines().next())
                .unwrap_or_default()
                .to_string();
            (name, head)
        })
        .collect()
}

/// Drives `r` to a terminal phase, collecting what the worker would report to KEDA.
async fn drive(r: &mut Rescaler<'_>, running: u32) -> (Vec<RescaleEvent>, Vec<u32>) {
    let mut events = Vec::new();
    let mut reported = vec![reactive::task_managers_to_report(
        running,
        None,
        Some(r.rescale()),
    )];
    while !r.phase().is_terminal() {
        tokio::time::sleep(Duration::from_millis(250)).await;
        match r.poll().await {
            Ok(e) => events.extend(e),
            Err(e) => eprintln!("poll: {e}"),
        }
        reported.push(reactive::task_managers_to_report(
            running,
            None,
            Some(r.rescale()),
        ));
    }
    (events, reported)
}

fn reactive_plan(client_topology: &flink_keda_scaler::core::Topology, tms: u32) -> Plan {
    Plan {
        parallelism: reactive::reactive_parallelism(client_topology, tms, 1),
        task_managers: tms,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reactive_mode_is_detected_and_sized_in_task_managers() {
    let _g = crate::support::flink::REAL_FLINK.lock().await;
    let Some((mut c, client, job, _rate)) = start(2).await else {
        return;
    };
    let version = c.installed.version.clone();

    // 1. detection from /jobmanager/config (2.3 also from /jobs/:id/rescales/config)
    let setup = read_setup(&client, &job, None).await.expect("set-up");
    assert!(setup.reactive, "{setup:?}");
    assert_eq!(setup.version, version);

    // 2. a PUT is refused, and said so precisely
    let topo = client.topology(&job).await.expect("topology");
    let started = Rescaler::start(&client, &job, reactive_plan(&topo, 3), &options(), None).await;
    let Err(err) = started else {
        panic!("a PUT to a reactive job must fail");
    };
    assert!(
        matches!(err, ApplyError::Flink(FlinkError::ReactiveMode { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("reactive"), "{err}");
    let requirements = client
        .resource_requirements(&job)
        .await
        .expect("requirements");
    assert!(
        requirements
            .values()
            .all(|r| r.parallelism.upper_bound == 128),
        "requirements changed: {requirements:?}"
    );

    // 3. scale-up: one more TaskManager, no PUT, no failover, same job
    let before = exceptions(&c, &job).await;
    let mut up = Rescaler::start_reactive(&client, &job, reactive_plan(&topo, 3), &options(), None)
        .await
        .expect("start the reactive scale-up");
    assert_eq!(up.rescale().from.task_managers, 2);
    c.add_task_manager().await;
    let (events, reported) = drive(&mut up, 2).await;
    assert_eq!(
        up.phase(),
        RescalePhase::Completed,
        "{events:?}\n{}",
        c.log_tail()
    );
    assert!(reported.iter().all(|n| *n == 3), "{reported:?}");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, RescaleEvent::Failover(_))),
        "{events:?}"
    );
    c.wait_job_running(&job, Some(3), Duration::from_secs(30))
        .await;
    assert_eq!(
        exceptions(&c, &job).await,
        before,
        "scale-up is no failover"
    );
    let up_took = up.into_outcome().rescale.finished_at;

    // 4. scale-down: checkpoint first, then SIGTERM one TaskManager (as the kubelet does)
    let mut down =
        Rescaler::start_reactive(&client, &job, reactive_plan(&topo, 2), &options(), None)
            .await
            .expect("start the reactive scale-down");
    let checkpoint = down
        .checkpoint_before()
        .expect("a checkpoint before the scale-down");
    assert_eq!(down.phase(), RescalePhase::Applying);
    assert_eq!(
        reactive::task_managers_to_report(3, None, Some(down.rescale())),
        2,
        "the lower count is reported once the checkpoint is taken"
    );
    let newest = c
        .task_managers()
        .await
        .expect("taskmanagers")
        .iter()
        .filter_map(|t| FlinkCluster::tm_index(&t.id))
        .max()
        .expect("a TaskManager");
    tokio::task::block_in_place(|| c.stop_task_manager(newest));
    let (events, _) = drive(&mut down, 3).await;
    assert_eq!(
        down.phase(),
        RescalePhase::Completed,
        "{events:?}\n{}",
        c.log_tail()
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, RescaleEvent::Failover(_))),
        "the expected failover was counted as the rescale's own: {events:?}"
    );
    c.wait_job_running(&job, Some(2), Duration::from_secs(30))
        .await;

    // 5. what Flink recorded: exactly one failover, "The TaskExecutor is shutting down.",
    //    restored from the checkpoint the scaler took
    let after = exceptions(&c, &job).await;
    let new: Vec<_> = after.iter().filter(|e| !before.contains(e)).collect();
    assert_eq!(new.len(), 1, "{after:?}");
    assert!(
        new[0].1.contains("The TaskExecutor is shutting down."),
        "{new:?}"
    );
    let ckpts = c
        .get_json(&format!("jobs/{job}/checkpoints"))
        .await
        .expect("checkpoints");
    // the failover restores the latest completed checkpoint: the scaler's, or a periodic
    // one (every 2 s here) that completed between it and the SIGTERM
    let restored = ckpts["latest"]["restored"]["id"].as_u64();
    assert!(
        restored.is_some_and(|r| r >= checkpoint),
        "restored {restored:?}, taken {checkpoint}: {}",
        ckpts["latest"]
    );
    let details = client.job(&job).await.expect("job");
    assert_eq!(details.state, "RUNNING");
    eprintln!(
        "flink {version}: reactive up 2→3 finished at {up_took:?}; down 3→2 from checkpoint \
         {checkpoint}, failover entry {:?}",
        new[0]
    );
}

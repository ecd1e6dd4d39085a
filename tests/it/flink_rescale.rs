//! Real-Flink tests of in-place rescaling (standalone session cluster from PyPI jars,
//! adaptive scheduler, TaskManagers as local processes). Version from `FKS_FLINK_VERSION`
//! (default 2.3.0). Tests share the machine's CPUs, so they run one at a time (a lock).
//!
//! `cargo test --test it flink_rescale:: -- --nocapture`; the latency figures:
//! `cargo test --test it flink_rescale::measure_put_to_running -- --ignored --nocapture`.

use crate::support;

use std::time::Duration;

use flink_keda_scaler::{
    core::{FailoverWatch, JobId, JobSelector, RescaleEvent, RescalePhase},
    flink::{
        apply_target, observe_rescale as observe, plan_for, uniform_parallelism, ClientOptions,
        FlinkClient, FlinkError, RequirementsChange,
    },
    runtime::apply::{apply_and_wait, ApplyOptions, Rescaler},
};
use support::flink::{install, ClusterOptions, FlinkCluster};

mod checkpoint_nudge;
mod load_job;
mod raise;
mod reporter_names;

use support::flink::REAL_FLINK as LOCK;

fn job_args(c: &FlinkCluster) -> Vec<String> {
    let rate = c.path("rate");
    std::fs::write(&rate, "200").expect("write rate file");
    [
        "--name",
        "fks-test-job",
        "--partitions",
        "8",
        "--rate",
        "200",
        "--rate-file",
        rate.to_str().expect("utf-8 path"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

async fn start(
    opts: ClusterOptions,
    parallelism: u32,
) -> Option<(FlinkCluster, FlinkClient, JobId)> {
    let installed = install()?;
    let c = FlinkCluster::start(installed, opts).await;
    let job = c.submit_job(&job_args(&c), parallelism).await;
    let client = FlinkClient::new(&c.rest_url, ClientOptions::default()).expect("client");
    Some((c, client, job))
}

async fn wait_checkpoint(client: &FlinkClient, job: &JobId, after: u64) -> u64 {
    for _ in 0..240 {
        let s = client
            .checkpoint_stats(job)
            .await
            .expect("checkpoint stats");
        if s.completed > after {
            return s.completed;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("no checkpoint completed for job {job}");
}

fn test_options() -> ApplyOptions {
    ApplyOptions {
        poll_interval: Duration::from_millis(200),
        timeouts: flink_keda_scaler::core::RescaleTimeouts {
            base: Duration::from_secs(60),
            checkpoint_intervals: 3,
            drain: Duration::from_secs(40),
        },
        ..ApplyOptions::default()
    }
}

/// Flink's exception history of `job` is empty (no failover).
async fn assert_no_exceptions(client: &FlinkClient, job: &JobId) {
    let history = client.exceptions(job).await.expect("exceptions");
    assert!(history.entries.is_empty(), "{:?}", history.entries);
}

/// Applies `target` and waits; the rescale must complete.
async fn rescale_completed(
    client: &FlinkClient,
    job: &JobId,
    target: flink_keda_scaler::core::Plan,
    options: &ApplyOptions,
) -> flink_keda_scaler::runtime::apply::RescaleOutcome {
    let out = apply_and_wait(client, job, target, options)
        .await
        .expect("rescale");
    assert_eq!(
        out.rescale.phase,
        RescalePhase::Completed,
        "{:?}",
        out.events
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_up_in_place_keeps_job_id_and_state() {
    let _g = LOCK.lock().await;
    let Some((mut c, client, job)) = start(ClusterOptions::default(), 2).await else {
        return;
    };
    assert_eq!(
        client
            .resolve_job(&JobSelector::Name("fks-test-job".into()))
            .await
            .expect("resolve")
            .jid,
        job
    );
    let completed = wait_checkpoint(&client, &job, 0).await;
    c.add_task_manager().await;
    let topo = client.topology(&job).await.expect("topology");
    assert_eq!(topo.vertices.len(), 2, "{topo:?}");
    assert!(
        topo.vertices.iter().any(|v| topo.is_keyed(&v.id)),
        "keyBy edge expected: {topo:?}"
    );
    let target = plan_for(&client, &topo, uniform_parallelism(&topo, 4), None)
        .await
        .expect("plan");
    assert_eq!(target.task_managers, 2);

    let out = rescale_completed(&client, &job, target, &test_options()).await;
    assert!(matches!(out.change, RequirementsChange::Updated(_)));
    let details = client.job(&job).await.expect("job");
    assert_eq!(details.jid, job, "same job id");
    assert_eq!(details.state, "RUNNING");
    assert!(
        details.vertices.iter().all(|v| v.parallelism == 4),
        "{:?}",
        details.vertices
    );
    let stats = client.checkpoint_stats(&job).await.expect("stats");
    assert!(
        stats.restored_id.is_some_and(|id| id >= completed),
        "state restored from a checkpoint taken before the rescale: {stats:?}"
    );
    assert_no_exceptions(&client, &job).await;
    assert_eq!(out.failovers(), 0, "{:?}", out.events);
    // the state keeps growing after the rescale (counts continue from the checkpoint)
    wait_checkpoint(&client, &job, stats.completed).await;
    eprintln!(
        "flink {}: scale-up 2→4 PUT→RUNNING {:?}",
        c.installed.version, out.put_to_running
    );
    // applying the same target again is idempotent: no PUT
    let again = apply_target(
        &client,
        &job,
        &topo_target(&client, &job, 4).await,
        &Default::default(),
        false,
    )
    .await
    .expect("idempotent");
    assert_eq!(again, RequirementsChange::Unchanged);
}

async fn topo_target(
    client: &FlinkClient,
    job: &JobId,
    p: u32,
) -> std::collections::BTreeMap<flink_keda_scaler::core::VertexId, u32> {
    uniform_parallelism(&client.topology(job).await.expect("topology"), p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_down_in_order_frees_a_task_manager_without_failover() {
    let _g = LOCK.lock().await;
    let opts = ClusterOptions {
        task_managers: 2,
        ..ClusterOptions::default()
    };
    let Some((mut c, client, job)) = start(opts, 4).await else {
        return;
    };
    wait_checkpoint(&client, &job, 0).await;
    let topo = client.topology(&job).await.expect("topology");
    let target = plan_for(&client, &topo, uniform_parallelism(&topo, 2), None)
        .await
        .expect("plan");
    assert_eq!(target.task_managers, 1);
    let mut r = Rescaler::start(&client, &job, target, &test_options(), None)
        .await
        .expect("start");
    let mut reported = vec![r.task_managers_to_report()];
    while !r.phase().is_terminal() {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Err(e) = r.poll().await {
            eprintln!("poll: {e}");
        }
        reported.push(r.task_managers_to_report());
    }
    let out = r.into_outcome();
    assert_eq!(
        out.rescale.phase,
        RescalePhase::Completed,
        "{:?}\n{}",
        out.events,
        c.log_tail()
    );
    // KEDA saw 2 until the very end, then 1
    let (last, before) = reported.split_last().expect("reports");
    assert_eq!(*last, 1);
    assert!(before.iter().all(|n| *n == 2), "{reported:?}");
    assert!(out
        .events
        .iter()
        .any(|(_, e)| matches!(e, RescaleEvent::SurplusIdle { .. })));

    // now it is safe to stop the idle TaskManager
    let tms = client.task_managers().await.expect("taskmanagers");
    let idle = tms
        .iter()
        .find(|t| t.free_slots == t.slots_number)
        .expect("an idle TaskManager");
    // REST metrics (numRestarts) come from the JobManager's metric fetcher, which lags by
    // up to `metrics.fetcher.update-interval` (1 s here): let the rescale's own restart
    // show up before taking the baseline, or it would look like a failover.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let baseline = observe(&client, &job, chrono::Utc::now())
        .await
        .expect("observe");
    let mut watch = FailoverWatch::new(baseline.num_restarts, baseline.latest_exception_ms);
    c.stop_task_manager(FlinkCluster::tm_index(&idle.id).expect("our TaskManager"));
    c.wait_until(
        "TaskManager deregistration",
        Duration::from_secs(60),
        |c| async move { c.task_managers().await.is_ok_and(|t| t.len() == 1) },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = observe(&client, &job, chrono::Utc::now())
        .await
        .expect("observe");
    let failovers = watch.observe(after.status, after.num_restarts, after.latest_exception_ms);
    assert!(failovers.is_empty(), "{failovers:?}");
    c.wait_job_running(&job, Some(2), Duration::from_secs(10))
        .await;
    assert_no_exceptions(&client, &job).await;
    eprintln!(
        "flink {}: scale-down 4→2 PUT→RUNNING {:?}, completed (slots freed) after {:?} ms",
        c.installed.version,
        out.put_to_running,
        out.rescale
            .finished_at
            .map(|f| (f - out.rescale.started_at).num_milliseconds())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_a_busy_task_manager_is_reported_as_failover() {
    let _g = LOCK.lock().await;
    let opts = ClusterOptions {
        task_managers: 2,
        ..ClusterOptions::default()
    };
    let Some((mut c, client, job)) = start(opts, 4).await else {
        return;
    };
    wait_checkpoint(&client, &job, 0).await;
    let baseline = observe(&client, &job, chrono::Utc::now())
        .await
        .expect("observe");
    let mut watch = FailoverWatch::new(baseline.num_restarts, baseline.latest_exception_ms);
    let tms = client.task_managers().await.expect("taskmanagers");
    let busy = tms
        .iter()
        .find(|t| t.free_slots < t.slots_number)
        .expect("a busy TaskManager");
    // the unsafe order: KEDA removes a TaskManager before Flink rescaled down
    c.stop_task_manager(FlinkCluster::tm_index(&busy.id).expect("our TaskManager"));
    let mut seen = Vec::new();
    for _ in 0..120 {
        let o = observe(&client, &job, chrono::Utc::now())
            .await
            .expect("observe");
        seen.extend(watch.observe(o.status, o.num_restarts, o.latest_exception_ms));
        if !seen.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(!seen.is_empty(), "failover not detected\n{}", c.log_tail());
    eprintln!("flink {}: failover detected: {seen:?}", c.installed.version);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_scheduler_gives_the_adaptive_scheduler_error() {
    let _g = LOCK.lock().await;
    let opts = ClusterOptions {
        adaptive: false,
        ..ClusterOptions::default()
    };
    let Some((c, client, job)) = start(opts, 1).await else {
        return;
    };
    let target = topo_target(&client, &job, 2).await;
    let (st, body) = c
        .raw(
            reqwest::Method::GET,
            &format!("jobs/{job}/resource-requirements"),
            None,
        )
        .await;
    c.record("default_scheduler_get_requirements", st, &body);
    let put: serde_json::Value = target
        .keys()
        .map(|v| {
            (
                v.to_string(),
                serde_json::json!({"parallelism": {"lowerBound": 1, "upperBound": 2}}),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into();
    let (st, body) = c
        .raw(
            reqwest::Method::PUT,
            &format!("jobs/{job}/resource-requirements"),
            Some(&put),
        )
        .await;
    c.record("default_scheduler_put_requirements", st, &body);
    let err = apply_target(&client, &job, &target, &Default::default(), false)
        .await
        .expect_err("default scheduler cannot rescale in place");
    assert_eq!(err.kind(), "adaptive_scheduler_required", "{err}");
    assert!(
        err.to_string().contains("jobmanager.scheduler: adaptive"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_puts_succeed_or_conflict() {
    let _g = LOCK.lock().await;
    let Some((_c, client, job)) = start(ClusterOptions::default(), 1).await else {
        return;
    };
    let current = client
        .resource_requirements(&job)
        .await
        .expect("requirements");
    let mut conflicts = 0;
    for round in 0..5u32 {
        let mk = |p: i64| {
            let mut b = current.clone();
            for r in b.values_mut() {
                r.parallelism.upper_bound = p;
                r.parallelism.lower_bound = 1;
            }
            b
        };
        let (a, b) = (mk(1 + i64::from(round % 2)), mk(2 - i64::from(round % 2)));
        let (ra, rb) = tokio::join!(
            client.put_resource_requirements(&job, &a),
            client.put_resource_requirements(&job, &b)
        );
        for r in [ra, rb] {
            match r {
                Ok(()) => {}
                Err(FlinkError::Conflict { .. }) => conflicts += 1,
                Err(e) => panic!("unexpected error from a concurrent PUT: {e}"),
            }
        }
    }
    eprintln!("real Flink: {conflicts} of 10 concurrent PUTs answered 409");
    // whatever won, the stored requirements are one of the two bodies, never a mix
    let stored = client
        .resource_requirements(&job)
        .await
        .expect("requirements");
    let uppers: std::collections::BTreeSet<i64> =
        stored.values().map(|r| r.parallelism.upper_bound).collect();
    assert_eq!(uppers.len(), 1, "{stored:?}");
}

/// Prints PUT→RUNNING latencies of alternating 2↔4 rescales and their median.
/// `FKS_RESCALES` (default 6) rescales.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run with --ignored --nocapture"]
async fn measure_put_to_running() {
    let _g = LOCK.lock().await;
    let opts = ClusterOptions {
        task_managers: 2,
        ..ClusterOptions::default()
    };
    let Some((c, client, job)) = start(opts, 2).await else {
        return;
    };
    wait_checkpoint(&client, &job, 0).await;
    let n: usize = std::env::var("FKS_RESCALES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    let topo = client.topology(&job).await.expect("topology");
    let mut ups = Vec::new();
    let mut downs = Vec::new();
    for i in 0..n {
        let p = if i % 2 == 0 { 4 } else { 2 };
        let target = plan_for(&client, &topo, uniform_parallelism(&topo, p), None)
            .await
            .expect("plan");
        let out = rescale_completed(&client, &job, target, &test_options()).await;
        let ms = out
            .put_to_running
            .map(|d| d.as_millis())
            .unwrap_or_default();
        eprintln!(
            "rescale {i}: → {p}: PUT→RUNNING {ms} ms, failovers {}",
            out.failovers()
        );
        if p == 4 {
            ups.push(ms)
        } else {
            downs.push(ms)
        }
        // let the adaptive scheduler's cooldown pass
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let median = |v: &mut Vec<u128>| {
        v.sort_unstable();
        v.get(v.len() / 2).copied().unwrap_or_default()
    };
    let mut all: Vec<u128> = ups.iter().chain(downs.iter()).copied().collect();
    eprintln!(
        "flink {} PUT→RUNNING median: all {} ms, up {} ms, down {} ms (checkpoint interval {:?})",
        c.installed.version,
        median(&mut all),
        median(&mut ups),
        median(&mut downs),
        c.opts.checkpoint_interval
    );
}

/// Records REST responses as fixtures for the wiremock tests:
/// `FKS_RECORD_FIXTURES=1 cargo test --test it flink_rescale::record_fixtures -- --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "records tests/fixtures/flink/<version>; needs FKS_RECORD_FIXTURES=1"]
async fn record_fixtures() {
    use reqwest::Method;
    let _g = LOCK.lock().await;
    let opts = ClusterOptions {
        task_managers: 2,
        ..ClusterOptions::default()
    };
    let Some((mut c, client, job)) = start(opts, 2).await else {
        return;
    };
    wait_checkpoint(&client, &job, 0).await;
    for (name, path) in [
        ("overview", "overview".to_string()),
        ("jobs_overview", "jobs/overview".to_string()),
        ("job", format!("jobs/{job}")),
        ("plan", format!("jobs/{job}/plan")),
        ("exceptions_empty", format!("jobs/{job}/exceptions")),
        ("taskmanagers", "taskmanagers".to_string()),
        (
            "checkpoints_config",
            format!("jobs/{job}/checkpoints/config"),
        ),
        ("checkpoints", format!("jobs/{job}/checkpoints")),
        (
            "resource_requirements",
            format!("jobs/{job}/resource-requirements"),
        ),
        ("job_metrics", format!("jobs/{job}/metrics?get=numRestarts")),
        (
            "job_unknown",
            "jobs/00000000000000000000000000000000".to_string(),
        ),
    ] {
        c.record_get(name, &path).await;
    }
    let reqs = client
        .resource_requirements(&job)
        .await
        .expect("requirements");
    let first = reqs.keys().next().expect("a vertex").clone();
    let body = |f: &dyn Fn(&str) -> Option<(i64, i64)>| -> serde_json::Value {
        reqs.keys()
            .filter_map(|k| {
                f(k).map(|(l, u)| {
                    (
                        k.clone(),
                        serde_json::json!({"parallelism": {"lowerBound": l, "upperBound": u}}),
                    )
                })
            })
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let path = format!("jobs/{job}/resource-requirements");
    for (name, b) in [
        (
            "put_missing_vertex",
            body(&|k| (k != first).then_some((1, 2))),
        ),
        ("put_over_max_parallelism", body(&|_| Some((1, 500)))),
        ("put_lower_above_upper", body(&|_| Some((3, 2)))),
        ("put_ok", body(&|_| Some((1, 2)))),
    ] {
        let (st, text) = c.raw(Method::PUT, &path, Some(&b)).await;
        c.record(name, st, &text);
    }
    let (st, text) = c
        .raw(
            Method::PUT,
            "jobs/00000000000000000000000000000000/resource-requirements",
            Some(&body(&|_| Some((1, 2)))),
        )
        .await;
    c.record("put_unknown_job", st, &text);
    let tms = client.task_managers().await.expect("taskmanagers");
    let busy = tms
        .iter()
        .find(|t| t.free_slots < t.slots_number)
        .expect("a busy TaskManager");
    c.stop_task_manager(FlinkCluster::tm_index(&busy.id).expect("our TaskManager"));
    for _ in 0..120 {
        let h = client.exceptions(&job).await.expect("exceptions");
        if !h.entries.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    c.record_get(
        "exceptions_after_failover",
        &format!("jobs/{job}/exceptions"),
    )
    .await;
}

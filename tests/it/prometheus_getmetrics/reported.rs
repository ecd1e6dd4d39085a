//! What KEDA gets when the job is not simply running at its plan: a warm spare on top of
//! what the job needs, and — when a TaskManager is lost (the adaptive scheduler runs the
//! job degraded below its requirements) or none is registered — still what the job's
//! requirements need, never the degraded parallelism's count nor the policy minimum.

use super::*;

/// `spareTaskManagers: 2` in the ScaledObject: GetMetrics answers the job's need + 2 and
/// the exporter shows the spare.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spare_is_reported_on_top_of_the_need() {
    let Some(e) = env(true, false).await else {
        return;
    };
    let mut client = e.scaler.client().await;
    let r = object_ref(
        &e.flink.url(),
        &e.job.job_name,
        &[("spareTaskManagers", "2")],
    );
    let need = current_tms(&e.job);
    let got = wait_metrics(&mut client, &r, "with spare", Result::is_ok, &e.scaler).await;
    assert_eq!(got.expect("GetMetrics"), f64::from(need + 2));
    let metrics = e.scaler.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("flink_keda_scaler_spare_task_managers{") && l.ends_with(" 2")),
        "{metrics}"
    );
    // a spare larger than maxTaskManagers - minTaskManagers is refused, naming the key
    let bad = object_ref(
        &e.flink.url(),
        &e.job.job_name,
        &[("spareTaskManagers", "10")],
    );
    let err = get_metrics(&mut client, &bad).await.expect_err("refused");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("spareTaskManagers"), "{err:?}");
}

/// A TaskManager lost: Flink runs the job at half its requirements with one TaskManager
/// left. The report stays at what the requirements need (the HPA keeps the replicas and
/// the lost pod is replaced); then no TaskManager at all: still the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_task_manager_does_not_lower_the_report() {
    let Some(e) = env(true, false).await else {
        return;
    };
    let mut client = e.scaler.client().await;
    let r = object_ref(&e.flink.url(), &e.job.job_name, &[]);
    let need = current_tms(&e.job);
    assert!(need >= 2, "the set-up needs at least 2 TaskManagers");
    let steady = wait_metrics(&mut client, &r, "steady", Result::is_ok, &e.scaler).await;
    assert_eq!(steady.expect("steady"), f64::from(need));

    {
        let mut s = e.flink.state.lock().expect("state");
        for v in &mut s.vertices {
            v.upper_bound = Some(v.parallelism);
            v.parallelism = (v.parallelism / 2).max(1);
        }
        s.task_managers = need - 1;
    }
    let degraded = wait_decision(&e.scaler, "degraded parallelism observed", |d| {
        d["current"]["task_managers"].as_u64() == Some(u64::from(need / 2).max(1))
    })
    .await;
    let got = get_metrics(&mut client, &r).await;
    assert_eq!(
        got.expect("GetMetrics while degraded"),
        f64::from(need),
        "what the requirements need, not the degraded count; decision {degraded:#}"
    );

    e.flink.state.lock().expect("state").task_managers = 0;
    // a few ticks with no TaskManager registered
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got = get_metrics(&mut client, &r).await;
    assert_eq!(
        got.expect("GetMetrics with no TaskManager registered"),
        f64::from(need),
        "slots remembered, the requirements' count kept: {:#}",
        e.scaler.debug_jobs().await
    );
}

//! The serving process around the loop: SIGTERM ends open streams and exits 0; KEDA
//! re-sending a ScaledObject with changed metadata replaces its worker.

use super::*;

/// SIGTERM with a StreamIsActive stream open: the stream ends cleanly (KEDA reconnects
/// elsewhere) and the process exits 0 promptly instead of waiting on the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_open_streams_and_exits_zero() {
    let Some(mut e) = env(true, false).await else {
        return;
    };
    let mut client = e.scaler.client().await;
    let r = object_ref(&e.flink.url(), &e.job.job_name, &[]);
    let mut stream = client
        .stream_is_active(r.clone())
        .await
        .expect("StreamIsActive")
        .into_inner();
    let first = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("first StreamIsActive message in time")
        .expect("stream ok")
        .expect("a message");
    assert!(first.result, "the job needs > 0 TaskManagers");

    let status = e
        .scaler
        .terminate(Duration::from_secs(10))
        .await
        .expect("exits within 10 s of SIGTERM");
    assert!(status.success(), "exit status {status}");
    // The stream ends (OK, or the transport closing), it never hangs.
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                other => break other,
            }
        }
    })
    .await
    .expect("stream ended");
    assert!(
        !matches!(&end, Err(s) if s.code() == Code::Unknown || s.code() == Code::Internal),
        "{end:?}"
    );
    let log = e.scaler.log();
    assert!(log.contains("stopped"), "{log}");
}

/// KEDA re-sends a ScaledObject with changed metadata (the user edited the trigger): the
/// old evaluation stops and exactly one worker (with the new settings) remains, so two
/// workers never act on one job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_metadata_replaces_the_worker() {
    let Some(e) = env(true, false).await else {
        return;
    };
    let mut client = e.scaler.client().await;
    let before = object_ref(&e.flink.url(), &e.job.job_name, &[]);
    let first = wait_metrics(
        &mut client,
        &before,
        "first answer",
        Result::is_ok,
        &e.scaler,
    )
    .await;
    let after = object_ref(&e.flink.url(), &e.job.job_name, &[("maxTaskManagers", "5")]);
    let edited = wait_metrics(
        &mut client,
        &after,
        "answer after edit",
        Result::is_ok,
        &e.scaler,
    )
    .await;
    // the job needs 2 TaskManagers at steady load, within both bounds
    assert_eq!(first.expect("first"), edited.expect("edited"));
    let started = Instant::now();
    loop {
        let jobs = e.scaler.debug_jobs().await;
        let list = jobs["jobs"].as_array().cloned().unwrap_or_default();
        let maxes: Vec<Option<u64>> = list
            .iter()
            .map(|j| j["policy"]["max_task_managers"].as_u64())
            .collect();
        if maxes == vec![Some(5)] {
            break;
        }
        assert!(
            started.elapsed() < CONVERGE,
            "expected one worker with maxTaskManagers 5, got {maxes:?}: {jobs:#}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let metrics = e.scaler.metrics().await;
    assert_eq!(gauge(&metrics, "max_task_managers"), Some(5.0), "{metrics}");
    assert!(
        e.scaler
            .log()
            .contains("ScaledObject metadata changed; restarting its evaluation"),
        "{}",
        e.scaler.log()
    );
}

//! StreamIsActive over real gRPC: first result, then only changes, an error ends the
//! stream; streams end on shutdown without holding it up; bounded by the rpc timeout.

use super::*;

#[tokio::test]
async fn stream_is_active_sends_first_result_then_only_changes_then_error_ends_it() {
    let server = TestServer::start(test_settings()).await;
    server.evaluator.set(
        "s",
        Answer::Ok {
            task_managers: 1,
            active: false,
        },
    );
    let mut client = server.client().await;
    let mut stream = client
        .stream_is_active(valid_ref("s"))
        .await
        .expect("StreamIsActive")
        .into_inner();
    let first = tokio::time::timeout(Duration::from_secs(2), stream.next())
        .await
        .expect("first message in time")
        .expect("a message")
        .expect("ok message");
    assert!(!first.result);

    // No change: several intervals pass without a message, but the evaluator is polled.
    let calls_before = server.evaluator.calls();
    let quiet = tokio::time::timeout(Duration::from_millis(400), stream.next()).await;
    assert!(
        quiet.is_err(),
        "unexpected message without a change: {quiet:?}"
    );
    assert!(server.evaluator.calls() > calls_before + 2);

    server.evaluator.set(
        "s",
        Answer::Ok {
            task_managers: 2,
            active: true,
        },
    );
    let changed = tokio::time::timeout(Duration::from_secs(2), stream.next())
        .await
        .expect("change in time")
        .expect("a message")
        .expect("ok message");
    assert!(changed.result);

    server
        .evaluator
        .set("s", Answer::Err(EvalError::unavailable("prometheus down")));
    let err = tokio::time::timeout(Duration::from_secs(2), stream.next())
        .await
        .expect("error in time")
        .expect("an item")
        .expect_err("an error status");
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().contains("prometheus down"));
    let end = tokio::time::timeout(Duration::from_secs(2), stream.next())
        .await
        .expect("end in time");
    assert!(end.is_none(), "stream must end after an error: {end:?}");
}

#[tokio::test]
async fn streams_end_cleanly_on_shutdown_and_shutdown_does_not_wait_on_them() {
    let server = TestServer::start(test_settings()).await;
    server.evaluator.set(
        "s",
        Answer::Ok {
            task_managers: 1,
            active: true,
        },
    );
    let mut client = server.client().await;
    let mut active = client
        .stream_is_active(valid_ref("s"))
        .await
        .expect("StreamIsActive")
        .into_inner();
    let mut spec = client
        .stream_metric_spec(valid_ref("s"))
        .await
        .expect("StreamMetricSpec")
        .into_inner();
    let first = active.next().await.expect("msg").expect("ok");
    assert!(first.result);
    let spec_first = spec.next().await.expect("msg").expect("ok");
    assert_eq!(spec_first.metric_specs.len(), 1);
    assert_eq!(spec_first.metric_specs[0].metric_name, ORDERS_METRIC);
    assert_eq!(spec_first.metric_specs[0].target_size_float, 1.0);

    // The spec stream stays open (nothing more to say) until shutdown.
    let held = tokio::time::timeout(Duration::from_millis(200), spec.next()).await;
    assert!(held.is_err(), "spec stream must stay open: {held:?}");

    let observer = std::sync::Arc::clone(&server.observer);
    let started = Instant::now();
    server
        .stop(Duration::from_secs(5))
        .await
        .expect("serve returns Ok");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    for (what, end) in [
        ("StreamIsActive", active.next().await.map(|r| r.map(|_| ()))),
        ("StreamMetricSpec", spec.next().await.map(|r| r.map(|_| ()))),
    ] {
        assert!(
            end.is_none(),
            "{what} must end cleanly (status OK), got {end:?}"
        );
    }
    let seen = observer.seen();
    assert!(seen.contains(&("StreamIsActive", Code::Ok)), "{seen:?}");
    assert!(seen.contains(&("StreamMetricSpec", Code::Ok)), "{seen:?}");
}

#[tokio::test]
async fn stream_is_active_is_bounded_by_the_rpc_timeout_and_cancellation_is_observed() {
    let server = TestServer::start(test_settings()).await;
    server.evaluator.set("hung", Answer::Hang);
    server.evaluator.set(
        "ok",
        Answer::Ok {
            task_managers: 1,
            active: true,
        },
    );
    let mut client = server.client().await;
    let mut hung = client
        .stream_is_active(valid_ref("hung"))
        .await
        .expect("StreamIsActive")
        .into_inner();
    let err = tokio::time::timeout(Duration::from_secs(3), hung.next())
        .await
        .expect("bounded by the rpc timeout")
        .expect("an item")
        .expect_err("timeout status");
    assert_eq!(err.code(), Code::Unavailable);
    assert!(
        err.message().contains("timed out after 300ms"),
        "{}",
        err.message()
    );

    // KEDA going away drops the stream: the rpc is reported as CANCELLED.
    let mut ok = client
        .stream_is_active(valid_ref("ok"))
        .await
        .expect("StreamIsActive")
        .into_inner();
    assert!(ok.next().await.expect("msg").expect("ok").result);
    drop(ok);
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let seen = server.observer.seen();
        if seen.contains(&("StreamIsActive", Code::Cancelled)) {
            assert!(
                seen.contains(&("StreamIsActive", Code::Unavailable)),
                "{seen:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "cancellation not observed: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

//! Rescale Events (events.k8s.io/v1) on the ScaledObject and the FlinkDeployment, as
//! the real kube-apiserver stores them.

use super::*;

/// Rescale Events land on the ScaledObject and the FlinkDeployment (events.k8s.io/v1),
/// with the decision's reason as note; a repeated event becomes a series (patch).
#[tokio::test]
async fn rescale_events_are_written() {
    let Some(Setup {
        server: _server,
        admin,
        scaler,
        ns,
    }) = setup("events").await
    else {
        return;
    };
    let pp = PostParams::default();
    let fds =
        Api::<DynamicObject>::namespaced_with(admin.clone(), &ns, &resources::flink_deployment());
    let sos =
        Api::<DynamicObject>::namespaced_with(admin.clone(), &ns, &resources::scaled_object());
    fds.create(
        &pp,
        &flink_deployment(
            "job",
            "standalone",
            json!({"scheduler-mode": "reactive"}),
            Some(2),
        ),
    )
    .await
    .expect("create FlinkDeployment");
    sos.create(
        &pp,
        &scaled_object(
            "so",
            "flink.apache.org/v1beta1",
            "FlinkDeployment",
            "job",
            json!({}),
        ),
    )
    .await
    .expect("create ScaledObject");
    let discovery = Discovery::start(scaler.clone(), Some(&ns));
    discovery
        .wait_ready(Duration::from_secs(15), true)
        .await
        .expect("ready");
    let target = discovery.resolve(&ns, "so", None).expect("target");
    let events = EventPublisher::new(scaler.clone(), "scaler-0");
    let t0 = Instant::now();
    events
        .rescale(
            &target,
            RescalePhase::Started,
            "scale_up: source lag growing (2 → 4 TaskManagers)",
        )
        .await
        .expect("started");
    events
        .rescale(&target, RescalePhase::Completed, "running at parallelism 8")
        .await
        .expect("completed");
    events
        .rescale(&target, RescalePhase::Failed, "timed out after 300 s")
        .await
        .expect("failed");
    events
        .rescale(&target, RescalePhase::Failed, "timed out after 300 s")
        .await
        .expect("repeat → series patch");
    let took = t0.elapsed();

    let list = Api::<Event>::namespaced(admin.clone(), &ns)
        .list(&ListParams::default())
        .await
        .expect("list events");
    let on = |kind: &str, reason: &str| {
        list.items
            .iter()
            .filter(|e| {
                e.regarding.as_ref().and_then(|r| r.kind.as_deref()) == Some(kind)
                    && e.reason.as_deref() == Some(reason)
            })
            .collect::<Vec<_>>()
    };
    for kind in ["ScaledObject", "FlinkDeployment"] {
        let started = on(kind, "RescaleStarted");
        assert_eq!(started.len(), 1, "{kind}");
        assert_eq!(
            started[0].note.as_deref(),
            Some("scale_up: source lag growing (2 → 4 TaskManagers)")
        );
        assert_eq!(started[0].type_.as_deref(), Some("Normal"));
        assert_eq!(
            started[0].reporting_controller.as_deref(),
            Some("flink-keda-scaler")
        );
        assert_eq!(on(kind, "RescaleCompleted").len(), 1, "{kind}");
        let failed = on(kind, "RescaleFailed");
        assert_eq!(failed.len(), 1, "{kind}");
        assert_eq!(failed[0].type_.as_deref(), Some("Warning"));
        assert_eq!(
            failed[0].series.as_ref().map(|s| s.count),
            Some(2),
            "{kind}: repeat recorded as series"
        );
    }
    // Set-up warnings of a native-mode FlinkDeployment become Warning Events.
    fds.create(&pp, &flink_deployment("native", "native", json!({}), None))
        .await
        .expect("create FlinkDeployment");
    sos.create(
        &pp,
        &scaled_object(
            "so-native",
            "flink.apache.org/v1beta1",
            "FlinkDeployment",
            "native",
            json!({}),
        ),
    )
    .await
    .expect("create ScaledObject");
    let native = eventually(
        "native target in cache",
        Duration::from_secs(10),
        || async { discovery.resolve(&ns, "so-native", None).ok() },
    )
    .await;
    events
        .target_warnings(&native)
        .await
        .expect("warning events");
    let list = Api::<Event>::namespaced(admin.clone(), &ns)
        .list(&ListParams::default())
        .await
        .expect("list events");
    let mut warned: Vec<&str> = list
        .items
        .iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("so-native"))
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .filter_map(|e| e.reason.as_deref())
        .collect();
    warned.sort_unstable();
    assert_eq!(warned, vec!["NativeModeUpgrade", "ReplicasUnset"]);
    let so_uid = sos.get("so").await.expect("so").uid();
    assert!(
        on("ScaledObject", "RescaleStarted")[0]
            .regarding
            .as_ref()
            .and_then(|r| r.uid.clone())
            == so_uid
    );
    eprintln!("events: 8 writes in {:.3} s", took.as_secs_f64());
}

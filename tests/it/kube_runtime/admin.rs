//! `POST /admin/rescale` on two built binaries (leader and follower) against the real
//! kube-apiserver, real Prometheus and a fake JobManager that holds PUTs: the follower
//! answers 503 and never PUTs; the leader's manual rescale takes the job's claim, so
//! while it is in flight the worker's automatic scale-up is deferred and a second manual
//! rescale is refused (409 naming the holder): one PUT sequence; once it ends the
//! automatic rescale goes ahead, and a manual rescale during it is refused naming it.
//! The manual rescale is announced by a `ManualRescale` Event on the ScaledObject naming
//! the caller and the parallelism.

use super::*;

use support::kube::service_account_token;

async fn post_rescale(port: u16, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let r = reqwest::Client::builder()
        .timeout(Duration::from_secs(90))
        .build()
        .expect("http client")
        .post(format!("http://127.0.0.1:{port}/admin/rescale"))
        .json(body)
        .send()
        .await
        .expect("POST /admin/rescale");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_and_automatic_rescales_share_the_claim_and_the_follower_never_puts() {
    // busy 0.5: within the band, no automatic decision
    let Some(Base {
        server,
        admin,
        mut job,
        exporter,
        prom,
    }) = base(0.5).await
    else {
        return;
    };
    let ns = namespace(&admin, "admin-rescale").await;
    apply_rbac(&server, &admin, &ns).await;
    let flink = FakeFlink::start(&job, vec![tm_ip(0), tm_ip(1)], false).await;
    create_scale_target(&admin, &ns, &flink.url(), &job.job_name).await;
    prom.wait_for_job(&job.job_id).await;
    let token = service_account_token(&admin, &ns, SERVICE_ACCOUNT).await;
    let dir = support::tempdir("fks-kube-admin-");
    let kubeconfig = server.kubeconfig_with_token(&token, dir.path());
    let cfg = config(&prom.url());
    let leader = Scaler::start(dir.path(), "adm-a", &ns, &kubeconfig, &cfg).await;
    eventually("adm-a leads", Duration::from_secs(15), || {
        let (admin, ns) = (admin.clone(), ns.clone());
        async move { (lease_holder(&admin, &ns).await.as_deref() == Some("adm-a")).then_some(()) }
    })
    .await;
    let follower = Scaler::start(dir.path(), "adm-b", &ns, &kubeconfig, &cfg).await;
    let r = object_ref(&ns, &job.job_name);
    for s in [&leader, &follower] {
        let v = get_metrics(&s.client().await, &r)
            .await
            .expect("GetMetrics");
        assert_eq!(v, 2.0, "{}", s.identity);
    }
    let manual = |p: u32| json!({"flinkRestUrl": flink.url(), "namespace": ns, "parallelism": p});

    // The follower refuses (503) and sends nothing.
    let (status, body) = post_rescale(follower.admin_port, &manual(6)).await;
    assert_eq!(status, 503, "{body}");
    assert!(body["error"]
        .as_str()
        .unwrap_or_default()
        .contains("not the leader"));
    assert_eq!(
        flink.put_count().await,
        0,
        "a follower's admin rescale never PUTs"
    );

    // A manual rescale on the leader; its PUT is held, so it stays in flight.
    let port = leader.admin_port;
    let body = manual(6);
    let first = tokio::spawn(async move { post_rescale(port, &body).await });
    eventually("the manual PUT", Duration::from_secs(20), || {
        let flink = &flink;
        async move { (flink.put_count().await == 1).then_some(()) }
    })
    .await;
    // A second manual rescale is refused, naming the holder.
    let (status, body) = post_rescale(leader.admin_port, &manual(8)).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("manual rescale by"),
        "{body}"
    );
    // The load rises: the worker wants a scale-up but the job is claimed.
    export_load(&job, &exporter, 500.0, 0.9);
    eventually(
        "automatic rescale deferred",
        Duration::from_secs(30),
        || {
            let leader = &leader;
            async move {
                leader
                    .log()
                    .contains("rescale deferred: another rescale of the job is in flight")
                    .then_some(())
            }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        flink.put_count().await,
        1,
        "one PUT sequence while the manual one runs"
    );
    let event = event_with_reason(&admin, &ns, "ManualRescale", Duration::from_secs(5)).await;
    let note = event.note.clone().unwrap_or_default();
    eprintln!("ManualRescale Event: {note}");
    assert!(note.contains("requested by 127.0.0.1:"), "{note}");
    assert!(
        note.contains("=6") && note.contains("→ 3 TaskManagers"),
        "{note}"
    );
    assert_eq!(event.reporting_instance.as_deref(), Some("adm-a"));

    // The manual rescale completes (3 TaskManagers, the job at 6) ...
    flink.with(|s| s.tm_ips = (0..3).map(tm_ip).collect());
    create_tm_pod(&admin, &ns, 2).await;
    flink.release();
    flink.with(|s| s.apply_puts = false);
    let (status, body) = first.await.expect("manual task");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["phase"], "completed", "{body}");
    // ... then the automatic scale-up (busy 0.9 at parallelism 6) takes the claim.
    for v in &mut job.vertices {
        v.parallelism = 6;
    }
    export_load(&job, &exporter, 500.0, 0.9);
    eventually("the automatic PUT", Duration::from_secs(40), || {
        let flink = &flink;
        async move { (flink.put_count().await == 2).then_some(()) }
    })
    .await;
    let (status, body) = post_rescale(leader.admin_port, &manual(2)).await;
    assert_eq!(status, 409, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!("automatic rescale of {ns}/{SO}")),
        "{body}"
    );
    assert_eq!(
        flink.put_count().await,
        2,
        "no PUT for the refused manual rescale"
    );
    assert!(
        !follower.log().contains("rescale started"),
        "the follower never rescales"
    );
}

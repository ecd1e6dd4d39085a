//! The LoadJob itself on real Flink (the job every real-Flink suite runs): it follows the
//! rate file and reports FLIP-33 `pendingRecords`, which grows after a load step.

use super::*;

/// Sum over subtasks of the first vertex metric whose name ends with `suffix`.
async fn vertex_metric(c: &FlinkCluster, job: &JobId, vertex: &str, suffix: &str) -> Option<f64> {
    let base = format!("jobs/{job}/vertices/{vertex}/subtasks/metrics");
    let names = c.get_json(&base).await?;
    let name = names
        .as_array()?
        .iter()
        .filter_map(|m| m["id"].as_str())
        .find(|n| n.ends_with(suffix))?
        .to_string();
    let v = c.get_json(&format!("{base}?get={name}&agg=sum")).await?;
    v.get(0)?["sum"].as_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_job_follows_the_rate_file_and_reports_pending_records() {
    let _g = LOCK.lock().await;
    let Some(installed) = install() else {
        return;
    };
    let c = FlinkCluster::start(installed, ClusterOptions::default()).await;
    let mut args = job_args(&c);
    // ~0.1 ms of CPU per record in the keyed operator: a few thousand records/s per subtask
    args.extend(["--work".to_string(), "50000".to_string()]);
    let job = c.submit_job(&args, 1).await;
    let client = FlinkClient::new(&c.rest_url, ClientOptions::default()).expect("client");
    let topo = client.topology(&job).await.expect("topology");
    let source = topo
        .vertices
        .iter()
        .find(|v| topo.is_source(&v.id))
        .expect("source")
        .id
        .to_string();
    let keyed = topo
        .vertices
        .iter()
        .find(|v| topo.is_keyed(&v.id))
        .expect("keyed")
        .id
        .to_string();
    // at 200 records/s the job keeps up: small backlog, records flow
    let mut pending = None;
    for _ in 0..120 {
        pending = vertex_metric(&c, &job, &source, ".pendingRecords").await;
        let flowing = vertex_metric(&c, &job, &keyed, ".numRecordsIn")
            .await
            .unwrap_or(0.0);
        if pending.is_some() && flowing > 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let before = pending.expect("FLIP-33 pendingRecords is reported");
    assert!(before < 1000.0, "backlog at low rate: {before}");
    // load step: far above what one subtask can process → backlog grows
    std::fs::write(c.path("rate"), "200000").expect("rate step");
    let mut after = before;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        after = vertex_metric(&c, &job, &source, ".pendingRecords")
            .await
            .unwrap_or(after);
        if after > 50_000.0 {
            break;
        }
    }
    assert!(
        after > 50_000.0,
        "backlog grows after the load step: {before} → {after}"
    );
    eprintln!("load step: pendingRecords {before} → {after}");
}

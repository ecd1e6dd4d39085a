//! The fleet over HTTP: REST bodies, the delayed rescale, the call counts, the series.

use std::time::Duration;

use serde_json::{json, Value};

use super::{FleetOptions, SyntheticFleet};

async fn get(url: &str) -> (u16, Value) {
    let r = reqwest::get(url).await.expect("GET");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn serves_rest_rescales_after_the_delay_and_counts_calls() {
    let fleet = SyntheticFleet::start(&FleetOptions {
        jobs: 5,
        job_managers: 2,
        rescale_delay: Duration::from_millis(300),
        ..FleetOptions::default()
    })
    .expect("fleet");
    // Jobs 0, 2, 4 on JobManager 0; 1, 3 on JobManager 1.
    let jm0 = fleet.rest_url(0);
    let (_, overview) = get(&format!("{jm0}/jobs/overview")).await;
    let jobs = overview["jobs"].as_array().expect("jobs");
    assert_eq!(jobs.len(), 3);
    assert_eq!(jobs[0]["jid"], fleet.job(0).id);
    assert_eq!(jobs[0]["tasks"]["total"], 5);
    let before = jobs[0]["last-modification"].clone();

    let job = fleet.job(2);
    let (status, details) = get(&format!("{jm0}/jobs/{}", job.id)).await;
    assert_eq!(status, 200);
    assert_eq!(details["vertices"].as_array().map(Vec::len), Some(5));
    assert_eq!(
        details["plan"]["nodes"][2]["inputs"][0]["ship_strategy"],
        "HASH"
    );
    let (status, _) = get(&format!("{}/jobs/{}", fleet.rest_url(1), job.id)).await;
    assert_eq!(
        status, 404,
        "a job of another JobManager is not found there"
    );

    let body: serde_json::Map<String, Value> = job
        .vertex_ids
        .iter()
        .map(|v| {
            (
                v.clone(),
                json!({"parallelism": {"lowerBound": 1, "upperBound": 3}}),
            )
        })
        .collect();
    let url = format!("{jm0}/jobs/{}/resource-requirements", job.id);
    let client = reqwest::Client::new();
    let put = client.put(&url).json(&body).send().await.expect("PUT");
    assert_eq!(put.status().as_u16(), 200);
    let (_, req) = get(&url).await;
    assert_eq!(req[&job.vertex_ids[0]]["parallelism"]["upperBound"], 3);
    assert_eq!(fleet.parallelism(2), [1; 5], "not before the delay");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fleet.parallelism(2), [3; 5]);
    let (_, overview) = get(&format!("{jm0}/jobs/overview")).await;
    assert_eq!(overview["jobs"][1]["tasks"]["total"], 15);
    assert_eq!(
        overview["jobs"][0]["last-modification"], before,
        "job 0 unchanged"
    );
    let (_, tms) = get(&format!("{jm0}/taskmanagers")).await;
    // Jobs 0 and 4 at parallelism 1 (one TaskManager each), job 2 at 3 (two).
    assert_eq!(tms["taskmanagers"].as_array().map(Vec::len), Some(4));

    let mut partial = body.clone();
    partial.remove(&job.vertex_ids[1]);
    let bad = client.put(&url).json(&partial).send().await.expect("PUT");
    assert_eq!(bad.status().as_u16(), 400);

    let stats = fleet.stats();
    let calls = &stats.rest_calls[0];
    assert_eq!(calls["GET /jobs/overview"], 2);
    assert_eq!(calls["PUT /jobs/:id/resource-requirements"], 2);
    assert_eq!(stats.rest_calls[1]["GET /jobs/:id"], 1);
    assert_eq!(
        stats.puts, 1,
        "the rejected PUT is counted as a call, not applied"
    );
    assert_eq!(stats.rescales, 1);

    fleet.set_available(0, false);
    assert_eq!(get(&format!("{jm0}/overview")).await.0, 503);
    fleet.set_available(0, true);
    fleet.remove_job(2);
    assert_eq!(get(&format!("{jm0}/jobs/{}", job.id)).await.0, 404);
}

#[tokio::test]
async fn series_follow_the_load_and_hidden_vertices() {
    let fleet = SyntheticFleet::start(&FleetOptions {
        jobs: 2,
        ..FleetOptions::default()
    })
    .expect("fleet");
    fleet.set_rate(1, 800.0);
    fleet.hide_vertex(0, Some(3));
    let text = reqwest::get(format!("http://{}/metrics", fleet.metrics_targets()[0]))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("body");
    let (j0, j1) = (fleet.job(0), fleet.job(1));
    let busy = |job: &str, vertex: &str| {
        text.lines()
            .find(|l| {
                l.starts_with("flink_taskmanager_job_task_busyTimeMsPerSecond{")
                    && l.contains(&format!("job_id=\"{job}\""))
                    && l.contains(&format!("task_id=\"{vertex}\""))
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
    };
    // The window vertex costs 1 ms per record.
    assert_eq!(busy(&j1.id, &j1.vertex_ids[2]), Some(800.0));
    assert_eq!(busy(&j0.id, &j0.vertex_ids[2]), Some(400.0));
    assert_eq!(busy(&j0.id, &j0.vertex_ids[3]), None, "hidden vertex");
    assert!(text.contains("# TYPE flink_taskmanager_job_task_operator_pendingRecords gauge"));
    assert!(text.contains("operator_name=\"Source:_events\""));
    assert!(text.contains(&format!(
        "flink_jobmanager_job_numRestarts{{job_id=\"{}\",host=\"10_1_0_254\",job_name=\"fleet_job_0001\",}} 0.0",
        j1.id
    )));
    assert_eq!(fleet.stats().scrapes, vec![1]);
    assert_eq!(
        fleet.stats().rest_calls_sum(),
        0,
        "a scrape is not a REST call"
    );
}

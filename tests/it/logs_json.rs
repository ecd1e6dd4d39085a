//! JSON logs carry the fields of the spans a line is logged in: inside a worker tick the
//! ScaledObject (`scaled_object`) and, once the tick has resolved the job, its id and
//! name; inside an rpc the method and the ScaledObject. Runs the built binary
//! (`--log-format json`) against a fake JobManager and a Prometheus that is not there,
//! so the tick resolves the job and then fails: no real component needed.

use crate::support;

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use flink_keda_scaler::keda::pb::{GetMetricsRequest, ScaledObjectRef};
use serde_json::Value;
use support::{
    fake_flink::FakeFlink,
    scaler::{config_yaml, e2e_job, e2e_policy, ScalerProcess},
};
use tonic::Code;

/// The scaler's JSON log lines whose `message` is `message`.
fn lines_with(log: &str, message: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == message)
        .collect()
}

/// The span named `name` in a line's span list (root first).
fn span<'a>(line: &'a Value, name: &str) -> Option<&'a Value> {
    line["spans"].as_array()?.iter().find(|s| s["name"] == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tick_and_rpc_log_lines_carry_their_span_fields() {
    let job = e2e_job(2);
    let flink = FakeFlink::start(&job, false).await;
    // Nothing listens there: the tick resolves the job on Flink, then the signal read
    // fails (UNAVAILABLE) and the tick logs "evaluation failed".
    let no_prometheus = format!("http://127.0.0.1:{}", support::free_port());
    let scaler = ScalerProcess::start(&config_yaml(&no_prometheus, &e2e_policy(true, 1, 10))).await;
    let mut client = scaler.client().await;
    let metadata: HashMap<String, String> = [
        ("flinkRestUrl", flink.url()),
        ("jobName", job.job_name.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let object = ScaledObjectRef {
        name: "orders-so".into(),
        namespace: "prod".into(),
        scaler_metadata: metadata,
    };
    let spec = client
        .get_metric_spec(object.clone())
        .await
        .expect("GetMetricSpec")
        .into_inner();
    let request = GetMetricsRequest {
        scaled_object_ref: Some(object),
        metric_name: spec.metric_specs[0].metric_name.clone(),
    };
    let status = client
        .get_metrics(request)
        .await
        .expect_err("no Prometheus: no value");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");

    let started = Instant::now();
    let (failed, rpc) = loop {
        let log = scaler.log();
        let failed = lines_with(&log, "evaluation failed");
        let rpc = lines_with(&log, "KEDA rpc failed");
        if (!failed.is_empty() && !rpc.is_empty()) || started.elapsed() > Duration::from_secs(10) {
            break (failed, rpc);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let line = failed
        .first()
        .unwrap_or_else(|| panic!("no 'evaluation failed' line in the log:\n{}", scaler.log()));
    let tick = span(line, "tick").unwrap_or_else(|| panic!("no tick span: {line}"));
    assert_eq!(tick["scaled_object"], "prod/orders-so", "{line}");
    assert_eq!(tick["job_id"], job.job_id.as_str(), "{line}");
    assert_eq!(tick["job_name"], job.job_name.as_str(), "{line}");
    assert_eq!(line["span"]["name"], "tick", "the innermost span: {line}");

    let line = rpc
        .first()
        .unwrap_or_else(|| panic!("no 'KEDA rpc failed' line in the log:\n{}", scaler.log()));
    let call = span(line, "rpc").unwrap_or_else(|| panic!("no rpc span: {line}"));
    assert_eq!(call["method"], "GetMetrics", "{line}");
    assert_eq!(call["scaled_object"], "prod/orders-so", "{line}");
}

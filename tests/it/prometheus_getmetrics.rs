//! End to end, against the built binary: a real Prometheus scraping a synthetic exporter
//! whose series carry Flink's names and labels, a fake Flink JobManager REST API
//! (wiremock, Flink-shaped JSON), and `flink-keda-scaler serve` called over gRPC.
//!
//! * a 3× load step in the exporter changes the decision (`/debug/jobs`) to the DS2 count
//!   computed from the inputs; in dry run nothing is PUT and GetMetrics keeps answering
//!   what the running parallelism needs;
//! * without dry run the scaler PUTs the requirements (every vertex, upperBound = target,
//!   lowerBound not raised) and GetMetrics answers the new, higher count;
//! * Prometheus stopped → UNAVAILABLE (never 0); a query matching nothing → UNAVAILABLE
//!   naming the signal; unknown metadata key → INVALID_ARGUMENT naming it; unknown job →
//!   NOT_FOUND (in [`errors`]); SIGTERM and edited metadata (in [`lifecycle`]).
//!
//! Run: `cargo test --test it prometheus_getmetrics:: -- --nocapture` (needs
//! `/usr/bin/prometheus`; prints SKIPPED without it, fails in CI).

use crate::support;

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use flink_keda_scaler::keda::pb::{
    external_scaler_client::ExternalScalerClient, GetMetricsRequest, ScaledObjectRef,
};
use serde_json::Value;
use support::{
    fake_flink::{FakeFlink, SLOTS_PER_TM},
    prometheus::{PrometheusHarness, SyntheticExporter, SyntheticJob},
    scaler::{
        config_yaml, ds2_expected, e2e_job, e2e_policy, e2e_policy_with, Load, ScalerProcess,
    },
    stack::Stack,
};
use tonic::{transport::Channel, Code};

mod errors;
mod lifecycle;
mod raise;
mod reported;

const P: u32 = 4;
const MIN_TMS: u32 = 1;
const MAX_TMS: u32 = 10;
const STEADY: Load = Load {
    rate: 500.0,
    busy: [0.3, 0.3, 0.25],
};
/// Bound on seeing a new value after a change in the exporter: a few scrapes (1 s) +
/// a few evaluation ticks (1 s).
const CONVERGE: Duration = Duration::from_secs(20);

struct Env {
    job: SyntheticJob,
    exporter: SyntheticExporter,
    prom: PrometheusHarness,
    flink: FakeFlink,
    scaler: ScalerProcess,
}

async fn env(dry_run: bool, accept_puts: bool) -> Option<Env> {
    env_with(
        P,
        STEADY,
        &e2e_policy(dry_run, MIN_TMS, MAX_TMS),
        accept_puts,
    )
    .await
}

async fn env_with(p: u32, load: Load, policy: &str, accept_puts: bool) -> Option<Env> {
    let Stack {
        job,
        exporter,
        prom,
        flink,
    } = Stack::start(e2e_job(p), &load, accept_puts).await?;
    let scaler = ScalerProcess::start(&config_yaml(&prom.url(), policy)).await;
    Some(Env {
        job,
        exporter,
        prom,
        flink,
        scaler,
    })
}

fn object_ref(flink: &str, job_name: &str, extra: &[(&str, &str)]) -> ScaledObjectRef {
    let mut md: HashMap<String, String> = [
        ("flinkRestUrl", flink),
        ("jobName", job_name),
        ("minTaskManagers", "1"),
        ("maxTaskManagers", "10"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        md.insert(k.to_string(), v.to_string());
    }
    ScaledObjectRef {
        name: "orders-so".into(),
        namespace: "prod".into(),
        scaler_metadata: md,
    }
}

/// GetMetricSpec then GetMetrics for the spec's metric; the float value.
async fn get_metrics(
    client: &mut ExternalScalerClient<Channel>,
    r: &ScaledObjectRef,
) -> Result<f64, tonic::Status> {
    let spec = client.get_metric_spec(r.clone()).await?.into_inner();
    let name = spec.metric_specs[0].metric_name.clone();
    let resp = client
        .get_metrics(GetMetricsRequest {
            scaled_object_ref: Some(r.clone()),
            metric_name: name.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(resp.metric_values.len(), 1, "{resp:?}");
    assert_eq!(resp.metric_values[0].metric_name, name);
    #[allow(deprecated)]
    let int = resp.metric_values[0].metric_value;
    let float = resp.metric_values[0].metric_value_float;
    assert_eq!(int as f64, float, "int and float values agree");
    Ok(float)
}

/// Polls GetMetrics until `ok` holds; returns the last answer.
async fn wait_metrics(
    client: &mut ExternalScalerClient<Channel>,
    r: &ScaledObjectRef,
    what: &str,
    ok: impl Fn(&Result<f64, tonic::Status>) -> bool,
    scaler: &ScalerProcess,
) -> Result<f64, tonic::Status> {
    let started = Instant::now();
    loop {
        let got = get_metrics(client, r).await;
        if ok(&got) {
            eprintln!("{what}: {got:?} after {:?}", started.elapsed());
            return got;
        }
        assert!(
            started.elapsed() < CONVERGE,
            "{what}: not seen within {CONVERGE:?}; last {got:?}; /debug/jobs: {:#}",
            scaler.debug_jobs().await
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Polls `/debug/jobs` until the job's decision satisfies `ok`; returns the decision.
async fn wait_decision(scaler: &ScalerProcess, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let jobs = scaler.debug_jobs().await;
        if let Some(d) = jobs["jobs"]
            .as_array()
            .and_then(|a| a.first())
            .map(|j| j["decision"].clone())
        {
            if ok(&d) {
                eprintln!("{what}: seen after {:?}", started.elapsed());
                return d;
            }
        }
        assert!(
            started.elapsed() < CONVERGE,
            "{what}: not seen within {CONVERGE:?}; /debug/jobs: {jobs:#}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn rules(decision: &Value) -> Vec<String> {
    decision["reasons"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r["rule"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The value of `flink_keda_scaler_<name>{..., scaled_object="orders-so", ...}`.
fn gauge(metrics: &str, name: &str) -> Option<f64> {
    let prefix = format!("flink_keda_scaler_{name}{{");
    metrics
        .lines()
        .find(|l| l.starts_with(&prefix) && l.contains("scaled_object=\"orders-so\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn current_tms(job: &SyntheticJob) -> u32 {
    let max_p = job
        .vertices
        .iter()
        .map(|v| v.parallelism)
        .max()
        .unwrap_or(1);
    max_p.div_ceil(SLOTS_PER_TM).clamp(MIN_TMS, MAX_TMS)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_load_step_yields_ds2_decision_without_put() {
    let Some(e) = env(true, false).await else {
        return;
    };
    let mut client = e.scaler.client().await;
    let r = object_ref(&e.flink.url(), &e.job.job_name, &[]);
    let now_tms = f64::from(current_tms(&e.job));

    // Steady load: within the band, no rescale; GetMetrics = what parallelism P needs.
    assert_eq!(
        ds2_expected(&STEADY, P, SLOTS_PER_TM, MIN_TMS, MAX_TMS),
        None
    );
    let v = wait_metrics(
        &mut client,
        &r,
        "steady GetMetrics",
        |g| g.is_ok(),
        &e.scaler,
    )
    .await
    .expect("steady GetMetrics");
    assert_eq!(v, now_tms);
    let d = wait_decision(&e.scaler, "steady decision", |d| d["current"].is_object()).await;
    assert_eq!(d["direction"], "none", "{d:#}");
    assert_eq!(d["rescale"], false, "{d:#}");
    assert_eq!(d["current"]["task_managers"], current_tms(&e.job), "{d:#}");

    // 3× load step: the decision becomes the DS2 count.
    let stepped = STEADY.step(3.0);
    stepped.export(&e.job, &e.exporter);
    let (parallelism, tms) =
        ds2_expected(&stepped, P, SLOTS_PER_TM, MIN_TMS, MAX_TMS).expect("step leaves the band");
    assert!(
        f64::from(tms) > now_tms,
        "the step must need more TaskManagers"
    );
    let d = wait_decision(&e.scaler, "scale-up decision", |d| d["direction"] == "up").await;
    assert_eq!(d["target"]["task_managers"], tms, "{d:#}");
    for (i, v) in e.job.vertices.iter().enumerate() {
        assert_eq!(
            d["target"]["parallelism"][&v.id], parallelism[i],
            "vertex {} ({}): {d:#}",
            i, v.name
        );
    }
    let rs = rules(&d);
    assert!(rs.iter().any(|r| r == "ds2_size"), "{rs:?}");
    assert_eq!(rs.last().map(String::as_str), Some("scale_up"), "{rs:?}");
    assert_eq!(d["rescale"], true, "{d:#}");

    // Dry run: GetMetrics still answers what the running parallelism needs; no PUT.
    let v = get_metrics(&mut client, &r).await.expect("GetMetrics");
    assert_eq!(v, now_tms);
    let jid = &e.job.job_id;
    assert_eq!(
        e.flink
            .requests("PUT", &format!("/jobs/{jid}/resource-requirements"))
            .await,
        0
    );
    assert!(e.flink.puts().is_empty());
    // The exporter shows the same numbers: desired = DS2 target, reported = current need.
    let metrics = e.scaler.metrics().await;
    assert_eq!(
        gauge(&metrics, "desired_task_managers"),
        Some(f64::from(tms)),
        "{metrics}"
    );
    assert_eq!(
        gauge(&metrics, "reported_task_managers"),
        Some(now_tms),
        "{metrics}"
    );
    // the bounds the AtMaxTaskManagersWithLag alert compares against (metadata: 1..10)
    assert_eq!(gauge(&metrics, "min_task_managers"), Some(1.0), "{metrics}");
    assert_eq!(
        gauge(&metrics, "max_task_managers"),
        Some(10.0),
        "{metrics}"
    );
    assert!(
        e.scaler.log().contains("dry run"),
        "dry run logged: {}",
        e.scaler.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_step_rescales_in_place_and_get_metrics_answers_new_count() {
    let Some(e) = env(false, true).await else {
        return;
    };
    // An operator-set lowerBound of 2 on every vertex: the scale-up must keep it.
    const LOWER: i64 = 2;
    for v in &mut e.flink.state.lock().expect("state").vertices {
        v.lower_bound = LOWER;
    }
    let mut client = e.scaler.client().await;
    let r = object_ref(&e.flink.url(), &e.job.job_name, &[]);
    let now_tms = current_tms(&e.job);
    let v = wait_metrics(
        &mut client,
        &r,
        "steady GetMetrics",
        |g| g.is_ok(),
        &e.scaler,
    )
    .await
    .expect("steady GetMetrics");
    assert_eq!(v, f64::from(now_tms));
    assert!(e.flink.puts().is_empty(), "no PUT under steady load");

    let stepped = STEADY.step(3.0);
    stepped.export(&e.job, &e.exporter);
    let (parallelism, tms) =
        ds2_expected(&stepped, P, SLOTS_PER_TM, MIN_TMS, MAX_TMS).expect("step leaves the band");
    assert!(tms > now_tms);
    let v = wait_metrics(
        &mut client,
        &r,
        "GetMetrics after the step",
        |g| matches!(g, Ok(v) if *v == f64::from(tms)),
        &e.scaler,
    )
    .await
    .expect("GetMetrics");
    assert_eq!(v, f64::from(tms));

    // Exactly one PUT: every vertex, upperBound = target, lowerBound kept (not raised).
    let puts = e.flink.puts();
    assert_eq!(puts.len(), 1, "{puts:#?}");
    let body = puts[0].as_object().expect("PUT body is an object");
    assert_eq!(body.len(), e.job.vertices.len(), "{body:#?}");
    for (i, v) in e.job.vertices.iter().enumerate() {
        let b = &body[&v.id]["parallelism"];
        assert_eq!(b["upperBound"], parallelism[i], "vertex {}: {b}", v.name);
        assert_eq!(b["lowerBound"], LOWER, "lowerBound not raised: {b}");
    }
    // The fake now runs the new parallelism; GetMetrics keeps answering its count once
    // the rescale completed.
    let snap = e.flink.snapshot();
    assert_eq!(snap.needed_tms(), tms);
    let d = wait_decision(&e.scaler, "post-rescale observation", |d| {
        d["current"]["task_managers"] == tms
    })
    .await;
    assert_eq!(d["current"]["task_managers"], tms, "{d:#}");
    let v = get_metrics(&mut client, &r).await.expect("GetMetrics");
    assert_eq!(v, f64::from(tms));
}

/// `POST /admin/rescale` on the binary's admin port: a dry run answers the plan and sends
/// nothing; an unknown field is a client error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_rescale_dry_run_over_http() {
    let Some(e) = env(true, true).await else {
        return;
    };
    let http = reqwest::Client::new();
    let url = format!("{}/admin/rescale", e.scaler.admin_url());
    let keyed = e.job.vertices[1].id.clone();
    let resp = http
        .post(&url)
        .json(&serde_json::json!({
            "flinkRestUrl": e.flink.url(),
            "job": e.job.job_name,
            "vertices": { keyed.clone(): 16 },
            "dryRun": true
        }))
        .send()
        .await
        .expect("POST /admin/rescale");
    let status = resp.status();
    let body: Value = resp.json().await.expect("JSON");
    assert_eq!(status, 200, "{body:#}");
    assert_eq!(body["dry_run"], true, "{body:#}");
    for v in &e.job.vertices {
        let want = if v.id == keyed { 16 } else { P };
        assert_eq!(body["to"][&v.id], want, "{body:#}");
        assert_eq!(body["from"][&v.id], P, "{body:#}");
    }
    assert_eq!(
        body["task_managers"],
        16u32.div_ceil(SLOTS_PER_TM),
        "{body:#}"
    );

    let resp = http
        .post(&url)
        .json(&serde_json::json!({"flinkRestUrl": e.flink.url(), "paralelism": 3}))
        .send()
        .await
        .expect("POST /admin/rescale");
    assert!(resp.status().is_client_error(), "{:?}", resp.status());
    assert!(
        e.flink.puts().is_empty(),
        "dry run and bad request send nothing"
    );
}

/// Scale-down in place: low load at parallelism 8 → after the (1 s) scale-down delay the
/// scaler PUTs the DS2 parallelism bounded by maxScaleDownFactor 0.5, and what KEDA sees
/// goes from what 8 needs down to what the new parallelism needs — never lower, never
/// back up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn low_load_scales_down_in_place_never_below_the_need() {
    const P8: u32 = 8;
    let low = Load {
        rate: 100.0,
        busy: [0.1, 0.1, 0.1],
    };
    let Some(e) = env_with(
        P8,
        low,
        &e2e_policy_with(false, MIN_TMS, MAX_TMS, "1s"),
        true,
    )
    .await
    else {
        return;
    };
    let (required, _) = ds2_expected(&low, P8, SLOTS_PER_TM, MIN_TMS, MAX_TMS).expect("under band");
    // maxScaleDownFactor 0.5: no vertex below ceil(p × 0.5) in one decision.
    let floor = (f64::from(P8) * 0.5).ceil() as u32;
    let target: Vec<u32> = required.iter().map(|r| (*r).max(floor)).collect();
    let target_tms = target
        .iter()
        .copied()
        .max()
        .unwrap_or(1)
        .div_ceil(SLOTS_PER_TM)
        .clamp(MIN_TMS, MAX_TMS);
    let from_tms = current_tms(&e.job);
    assert!(target_tms < from_tms);

    let mut client = e.scaler.client().await;
    let r = object_ref(&e.flink.url(), &e.job.job_name, &[]);
    let started = Instant::now();
    let mut seen = Vec::new();
    loop {
        let v = get_metrics(&mut client, &r).await.expect("GetMetrics");
        seen.push(v);
        if v == f64::from(target_tms) {
            break;
        }
        assert!(
            started.elapsed() < CONVERGE,
            "no scale-down seen: {seen:?}; /debug/jobs {:#}",
            e.scaler.debug_jobs().await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("GetMetrics during the scale-down: {seen:?}");
    assert_eq!(seen[0], f64::from(from_tms), "starts at what p=8 needs");
    assert!(
        seen.windows(2).all(|w| w[1] <= w[0]),
        "never back up: {seen:?}"
    );
    assert!(
        seen.iter().all(|v| *v >= f64::from(target_tms)),
        "never below the need: {seen:?}"
    );
    let puts = e.flink.puts();
    assert_eq!(puts.len(), 1, "{puts:#?}");
    for (i, v) in e.job.vertices.iter().enumerate() {
        assert_eq!(
            puts[0][&v.id]["parallelism"]["upperBound"], target[i],
            "{puts:#?}"
        );
    }
    // Stays there (cooldown): a few more ticks answer the same.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let v = get_metrics(&mut client, &r).await.expect("GetMetrics");
    assert_eq!(v, f64::from(target_tms));
    assert_eq!(e.flink.puts().len(), 1);
}

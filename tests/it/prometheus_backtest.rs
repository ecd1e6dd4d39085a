//! `backtest` against a real Prometheus holding backfilled history: three hours of
//! OpenMetrics with Flink's metric names and labels for a 3-vertex job (parallelism 2 per
//! vertex on 2 TaskManagers; at mid-range the input rate and busy time triple), turned
//! into TSDB blocks by `promtool tsdb create-blocks-from openmetrics`, served by
//! Prometheus through a counting proxy; the topology comes from a wiremock Flink (library
//! entry point) and from a file (CLI binary).

use crate::support;

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::{DateTime, TimeZone, Utc};
use flink_keda_scaler::{
    backtest::{self, Options, TimeRange, TopologySource},
    config::Config,
    core::Signal,
};
use serde_json::json;
use support::prometheus::{PrometheusHarness, SyntheticJob};
use wiremock::{
    matchers::{method, path},
    Mock, MockServer, ResponseTemplate,
};

/// History spacing of the generated samples.
const SAMPLE_EVERY_S: i64 = 15;
/// History length.
const HISTORY_S: i64 = 3 * 3600;
/// Busy time (ms/s) per vertex before the step; tripled after it.
const BUSY_BEFORE: [f64; 3] = [300.0, 230.0, 240.0];
/// Source input rate before the step (records/s); tripled after it.
const RATE_BEFORE: f64 = 1000.0;
/// Pending records per source subtask.
const PENDING_PER_SUBTASK: f64 = 50.0;
/// Policy under test.
const TARGET_UTILIZATION: f64 = 0.5;
const SLOTS_PER_TM: u32 = 1;

fn promtool() -> Option<PathBuf> {
    let usr = PathBuf::from("/usr/bin/promtool");
    if usr.is_file() {
        return Some(usr);
    }
    support::which("promtool")
}

/// The generated history: step at `step_at`, samples from `start` to `end`.
struct History {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    step_at: DateTime<Utc>,
}

/// OpenMetrics text: one family after the other, each series' points in time order.
fn openmetrics(job: &SyntheticJob, h: &History) -> String {
    let factor = |t: i64| if t >= h.step_at.timestamp() { 3.0 } else { 1.0 };
    // family → [(series text, value at factor 1, scales with load)]
    let mut families: BTreeMap<String, Vec<(String, f64, bool)>> = BTreeMap::new();
    let mut add = |family: String, series: String, base: f64, scales: bool| {
        families
            .entry(family)
            .or_default()
            .push((series, base, scales));
    };
    let task = |m: &str| format!("flink_taskmanager_job_task_{m}");
    let op = |m: &str| format!("flink_taskmanager_job_task_operator_{m}");
    // records out per vertex (whole vertex): source R, window R/2, sink 0
    let out_rate = [RATE_BEFORE, RATE_BEFORE / 2.0, 0.0];
    let in_rate = [0.0, RATE_BEFORE, RATE_BEFORE / 2.0];
    for (v, vertex) in job.vertices.iter().enumerate() {
        let p = f64::from(vertex.parallelism);
        for s in 0..vertex.parallelism {
            let ts = |m: &str| job.task_series(m, v, s);
            add(
                task("busyTimeMsPerSecond"),
                ts("busyTimeMsPerSecond"),
                BUSY_BEFORE[v],
                true,
            );
            add(
                task("backPressuredTimeMsPerSecond"),
                ts("backPressuredTimeMsPerSecond"),
                0.0,
                false,
            );
            add(
                task("numRecordsInPerSecond"),
                ts("numRecordsInPerSecond"),
                in_rate[v] / p,
                true,
            );
            add(
                task("numRecordsOutPerSecond"),
                ts("numRecordsOutPerSecond"),
                out_rate[v] / p,
                true,
            );
            if v == 0 {
                let o = |m: &str| job.operator_series(m, 0, "Source: events", s, "");
                add(
                    op("numRecordsOutPerSecond"),
                    o("numRecordsOutPerSecond"),
                    RATE_BEFORE / p,
                    true,
                );
                add(
                    op("pendingRecords"),
                    o("pendingRecords"),
                    PENDING_PER_SUBTASK,
                    false,
                );
            }
        }
    }
    for tm in &job.tms {
        add(
            "flink_taskmanager_Status_JVM_CPU_Load".into(),
            SyntheticJob::tm_series("Status_JVM_CPU_Load", tm),
            0.5,
            false,
        );
    }
    add(
        "flink_jobmanager_job_numRestarts".into(),
        job.jm_job_series("numRestarts"),
        0.0,
        false,
    );
    let mut out = String::new();
    for (family, series) in &families {
        let _ = writeln!(out, "# TYPE {family} gauge");
        for (text, base, scales) in series {
            let mut t = h.start.timestamp();
            while t <= h.end.timestamp() {
                let v = if *scales { base * factor(t) } else { *base };
                let _ = writeln!(out, "{text} {v} {t}");
                t += SAMPLE_EVERY_S;
            }
        }
    }
    out.push_str("# EOF\n");
    out
}

/// A Prometheus proxy that counts the requests it forwards: `(api path, query)`.
struct CountingProxy {
    url: String,
    seen: Arc<Mutex<Vec<(String, String)>>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl CountingProxy {
    async fn start(upstream: String) -> Self {
        let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        let s = seen.clone();
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri, body: String| {
            let (s, http, upstream) = (s.clone(), http.clone(), upstream.clone());
            async move {
                let query = url::form_urlencoded::parse(body.as_bytes())
                    .find(|(k, _)| k == "query")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                s.lock()
                    .expect("lock")
                    .push((uri.path().to_string(), query));
                let resp = http
                    .post(format!("{upstream}{}", uri.path()))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
                    .send()
                    .await
                    .expect("forward to Prometheus");
                let status =
                    axum::http::StatusCode::from_u16(resp.status().as_u16()).expect("status");
                let text = resp.text().await.expect("body");
                (status, [("content-type", "application/json")], text)
            }
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Self {
            url,
            seen,
            shutdown: Some(tx),
        }
    }

    fn take(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.seen.lock().expect("lock"))
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A fake JobManager serving the job, its plan and the TaskManagers.
async fn fake_flink(job: &SyntheticJob) -> MockServer {
    let server = MockServer::start().await;
    let topo = job.topology();
    let vertices: Vec<_> = topo
        .vertices
        .iter()
        .map(|v| {
            json!({"id": v.id.as_str(), "name": v.name, "parallelism": v.parallelism,
                   "maxParallelism": v.max_parallelism, "status": "RUNNING"})
        })
        .collect();
    let nodes: Vec<_> = topo
        .vertices
        .iter()
        .map(|v| {
            let inputs: Vec<_> = topo
                .inputs(&v.id)
                .map(|e| json!({"id": e.from.as_str(), "ship_strategy": format!("{:?}", e.ship_strategy).to_uppercase()}))
                .collect();
            json!({"id": v.id.as_str(), "parallelism": v.parallelism, "description": v.name, "inputs": inputs})
        })
        .collect();
    Mock::given(method("GET"))
        .and(path("/jobs/overview"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"jobs": [
            {"jid": job.job_id, "name": job.job_name, "state": "RUNNING", "start-time": 1}
        ]})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/jobs/{}", job.job_id)))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "jid": job.job_id, "name": job.job_name, "state": "RUNNING", "start-time": 1,
            "timestamps": {"RUNNING": 1}, "vertices": vertices, "plan": {"nodes": nodes}
        })))
        .mount(&server)
        .await;
    let tms: Vec<_> = job
        .tms
        .iter()
        .map(|t| json!({"id": t, "slotsNumber": SLOTS_PER_TM, "freeSlots": 0}))
        .collect();
    Mock::given(method("GET"))
        .and(path("/taskmanagers"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"taskmanagers": tms})))
        .mount(&server)
        .await;
    server
}

fn config(prometheus_url: &str, down_url: &str) -> Config {
    Config::parse(&format!(
        r#"
prometheus:
  default: {{url: "{prometheus_url}", timeout: 20s, retries: 0}}
  down: {{url: "{down_url}", timeout: 1s, retries: 0}}
policies:
  default:
    targetUtilization: {TARGET_UTILIZATION}
    utilizationLow: 0.2
    utilizationHigh: 0.85
    alignment: off
    maxTaskManagers: 10
  emptybusy:
    alignment: off
    queries:
      busyTime: 'max by (task_id) (flink_taskmanager_job_task_busyTimeMsPerSecondGone{{ {{{{matchers}}}}job_id="{{{{job_id}}}}"}})'
"#
    ))
    .expect("test config parses")
}

/// DS2 from the generated inputs. The source's target rate is its input rate plus the
/// backlog worked off within `catch_up`; every edge forwards the same share of it
/// (rates are consistent), so each vertex must process `input · (1 + catch_up_rate /
/// rate)` and its true rate per subtask is `input / (p · busy)`:
/// `required = ceil(p · busy · (1 + catch_up_rate / rate) / util)`. The job needs the
/// largest vertex parallelism in slots (one slot sharing group).
fn expected_task_managers(
    job: &SyntheticJob,
    factor: f64,
    catch_up: Duration,
) -> (BTreeMap<String, u32>, u32) {
    let rate = RATE_BEFORE * factor;
    let catch_up_rate = 2.0 * PENDING_PER_SUBTASK / catch_up.as_secs_f64();
    let per_vertex: BTreeMap<String, u32> = job
        .vertices
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let busy = (BUSY_BEFORE[i] * factor / 1000.0).min(1.0);
            let p = (f64::from(v.parallelism) * busy * (1.0 + catch_up_rate / rate)
                / TARGET_UTILIZATION
                - 1e-9)
                .ceil() as u32;
            (v.id.clone(), p.max(1))
        })
        .collect();
    let slots = per_vertex.values().copied().max().unwrap_or(1);
    (per_vertex, slots.div_ceil(SLOTS_PER_TM))
}

fn hours(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (b - a).num_milliseconds() as f64 / 3_600_000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backtest_on_backfilled_history() {
    let t0 = Instant::now();
    let Some(promtool) = promtool() else {
        let _ = support::component_missing("promtool (apt-get install prometheus)");
        return;
    };
    let job = SyntheticJob::three_vertices();
    let mut job = job;
    for v in &mut job.vertices {
        v.parallelism = 2;
    }
    let now = Utc::now().timestamp();
    let end = Utc
        .timestamp_opt(now - now % 60 - 600, 0)
        .single()
        .expect("end");
    let start = end - chrono::Duration::seconds(HISTORY_S);
    let h = History {
        start,
        end,
        step_at: start + chrono::Duration::seconds(HISTORY_S / 2),
    };
    let dir = support::tempdir("fks-backtest-");
    let om = dir.path().join("history.om");
    std::fs::write(&om, openmetrics(&job, &h)).expect("write openmetrics");
    let blocks = dir.path().join("blocks");
    let out = std::process::Command::new(&promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om)
        .arg(&blocks)
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let Some(prom) = PrometheusHarness::start_with_blocks(&blocks).await else {
        return;
    };
    // the backfilled history is queryable (independent client)
    let busy = prom
        .wait_for(
            &format!(
                "count(flink_taskmanager_job_task_busyTimeMsPerSecond @ {})",
                h.end.timestamp()
            ),
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(busy[0].1, 6.0, "6 subtasks in the history");

    let proxy = CountingProxy::start(prom.url()).await;
    let down = format!("http://127.0.0.1:{}", support::free_port());
    let config = config(&proxy.url, &down);
    let flink = fake_flink(&job).await;
    let range = TimeRange::new(h.start, h.end, Duration::from_secs(15)).expect("range");
    let options = |policy: Option<&str>, prometheus: Option<&str>| Options {
        topology: TopologySource::Flink(flink.uri()),
        job: Some(job.job_name.clone()),
        job_name: None,
        policy: policy.map(str::to_string),
        prometheus: prometheus.map(str::to_string),
        slots_per_task_manager: None,
        range,
    };

    // --- library entry point, topology and slots from the fake Flink
    let report = backtest::run_from_config(&config, &options(None, None))
        .await
        .expect("backtest runs");
    println!("{}", report.to_table());

    // one range query per signal (+ the two counts); the one instant query is the
    // scrape-interval probe for `{{window}}` (no scrapeInterval configured)
    let seen = proxy.take();
    let (range_queries, instant): (Vec<_>, Vec<_>) =
        seen.iter().partition(|(p, _)| p == "/api/v1/query_range");
    assert!(
        instant.len() == 1 && instant[0].1.contains("timestamp("),
        "{seen:?}"
    );
    assert_eq!(range_queries.len(), Signal::ALL.len() + 2, "{seen:?}");
    for signal in Signal::ALL {
        let rendered = report
            .queries
            .iter()
            .find(|q| q.name == signal.name())
            .unwrap_or_else(|| panic!("no query for {signal}"));
        let sent = range_queries
            .iter()
            .filter(|(_, q)| *q == rendered.promql)
            .count();
        assert_eq!(sent, 1, "{signal}: {}", rendered.promql);
    }
    assert_eq!(report.ticks.len(), range.len());

    let catch_up = config.policy(None).expect("policy").catch_up_duration;
    // before the step: the actual job (2 TMs) is within the band, ours holds
    let (_, before_tms) = expected_task_managers(&job, 1.0, catch_up);
    assert_eq!(report.ticks[0].actual_task_managers, 2);
    assert!(
        report.ticks.iter().all(|t| t.actual_task_managers == 2),
        "history runs 2 TaskManagers throughout"
    );
    assert!(
        before_tms <= 2,
        "the generated load needs no scale-up before the step"
    );
    // after the step: one scale-up to the DS2 count, with its reasons
    let (want_p, want_tms) = expected_task_managers(&job, 3.0, catch_up);
    assert!(want_tms > 2, "the step must need more TaskManagers");
    assert_eq!(report.rescales.len(), 1, "{:#?}", report.rescales);
    let r = &report.rescales[0];
    assert!(
        r.at >= h.step_at && r.at <= h.step_at + chrono::Duration::minutes(2),
        "rescale at {} for a step at {}",
        r.at,
        h.step_at
    );
    assert_eq!(r.direction.as_str(), "up");
    assert_eq!((r.from_task_managers, r.to_task_managers), (2, want_tms));
    let got_p: BTreeMap<String, u32> = r
        .to_parallelism
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), *v))
        .collect();
    assert_eq!(got_p, want_p);
    assert!(
        r.reasons.iter().any(|x| x.rule.as_str() == "overutilized"),
        "{}",
        r.summary
    );
    assert!(r.summary.contains("scale_up"), "{}", r.summary);
    let table = report.to_table();
    assert!(table.contains(&format!("2→{want_tms}")), "{table}");
    assert!(table.contains("overutilized["), "{table}");
    let last = report.ticks.last().expect("ticks");
    assert_eq!(last.ours_task_managers, want_tms);
    assert_eq!(last.actual_task_managers, 2);
    assert_eq!(last.input_rate, Some(3.0 * RATE_BEFORE));
    assert_eq!(last.lag, Some(2.0 * PENDING_PER_SUBTASK));

    // TaskManager-hours: actual 2 over the range; ours 2 until the rescale, then more
    let actual_h = 2.0 * hours(h.start, h.end);
    let ours_h = 2.0 * hours(h.start, r.at) + f64::from(want_tms) * hours(r.at, h.end);
    assert!(
        (report.actual_tm_hours - actual_h).abs() < 1e-9,
        "{}",
        report.actual_tm_hours
    );
    assert!(
        (report.ours_tm_hours - ours_h).abs() < 1e-9,
        "{} vs {ours_h}",
        report.ours_tm_hours
    );

    // CSV and SVG
    let csv = report.to_csv();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("t,actual_tms,ours_tms,input_rate,lag,decision_rule")
    );
    assert_eq!(lines.count(), report.ticks.len());
    if flink_keda_scaler::svg::AVAILABLE {
        assert!(report.to_svg().expect("svg").starts_with("<svg"));
    }

    // --- an empty required signal over the whole range is an error naming it
    let e = backtest::run_from_config(&config, &options(Some("emptybusy"), None))
        .await
        .expect_err("empty busyTime");
    let msg = e.to_string();
    assert!(msg.starts_with("signal busyTime: "), "{msg}");
    assert!(msg.contains("no series"), "{msg}");
    proxy.take();
    // --- unreachable Prometheus: an error naming a signal, never zeros
    let e = backtest::run_from_config(&config, &options(None, Some("down")))
        .await
        .expect_err("unreachable");
    let msg = e.to_string();
    assert!(msg.starts_with("signal "), "{msg}");
    assert!(msg.contains("unreachable"), "{msg}");

    // --- the CLI binary, topology from a file
    let topo_file = dir.path().join("topology.json");
    std::fs::write(
        &topo_file,
        serde_json::to_string(&job.topology()).expect("topology json"),
    )
    .expect("write topology");
    let config_file = dir.path().join("scaler.yaml");
    std::fs::write(
        &config_file,
        format!(
            "prometheus:\n  default: {{url: \"{}\", timeout: 20s}}\npolicies:\n  default: {{targetUtilization: {TARGET_UTILIZATION}, utilizationLow: 0.2, utilizationHigh: 0.85, alignment: off}}\n",
            proxy.url
        ),
    )
    .expect("write config");
    let (csv_path, svg_path) = (dir.path().join("bt.csv"), dir.path().join("bt.svg"));
    let cli = run_cli(
        &config_file,
        &topo_file,
        &job.job_id,
        &h,
        &csv_path,
        &svg_path,
    )
    .await;
    assert!(
        cli.status.success(),
        "CLI failed: {}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let stdout = String::from_utf8_lossy(&cli.stdout);
    println!("CLI:\n{stdout}");
    assert!(
        stdout.contains("rescales ours would have made: 1"),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("2→{want_tms}")), "{stdout}");
    let cli_queries = proxy.take();
    // one range query per signal, the two counts and the scrape-interval probe
    assert_eq!(cli_queries.len(), Signal::ALL.len() + 3, "{cli_queries:?}");
    let csv = std::fs::read_to_string(&csv_path).expect("csv written");
    println!(
        "CSV head:\n{}",
        csv.lines().take(4).collect::<Vec<_>>().join("\n")
    );
    assert_eq!(csv, report.to_csv(), "CLI and library agree");
    if flink_keda_scaler::svg::AVAILABLE {
        assert!(std::fs::read_to_string(&svg_path)
            .expect("svg written")
            .contains("ours"));
    }
    eprintln!("backtest test took {:?}", t0.elapsed());
}

async fn run_cli(
    config: &Path,
    topology: &Path,
    job_id: &str,
    h: &History,
    csv: &Path,
    svg: &Path,
) -> std::process::Output {
    let mut cmd = tokio::process::Command::new(support::scaler_bin());
    cmd.arg("backtest")
        .arg("--config")
        .arg(config)
        .arg("--topology")
        .arg(topology)
        .args(["--job", job_id, "--job-name", "orders-enrichment"])
        .args(["--slots-per-task-manager", &SLOTS_PER_TM.to_string()])
        .args(["--from", &h.start.to_rfc3339(), "--to", &h.end.to_rfc3339()])
        .args(["--step", "15s"])
        .arg("--csv")
        .arg(csv)
        .kill_on_drop(true);
    if flink_keda_scaler::svg::AVAILABLE {
        cmd.arg("--svg").arg(svg);
    }
    tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("CLI finishes within 120 s")
        .expect("run CLI")
}

//! The Grafana dashboard and the alert rules only use metrics that exist: every metric
//! name in every dashboard query, annotation, variable and alert expression is either
//! exported by the scaler (scraped over HTTP from an in-process exporter in which every
//! family has a sample) or a Flink PrometheusReporter metric from [`FLINK_METRICS`].
//! Also checks the dashboard JSON structurally and, with promtool, that every query
//! parses as PromQL.

mod promql;

use crate::support;

use std::{
    collections::{BTreeMap, BTreeSet, HashSet},
    path::PathBuf,
    process::Command,
    sync::Arc,
    time::Duration,
};

use chrono::DateTime;
use flink_keda_scaler::{
    core::{Direction, Rule, ScaledObjectRef},
    exporter::{self, JobKey, Metrics, Readiness, RescaleOutcome, SignalValues},
};
use promql::{label_names, metric_names, selector_matchers, selectors};
use serde_json::Value;

/// Flink PrometheusReporter metrics (`flink_` + logical scope + name, see Flink's
/// `AbstractPrometheusReporter`) that the dashboard and alerts may use.
const FLINK_METRICS: &[&str] = &[
    // FLIP-33 source backlog per source subtask.
    "flink_taskmanager_job_task_operator_pendingRecords",
    // Task IO.
    "flink_taskmanager_job_task_busyTimeMsPerSecond",
    "flink_taskmanager_job_task_backPressuredTimeMsPerSecond",
    "flink_taskmanager_job_task_numRecordsInPerSecond",
    // Cluster capacity.
    "flink_jobmanager_numRegisteredTaskManagers",
    "flink_jobmanager_taskSlotsTotal",
    "flink_jobmanager_taskSlotsAvailable",
];

/// Series Prometheus itself produces for every target.
const PROMETHEUS_SYNTHETIC: &[&str] = &["up"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn dashboard() -> Value {
    let path = root().join("dashboards/flink-keda-scaler.json");
    let text = std::fs::read_to_string(&path).expect("dashboard file");
    serde_json::from_str(&text).expect("dashboard JSON")
}

/// A `Metrics` in which every family has at least one sample.
fn populated_metrics() -> Metrics {
    let m = Metrics::with_build_info("0.0.0-test", "deadbeef").expect("metrics");
    let so = ScaledObjectRef::new("ns", "so");
    let key = JobKey {
        scaled_object: &so,
        job: "wordcount",
    };
    m.register_job(&key);
    m.record_rescale(
        &key,
        Direction::Up,
        RescaleOutcome::Succeeded,
        Duration::from_secs(20),
    );
    m.set_last_rescale(
        &key,
        DateTime::from_timestamp(1_700_000_000, 0).expect("ts"),
    );
    m.set_desired_task_managers(&key, 4);
    m.set_current_task_managers(&key, 3);
    m.set_reported_task_managers(&key, 4);
    m.set_spare_task_managers(&key, 1);
    m.set_task_manager_bounds(&key, 1, 10);
    m.set_vertex_parallelism(&key, "cbc357ccb763df2852fee8c4fc7d55f2", "Source", 8, 6);
    m.record_decision(&key, Rule::ScaleUp);
    m.set_rescale_phase(&key, Some("verifying"));
    m.set_signals(
        &key,
        "cbc357ccb763df2852fee8c4fc7d55f2",
        &SignalValues {
            pending_records: Some(1000.0),
            busy_ratio: Some(0.9),
            true_processing_rate: Some(2000.0),
            input_rate: Some(1800.0),
        },
    );
    m.observe_prometheus_query("default", "busyTime", 0.05);
    m.record_prometheus_error("default", "pendingRecords", "empty_result");
    m.observe_flink_request("/jobs/:jobid", Some(200), 0.01);
    m.record_flink_error("/jobs/:jobid/resource-requirements", "conflict");
    m.observe_grpc("GetMetrics", "OK", 0.001);
    m.set_leader(true);
    m.record_failover(&key);
    m
}

/// Label names per exported sample name.
type LabelSets = BTreeMap<String, BTreeSet<String>>;

/// Scrapes `/metrics` from a real exporter server and returns (families, label names per
/// sample name).
async fn scrape_labels() -> (BTreeSet<String>, LabelSets) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/metrics", listener.local_addr().expect("addr"));
    let (_tx, rx) = tokio::sync::watch::channel(Readiness::Ready);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(exporter::serve(
        listener,
        Arc::new(populated_metrics()),
        rx,
        axum::Router::new(),
        async move {
            let _ = stopped.await;
        },
    ));
    let body = reqwest::get(&url)
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("body");
    let _ = stop.send(());
    server.await.expect("join").expect("serve");

    let mut families = BTreeSet::new();
    let mut samples = LabelSets::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            families.insert(rest.split_whitespace().next().expect("family").to_string());
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).expect("sample line");
            let labels = match line[end..].strip_prefix('{') {
                Some(l) => label_names(&l[..l.rfind('}').expect("closing brace")]),
                None => BTreeSet::new(),
            };
            samples
                .entry(line[..end].to_string())
                .or_default()
                .extend(labels);
        }
    }
    (families, samples)
}

async fn scrape() -> (BTreeSet<String>, BTreeSet<String>) {
    let (families, samples) = scrape_labels().await;
    (families, samples.into_keys().collect())
}

/// Every PromQL expression of the dashboard (panel targets, annotations, variables).
fn dashboard_exprs(d: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().into_iter().flatten() {
            if let Some(e) = t["expr"].as_str() {
                out.push((format!("panel {}", p["title"]), e.to_string()));
            }
        }
    }
    for a in d["annotations"]["list"].as_array().expect("annotations") {
        if let Some(e) = a["target"]["expr"].as_str() {
            out.push((format!("annotation {}", a["name"]), e.to_string()));
        }
    }
    for v in d["templating"]["list"].as_array().expect("templating") {
        if let Some(q) = v["query"]["query"].as_str() {
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|r| r.rsplit_once(','))
                .map_or(q, |(sel, _)| sel);
            out.push((format!("variable {}", v["name"]), inner.to_string()));
        }
    }
    out
}

fn alert_exprs() -> Vec<(String, String)> {
    let path = root().join("manifests/alerts/flink-keda-scaler.rules.yml");
    let rules: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).expect("rules")).expect("yaml");
    let mut out = Vec::new();
    for g in rules["groups"].as_sequence().expect("groups") {
        for r in g["rules"].as_sequence().expect("rules") {
            let name = r["alert"].as_str().or(r["record"].as_str()).expect("name");
            out.push((
                format!("alert {name}"),
                r["expr"].as_str().expect("expr").to_string(),
            ));
        }
    }
    out
}

#[tokio::test]
async fn every_family_has_a_sample() {
    let (families, samples) = scrape().await;
    assert!(families.len() >= 20, "{families:?}");
    for f in &families {
        let present = samples.contains(f)
            || ["_bucket", "_count", "_sum"]
                .iter()
                .any(|s| samples.contains(&format!("{f}{s}")));
        assert!(present, "family {f} has no sample in the fixture");
    }
}

#[tokio::test]
async fn dashboard_and_alerts_use_known_metrics() {
    let (_, exported) = scrape().await;
    let flink: HashSet<&str> = FLINK_METRICS.iter().copied().collect();
    let mut used = 0;
    for (origin, expr) in dashboard_exprs(&dashboard())
        .into_iter()
        .chain(alert_exprs())
    {
        let names = metric_names(&expr);
        assert!(!names.is_empty(), "{origin}: no metric in {expr}");
        for n in names {
            used += 1;
            let known = exported.contains(&n)
                || (n.starts_with("flink_")
                    && !n.starts_with("flink_keda_scaler_")
                    && flink.contains(n.as_str()))
                || PROMETHEUS_SYNTHETIC.contains(&n.as_str());
            assert!(known, "{origin}: unknown metric {n} in {expr}");
        }
    }
    assert!(used > 30, "only {used} metric references found");
}

#[test]
fn dashboard_structure() {
    let d = dashboard();
    assert!(d["schemaVersion"].as_u64().expect("schemaVersion") >= 39);
    assert!(!d["uid"].as_str().unwrap_or_default().is_empty());
    assert!(!d["title"].as_str().unwrap_or_default().is_empty());
    let vars = d["templating"]["list"].as_array().expect("templating.list");
    let var = |name: &str| vars.iter().find(|v| v["name"] == name);
    let ds = var("datasource").expect("datasource variable");
    assert_eq!(ds["type"], "datasource");
    assert_eq!(ds["query"], "prometheus");
    for v in ["namespace", "job"] {
        let v = var(v).unwrap_or_else(|| panic!("variable {v}"));
        assert_eq!(v["type"], "query");
        assert_eq!(v["datasource"]["uid"], "${datasource}");
    }
    let mut ids = HashSet::new();
    let mut rows = 0;
    for p in d["panels"].as_array().expect("panels") {
        let title = p["title"].as_str().expect("panel title");
        let id = p["id"].as_u64().expect("panel id");
        assert!(ids.insert(id), "duplicate panel id {id}");
        let g = &p["gridPos"];
        let (x, w, h) = (g["x"].as_u64(), g["w"].as_u64(), g["h"].as_u64());
        let (Some(x), Some(w), Some(h), Some(_)) = (x, w, h, g["y"].as_u64()) else {
            panic!("{title}: gridPos {g}");
        };
        assert!(w > 0 && h > 0 && x + w <= 24, "{title}: gridPos {g}");
        if p["type"] == "row" {
            rows += 1;
            continue;
        }
        assert_eq!(p["datasource"]["type"], "prometheus", "{title}");
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}: no targets");
        let mut refs = HashSet::new();
        for t in targets {
            assert!(
                !t["expr"].as_str().unwrap_or_default().trim().is_empty(),
                "{title}: empty expr"
            );
            assert!(
                refs.insert(t["refId"].as_str().expect("refId")),
                "{title}: duplicate refId"
            );
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{title}");
        }
    }
    assert!(
        rows >= 2 && ids.len() > rows + 10,
        "{} panels, {rows} rows",
        ids.len()
    );
    // Rescale events as annotations, from the scaler's own metrics.
    let anns = d["annotations"]["list"].as_array().expect("annotations");
    assert!(anns.iter().any(|a| a["target"]["expr"]
        .as_str()
        .is_some_and(|e| e.contains("flink_keda_scaler_last_rescale_timestamp_seconds"))));
}

/// Every dashboard query parses as PromQL: written as recording rules (template variables
/// substituted) and checked with `promtool check rules`.
#[test]
fn dashboard_queries_parse() {
    let Some(promtool) = support::which("promtool") else {
        let _ = support::component_missing("promtool (Debian package `prometheus`)");
        return;
    };
    let rules: Vec<serde_yaml::Value> = dashboard_exprs(&dashboard())
        .into_iter()
        .enumerate()
        .map(|(i, (_, e))| {
            let e = e
                .replace("$__rate_interval", "5m")
                .replace("$namespace", ".*")
                .replace("$flink_job", ".*")
                .replace("$job", ".*");
            let mut m = serde_yaml::Mapping::new();
            m.insert("record".into(), format!("dashboard:query_{i}").into());
            m.insert("expr".into(), e.into());
            serde_yaml::Value::Mapping(m)
        })
        .collect();
    let n = rules.len();
    let mut group = serde_yaml::Mapping::new();
    group.insert("name".into(), "dashboard".into());
    group.insert("rules".into(), serde_yaml::Value::Sequence(rules));
    let mut doc = serde_yaml::Mapping::new();
    doc.insert(
        "groups".into(),
        serde_yaml::Value::Sequence(vec![serde_yaml::Value::Mapping(group)]),
    );
    let dir = support::tempdir("fks-dash-");
    let file = dir.path().join("dashboard.rules.yml");
    std::fs::write(&file, serde_yaml::to_string(&doc).expect("yaml")).expect("write");
    let out = Command::new(promtool)
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .expect("run promtool");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("SUCCESS: {n} rules found")),
        "{text}"
    );
}

/// Dashboard queries, alert expressions and promtool fixture series.
fn all_selectors_sources() -> Vec<(String, String)> {
    let mut exprs: Vec<(String, String)> = dashboard_exprs(&dashboard());
    exprs.extend(alert_exprs());
    let fixtures = root().join("tests/fixtures/alerts");
    for f in std::fs::read_dir(&fixtures).expect("fixtures") {
        let path = f.expect("entry").path();
        let doc: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(&path).expect("read")).expect("yaml");
        for t in doc["tests"].as_sequence().into_iter().flatten() {
            for s in t["input_series"].as_sequence().into_iter().flatten() {
                let series = s["series"].as_str().expect("series").to_string();
                exprs.push((format!("fixture {}", path.display()), series));
            }
        }
    }
    exprs
}

/// Label matchers on the scaler's metrics (dashboard queries, alert expressions and the
/// promtool fixture series) only use label names the exporter really exports.
#[tokio::test]
async fn selectors_use_exported_label_names() {
    let (_, exported) = scrape_labels().await;
    let exprs = all_selectors_sources();
    let mut checked = 0;
    for (origin, expr) in exprs {
        for (metric, labels) in selectors(&expr) {
            let Some(known) = exported.get(&metric) else {
                continue; // Flink or Prometheus metric: checked by name elsewhere.
            };
            checked += 1;
            let unknown: Vec<_> = labels.difference(known).collect();
            assert!(
                unknown.is_empty(),
                "{origin}: {metric} has no label {unknown:?} (exported: {known:?})"
            );
            // Fixture series must carry the full label set of the exported series.
            if origin.starts_with("fixture") {
                assert_eq!(&labels, known, "{origin}: {metric} label set");
            }
        }
    }
    assert!(checked > 40, "only {checked} selectors checked");
}

/// Values matched on bounded labels are real values: `rule` from `core::Rule`, `direction`
/// from `core::Direction`, `outcome` from `RescaleOutcome`, `phase` `idle` or any.
#[test]
fn matched_label_values_exist() {
    let outcomes: Vec<&str> = RescaleOutcome::ALL.iter().map(|o| o.as_str()).collect();
    let mut checked = 0;
    for (origin, expr) in all_selectors_sources() {
        for (metric, ms) in selector_matchers(&expr) {
            if !metric.starts_with("flink_keda_scaler_") {
                continue;
            }
            for (label, value) in ms {
                for v in value
                    .split('|')
                    .filter(|v| !v.is_empty() && !v.contains('$'))
                {
                    let ok = match label.as_str() {
                        "rule" => serde_yaml::from_str::<Rule>(v).is_ok_and(|r| r.as_str() == v),
                        "direction" => {
                            serde_yaml::from_str::<Direction>(v).is_ok_and(|d| d.as_str() == v)
                        }
                        "outcome" => outcomes.contains(&v),
                        _ => continue,
                    };
                    checked += 1;
                    assert!(
                        ok,
                        "{origin}: {metric}{{{label}=\"{v}\"}} is not a value the scaler exports"
                    );
                }
            }
        }
    }
    assert!(checked >= 10, "only {checked} values checked");
}

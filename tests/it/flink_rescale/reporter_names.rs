//! The synthetic fleet (`fks_components::fleet`) against real Flink: what the fleet
//! serves must be what Flink serves, or the fleet tests and benchmark measure a fiction.
//!
//! Compared on a real session cluster running the LoadJob:
//! * every metric family the fleet exposes ([`FAMILIES`]) exists in the real reporters'
//!   scrape (JobManager and TaskManagers) with the same type (`gauge`) and the same label
//!   names (`job_id`, `task_id`, `task_attempt_id`, `host`, `task_name`,
//!   `task_attempt_num`, `job_name`, `tm_id`, `subtask_index`, plus `operator_id` and
//!   `operator_name` for operators);
//! * on 2.3.0 (the version the fleet claims), the fields of the REST bodies the scaler
//!   reads — `/overview`, `/jobs/overview`, `/jobs/:id` (and a vertex of it),
//!   `/taskmanagers`, `/jobs/:id/resource-requirements` — are the real ones;
//! * on both lines, `/jobs/overview` carries what the scaler's REST cache keys on: an
//!   in-place rescale changes `last-modification` and `tasks.total`.

use std::collections::{BTreeMap, BTreeSet};

use fks_components::fleet::{
    exposition::{Scope, FAMILIES},
    FleetOptions, SyntheticFleet,
};
use serde_json::Value;

use super::*;

/// name → (type, label-name sets seen).
type Families = BTreeMap<String, (String, BTreeSet<BTreeSet<String>>)>;

fn families(text: &str) -> Families {
    let mut out = Families::new();
    let mut types = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split_whitespace();
            if let (Some(n), Some(t)) = (it.next(), it.next()) {
                types.insert(n.to_string(), t.to_string());
            }
            continue;
        }
        let Some((name, rest)) = line.split_once('{') else {
            continue;
        };
        let labels: BTreeSet<String> = rest
            .split("\",")
            .filter_map(|kv| kv.split_once("=\"").map(|(k, _)| k.trim_start_matches(',')))
            .filter(|k| !k.is_empty() && !k.starts_with('}'))
            .map(str::to_string)
            .collect();
        let ty = types.get(name).cloned().unwrap_or_default();
        out.entry(name.to_string())
            .or_insert((ty, BTreeSet::new()))
            .1
            .insert(labels);
    }
    out
}

async fn scrape_reporters(c: &FlinkCluster) -> String {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .expect("http");
    let mut all = String::new();
    for target in c.reporter_targets() {
        if let Ok(r) = http.get(format!("http://{target}/metrics")).send().await {
            all.push_str(&r.text().await.unwrap_or_default());
        }
    }
    all
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

/// Field names of the fleet's REST bodies equal the real ones (2.3.0).
async fn compare_rest(c: &FlinkCluster, job: &JobId) {
    let fleet = SyntheticFleet::start(&FleetOptions::default()).expect("fleet");
    let fj = fleet.job(0);
    let f = |p: String| {
        let url = format!("{}/{p}", fleet.rest_url(0));
        async move {
            reqwest::get(&url)
                .await
                .expect("fleet GET")
                .json::<Value>()
                .await
                .expect("fleet JSON")
        }
    };
    let real = |p: String| async move { c.get_json(&p).await.expect("real GET") };
    let pairs = [
        ("overview".to_string(), "overview".to_string(), ""),
        ("jobs/overview".into(), "jobs/overview".into(), "/jobs/0"),
        (format!("jobs/{}", fj.id), format!("jobs/{job}"), ""),
        (
            format!("jobs/{}", fj.id),
            format!("jobs/{job}"),
            "/vertices/0",
        ),
        (
            "taskmanagers".into(),
            "taskmanagers".into(),
            "/taskmanagers/0",
        ),
    ];
    for (fleet_path, real_path, pointer) in pairs {
        let (a, b) = (f(fleet_path.clone()).await, real(real_path).await);
        let (a, b) = (
            a.pointer(pointer).cloned().unwrap_or_default(),
            b.pointer(pointer).cloned().unwrap_or_default(),
        );
        assert_eq!(keys(&a), keys(&b), "fields of /{fleet_path}{pointer}");
        eprintln!(
            "fleet /{fleet_path}{pointer}: same fields as Flink 2.3.0: {:?}",
            keys(&a)
        );
    }
    let reqs = f(format!("jobs/{}/resource-requirements", fj.id)).await;
    let real_reqs = real(format!("jobs/{job}/resource-requirements")).await;
    let one = |v: &Value| v.as_object().and_then(|o| o.values().next().cloned());
    assert_eq!(
        one(&reqs),
        one(&real_reqs).map(|mut v| {
            v["parallelism"]["lowerBound"] = 1.into();
            v["parallelism"]["upperBound"] = 1.into();
            v
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synthetic_fleet_serves_the_real_reporter_names_and_rest_fields() {
    let _g = LOCK.lock().await;
    let Some((c, client, job)) = start(ClusterOptions::default(), 2).await else {
        return;
    };
    // Wait until the source operator reports pendingRecords (every family is registered).
    let mut real = Families::new();
    for _ in 0..60 {
        real = families(&scrape_reporters(&c).await);
        if real.contains_key("flink_taskmanager_job_task_operator_pendingRecords") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let fleet = SyntheticFleet::start(&FleetOptions::default()).expect("fleet");
    let ours = families(&fleet.exposition(0));
    let version = c.installed.version.clone();
    let (major, _) = fks_components::flink_cluster::major_minor(&version);
    for family in FAMILIES {
        let name = family.name();
        // numRescales is a Flink 2.x metric.
        if major < 2 && family.metric == "numRescales" {
            assert!(!real.contains_key(&name), "{name} on {version}");
            continue;
        }
        let (real_type, real_labels) = real
            .get(&name)
            .unwrap_or_else(|| panic!("Flink {version} does not export {name}"));
        let (our_type, our_labels) = &ours[&name];
        assert_eq!(our_type, real_type, "type of {name}");
        assert_eq!(our_type, "gauge");
        let expected: BTreeSet<String> = family
            .scope
            .labels()
            .iter()
            .map(|l| l.to_string())
            .collect();
        assert_eq!(our_labels, &BTreeSet::from([expected.clone()]), "{name}");
        assert!(
            real_labels.contains(&expected),
            "labels of {name} on {version}: {real_labels:?}"
        );
        if family.scope == Scope::Task {
            eprintln!("{version}: {name} {real_type} {expected:?}");
        }
    }
    eprintln!(
        "Flink {version}: all {} fleet families match the real reporter",
        FAMILIES.len()
    );

    if major >= 2 {
        compare_rest(&c, &job).await;
    }
    // The REST cache's change key: an in-place rescale moves last-modification and tasks.total.
    let before = c.get_json("jobs/overview").await.expect("overview")["jobs"][0].clone();
    assert_eq!(before["tasks"]["total"], 4, "{before}");
    let topo = client.topology(&job).await.expect("topology");
    let target = plan_for(&client, &topo, uniform_parallelism(&topo, 1), None)
        .await
        .expect("plan");
    apply_and_wait(&client, &job, target, &test_options())
        .await
        .expect("rescale");
    let after = c.get_json("jobs/overview").await.expect("overview")["jobs"][0].clone();
    assert_eq!(after["tasks"]["total"], 2, "{after}");
    assert!(
        after["last-modification"].as_i64() > before["last-modification"].as_i64(),
        "{before} → {after}"
    );
}

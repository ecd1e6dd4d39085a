//! Predictive pre-scaling against a real Prometheus holding yesterday's history (TSDB
//! blocks made by `promtool tsdb create-blocks-from openmetrics`): the history query
//! (`max_over_time(...[lead] offset period-lead)`) finds yesterday's coming peak, the floor
//! is the DS2-style capacity for it, and the core pre-scales with `predictive_floor`.

use crate::support;

use std::{collections::BTreeMap, time::Duration};

use chrono::{TimeZone, Utc};
use flink_keda_scaler::{
    core::{
        decide, Edge, JobSignals, JobState, JobStatus, Observation, Policy, PredictiveConfig, Rule,
        ShipStrategy, Topology, Vertex, VertexId, VertexSignals,
    },
    promql::{JobVars, Windows},
    runtime::predictive,
};
use support::prometheus::PrometheusHarness;

/// The default source-rate query with the fallback windows.
fn source() -> predictive::SourceRate<'static> {
    predictive::SourceRate {
        template: None,
        windows: Windows::default(),
    }
}

const BASE_RATE: f64 = 1000.0;
const PEAK_RATE: f64 = 3000.0;

fn promtool() -> Option<std::path::PathBuf> {
    support::which("promtool")
}

/// One day of history around "now - 1 day": the source emits BASE_RATE except for a peak
/// of PEAK_RATE that started yesterday 5 minutes after the current time of day.
fn history(now: i64) -> String {
    let mut out =
        String::from("# TYPE flink_taskmanager_job_task_operator_numRecordsOutPerSecond gauge\n");
    let yesterday = now - 86_400;
    let mut t = yesterday - 3_600;
    while t <= yesterday + 3_600 {
        let rate = if (yesterday + 300..yesterday + 900).contains(&t) {
            PEAK_RATE
        } else {
            BASE_RATE
        };
        out.push_str(&format!(
            "flink_taskmanager_job_task_operator_numRecordsOutPerSecond{{job_name=\"orders\",job_id=\"yesterdays0000000000000000000000\",operator_name=\"Source:_events\",task_id=\"src\",subtask_index=\"0\"}} {rate} {t}\n"
        ));
        t += 60;
    }
    out.push_str("# EOF\n");
    out
}

fn observation(now: chrono::DateTime<Utc>) -> Observation {
    let v = |id: &str, p: u32| Vertex {
        id: VertexId::new(id),
        name: id.to_string(),
        parallelism: p,
        max_parallelism: 128,
        slot_sharing_group: None,
    };
    let signals = |busy: f64, rate: f64| VertexSignals {
        busy_ms_per_s: Some(busy),
        backpressured_ms_per_s: Some(0.0),
        records_in_per_s: Some(rate),
        records_out_per_s: Some(rate),
        pending_records: Some(0.0),
        lag_growth_per_s: Some(0.0),
        arrival_per_s: None,
        partitions: None,
    };
    Observation {
        at: now,
        job_id: "0123456789abcdef0123456789abcdef".into(),
        job_name: "orders".into(),
        status: JobStatus::Running,
        running_since: Some(now - chrono::Duration::hours(1)),
        topology: Topology {
            vertices: vec![v("src", 2), v("map", 2)],
            edges: vec![Edge {
                from: VertexId::new("src"),
                to: VertexId::new("map"),
                ship_strategy: ShipStrategy::Rebalance,
            }],
        },
        slots_per_task_manager: Some(1),
        task_managers_registered: Some(2),
        // busy 0.6 at 1000 rec/s: within the band, no reactive scaling
        vertices: [
            (VertexId::new("src"), signals(600.0, BASE_RATE)),
            (VertexId::new("map"), signals(600.0, BASE_RATE)),
        ]
        .into_iter()
        .collect::<BTreeMap<_, _>>(),
        task_managers: Vec::new(),
        job: JobSignals::default(),
        predicted_floor: None,
        signal_window: None,
        arrival_window: None,
    }
}

#[tokio::test]
async fn yesterdays_peak_raises_the_floor_ahead_of_time() {
    let Some(promtool) = promtool() else {
        let _ = support::component_missing("promtool (apt-get install prometheus)");
        return;
    };
    let now = Utc::now().timestamp();
    let dir = support::tempdir("fks-predictive-");
    let om = dir.path().join("history.om");
    std::fs::write(&om, history(now)).expect("write openmetrics");
    let blocks = dir.path().join("blocks");
    let out = std::process::Command::new(&promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om)
        .arg(&blocks)
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let Some(prom) = PrometheusHarness::start_with_blocks(&blocks).await else {
        return;
    };
    prom.wait_for(
        &format!(
            "count(flink_taskmanager_job_task_operator_numRecordsOutPerSecond @ {})",
            now - 86_400
        ),
        Duration::from_secs(20),
    )
    .await;
    let client = support::prometheus::prom_client(&prom.url());
    let cfg = PredictiveConfig {
        period_s: 86_400.0,
        lead_s: 900.0,
        headroom: 1.1,
        min_rise: 0.3,
    };
    let at = Utc.timestamp_opt(now, 0).single().expect("now");
    let obs = observation(at);
    let vars = JobVars::new(obs.job_id.clone(), obs.job_name.clone());
    let policy = Policy {
        target_utilization: 0.7,
        min_task_managers: 1,
        max_task_managers: 20,
        slots_per_task_manager: Some(1),
        stabilization: Duration::from_secs(0),
        predictive: Some(cfg.clone()),
        ..Policy::default()
    };

    // 1000 rec/s at busy 0.6 on 2 TaskManagers → 1000 × (0.7 / 0.6) / 2 per TaskManager
    let per_tm = BASE_RATE * (0.7 / 0.6) / 2.0;
    let expected = (PEAK_RATE * cfg.headroom / per_tm).ceil() as u32;
    let floor = predictive::floor(&client, source(), &vars, &cfg, &obs, 2, 0.7)
        .await
        .expect("history query");
    assert_eq!(
        floor,
        Some(expected),
        "yesterday's coming peak sets the floor"
    );

    // no history for another job name: no floor, and no error
    let other = JobVars::new(obs.job_id.clone(), "payments".to_string());
    let none = predictive::floor(&client, source(), &other, &cfg, &obs, 2, 0.7).await;
    assert!(matches!(none, Ok(None)), "{none:?}");

    // the core pre-scales to the floor, with the reason
    let mut obs = obs;
    obs.predicted_floor = floor;
    let (decision, _) = decide(&obs, &JobState::default(), &policy, at);
    let target = decision.target.clone().expect("target");
    assert_eq!(target.task_managers, expected);
    assert!(
        decision.rescale,
        "pre-scaling is applied now: {}",
        decision.summary()
    );
    assert!(
        decision
            .reasons
            .iter()
            .any(|r| r.rule == Rule::PredictiveFloor),
        "{}",
        decision.summary()
    );
    // parallelism grows to use the new slots
    assert!(target.parallelism.values().all(|p| *p >= 2));
}

//! The decision core through its public API only (what `runtime` and `config` see):
//! DS2 target rates propagate through edge output ratios across fan-out and fan-in,
//! TaskManagers follow slot sharing groups, schedules are validated.

use std::{collections::BTreeMap, time::Duration};

use chrono::{TimeZone, Utc};
use flink_keda_scaler::core::{
    decide, task_managers_for, Direction, Edge, JobSignals, JobState, JobStatus, Observation,
    Policy, Rule, Schedule, ScheduleKind, ShipStrategy, Topology, Vertex, VertexId, VertexSignals,
};

fn vertex(name: &str, parallelism: u32, max_parallelism: u32, group: &str) -> Vertex {
    Vertex {
        id: VertexId::new(name),
        name: name.into(),
        parallelism,
        max_parallelism,
        slot_sharing_group: Some(group.into()),
    }
}

fn edge(from: &str, to: &str, ship: ShipStrategy) -> Edge {
    Edge {
        from: VertexId::new(from),
        to: VertexId::new(to),
        ship_strategy: ship,
    }
}

/// busy ms/s, records in/s, records out/s.
fn signals(busy: f64, rate_in: f64, rate_out: f64) -> VertexSignals {
    VertexSignals {
        busy_ms_per_s: Some(busy),
        records_in_per_s: Some(rate_in),
        records_out_per_s: Some(rate_out),
        ..VertexSignals::default()
    }
}

/// `src` (flatMap ×2) → `map` ─HASH─► `join` ◄─HASH─ `src2`.
fn fan_in_job() -> Observation {
    let now = Utc
        .with_ymd_and_hms(2026, 1, 15, 12, 0, 0)
        .single()
        .unwrap_or_default();
    let mut vertices = BTreeMap::new();
    let mut src = signals(500.0, 1000.0, 2000.0);
    src.lag_growth_per_s = Some(1000.0);
    vertices.insert(VertexId::new("src"), src);
    vertices.insert(VertexId::new("map"), signals(500.0, 2000.0, 2000.0));
    vertices.insert(VertexId::new("src2"), signals(250.0, 500.0, 500.0));
    vertices.insert(VertexId::new("join"), signals(500.0, 2500.0, 2500.0));
    Observation {
        at: now,
        job_id: "j".into(),
        job_name: "fan-in".into(),
        status: JobStatus::Running,
        running_since: Some(now - chrono::Duration::hours(1)),
        topology: Topology {
            vertices: vec![
                vertex("src", 2, 128, "default"),
                vertex("map", 4, 128, "default"),
                vertex("src2", 2, 128, "default"),
                vertex("join", 5, 720, "default"),
            ],
            edges: vec![
                edge("src", "map", ShipStrategy::Rebalance),
                edge("map", "join", ShipStrategy::Hash),
                edge("src2", "join", ShipStrategy::Hash),
            ],
        },
        slots_per_task_manager: Some(1),
        task_managers_registered: Some(5),
        vertices,
        task_managers: Vec::new(),
        job: JobSignals::default(),
        predicted_floor: None,
        signal_window: None,
        arrival_window: None,
    }
}

/// src: target 1000 + 1000 growth = 2000, true rate 2000 → ceil(2000 / 700) = 3.
/// map: target 2000 × (2000 / 1000) = 4000, true rate 4000 → ceil(4000 / 700) = 6.
/// src2: 25 % busy → under the band, but held because the job scales up.
/// join: target 4000 × 1 + 500 × 1 = 4500, true rate 5000 → ceil(4500 / 700) = 7,
/// aligned to 8 (a divisor of its 720 key groups).
#[test]
fn target_rates_follow_output_ratios_through_fan_in() {
    let (d, state) = decide(
        &fan_in_job(),
        &JobState::default(),
        &Policy::default(),
        fan_in_job().at,
    );
    let target: Option<BTreeMap<String, u32>> = d.target.as_ref().map(|t| {
        t.parallelism
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect()
    });
    let want: BTreeMap<String, u32> = [("src", 3), ("map", 6), ("src2", 2), ("join", 8)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(target, Some(want), "{}", d.summary());
    assert_eq!(d.target.as_ref().map(|t| t.task_managers), Some(8));
    assert_eq!(d.direction, Direction::Up);
    assert!(d.rescale);
    let rules: Vec<(Rule, Option<String>)> = d
        .reasons
        .iter()
        .map(|r| (r.rule, r.vertex.as_ref().map(ToString::to_string)))
        .collect();
    assert_eq!(
        rules,
        vec![
            (Rule::Overutilized, Some("src".into())),
            (Rule::Overutilized, Some("map".into())),
            (Rule::Underutilized, Some("src2".into())),
            (Rule::Overutilized, Some("join".into())),
            (Rule::Aligned, Some("join".into())),
            (Rule::ScaleDownDelayed, None),
            (Rule::ScaleUp, None),
        ],
        "{}",
        d.summary()
    );
    let map_reason = d
        .reasons
        .iter()
        .find(|r| r.vertex.as_ref().is_some_and(|v| v.as_str() == "map"));
    assert_eq!(
        map_reason.and_then(|r| r.inputs.get("target_rate").copied()),
        Some(4000.0)
    );
    assert_eq!(state.last_rescale_at, Some(d.at));
}

#[test]
fn task_managers_follow_slot_sharing_groups() {
    let topology = Topology {
        vertices: vec![
            vertex("a", 4, 128, "default"),
            vertex("b", 6, 128, "default"),
            vertex("c", 3, 128, "heavy"),
        ],
        edges: vec![
            edge("a", "b", ShipStrategy::Forward),
            edge("b", "c", ShipStrategy::Hash),
        ],
    };
    // (parallelism override, slots per TM) → Σ group max = default max + heavy max
    type Overrides = &'static [(&'static str, u32)];
    let cases: &[(Overrides, u32, u32)] = &[
        (&[], 4, 3),                    // 6 + 3 = 9 slots → 3 TMs of 4
        (&[], 1, 9),                    // 9 TMs of 1
        (&[("c", 7)], 4, 4),            // 6 + 7 = 13 → 4
        (&[("a", 10), ("c", 1)], 2, 6), // 10 + 1 = 11 → 6
        (&[], 0, 9),                    // zero slots count as one
    ];
    for (overrides, slots, want) in cases {
        let p: BTreeMap<VertexId, u32> = overrides
            .iter()
            .map(|(k, v)| (VertexId::new(*k), *v))
            .collect();
        assert_eq!(
            task_managers_for(&topology, &p, *slots),
            *want,
            "{overrides:?} with {slots} slots"
        );
    }
}

#[test]
fn schedules_are_validated_for_the_config_loader() {
    let err = |cron: &str, tz: &str| {
        Schedule::new(
            "s",
            cron,
            tz,
            Duration::from_secs(600),
            ScheduleKind::Ceiling,
            2,
        )
        .err()
        .map(|e| e.to_string())
    };
    assert_eq!(err("0 30 7 * * Mon-Fri", "America/New_York"), None);
    let zone = err("0 30 7 * * *", "Nowhere/City");
    assert!(zone.is_some_and(|e| e.contains("time zone")));
    let cron = err("every day", "UTC");
    assert!(cron.is_some_and(|e| e.contains("cron")));
}

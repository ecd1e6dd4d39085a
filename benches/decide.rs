//! Benchmark of the decision core: one 50-vertex job (5 sources with lag and partitions,
//! chains, fan-in and fan-out, keyed edges, two slot sharing groups) decided in a loop.
//! Prints decisions per second and nanoseconds per decision.
//!
//! Run: `cargo bench --bench decide`

use std::{
    collections::BTreeMap,
    hint::black_box,
    time::{Duration, Instant},
};

use chrono::{TimeZone, Utc};
use flink_keda_scaler::core::{
    decide, Edge, JobSignals, JobState, JobStatus, Observation, Policy, ShipStrategy,
    TaskManagerSignals, Topology, Vertex, VertexId, VertexSignals,
};

const VERTICES: usize = 50;
const SOURCES: usize = 5;

fn id(i: usize) -> VertexId {
    VertexId::new(format!("{i:032x}"))
}

/// The 50-vertex job: vertex i ≥ 5 reads from i − 5 (chains); every 7th also from i − 3
/// (fan-in); every 3rd input is keyed (HASH).
fn job() -> Observation {
    let now = Utc
        .with_ymd_and_hms(2026, 1, 15, 12, 0, 0)
        .single()
        .unwrap_or_default();
    let mut vertices = Vec::new();
    let mut edges = Vec::new();
    let mut signals = BTreeMap::new();
    for i in 0..VERTICES {
        vertices.push(Vertex {
            id: id(i),
            name: format!("vertex {i}"),
            parallelism: 2 + (i % 6) as u32,
            max_parallelism: if i % 2 == 0 { 128 } else { 720 },
            slot_sharing_group: Some(if i % 10 >= 8 { "heavy" } else { "default" }.into()),
        });
        if i >= SOURCES {
            let ship = if i % 3 == 0 {
                ShipStrategy::Hash
            } else {
                ShipStrategy::Rebalance
            };
            edges.push(Edge {
                from: id(i - SOURCES),
                to: id(i),
                ship_strategy: ship,
            });
            if i % 7 == 0 {
                edges.push(Edge {
                    from: id(i - 3),
                    to: id(i),
                    ship_strategy: ShipStrategy::Hash,
                });
            }
        }
        let rate = 1000.0 * (1 + i % 4) as f64;
        let source = i < SOURCES;
        signals.insert(
            id(i),
            VertexSignals {
                busy_ms_per_s: Some(250.0 + (i * 97 % 700) as f64),
                backpressured_ms_per_s: Some(0.0),
                records_in_per_s: Some(rate),
                records_out_per_s: Some(rate * 1.1),
                pending_records: source.then_some(50_000.0 * (i + 1) as f64),
                lag_growth_per_s: source.then_some(100.0 * i as f64),
                arrival_per_s: source.then_some(rate + 100.0 * i as f64),
                partitions: source.then_some([3, 5, 7, 11, 13][i % 5]),
            },
        );
    }
    Observation {
        at: now,
        job_id: "bench".into(),
        job_name: "bench".into(),
        status: JobStatus::Running,
        running_since: Some(now - chrono::Duration::hours(1)),
        topology: Topology { vertices, edges },
        slots_per_task_manager: Some(4),
        task_managers_registered: Some(4),
        vertices: signals,
        task_managers: (0..4)
            .map(|t| TaskManagerSignals {
                tm_id: format!("tm-{t}"),
                cpu_load: Some(0.2 + 0.1 * f64::from(t)),
                heap_used_bytes: Some(1.5e9),
                heap_max_bytes: Some(2e9),
                gc_ms_per_s: Some(20.0),
            })
            .collect(),
        job: JobSignals::default(),
        predicted_floor: None,
        signal_window: None,
        arrival_window: None,
    }
}

fn main() {
    let obs = job();
    let policy = Policy {
        max_task_managers: 64,
        ..Policy::default()
    };
    let state = JobState::default();
    let now = obs.at;
    let (d, _) = decide(&obs, &state, &policy, now);
    println!(
        "decision: {} vertices, target TMs {:?}, {} reasons, main {:?}",
        obs.topology.vertices.len(),
        d.target.as_ref().map(|t| t.task_managers),
        d.reasons.len(),
        d.main_rule()
    );
    // warm up, then measure for ~2 s
    for _ in 0..200 {
        black_box(decide(black_box(&obs), &state, &policy, now));
    }
    // `cargo bench` passes `--bench`; under `cargo test` run one short smoke pass.
    let budget = if std::env::args().any(|a| a == "--bench") {
        Duration::from_secs(2)
    } else {
        Duration::from_millis(100)
    };
    let cpu_start = on_cpu_ns();
    let start = Instant::now();
    let mut n: u64 = 0;
    while start.elapsed() < budget {
        for _ in 0..100 {
            black_box(decide(black_box(&obs), &state, &policy, now));
        }
        n += 100;
    }
    let elapsed = start.elapsed();
    let ns = elapsed.as_nanos() as f64 / n as f64;
    println!(
        "decide/50-vertex: {n} decisions in {:.2?}: {:.0} decisions/s, {:.0} ns/decision (wall)",
        elapsed,
        1e9 / ns,
        ns
    );
    // on a shared machine wall time includes waiting for a CPU; on-CPU time does not
    if let (Some(a), Some(b)) = (cpu_start, on_cpu_ns()) {
        let cpu = (b - a) as f64 / n as f64;
        println!(
            "decide/50-vertex: {:.0} decisions/s, {:.0} ns/decision (on-CPU time of this thread)",
            1e9 / cpu,
            cpu
        );
    }
}

/// Nanoseconds this thread has spent on a CPU (Linux `/proc/thread-self/schedstat`).
fn on_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

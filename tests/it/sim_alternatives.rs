//! The measured alternatives of docs/simulator.md ("Findings", the `spikes` goal): each
//! candidate setting of our policy and our ScaledObject's HPA `behavior` against the peers
//! of the same run, on every built-in trace. Ignored (a table to read, not a check; the
//! goal itself is `sim_goal`): `cargo test --test it sim_alternatives:: -- --ignored
//! --nocapture`.

use std::time::Duration;

use flink_keda_scaler::sim::{self, hpa::HpaConfig, BuiltinTrace, SimConfig, TraceSource};

use super::sim_goal::{bounds, misses_in};

type Change = fn(&mut SimConfig);

/// `m` minutes.
const fn min(m: u64) -> Duration {
    Duration::from_secs(60 * m)
}

/// The candidates: a label and the change from the defaults.
fn candidates() -> Vec<(&'static str, Change)> {
    vec![
        ("defaults (HPA as shipped)", |_| {}),
        ("HPA Kubernetes defaults (300 s, max(2x, +4))", |c| {
            c.ours_hpa = HpaConfig::new(1, 16)
        }),
        ("spareTaskManagers 1", |c| c.ours.spare_task_managers = 1),
        ("spareTaskManagers 2", |c| c.ours.spare_task_managers = 2),
        ("scaleDownDelay 10 min", |c| {
            c.ours.scale_down_delay = min(10)
        }),
        ("scaleDownDelay 15 min", |c| {
            c.ours.scale_down_delay = min(15)
        }),
        ("maxScaleDownFactor 1", |c| {
            c.ours.max_scale_down_factor = 1.0
        }),
        ("catchUpDuration 2 min", |c| {
            c.ours.catch_up_duration = min(2)
        }),
        ("catchUpDuration 10 min", |c| {
            c.ours.catch_up_duration = min(10)
        }),
        ("targetUtilization 0.6", |c| c.ours.target_utilization = 0.6),
        ("utilizationLow 0.3", |c| c.ours.utilization_low = 0.3),
        ("utilizationLow 0.3, scaleDownDelay 10 min", |c| {
            c.ours.utilization_low = 0.3;
            c.ours.scale_down_delay = min(10);
        }),
        ("scaleDownDelay 15 min, maxScaleDownFactor 1", |c| {
            c.ours.scale_down_delay = min(15);
            c.ours.max_scale_down_factor = 1.0;
        }),
        ("scaleDownDelay 15 min, catchUpDuration 10 min", |c| {
            c.ours.scale_down_delay = min(15);
            c.ours.catch_up_duration = min(10);
        }),
        ("utilizationLow 0.35", |c| c.ours.utilization_low = 0.35),
        ("utilizationLow 0.3, catchUpDuration 10 min", |c| {
            c.ours.utilization_low = 0.3;
            c.ours.catch_up_duration = min(10);
        }),
        ("utilizationLow 0.3, targetUtilization 0.75", |c| {
            c.ours.utilization_low = 0.3;
            c.ours.target_utilization = 0.75;
        }),
        ("utilizationLow 0.3, catchUpDuration 30 min", |c| {
            c.ours.utilization_low = 0.3;
            c.ours.catch_up_duration = min(30);
        }),
        (
            "utilizationLow 0.3, catchUpDuration 10 min, spareTaskManagers 1",
            |c| {
                c.ours.utilization_low = 0.3;
                c.ours.catch_up_duration = min(10);
                c.ours.spare_task_managers = 1;
            },
        ),
        ("utilizationLow 0.25", |c| c.ours.utilization_low = 0.25),
        ("utilizationLow 0.2", |c| c.ours.utilization_low = 0.2),
        ("utilizationLow 0.3, scaleDownDelay 2 min", |c| {
            c.ours.utilization_low = 0.3;
            c.ours.scale_down_delay = min(2);
        }),
        (
            "utilizationLow 0.3, scaleDownDelay 2 min, catchUpDuration 10 min",
            |c| {
                c.ours.utilization_low = 0.3;
                c.ours.scale_down_delay = min(2);
                c.ours.catch_up_duration = min(10);
            },
        ),
        ("signalSettle 15 s", |c| {
            c.ours.signal_settle = Some(Duration::from_secs(15))
        }),
        ("maxScaleDownFactor 0.75", |c| {
            c.ours.max_scale_down_factor = 0.75
        }),
        ("scaleDownDelay 2 min", |c| c.ours.scale_down_delay = min(2)),
        ("scaleDownDelay 2 min, catchUpDuration 10 min", |c| {
            c.ours.scale_down_delay = min(2);
            c.ours.catch_up_duration = min(10);
        }),
        (
            "scaleDownDelay 2 min, catchUpDuration 10 min, maxScaleDownFactor 0.75",
            |c| {
                c.ours.scale_down_delay = min(2);
                c.ours.catch_up_duration = min(10);
                c.ours.max_scale_down_factor = 0.75;
            },
        ),
        ("utilizationLow 0.3, maxScaleDownFactor 0.75", |c| {
            c.ours.utilization_low = 0.3;
            c.ours.max_scale_down_factor = 0.75;
        }),
    ]
}

const TRACES: [BuiltinTrace; 4] = [
    BuiltinTrace::Step,
    BuiltinTrace::Diurnal,
    BuiltinTrace::Noisy,
    BuiltinTrace::Spikes,
];

#[test]
#[ignore = "a table to read: run with --ignored --nocapture"]
fn alternatives_table() {
    let mut rows = vec![
        "| change from the defaults | step | diurnal | noisy | spikes | goal |".to_string(),
        "|---|---|---|---|---|---|".to_string(),
    ];
    let mut limits = vec!["**bound**: fewest s of a peer, TM-h limit".to_string()];
    for (n, (label, change)) in candidates().into_iter().enumerate() {
        let mut cells = vec![label.to_string()];
        let mut missed = Vec::new();
        for trace in TRACES {
            let mut cfg = SimConfig {
                trace: TraceSource::Builtin(trace),
                ..SimConfig::default()
            };
            change(&mut cfg);
            let r = sim::run(&cfg).expect("simulation runs");
            let ours = r.policy("ours").expect("ours runs");
            let b = bounds(&r);
            if n == 0 {
                limits.push(format!("{:.0} s, {:.1}", b.best.1, b.tm_hours));
            }
            let slo = ours.seconds_above_slo > b.best.1;
            let tmh = ours.tm_hours > b.tm_hours;
            cells.push(format!(
                "{:.0} s{}, {:.1}{}",
                ours.seconds_above_slo,
                if slo { " ✗" } else { "" },
                ours.tm_hours,
                if tmh { " ✗" } else { "" }
            ));
            if slo || tmh {
                missed.push(trace.name());
            }
            assert_eq!(misses_in(&r, trace).is_empty(), !(slo || tmh));
        }
        cells.push(if missed.is_empty() {
            "met".to_string()
        } else {
            format!("missed on {}", missed.join(", "))
        });
        if n == 0 {
            limits.push(String::new());
            rows.push(format!("| {} |", limits.join(" | ")));
        }
        rows.push(format!("| {} |", cells.join(" | ")));
        println!("{}", rows.last().map(String::as_str).unwrap_or_default());
    }
    println!("\n{}", rows.join("\n"));
    assert_eq!(rows.len(), candidates().len() + 3);
}

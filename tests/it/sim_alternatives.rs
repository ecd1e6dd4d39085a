//! The measured alternatives of docs/simulator.md ("Findings", the `spikes` goal): each
//! candidate setting of our policy and our ScaledObject's HPA `behavior` against the peers
//! of the same run, on every built-in trace. Ignored (a table to read, not a check; the
//! goal itself is `sim_goal`): `cargo test --test it sim_alternatives:: -- --ignored
//! --nocapture`; the grid of the four settings that move `spikes` most:
//! `cargo test --release --test it sim_alternatives::grid -- --ignored --nocapture`.

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
            let r = run_with(trace, change);
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

/// The four settings that move `spikes` most, on a grid (5 × 3 × 3 × 2 = 90 policies, each
/// on the four traces): every policy that meets the goal on all four, and the nearest
/// misses by the largest ratio to a bound. Ignored (about 3 min in a release build):
/// `cargo test --release --test it sim_alternatives::grid -- --ignored --nocapture`.
#[test]
#[ignore = "a grid to read: run with --ignored --nocapture"]
fn grid() {
    let mut rows = Vec::new();
    for delay in [60, 90, 120, 180, 300] {
        for factor in [0.5, 0.6, 0.75] {
            for catch_up in [300, 450, 600] {
                for low in [0.4, 0.35] {
                    let label = format!(
                        "scaleDownDelay {delay} s, maxScaleDownFactor {factor}, \
                         catchUpDuration {catch_up} s, utilizationLow {low}"
                    );
                    let (met, worst, cells) = on_every_trace(|c| {
                        c.ours.scale_down_delay = Duration::from_secs(delay);
                        c.ours.max_scale_down_factor = factor;
                        c.ours.catch_up_duration = Duration::from_secs(catch_up);
                        c.ours.utilization_low = low;
                    });
                    println!("{label}: met on {met} of 4, worst {worst:.3} | {cells}");
                    rows.push((worst, met, label, cells));
                }
            }
        }
    }
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    println!("\nnearest to the bounds (largest ratio of ours to a bound, over the four traces):");
    for (worst, met, label, cells) in rows.iter().take(8) {
        println!("{worst:.3} (met on {met} of 4) {label} | {cells}");
    }
    assert_eq!(rows.len(), 90);
}

/// Runs `change` on the four traces: on how many the goal is met, the largest ratio of
/// ours to a bound (seconds above the SLO, TaskManager-hours), and a cell per trace.
fn on_every_trace(change: impl Fn(&mut SimConfig)) -> (usize, f64, String) {
    let (mut met, mut worst, mut cells) = (0, 0.0_f64, Vec::new());
    for trace in TRACES {
        let r = run_with(trace, &change);
        let ours = r.policy("ours").expect("ours runs");
        let b = bounds(&r);
        let seconds = match (ours.seconds_above_slo, b.best.1) {
            (s, best) if best > 0.0 => s / best,
            (s, _) if s > 0.0 => f64::INFINITY,
            _ => 0.0,
        };
        let hours = ours.tm_hours / b.tm_hours;
        if misses_in(&r, trace).is_empty() {
            met += 1;
        }
        worst = worst.max(seconds).max(hours);
        cells.push(format!(
            "{} {:.0}/{:.0} s, {:.1}/{:.1}",
            trace.name(),
            ours.seconds_above_slo,
            b.best.1,
            ours.tm_hours,
            b.tm_hours
        ));
    }
    (met, worst, cells.join("; "))
}

/// The simulation of `trace` with `change` from the defaults.
fn run_with(trace: BuiltinTrace, change: impl Fn(&mut SimConfig)) -> sim::Report {
    let mut cfg = SimConfig {
        trace: TraceSource::Builtin(trace),
        ..SimConfig::default()
    };
    change(&mut cfg);
    sim::run(&cfg).expect("simulation runs")
}

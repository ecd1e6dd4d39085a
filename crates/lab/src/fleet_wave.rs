//! The rescaling wave of the fleet benchmark (issue 16): after the steady-state window,
//! the load of 10 % of the jobs is raised at once (the first ten of every hundred: ten
//! on each JobManager of 100) ([`WAVE_RATE`] records/s, from the
//! fleet's 400) so that each needs a scale-up, and the run measures:
//!
//! * whether every raised job reaches, through the scaler's resource-requirements PUTs,
//!   a parallelism that keeps up with the new rate (each vertex's capacity in the
//!   fleet's model, `p × 1000 / cost_ms`, at least the rate) with its PUT applied (no
//!   rescale pending, the requirements' upper bounds equal to what runs) — none lost;
//! * the PUTs the raised jobs received (one per job when the scaler rescales once per
//!   load change) and those the other 90 % received (none: their load did not change);
//! * the time from the load change until all raised jobs run at that parallelism;
//! * that the other jobs were still evaluated on time: the largest
//!   `flink_keda_scaler_evaluation_lag_seconds` sampled every second during the wave;
//! * Flink REST calls per tick per JobManager during the wave, and the scaler's RSS.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use fks_components::{
    fleet::{sim::VERTEX_SPECS, SyntheticFleet},
    scaler_proc::ScalerProcess,
};

use super::{
    fleet::exposition_sum,
    fleet_bench::{per_tick_per_jm, rest_cell},
};

/// The policy's target utilisation (the product default; the benchmark sets none).
const TARGET_UTILIZATION: f64 = 0.7;

/// Records per second offered to a raised job (5 × the fleet's default 400): the
/// keyed window vertex then needs 4 subtasks at 70 % utilisation.
pub const WAVE_RATE: f64 = 2_000.0;

/// What the wave measured.
#[derive(Debug, Clone)]
pub struct WaveRow {
    /// Jobs of the fleet.
    pub jobs: usize,
    /// Jobs whose load was raised.
    pub raised: usize,
    /// Raised jobs running at a parallelism that keeps up, their PUT applied.
    pub reached: usize,
    /// Raised jobs whose every vertex runs at or below the target utilisation (what the
    /// decision aims at, once its signals saw the whole step).
    pub at_target: usize,
    /// Seconds from the load change until all of them were (`None`: not within the limit).
    pub all_reached_s: Option<f64>,
    /// PUTs the raised jobs received.
    pub puts: u64,
    /// Most PUTs one raised job received.
    pub max_puts_per_job: u64,
    /// PUTs the other jobs received.
    pub stray_puts: u64,
    /// Largest evaluation lag during the wave.
    pub max_lag_s: f64,
    /// Flink REST calls per tick per JobManager during the wave, by endpoint.
    pub rest_per_tick_per_jm: BTreeMap<String, f64>,
    /// Scaler RSS at the end of the wave.
    pub rss: u64,
}

/// True when job `j` runs at a parallelism whose capacity covers its rate, with no
/// rescale pending and the requirements it was last given applied.
fn keeps_up(fleet: &SyntheticFleet, j: usize) -> bool {
    runs_at(fleet, j, 1.0)
}

/// True when every vertex of job `j` runs at or below `utilization` of its capacity,
/// with no rescale pending and its last requirements applied.
fn runs_at(fleet: &SyntheticFleet, j: usize, utilization: f64) -> bool {
    let sim = fleet.snapshot(j);
    sim.pending.is_none()
        && sim
            .vertices
            .iter()
            .zip(VERTEX_SPECS)
            .all(|(v, (_, cost_ms))| {
                f64::from(v.parallelism) * 1000.0 / cost_ms * utilization >= sim.rate - 1e-6
                    && v.upper_bound == v.parallelism
            })
}

/// The jobs of the wave: the first ten of every hundred (the fleet puts job `j` on
/// JobManager `j % JobManagers`, so they spread over all JobManagers).
fn is_raised(j: usize) -> bool {
    j % 100 < 10
}

/// Raises the load of 10 % of the jobs of `fleet` and follows the scaler until all of
/// them keep up or `limit` passes.
pub async fn run(
    fleet: &SyntheticFleet,
    scaler: &ScalerProcess,
    interval: Duration,
    limit: Duration,
) -> WaveRow {
    let jobs = fleet.len();
    let raised: Vec<usize> = (0..jobs).filter(|&j| is_raised(j)).collect();
    let puts_before: Vec<u64> = (0..jobs).map(|j| fleet.puts(j)).collect();
    let rest_before = fleet.stats();
    let started = Instant::now();
    for &j in &raised {
        fleet.set_rate(j, WAVE_RATE);
    }
    let mut pending = raised.clone();
    let mut all_reached_s = None;
    let mut max_lag_s: f64 = 0.0;
    while started.elapsed() < limit {
        if let Ok(text) = scaler.metrics().await {
            max_lag_s = max_lag_s.max(exposition_sum(
                &text,
                "flink_keda_scaler_evaluation_lag_seconds",
                "",
            ));
        }
        pending.retain(|&j| !keeps_up(fleet, j));
        if pending.is_empty() {
            all_reached_s = Some(started.elapsed().as_secs_f64());
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // One more interval: a second PUT to a job that already keeps up would show here.
    tokio::time::sleep(interval).await;
    let ticks = started.elapsed().as_secs_f64() / interval.as_secs_f64();
    let puts_of = |j: usize| fleet.puts(j) - puts_before[j];
    WaveRow {
        jobs,
        raised: raised.len(),
        reached: raised.iter().filter(|&&j| keeps_up(fleet, j)).count(),
        at_target: raised
            .iter()
            .filter(|&&j| runs_at(fleet, j, TARGET_UTILIZATION))
            .count(),
        all_reached_s,
        puts: raised.iter().map(|&j| puts_of(j)).sum(),
        max_puts_per_job: raised.iter().map(|&j| puts_of(j)).max().unwrap_or(0),
        stray_puts: (0..jobs).filter(|&j| !is_raised(j)).map(puts_of).sum(),
        max_lag_s,
        rest_per_tick_per_jm: per_tick_per_jm(
            &rest_before,
            &fleet.stats(),
            ticks,
            fleet.job_managers(),
        ),
        rss: scaler.rss_bytes().unwrap_or(0),
    }
}

/// The wave's table (part of the fleet section of docs/benchmarks.md).
pub fn markdown(rows: &[WaveRow]) -> String {
    let mut out = format!(
        "\n**Rescaling wave**: after the steady-state window, the load of 10 % of the jobs (ten per JobManager) is \
         raised at once from 400 to {WAVE_RATE:.0} records/s (each needs a scale-up; \
         the scaler runs without dryRun). A job has reached its target when every vertex \
         keeps up with the new rate (`p × 1000 / cost_ms ≥ rate` in the fleet's model) and \
         its last PUT is applied; at target when every vertex also runs at ≤ 70 % (the default \
         target utilisation). Lag and REST calls are over the wave, until one interval \
         after the last job reached.\n\n\
         | ScaledObjects | raised | reached | at target | all reached after | PUTs (raised jobs) | most PUTs per job | PUTs to the others | max evaluation lag | Flink REST calls per tick per JobManager | RSS |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n"
    );
    for r in rows {
        let after = r.all_reached_s.map_or_else(
            || "not within the limit".to_string(),
            |s| format!("{s:.0} s"),
        );
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.1} s | {} | {:.1} MiB |\n",
            r.jobs,
            r.raised,
            r.reached,
            r.at_target,
            after,
            r.puts,
            r.max_puts_per_job,
            r.stray_puts,
            r.max_lag_s,
            rest_cell(&r.rest_per_tick_per_jm),
            r.rss as f64 / 1024.0 / 1024.0,
        ));
    }
    out
}

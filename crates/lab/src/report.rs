//! Writes a run's artefacts — `timeline.csv`, `timeline.svg`, `timeline.txt` — and the
//! Markdown of `docs/benchmarks.md`, stating the machine and the versions next to the
//! figures.

use std::{fmt::Write as _, path::Path, process::Command};

use fks_components::flink_cluster::TaskManagerJvm;

use super::{
    error::{LabError, Result},
    fleet::FleetFigures,
    measure::Measurements,
    plot,
    scenario::{Lab, Outcome, Profile, Workload},
    visibility::VISIBLE_STEP_S,
};

/// The machine and versions, one Markdown bullet each.
pub fn environment(flink_version: &str) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    let first_line = |cmd: &str, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .output()
            .ok()
            .map(|o| {
                let s = if o.stdout.is_empty() {
                    o.stderr
                } else {
                    o.stdout
                };
                String::from_utf8_lossy(&s)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_string()
            })
            .unwrap_or_else(|| "not found".into())
    };
    format!(
        "- Machine: {cores} cores ({cpu}), {mem_gib:.0} GiB RAM, Linux {}\n\
         - Apache Flink {flink_version} (standalone session cluster, adaptive scheduler), {}\n\
         - {}\n\
         - flink-keda-scaler {} (release build)\n",
        first_line("uname", &["-r"]),
        first_line("java", &["-version"]),
        first_line(
            &super::prometheus_proc::PrometheusProcess::binary()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "prometheus".into()),
            &["--version"]
        ),
        env!("CARGO_PKG_VERSION"),
    )
}

/// The profile's settings as Markdown bullets.
pub fn settings(p: &Profile) -> String {
    format!(
        "- Scenario `{}`: {} records/s → {} records/s ({}×) → {} records/s; {}; {} partitions, \
         {} key groups\n\
         - Flink: {} slot(s) per TaskManager, {} TaskManager(s) to start (job submitted at \
         parallelism {}), {}–{} TaskManagers, buffer debloating on and 4 KiB network buffers \
         (`lab::scenario::LATENCY_CONFIG`), adaptive-scheduler cooldown 2 s, submission \
         stabilization 1 s, executing stabilization 20 s (the README's recommended values; a \
         rescale whose slots all arrive goes at once) (`fks_components::flink_conf`); \
         TaskManager JVMs {}\n\
         - KEDA/HPA driver: pollingInterval {:?}, HPA sync {:?}, AverageValue target 1, \
         tolerance 10 %, scale-down stabilization {:?}, scale-up up to maxReplicaCount pods per sync \
         (the example ScaledObjects' `advanced.horizontalPodAutoscalerConfig.behavior`); pods \
         start in the background (the next syncs do not wait for them) and a scale-down removes \
         a pod whose TaskManager has not registered first, as a ReplicaSet removes a pod not \
         ready before a ready one\n\
         - Scaler: evaluation every {:?}, target utilization {} (band {}–0.9), catch-up {:?}, \
         stabilization 15 s, scale-up delay {} s, scale-down delay 20 s, max scale-down factor 0.75, cooldown 20 s, \
         spareTaskManagers {}; \
         the product's default queries (Flink's counters over a window derived from the learned \
         1 s scrape interval: 10 s, the sources' arrival over 5 s; Flink's own per-second gauges \
         are 60 s moving averages)\n",
        p.scenario(),
        p.low_rate,
        p.high_rate(),
        p.factor,
        p.low_rate,
        p.work.describe(),
        p.partitions,
        p.max_parallelism,
        p.slots,
        p.min_task_managers.max(1),
        p.initial_parallelism(),
        p.min_task_managers,
        p.max_task_managers,
        jvm_settings(p.work.task_manager_jvm()),
        p.polling_interval,
        p.hpa_sync_period,
        p.hpa_stabilization,
        p.evaluation_interval,
        p.target_utilization,
        p.utilization_low,
        p.catch_up,
        p.scale_up_delay().as_secs(),
        p.spare,
    )
}

/// Writes `timeline.csv`, `timeline.svg` and `timeline.txt` into `dir`.
pub fn write_artefacts(lab: &Lab, outcome: &Outcome, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| LabError::io(format!("create {}", dir.display()), e))?;
    let write = |name: &str, text: &str| {
        std::fs::write(dir.join(name), text)
            .map_err(|e| LabError::io(format!("write {}", dir.join(name).display()), e))
    };
    write("timeline.csv", &outcome.timeline.to_csv())?;
    write("timeline.txt", &outcome.timeline.table(5.0))?;
    plot::svg(
        &outcome.timeline,
        &dir.join("timeline.svg"),
        &format!(
            "flink-keda-scaler: {}× load step on Flink {} ({} workload, {} profile)",
            lab.profile.factor,
            lab.flink_version,
            lab.profile.scenario(),
            lab.profile.name
        ),
    )
}

fn mib(b: u64) -> f64 {
    b as f64 / 1024.0 / 1024.0
}

/// The whole `docs/benchmarks.md`.
pub fn benchmarks_markdown(
    lab: &Lab,
    outcome: &Outcome,
    fleet: &FleetFigures,
    command: &str,
    artefacts: &str,
) -> String {
    let mut out = header(lab, command, artefacts);
    out.push_str(&outcome.measurements.markdown());
    out.push_str(&reading(&lab.profile));
    out.push_str(&checks_and_rescales(outcome));
    out.push_str(&at_scale(fleet));
    out.push_str(&get_metrics_levels(fleet));
    out.push_str(
        "\nThe server-only figure (one tokio worker, no Flink or Prometheus on the machine) is \
         `cargo bench --bench grpc_get_metrics`; the decision core alone is `cargo bench --bench decide`.\n",
    );
    out
}

/// The title, how the run was made, the machine, the scenario's settings and its plot.
fn header(lab: &Lab, command: &str, artefacts: &str) -> String {
    format!(
        "# Benchmarks\n\n\
         Written by `{command}` on {date}. Every figure below comes from that one run on real \
         components: a Flink session cluster (JobManager and TaskManagers as local processes), \
         a real Prometheus scraping Flink's PrometheusReporter every second, the release build \
         of the scaler, and a driver playing KEDA + the HPA over gRPC (`crates/lab/src/driver.rs`).\n\n\
         ## Machine and versions\n\n{env}\n\
         ## Scenario: steady → 3× load step → steady → back down\n\n{settings}\n\
         ![timeline]({artefacts}/timeline.svg)\n\n\
         Timeline data: [`timeline.csv`]({artefacts}/timeline.csv) (time, input rate, lag, per-vertex \
         parallelism, TaskManagers, events), table: [`timeline.txt`]({artefacts}/timeline.txt).\n\n",
        date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        env = environment(&lab.flink_version),
        settings = settings(&lab.profile),
    )
}

/// The run's checks ([`Outcome::violations`]) and the table of the rescales seen.
fn checks_and_rescales(outcome: &Outcome) -> String {
    let mut out = String::new();
    let v = outcome.violations();
    let _ = write!(
        out,
        "\nChecks over the whole run (same JobID, no failover, never two rescales in flight, never \
         fewer TaskManagers reported than Flink's running slots need, no busy TaskManager stopped): \
         {}\n\nRescales seen in `/debug/jobs`:\n\n| direction | started (s) | finished (s) | phases |\n|---|---|---|---|\n",
        if v.is_empty() {
            "**all held**".to_string()
        } else {
            format!("**{} violated**: {}", v.len(), v.join("; "))
        }
    );
    for r in &outcome.rescales {
        let _ = writeln!(
            out,
            "| {} | {:.1} | {} | {} |",
            r.direction,
            r.started_at,
            r.finished_at.map_or("—".into(), |f| format!("{f:.1}")),
            r.phases.join(" → ")
        );
    }
    out
}

/// P5 and P7: queries per tick, memory with the fleet, its warm-up.
fn at_scale(fleet: &FleetFigures) -> String {
    format!(
        "\n## At scale\n\n\
         | Figure | Value |\n|---|---|\n\
         | P5: Prometheus queries per evaluation tick (one job; Prometheus' own request counter \
         ÷ the scaler's decisions over 30 s) | {:.1} ({:.0} queries / {:.0} ticks) |\n\
         | P7: resident memory with {n} ScaledObjects configured and evaluated (each a worker \
         on the real job, dryRun, evaluation every {:?}) | {:.1} MiB (empty process {:.1} MiB; \
         {:.1} KiB per job; {:.1} MiB after the GetMetrics load) |\n\
         | Time until all {n} ScaledObjects answered GetMetrics | {:.1} s |\n",
        fleet.queries_per_tick,
        fleet.queries,
        fleet.ticks,
        fleet.evaluation_interval,
        mib(fleet.rss_loaded),
        mib(fleet.rss_empty),
        (fleet.rss_loaded.saturating_sub(fleet.rss_empty)) as f64 / 1024.0 / n_or_1(fleet),
        mib(fleet.rss_after_load),
        fleet.warm_up_s,
        n = fleet.scaled_objects,
    )
}

/// P4: the GetMetrics load levels against the fleet.
fn get_metrics_levels(fleet: &FleetFigures) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "\nP4: GetMetrics against that scaler process ({} ScaledObjects round-robin, 4 HTTP/2 \
         connections, closed loop, the client on the same 2-core machine as Flink, Prometheus and \
         the scaler's 1,000 workers; an evaluation that fails, e.g. a Prometheus timeout under \
         this load, answers `UNAVAILABLE` and is counted as an error):\n\n\
         | in flight | requests/s | p50 | p99 | max | errors |\n|---|---|---|---|---|---|\n",
        fleet.scaled_objects
    );
    for l in &fleet.get_metrics {
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.0} µs | {:.0} µs | {:.1} ms | {} of {}{} |",
            l.in_flight,
            l.rps,
            l.p50.as_secs_f64() * 1e6,
            l.p99.as_secs_f64() * 1e6,
            l.max.as_secs_f64() * 1e3,
            l.errors,
            l.requests,
            l.first_error
                .as_ref()
                .map(|e| format!(" (first: {})", e.chars().take(120).collect::<String>()))
                .unwrap_or_default()
        );
    }
    out
}

/// What the scenario figures are made of, for the reader of `docs/benchmarks.md`.
pub fn reading(p: &Profile) -> String {
    let capacity = match p.work {
        Workload::Io { .. } => {
            "The lag recovers at the new capacity minus the arrival rate: the keyed operator \
             waits instead of computing, so each added subtask adds its full capacity whatever \
             this machine's cores."
        }
        Workload::Cpu { .. } => {
            "The lag recovers as fast as the spare CPU allows: the scaled-up job shares the same \
             two cores, so the backlog drains at the difference between what they can process \
             and the arrival rate (this scenario measures the machine as much as the scaler)."
        }
    };
    format!(
        "\nReading the figures: P1 runs from the first instant Prometheus showed the step \
         (a range query at {VISIBLE_STEP_S} s resolution after the run, not the 1 s sample \
         that saw it) to Flink's own timestamp of the last subtask switching to RUNNING at \
         the new parallelism (`/jobs/:id/vertices/:vid/subtasktimes`: the job details a \
         sample reads come from Flink's REST cache, up to `web.refresh-interval`, 3 s, old). \
         It is the sum of the parts of its breakdown, along its \
         critical path. The scaler's part is the detection (the step crossing the utilization \
         band as the sources' arrival rate shows it: 5 s of counters at a 1 s scrape) until \
         its report to KEDA asks for the TaskManagers the step needs (the report follows each \
         evaluation's recommendation while the scale-up settles, so the pods start then) when \
         the rescale waits for new TaskManagers; when it runs on TaskManagers already \
         registered, the detection plus the settling (until two evaluations in a row are \
         calm, at most the arrival window after the first evaluation that saw the step) plus \
         `scaleUpDelay` ({} s) plus one evaluation ({:?}); KEDA's poll and the HPA's part is \
         the wait for its next sync (up to {:?}); the TaskManager part is starting the JVMs \
         until they register (on this 2-core machine, next to the running job; the Flink line \
         above says how their JVMs start); Flink's part \
         is the in-place restart. {capacity} \
         P2 counts Flink's restarts: every change of the vertices' parallelism between \
         samples of the job running. A `none` rescale in the table below changes parallelism \
         without changing TaskManagers (e.g. a source sized up to catch up its backlog, then \
         back): a restart, counted. A scale-up raised while it still waited for its \
         TaskManagers is one rescale and, when its last pods join the restart, one restart.\n",
        p.scale_up_delay().as_secs(),
        p.evaluation_interval,
        p.hpa_sync_period,
    )
}

/// How the lab's TaskManager JVMs start, in words.
fn jvm_settings(jvm: TaskManagerJvm) -> String {
    let jvm_flags = match (jvm.class_data_sharing, jvm.c1_only) {
        (true, true) => "from an AppCDS archive of the classes a TaskManager loaded registering and running a job, C1 only",
        (true, false) => "from an AppCDS archive of the classes a TaskManager loaded registering and running a job",
        (false, true) => "C1 only",
        (false, false) => "with the JVM's defaults",
    };
    let flags = format!(
        "{jvm_flags} (`fks_components::flink_jvm`: a pod's JVM start on the 2 shared cores)"
    );
    if !jvm.replay_launcher {
        return flags;
    }
    format!(
        "{flags}; the helper JVMs of Flink's launcher (`taskmanager.sh`: configuration and \
         memory settings) run once per cluster and each later pod replays them after the \
         CPU time they took, as on a core of its own (`fks_components::flink_launcher`)"
    )
}

fn n_or_1(f: &FleetFigures) -> f64 {
    (f.scaled_objects as f64).max(1.0)
}

/// One run of [`spare_section`]: its profile and figures.
pub struct SpareRow<'a> {
    /// The run's profile (its `spare`).
    pub profile: &'a Profile,
    /// Its figures.
    pub measurements: &'a super::measure::Measurements,
}

/// The warm-spare trade-off: the same scenario with no spare and with a spare that
/// covers the step, each with P1 and its breakdown, the lag, the rescales and what the
/// TaskManagers cost against a fixed peak and an oracle that knows the schedule.
pub fn spare_section(rows: &[SpareRow<'_>], artefacts: &str) -> String {
    let mut out = String::from(
        "\n## Warm spare TaskManagers: latency against cost\n\n\
         The same scenario with `spareTaskManagers` 0 and with a spare that covers the step (its \
         extra TaskManagers; `maxTaskManagers` raised so the spare is whole again at the peak). \
         P1 breakdown along its critical path: scaler (step visible → its report to KEDA asks \
         for the TaskManagers the new parallelism needs; → the rescale started when it ran on \
         TaskManagers already registered) / KEDA poll + HPA sync (→ the driver's HPA raised \
         the replicas) / TaskManager start (→ the last new TaskManager registered; — / — when \
         the rescale ran on TaskManagers already registered) / Flink (→ RUNNING at the new \
         parallelism).\n\n\
         | spare | P1 | breakdown | first in-place rescale: visible → RUNNING at | TMs registered before the step → by then | lag back | Flink restarts up / down (the scaler's rescales) | idle TMs after the step | TaskManager-seconds | vs. fixed peak | vs. oracle |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let m = r.measurements;
        let breakdown = m.up.breakdown().map_or("—".to_string(), |b| b.cells());
        let pct = |base: f64| {
            if base > 0.0 {
                format!(
                    "{:.0} ({:+.0} %)",
                    base,
                    100.0 * (m.tm_seconds / base - 1.0)
                )
            } else {
                "—".to_string()
            }
        };
        let _ =
            writeln!(
            out,
            "| {} | {} | {breakdown} | {} at {} | {} → {} | {} | {} / {} ({} / {}) | {} | {:.0} | {} | {} |",
            r.profile.spare,
            opt_secs(m.up.reaction_s),
            opt_secs(m.up.first_reaction_s),
            m.up.first_parallelism.map_or("—".to_string(), |n| n.to_string()),
            m.up.registered_before,
            m.up.registered_by_first_running.map_or("—".to_string(), |n| n.to_string()),
            opt_secs(m.recovery_s),
            m.up.restarts,
            m.down.restarts,
            m.up.rescales,
            m.down.rescales,
            m.up.idle_at_end.map_or("—".to_string(), |n| n.to_string()),
            m.tm_seconds,
            pct(m.fixed_peak_tm_seconds),
            pct(m.oracle_tm_seconds),
        );
    }
    let _ = writeln!(
        out,
        "\nThe spare run's timeline: [`spare/timeline.svg`]({artefacts}/spare/timeline.svg), \
         [`spare/timeline.txt`]({artefacts}/spare/timeline.txt). The oracle runs the fewest \
         TaskManagers the scheduled rate needs at each instant (every subtask at its capacity, \
         at least `minTaskManagers`); the fixed peak runs the run's peak all the time."
    );
    out
}

/// The main scenario run again on fresh labs (`fks-lab bench --repeats`): one row per
/// run (the first is the run above), and how many met each goal.
pub fn repeats_section(runs: &[&Measurements], artefacts: &str) -> String {
    let mut out = format!(
        "\n## The main scenario, {} runs\n\n\
         The same scenario (no spare) on a fresh lab each time, one run after the other; run 1 \
         is the run above. What varies is outside the scaler's control or at its estimate's \
         edge: where the HPA's 15 s sync falls after the report asks for the pods, how fast \
         three JVMs start on the two shared cores, and whether the first settled estimate of a \
         step that needs 5.14 TaskManagers says 5 or 6 (a scale-up still waiting for its pods \
         is raised, `core::rescale::raise`). Timelines: `{artefacts}/repeat-<run>/`.\n\n\
         | run | P1 | breakdown | parallelism reached (first in-place rescale at) | raised | lag back | Flink restarts up / down (the scaler's rescales) | TaskManager-seconds |\n\
         |---|---|---|---|---|---|---|---|\n",
        runs.len()
    );
    for (i, m) in runs.iter().enumerate() {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} ({}) | {} | {} | {} / {} ({} / {}) | {:.0} |",
            i + 1,
            opt_secs(m.up.reaction_s),
            m.up.breakdown().map_or("—".to_string(), |b| b.cells()),
            m.up.to_parallelism,
            m.up.first_parallelism
                .map_or("—".to_string(), |p| p.to_string()),
            m.up.raises,
            opt_secs(m.recovery_s),
            m.up.restarts,
            m.down.restarts,
            m.up.rescales,
            m.down.rescales,
            m.tm_seconds,
        );
    }
    let met = |ok: &dyn Fn(&Measurements) -> bool| runs.iter().filter(|m| ok(m)).count();
    let _ = writeln!(
        out,
        "\nGoals met: P1 ≤ 30 s in {} of {n}, lag back ≤ 60 s in {} of {n}, one restart up and \
         one down in {} of {n}.",
        met(&|m| m.up.reaction_s.is_some_and(|s| s <= 30.0)),
        met(&|m| m.recovery_s.is_some_and(|s| s <= 60.0)),
        met(&Measurements::p2_met),
        n = runs.len()
    );
    out
}

/// The CPU-bound scenario's figures (the second, labelled scenario).
pub fn cpu_section(lab: &Lab, outcome: &Outcome, artefacts: &str) -> String {
    format!(
        "\n## Second scenario: CPU-bound ({} profile)\n\n{}\n{}\n\
         Timeline: [`cpu/timeline.svg`]({artefacts}/cpu/timeline.svg), \
         [`cpu/timeline.txt`]({artefacts}/cpu/timeline.txt).{}\n",
        lab.profile.name,
        settings(&lab.profile),
        outcome.measurements.markdown(),
        checks_and_rescales(outcome),
    )
}

fn opt_secs(v: Option<f64>) -> String {
    v.map_or("not reached".to_string(), |s| format!("{s:.0} s"))
}

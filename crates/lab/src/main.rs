//! `fks-lab`: the whole loop on real components on this machine.
//!
//! * `fks-lab demo` — installs what is missing (cached), starts Prometheus, a Flink
//!   session cluster with the load job, the scaler and the KEDA/HPA driver, plays
//!   steady → 3× → steady, shows a live progress line, then prints the timeline table and
//!   the figures and writes `timeline.csv` and `timeline.svg`.
//! * `fks-lab bench` — the same run, then P5, P7 and P4 at 1,000 ScaledObjects, the same
//!   run with a warm spare that covers the step (one table against the first), the
//!   CPU-bound scenario on the short profile, the main scenario again (`--repeats`: the
//!   spread over runs), and the synthetic-fleet figures at 1, 100 and 1,000, written to
//!   `docs/benchmarks.md` (artefacts next to it).
//! * `fks-lab fleet` — the synthetic-fleet figures alone (no Flink), printed.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};
use fks_lab::{
    fleet, fleet_bench, report,
    scenario::{Lab, LabOptions, Profile},
};

#[derive(Debug, Parser)]
#[command(
    name = "fks-lab",
    version,
    about = "The autoscaling loop on real Flink, Prometheus and a KEDA/HPA driver"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ProfileArg {
    /// KEDA/HPA timings as in a cluster (HPA sync 15 s), ~7 minutes.
    Full,
    /// The CI profile (2 s periods), ~3 minutes.
    Short,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ScenarioArg {
    /// I/O-bound keyed operator: capacity = parallelism × 500 records/s, 2 → 6 TaskManagers.
    Io,
    /// CPU-bound keyed operator: capacity = this machine's cores, 1 → 4 TaskManagers.
    Cpu,
}

#[derive(Debug, clap::Args)]
struct Common {
    /// Scenario profile.
    #[arg(long, value_enum, default_value = "full")]
    profile: ProfileArg,
    /// Workload of the keyed operator.
    #[arg(long, value_enum, default_value = "io")]
    scenario: ScenarioArg,
    /// Keep a warm spare that covers the step (`spareTaskManagers` = its extra
    /// TaskManagers). `bench` runs both anyway.
    #[arg(long)]
    spare: bool,
    /// Apache Flink version (1.18+).
    #[arg(long, env = "FKS_FLINK_VERSION", default_value = "2.3.0")]
    flink_version: String,
    /// The scaler binary (default: `flink-keda-scaler` next to this binary).
    #[arg(long)]
    scaler_bin: Option<PathBuf>,
    /// Work dir for Flink, Prometheus and scaler files (default: a new temp dir).
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the scenario and write the timeline (table, CSV, SVG plot).
    Demo {
        #[command(flatten)]
        common: Common,
        /// Where timeline.csv / timeline.svg / timeline.txt go.
        #[arg(long, default_value = "target/fks-lab")]
        out: PathBuf,
    },
    /// Run the scenario plus the at-scale figures and write docs/benchmarks.md.
    Bench {
        #[command(flatten)]
        common: Common,
        /// The Markdown file to write (artefacts go to `<dir>/benchmarks/`).
        #[arg(long, default_value = "docs/benchmarks.md")]
        out: PathBuf,
        /// ScaledObjects for P4 and P7.
        #[arg(long, default_value_t = 1000)]
        scaled_objects: usize,
        /// Seconds per GetMetrics load level.
        #[arg(long, default_value_t = 10)]
        level_secs: u64,
        /// Synthetic-fleet sizes (ScaledObjects).
        #[arg(long, default_value = "1,100,1000")]
        fleet_sizes: String,
        /// Runs of the main scenario in all (the first is the one every table reports;
        /// the others add a row each to a table of the spread).
        #[arg(long, default_value_t = 1)]
        repeats: usize,
    },
    /// The synthetic-fleet benchmark alone (real Prometheus, the built scaler, no Flink).
    Fleet {
        /// The scaler binary (default: `flink-keda-scaler` next to this binary).
        #[arg(long)]
        scaler_bin: Option<PathBuf>,
        /// Fleet sizes (ScaledObjects).
        #[arg(long, default_value = "1,100,1000")]
        sizes: String,
        /// Evaluation and scrape interval, seconds.
        #[arg(long, default_value_t = 15)]
        interval_secs: u64,
        /// Skip the rescaling wave (steady state only: quicker memory and lag runs).
        #[arg(long)]
        no_wave: bool,
    },
}

/// The scaler binary: `--scaler-bin` or `flink-keda-scaler` next to this binary.
fn scaler_binary(given: Option<&PathBuf>) -> anyhow::Result<PathBuf> {
    let path = match given {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("the binary's directory")?
            .join("flink-keda-scaler"),
    };
    if !path.is_file() {
        bail!(
            "scaler binary {} not found (cargo build --release --bin flink-keda-scaler, or --scaler-bin)",
            path.display()
        );
    }
    Ok(path)
}

fn options(c: &Common) -> anyhow::Result<(LabOptions, Profile, Option<WorkDir>)> {
    let root = std::env::current_dir()?;
    let flink_script = root.join("scripts/flink.sh");
    if !flink_script.is_file() {
        bail!(
            "run fks-lab from the repository root (no scripts/flink.sh in {})",
            root.display()
        );
    }
    let scaler_bin = scaler_binary(c.scaler_bin.as_ref())?;
    let (work_dir, guard) = match &c.work_dir {
        Some(d) => (d.clone(), None),
        None => {
            let d = tempfile::Builder::new().prefix("fks-lab-").tempdir()?;
            (d.path().to_path_buf(), Some(WorkDir(Some(d))))
        }
    };
    let profile = match c.profile {
        ProfileArg::Full => Profile::full(),
        ProfileArg::Short => Profile::short(),
    };
    let profile = match c.scenario {
        ScenarioArg::Io => profile,
        ScenarioArg::Cpu => profile.cpu(),
    };
    let profile = if c.spare {
        profile.with_spare()
    } else {
        profile
    };
    Ok((
        LabOptions {
            flink_version: c.flink_version.clone(),
            flink_script,
            scaler_bin,
            work_dir,
            progress: true,
        },
        profile,
        guard,
    ))
}

/// The bench's other scenario runs, each on a fresh lab: the same profile with a warm
/// spare that covers the step (compared with the main run in one table), then the
/// CPU-bound scenario on the short profile (its own table; the short profile keeps the
/// bench's time in bounds: ~3 minutes instead of ~7).
async fn extra_scenarios(
    opts: &LabOptions,
    main: &(Profile, fks_lab::measure::Measurements),
    dir: &std::path::Path,
) -> anyhow::Result<String> {
    eprintln!("[bench] the spare run");
    let (spare_lab, spare) = run_in(opts, main.0.clone().with_spare(), "spare", dir).await?;
    let mut md = report::spare_section(
        &[
            report::SpareRow {
                profile: &main.0,
                measurements: &main.1,
            },
            report::SpareRow {
                profile: &spare_lab.profile,
                measurements: &spare.measurements,
            },
        ],
        "benchmarks",
    );
    drop(spare_lab);
    eprintln!("[bench] the cpu run");
    let (cpu_lab, cpu) = run_in(opts, Profile::short().cpu(), "cpu", dir).await?;
    md.push_str(&report::cpu_section(&cpu_lab, &cpu, "benchmarks"));
    Ok(md)
}

/// One scenario run on a fresh lab under `<work dir>/<sub>`, its timeline written to
/// `<dir>/<sub>/`; the lab is returned running (its drop stops it).
async fn run_in(
    opts: &LabOptions,
    profile: Profile,
    sub: &str,
    dir: &std::path::Path,
) -> anyhow::Result<(Lab, fks_lab::scenario::Outcome)> {
    let opts = LabOptions {
        work_dir: opts.work_dir.join(sub),
        ..opts.clone()
    };
    let lab = Lab::start(&opts, profile).await?;
    let outcome = lab.run().await?;
    report::write_artefacts(&lab, &outcome, &dir.join(sub))?;
    Ok((lab, outcome))
}

/// The main scenario `repeats − 1` more times, each on a fresh lab (timelines under
/// `<dir>/repeat-<run>/`), as a table of the spread with the main run first.
async fn repeat_main(
    opts: &LabOptions,
    main: &(Profile, fks_lab::measure::Measurements),
    repeats: usize,
    dir: &std::path::Path,
) -> anyhow::Result<String> {
    let mut runs = vec![main.1.clone()];
    for run in 2..=repeats {
        eprintln!("[bench] the main scenario again: run {run} of {repeats}");
        let sub = format!("repeat-{run}");
        let (_lab, outcome) = run_in(opts, main.0.clone(), &sub, dir).await?;
        runs.push(outcome.measurements);
    }
    let refs: Vec<&fks_lab::measure::Measurements> = runs.iter().collect();
    Ok(report::repeats_section(&refs, "benchmarks"))
}

/// A work dir under the system temp dir, removed on drop unless `FKS_KEEP_TMP` is set.
struct WorkDir(Option<tempfile::TempDir>);

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let (Some(d), true) = (self.0.take(), std::env::var_os("FKS_KEEP_TMP").is_some()) {
            eprintln!("keeping work dir {}", d.keep().display());
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Demo { common, out } => {
            let (opts, profile, _guard) = options(&common)?;
            let lab = Lab::start(&opts, profile).await?;
            let outcome = lab.run().await?;
            report::write_artefacts(&lab, &outcome, &out)?;
            println!("{}", outcome.timeline.table(5.0));
            println!("{}", outcome.measurements.markdown());
            let v = outcome.violations();
            if v.is_empty() {
                println!("checks: same JobID, no failover, one rescale in flight at a time, reported ≥ required, no busy TaskManager stopped — all held");
            } else {
                println!("checks violated:\n  {}", v.join("\n  "));
            }
            println!(
                "wrote {0}/timeline.csv, {0}/timeline.svg, {0}/timeline.txt",
                out.display()
            );
            if !v.is_empty() {
                bail!("{} check(s) violated", v.len());
            }
        }
        Cmd::Bench {
            common,
            out,
            scaled_objects,
            level_secs,
            fleet_sizes,
            repeats,
        } => {
            let fleet_sizes = fleet_bench::parse_sizes(&fleet_sizes).map_err(anyhow::Error::msg)?;
            let (opts, profile, _guard) = options(&common)?;
            let lab = Lab::start(&opts, profile.clone()).await?;
            let outcome = lab.run().await?;
            let dir = out
                .parent()
                .unwrap_or(std::path::Path::new("."))
                .join("benchmarks");
            report::write_artefacts(&lab, &outcome, &dir)?;
            eprintln!("[bench] P5 (30 s window), then P7/P4 with {scaled_objects} ScaledObjects");
            let figures = fleet::measure(
                &lab,
                &opts.scaler_bin,
                &opts.work_dir.join("fleet"),
                scaled_objects,
                std::time::Duration::from_secs(level_secs),
            )
            .await?;
            let mut md = report::benchmarks_markdown(
                &lab,
                &outcome,
                &figures,
                "scripts/benchmarks.sh",
                "benchmarks",
            );
            drop(lab);
            let main = (profile, outcome.measurements.clone());
            md.push_str(&extra_scenarios(&opts, &main, &dir).await?);
            if repeats > 1 {
                md.push_str(&repeat_main(&opts, &main, repeats, &dir).await?);
            }
            let rows = fleet_bench::run(
                &fleet_bench::default_options(&opts.scaler_bin, &opts.work_dir),
                &fleet_sizes,
            )
            .await?;
            md.push_str(&fleet_bench::section(&rows));
            std::fs::write(&out, &md).with_context(|| format!("write {}", out.display()))?;
            println!("{md}");
            println!("wrote {} and {}/", out.display(), dir.display());
        }
        Cmd::Fleet {
            scaler_bin,
            sizes,
            interval_secs,
            no_wave,
        } => {
            let sizes = fleet_bench::parse_sizes(&sizes).map_err(anyhow::Error::msg)?;
            let scaler_bin = scaler_binary(scaler_bin.as_ref())?;
            let dir = tempfile::Builder::new().prefix("fks-fleet-").tempdir()?;
            let mut options = fleet_bench::default_options(&scaler_bin, dir.path());
            options.interval = std::time::Duration::from_secs(interval_secs.max(1));
            options.wave = !no_wave;
            let rows = fleet_bench::run(&options, &sizes).await?;
            println!("{}", fleet_bench::section(&rows));
        }
    }
    Ok(())
}

//! Subcommand implementations (the binary's edge: `anyhow` errors with context).

use anyhow::Context;
use flink_keda_scaler::config::Config;

use crate::cli::Command;

/// Runs one subcommand.
pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::CheckConfig(args) => check_config(&args.config),
        Command::Serve(args) => {
            let config = load(&args.config)?;
            flink_keda_scaler::runtime::serve(
                config,
                args.grpc_addr,
                args.http_addr,
                args.admin_addr,
            )
            .await
            .context("scaler stopped with an error")
        }
        Command::Explain(args) => {
            let config = load(&args.config)?;
            let report = flink_keda_scaler::runtime::explain(
                config,
                args.flink.as_str(),
                args.job.as_deref(),
                args.policy.as_deref(),
                args.prometheus.as_deref(),
            )
            .await
            .context("explain failed")?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Command::Simulate(args) => {
            use flink_keda_scaler::sim::{self, SimConfig, TraceSource};
            flink_keda_scaler::svg::check_available(args.svg.is_some())?;
            let config = SimConfig {
                trace: TraceSource::from_arg(&args.trace),
                lag_slo_s: args.lag_slo,
                max_task_managers: args.max_task_managers,
                seed: args.seed,
                ..SimConfig::default()
            };
            config.validate()?;
            let report = sim::run(&config)?;
            println!("{}", report.to_table());
            if let Some(p) = &args.csv {
                std::fs::write(p, report.to_csv())
                    .with_context(|| format!("write {}", p.display()))?;
                eprintln!("time series written to {}", p.display());
            }
            if let Some(p) = &args.svg {
                std::fs::write(p, report.to_svg()?)
                    .with_context(|| format!("write {}", p.display()))?;
                eprintln!("plot written to {}", p.display());
            }
            Ok(())
        }
        Command::Backtest(args) => backtest(args).await,
        Command::Rescale(args) => {
            use flink_keda_scaler::{core::RescalePhase, runtime::rescale};
            let request = rescale::Request {
                flink_url: args.flink.as_str().trim_end_matches('/').to_string(),
                job: args.job,
                parallelism: args.parallelism,
                vertices: rescale::parse_vertex_args(&args.vertex)?,
                dry_run: args.dry_run,
                timeout: args.timeout,
            };
            let options = flink_keda_scaler::flink::ClientOptions {
                request_timeout: std::time::Duration::from_secs(10),
                connect_timeout: std::time::Duration::from_secs(5),
                get_retries: 1,
                ..Default::default()
            };
            let report = rescale::run(&request, options)
                .await
                .context("rescale failed")?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            if report.phase != RescalePhase::Completed && !report.dry_run {
                anyhow::bail!("rescale ended in phase {}", report.phase.as_str());
            }
            Ok(())
        }
    }
}

async fn backtest(args: crate::cli::BacktestArgs) -> anyhow::Result<()> {
    use flink_keda_scaler::backtest::{self, Options, TimeRange, TopologySource};
    flink_keda_scaler::svg::check_available(args.svg.is_some())?;
    let config = load(&args.config)?;
    // whole seconds: ticks then print cleanly and match Prometheus' millisecond grid
    let now = {
        use chrono::Timelike;
        let n = chrono::Utc::now();
        n.with_nanosecond(0).unwrap_or(n)
    };
    let range = TimeRange::new(
        backtest::parse_time(&args.from, now)?,
        backtest::parse_time(&args.to, now)?,
        args.step,
    )?;
    let topology = match (&args.topology, &args.flink) {
        (Some(path), _) => TopologySource::File(path.clone()),
        (None, Some(url)) => TopologySource::Flink(url.as_str().trim_end_matches('/').to_string()),
        (None, None) => anyhow::bail!("--flink URL or --topology FILE is required"),
    };
    let options = Options {
        topology,
        job: args.job,
        job_name: args.job_name,
        policy: args.policy,
        prometheus: args.prometheus,
        slots_per_task_manager: args.slots_per_task_manager,
        range,
    };
    let report = backtest::run_from_config(&config, &options)
        .await
        .context("backtest failed")?;
    println!("{}", report.to_table());
    if let Some(p) = &args.csv {
        std::fs::write(p, report.to_csv()).with_context(|| format!("write {}", p.display()))?;
        eprintln!("time series written to {}", p.display());
    }
    if let Some(p) = &args.svg {
        std::fs::write(p, report.to_svg()?).with_context(|| format!("write {}", p.display()))?;
        eprintln!("plot written to {}", p.display());
    }
    Ok(())
}

fn load(path: &std::path::Path) -> anyhow::Result<Config> {
    Config::load(path).with_context(|| format!("invalid config {}", path.display()))
}

fn check_config(path: &std::path::Path) -> anyhow::Result<()> {
    let config = load(path)?;
    let warnings = flink_keda_scaler::runtime::check_files(&config)
        .with_context(|| format!("{}: a file it names is unusable", path.display()))?;
    println!("{}: OK", path.display());
    for w in &warnings {
        println!("  warning: {w}");
    }
    println!(
        "  grpc: {}  http: {}",
        config.grpc.listen_address, config.http.listen_address
    );
    println!(
        "  prometheus servers: {}",
        if config.prometheus.is_empty() {
            "none".to_string()
        } else {
            config
                .prometheus
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    let mut names: Vec<Option<&str>> = config.policies.keys().map(|k| Some(k.as_str())).collect();
    if !config.policies.contains_key("default") {
        names.insert(0, None);
    }
    for name in names {
        let policy = config.policy(name)?;
        println!(
            "  policy {}: targetUtilization={} band=[{}, {}] taskManagers=[{}, {}] stabilization={:?} scaleDownDelay={:?} cooldown={:?}",
            name.unwrap_or("default (built-in)"),
            policy.target_utilization,
            policy.utilization_low,
            policy.utilization_high,
            policy.min_task_managers,
            policy.max_task_managers,
            policy.stabilization,
            policy.scale_down_delay,
            policy.cooldown
        );
    }
    Ok(())
}

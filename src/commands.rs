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
            flink_keda_scaler::runtime::serve(config, args.grpc_addr, args.http_addr)
                .await
                .context("scaler stopped with an error")
        }
        Command::Explain(_) | Command::Rescale(_) => anyhow::bail!("not wired yet"),
    }
}

fn load(path: &std::path::Path) -> anyhow::Result<Config> {
    Config::load(path).with_context(|| format!("invalid config {}", path.display()))
}

fn check_config(path: &std::path::Path) -> anyhow::Result<()> {
    let config = load(path)?;
    println!("{}: OK", path.display());
    println!("  grpc: {}  http: {}", config.grpc.listen_address, config.http.listen_address);
    println!(
        "  prometheus servers: {}",
        if config.prometheus.is_empty() { "none".to_string() } else { config.prometheus.keys().cloned().collect::<Vec<_>>().join(", ") }
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

//! The `flink-keda-scaler` binary: parse the CLI, init logging, run the subcommand.

mod cli;
mod commands;

use clap::Parser;

/// mimalloc instead of glibc malloc: freed memory goes back to the OS (see Cargo.toml).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let format = cli.log_format;
    flink_keda_scaler::telemetry::init(format);
    match commands::run(cli.command).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            flink_keda_scaler::telemetry::fatal(format, &report(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes, `: `-separated, each cause once: the library errors carry
/// their cause's text in their own message and keep the typed cause as `source()`, so a
/// cause whose text is already printed is skipped.
fn report(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read x: {source}")]
    struct Inlined {
        #[source]
        source: std::io::Error,
    }

    /// A cause already inlined by its parent is printed once; context is kept.
    #[test]
    fn causes_print_once() {
        let io = std::io::Error::other("disk on fire");
        let e = anyhow::Error::new(Inlined { source: io }).context("load failed");
        assert_eq!(report(&e), "load failed: cannot read x: disk on fire");
        let plain = anyhow::Error::new(std::io::Error::other("gone")).context("outer");
        assert_eq!(report(&plain), "outer: gone");
    }
}

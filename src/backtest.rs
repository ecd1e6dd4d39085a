//! `backtest`: replays the decision core over a job's Prometheus history and compares
//! what it would have done with what actually ran.
//!
//! ```text
//!  Topology (Flink REST or file) ─┐
//!  SignalQueries + JobVars ───────┼─► fetch: ONE query_range per signal (+ parallelism,
//!  [from, to] every step ─────────┘          TaskManagers) ─► History (series)
//!  History ─► assemble (pure): per tick VertexSignals / TaskManagerSignals / JobSignals,
//!             observed parallelism and TaskManagers
//!  Timeline + Policy ─► replay (pure): Observation per tick → core::decide, JobState and
//!             the simulated parallelism carried across ticks
//!  Replay ─► report: rescales with reasons, TaskManagers ours vs actual, TM-hours
//!             (table, CSV, SVG)
//! ```
//!
//! Runtime-level like `runtime`: `fetch` and `assemble`/`replay` use `core` and
//! `promql`; [`setup`] wires the config and Flink REST for the CLI.

pub mod assemble;
pub mod error;
pub mod fetch;
pub mod range;
pub mod replay;
pub mod report;
pub mod setup;

pub use assemble::{Tick, Timeline};
pub use error::BacktestError;
pub use fetch::{fetch, History, RangeQuery};
pub use range::{parse_time, TimeRange};
pub use replay::{replay, Replay, RescaleEvent, TickResult};
pub use report::Backtest;
pub use setup::{run_from_config, Options, TopologySource};

use crate::{
    core::{Policy, Topology},
    promql::{JobVars, PromClient, SignalQueries, Windows},
};

/// Everything one backtest needs besides the Prometheus client.
#[derive(Debug, Clone)]
pub struct Input {
    /// Job id and name (and extra matchers) substituted into the queries.
    pub vars: JobVars,
    /// The job graph; vertex ids are the `task_id` of the metrics.
    pub topology: Topology,
    /// The policy replayed.
    pub policy: Policy,
    /// Slots per TaskManager.
    pub slots_per_task_manager: u32,
    /// The time range and step.
    pub range: TimeRange,
    /// Name of the policy (for the report).
    pub policy_name: String,
    /// `{{window}}`/`{{interval}}` of the queries (configured or learned scrape interval).
    pub windows: Windows,
}

/// Runs a backtest: one range query per enabled signal (plus the observed parallelism
/// and TaskManager counts), then the pure assembly, replay and report.
pub async fn run(
    client: &PromClient,
    queries: &SignalQueries,
    input: &Input,
) -> Result<Backtest, BacktestError> {
    let mut history = fetch(client, queries, &input.vars, &input.windows, &input.range).await?;
    let timeline = Timeline::build(&history, &input.topology, &input.range, &input.vars.job_id)?;
    let replayed = replay(
        &timeline,
        &input.topology,
        &input.policy,
        input.slots_per_task_manager,
        &input.vars,
    );
    history.issues.extend(timeline.issues);
    Ok(Backtest::new(input, history, replayed))
}

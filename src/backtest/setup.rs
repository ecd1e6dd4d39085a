//! Wiring for the CLI: resolves the policy, queries and Prometheus server from the config
//! (as the live scaler does), the topology from the live Flink REST API or a JSON file
//! (for jobs that no longer run), and the slots per TaskManager, then runs the backtest.

use std::{path::PathBuf, time::Duration};

use super::{range::TimeRange, run, Backtest, BacktestError, Input};
use crate::{
    config::{Config, DEFAULT_NAME},
    core::{JobId, JobSelector, Topology},
    flink::{ClientOptions, FlinkClient},
    promql::{learn_interval, JobVars, PromClient, Windows},
};

/// Flink REST request timeout.
const FLINK_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the topology comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopologySource {
    /// The live JobManager REST API (current job graph).
    Flink(String),
    /// A JSON file holding a `core::Topology` (`--job` must then be the job id).
    File(PathBuf),
}

/// What the CLI asks for.
#[derive(Debug, Clone)]
pub struct Options {
    /// Topology source.
    pub topology: TopologySource,
    /// Job name or id (default: the only running job; required with a topology file).
    pub job: Option<String>,
    /// Job name for `{{job_name}}` when the topology comes from a file.
    pub job_name: Option<String>,
    /// Policy name (default `default`).
    pub policy: Option<String>,
    /// Prometheus server name (default `default`).
    pub prometheus: Option<String>,
    /// Slots per TaskManager (default: policy, then Flink's `/taskmanagers`).
    pub slots_per_task_manager: Option<u32>,
    /// Range and step.
    pub range: TimeRange,
}

/// Resolves everything from the config and runs the backtest.
pub async fn run_from_config(config: &Config, opts: &Options) -> Result<Backtest, BacktestError> {
    let policy = config.policy(opts.policy.as_deref())?;
    let policy_name = opts.policy.clone().unwrap_or_else(|| DEFAULT_NAME.into());
    let spec = config.policies.get(&policy_name);
    let queries =
        crate::runtime::policy_queries(spec).map_err(|source| BacktestError::Queries {
            policy: policy_name.clone(),
            source,
        })?;
    let matchers = spec.and_then(|s| s.matchers.clone()).unwrap_or_default();
    let (client, scrape_interval) = prometheus_client(config, opts)?;
    let windows = windows(&client, scrape_interval, &matchers, &opts.range).await;
    let slots_given = opts
        .slots_per_task_manager
        .or(policy.slots_per_task_manager);
    let job = match &opts.topology {
        TopologySource::File(path) => job_from_file(path, opts)?,
        TopologySource::Flink(url) => job_from_flink(url, opts, slots_given.is_none()).await?,
    };
    let slots_per_task_manager = slots_given
        .or(job.slots_per_task_manager)
        .filter(|s| *s > 0)
        .ok_or_else(|| {
            BacktestError::Setup(
                "slots per TaskManager unknown: set --slots-per-task-manager or the policy's slotsPerTaskManager".into(),
            )
        })?;
    let input = Input {
        vars: job.vars.with_matchers(matchers),
        topology: job.topology,
        policy,
        slots_per_task_manager,
        range: opts.range,
        policy_name,
        windows,
    };
    run(&client, &queries, &input).await
}

/// The job a backtest replays: its template variables, its topology and, when read from
/// Flink, the slots of its TaskManagers.
struct Job {
    vars: JobVars,
    topology: Topology,
    slots_per_task_manager: Option<u32>,
}

/// The windows of the replayed queries: the configured scrape interval, else the one
/// learned at the end of the range, else the fallback (logged).
async fn windows(
    client: &PromClient,
    configured: Option<Duration>,
    matchers: &str,
    range: &TimeRange,
) -> Windows {
    if let Some(i) = configured {
        return Windows::from_interval(i);
    }
    match learn_interval(client, matchers, None, Some(range.to)).await {
        Ok(i) => Windows::from_interval(i),
        Err(e) => {
            let w = Windows::default();
            tracing::warn!(error = %e, interval = ?w.interval, "scrape interval not learned; using the fallback");
            w
        }
    }
}

/// The client of the Prometheus server `--prometheus` names (default `default`), and
/// its configured scrape interval.
fn prometheus_client(
    config: &Config,
    opts: &Options,
) -> Result<(PromClient, Option<Duration>), BacktestError> {
    let server = opts
        .prometheus
        .clone()
        .unwrap_or_else(|| DEFAULT_NAME.into());
    let settings = config.prometheus.get(&server).ok_or_else(|| {
        BacktestError::Setup(format!(
            "no Prometheus server named '{server}' in the config (known: {})",
            config
                .prometheus
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let client = PromClient::new(&crate::runtime::prometheus_endpoint(settings))?;
    Ok((client, settings.scrape_interval))
}

/// A job that may no longer run: the topology from a JSON file, the id from `--job`.
fn job_from_file(path: &std::path::Path, opts: &Options) -> Result<Job, BacktestError> {
    let job_id = opts
        .job
        .as_deref()
        .and_then(|j| j.parse::<JobId>().ok())
        .ok_or_else(|| {
            BacktestError::Setup(
                "--topology needs --job with the job id (32 hex characters)".into(),
            )
        })?;
    Ok(Job {
        vars: JobVars::new(job_id, opts.job_name.clone().unwrap_or_default()),
        topology: read_topology(path)?,
        slots_per_task_manager: None,
    })
}

/// A running job: resolved and read over Flink REST (the TaskManagers' slots only when
/// `read_slots`).
async fn job_from_flink(url: &str, opts: &Options, read_slots: bool) -> Result<Job, BacktestError> {
    let flink_err = |source| BacktestError::Flink {
        url: url.to_string(),
        source,
    };
    let flink = FlinkClient::new(
        url,
        ClientOptions {
            request_timeout: FLINK_TIMEOUT,
            connect_timeout: Duration::from_secs(5),
            get_retries: 1,
            ..ClientOptions::default()
        },
    )
    .map_err(flink_err)?;
    let selector = JobSelector::from_arg(opts.job.as_deref());
    let job = flink.resolve_job(&selector).await.map_err(flink_err)?;
    let topology = flink.topology(&job.jid).await.map_err(flink_err)?;
    let slots_per_task_manager = if read_slots {
        flink
            .task_managers()
            .await
            .map_err(flink_err)?
            .first()
            .map(|t| t.slots_number)
    } else {
        None
    };
    Ok(Job {
        vars: JobVars::new(job.jid, job.name),
        topology,
        slots_per_task_manager,
    })
}

fn read_topology(path: &std::path::Path) -> Result<Topology, BacktestError> {
    let path_text = || path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| BacktestError::TopologyRead {
        path: path_text(),
        source,
    })?;
    let topology: Topology =
        serde_json::from_str(&text).map_err(|source| BacktestError::TopologyParse {
            path: path_text(),
            source,
        })?;
    if topology.vertices.is_empty() {
        return Err(BacktestError::TopologyEmpty { path: path_text() });
    }
    Ok(topology)
}

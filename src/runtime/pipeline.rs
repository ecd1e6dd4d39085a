//! One observation of one job: resolve the job on the JobManager, read its topology,
//! state and TaskManagers from Flink REST and its signals from Prometheus (one query per
//! signal), and assemble the core's [`Observation`]. Shared by the per-job tick and
//! `explain`, so both see exactly the same inputs.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;

use super::{context::Context, predictive, settings::JobSettings};
use crate::{
    core::{self, JobId, JobSelector, Observation},
    flink::{self, FlinkClient, FlinkError, TaskManagerInfo},
    keda::EvalError,
    promql::{read_signals, JobVars, QueryStat, ReadOptions, SignalError},
};

/// Everything read in one observation.
pub struct Observed {
    /// The job's id, as Flink reported it.
    pub job_id: JobId,
    /// The core's view.
    pub observation: Observation,
    /// Registered TaskManagers.
    pub task_managers: Vec<TaskManagerInfo>,
    /// Prometheus query statistics (one per signal).
    pub queries: Vec<QueryStat>,
    /// Non-fatal signal problems (optional signals missing, ...).
    pub issues: Vec<String>,
}

/// A short, serializable summary of the inputs of a decision (for `/debug/jobs`).
#[derive(Debug, Clone, Serialize)]
pub struct QuerySummary {
    /// Signal name.
    pub signal: &'static str,
    /// Milliseconds.
    pub duration_ms: u64,
    /// Series returned.
    pub series: usize,
    /// `ok` or the error kind.
    pub outcome: &'static str,
}

/// Maps a Flink error onto what KEDA should see.
pub fn flink_error(url: &str, e: FlinkError) -> EvalError {
    match e {
        FlinkError::NotFound { .. } | FlinkError::JobGone { .. } => {
            EvalError::NotFound(e.to_string())
        }
        FlinkError::Ambiguous { .. } => EvalError::InvalidArgument {
            key: "jobName".to_string(),
            message: format!("{e}; set jobName or jobId"),
        },
        other => EvalError::Unavailable(format!("Flink REST {url}: {other}")),
    }
}

/// Maps a signal read error onto what KEDA should see (always UNAVAILABLE: never a 0).
pub fn signal_error(server: &str, e: SignalError) -> EvalError {
    EvalError::Unavailable(format!("Prometheus '{server}': {e}"))
}

fn ms_to_utc(ms: i64) -> Option<DateTime<Utc>> {
    if ms <= 0 {
        return None;
    }
    Utc.timestamp_millis_opt(ms).single()
}

/// Reads one observation of the job the target selects.
pub async fn observe(
    ctx: &Context,
    settings: &JobSettings,
    client: &FlinkClient,
    job: &JobSelector,
) -> Result<Observed, EvalError> {
    let url = settings.flink_url.as_str();
    let started = Instant::now();
    let summary = client
        .resolve_job(job)
        .await
        .map_err(|e| flink_error(url, e))?;
    // From here on every log line of the tick carries the job (`tick` span fields).
    let span = tracing::Span::current();
    span.record("job_id", tracing::field::display(&summary.jid));
    span.record("job_name", summary.name.as_str());
    let (details, topology, task_managers) = tokio::try_join!(
        client.job(&summary.jid),
        client.topology(&summary.jid),
        client.task_managers(),
    )
    .map_err(|e| flink_error(url, e))?;
    ctx.metrics
        .observe_flink_request("observe", Some(200), started.elapsed().as_secs_f64());

    let vars = JobVars::new(details.jid.clone(), details.name.clone())
        .with_matchers(settings.matchers.clone());
    let read = read_signals(
        &settings.prometheus,
        &settings.queries,
        &vars,
        &topology,
        &ReadOptions {
            at: None,
            timeout: settings
                .prometheus
                .max_call_duration()
                .max(Duration::from_secs(1)),
            concurrency: 8,
        },
    )
    .await;
    let read = match read {
        Ok(r) => r,
        Err(e) => {
            ctx.metrics.record_prometheus_error(
                &settings.prometheus_name,
                e.signal.name(),
                e.source.kind(),
            );
            return Err(signal_error(&settings.prometheus_name, e));
        }
    };
    for q in &read.queries {
        ctx.metrics.observe_prometheus_query(
            &settings.prometheus_name,
            q.signal.name(),
            q.duration.as_secs_f64(),
        );
        if q.outcome != "ok" {
            ctx.metrics.record_prometheus_error(
                &settings.prometheus_name,
                q.signal.name(),
                q.outcome,
            );
        }
    }

    let slots_per_task_manager = task_managers.first().map(|t| t.slots_number);
    let mut observation = Observation {
        at: Utc::now(),
        job_id: details.jid.to_string(),
        job_name: details.name.clone(),
        status: flink::job_status(&details.state),
        running_since: details
            .timestamps
            .get("RUNNING")
            .copied()
            .and_then(ms_to_utc),
        topology,
        slots_per_task_manager,
        task_managers_registered: u32::try_from(task_managers.len()).ok(),
        vertices: read.vertices,
        task_managers: read.task_managers,
        job: read.job,
        predicted_floor: None,
    };
    let mut issues: Vec<String> = read.issues.iter().map(|i| format!("{i:?}")).collect();
    if let Some(cfg) = &settings.policy.predictive {
        let slots = settings
            .policy
            .slots_per_task_manager
            .or(slots_per_task_manager);
        let current_tms = slots.map_or(0, |s| {
            core::required_task_managers(
                &observation.topology,
                &observation.topology.parallelism(),
                s,
            )
        });
        match predictive::floor(
            &settings.prometheus,
            settings.predictive_query.as_deref(),
            &vars,
            cfg,
            &observation,
            current_tms,
            settings.policy.target_utilization,
        )
        .await
        {
            Ok(floor) => observation.predicted_floor = floor,
            Err(e) => issues.push(e),
        }
    }
    Ok(Observed {
        job_id: details.jid,
        observation,
        task_managers,
        queries: read.queries,
        issues,
    })
}

/// Summaries of the query statistics.
pub fn query_summaries(queries: &[QueryStat]) -> Vec<QuerySummary> {
    queries
        .iter()
        .map(|q| QuerySummary {
            signal: q.signal.name(),
            duration_ms: u64::try_from(q.duration.as_millis()).unwrap_or(u64::MAX),
            series: q.series,
            outcome: q.outcome,
        })
        .collect()
}

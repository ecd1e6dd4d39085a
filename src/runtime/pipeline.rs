//! One observation of one job: resolve the job on the JobManager, read its topology,
//! state and TaskManagers from Flink REST and its signals from Prometheus (through the
//! signal hub: the job's rows of the batched queries of the last round), and assemble
//! the core's [`Observation`]. Shared by the per-job tick and `explain` (where the hub's
//! round task does not run, so every signal is read for the job alone), so both see
//! exactly the same inputs.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;

use super::{
    context::Context,
    predictive::{self, PredictiveError},
    progress::Progress,
    rest_cache::{JobView, RestError},
    settings::JobSettings,
};
use crate::{
    core::{self, JobId, JobSelector, Observation, PredictiveConfig, Topology},
    flink::{self, FlinkClient, FlinkError, JobDetails, TaskManagerInfo},
    keda::EvalError,
    promql::{JobVars, QueryStat, SignalError, SignalRead, Windows},
    runtime::hub::SignalRequest,
};

/// Everything read in one observation.
pub struct Observed {
    /// The job's id, as Flink reported it.
    pub job_id: JobId,
    /// The core's view.
    pub observation: Observation,
    /// Registered TaskManagers (the JobManager's shared read: see [`super::rest_cache`]).
    pub task_managers: Vec<TaskManagerInfo>,
    /// `/jobs/:id` as read for this observation (its embedded plan dropped).
    pub details: Arc<JobDetails>,
    /// True when the details and TaskManagers were read fresh (a rescale in flight) rather
    /// than kept from an earlier tick.
    pub fresh: bool,
    /// Prometheus query statistics (one per signal).
    pub queries: Vec<QueryStat>,
    /// Non-fatal signal problems (optional signals missing, ...).
    pub issues: Vec<String>,
    /// The scrape interval and counter window the queries used.
    pub windows: Windows,
    /// Age of the batched rows used (0: read for this job alone).
    pub signals_age: Duration,
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
    /// Jobs the query answered at once (1: this job alone).
    pub jobs: usize,
}

/// The windows and freshness of a job's signals (for `/debug/jobs` and `explain`).
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignalsSummary {
    /// Scrape interval and counter window the queries used.
    #[serde(flatten)]
    pub windows: Windows,
    /// Age of the batched rows used, in milliseconds (0: read for this job alone).
    pub age_ms: u64,
}

impl Observed {
    /// The windows and freshness of the signals.
    pub fn signals_summary(&self) -> SignalsSummary {
        SignalsSummary {
            windows: self.windows,
            age_ms: u64::try_from(self.signals_age.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// Maps a Flink error onto what KEDA should see.
pub fn flink_error(url: &str, e: FlinkError) -> EvalError {
    match e {
        FlinkError::NotFound { .. } | FlinkError::JobGone { .. } => EvalError::not_found_from(e),
        FlinkError::Ambiguous { .. } => EvalError::InvalidArgument {
            key: "jobName".to_string(),
            message: format!("{e}; set jobName or jobId"),
            source: Some(Arc::new(e)),
        },
        other => EvalError::unavailable_from(&format!("Flink REST {url}"), other),
    }
}

/// Maps a signal read error onto what KEDA should see (always UNAVAILABLE: never a 0).
pub fn signal_error(server: &str, e: SignalError) -> EvalError {
    EvalError::unavailable_from(&format!("Prometheus '{server}'"), e)
}

fn ms_to_utc(ms: i64) -> Option<DateTime<Utc>> {
    if ms <= 0 {
        return None;
    }
    Utc.timestamp_millis_opt(ms).single()
}

/// What Flink REST says about the job.
struct FlinkView {
    details: Arc<JobDetails>,
    topology: Topology,
    task_managers: Vec<TaskManagerInfo>,
}

/// Reads one observation of the job the target selects, all of it fresh from Flink.
pub async fn observe(
    ctx: &Context,
    settings: &JobSettings,
    client: &FlinkClient,
    job: &JobSelector,
) -> Result<Observed, EvalError> {
    let (mut view, progress) = (JobView::default(), Progress::default());
    observe_with(ctx, settings, client, job, &mut view, true, &progress).await
}

/// Reads one observation of the job the target selects; the JobManager's overview and
/// TaskManagers are this slot's shared reads and the job's details and topology `view`'s
/// unless `fresh` (see [`super::rest_cache`]). `progress` names the step it waits on.
pub async fn observe_with(
    ctx: &Context,
    settings: &JobSettings,
    client: &FlinkClient,
    job: &JobSelector,
    view: &mut JobView,
    fresh: bool,
    progress: &Progress,
) -> Result<Observed, EvalError> {
    progress.set(format!(
        "Flink REST {} has not answered (job overview and TaskManagers; looking for {job})",
        settings.flink_url
    ));
    let flink = read_flink(ctx, settings, client, job, view, fresh).await?;
    let vars = JobVars::new(flink.details.jid.clone(), flink.details.name.clone())
        .with_matchers(settings.matchers.clone());
    progress.set(format!(
        "Prometheus '{}' at {} has not answered the signal queries of job {} (busyTime, recordsIn, ...)",
        settings.prometheus_name,
        settings.prometheus.base_url(),
        flink.details.jid
    ));
    let mut read = read_prometheus(ctx, settings, &vars, &flink.topology).await?;
    let mut issues: Vec<String> = read.issues.iter().map(|i| format!("{i:?}")).collect();
    let queries = std::mem::take(&mut read.queries);
    let (windows, signals_age) = (read.windows, read.age);
    let FlinkView {
        details,
        topology,
        task_managers,
    } = flink;
    let mut observation = assemble(&details, topology, &task_managers, read);
    if let Some(cfg) = &settings.policy.predictive {
        match predict(settings, &vars, cfg, &observation, &windows).await {
            Ok(floor) => observation.predicted_floor = floor,
            Err(e) => issues.push(e.to_string()),
        }
    }
    Ok(Observed {
        job_id: details.jid.clone(),
        observation,
        task_managers,
        details,
        fresh,
        queries,
        issues,
        windows,
        signals_age,
    })
}

/// Resolves the job and reads its details, topology and the TaskManagers.
async fn read_flink(
    ctx: &Context,
    settings: &JobSettings,
    client: &FlinkClient,
    job: &JobSelector,
    view: &mut JobView,
    fresh: bool,
) -> Result<FlinkView, EvalError> {
    let url = settings.flink_url.as_str();
    let started = Instant::now();
    let interval = ctx.config.evaluation.interval;
    let read = ctx
        .rest
        .read_job(client, url, job, interval, fresh, view)
        .await
        .map_err(|e| match e {
            RestError::Job(e) => flink_error(url, e),
            RestError::Shared(e) => EvalError::unavailable_from(&format!("Flink REST {url}"), e),
        })?;
    // From here on every log line of the tick carries the job (`tick` span fields).
    let span = tracing::Span::current();
    span.record("job_id", tracing::field::display(&read.summary.jid));
    span.record("job_name", read.summary.name.as_str());
    ctx.metrics
        .observe_flink_request("observe", Some(200), started.elapsed().as_secs_f64());
    Ok(FlinkView {
        details: read.details,
        topology: read.topology,
        task_managers: read.task_managers.as_ref().clone(),
    })
}

/// Reads the job's signals through the signal hub (which records each query it sends in
/// the metrics); a required signal that cannot be read is counted and is UNAVAILABLE.
async fn read_prometheus(
    ctx: &Context,
    settings: &JobSettings,
    vars: &JobVars,
    topology: &Topology,
) -> Result<SignalRead, EvalError> {
    let server = settings.prometheus_name.as_str();
    let request = SignalRequest {
        server,
        client: &settings.prometheus,
        queries: &settings.queries,
        vars,
        topology,
    };
    let deadline = settings
        .prometheus
        .max_call_duration()
        .max(Duration::from_secs(1));
    ctx.hub.read(&request, deadline).await.map_err(|e| {
        ctx.metrics
            .record_prometheus_error(server, e.signal.name(), e.source.kind());
        signal_error(server, e)
    })
}

/// The core's view of the job (without the predicted floor).
fn assemble(
    details: &JobDetails,
    topology: Topology,
    task_managers: &[TaskManagerInfo],
    read: SignalRead,
) -> Observation {
    Observation {
        at: Utc::now(),
        job_id: details.jid.to_string(),
        job_name: details.name.clone(),
        status: flink::job_status(&details.state),
        running_since: details.timestamps.running.and_then(ms_to_utc),
        topology,
        slots_per_task_manager: task_managers.first().map(|t| t.slots_number),
        task_managers_registered: u32::try_from(task_managers.len()).ok(),
        vertices: read.vertices,
        task_managers: read.task_managers,
        job: read.job,
        predicted_floor: None,
        signal_window: read.signal_window,
        arrival_window: read.arrival_window,
    }
}

/// The predictive floor of this tick (see [`predictive::floor`]).
async fn predict(
    settings: &JobSettings,
    vars: &JobVars,
    cfg: &PredictiveConfig,
    observation: &Observation,
    windows: &Windows,
) -> Result<Option<u32>, PredictiveError> {
    let slots = settings
        .policy
        .slots_per_task_manager
        .or(observation.slots_per_task_manager);
    let current_tms = slots.map_or(0, |s| {
        core::required_task_managers(
            &observation.topology,
            &observation.topology.parallelism(),
            s,
        )
    });
    predictive::floor(
        &settings.prometheus,
        predictive::SourceRate {
            template: settings.predictive_query.as_deref(),
            windows: *windows,
        },
        vars,
        cfg,
        observation,
        current_tms,
        settings.policy.target_utilization,
    )
    .await
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
            jobs: q.jobs,
        })
        .collect()
}

//! Manual rescale (the `rescale` command and `POST /admin/rescale`): resolve the job, build
//! the target plan from `--parallelism N` or per-vertex `ID=N`, then go through
//! [`super::apply::apply_and_wait`] — the same GET-edit-PUT and state machine as
//! automatic decisions — and report the time from PUT to RUNNING at the new parallelism.

use std::{collections::BTreeMap, time::Duration};

use axum::http::StatusCode;
use serde::Serialize;

use super::apply::{apply_and_wait, ApplyError, ApplyOptions};
use crate::{
    core::{JobId, JobSelector, RescalePhase, RescaleTimeouts, Topology, VertexId},
    flink::{plan_for, read_setup, ClientOptions, FlinkClient, FlinkError, FlinkSetup},
};

/// A manual rescale request.
#[derive(Debug, Clone)]
pub struct Request {
    /// JobManager REST URL.
    pub flink_url: String,
    /// Job name or id; `None` = the only running job.
    pub job: Option<String>,
    /// Every vertex to this parallelism.
    pub parallelism: Option<u32>,
    /// Per-vertex parallelism (vertex id → N); others keep theirs.
    pub vertices: BTreeMap<String, u32>,
    /// Compute and report, never PUT.
    pub dry_run: bool,
    /// Longest wait for RUNNING at the new parallelism.
    pub timeout: Duration,
}

/// What happened.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Job id.
    pub job_id: JobId,
    /// Job name.
    pub job_name: String,
    /// Parallelism before, by vertex id.
    pub from: BTreeMap<VertexId, u32>,
    /// Parallelism requested, by vertex id.
    pub to: BTreeMap<VertexId, u32>,
    /// TaskManagers the target needs.
    pub task_managers: u32,
    /// Final phase of the rescale (serialised snake_case: `completed`, `timed_out`, ...).
    pub phase: RescalePhase,
    /// Seconds from the accepted PUT to RUNNING at the target (None in dry run or on failure).
    pub put_to_running_seconds: Option<f64>,
    /// Failovers seen while rescaling.
    pub failovers: usize,
    /// Dry run: nothing was sent.
    pub dry_run: bool,
}

/// Manual rescale errors.
#[derive(Debug, thiserror::Error)]
pub enum RescaleError {
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// Flink said no (or could not be reached).
    #[error(transparent)]
    Flink(#[from] FlinkError),
    /// Another rescale of the job is in flight.
    #[error(transparent)]
    InFlight(ApplyError),
    /// Another rescale (automatic or manual) holds the job's claim.
    #[error(
        "a rescale of job {job_id} is already in flight ({holder}): refused, retry when it ends"
    )]
    Claimed {
        /// The job.
        job_id: String,
        /// Who holds the claim.
        holder: String,
    },
}

impl From<ApplyError> for RescaleError {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::Flink(e) => RescaleError::Flink(e),
            in_flight @ ApplyError::InFlight { .. } => RescaleError::InFlight(in_flight),
        }
    }
}

impl RescaleError {
    /// HTTP status for the admin endpoint.
    pub fn status(&self) -> StatusCode {
        match self {
            RescaleError::BadRequest(_) => StatusCode::BAD_REQUEST,
            RescaleError::Flink(FlinkError::NotFound { .. } | FlinkError::JobGone { .. }) => {
                StatusCode::NOT_FOUND
            }
            RescaleError::Flink(FlinkError::Conflict { .. })
            | RescaleError::InFlight(_)
            | RescaleError::Claimed { .. } => StatusCode::CONFLICT,
            RescaleError::Flink(
                FlinkError::BadRequest { .. }
                | FlinkError::InvalidTarget { .. }
                | FlinkError::AdaptiveSchedulerRequired { .. }
                | FlinkError::ReactiveMode { .. },
            ) => StatusCode::UNPROCESSABLE_ENTITY,
            RescaleError::Flink(_) => StatusCode::BAD_GATEWAY,
        }
    }
}

/// Parses `ID=N` arguments.
pub fn parse_vertex_args(args: &[String]) -> Result<BTreeMap<String, u32>, RescaleError> {
    let mut out = BTreeMap::new();
    for a in args {
        let (id, n) = a.split_once('=').ok_or_else(|| {
            RescaleError::BadRequest(format!("--vertex {a:?}: expected VERTEX_ID=N"))
        })?;
        let n: u32 = n.trim().parse().map_err(|_| {
            RescaleError::BadRequest(format!(
                "--vertex {a:?}: parallelism must be a positive integer"
            ))
        })?;
        if n == 0 {
            return Err(RescaleError::BadRequest(format!(
                "--vertex {a:?}: parallelism must be >= 1"
            )));
        }
        out.insert(id.trim().to_ascii_lowercase(), n);
    }
    Ok(out)
}

/// The parallelism a manual request asks for: `parallelism` for every vertex, or the
/// `vertices` given (vertex id → N) with the others as they run. Refused at once, naming
/// the vertex: an unknown vertex, 0, or more than a vertex's maxParallelism (Flink would
/// keep running below it and the rescale would wait for TaskManagers it never uses).
pub fn target_parallelism(
    job_name: &str,
    topology: &Topology,
    parallelism: Option<u32>,
    vertices: &BTreeMap<String, u32>,
) -> Result<BTreeMap<VertexId, u32>, RescaleError> {
    if parallelism.is_some() != vertices.is_empty() {
        return Err(RescaleError::BadRequest(
            "give exactly one of parallelism or per-vertex parallelism".into(),
        ));
    }
    let mut to = topology.parallelism();
    match parallelism {
        Some(p) => to.values_mut().for_each(|v| *v = p),
        None => {
            for (id, n) in vertices {
                let vid = VertexId::new(id.clone());
                if topology.vertex(&vid).is_none() {
                    let known: Vec<String> = topology
                        .vertices
                        .iter()
                        .map(|v| format!("{} ({})", v.id, v.name))
                        .collect();
                    return Err(RescaleError::BadRequest(format!(
                        "job {job_name} has no vertex {}; vertices: {}",
                        crate::core::text::cap(id, 64),
                        known.join(", ")
                    )));
                }
                to.insert(vid, *n);
            }
        }
    }
    check_bounds(topology, &to)?;
    Ok(to)
}

/// Every target in [1, the vertex's maxParallelism]; the error names each vertex over.
fn check_bounds(topology: &Topology, to: &BTreeMap<VertexId, u32>) -> Result<(), RescaleError> {
    let mut over = Vec::new();
    for v in &topology.vertices {
        let Some(&p) = to.get(&v.id) else { continue };
        if p == 0 {
            return Err(RescaleError::BadRequest(format!(
                "parallelism of vertex {} ({}) must be >= 1",
                v.id, v.name
            )));
        }
        if p > v.max_parallelism {
            over.push(format!(
                "vertex {} ({}) has maxParallelism {}",
                v.id, v.name, v.max_parallelism
            ));
        }
    }
    if over.is_empty() {
        return Ok(());
    }
    let asked: Vec<String> = to.values().map(u32::to_string).collect();
    Err(RescaleError::BadRequest(format!(
        "parallelism {} exceeds the maximum of {}: refused (Flink cannot run a vertex above its maxParallelism)",
        if let [one] = asked.as_slice() { one.clone() } else { asked.join("/") },
        over.join("; ")
    )))
}

/// What a manual rescale is about to PUT (handed to the claim of [`run_claimed`]).
#[derive(Debug, Clone)]
pub struct Planned {
    /// Job id.
    pub job_id: JobId,
    /// Job name.
    pub job_name: String,
    /// Parallelism requested, by vertex id.
    pub to: BTreeMap<VertexId, u32>,
    /// TaskManagers the target needs.
    pub task_managers: u32,
}

/// The JobManager's set-up ([`read_setup`]: whether a rescale waits for a checkpoint).
/// A job in reactive mode is refused at once, before any PUT: Flink refuses every
/// resource-requirements update there and runs every vertex at the slot count, so the
/// only lever is the number of TaskManagers.
async fn setup_refusing_reactive(
    client: &FlinkClient,
    job_id: &JobId,
) -> Result<FlinkSetup, RescaleError> {
    let setup = read_setup(client, job_id, None).await?;
    if setup.reactive {
        return Err(RescaleError::Flink(FlinkError::ReactiveMode {
            job_id: job_id.to_string(),
            message: "nothing (not asked: the JobManager's configuration sets scheduler-mode: \
                      reactive; change the TaskManager replicas instead)"
                .into(),
        }));
    }
    Ok(setup)
}

/// Runs a manual rescale (no claim: the `rescale` command).
pub async fn run(req: &Request, options: ClientOptions) -> Result<Report, RescaleError> {
    run_claimed(req, options, |_| async { Ok(()) }).await
}

/// Runs a manual rescale; unless it is a dry run, `claim` is called with the plan once
/// the job is resolved and before the PUT, and what it returns (a claim guard) is held
/// until the rescale ends. An error from `claim` refuses the rescale: nothing is PUT.
pub async fn run_claimed<F, Fut, G>(
    req: &Request,
    options: ClientOptions,
    claim: F,
) -> Result<Report, RescaleError>
where
    F: FnOnce(Planned) -> Fut,
    Fut: std::future::Future<Output = Result<G, RescaleError>>,
{
    if req.parallelism.is_some() != req.vertices.is_empty() {
        return Err(RescaleError::BadRequest(
            "give exactly one of parallelism or per-vertex parallelism".into(),
        ));
    }
    if req.parallelism == Some(0) {
        return Err(RescaleError::BadRequest("parallelism must be >= 1".into()));
    }
    let client = FlinkClient::new(&req.flink_url, options)?;
    let job = client
        .resolve_job(&JobSelector::from_arg(req.job.as_deref()))
        .await?;
    let setup = setup_refusing_reactive(&client, &job.jid).await?;
    let topology = client.topology(&job.jid).await?;
    let from = topology.parallelism();
    let to = target_parallelism(&job.name, &topology, req.parallelism, &req.vertices)?;
    let plan = plan_for(&client, &topology, to.clone(), None).await?;
    let opts = ApplyOptions {
        dry_run: req.dry_run,
        timeouts: RescaleTimeouts {
            base: req.timeout,
            ..RescaleTimeouts::default()
        },
        checkpoint_nudge: setup.rescales_at_checkpoints(),
        ..ApplyOptions::default()
    };
    let task_managers = plan.task_managers;
    let _claim = if req.dry_run {
        None
    } else {
        Some(
            claim(Planned {
                job_id: job.jid.clone(),
                job_name: job.name.clone(),
                to: to.clone(),
                task_managers,
            })
            .await?,
        )
    };
    let outcome = apply_and_wait(&client, &job.jid, plan, &opts).await?;
    Ok(Report {
        job_id: job.jid,
        job_name: job.name,
        from,
        to,
        task_managers,
        phase: outcome.rescale.phase,
        put_to_running_seconds: outcome.put_to_running.map(|d| d.as_secs_f64()),
        failovers: outcome.failovers(),
        dry_run: req.dry_run,
    })
}

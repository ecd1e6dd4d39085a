//! The async rescale driver: reads the job, PUTs the new requirements (GET-edit-PUT of
//! every vertex, or only computes them in dry-run mode) and feeds observations of the
//! real cluster into the pure [`crate::core::rescale`] state machine until it completes,
//! times out or aborts. Used by the `rescale` CLI and by automatic decisions alike.
//!
//! ```text
//! Rescaler::start(client, job, target, opts)   GET job/topology/TMs/ckpt interval/baseline, PUT
//!   loop: rescaler.poll()                      GET job, TMs, numRestarts, exceptions → events
//!         rescaler.task_managers_to_report()   → KEDA
//! apply_and_wait(...) = start + poll until terminal
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::core::{
    required_task_managers,
    rescale::{ensure_none_in_flight, FailoverWatch},
    JobId, JobStatus, Plan, Rescale, RescaleEvent, RescaleObservation, RescalePhase,
    RescaleTimeouts, TaskManagerSlots, Topology, VertexId,
};

use super::{
    client::{is_terminal_state, FlinkClient},
    error::FlinkError,
    model::JobDetails,
    requirements::{apply_target, RequirementsChange},
};

/// Driver settings.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Compute and report, never PUT.
    pub dry_run: bool,
    /// Deadline budget.
    pub timeouts: RescaleTimeouts,
    /// Time between observations in [`apply_and_wait`].
    pub poll_interval: Duration,
    /// PUT attempts after a 409 (another update in progress) before giving up.
    pub conflict_retries: usize,
    /// Wait between those attempts.
    pub conflict_backoff: Duration,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            timeouts: RescaleTimeouts::default(),
            poll_interval: Duration::from_millis(500),
            conflict_retries: 3,
            conflict_backoff: Duration::from_secs(2),
        }
    }
}

/// Maps Flink's job state string to the core status.
pub fn job_status(state: &str) -> JobStatus {
    match state {
        "RUNNING" => JobStatus::Running,
        "RESTARTING" => JobStatus::Restarting,
        "FAILING" => JobStatus::Failing,
        "CANCELLING" => JobStatus::Cancelling,
        "CREATED" | "INITIALIZING" | "RECONCILING" => JobStatus::Created,
        _ => JobStatus::Other,
    }
}

/// True when every subtask of every vertex is RUNNING or FINISHED.
pub fn all_tasks_running(details: &JobDetails) -> bool {
    details.vertices.iter().all(|v| {
        let n = |s: &str| v.tasks.get(s).copied().unwrap_or(0);
        n("RUNNING") + n("FINISHED") == v.parallelism
    })
}

/// Per-vertex parallelism `p` for every vertex of `topology`, capped at each vertex's max.
pub fn uniform_parallelism(topology: &Topology, p: u32) -> BTreeMap<VertexId, u32> {
    topology
        .vertices
        .iter()
        .map(|v| (v.id.clone(), p.min(v.max_parallelism).max(1)))
        .collect()
}

/// A plan for `parallelism` with the TaskManager count the cluster's slots per
/// TaskManager imply (`slots_per_task_manager`, or the first registered TaskManager's).
pub async fn plan_for(
    client: &FlinkClient,
    topology: &Topology,
    parallelism: BTreeMap<VertexId, u32>,
    slots_per_task_manager: Option<u32>,
) -> Result<Plan, FlinkError> {
    let slots = match slots_per_task_manager {
        Some(s) => s,
        None => client
            .task_managers()
            .await?
            .first()
            .map(|t| t.slots_number)
            .ok_or_else(|| FlinkError::InvalidTarget {
                job_id: String::new(),
                message: "no TaskManager registered: cannot tell the slots per TaskManager".into(),
            })?,
    };
    Ok(Plan {
        task_managers: required_task_managers(topology, &parallelism, slots),
        parallelism,
    })
}

/// Reads everything the state machine needs at `now`. `numRestarts` and the exception
/// history are best effort (`None` when unreadable).
pub async fn observe(
    client: &FlinkClient,
    job_id: &JobId,
    now: DateTime<Utc>,
) -> Result<RescaleObservation, FlinkError> {
    let details = client.job(job_id).await?;
    let task_managers = client
        .task_managers()
        .await?
        .into_iter()
        .map(|t| TaskManagerSlots {
            id: t.id,
            slots_total: t.slots_number,
            slots_free: t.free_slots,
        })
        .collect();
    let num_restarts = client
        .job_metrics(job_id, &["numRestarts"])
        .await
        .ok()
        .and_then(|m| m.get("numRestarts").copied())
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| v as u64);
    let latest_exception_ms = match client.exceptions(job_id).await {
        Ok(h) => h.entries.iter().map(|e| e.timestamp).max(),
        Err(_) => None,
    };
    Ok(RescaleObservation {
        at: now,
        status: job_status(&details.state),
        terminal: is_terminal_state(&details.state),
        parallelism: details
            .vertices
            .iter()
            .map(|v| (VertexId::new(v.id.clone()), v.parallelism))
            .collect(),
        all_tasks_running: all_tasks_running(&details),
        task_managers,
        num_restarts,
        latest_exception_ms,
    })
}

/// An in-flight rescale of one job against a real cluster.
#[derive(Debug)]
pub struct Rescaler<'a> {
    client: &'a FlinkClient,
    rescale: Rescale,
    change: RequirementsChange,
    events: Vec<(DateTime<Utc>, RescaleEvent)>,
}

impl<'a> Rescaler<'a> {
    /// Starts a rescale of `job_id` to `target`: reads the current plan, checkpoint
    /// interval and failover baseline, then GET-edit-PUTs the requirements (unless dry
    /// run, which leaves the rescale `Pending`). `in_flight` is the job's previous rescale,
    /// if any: a non-terminal one refuses the start ([`FlinkError::RescaleInFlight`]).
    pub async fn start(
        client: &'a FlinkClient,
        job_id: &JobId,
        target: Plan,
        opts: &ApplyOptions,
        in_flight: Option<&Rescale>,
    ) -> Result<Self, FlinkError> {
        ensure_none_in_flight(in_flight).map_err(|f| FlinkError::RescaleInFlight {
            job_id: f.job_id.to_string(),
            phase: f.phase.as_str(),
        })?;
        let topology = client.topology(job_id).await?;
        let details = client.job(job_id).await?;
        if is_terminal_state(&details.state) {
            return Err(FlinkError::InvalidTarget {
                job_id: job_id.to_string(),
                message: format!("job is {}", details.state),
            });
        }
        let registered = u32::try_from(client.task_managers().await?.len()).unwrap_or(u32::MAX);
        let from = Plan {
            parallelism: topology.parallelism(),
            task_managers: registered,
        };
        let interval = client.checkpoint_interval(job_id).await?;
        let baseline = observe(client, job_id, Utc::now()).await?;
        let watch = FailoverWatch::new(baseline.num_restarts, baseline.latest_exception_ms);
        let max_parallelism: BTreeMap<VertexId, u32> = topology
            .vertices
            .iter()
            .map(|v| (v.id.clone(), v.max_parallelism))
            .collect();
        let mut rescale = Rescale::new(
            job_id.clone(),
            from,
            target,
            Utc::now(),
            &opts.timeouts,
            interval,
            watch,
        );
        let mut attempt = 0;
        let change = loop {
            match apply_target(
                client,
                job_id,
                &rescale.to.parallelism,
                &max_parallelism,
                opts.dry_run,
            )
            .await
            {
                Err(FlinkError::Conflict { .. }) if attempt < opts.conflict_retries => {
                    attempt += 1;
                    tracing::info!(
                        job_id = %job_id,
                        attempt,
                        "resource requirements update in progress (409); retrying"
                    );
                    tokio::time::sleep(opts.conflict_backoff).await;
                }
                other => break other?,
            }
        };
        let mut events = Vec::new();
        if !matches!(change, RequirementsChange::WouldUpdate(_)) {
            let now = Utc::now();
            events.extend(rescale.accepted(now).into_iter().map(|e| (now, e)));
        }
        tracing::info!(
            job_id = %job_id,
            direction = rescale.direction.as_str(),
            from_tms = rescale.from.task_managers,
            to_tms = rescale.to.task_managers,
            dry_run = opts.dry_run,
            "rescale started"
        );
        Ok(Self {
            client,
            rescale,
            change,
            events,
        })
    }

    /// Observes the cluster once and advances the state machine. A vanished job aborts the
    /// rescale; other read errors are returned (the rescale stays as it was).
    pub async fn poll(&mut self) -> Result<Vec<RescaleEvent>, FlinkError> {
        if self.rescale.phase.is_terminal() || self.rescale.phase == RescalePhase::Pending {
            return Ok(Vec::new());
        }
        let now = Utc::now();
        let events = match observe(self.client, &self.rescale.job_id, now).await {
            Ok(obs) => self.rescale.observe(&obs),
            Err(FlinkError::JobGone { .. }) => self.rescale.job_gone(now),
            Err(e) => {
                // a timeout still counts against the deadline
                if now >= self.rescale.deadline {
                    let phase = self.rescale.phase;
                    self.rescale.phase = RescalePhase::TimedOut;
                    self.rescale.finished_at = Some(now);
                    vec![RescaleEvent::TimedOut { phase }]
                } else {
                    return Err(e);
                }
            }
        };
        for e in &events {
            match e {
                RescaleEvent::Failover(c) => {
                    tracing::warn!(job_id = %self.rescale.job_id, cause = c.as_str(), "failover during rescale")
                }
                RescaleEvent::TimedOut { phase } => {
                    tracing::warn!(job_id = %self.rescale.job_id, phase = phase.as_str(), "rescale timed out")
                }
                other => {
                    tracing::info!(job_id = %self.rescale.job_id, event = ?other, "rescale progress")
                }
            }
        }
        self.events.extend(events.iter().cloned().map(|e| (now, e)));
        Ok(events)
    }

    /// The rescale (phase, plans, timestamps).
    pub fn rescale(&self) -> &Rescale {
        &self.rescale
    }

    /// The current phase.
    pub fn phase(&self) -> RescalePhase {
        self.rescale.phase
    }

    /// What the requirements step did (or would do in dry run).
    pub fn change(&self) -> &RequirementsChange {
        &self.change
    }

    /// The TaskManager count to report to KEDA now.
    pub fn task_managers_to_report(&self) -> u32 {
        self.rescale.task_managers_to_report()
    }

    /// Consumes the driver into its outcome.
    pub fn into_outcome(self) -> RescaleOutcome {
        let put_to_running = match (self.rescale.accepted_at, self.rescale.reached_at) {
            (Some(a), Some(r)) => (r - a).to_std().ok(),
            _ => None,
        };
        RescaleOutcome {
            rescale: self.rescale,
            change: self.change,
            events: self.events,
            put_to_running,
        }
    }
}

/// The result of [`apply_and_wait`].
#[derive(Debug, Clone)]
pub struct RescaleOutcome {
    /// The final state of the rescale.
    pub rescale: Rescale,
    /// What the requirements step did.
    pub change: RequirementsChange,
    /// Everything that happened, with times.
    pub events: Vec<(DateTime<Utc>, RescaleEvent)>,
    /// Time from the accepted PUT to RUNNING at the target parallelism.
    pub put_to_running: Option<Duration>,
}

impl RescaleOutcome {
    /// Failovers seen while rescaling.
    pub fn failovers(&self) -> usize {
        self.events
            .iter()
            .filter(|(_, e)| matches!(e, RescaleEvent::Failover(_)))
            .count()
    }
}

/// Applies `target` to `job_id` and waits until the rescale is terminal (Completed,
/// TimedOut or Aborted). In dry run it returns at once with the rescale `Pending` and the
/// body that would be PUT. Read errors while waiting are logged and retried until the
/// deadline.
pub async fn apply_and_wait(
    client: &FlinkClient,
    job_id: &JobId,
    target: Plan,
    opts: &ApplyOptions,
) -> Result<RescaleOutcome, FlinkError> {
    let mut r = Rescaler::start(client, job_id, target, opts, None).await?;
    if opts.dry_run {
        return Ok(r.into_outcome());
    }
    loop {
        if let Err(e) = r.poll().await {
            tracing::warn!(job_id = %job_id, error = %e, kind = e.kind(), "rescale observation failed");
        }
        if r.phase().is_terminal() {
            return Ok(r.into_outcome());
        }
        tokio::time::sleep(opts.poll_interval).await;
    }
}

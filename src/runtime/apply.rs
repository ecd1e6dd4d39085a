//! The rescale driver: runs the pure [`crate::core::rescale`] state machine against a
//! real cluster through the Flink adapter. It reads the job, PUTs the new requirements
//! (GET-edit-PUT of every vertex, retrying a 409 after a backoff; or only computes them
//! in dry-run mode) and feeds observations of the cluster into the state machine until it
//! completes, times out or aborts. Used by the `rescale` CLI, `POST /admin/rescale` and
//! automatic decisions alike.
//!
//! ```text
//! Rescaler::start(client, job, target, opts)   GET job/topology/TMs/ckpt interval/baseline, PUT
//!   loop: rescaler.poll()                      GET job, TMs, numRestarts, exceptions → events
//!         rescaler.task_managers_to_report()   → KEDA
//! raise(client, rescale, target, opts)        a scale-up still waiting for its slots: PUT more
//! apply_and_wait(...) = start + poll until terminal
//! ```

mod nudge;
mod reactive;

pub use nudge::{CheckpointNudger, NudgeTarget};

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, Utc};

use crate::{
    core::{
        rescale::{ensure_none_in_flight, FailoverWatch},
        slots_needed, JobId, Plan, Rescale, RescaleEvent, RescalePhase, RescaleTimeouts, Topology,
        VertexId,
    },
    flink::{
        apply_target, is_terminal_state, observe_rescale_with, FlinkClient, FlinkError,
        RequirementsChange, VertexLimit,
    },
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
    /// Read Flink 2.3's rescale history to tell failovers exactly (only when it is on:
    /// `web.adaptive-scheduler.rescale-history.size` > 0).
    pub rescale_history: bool,
    /// Longest wait for the checkpoint before a reactive scale-down.
    pub checkpoint_timeout: Duration,
    /// Trigger the checkpoint a Flink 2.x rescale waits for as soon as the job holds the
    /// new slots ([`CheckpointNudger`]; the caller knows the line from the JobManager's
    /// set-up: [`crate::flink::FlinkSetup::rescales_at_checkpoints`]).
    pub checkpoint_nudge: bool,
    /// Time between the nudge's reads of the job and its TaskManagers.
    pub nudge_poll: Duration,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            timeouts: RescaleTimeouts::default(),
            poll_interval: Duration::from_millis(500),
            conflict_retries: 3,
            conflict_backoff: Duration::from_secs(2),
            rescale_history: false,
            checkpoint_timeout: Duration::from_secs(30),
            checkpoint_nudge: false,
            nudge_poll: Duration::from_millis(500),
        }
    }
}

/// Why a rescale could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A rescale of this job is already in flight.
    #[error("a rescale of job {job_id} is already in flight (phase {})", phase.as_str())]
    InFlight {
        /// The job.
        job_id: JobId,
        /// The phase of the rescale in flight.
        phase: RescalePhase,
    },
    /// Flink REST failed or refused the target.
    #[error(transparent)]
    Flink(#[from] FlinkError),
}

impl ApplyError {
    /// A bounded label value for metrics (the Flink error's kind for Flink failures).
    pub fn kind(&self) -> &'static str {
        match self {
            ApplyError::InFlight { .. } => "rescale_in_flight",
            ApplyError::Flink(e) => e.kind(),
        }
    }
}

/// The job as a rescale starts from: its plan, topology, each vertex's max parallelism,
/// the checkpoint interval and the failover baseline.
struct Start {
    from: Plan,
    topology: Topology,
    max_parallelism: BTreeMap<VertexId, VertexLimit>,
    checkpoint_interval: Option<Duration>,
    watch: FailoverWatch,
}

/// Reads [`Start`]; a job in a terminal state cannot be rescaled. With `history` the
/// failover baseline is Flink 2.3's rescale history (exact), when readable.
async fn read_start(
    client: &FlinkClient,
    job_id: &JobId,
    history: bool,
) -> Result<Start, FlinkError> {
    let topology = client.topology(job_id).await?;
    let details = client.job(job_id).await?;
    if is_terminal_state(&details.state) {
        return Err(FlinkError::InvalidTarget {
            job_id: job_id.to_string(),
            message: format!("job is {}", details.state),
        });
    }
    let registered = u32::try_from(client.task_managers().await?.len()).unwrap_or(u32::MAX);
    let checkpoint_interval = client.checkpoint_interval(job_id).await?;
    let baseline = observe_rescale_with(client, job_id, Utc::now(), history).await?;
    Ok(Start {
        from: Plan {
            parallelism: topology.parallelism(),
            task_managers: registered,
        },
        max_parallelism: max_parallelism(&topology),
        topology,
        checkpoint_interval,
        watch: baseline.failover_baseline(),
    })
}

/// The first steps of every start: refuse a start while one is in flight, read the job
/// as it starts, build the rescale and record its plans on the current span. The returned
/// [`Start`] keeps the max parallelism and checkpoint interval (its plan is in the rescale).
async fn begin(
    client: &FlinkClient,
    job_id: &JobId,
    target: Plan,
    opts: &ApplyOptions,
    in_flight: Option<&Rescale>,
) -> Result<(Rescale, Start), ApplyError> {
    ensure_none_in_flight(in_flight).map_err(|f| ApplyError::InFlight {
        job_id: f.job_id,
        phase: f.phase,
    })?;
    let start = read_start(client, job_id, opts.rescale_history).await?;
    let rescale = Rescale::new(
        job_id.clone(),
        start.from.clone(),
        target,
        Utc::now(),
        &opts.timeouts,
        start.checkpoint_interval,
        start.watch.clone(),
    );
    let span = tracing::Span::current();
    span.record("from_tms", rescale.from.task_managers);
    span.record("direction", rescale.direction.as_str());
    Ok((rescale, start))
}

fn max_parallelism(topology: &Topology) -> BTreeMap<VertexId, VertexLimit> {
    topology
        .vertices
        .iter()
        .map(|v| {
            let limit = VertexLimit {
                name: v.name.clone(),
                max_parallelism: v.max_parallelism,
            };
            (v.id.clone(), limit)
        })
        .collect()
}

/// GET-edit-PUT of the target parallelism; a 409 (another update in progress) is retried
/// `conflict_retries` times after `conflict_backoff`.
async fn put_target(
    client: &FlinkClient,
    job_id: &JobId,
    target: &BTreeMap<VertexId, u32>,
    max_parallelism: &BTreeMap<VertexId, VertexLimit>,
    opts: &ApplyOptions,
) -> Result<RequirementsChange, FlinkError> {
    let mut attempt = 0;
    loop {
        match apply_target(client, job_id, target, max_parallelism, opts.dry_run).await {
            Err(FlinkError::Conflict { .. }) if attempt < opts.conflict_retries => {
                attempt += 1;
                tracing::info!(
                    attempt,
                    "resource requirements update in progress (409); retrying"
                );
                tokio::time::sleep(opts.conflict_backoff).await;
            }
            other => return other,
        }
    }
}

/// Raises a scale-up still waiting for its TaskManagers to `target`
/// ([`crate::core::rescale::raise`]): GET-edit-PUTs the new requirements as a start does
/// (retrying a 409) and returns the event, with a new checkpoint nudge for the new slots on
/// Flink 2.x (`opts.checkpoint_nudge`; the caller drops the previous one). On an error the
/// rescale is left as it was.
#[tracing::instrument(
    name = "rescale_raise",
    skip_all,
    fields(job_id = %rescale.job_id, from_tms = rescale.to.task_managers, to_tms = target.task_managers)
)]
pub async fn raise(
    client: &FlinkClient,
    rescale: &mut Rescale,
    target: Plan,
    opts: &ApplyOptions,
) -> Result<(RescaleEvent, Option<CheckpointNudger>), ApplyError> {
    let job_id = rescale.job_id.clone();
    let topology = client.topology(&job_id).await?;
    let checkpoint_interval = client.checkpoint_interval(&job_id).await?;
    let limits = max_parallelism(&topology);
    put_target(client, &job_id, &target.parallelism, &limits, opts).await?;
    let event = rescale.raise(target, Utc::now());
    let nudger = (opts.checkpoint_nudge && checkpoint_interval.is_some())
        .then(|| spawn_nudge(client, rescale, &topology, opts));
    tracing::info!(checkpoint_nudge = nudger.is_some(), "scale-up raised");
    Ok((event, nudger))
}

/// An in-flight rescale of one job against a real cluster.
#[derive(Debug)]
pub struct Rescaler<'a> {
    client: &'a FlinkClient,
    rescale: Rescale,
    change: RequirementsChange,
    events: Vec<(DateTime<Utc>, RescaleEvent)>,
    /// Reactive scale-down: the checkpoint taken right before it.
    checkpoint_before: Option<u64>,
    /// Flink 2.x: the checkpoint the rescale waits for, triggered when the slots are there.
    nudger: Option<CheckpointNudger>,
}

impl<'a> Rescaler<'a> {
    /// Starts a rescale of `job_id` to `target`: reads the current plan, checkpoint
    /// interval and failover baseline, then GET-edit-PUTs the requirements (unless dry
    /// run, which leaves the rescale `Pending`). `in_flight` is the job's previous rescale,
    /// if any: a non-terminal one refuses the start ([`ApplyError::InFlight`]).
    #[tracing::instrument(
        name = "rescale_start",
        skip_all,
        fields(
            job_id = %job_id,
            from_tms = tracing::field::Empty,
            to_tms = target.task_managers,
            direction = tracing::field::Empty,
            dry_run = opts.dry_run,
        )
    )]
    pub async fn start(
        client: &'a FlinkClient,
        job_id: &JobId,
        target: Plan,
        opts: &ApplyOptions,
        in_flight: Option<&Rescale>,
    ) -> Result<Self, ApplyError> {
        let (mut rescale, start) = begin(client, job_id, target, opts, in_flight).await?;
        let change = put_target(
            client,
            job_id,
            &rescale.to.parallelism,
            &start.max_parallelism,
            opts,
        )
        .await?;
        let mut events = Vec::new();
        if !matches!(change, RequirementsChange::WouldUpdate(_)) {
            let now = Utc::now();
            events.extend(rescale.accepted(now).into_iter().map(|e| (now, e)));
        }
        let nudger = nudge_for(client, &rescale, &change, &start, opts);
        tracing::info!(checkpoint_nudge = nudger.is_some(), "rescale started");
        Ok(Self {
            client,
            rescale,
            change,
            events,
            checkpoint_before: None,
            nudger,
        })
    }

    /// Observes the cluster once and advances the state machine. A vanished job aborts the
    /// rescale; other read errors are returned (the rescale stays as it was).
    #[tracing::instrument(
        name = "rescale_poll",
        skip_all,
        fields(
            job_id = %self.rescale.job_id,
            direction = self.rescale.direction.as_str(),
            from_tms = self.rescale.from.task_managers,
            to_tms = self.rescale.to.task_managers,
        )
    )]
    pub async fn poll(&mut self) -> Result<Vec<RescaleEvent>, FlinkError> {
        if self.rescale.phase.is_terminal() || self.rescale.phase == RescalePhase::Pending {
            return Ok(Vec::new());
        }
        let now = Utc::now();
        let history = self.rescale.exact_failovers();
        let observed = observe_rescale_with(self.client, &self.rescale.job_id, now, history).await;
        let events = match observed {
            Ok(obs) => self.rescale.observe(&obs),
            Err(FlinkError::JobGone { .. }) => self.rescale.job_gone(now),
            // a read error still counts against the deadline
            Err(_) if now >= self.rescale.deadline => self.time_out(now),
            Err(e) => return Err(e),
        };
        log_events(&events);
        self.events.extend(events.iter().cloned().map(|e| (now, e)));
        Ok(events)
    }

    fn time_out(&mut self, now: DateTime<Utc>) -> Vec<RescaleEvent> {
        let phase = self.rescale.phase;
        self.rescale.phase = RescalePhase::TimedOut;
        self.rescale.finished_at = Some(now);
        vec![RescaleEvent::TimedOut { phase }]
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

    /// The checkpoint nudge of this rescale, taken out to outlive the driver (the worker
    /// keeps it while the rescale is in flight).
    pub fn take_nudger(&mut self) -> Option<CheckpointNudger> {
        self.nudger.take()
    }

    /// Reactive scale-down: the checkpoint taken right before it (None: not taken).
    pub fn checkpoint_before(&self) -> Option<u64> {
        self.checkpoint_before
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
            checkpoint_before: self.checkpoint_before,
        }
    }
}

/// The nudge of a rescale of a job with checkpointing, when the caller asked for it and
/// the requirements are in place: PUT now, or already (a native FlinkDeployment's operator
/// may PUT the same overrides first; the job still waits for its checkpoint). A job that
/// already runs the target ends the nudge at its first read.
fn nudge_for(
    client: &FlinkClient,
    rescale: &Rescale,
    change: &RequirementsChange,
    start: &Start,
    opts: &ApplyOptions,
) -> Option<CheckpointNudger> {
    let wanted = opts.checkpoint_nudge
        && !matches!(change, RequirementsChange::WouldUpdate(_))
        && start.checkpoint_interval.is_some();
    wanted.then(|| spawn_nudge(client, rescale, &start.topology, opts))
}

/// The nudge of `rescale`'s target on `topology`, until its deadline.
fn spawn_nudge(
    client: &FlinkClient,
    rescale: &Rescale,
    topology: &Topology,
    opts: &ApplyOptions,
) -> CheckpointNudger {
    let target = NudgeTarget {
        job_id: rescale.job_id.clone(),
        parallelism: rescale.to.parallelism.clone(),
        slots: slots_needed(topology, &rescale.to.parallelism),
    };
    let left = (rescale.deadline - Utc::now()).to_std().unwrap_or_default();
    CheckpointNudger::spawn(client.clone(), target, left, opts.nudge_poll)
}

fn log_events(events: &[RescaleEvent]) {
    for e in events {
        match e {
            RescaleEvent::Failover(c) => {
                tracing::warn!(cause = c.as_str(), "failover during rescale")
            }
            RescaleEvent::TimedOut { phase } => {
                tracing::warn!(phase = phase.as_str(), "rescale timed out")
            }
            other => tracing::info!(event = ?other, "rescale progress"),
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
    /// Reactive scale-down: the checkpoint taken right before it (None: not taken).
    pub checkpoint_before: Option<u64>,
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
) -> Result<RescaleOutcome, ApplyError> {
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

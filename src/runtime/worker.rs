//! The per-job tick. Once per `evaluation.interval` (every 2 s while a rescale is in
//! flight) a worker observes its job, runs the decision core, drives the in-place rescale
//! state machine, and publishes one [`Published`] value that answers every GetMetrics,
//! IsActive and HPA call until the next tick.
//!
//! What is reported to KEDA is never below what the job's running parallelism needs: a
//! scale-down lowers Flink's requirements first and the count KEDA sees drops only when
//! the surplus TaskManagers hold no slots (see [`crate::core::rescale`]).

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{
    apply::{ApplyOptions, Rescaler},
    context::Context,
    persist::PersistState,
    pipeline::{self, flink_error, Observed, QuerySummary},
    settings::{self, JobSettings},
};
use crate::{
    core::{
        self, rescale::RescaleEvent, Decision, JobState, Observation, Plan, Policy, Rescale,
        RescaleTimeouts, Rule,
    },
    exporter::{JobKey, RescaleOutcome, SignalValues},
    flink::{self, FlinkClient, FlinkError},
    keda::{EvalError, Evaluation, ScalerTarget},
};

/// Poll interval while a rescale is in flight.
const IN_FLIGHT_POLL: Duration = Duration::from_secs(2);

/// The result of one tick, shared with every rpc until the next one.
#[derive(Debug, Clone)]
pub struct Published {
    /// What KEDA gets.
    pub result: Result<Evaluation, EvalError>,
    /// The inputs, decision and rescale state, for `/debug/jobs`.
    pub report: Arc<JobReport>,
}

/// What `/debug/jobs` shows for one ScaledObject.
#[derive(Debug, Clone, Serialize)]
pub struct JobReport {
    /// `namespace/name` of the ScaledObject.
    pub scaled_object: String,
    /// JobManager URL, when resolved.
    pub flink_url: Option<String>,
    /// Flink job id, when resolved.
    pub job_id: Option<String>,
    /// Flink job name, when resolved.
    pub job_name: Option<String>,
    /// When this tick ran.
    pub evaluated_at: DateTime<Utc>,
    /// TaskManagers reported to KEDA (None on error).
    pub reported_task_managers: Option<u32>,
    /// The error KEDA gets, if any.
    pub error: Option<String>,
    /// The decision with its reasons.
    pub decision: Option<Decision>,
    /// The observation the decision used.
    pub observation: Option<Observation>,
    /// The rescale in flight (or just finished).
    pub rescale: Option<Rescale>,
    /// Prometheus queries of this tick.
    pub queries: Vec<QuerySummary>,
    /// Non-fatal signal issues.
    pub issues: Vec<String>,
    /// The effective policy.
    pub policy: Option<Policy>,
}

/// What a stopping worker hands to the next worker of the same ScaledObject.
#[derive(Debug)]
pub struct Carry {
    job_state: JobState,
    rescale: Option<Rescale>,
}

/// Per-job memory across ticks.
pub struct Worker {
    pub(super) ctx: Arc<Context>,
    pub(super) target: ScalerTarget,
    pub(super) job_state: JobState,
    pub(super) rescale: Option<Rescale>,
    pub(super) persist: PersistState,
    last_rule: Option<Rule>,
    registered_job: Option<String>,
    marked_pods: bool,
    warned: bool,
}

impl Worker {
    /// A worker for one ScaledObject.
    pub fn new(ctx: Arc<Context>, target: ScalerTarget) -> Self {
        Self {
            ctx,
            target,
            job_state: JobState::default(),
            rescale: None,
            persist: PersistState::default(),
            last_rule: None,
            registered_job: None,
            marked_pods: false,
            warned: false,
        }
    }

    /// How long to wait before the next tick.
    pub fn next_delay(&self) -> Duration {
        if self
            .rescale
            .as_ref()
            .is_some_and(|r| !r.phase.is_terminal())
        {
            IN_FLIGHT_POLL
        } else {
            self.ctx.config.evaluation.interval
        }
    }

    /// Continues from a previous worker's state (same ScaledObject, changed metadata).
    pub fn resume(&mut self, carry: Carry) {
        self.job_state = carry.job_state;
        self.rescale = carry.rescale;
    }

    /// The state to hand to the next worker.
    pub fn carry(self) -> Carry {
        Carry {
            job_state: self.job_state,
            rescale: self.rescale,
        }
    }

    /// Drops the job's metric series (when the worker stops).
    pub fn forget(&self) {
        if let Some(job) = &self.registered_job {
            self.ctx.metrics.remove_job(job);
        }
    }

    /// One tick: never panics; every network call inside is bounded by its client timeout.
    pub async fn tick(&mut self) -> Published {
        let now = Utc::now();
        let mut report = JobReport {
            scaled_object: self.target.to_string(),
            flink_url: None,
            job_id: None,
            job_name: None,
            evaluated_at: now,
            reported_task_managers: None,
            error: None,
            decision: None,
            observation: None,
            rescale: None,
            queries: Vec::new(),
            issues: Vec::new(),
            policy: None,
        };
        let result = self.evaluate(&mut report).await;
        match &result {
            Ok(e) => report.reported_task_managers = Some(e.task_managers),
            Err(e) => {
                report.error = Some(e.to_string());
                tracing::warn!(scaled_object = %self.target, code = ?e.code(), error = %e, "evaluation failed");
            }
        }
        Published {
            result,
            report: Arc::new(report),
        }
    }

    async fn evaluate(&mut self, report: &mut JobReport) -> Result<Evaluation, EvalError> {
        let settings = settings::resolve(&self.ctx, &self.target)?;
        report.flink_url = Some(settings.flink_url.clone());
        report.policy = Some(settings.policy.clone());
        self.warn_set_up(&settings).await;
        let client = self
            .ctx
            .flink_client(&settings.flink_url)
            .map_err(|e| flink_error(&settings.flink_url, e))?;
        let observed = pipeline::observe(&self.ctx, &settings, &client, &self.target.job).await?;
        report.job_id = Some(observed.observation.job_id.clone());
        report.job_name = Some(observed.observation.job_name.clone());
        report.queries = pipeline::query_summaries(&observed.queries);
        report.issues = observed.issues.clone();

        let now = Utc::now();
        let generation = settings.scale_target.as_ref().and_then(|t| t.generation);
        let current = self.current_plan(&observed, &settings.policy);
        let was_loaded = self.persist.loaded;
        self.persist_in(Some(&current), generation, now).await;
        if !was_loaded && self.persist.loaded {
            // Just became leader (or reloaded): a predecessor may have left
            // pod-deletion-cost annotations; reconcile them on this tick (they are
            // cleared when no surplus is left).
            self.marked_pods = true;
        }
        self.advance_rescale(
            &client,
            &observed.observation,
            settings.scale_target.as_ref(),
            now,
        )
        .await;

        let (decision, next_state) = core::decide(
            &observed.observation,
            &self.job_state,
            &settings.policy,
            now,
        );
        let in_flight = self
            .rescale
            .as_ref()
            .is_some_and(|r| !r.phase.is_terminal());
        if decision.target.is_none()
            && matches!(
                decision.main_rule(),
                Some(Rule::MissingSignal | Rule::InvalidTopology)
            )
        {
            self.record_metrics(&observed, &decision, None, &settings.policy);
            report.observation = Some(observed.observation);
            report.decision = Some(decision.clone());
            return Err(EvalError::Unavailable(format!(
                "no decision possible for job {}: {}",
                report.job_name.as_deref().unwrap_or("?"),
                decision.summary()
            )));
        }
        if !in_flight {
            // While a rescale runs, the state it decided stays; the next decision waits.
            self.job_state = next_state;
        }
        if decision.rescale && !in_flight && self.ctx.is_leader() {
            if let Some(target) = decision.target.clone() {
                if settings.policy.dry_run || self.claim(&decision, &target, generation).await {
                    self.start_rescale(&client, &settings, &observed, target, &decision)
                        .await;
                }
            }
        }
        self.log_decision(&observed.observation, &decision, settings.policy.dry_run);

        let reported = core::task_managers_to_report(
            &current,
            self.rescale.as_ref().filter(|r| !r.phase.is_terminal()),
        )
        .max(settings.policy.min_task_managers);
        self.record_metrics(&observed, &decision, Some(reported), &settings.policy);
        self.mark_pods(&settings, &observed, reported).await;
        report.rescale = self.rescale.clone();
        if self.rescale.as_ref().is_some_and(|r| r.phase.is_terminal()) {
            self.rescale = None;
        }
        self.persist_out().await;
        report.observation = Some(observed.observation);
        report.decision = Some(decision);
        Ok(Evaluation {
            task_managers: reported,
            active: reported > 0,
            evaluated_at: now,
        })
    }

    /// The plan the job runs at now, with the TaskManagers its parallelism needs.
    fn current_plan(&self, observed: &Observed, policy: &Policy) -> Plan {
        let obs = &observed.observation;
        let parallelism = obs.topology.parallelism();
        let task_managers = match policy.slots_per_task_manager.or(obs.slots_per_task_manager) {
            Some(slots) => core::required_task_managers(&obs.topology, &parallelism, slots),
            // No TaskManager registered: the job needs at least the minimum to start.
            None => policy.min_task_managers.max(1),
        };
        Plan {
            parallelism,
            task_managers,
        }
    }

    async fn advance_rescale(
        &mut self,
        client: &FlinkClient,
        obs: &Observation,
        scale_target: Option<&crate::kube::ScaleTarget>,
        now: DateTime<Utc>,
    ) {
        let Some(rescale) = self.rescale.as_mut() else {
            return;
        };
        if rescale.phase.is_terminal() {
            return;
        }
        let events = match flink::observe_rescale(client, &rescale.job_id, now).await {
            Ok(o) => rescale.observe(&o),
            Err(FlinkError::JobGone { .. }) => rescale.job_gone(now),
            Err(e) => {
                tracing::warn!(job = %obs.job_name, error = %e, "cannot observe the rescale; retrying next tick");
                Vec::new()
            }
        };
        let rescale = rescale.clone();
        if !self.ctx.is_leader() {
            return; // followers mirror the leader's state; only the leader records and publishes
        }
        for event in events {
            self.publish_event(scale_target, &rescale, &event).await;
            self.on_event(&rescale, obs, event, now);
        }
    }

    /// Once per worker (leader only): warns about scale-target set-ups where a replica
    /// change restarts the job (operator native mode, standalone without reactive) or
    /// `taskManager.replicas` is unset — in the log and as Warning Events.
    async fn warn_set_up(&mut self, settings: &JobSettings) {
        let (Some(k), Some(t)) = (self.ctx.kube.as_ref(), settings.scale_target.as_ref()) else {
            return;
        };
        if self.warned || t.warnings.is_empty() || !self.ctx.is_leader() {
            return;
        }
        for w in &t.warnings {
            tracing::warn!(scaled_object = %self.target, warning = w.message(), "scale target set-up");
        }
        match k.events.target_warnings(t).await {
            Ok(()) => self.warned = true,
            Err(e) => tracing::warn!(error = %e, "cannot write the set-up warning Events"),
        }
    }

    /// Kubernetes Events for the rescale lifecycle (leader only; no-op without Kubernetes).
    async fn publish_event(
        &self,
        scale_target: Option<&crate::kube::ScaleTarget>,
        rescale: &Rescale,
        event: &RescaleEvent,
    ) {
        let (Some(k), Some(t)) = (self.ctx.kube.as_ref(), scale_target) else {
            return;
        };
        let (phase, note) = match event {
            RescaleEvent::Completed { took_ms } => (
                crate::kube::RescalePhase::Completed,
                format!(
                    "in-place rescale {} → {} TaskManagers completed in {:.1}s",
                    rescale.from.task_managers,
                    rescale.to.task_managers,
                    *took_ms as f64 / 1000.0
                ),
            ),
            RescaleEvent::TimedOut { phase } => (
                crate::kube::RescalePhase::Failed,
                format!("rescale timed out in phase {}", phase.as_str()),
            ),
            RescaleEvent::Aborted { reason } => (
                crate::kube::RescalePhase::Failed,
                format!("rescale aborted: {reason}"),
            ),
            RescaleEvent::Failover(cause) => (
                crate::kube::RescalePhase::Failed,
                format!("failover during rescale: {}", cause.as_str()),
            ),
            _ => return,
        };
        if let Err(e) = k.events.rescale(t, phase, &note).await {
            tracing::warn!(error = %e, "cannot write the rescale Event");
        }
    }

    /// Marks idle TaskManager pods with the lowest pod-deletion-cost while KEDA is told
    /// fewer TaskManagers than are registered, so the ReplicaSet removes idle pods; clears
    /// the annotations once the surplus is gone (leader only).
    async fn mark_pods(&mut self, settings: &JobSettings, observed: &Observed, reported: u32) {
        let (Some(k), Some(t)) = (self.ctx.kube.clone(), settings.scale_target.as_ref()) else {
            return;
        };
        let Some(selector) = t.pod_selector.as_deref() else {
            return;
        };
        if !self.ctx.is_leader() {
            return;
        }
        let registered = u32::try_from(observed.task_managers.len()).unwrap_or(u32::MAX);
        let tms: Vec<crate::kube::TaskManagerSlots> = if registered > reported {
            observed
                .task_managers
                .iter()
                .map(|tm| crate::kube::TaskManagerSlots {
                    id: tm.id.clone(),
                    address: tm.path.clone(),
                    slots: tm.slots_number,
                    free_slots: tm.free_slots,
                })
                .collect()
        } else if self.marked_pods {
            Vec::new() // stale: clear
        } else {
            return;
        };
        match crate::kube::mark_deletion_costs(&k.client, &t.namespace, selector, &tms).await {
            Ok(r) => {
                self.marked_pods = !tms.is_empty();
                tracing::info!(scaled_object = %self.target, idle = ?r.idle, busy = ?r.busy, cleared = ?r.cleared, "pod-deletion-cost updated");
            }
            Err(e) => tracing::warn!(error = %e, "cannot update pod-deletion-cost"),
        }
    }

    fn key<'a>(&'a self, job: &'a str) -> JobKey<'a> {
        JobKey {
            scaled_object: &self.target.scaled_object,
            job,
        }
    }

    fn on_event(
        &self,
        rescale: &Rescale,
        obs: &Observation,
        event: RescaleEvent,
        now: DateTime<Utc>,
    ) {
        let m = &self.ctx.metrics;
        let job = obs.job_name.as_str();
        let secs = (now - rescale.started_at)
            .to_std()
            .unwrap_or_default()
            .as_secs_f64();
        match &event {
            RescaleEvent::Completed { .. } => {
                m.record_rescale(
                    &self.key(job),
                    rescale.direction,
                    RescaleOutcome::Succeeded,
                    Duration::from_secs_f64(secs),
                );
                tracing::info!(
                    job,
                    direction = rescale.direction.as_str(),
                    from = rescale.from.task_managers,
                    to = rescale.to.task_managers,
                    took_s = secs,
                    "rescale completed in place"
                );
            }
            RescaleEvent::TimedOut { phase } => {
                m.record_rescale(
                    &self.key(job),
                    rescale.direction,
                    RescaleOutcome::TimedOut,
                    Duration::from_secs_f64(secs),
                );
                tracing::error!(
                    job,
                    phase = phase.as_str(),
                    took_s = secs,
                    "rescale timed out; not retrying before the cooldown"
                );
            }
            RescaleEvent::Aborted { reason } => {
                m.record_rescale(
                    &self.key(job),
                    rescale.direction,
                    RescaleOutcome::Aborted,
                    Duration::from_secs_f64(secs),
                );
                tracing::warn!(job, reason = %reason, "rescale aborted");
            }
            RescaleEvent::Failover(cause) => {
                m.record_failover(job);
                tracing::error!(
                    job,
                    cause = cause.as_str(),
                    phase = rescale.phase.as_str(),
                    "failover during rescale (a restart that is not the rescale)"
                );
            }
            other => tracing::info!(job, event = ?other, "rescale progress"),
        }
    }

    async fn start_rescale(
        &mut self,
        client: &FlinkClient,
        settings: &JobSettings,
        observed: &Observed,
        target: Plan,
        decision: &Decision,
    ) {
        let job = observed.observation.job_name.clone();
        if settings.policy.dry_run {
            tracing::info!(job, to_task_managers = target.task_managers, reasons = %decision.summary(), "dry run: rescale computed, not applied");
            return;
        }
        let options = ApplyOptions {
            dry_run: false,
            timeouts: RescaleTimeouts {
                base: self.ctx.config.flink.rescale_timeout,
                ..RescaleTimeouts::default()
            },
            ..ApplyOptions::default()
        };
        match Rescaler::start(
            client,
            &observed.job_id,
            target,
            &options,
            self.rescale.as_ref(),
        )
        .await
        {
            Ok(r) => {
                let outcome = r.into_outcome();
                let rescale = outcome.rescale;
                self.ctx
                    .metrics
                    .set_last_rescale(&self.key(&job), rescale.started_at);
                tracing::info!(
                    job,
                    direction = rescale.direction.as_str(),
                    from = rescale.from.task_managers,
                    to = rescale.to.task_managers,
                    reasons = %decision.summary(),
                    "rescale started in place"
                );
                if let (Some(k), Some(t)) = (self.ctx.kube.as_ref(), settings.scale_target.as_ref())
                {
                    let note = format!(
                        "in-place rescale {} → {} TaskManagers started: {}",
                        rescale.from.task_managers,
                        rescale.to.task_managers,
                        decision.summary()
                    );
                    if let Err(e) = k
                        .events
                        .rescale(t, crate::kube::RescalePhase::Started, &note)
                        .await
                    {
                        tracing::warn!(error = %e, "cannot write the rescale Event");
                    }
                }
                self.rescale = Some(rescale);
            }
            Err(e) => {
                let direction = decision.direction;
                self.ctx.metrics.record_rescale(
                    &self.key(&job),
                    direction,
                    RescaleOutcome::Failed,
                    Duration::ZERO,
                );
                self.ctx
                    .metrics
                    .record_flink_error("resource_requirements", e.kind());
                tracing::error!(job, error = %e, "rescale could not be started");
                if let (Some(k), Some(t)) = (self.ctx.kube.as_ref(), settings.scale_target.as_ref())
                {
                    let note = format!("rescale could not be started: {e}");
                    if let Err(e) = k
                        .events
                        .rescale(t, crate::kube::RescalePhase::Failed, &note)
                        .await
                    {
                        tracing::warn!(error = %e, "cannot write the rescale Event");
                    }
                }
            }
        }
    }

    fn log_decision(&mut self, obs: &Observation, decision: &Decision, dry_run: bool) {
        let rule = decision.main_rule();
        if decision.rescale || rule != self.last_rule {
            tracing::info!(
                job = %obs.job_name,
                scaled_object = %self.target,
                rule = rule.map(Rule::as_str).unwrap_or("none"),
                direction = decision.direction.as_str(),
                from_task_managers = decision.current.task_managers,
                to_task_managers = decision.target.as_ref().map(|t| t.task_managers),
                rescale = decision.rescale,
                dry_run,
                reasons = %decision.summary(),
                "decision"
            );
        } else {
            tracing::debug!(job = %obs.job_name, reasons = %decision.summary(), "decision unchanged");
        }
        self.last_rule = rule;
    }

    fn record_metrics(
        &mut self,
        observed: &Observed,
        decision: &Decision,
        reported: Option<u32>,
        policy: &Policy,
    ) {
        let m = &self.ctx.metrics;
        let obs = &observed.observation;
        let job = obs.job_name.as_str();
        if self.registered_job.as_deref() != Some(job) {
            m.register_job(&self.key(job));
            self.registered_job = Some(job.to_string());
        }
        let key = self.key(job);
        m.set_task_manager_bounds(&key, policy.min_task_managers, policy.max_task_managers);
        m.record_decision_of(job, decision);
        m.set_current_task_managers(&key, obs.task_managers_registered.unwrap_or(0));
        if let Some(t) = &decision.target {
            m.set_desired_task_managers(&key, t.task_managers);
        }
        if let Some(r) = reported {
            m.set_reported_task_managers(&key, r);
        }
        let phase = self
            .rescale
            .as_ref()
            .filter(|r| !r.phase.is_terminal())
            .map(|r| r.phase.as_str());
        m.set_rescale_phase(job, phase);
        for v in &obs.topology.vertices {
            let desired = decision
                .target
                .as_ref()
                .and_then(|t| t.parallelism.get(&v.id).copied())
                .unwrap_or(v.parallelism);
            m.set_vertex_parallelism(job, v.id.as_str(), &v.name, desired, v.parallelism);
            if let Some(s) = obs.vertices.get(&v.id) {
                let busy = s.busy_ms_per_s.map(|b| b / 1000.0);
                let tpr = match (s.records_in_per_s, busy) {
                    (Some(r), Some(b)) if b > 0.0 => Some(r / b),
                    _ => None,
                };
                m.set_signals(
                    job,
                    v.id.as_str(),
                    &SignalValues {
                        pending_records: s.pending_records,
                        busy_ratio: busy,
                        true_processing_rate: tpr,
                        input_rate: s.records_in_per_s,
                    },
                );
            }
        }
    }
}

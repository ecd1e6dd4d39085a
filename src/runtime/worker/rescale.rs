//! The worker's side of an in-place rescale: start it through the rescale driver
//! ([`crate::runtime::apply::Rescaler`]) when a decision asks for it, advance it with one
//! observation per tick while it is in flight, and record how it ends (metrics, logs,
//! Events). Each start and advance runs in a span with the job, direction and plans.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Worker;
use crate::{
    core::{rescale::RescaleEvent, Decision, Observation, Plan, Rescale, RescaleTimeouts},
    exporter::RescaleOutcome,
    flink::{self, FlinkClient, FlinkError},
    kube::{RescalePhase as EventPhase, ScaleTarget},
    runtime::{
        apply::{ApplyError, ApplyOptions, Rescaler},
        pipeline::Observed,
        settings::JobSettings,
    },
};

impl Worker {
    /// Observes the rescale in flight once and handles what happened (leader only: the
    /// followers mirror the leader's state).
    pub(super) async fn advance_rescale(
        &mut self,
        client: &FlinkClient,
        observed: &Observed,
        scale_target: Option<&ScaleTarget>,
        now: DateTime<Utc>,
    ) {
        let Some(rescale) = self.rescale.as_mut().filter(|r| !r.phase.is_terminal()) else {
            return;
        };
        let obs = &observed.observation;
        let events = advance(client, observed, rescale, now).await;
        let rescale = rescale.clone();
        // the nudge ends with the rescale, and with the leadership (a follower writes nothing)
        let nudge_done = self.nudger.as_ref().is_some_and(|n| n.is_finished());
        if rescale.phase.is_terminal() || nudge_done || !self.ctx.is_leader() {
            self.nudger = None;
        }
        if !self.ctx.is_leader() {
            return; // followers mirror the leader's state; only the leader records and publishes
        }
        for event in events {
            self.publish_event(scale_target, &rescale, &event).await;
            self.on_event(&rescale, obs, event, now);
        }
    }

    /// Starts the rescale to `target` (a dry run only logs it).
    pub(super) async fn start_rescale(
        &mut self,
        client: &FlinkClient,
        settings: &JobSettings,
        observed: &Observed,
        target: Plan,
        decision: &Decision,
    ) {
        let job = observed.observation.job_name.as_str();
        if !self.apply_native(settings, job, &target, decision).await {
            return;
        }
        if settings.policy.dry_run {
            tracing::info!(to_task_managers = target.task_managers, reasons = %decision.summary(), "dry run: rescale computed, not applied");
            return;
        }
        let options = self.apply_options();
        let (id, in_flight) = (&observed.job_id, self.rescale.as_deref());
        let started = if self.flink_setup.reactive() {
            // never a PUT: Flink refuses it in reactive mode; the TaskManager count is the change
            Rescaler::start_reactive(client, id, target, &options, in_flight).await
        } else {
            Rescaler::start(client, id, target, &options, in_flight).await
        };
        match started {
            Ok(mut r) => {
                self.nudger = r.take_nudger();
                let rescale = r.into_outcome().rescale;
                self.on_started(settings, job, &rescale, decision).await;
                self.remember_requirements(&rescale.to.parallelism);
                self.rescale = Some(Box::new(rescale));
            }
            Err(e) => self.on_start_failed(settings, job, decision, &e).await,
        }
    }

    /// The rescale driver's options for this job: the configured timeout, and what the
    /// JobManager's set-up says (Flink 2.3's rescale history to tell failovers exactly,
    /// issue 13 §5; the checkpoint a Flink 2.x rescale waits for, triggered once the slots
    /// are there).
    pub(super) fn apply_options(&self) -> ApplyOptions {
        let setup = self.flink_setup.get();
        ApplyOptions {
            dry_run: false,
            timeouts: RescaleTimeouts {
                base: self.ctx.config.flink.rescale_timeout,
                ..RescaleTimeouts::default()
            },
            rescale_history: setup.is_some_and(flink::FlinkSetup::rescale_history),
            checkpoint_nudge: setup.is_some_and(flink::FlinkSetup::rescales_at_checkpoints),
            ..ApplyOptions::default()
        }
    }

    async fn on_started(
        &self,
        settings: &JobSettings,
        job: &str,
        rescale: &Rescale,
        decision: &Decision,
    ) {
        self.ctx
            .metrics
            .set_last_rescale(&self.key(job), rescale.started_at);
        tracing::info!(
            direction = rescale.direction.as_str(),
            from = rescale.from.task_managers,
            to = rescale.to.task_managers,
            reasons = %decision.summary(),
            "rescale started in place"
        );
        let note = format!(
            "in-place rescale {} → {} TaskManagers started: {}",
            rescale.from.task_managers,
            rescale.to.task_managers,
            decision.summary()
        );
        self.rescale_event(settings.scale_target.as_ref(), EventPhase::Started, &note)
            .await;
    }

    async fn on_start_failed(
        &self,
        settings: &JobSettings,
        job: &str,
        decision: &Decision,
        e: &ApplyError,
    ) {
        self.ctx.metrics.record_rescale(
            &self.key(job),
            decision.direction,
            RescaleOutcome::Failed,
            Duration::ZERO,
        );
        self.ctx
            .metrics
            .record_flink_error("resource_requirements", e.kind());
        tracing::error!(error = %e, "rescale could not be started");
        let note = format!("rescale could not be started: {e}");
        self.rescale_event(settings.scale_target.as_ref(), EventPhase::Failed, &note)
            .await;
    }

    /// Metrics and logs of one event of the rescale in flight.
    fn on_event(
        &self,
        rescale: &Rescale,
        obs: &Observation,
        event: RescaleEvent,
        now: DateTime<Utc>,
    ) {
        let job = obs.job_name.as_str();
        let took = (now - rescale.started_at).to_std().unwrap_or_default();
        let secs = took.as_secs_f64();
        let outcome = match &event {
            RescaleEvent::Completed { .. } => {
                tracing::info!(
                    direction = rescale.direction.as_str(),
                    from = rescale.from.task_managers,
                    to = rescale.to.task_managers,
                    took_s = secs,
                    "rescale completed in place"
                );
                RescaleOutcome::Succeeded
            }
            RescaleEvent::TimedOut { phase } => {
                tracing::error!(
                    phase = phase.as_str(),
                    took_s = secs,
                    "rescale timed out; not retrying before the cooldown"
                );
                RescaleOutcome::TimedOut
            }
            RescaleEvent::Aborted { reason } => {
                tracing::warn!(reason = %reason, "rescale aborted");
                RescaleOutcome::Aborted
            }
            RescaleEvent::Failover(cause) => {
                self.ctx.metrics.record_failover(&self.key(job));
                tracing::error!(
                    cause = cause.as_str(),
                    phase = rescale.phase.as_str(),
                    "failover during rescale (a restart that is not the rescale)"
                );
                return;
            }
            other => {
                tracing::info!(event = ?other, "rescale progress");
                return;
            }
        };
        self.ctx
            .metrics
            .record_rescale(&self.key(job), rescale.direction, outcome, took);
    }
}

/// One observation of the rescale in flight through the state machine: on the tick's
/// fresh reads (the job's details and the JobManager's TaskManagers, shared by the jobs
/// of the JobManager in flight) plus the job's failover signals, or all read now when the
/// tick's were not fresh (a rescale resumed from persisted state). A vanished job aborts
/// it; another read error leaves it as it was until the next tick.
#[tracing::instrument(
    name = "rescale_advance",
    skip_all,
    fields(
        job_id = %rescale.job_id,
        direction = rescale.direction.as_str(),
        from_tms = rescale.from.task_managers,
        to_tms = rescale.to.task_managers,
    )
)]
async fn advance(
    client: &FlinkClient,
    observed: &Observed,
    rescale: &mut Rescale,
    now: DateTime<Utc>,
) -> Vec<RescaleEvent> {
    let history = rescale.exact_failovers();
    let read = if observed.fresh && observed.job_id == rescale.job_id {
        let (details, tms) = (&observed.details, &observed.task_managers);
        Ok(flink::observe_rescale_from(client, details, tms, now, history).await)
    } else {
        flink::observe_rescale_with(client, &rescale.job_id, now, history).await
    };
    match read {
        Ok(o) => rescale.observe(&o),
        Err(FlinkError::JobGone { .. }) => rescale.job_gone(now),
        Err(e) => {
            tracing::warn!(error = %e, "cannot observe the rescale; retrying next tick");
            Vec::new()
        }
    }
}

//! The tick: resolve the job's settings, observe it (Flink REST + Prometheus), load or
//! mirror the persisted state, advance a rescale in flight, decide, start a rescale when
//! the decision says so (leader only, after claiming it) or raise a scale-up still
//! waiting for its TaskManagers, and publish what KEDA gets.
//! Every log line of a tick carries the `tick` span's `scaled_object`, and its `job_id`
//! and `job_name` from the moment the job is resolved.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::field::Empty;

use super::{
    report::{JobReport, StoredReport},
    Published, Worker,
};
use crate::{
    core::{self, Decision, JobState, Plan, Policy, Rule},
    flink::FlinkClient,
    keda::{EvalError, Evaluation},
    runtime::{
        flink_setup,
        pipeline::{self, flink_error, Observed},
        settings::{self, JobSettings},
    },
};

impl Worker {
    /// One tick: never panics; every network call inside is bounded by its client timeout.
    #[tracing::instrument(
        name = "tick",
        skip_all,
        fields(scaled_object = %self.target, job_id = Empty, job_name = Empty)
    )]
    pub async fn tick(&mut self) -> Published {
        let now = Utc::now();
        let mut report = JobReport::new(&self.target, now);
        let result = self.evaluate(&mut report).await;
        self.progress.clear();
        match &result {
            Ok(e) => report.reported_task_managers = Some(e.task_managers),
            Err(e) => {
                report.error = Some(e.to_string());
                tracing::warn!(code = ?e.code(), error = %e, "evaluation failed");
            }
        }
        Published {
            result,
            report: Arc::new(StoredReport::new(&report)),
        }
    }

    async fn evaluate(&mut self, report: &mut JobReport) -> Result<Evaluation, EvalError> {
        let settings = settings::resolve(&self.ctx, &self.target)?;
        report.flink_url = Some(settings.flink_url.clone());
        report.policy = Some(settings.policy.clone());
        self.persist.owner_uid = settings
            .scale_target
            .as_ref()
            .and_then(|t| t.scaled_object_uid.clone());
        self.warn_set_up(&settings).await;
        self.refuse_native(&settings).await?;
        let client = self
            .ctx
            .flink_client(&settings.flink_url)
            .map_err(|e| flink_error(&settings.flink_url, e))?;
        // Fresh reads only while a rescale is in flight; else this slot's shared reads.
        let fresh = self.in_flight();
        let mut observed = pipeline::observe_with(
            &self.ctx,
            &settings,
            &client,
            &self.target.job,
            &mut self.rest_view,
            fresh,
            &self.progress,
        )
        .await?;
        self.remember_slots(&mut observed.observation);
        report.observed(&observed);
        self.progress.set(format!(
            "Flink REST {} has not answered (the JobManager's set-up, resource requirements or a rescale of job {})",
            settings.flink_url, observed.job_id
        ));
        self.read_flink_setup(&client, &settings, &observed, report)
            .await;

        let now = Utc::now();
        let generation = settings.scale_target.as_ref().and_then(|t| t.generation);
        let current = self.current_plan(&observed, &settings.policy);
        self.sync_persisted(&current, generation, now).await;
        // a rescale resumed from persisted state holds the job's claim too
        self.sync_claim(&observed.job_id);
        self.advance_rescale(&client, &observed, settings.scale_target.as_ref(), now)
            .await;

        // a scale-up still waiting for its TaskManagers is decided on again (it may be raised)
        self.follow_raise(&settings, &observed);
        let (decision, next_state) = flink_setup::decide(
            self.flink_setup.get(),
            &observed.observation,
            &self.decision_state(),
            &settings.policy,
            now,
        );
        if undecidable(&decision) {
            self.record_metrics(&observed, &decision, None, &settings.policy);
            let error = EvalError::unavailable(format!(
                "no decision possible for job {}: {}",
                observed.observation.job_name,
                decision.summary()
            ));
            report.observation = Some(observed.observation);
            report.decision = Some(decision);
            return Err(error);
        }
        self.act(
            &client, &settings, &observed, &decision, next_state, generation,
        )
        .await;
        let reported = self
            .publish(&client, &settings, &observed, &decision)
            .await?;
        report.rescale = self.rescale.as_deref().cloned();
        if self.rescale.as_ref().is_some_and(|r| r.phase.is_terminal()) {
            self.rescale = None;
        }
        self.sync_claim(&observed.job_id);
        self.persist_out().await;
        report.observation = Some(observed.observation);
        report.decision = Some(decision);
        Ok(Evaluation {
            task_managers: reported,
            active: reported > 0,
            evaluated_at: now,
        })
    }

    /// Loads (leader) or mirrors (follower) the persisted state before deciding.
    async fn sync_persisted(
        &mut self,
        current: &Plan,
        generation: Option<i64>,
        now: DateTime<Utc>,
    ) {
        let was_loaded = self.persist.loaded;
        self.persist_in(Some(current), generation, now).await;
        if !was_loaded && self.persist.loaded {
            // Just became leader (or reloaded): a predecessor may have left
            // pod-deletion-cost annotations; reconcile them on this tick (they are
            // cleared when no surplus is left).
            self.marked_pods = true;
        }
    }

    /// Keeps the decided state (unless a rescale is in flight) and starts the rescale the
    /// decision asks for (leader only; claimed first unless dry run).
    async fn act(
        &mut self,
        client: &FlinkClient,
        settings: &JobSettings,
        observed: &Observed,
        decision: &Decision,
        next_state: JobState,
        generation: Option<i64>,
    ) {
        let in_flight = self.in_flight();
        if in_flight {
            self.raise_if_needed(client, settings, decision, &next_state)
                .await;
        }
        let dry_run = settings.policy.dry_run;
        let wants = decision.rescale && !in_flight && self.ctx.is_leader();
        let target = decision.target.clone().filter(|_| wants);
        // Another rescale of the job (a manual one) holds its claim: this decision waits,
        // and the core's state stays as if it had not been made (no cooldown starts).
        let deferred = target.is_some() && !dry_run && self.defer(&observed.job_id);
        if !in_flight && !deferred {
            // While a rescale runs, the state it decided stays; the next decision waits.
            self.job_state = next_state;
        }
        if let Some(target) = target.filter(|_| !deferred) {
            if dry_run || self.claim(decision, &target, generation).await {
                self.start_rescale(client, settings, observed, target, decision)
                    .await;
            }
            self.sync_claim(&observed.job_id);
        }
        self.log_decision(decision, settings.policy.dry_run);
    }

    /// The TaskManagers KEDA gets ([`core::task_managers_to_report`]: never below what
    /// the running parallelism or the job's requirements need, plus the spare, monotone
    /// during a drain), recorded in the metrics and the pod-deletion-costs (the spare is
    /// reported, so never marked as surplus).
    async fn publish(
        &mut self,
        client: &FlinkClient,
        settings: &JobSettings,
        observed: &Observed,
        decision: &Decision,
    ) -> Result<u32, EvalError> {
        let min = settings.policy.min_task_managers;
        let (reported, spare) = if let Some(pinned) = Self::native_report(settings) {
            // a native FlinkDeployment: its pinned replicas (the operator owns the pods)
            (pinned.max(min), 0)
        } else if self.flink_setup.reactive() {
            let current = self.current_plan(observed, &settings.policy);
            (self.reactive_report(&current).max(min), 0)
        } else {
            let r = self
                .report_count(client, observed, &settings.policy)
                .await?;
            (r.task_managers, r.spare)
        };
        self.record_metrics(observed, decision, Some(reported), &settings.policy);
        self.ctx
            .metrics
            .set_spare_task_managers(&self.key(&observed.observation.job_name), spare);
        self.mark_pods(client, settings, observed, reported).await;
        Ok(reported)
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
}

/// A decision without a target because a signal is missing or the topology is unusable:
/// KEDA gets UNAVAILABLE (its fallback acts), never a guess.
fn undecidable(decision: &Decision) -> bool {
    decision.target.is_none()
        && matches!(
            decision.main_rule(),
            Some(Rule::MissingSignal | Rule::InvalidTopology)
        )
}

//! The worker's side of raising a scale-up still waiting for its TaskManagers
//! ([`crate::core::rescale::raise`]): while the rescale in flight may be raised, the tick
//! decides on the raise's own windows (no cooldown: it is the same rescale) and, when a
//! settled decision needs more, PUTs the higher requirements, records the raise in the
//! job's state and tells the log and the scale target's Events. Leader only, never in a
//! dry run, in reactive mode (no PUT at all) or for a FlinkDeployment the operator applies.

use super::Worker;
use crate::{
    core::{
        rescale::raise::{raisable, raised_plan, RaiseMemory},
        Decision, JobState,
    },
    flink::FlinkClient,
    kube::RescalePhase as EventPhase,
    runtime::{apply, pipeline::Observed, settings::JobSettings},
};

impl Worker {
    /// Opens, keeps or ends the raise memory for this tick: kept while the rescale in
    /// flight may be raised, dropped (a fresh one next time) as soon as it may not.
    pub(super) fn follow_raise(&mut self, settings: &JobSettings, observed: &Observed) {
        let allowed = self.ctx.is_leader()
            && !settings.policy.dry_run
            && !self.flink_setup.reactive()
            && Self::native_report(settings).is_none();
        let open = allowed
            && self
                .rescale
                .as_deref()
                .is_some_and(|r| raisable(r, &observed.observation));
        match (open, self.raise.is_some()) {
            (true, false) => self.raise = Some(RaiseMemory::default()),
            (false, true) => self.raise = None,
            _ => {}
        }
    }

    /// The state this tick decides on: the raise's while one may happen, else the job's.
    pub(super) fn decision_state(&self) -> std::borrow::Cow<'_, JobState> {
        match &self.raise {
            Some(memory) => std::borrow::Cow::Owned(memory.state_for_decision(&self.job_state)),
            None => std::borrow::Cow::Borrowed(&self.job_state),
        }
    }

    /// After a decision made on the raise's state: remembers its windows and raises the
    /// rescale in flight when the decision needs more than its target.
    pub(super) async fn raise_if_needed(
        &mut self,
        client: &FlinkClient,
        settings: &JobSettings,
        decision: &Decision,
        next_state: &JobState,
    ) {
        let Some(memory) = self.raise.as_mut() else {
            return;
        };
        memory.remember(next_state);
        let Some(current) = self.rescale.as_deref() else {
            return;
        };
        let Some(target) = raised_plan(current, decision) else {
            return;
        };
        let mut rescale = Box::new(current.clone());
        let options = self.apply_options();
        match apply::raise(client, &mut rescale, target, &options).await {
            Ok((event, nudger)) => {
                if nudger.is_some() {
                    self.nudger = nudger;
                }
                let (from, to) = (rescale.from.task_managers, rescale.to.task_managers);
                tracing::info!(
                    from,
                    to,
                    reasons = %decision.summary(),
                    event = ?event,
                    "scale-up raised before Flink restarted (same rescale)"
                );
                self.job_state.raised(to);
                self.remember_requirements(&rescale.to.parallelism);
                self.rescale = Some(rescale);
                // a further raise settles afresh from here
                self.raise = Some(RaiseMemory::default());
                let note = format!(
                    "in-place scale-up raised to {from} → {to} TaskManagers before Flink \
                     restarted (one rescale): {}",
                    decision.summary()
                );
                self.rescale_event(settings.scale_target.as_ref(), EventPhase::Started, &note)
                    .await;
            }
            Err(e) => {
                self.ctx
                    .metrics
                    .record_flink_error("resource_requirements", e.kind());
                tracing::warn!(error = %e, "cannot raise the scale-up in flight; it goes on as it was");
            }
        }
    }
}

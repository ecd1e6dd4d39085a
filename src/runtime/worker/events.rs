//! Kubernetes Events of a worker (leader only; no-ops without Kubernetes): the set-up
//! warnings of its scale target, once per worker, and the rescale lifecycle (started,
//! raised, completed, failed) on the target.

use super::Worker;
use crate::{
    core::{rescale::RescaleEvent, Rescale},
    kube::{RescalePhase as EventPhase, ScaleTarget},
    runtime::settings::JobSettings,
};

impl Worker {
    /// Once per worker (leader only): warns about scale-target set-ups where a replica
    /// change restarts the job (operator native mode, standalone without reactive) or
    /// `taskManager.replicas` is unset — in the log and as Warning Events.
    pub(super) async fn warn_set_up(&mut self, settings: &JobSettings) {
        let (Some(k), Some(t)) = (self.ctx.kube.as_ref(), settings.scale_target.as_ref()) else {
            return;
        };
        if self.warned || t.warnings.is_empty() || !self.ctx.is_leader() {
            return;
        }
        for w in &t.warnings {
            tracing::warn!(warning = w.message(), "scale target set-up");
        }
        match k.events.target_warnings(t).await {
            Ok(()) => self.warned = true,
            Err(e) => tracing::warn!(error = %e, "cannot write the set-up warning Events"),
        }
    }

    /// The Event of one event of the rescale in flight (completion and failures).
    pub(super) async fn publish_event(
        &self,
        scale_target: Option<&ScaleTarget>,
        rescale: &Rescale,
        event: &RescaleEvent,
    ) {
        if let Some((phase, note)) = event_note(rescale, event) {
            self.rescale_event(scale_target, phase, &note).await;
        }
    }

    /// Writes one rescale Event on the scale target (logged when it cannot be written).
    pub(super) async fn rescale_event(
        &self,
        scale_target: Option<&ScaleTarget>,
        phase: EventPhase,
        note: &str,
    ) {
        let (Some(k), Some(t)) = (self.ctx.kube.as_ref(), scale_target) else {
            return;
        };
        if let Err(e) = k.events.rescale(t, phase, note).await {
            tracing::warn!(error = %e, "cannot write the rescale Event");
        }
    }
}

/// The Event phase and note of a rescale event that gets one (`None` for progress).
fn event_note(rescale: &Rescale, event: &RescaleEvent) -> Option<(EventPhase, String)> {
    Some(match event {
        RescaleEvent::Completed { took_ms } => (
            EventPhase::Completed,
            format!(
                "in-place rescale {} → {} TaskManagers completed in {:.1}s",
                rescale.from.task_managers,
                rescale.to.task_managers,
                *took_ms as f64 / 1000.0
            ),
        ),
        RescaleEvent::TimedOut { phase } => (
            EventPhase::Failed,
            format!("rescale timed out in phase {}", phase.as_str()),
        ),
        RescaleEvent::Aborted { reason } => {
            (EventPhase::Failed, format!("rescale aborted: {reason}"))
        }
        RescaleEvent::Failover(cause) => (
            EventPhase::Failed,
            format!("failover during rescale: {}", cause.as_str()),
        ),
        _ => return None,
    })
}

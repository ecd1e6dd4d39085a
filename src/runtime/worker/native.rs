//! The worker's side of a native-mode FlinkDeployment (issue 14 §2, [`crate::kube::native`]):
//! a refused set-up fails every evaluation with the settings at fault (KEDA's `fallback`
//! keeps the pinned replicas; an Event once); a supported one is answered with its pinned
//! `spec.taskManager.replicas` (the ScaledObject has `minReplicaCount = maxReplicaCount =
//! replicas`, so neither KEDA nor the HPA ever writes it: any write would be an UPGRADE),
//! and each rescale first server-side-applies the overrides key (the operator's own
//! in-place path, persisted in the spec), then PUTs the same requirements through the
//! usual driver (identical to the operator's PUT: whoever comes second finds them in
//! place; on Flink 2.x the operator's copy is ignored at resubmission, FLINK-38770).

use super::Worker;
use crate::{
    core::{Decision, Plan},
    exporter::RescaleOutcome,
    keda::EvalError,
    kube::{apply_overrides, overrides_value, RescalePhase as EventPhase, ScaleTarget},
    runtime::settings::JobSettings,
};

/// The native FlinkDeployment target of `settings`, if it is one.
fn native_target(settings: &JobSettings) -> Option<&ScaleTarget> {
    settings
        .scale_target
        .as_ref()
        .filter(|t| t.mode == Some(crate::kube::FlinkDeploymentMode::Native))
}

impl Worker {
    /// A refused native set-up: the error KEDA gets (naming every setting), with a Warning
    /// Event once per worker.
    pub(super) async fn refuse_native(&mut self, settings: &JobSettings) -> Result<(), EvalError> {
        let Some(t) = native_target(settings).filter(|t| !t.native_refusals.is_empty()) else {
            return Ok(());
        };
        let list = t
            .native_refusals
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        let message = format!(
            "FlinkDeployment {}/{} (native mode) is not scaled: the scaler's change would restart \
             the job or fight a controller: {list}",
            t.namespace, t.name
        );
        if self.ctx.is_leader() && self.flink_setup.announce_refusal() {
            tracing::error!(refusals = %list, "native FlinkDeployment refused");
            if let Some(k) = self.ctx.kube.as_ref() {
                if let Err(e) = k
                    .events
                    .flink_setup(t, true, "NativeScalingRefused", &message)
                    .await
                {
                    tracing::warn!(error = %e, "cannot write the refusal Event");
                }
            }
        }
        Err(EvalError::unavailable(message))
    }

    /// The pinned replica count KEDA gets for a supported native FlinkDeployment.
    pub(super) fn native_report(settings: &JobSettings) -> Option<u32> {
        native_target(settings)
            .filter(|t| t.native_overrides())
            .and_then(|t| t.replicas)
    }

    /// Server-side-applies the overrides of `target` (a server-side dry run when the policy
    /// says dry run). `false` (logged, metric, Event) when the apply failed: the rescale is
    /// then not started.
    pub(super) async fn apply_native(
        &self,
        settings: &JobSettings,
        job: &str,
        target: &Plan,
        decision: &Decision,
    ) -> bool {
        let (Some(t), Some(k)) = (
            native_target(settings).filter(|t| t.native_overrides()),
            self.ctx.kube.as_ref(),
        ) else {
            return true; // not a native target: nothing to apply
        };
        let value = overrides_value(&target.parallelism);
        let dry_run = settings.policy.dry_run;
        match apply_overrides(&k.client, &t.namespace, &t.name, &value, dry_run).await {
            Ok(applied) => {
                tracing::info!(overrides = %value, dry_run, generation = ?applied.generation, "applied pipeline.jobvertex-parallelism-overrides (server-side apply)");
                true
            }
            Err(e) => {
                self.ctx.metrics.record_rescale(
                    &self.key(job),
                    decision.direction,
                    RescaleOutcome::Failed,
                    std::time::Duration::ZERO,
                );
                tracing::error!(error = %e, overrides = %value, "cannot apply the overrides; rescale not started");
                let note = format!("rescale not started: {e}");
                self.rescale_event(Some(t), EventPhase::Failed, &note).await;
                false
            }
        }
    }
}

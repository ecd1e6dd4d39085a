//! Kubernetes Events for rescales (`events.k8s.io/v1`, served since Kubernetes 1.19):
//! one Event per rescale started, completed or failed, on the ScaledObject and, for a
//! `FlinkDeployment` target, on the FlinkDeployment too, carrying the decision's reason.
//! Built on kube-runtime's [`Recorder`] (repeated identical events within its 6-minute
//! cache become an event series, i.e. a `patch`).

use fks_core::text::cap;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::{
    runtime::events::{Event, EventType, Recorder, Reporter},
    Client,
};

use super::{
    error::KubeError,
    resources,
    target::{ScaleTarget, TargetKind, TargetWarning},
    timeout::call,
};

/// Event reason of a rescale asked for on the admin listener.
pub const MANUAL_RESCALE_REASON: &str = "ManualRescale";

/// Maximum `note` size accepted by the API (1 kB).
const MAX_NOTE_BYTES: usize = 1024;

/// Phase of a rescale an Event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RescalePhase {
    /// The resource-requirements PUT was issued.
    Started,
    /// The job runs at the target parallelism.
    Completed,
    /// The rescale failed, timed out or was abandoned.
    Failed,
}

impl RescalePhase {
    /// Event `reason` (PascalCase).
    pub fn reason(self) -> &'static str {
        match self {
            RescalePhase::Started => "RescaleStarted",
            RescalePhase::Completed => "RescaleCompleted",
            RescalePhase::Failed => "RescaleFailed",
        }
    }

    fn event_type(self) -> EventType {
        match self {
            RescalePhase::Failed => EventType::Warning,
            _ => EventType::Normal,
        }
    }
}

/// Reference to the ScaledObject of `target`.
pub fn scaled_object_ref(target: &ScaleTarget) -> ObjectReference {
    ObjectReference {
        api_version: Some(resources::scaled_object().api_version),
        kind: Some("ScaledObject".into()),
        name: Some(target.scaled_object.clone()),
        namespace: Some(target.namespace.clone()),
        uid: target.scaled_object_uid.clone(),
        ..Default::default()
    }
}

/// Reference to the scale target itself.
pub fn target_ref(target: &ScaleTarget) -> ObjectReference {
    ObjectReference {
        api_version: Some(target.api_version.clone()),
        kind: Some(target.kind.as_str().into()),
        name: Some(target.name.clone()),
        namespace: Some(target.namespace.clone()),
        uid: target.uid.clone(),
        ..Default::default()
    }
}

/// Publishes rescale Events.
#[derive(Clone)]
pub struct EventPublisher {
    recorder: Recorder,
}

impl EventPublisher {
    /// A publisher reporting as controller `flink-keda-scaler`, instance `instance` (the pod name).
    pub fn new(client: Client, instance: &str) -> Self {
        let reporter = Reporter {
            controller: "flink-keda-scaler".into(),
            instance: Some(instance.into()),
        };
        Self {
            recorder: Recorder::new(client, reporter),
        }
    }

    /// Publishes one Event for `phase` with `note` (the decision's reason, truncated to
    /// 1 kB) on the ScaledObject, and on the FlinkDeployment when that is the target.
    pub async fn rescale(
        &self,
        target: &ScaleTarget,
        phase: RescalePhase,
        note: &str,
    ) -> Result<(), KubeError> {
        let event = Event {
            type_: phase.event_type(),
            reason: phase.reason().into(),
            note: Some(cap(note, MAX_NOTE_BYTES)),
            action: "Rescale".into(),
            secondary: None,
        };
        self.publish_on_target(target, &event).await
    }

    /// Publishes a `ManualRescale` Event (`note`: who asked for what, truncated to 1 kB)
    /// on the ScaledObject, and on the FlinkDeployment when that is the target.
    pub async fn manual_rescale(&self, target: &ScaleTarget, note: &str) -> Result<(), KubeError> {
        let event = Event {
            type_: EventType::Normal,
            reason: MANUAL_RESCALE_REASON.into(),
            note: Some(cap(note, MAX_NOTE_BYTES)),
            action: "Rescale".into(),
            secondary: None,
        };
        self.publish_on_target(target, &event).await
    }

    /// Publishes `event` on the ScaledObject, and on the FlinkDeployment when that is the
    /// target.
    async fn publish_on_target(
        &self,
        target: &ScaleTarget,
        event: &Event,
    ) -> Result<(), KubeError> {
        let mut refs = vec![scaled_object_ref(target)];
        if target.kind == TargetKind::FlinkDeployment {
            refs.push(target_ref(target));
        }
        for r in refs {
            let op = format!(
                "create Event {} on {} {}/{}",
                event.reason,
                r.kind.as_deref().unwrap_or_default(),
                target.namespace,
                r.name.as_deref().unwrap_or_default()
            );
            call(op, self.recorder.publish(event, &r)).await?;
        }
        Ok(())
    }
}

/// Event reason of a set-up warning (PascalCase).
pub fn warning_reason(w: TargetWarning) -> &'static str {
    match w {
        TargetWarning::NativeModeUpgrade => "NativeModeUpgrade",
        TargetWarning::StandaloneNotReactive => "StandaloneNotReactive",
        TargetWarning::ReplicasUnset => "ReplicasUnset",
    }
}

impl EventPublisher {
    /// Publishes one Warning Event per set-up warning of `target` on its ScaledObject
    /// (call once when a target is first resolved).
    pub async fn target_warnings(&self, target: &ScaleTarget) -> Result<(), KubeError> {
        let r = scaled_object_ref(target);
        for w in &target.warnings {
            let event = Event {
                type_: EventType::Warning,
                reason: warning_reason(*w).into(),
                note: Some(w.message().into()),
                action: "Discover".into(),
                secondary: Some(target_ref(target)),
            };
            let op = format!(
                "create Event {} on ScaledObject {}/{}",
                warning_reason(*w),
                target.namespace,
                target.scaled_object
            );
            call(op, self.recorder.publish(&event, &r)).await?;
        }
        Ok(())
    }
    /// Publishes one Event about the Flink set-up of the job on its ScaledObject (and the
    /// FlinkDeployment when that is the target): `reason` `FlinkReactiveMode` (Normal) or
    /// `FlinkRescaleDelay` (Warning), with `note` truncated to 1 kB.
    pub async fn flink_setup(
        &self,
        target: &ScaleTarget,
        warning: bool,
        reason: &'static str,
        note: &str,
    ) -> Result<(), KubeError> {
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            note: Some(cap(note, MAX_NOTE_BYTES)),
            action: "Discover".into(),
            secondary: None,
        };
        self.publish_on_target(target, &event).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Notes are cut at 1 kB without splitting a UTF-8 character.
    #[test]
    fn truncation_respects_char_boundaries() {
        let s = "é".repeat(600);
        let t = cap(&s, MAX_NOTE_BYTES);
        assert!(t.len() <= MAX_NOTE_BYTES);
        assert!(t.ends_with('…'), "marked as cut");
        assert_eq!(t.chars().count(), 511, "510 whole characters and the mark");
        assert_eq!(cap("short", MAX_NOTE_BYTES), "short");
    }
}

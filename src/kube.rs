//! Kubernetes adapter: the scale target behind a ScaledObject (pure parsing in [`target`],
//! watch-fed caches in [`discovery`]), drain-safe TaskManager removal
//! (`controller.kubernetes.io/pod-deletion-cost`), per-job persisted state in ConfigMaps
//! (optimistic concurrency), Lease-based leader election and Kubernetes Events for
//! rescales.
//!
//! Depends on [`crate::core`] only. Every one-shot API call is bounded by
//! [`API_TIMEOUT`]; watches are long-lived and restart with backoff.
//!
//! # Supported set-ups
//!
//! | Scale target (`scaleTargetRef`)                 | Replica change means                   | Verdict |
//! |-------------------------------------------------|----------------------------------------|---------|
//! | `apps/v1 Deployment` of TaskManagers (Flink standalone, adaptive scheduler) | pods added/removed; the scaler PUTs the parallelism in place | **in place** (recommended) |
//! | `FlinkDeployment`, `mode: standalone`, `scheduler-mode: reactive` | the operator scales the TaskManager Deployment in place; the scaler never PUTs (sized in TaskManagers, `crate::core::reactive`) | in place; every scale-down is a failover (checkpoint first) |
//! | `FlinkDeployment`, `mode: standalone`, other scheduler | the operator falls back to a full upgrade | **restarts** ([`TargetWarning::StandaloneNotReactive`]) |
//! | `FlinkDeployment`, `mode: native`, no [`native::native_refusals`], ScaledObject pinned at `replicas` | never changed: the scaler applies `pipeline.jobvertex-parallelism-overrides` ([`native`]) | **in place** (the operator's SCALE path) |
//! | `FlinkDeployment`, `mode: native`, a refusal (autoscaler, memory tuning, …) | a `taskManager.replicas` change is an UPGRADE: the job is suspended and restored | **refused** ([`TargetWarning::NativeModeUpgrade`], error naming the setting) |
//!
//! The JobManager REST URL comes from, in this order: the `flinkRestUrl` trigger metadata
//! key (passed by the runtime), the [`REST_URL_ANNOTATION`] on the target, and for a
//! `FlinkDeployment` the operator's Service convention `http://<name>-rest.<ns>.svc:<rest.port|8081>`.

pub mod client;
pub mod deletion_cost;
pub mod discovery;
pub mod error;
pub mod events;
pub mod leader;
pub mod native;
pub mod resources;
pub mod staleness;
pub mod state;
pub mod state_cache;
pub mod target;
pub mod timeout;

pub use client::client;
pub use deletion_cost::{
    mark_deletion_costs, plan_deletion_costs, CostChange, DeletionCostReport, PodView,
    TaskManagerSlots, DELETION_COST_ANNOTATION,
};
pub use discovery::{Discovery, DiscoveryConfig};
pub use error::KubeError;
pub use events::{EventPublisher, RescalePhase};
pub use leader::{LeaderElector, LeaderElectorConfig};
pub use native::{
    apply_overrides, native_refusals, overrides_value, NativeRefusal, OverridesApplied,
    OverridesError, FIELD_MANAGER, OVERRIDES_KEY,
};
pub use staleness::{check_decision, Staleness};
pub use state::{PersistedDecision, PersistedJob, StateStore, StateVersion};
pub use state_cache::{StateCache, StateEntry};
pub use target::{
    FlinkDeploymentMode, ScaleReading, ScaleTarget, TargetKind, TargetRef, TargetWarning,
    REST_URL_ANNOTATION, REST_URL_METADATA_KEY,
};
pub use timeout::API_TIMEOUT;

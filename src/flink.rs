//! The Flink adapter: a REST client for the JobManager ([`client`]), the GET-edit-PUT
//! discipline for resource requirements ([`requirements`]), the job topology
//! ([`topology`]) and the async rescale driver ([`apply`]) that runs the pure
//! [`crate::core::rescale`] state machine against a real cluster.
//!
//! Depends on `core` only.
//!
//! Cluster prerequisites (found with the real-Flink tests, `tests/flink_rescale.rs`):
//! * `jobmanager.scheduler: adaptive` (otherwise every requirements call is a 500 with
//!   `UnsupportedOperationException`, surfaced as
//!   [`FlinkError::AdaptiveSchedulerRequired`]).
//! * For a scale-down to free whole TaskManagers, the adaptive scheduler must pack slots:
//!   `jobmanager.adaptive-scheduler.prefer-minimal-taskmanagers: true`. Flink (checked in
//!   1.20.5 and 2.3.0 bytecode, `DefaultSlotAssigner#pickSlotsIfNeeded`) honours it only
//!   when `execution.target` is `embedded` (application mode; a session cluster must set
//!   it explicitly). Without it the slots stay spread, no TaskManager
//!   becomes idle and the scale-down ends `TimedOut` in `Draining` — safely, still
//!   reporting the higher TaskManager count to KEDA.
//! * Freed slots return to the ResourceManager after `slot.idle.timeout` (50 s default),
//!   which bounds how fast a scale-down completes.

pub mod apply;
pub mod client;
pub mod error;
pub mod model;
pub mod requirements;
pub mod topology;

pub use apply::{apply_and_wait, ApplyOptions, RescaleOutcome, Rescaler};
pub use client::{is_terminal_state, ClientOptions, FlinkClient};
pub use error::FlinkError;
pub use model::{
    CheckpointStats, ClusterOverview, ExceptionEntry, ExceptionHistory, JobDetails, JobPlan,
    JobSummary, ResourceRequirements, TaskManagerInfo, VertexDetails,
};
pub use requirements::{apply_target, edit_requirements, RequirementsChange};

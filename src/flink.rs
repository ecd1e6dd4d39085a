//! The Flink adapter: a REST client for the JobManager ([`client`]), the GET-edit-PUT
//! discipline for resource requirements ([`requirements`]), the job topology
//! ([`topology`]), what a rescale observes of the job ([`observe`]) and target plans
//! ([`plan`]). REST calls and pure mapping only: the loop that drives the
//! [`crate::core::rescale`] state machine against a cluster lives in the runtime
//! (`runtime::apply`).
//!
//! Depends on `core` only.
//!
//! Cluster prerequisites (found with the real-Flink tests, `tests/it/flink_rescale.rs`):
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

pub mod checkpoint;
pub mod client;
pub mod delays;
pub mod error;
pub mod history;
pub mod jm_config;
pub mod model;
pub mod observe;
pub mod plan;
pub mod requirements;
pub mod response;
pub mod setup;
pub mod topology;

pub use checkpoint::{checkpoint_now, CheckpointKind, CheckpointProgress};
pub use client::{is_terminal_state, select_job, Access, CallHook, ClientOptions, FlinkClient};
pub use delays::{rescale_delays, RescaleDelay};
pub use error::{DecodeError, FlinkError, PlanError, TopologyError, UrlError};
pub use jm_config::{FlinkLine, FlinkSetup, JobManagerConfig, RescalesConfig, Scheduler};
pub use model::{
    CheckpointStats, ClusterOverview, ExceptionEntry, ExceptionHistory, JobDetails, JobPlan,
    JobSummary, ResourceRequirements, TaskManagerInfo, VertexDetails,
};
pub use observe::{
    all_tasks_running, job_status, observe_rescale, observe_rescale_from, observe_rescale_with,
    task_manager_slots, vertex_parallelism,
};
pub use plan::{plan_for, uniform_parallelism};
pub use requirements::{
    apply_target, edit_requirements, upper_bounds, RequirementsChange, VertexLimit,
};
pub use setup::read_setup;

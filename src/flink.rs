//! The Flink adapter: a REST client for the JobManager ([`client`]), the GET-edit-PUT
//! discipline for resource requirements ([`requirements`]), the job topology
//! ([`topology`]) and the async rescale driver ([`apply`]) that runs the pure
//! [`crate::core::rescale`] state machine against a real cluster.
//!
//! Depends on `core` only.

pub mod apply;
pub mod client;
pub mod error;
pub mod model;
pub mod requirements;
pub mod topology;

pub use apply::{apply_and_wait, ApplyOptions, RescaleOutcome, Rescaler};
pub use client::{is_terminal_state, ClientOptions, FlinkClient, JobSelector};
pub use error::FlinkError;
pub use model::{
    CheckpointStats, ClusterOverview, ExceptionEntry, ExceptionHistory, JobDetails, JobPlan,
    JobSummary, ResourceRequirements, TaskManagerInfo, VertexDetails,
};
pub use requirements::{apply_target, edit_requirements, RequirementsChange};

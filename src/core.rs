//! The pure decision core: observations + state + policy + `now` → a decision with
//! reasons. No I/O, no async, no clock: nothing in here imports tokio, reqwest, kube,
//! tonic or prometheus, so every rule is unit- and property-testable.
//!
//! ```text
//!  Observation ──┐
//!  JobState ─────┼─► decide() ─► Decision { target Plan, reasons } + new JobState
//!  Policy ───────┤
//!  now ──────────┘
//! ```

pub mod decide;
pub mod decision;
pub mod observation;
pub mod policy;
pub mod rescale;
pub mod signal;
pub mod state;
pub mod topology;

pub use decide::decide;
pub use decision::{Decision, Direction, Plan, Reason, Rule, VerticalAdvice};
pub use observation::{JobSignals, JobStatus, Observation, TaskManagerSignals, VertexSignals};
pub use policy::{AlignmentMode, Policy, Schedule, ScheduleKind};
pub use rescale::{
    required_task_managers, task_managers_to_report, FailoverCause, FailoverWatch, Rescale,
    RescaleEvent, RescaleObservation, RescalePhase, RescaleTimeouts, TaskManagerSlots,
};
pub use signal::Signal;
pub use state::{JobState, RescaleRecord, ScaleDownWindow};
pub use topology::{Edge, ShipStrategy, Topology, Vertex, VertexId};

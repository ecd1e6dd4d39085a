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
//!
//! Inside `decide` (one file per step): [`guards`] (status, stabilization, topology,
//! slots) → [`inputs`] (signal validation) → [`ds2`] (sizing, seed policies) → [`align`](mod@align)
//! (key groups / partitions) → [`downscale`] (window, catch-up, cap) → [`bounds`]
//! (TaskManager min/max, [`schedule`] floors/ceilings, using [`slots`]) → cooldown and
//! budget; [`vertical`] advice on the side. Reactive mode sizes in TaskManagers on top of
//! `decide` ([`reactive`]).
//!
//! Besides the decision, the vocabulary every layer shares lives here: [`JobId`] (parsed
//! once), [`JobSelector`], [`ScaledObjectRef`], the parsed [`Schedule`], and the TLS file
//! locations ([`ServerTls`], [`ClientTls`]) the config reads and the adapters load.

pub mod align;
pub mod bounds;
pub mod decide;
pub mod decision;
pub mod downscale;
pub mod ds2;
pub mod failover;
pub mod graph;
pub mod guards;
pub mod ids;
pub mod inputs;
pub mod observation;
pub mod policy;
pub mod predictive;
pub mod reactive;
pub mod report;
pub mod rescale;
pub mod schedule;
pub mod signal;
pub mod slots;
pub mod state;
pub mod text;
pub mod tls;
pub mod topology;
pub mod upscale;
pub mod vertical;

#[cfg(test)]
mod decide_tests;
#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod props;

pub use align::{align, alignment_units};
pub use bounds::bound_task_managers;
pub use decide::{aligned_parallelism, decide};
pub use decision::{Decision, Direction, Plan, Reason, Rule, VerticalAdvice};
pub use ds2::{edge_output_ratio, true_rate, VertexSizing};
pub use failover::{FailoverCause, FailoverWatch, HistoryRecord, RescaleTrigger};
pub use ids::{InvalidJobId, JobId, JobSelector, ScaledObjectRef, JOB_ID_LEN};
pub use observation::{JobSignals, JobStatus, Observation, TaskManagerSignals, VertexSignals};
pub use policy::{AlignmentMode, Policy};
pub use predictive::{predictive_floor, PredictiveConfig};
pub use report::{task_managers_to_report, Report, ReportError, ReportInputs, ReportMemory};
pub use rescale::{
    required_task_managers, Rescale, RescaleEvent, RescaleObservation, RescalePhase,
    RescaleTimeouts, TaskManagerSlots,
};
pub use schedule::{open_since as schedule_open_since, Schedule, ScheduleError, ScheduleKind};
pub use signal::Signal;
pub use slots::{
    fit_above_floor, fit_to_task_managers, slots_needed, spread_to_task_managers, task_managers_for,
};
pub use state::{JobState, RescaleRecord, ScaleDownWindow};
pub use tls::{ClientTls, ServerTls};
pub use topology::{Edge, ShipStrategy, Topology, Vertex, VertexId};
pub use vertical::advise as vertical_advice;

//! Per-job memory of the decision core, persisted between ticks (and, with the `kube`
//! adapter, in Kubernetes): when the job was last rescaled, the open scale-down and
//! scale-up windows, the rescale history used for the hourly budget, and what the report
//! to KEDA remembers ([`ReportMemory`]). Pure data; updated by [`super::decide::decide`]
//! through [`JobState::record`] (the report memory by the runtime, after each tick).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{report::ReportMemory, topology::VertexId};

/// An open scale-down window: recommendations below current seen since `started_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleDownWindow {
    /// When the first scale-down recommendation of the window was seen.
    pub started_at: DateTime<Utc>,
    /// Highest recommendation per vertex seen in the window.
    pub highest: BTreeMap<VertexId, u32>,
    /// Highest recommendation per vertex among those made once the signals had settled
    /// (at least the settle time after `started_at`): what the scale-down applies.
    #[serde(default)]
    pub settled: BTreeMap<VertexId, u32>,
    /// Lowest recommendation per vertex: a tick far below it is a new load level
    /// (the window restarts there, see `downscale`).
    #[serde(default)]
    pub lowest: BTreeMap<VertexId, u32>,
    /// A source was draining a backlog at the window's last tick (see `ds2::draining`).
    #[serde(default)]
    pub draining: bool,
    /// The tick of the window that saw a drain end (the first without one), or the last
    /// draining tick while one goes on: the settle time counts from the later of this and
    /// `started_at`.
    #[serde(default)]
    pub drained_at: Option<DateTime<Utc>>,
}

impl ScaleDownWindow {
    /// When the signals began to settle: the window's start, or the end of a drain seen
    /// in it, whichever is later.
    pub fn settling_since(&self) -> DateTime<Utc> {
        self.drained_at
            .map_or(self.started_at, |d| d.max(self.started_at))
    }
}

/// An open scale-up window: recommendations above current seen since `started_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleUpWindow {
    /// When the first scale-up recommendation of the window was seen.
    pub started_at: DateTime<Utc>,
    /// Highest recommendation per vertex seen in the window.
    pub highest: BTreeMap<VertexId, u32>,
    /// Target input rate per vertex at the previous tick of the window: the scale-up
    /// waits while these still grow (the signal windows still fill with the new load).
    #[serde(default)]
    pub last_rates: BTreeMap<VertexId, f64>,
    /// Projected utilization per vertex at the previous tick of the window: the scale-up
    /// also waits while these still grow (a bottleneck's busy time still rising).
    #[serde(default)]
    pub last_projected: BTreeMap<VertexId, f64>,
    /// Consecutive ticks on which neither moved by more than the settle thresholds: the
    /// signals count as settled after two (one calm tick can sit on an overshoot).
    #[serde(default)]
    pub calm_ticks: u32,
    /// This tick's recommendation per vertex: while the window settles KEDA is asked for
    /// at least the TaskManagers it needs, so pods start while the signals settle.
    #[serde(default)]
    pub proposed: BTreeMap<VertexId, u32>,
}

/// One rescale, for the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RescaleRecord {
    /// When it was decided.
    pub at: DateTime<Utc>,
    /// TaskManagers before.
    pub from_task_managers: u32,
    /// TaskManagers after.
    pub to_task_managers: u32,
}

/// Decision-core memory for one job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobState {
    /// When the last rescale was decided (cooldown).
    pub last_rescale_at: Option<DateTime<Utc>>,
    /// Open scale-down window, if any.
    pub scale_down_window: Option<ScaleDownWindow>,
    /// Open scale-up window, if any (absent in state written by older versions).
    #[serde(default)]
    pub scale_up_window: Option<ScaleUpWindow>,
    /// Recent rescales (pruned to the last 24 h).
    pub history: Vec<RescaleRecord>,
    /// What the report to KEDA remembers (absent in state written by older versions).
    #[serde(default)]
    pub report: ReportMemory,
}

impl JobState {
    /// Records a rescale decided at `at`, prunes history older than 24 h and closes the
    /// scale-down window.
    pub fn record(&mut self, at: DateTime<Utc>, from_task_managers: u32, to_task_managers: u32) {
        self.last_rescale_at = Some(at);
        self.scale_down_window = None;
        self.scale_up_window = None;
        self.history.push(RescaleRecord {
            at,
            from_task_managers,
            to_task_managers,
        });
        let horizon = at - chrono::Duration::hours(24);
        self.history.retain(|r| r.at > horizon);
    }

    /// Rescales decided in the hour before `now`.
    pub fn rescales_in_last_hour(&self, now: DateTime<Utc>) -> usize {
        let horizon = now - chrono::Duration::hours(1);
        self.history.iter().filter(|r| r.at > horizon).count()
    }
}

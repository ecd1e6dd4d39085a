//! Scaling policy: every knob the decision core uses, with defaults chosen to beat the
//! Flink operator autoscaler's (5 min stabilization + 15 min window, see
//! `docs/design.md`). Built from the YAML config (`policies.<name>`) and overridden per
//! ScaledObject by scalerMetadata; validated there, trusted here.

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use super::schedule::{Schedule, ScheduleKind};

/// How parallelism of keyed vertices and partitioned sources is aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum AlignmentMode {
    /// Move to a divisor of maxParallelism / partitions when one lies in the direction of
    /// the scale and within reach; never cancel or invert a scale (FLINK-39299).
    #[default]
    Balanced,
    /// No alignment.
    Off,
}

/// All parameters of the decision core.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Target busy fraction per vertex after a rescale (operator default 0.7).
    pub target_utilization: f64,
    /// Band below which a vertex counts as under-utilized (scale-down candidate).
    pub utilization_low: f64,
    /// Band above which a vertex counts as over-utilized (scale-up trigger).
    pub utilization_high: f64,
    /// Time within which a backlog should be worked off (operator default 30 min; ours 5).
    pub catch_up_duration: Duration,
    /// Ignore samples until the job has been RUNNING this long after any (re)start.
    pub stabilization: Duration,
    /// A scale-down is applied only after this long of continuous scale-down
    /// recommendations (and once the signals have settled past the drop), using the highest
    /// settled recommendation seen in the window. Default 1 min (5 min before 2026-12-02:
    /// docs/simulator.md "Choosing the scale-down defaults").
    pub scale_down_delay: Duration,
    /// A scale-up is applied only after this long of continuous scale-up
    /// recommendations, using the highest recommendation seen in the window (0 = at
    /// once). Right after a load step the first ticks see a saturated vertex (busy 1.0
    /// caps what it can show) before the backlog growth reveals the demand; a few seconds
    /// of confirmation size the step in one rescale instead of two.
    pub scale_up_delay: Duration,
    /// Maximum fraction a vertex may shrink in one decision. Default 0.6, the operator's
    /// `job.autoscaler.scale-down.max-factor` (0.5 before 2026-12-02).
    pub max_scale_down_factor: f64,
    /// Minimum time between two rescales of one job.
    pub cooldown: Duration,
    /// After this many rescales in the rolling hour, scale-downs are held. A scale-up is
    /// never held by the budget (only by the cooldown): the held scale-downs bound the
    /// flapping, and a burst arriving after a busy hour must not wait for it (in the
    /// simulator's `spikes` trace one waited 20 min with its lag over 5 min).
    pub max_rescales_per_hour: u32,
    /// Backlog that counts as "catching up": lag / input rate above this ⇒ no scale-down
    /// (FLINK-31318).
    pub backlog_threshold: Duration,
    /// Lower bound on TaskManagers.
    pub min_task_managers: u32,
    /// Upper bound on TaskManagers.
    pub max_task_managers: u32,
    /// Slots per TaskManager; `None` = read from Flink.
    pub slots_per_task_manager: Option<u32>,
    /// Alignment of keyed vertices and partitioned sources.
    pub alignment: AlignmentMode,
    /// Seed policy "IO-bound source": CPU load below this while lag grows ⇒ scale the
    /// source chain out by lag even though busy time looks low.
    pub io_bound_cpu_max: f64,
    /// Time windows with floors/ceilings.
    pub schedules: Vec<Schedule>,
    /// Compute and report, never apply.
    pub dry_run: bool,
    /// CPU cores of one TaskManager today (for vertical advice in cores); `None` = advise
    /// heap only.
    #[serde(default)]
    pub task_manager_cpu_cores: Option<f64>,
    /// Predictive pre-scaling from last period's history (off when `None`).
    #[serde(default)]
    pub predictive: Option<super::predictive::PredictiveConfig>,
    /// Warm spare TaskManagers: reported to KEDA on top of what the job needs (bounded by
    /// `max_task_managers`), so they are registered and idle ahead of need and a scale-up
    /// that fits in them is a PUT only (see [`super::report`]).
    #[serde(default)]
    pub spare_task_managers: u32,
    /// How long the signals take to show a load change in full (the longest window of
    /// the signal queries plus a scrape). A scale-down applies only recommendations made
    /// at least this long after its window opened; a scale-up waits, at most this long,
    /// while its recommendation still grows. `None`: the observation's
    /// [`signal_window`](super::Observation::signal_window) when the runtime knows it,
    /// else `stabilization` for scale-downs and nothing for scale-ups.
    #[serde(default)]
    pub signal_settle: Option<Duration>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            target_utilization: 0.7,
            utilization_low: 0.4,
            utilization_high: 0.85,
            catch_up_duration: Duration::from_secs(300),
            stabilization: Duration::from_secs(30),
            scale_down_delay: Duration::from_secs(60),
            scale_up_delay: Duration::ZERO,
            max_scale_down_factor: 0.6,
            cooldown: Duration::from_secs(60),
            max_rescales_per_hour: 6,
            backlog_threshold: Duration::from_secs(60),
            min_task_managers: 1,
            max_task_managers: 10,
            slots_per_task_manager: None,
            alignment: AlignmentMode::Balanced,
            io_bound_cpu_max: 0.3,
            schedules: Vec::new(),
            dry_run: false,
            task_manager_cpu_cores: None,
            predictive: None,
            spare_task_managers: 0,
            signal_settle: None,
        }
    }
}

impl Policy {
    /// The settle time of a scale-down: [`Policy::signal_settle`], else the signal
    /// window the runtime reports, else `stabilization`.
    pub fn scale_down_settle(&self, signal_window: Option<Duration>) -> Duration {
        self.signal_settle
            .or(signal_window)
            .unwrap_or(self.stabilization)
    }

    /// The settle time of a scale-up: [`Policy::signal_settle`], else the signal window
    /// the runtime reports, else zero (the scale-up applies at once).
    pub fn scale_up_settle(&self, signal_window: Option<Duration>) -> Duration {
        self.signal_settle.or(signal_window).unwrap_or_default()
    }
}

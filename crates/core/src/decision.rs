//! The output of the decision core: a target plan (per-vertex parallelism + TaskManager
//! count) and the structured reasons that led to it. Reasons carry the rule, the vertex
//! and the inputs used, so the runtime can log one line, count by rule and expose the
//! whole decision on `/debug/jobs`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::topology::VertexId;

/// A rule of the decision core. `as_str` values are bounded metric label values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Signals missing, NaN or infinite: no decision.
    MissingSignal,
    /// Job not RUNNING.
    NotRunning,
    /// Job RUNNING for less than the stabilization period.
    Stabilizing,
    /// Topology unusable (cycle, unknown vertex).
    InvalidTopology,
    /// DS2 sizing of a vertex.
    Ds2Size,
    /// Backlog catch-up rate added to a source's target.
    CatchUp,
    /// Seed policy: lag growing while CPU is low (IO-bound source).
    IoBoundSource,
    /// Seed policy / band: vertex busy below the band (idle slots).
    Underutilized,
    /// Vertex busy above the band.
    Overutilized,
    /// All vertices within the utilization band: hold.
    WithinBand,
    /// Scale-down waiting for its delay window.
    ScaleDownDelayed,
    /// Scale-up waiting for its confirmation window.
    ScaleUpDelayed,
    /// Scale-down blocked while a backlog is being caught up (FLINK-31318).
    CatchingUp,
    /// Scale-down capped by the max scale-down factor.
    ScaleDownCapped,
    /// Cooldown since the last rescale.
    Cooldown,
    /// Hourly rescale budget exhausted.
    BudgetExhausted,
    /// Parallelism aligned to key groups / partitions.
    Aligned,
    /// Parallelism clamped to [1, maxParallelism].
    ClampedToMaxParallelism,
    /// TaskManagers clamped to the minimum.
    ClampedToMin,
    /// TaskManagers clamped to the maximum (parallelism reduced to fit).
    ClampedToMax,
    /// A schedule floor raised the TaskManagers.
    ScheduleFloor,
    /// A schedule ceiling lowered the TaskManagers.
    ScheduleCeiling,
    /// Predictive pre-scaling: last period's peak at this time raised the TaskManagers.
    PredictiveFloor,
    /// Vertical advice (reported, never applied).
    VerticalAdvice,
    /// Reactive mode: the job is sized in TaskManagers, every vertex at the slot count.
    Reactive,
    /// Scale up.
    ScaleUp,
    /// Scale down.
    ScaleDown,
    /// No change needed.
    NoChange,
}

impl Rule {
    /// Stable snake_case name, used as a metric label and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::MissingSignal => "missing_signal",
            Rule::NotRunning => "not_running",
            Rule::Stabilizing => "stabilizing",
            Rule::InvalidTopology => "invalid_topology",
            Rule::Ds2Size => "ds2_size",
            Rule::CatchUp => "catch_up",
            Rule::IoBoundSource => "io_bound_source",
            Rule::Underutilized => "underutilized",
            Rule::Overutilized => "overutilized",
            Rule::WithinBand => "within_band",
            Rule::ScaleDownDelayed => "scale_down_delayed",
            Rule::ScaleUpDelayed => "scale_up_delayed",
            Rule::CatchingUp => "catching_up",
            Rule::ScaleDownCapped => "scale_down_capped",
            Rule::Cooldown => "cooldown",
            Rule::BudgetExhausted => "budget_exhausted",
            Rule::Aligned => "aligned",
            Rule::ClampedToMaxParallelism => "clamped_to_max_parallelism",
            Rule::ClampedToMin => "clamped_to_min",
            Rule::ClampedToMax => "clamped_to_max",
            Rule::ScheduleFloor => "schedule_floor",
            Rule::ScheduleCeiling => "schedule_ceiling",
            Rule::PredictiveFloor => "predictive_floor",
            Rule::VerticalAdvice => "vertical_advice",
            Rule::Reactive => "reactive",
            Rule::ScaleUp => "scale_up",
            Rule::ScaleDown => "scale_down",
            Rule::NoChange => "no_change",
        }
    }
}

/// One reason: a rule, optionally the vertex it applies to, a human message and the
/// numeric inputs it used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// The rule that fired.
    pub rule: Rule,
    /// The vertex, for per-vertex rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vertex: Option<VertexId>,
    /// Human-readable explanation.
    pub message: String,
    /// Named numeric inputs (e.g. `busy`, `true_rate`, `target_rate`, `lag`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, f64>,
}

impl Reason {
    /// A reason without vertex or inputs.
    pub fn new(rule: Rule, message: impl Into<String>) -> Self {
        Self {
            rule,
            vertex: None,
            message: message.into(),
            inputs: BTreeMap::new(),
        }
    }
    /// Sets the vertex.
    pub fn vertex(mut self, v: &VertexId) -> Self {
        self.vertex = Some(v.clone());
        self
    }
    /// Adds an input.
    pub fn input(mut self, name: &str, value: f64) -> Self {
        self.inputs.insert(name.to_string(), value);
        self
    }
}

/// Direction of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// More resources.
    Up,
    /// Fewer resources.
    Down,
    /// Same TaskManagers; parallelism may still move between vertices.
    None,
}

impl Direction {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
            Direction::None => "none",
        }
    }
}

/// The target the job should run at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Parallelism per vertex (every vertex of the topology).
    pub parallelism: BTreeMap<VertexId, u32>,
    /// TaskManagers needed for that parallelism (within [min, max]).
    pub task_managers: u32,
}

/// Recommended TaskManager size; reported, never applied (a memory change restarts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerticalAdvice {
    /// Recommended CPU cores per TaskManager, if CPU signals exist.
    pub cpu_cores: Option<f64>,
    /// Recommended heap in bytes per TaskManager, if heap signals exist.
    pub heap_bytes: Option<f64>,
}

/// A decision: what the job should run at now, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// When it was made (the `now` passed to the core).
    pub at: DateTime<Utc>,
    /// The current plan (from the observation).
    pub current: Plan,
    /// The target plan: `None` when no decision could be made (see reasons).
    pub target: Option<Plan>,
    /// Direction from current to target TaskManagers.
    pub direction: Direction,
    /// True when `target` differs from `current` and should be applied now.
    pub rescale: bool,
    /// Reasons, in the order the rules fired.
    pub reasons: Vec<Reason>,
    /// Vertical sizing advice.
    pub vertical: Option<VerticalAdvice>,
}

impl Decision {
    /// The main rule: the last reason's rule (the one that settled the outcome).
    pub fn main_rule(&self) -> Option<Rule> {
        self.reasons.last().map(|r| r.rule)
    }
    /// One-line summary of the reasons (`rule[vertex]: message; ...`).
    pub fn summary(&self) -> String {
        self.reasons
            .iter()
            .map(|r| match &r.vertex {
                Some(v) => format!(
                    "{}[{}]: {}",
                    r.rule.as_str(),
                    // first 8 characters (not bytes: never split a UTF-8 character)
                    v.as_str().chars().take(8).collect::<String>(),
                    r.message
                ),
                None => format!("{}: {}", r.rule.as_str(), r.message),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

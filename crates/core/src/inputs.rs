//! Signal validation: turns the optional, possibly non-finite signals of an
//! [`Observation`] into checked per-vertex inputs, or refuses with a
//! [`Rule::MissingSignal`] reason naming the vertex and the signal. Nothing here guesses:
//! a required signal that is absent, NaN or infinite is never read as zero.

use std::collections::BTreeMap;

use super::{
    decision::{Reason, Rule},
    observation::{Observation, TaskManagerSignals},
    signal::Signal,
    topology::VertexId,
};

/// Checked signals of one vertex, ready for DS2 sizing.
#[derive(Debug, Clone, PartialEq)]
pub struct VertexInputs {
    /// Busy fraction (busyTimeMsPerSecond / 1000), clamped to `0..=1`.
    pub busy: f64,
    /// Records in per second (≥ 0).
    pub rate_in: f64,
    /// Records out per second (≥ 0), when known.
    pub rate_out: Option<f64>,
    /// Back-pressured fraction (`0..=1`), when known.
    pub backpressure: Option<f64>,
    /// Sources: backlog in records (≥ 0); `None` for a legacy source without the metric.
    pub pending: Option<f64>,
    /// Sources: growth of the backlog in records per second (may be negative; 0 if unknown).
    pub lag_growth: f64,
    /// Sources: records arriving per second over the short arrival window (≥ 0), when
    /// known; else the arrival is `rate_in + lag_growth`.
    pub arrival: Option<f64>,
    /// Sources: partition count, when known and non-zero.
    pub partitions: Option<u32>,
}

/// Reads a present signal: absent → `Ok(None)`, non-finite → `Err(reason)`.
fn optional(v: Option<f64>, vertex: &VertexId, signal: Signal) -> Result<Option<f64>, Reason> {
    match v {
        None => Ok(None),
        Some(x) if x.is_finite() => Ok(Some(x)),
        Some(_) => Err(missing(Some(vertex), signal, "is NaN or infinite")),
    }
}

/// Reads a required signal: absent or non-finite → `Err(reason)`.
fn required(v: Option<f64>, vertex: &VertexId, signal: Signal) -> Result<f64, Reason> {
    optional(v, vertex, signal)?.ok_or_else(|| missing(Some(vertex), signal, "is missing"))
}

/// A `MissingSignal` reason for `signal` (of `vertex`, if per-vertex).
pub fn missing(vertex: Option<&VertexId>, signal: Signal, what: &str) -> Reason {
    let r = Reason::new(Rule::MissingSignal, format!("signal {signal} {what}"));
    match vertex {
        Some(v) => r.vertex(v),
        None => r,
    }
}

/// Validates the signals of every vertex of the topology, in topology order.
///
/// Required for every vertex: `busyTime` and `recordsIn`. Optional, but refused when
/// present and non-finite: `recordsOut`, `backPressuredTime`, and for sources
/// `pendingRecords`, `lagGrowth` and `arrivalRate`.
pub fn validate(obs: &Observation) -> Result<BTreeMap<VertexId, VertexInputs>, Reason> {
    let mut out = BTreeMap::new();
    let none = Default::default();
    let has_inputs: std::collections::BTreeSet<&VertexId> =
        obs.topology.edges.iter().map(|e| &e.to).collect();
    for v in &obs.topology.vertices {
        let s = obs.vertices.get(&v.id).unwrap_or(&none);
        let id = &v.id;
        let busy = required(s.busy_ms_per_s, id, Signal::BusyTime)?;
        let rate_in = required(s.records_in_per_s, id, Signal::RecordsIn)?;
        let rate_out = optional(s.records_out_per_s, id, Signal::RecordsOut)?;
        let bp = optional(s.backpressured_ms_per_s, id, Signal::BackPressuredTime)?;
        let source = !has_inputs.contains(id);
        let (pending, lag_growth, arrival) = if source {
            (
                optional(s.pending_records, id, Signal::PendingRecords)?,
                optional(s.lag_growth_per_s, id, Signal::LagGrowth)?,
                optional(s.arrival_per_s, id, Signal::ArrivalRate)?,
            )
        } else {
            (None, None, None)
        };
        out.insert(
            id.clone(),
            VertexInputs {
                busy: (busy / 1000.0).clamp(0.0, 1.0),
                rate_in: rate_in.max(0.0),
                rate_out: rate_out.map(|r| r.max(0.0)),
                backpressure: bp.map(|b| (b / 1000.0).clamp(0.0, 1.0)),
                pending: pending.map(|p| p.max(0.0)),
                lag_growth: lag_growth.unwrap_or(0.0),
                arrival: arrival.map(|a| a.max(0.0)),
                partitions: s.partitions.filter(|p| *p > 0),
            },
        );
    }
    Ok(out)
}

/// Highest finite CPU load over the TaskManagers (`None` when no TaskManager reports one).
pub fn max_cpu_load(tms: &[TaskManagerSignals]) -> Option<f64> {
    max_finite(tms.iter().map(|t| t.cpu_load))
}

/// Highest finite value of an optional series (`None` when there is none).
pub fn max_finite(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    values
        .flatten()
        .filter(|x| x.is_finite())
        .fold(None, |acc: Option<f64>, x| {
            Some(acc.map_or(x, |a| a.max(x)))
        })
}

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
    /// Where the settle time counts from: the first tick of the rise that opened the
    /// window ([`RateTrend::rising_since`]), earlier than `started_at` when the target
    /// rates rose before a vertex crossed the band; `None` (state written by an older
    /// version, or no rise seen): `started_at`.
    #[serde(default)]
    pub settle_from: Option<DateTime<Utc>>,
}

impl ScaleUpWindow {
    /// When the signals began to fill with the new load, at the latest: the settle time
    /// counts from here.
    pub fn settling_since(&self) -> DateTime<Utc> {
        self.settle_from
            .map_or(self.started_at, |f| f.min(self.started_at))
    }

    /// This tick's recommendation while the window settles (what the report asks KEDA
    /// for), `None` when it holds none.
    pub fn proposal(&self) -> Option<&BTreeMap<VertexId, u32>> {
        Some(&self.proposed).filter(|p| !p.is_empty())
    }
}

/// The target input rates of the job's last evaluated tick and since when they have risen
/// tick after tick. A tick whose rates grew by more than [`crate::upscale::SETTLE_GROWTH`]
/// over the previous tick's saw a load change that happened by then, so a window that fills
/// with it is full one settle time after the first tick of the rise: a scale-up opened on a
/// later tick (when a vertex first crossed the band) need not wait the settle time again
/// from there.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RateTrend {
    /// Target input rate per vertex at the last evaluated tick.
    pub last_rates: BTreeMap<VertexId, f64>,
    /// The first tick of an unbroken run of ticks on each of which some vertex's target
    /// rate grew by more than the settle growth; `None` when the last tick did not.
    pub rising_since: Option<DateTime<Utc>>,
}

impl RateTrend {
    /// Takes this tick's `rates` at `now`; returns [`RateTrend::rising_since`] after it.
    pub fn observe(
        &mut self,
        rates: &BTreeMap<VertexId, f64>,
        growth: f64,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let rose = rates.iter().any(|(v, r)| {
            self.last_rates
                .get(v)
                .is_some_and(|l| *r > l.max(0.0) * (1.0 + growth) && *r > 0.0)
        });
        self.rising_since = rose.then(|| self.rising_since.unwrap_or(now));
        self.last_rates.clone_from(rates);
        self.rising_since
    }
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
    /// The target rates' trend over the last ticks (absent in state written by older
    /// versions).
    #[serde(default)]
    pub trend: RateTrend,
}

impl JobState {
    /// Records a rescale decided at `at`, prunes history older than 24 h and closes the
    /// scale-down window.
    pub fn record(&mut self, at: DateTime<Utc>, from_task_managers: u32, to_task_managers: u32) {
        self.last_rescale_at = Some(at);
        self.scale_down_window = None;
        self.scale_up_window = None;
        self.trend = RateTrend::default();
        self.history.push(RescaleRecord {
            at,
            from_task_managers,
            to_task_managers,
        });
        let horizon = at - chrono::Duration::hours(24);
        self.history.retain(|r| r.at > horizon);
    }

    /// The rescale in flight (the last one recorded) was raised to `to_task_managers`
    /// ([`crate::rescale::raise`]): its record says so, and it stays one rescale.
    pub fn raised(&mut self, to_task_managers: u32) {
        if let Some(last) = self.history.last_mut() {
            last.to_task_managers = to_task_managers;
        }
    }

    /// Rescales decided in the hour before `now`.
    pub fn rescales_in_last_hour(&self, now: DateTime<Utc>) -> usize {
        let horizon = now - chrono::Duration::hours(1);
        self.history.iter().filter(|r| r.at > horizon).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(r: f64) -> BTreeMap<VertexId, f64> {
        [(VertexId("a".into()), r)].into_iter().collect()
    }

    #[test]
    fn a_rise_runs_from_its_first_tick_until_a_tick_that_does_not_grow() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let at = |s: i64| t0 + chrono::Duration::seconds(s);
        let mut trend = RateTrend::default();
        let mut seen = Vec::new();
        for (s, r) in [
            (0, 600.0),
            (2, 620.0),
            (4, 900.0),
            (6, 1500.0),
            (8, 1520.0),
            (10, 1900.0),
        ] {
            seen.push(trend.observe(&rates(r), 0.05, at(s)));
        }
        // nothing to compare on the first tick; +3 % is noise; the rise starts at 4 s,
        // a +1 % tick ends it, the next rise starts anew
        assert_eq!(
            seen,
            [None, None, Some(at(4)), Some(at(4)), None, Some(at(10))]
        );
        // a fall is no rise, nor is a vertex seen for the first time
        assert_eq!(trend.observe(&rates(100.0), 0.05, at(12)), None);
        let mut two = rates(100.0);
        two.insert(VertexId("b".into()), 50.0);
        assert_eq!(trend.observe(&two, 0.05, at(14)), None);
    }
}

//! The backtest report: rescales ours would have made (time, direction, TaskManagers
//! from→to, reasons), TaskManagers over time (ours vs actual) and TaskManager-hours, as
//! a text table, a CSV (`t,actual_tms,ours_tms,input_rate,lag,decision_rule`) and an SVG
//! plot drawn by the simulator's chart (`crate::sim::chart`) with two series,
//! `actual` and `ours`.

use std::{collections::BTreeMap, fmt::Write as _, time::Duration};

use chrono::{DateTime, SecondsFormat, Utc};

use super::{
    fetch::{History, RangeQuery},
    replay::{ActualChange, Replay, RescaleEvent, TickResult},
    Input,
};
use crate::{
    core::VertexId,
    sim::{job::EventKind, Point, PolicyResult, Report},
};

/// Rows of the "TaskManagers over time" table (ticks are sampled down to about this).
const TABLE_ROWS: usize = 24;

/// A finished backtest.
#[derive(Debug, Clone)]
pub struct Backtest {
    /// Flink job id.
    pub job_id: String,
    /// Flink job name.
    pub job_name: String,
    /// Policy name.
    pub policy: String,
    /// First tick.
    pub from: DateTime<Utc>,
    /// End of the range.
    pub to: DateTime<Utc>,
    /// Tick spacing.
    pub step: Duration,
    /// One result per tick.
    pub ticks: Vec<TickResult>,
    /// Rescales ours would have made.
    pub rescales: Vec<RescaleEvent>,
    /// Changes of the parallelism that actually ran.
    pub actual_changes: Vec<ActualChange>,
    /// The range queries made.
    pub queries: Vec<RangeQuery>,
    /// Non-fatal problems.
    pub issues: Vec<String>,
    /// TaskManager-hours that actually ran.
    pub actual_tm_hours: f64,
    /// TaskManager-hours ours would have run.
    pub ours_tm_hours: f64,
    /// Optional signals without data over the range.
    pub empty_optional: Vec<crate::core::Signal>,
    /// Vertex ids in the topology's order (for parallelism lists).
    pub vertex_order: Vec<VertexId>,
    /// The policy's backlog threshold in seconds (drawn as the lag line of the plot).
    pub backlog_threshold_s: f64,
}

/// Σ TaskManagers × time to the next tick (the last tick has no width), in hours.
pub fn tm_hours(ticks: &[TickResult], tms: impl Fn(&TickResult) -> u32) -> f64 {
    ticks
        .windows(2)
        .map(|w| f64::from(tms(&w[0])) * (w[1].at - w[0].at).num_milliseconds() as f64)
        .sum::<f64>()
        / 3_600_000.0
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn plist(p: &BTreeMap<VertexId, u32>, order: &[VertexId]) -> String {
    order
        .iter()
        .map(|id| p.get(id).map(u32::to_string).unwrap_or_else(|| "?".into()))
        .collect::<Vec<_>>()
        .join(",")
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map(|x| format!("{x:.decimals$}")).unwrap_or_default()
}

impl Backtest {
    /// Builds the report from a replay.
    pub fn new(input: &Input, history: History, replay: Replay) -> Self {
        let actual_tm_hours = tm_hours(&replay.ticks, |t| t.actual_task_managers);
        let ours_tm_hours = tm_hours(&replay.ticks, |t| t.ours_task_managers);
        Self {
            job_id: input.vars.job_id.clone(),
            job_name: input.vars.job_name.clone(),
            policy: input.policy_name.clone(),
            from: input.range.from,
            to: input.range.to,
            step: input.range.step,
            ticks: replay.ticks,
            rescales: replay.rescales,
            actual_changes: replay.actual_changes,
            queries: history.queries,
            empty_optional: history.empty_optional,
            vertex_order: input
                .topology
                .vertices
                .iter()
                .map(|v| v.id.clone())
                .collect(),
            issues: history.issues,
            actual_tm_hours,
            ours_tm_hours,
            backlog_threshold_s: input.policy.backlog_threshold.as_secs_f64(),
        }
    }

    /// Text report: header, rescales with reasons, TaskManagers over time (sampled),
    /// TaskManager-hours.
    pub fn to_table(&self) -> String {
        let mut s = String::new();
        self.write_header(&mut s);
        self.write_rescales(&mut s);
        self.write_actual_changes(&mut s);
        self.write_timeline(&mut s);
        self.write_totals(&mut s);
        s
    }

    /// The job, policy, range and the vertex order of the parallelism lists.
    fn write_header(&self, s: &mut String) {
        let order = &self.vertex_order;
        let _ = writeln!(
            s,
            "backtest of job {} ({}) with policy {}: {} → {} every {}s, {} ticks, {} range queries\nparallelism lists are in topology order: {}",
            self.job_name,
            self.job_id,
            self.policy,
            ts(self.from),
            ts(self.to),
            self.step.as_secs(),
            self.ticks.len(),
            self.queries.len(),
            order
                .iter()
                .map(|v| &v.as_str()[..v.as_str().len().min(8)])
                .collect::<Vec<_>>()
                .join(",")
        );
    }

    /// The rescales ours would have made, with their reasons.
    fn write_rescales(&self, s: &mut String) {
        let order = &self.vertex_order;
        let _ = writeln!(
            s,
            "\nrescales ours would have made: {}",
            self.rescales.len()
        );
        if !self.rescales.is_empty() {
            let _ = writeln!(
                s,
                "{:<20} {:<4} {:>7} {:>17}  reasons",
                "time", "dir", "TMs", "parallelism"
            );
        }
        for r in &self.rescales {
            let _ = writeln!(
                s,
                "{:<20} {:<4} {:>7} {:>17}  {}",
                ts(r.at),
                r.direction.as_str(),
                format!("{}→{}", r.from_task_managers, r.to_task_managers),
                format!(
                    "{}→{}",
                    plist(&r.from_parallelism, order),
                    plist(&r.to_parallelism, order)
                ),
                r.summary
            );
        }
    }

    /// The parallelism changes that actually happened.
    fn write_actual_changes(&self, s: &mut String) {
        let order = &self.vertex_order;
        let _ = writeln!(
            s,
            "\nactual parallelism changes: {}",
            self.actual_changes.len()
        );
        for c in &self.actual_changes {
            let _ = writeln!(
                s,
                "{:<20} {}→{}",
                ts(c.at),
                plist(&c.from, order),
                plist(&c.to, order)
            );
        }
    }

    /// TaskManagers over time, about `TABLE_ROWS` rows (every rescale tick kept).
    fn write_timeline(&self, s: &mut String) {
        let _ = writeln!(s, "\nTaskManagers over time (sampled):");
        let _ = writeln!(
            s,
            "{:<20} {:>6} {:>6} {:>12} {:>10}  rule",
            "time", "actual", "ours", "input_rate", "lag"
        );
        let every = self.ticks.len().div_ceil(TABLE_ROWS).max(1);
        for (i, t) in self.ticks.iter().enumerate() {
            if i % every != 0 && !t.rescaled && i + 1 != self.ticks.len() {
                continue;
            }
            let _ = writeln!(
                s,
                "{:<20} {:>6} {:>6} {:>12} {:>10}  {}{}",
                ts(t.at),
                t.actual_task_managers,
                t.ours_task_managers,
                opt(t.input_rate, 1),
                opt(t.lag, 0),
                t.rule,
                if t.rescaled { "  ← rescale" } else { "" }
            );
        }
    }

    /// TaskManager-hours of both, and the notes.
    fn write_totals(&self, s: &mut String) {
        let delta = if self.actual_tm_hours > 0.0 {
            format!(
                " ({:+.1}%)",
                100.0 * (self.ours_tm_hours - self.actual_tm_hours) / self.actual_tm_hours
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "\nTaskManager-hours: actual {:.2}, ours {:.2}{delta}",
            self.actual_tm_hours, self.ours_tm_hours
        );
        if !self.empty_optional.is_empty() {
            let names: Vec<&str> = self.empty_optional.iter().map(|s| s.name()).collect();
            let _ = writeln!(
                s,
                "note: optional signals without data over the range (left empty): {}",
                names.join(", ")
            );
        }
        for issue in &self.issues {
            let _ = writeln!(s, "note: {issue}");
        }
    }

    /// `t,actual_tms,ours_tms,input_rate,lag,decision_rule`, one row per tick.
    pub fn to_csv(&self) -> String {
        let mut s = String::from("t,actual_tms,ours_tms,input_rate,lag,decision_rule\n");
        for t in &self.ticks {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{}",
                ts(t.at),
                t.actual_task_managers,
                t.ours_task_managers,
                t.input_rate.map(|x| x.to_string()).unwrap_or_default(),
                t.lag.map(|x| x.to_string()).unwrap_or_default(),
                t.rule
            );
        }
        s
    }

    /// The report as the simulator's [`Report`] with two series, `actual` and `ours`.
    pub fn to_sim_report(&self) -> Report {
        let d = |t: DateTime<Utc>| (t - self.from).num_milliseconds() as f64 / 1000.0;
        let point = |t: &TickResult, tms: u32, p: &BTreeMap<VertexId, u32>| {
            let rate = t.input_rate.unwrap_or(0.0);
            let lag = t.lag.unwrap_or(0.0);
            Point {
                t: d(t.at),
                input_rate: rate,
                lag_records: lag,
                lag_s: if rate > 0.0 { lag / rate } else { 0.0 },
                parallelism: p.values().copied().max().unwrap_or(0),
                task_managers: tms,
                task_managers_ready: tms,
                restarting: false,
            }
        };
        let result = |name: &str, series: Vec<Point>, events: Vec<(f64, EventKind)>, hours: f64| {
            PolicyResult {
                name: name.to_string(),
                seconds_above_slo: 0.0,
                peak_lag_s: series.iter().map(|p| p.lag_s).fold(0.0, f64::max),
                peak_lag_records: series.iter().map(|p| p.lag_records).fold(0.0, f64::max),
                tm_hours: hours,
                rescales: u32::try_from(events.len()).unwrap_or(u32::MAX),
                restarts: 0,
                downtime_s: 0.0,
                max_task_managers: series.iter().map(|p| p.task_managers).max().unwrap_or(0),
                max_parallelism: series.iter().map(|p| p.parallelism).max().unwrap_or(0),
                series,
                events,
                requests: Vec::new(),
            }
        };
        let actual = result(
            "actual",
            self.ticks
                .iter()
                .map(|t| point(t, t.actual_task_managers, &t.actual_parallelism))
                .collect(),
            self.actual_changes
                .iter()
                .map(|c| (d(c.at), EventKind::Rescale))
                .collect(),
            self.actual_tm_hours,
        );
        let ours = result(
            "ours",
            self.ticks
                .iter()
                .map(|t| point(t, t.ours_task_managers, &t.ours_parallelism))
                .collect(),
            self.rescales
                .iter()
                .map(|r| (d(r.at), EventKind::Rescale))
                .collect(),
            self.ours_tm_hours,
        );
        Report {
            trace: format!("backtest {} ({})", self.job_name, self.policy),
            duration_s: d(self.to),
            lag_slo_s: self.backlog_threshold_s,
            sample_every_s: self.step.as_secs_f64(),
            policies: vec![actual, ours],
        }
    }

    /// SVG plot: input rate, lag and TaskManagers (actual vs ours), rescales marked.
    pub fn to_svg(&self) -> Result<String, crate::svg::SvgError> {
        self.to_sim_report().to_svg()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(at: i64, actual: u32, ours: u32) -> TickResult {
        TickResult {
            at: DateTime::from_timestamp(at, 0).expect("ts"),
            actual_parallelism: BTreeMap::new(),
            actual_task_managers: actual,
            ours_parallelism: BTreeMap::new(),
            ours_task_managers: ours,
            input_rate: None,
            lag: None,
            rule: "within_band",
            rescaled: false,
        }
    }

    /// Each tick counts until the next one; the last has no width.
    #[test]
    fn tm_hours_integrates_steps() {
        let ticks = vec![tick(0, 2, 2), tick(1800, 2, 4), tick(3600, 9, 9)];
        assert!((tm_hours(&ticks, |t| t.actual_task_managers) - 2.0).abs() < 1e-9);
        assert!((tm_hours(&ticks, |t| t.ours_task_managers) - 3.0).abs() < 1e-9);
    }
}

//! The simulation report: per-policy summary, time series, and its three renderings
//! (text table, long-format CSV, SVG chart built in `super::chart`).

use super::job::EventKind;
use crate::svg::SvgError;

/// One sample of a policy's time series.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Time (s).
    pub t: f64,
    /// Input rate (records/s).
    pub input_rate: f64,
    /// Backlog (records).
    pub lag_records: f64,
    /// Backlog in seconds of input.
    pub lag_s: f64,
    /// Highest vertex parallelism.
    pub parallelism: u32,
    /// TaskManager pods requested (billed).
    pub task_managers: u32,
    /// TaskManagers registered.
    pub task_managers_ready: u32,
    /// Not processing (restart / rescale pause).
    pub restarting: bool,
}

/// A parallelism change requested by a policy (not necessarily applied yet).
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// When it was requested (s).
    pub t: f64,
    /// Lag in seconds of input at that moment.
    pub lag_s: f64,
    /// Running parallelism per vertex.
    pub from: Vec<u32>,
    /// Requested parallelism per vertex.
    pub to: Vec<u32>,
}

impl Request {
    /// True when the request lowers the total parallelism.
    pub fn is_scale_down(&self) -> bool {
        self.to.iter().sum::<u32>() < self.from.iter().sum::<u32>()
    }
}

/// Results of one policy.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyResult {
    /// Policy name.
    pub name: String,
    /// Seconds with lag above the SLO.
    pub seconds_above_slo: f64,
    /// Peak lag in seconds of input.
    pub peak_lag_s: f64,
    /// Peak lag in records.
    pub peak_lag_records: f64,
    /// TaskManager pod-hours (ready + starting).
    pub tm_hours: f64,
    /// Parallelism changes applied.
    pub rescales: u32,
    /// Full restarts and failovers.
    pub restarts: u32,
    /// Seconds without processing.
    pub downtime_s: f64,
    /// Highest TaskManager count requested.
    pub max_task_managers: u32,
    /// Highest vertex parallelism run.
    pub max_parallelism: u32,
    /// Time series, one point per `sample_every_s`.
    pub series: Vec<Point>,
    /// Actuation events `(t, kind)`.
    pub events: Vec<(f64, EventKind)>,
    /// Parallelism changes requested by the policy.
    pub requests: Vec<Request>,
}

/// The report of one simulation run.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Trace name.
    pub trace: String,
    /// Trace duration (s).
    pub duration_s: f64,
    /// Lag SLO (s of input).
    pub lag_slo_s: f64,
    /// Time-series sampling interval (s).
    pub sample_every_s: f64,
    /// One result per policy, in run order.
    pub policies: Vec<PolicyResult>,
}

impl Report {
    /// The result of the policy named `name`.
    pub fn policy(&self, name: &str) -> Option<&PolicyResult> {
        self.policies.iter().find(|p| p.name == name)
    }

    /// Fixed-width summary table.
    pub fn to_table(&self) -> String {
        let mut s = format!(
            "trace {} ({:.1} h), lag SLO {} s\n",
            self.trace,
            self.duration_s / 3600.0,
            self.lag_slo_s
        );
        s.push_str(&format!(
            "{:<18} {:>10} {:>11} {:>13} {:>9} {:>8} {:>8} {:>10} {:>6}\n",
            "policy",
            "above_slo_s",
            "peak_lag_s",
            "peak_lag_rec",
            "tm_hours",
            "rescales",
            "restarts",
            "downtime_s",
            "max_tm"
        ));
        for p in &self.policies {
            s.push_str(&format!(
                "{:<18} {:>11.0} {:>11.1} {:>13.0} {:>9.2} {:>8} {:>8} {:>10.0} {:>6}\n",
                p.name,
                p.seconds_above_slo,
                p.peak_lag_s,
                p.peak_lag_records,
                p.tm_hours,
                p.rescales,
                p.restarts,
                p.downtime_s,
                p.max_task_managers
            ));
        }
        s
    }

    /// Long-format CSV: `t_seconds,policy,input_rate,lag_records,lag_seconds,parallelism,task_managers,task_managers_ready,restarting`.
    pub fn to_csv(&self) -> String {
        let mut s = String::from(
            "t_seconds,policy,input_rate,lag_records,lag_seconds,parallelism,task_managers,task_managers_ready,restarting\n",
        );
        for p in &self.policies {
            for x in &p.series {
                s.push_str(&format!(
                    "{},{},{},{:.0},{:.2},{},{},{},{}\n",
                    x.t,
                    p.name,
                    x.input_rate,
                    x.lag_records,
                    x.lag_s,
                    x.parallelism,
                    x.task_managers,
                    x.task_managers_ready,
                    u8::from(x.restarting)
                ));
            }
        }
        s
    }

    /// Summary as CSV, one row per policy (same columns as the table).
    pub fn summary_csv(&self) -> String {
        let mut s = String::from(
            "trace,policy,seconds_above_slo,peak_lag_s,peak_lag_records,tm_hours,rescales,restarts,downtime_s,max_task_managers\n",
        );
        for p in &self.policies {
            s.push_str(&format!(
                "{},{},{},{:.1},{:.0},{:.3},{},{},{},{}\n",
                self.trace,
                p.name,
                p.seconds_above_slo,
                p.peak_lag_s,
                p.peak_lag_records,
                p.tm_hours,
                p.rescales,
                p.restarts,
                p.downtime_s,
                p.max_task_managers
            ));
        }
        s
    }

    /// SVG plot: input rate, lag and TaskManagers over time per policy, rescale events
    /// marked. [`SvgError::NotCompiled`] in builds without the `svg` feature.
    pub fn to_svg(&self) -> Result<String, SvgError> {
        #[cfg(feature = "svg")]
        {
            Ok(fks_plot::render_svg(&super::chart::chart(self))?)
        }
        #[cfg(not(feature = "svg"))]
        {
            Err(SvgError::NotCompiled)
        }
    }
}

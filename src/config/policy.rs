//! `policies.<name>`: a named scaling policy in YAML. Every field is optional and falls
//! back to [`crate::core::Policy::default`]; [`PolicySpec::to_policy`] validates and
//! converts, naming the field path of any error.

use std::{collections::BTreeMap, time::Duration};

use serde::Deserialize;

use super::{duration, ConfigError};
use crate::core::{
    AlignmentMode, Policy, PredictiveConfig, Schedule, ScheduleError, ScheduleKind, Signal,
};

/// A scaling policy as written in YAML.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicySpec {
    /// Target busy fraction after a rescale, in (0, 1].
    pub target_utilization: Option<f64>,
    /// Lower edge of the utilization band.
    pub utilization_low: Option<f64>,
    /// Upper edge of the utilization band.
    pub utilization_high: Option<f64>,
    /// Time to work off a backlog.
    #[serde(default, with = "duration::option")]
    pub catch_up_duration: Option<Duration>,
    /// Samples ignored for this long after the job (re)enters RUNNING.
    #[serde(default, with = "duration::option")]
    pub stabilization: Option<Duration>,
    /// Scale-down delay window.
    #[serde(default, with = "duration::option")]
    pub scale_down_delay: Option<Duration>,
    /// Scale-up confirmation window (0 = at once).
    #[serde(default, with = "duration::option")]
    pub scale_up_delay: Option<Duration>,
    /// Max fraction a vertex may shrink per decision, in (0, 1).
    pub max_scale_down_factor: Option<f64>,
    /// Minimum time between rescales.
    #[serde(default, with = "duration::option")]
    pub cooldown: Option<Duration>,
    /// Rescale budget per rolling hour (≥ 1): once spent, scale-downs wait (scale-ups never do).
    pub max_rescales_per_hour: Option<u32>,
    /// Backlog (lag / input rate) above which the job counts as catching up.
    #[serde(default, with = "duration::option")]
    pub backlog_threshold: Option<Duration>,
    /// Lower bound on TaskManagers (≥ 1).
    pub min_task_managers: Option<u32>,
    /// Upper bound on TaskManagers.
    pub max_task_managers: Option<u32>,
    /// Slots per TaskManager (default: read from Flink).
    pub slots_per_task_manager: Option<u32>,
    /// `balanced` (default) or `off`.
    pub alignment: Option<AlignmentMode>,
    /// CPU load below which a lagging source counts as IO-bound.
    pub io_bound_cpu_max: Option<f64>,
    /// CPU cores of one TaskManager today (vertical advice in cores).
    pub task_manager_cpu_cores: Option<f64>,
    /// Compute and report, never apply.
    pub dry_run: Option<bool>,
    /// The default queries the overrides apply to: `counters` (default; slopes of Flink's
    /// counters over a window derived from the scrape interval) or `gauges` (Flink's
    /// per-second gauges, 60 s moving averages).
    #[serde(default)]
    pub query_preset: QueryPresetSpec,
    /// Warm spare TaskManagers reported on top of what the job needs (default 0; at most
    /// `maxTaskManagers − minTaskManagers`).
    pub spare_task_managers: Option<u32>,
    /// How long the signals take to show a load change in full (default: derived from
    /// the signal windows when known, else `stabilization`).
    #[serde(default, with = "duration::option")]
    pub signal_settle: Option<Duration>,
    /// PromQL overrides by signal name (`busyTime`, `pendingRecords`, ...).
    #[serde(default)]
    pub queries: BTreeMap<String, String>,
    /// Extra label matchers substituted for `{{matchers}}` in queries (e.g. `namespace="prod"`).
    #[serde(default)]
    pub matchers: Option<String>,
    /// Time windows with TaskManager floors or ceilings.
    #[serde(default)]
    pub schedules: Vec<ScheduleSpec>,
    /// Predictive pre-scaling from last period's input rate (off when absent).
    #[serde(default)]
    pub predictive: Option<PredictiveSpec>,
}

/// `queryPreset`: which default queries a policy starts from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum QueryPresetSpec {
    /// Slopes of Flink's counters over `{{window}}` (react within a few scrape intervals).
    #[default]
    Counters,
    /// Flink's per-second gauges (a step shows in full after about a minute).
    Gauges,
}

/// `predictive`: raise the TaskManager floor ahead of recurring peaks, from the source
/// input rate one `period` ago over the coming `lead`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PredictiveSpec {
    /// Seasonality: `1d` (same time yesterday) or `7d` (last week).
    #[serde(default = "one_day", with = "duration")]
    pub period: Duration,
    /// How far ahead to provision; longer than a scale-up takes (TaskManager start-up +
    /// checkpoint wait). Default `15m`.
    #[serde(default = "fifteen_minutes", with = "duration")]
    pub lead: Duration,
    /// Multiplier on last period's peak (>= 1). Default 1.1.
    #[serde(default = "headroom")]
    pub headroom: f64,
    /// Pre-scale only for a surge: last period's peak above the current rate by more than
    /// this fraction. Default 0.3.
    #[serde(default = "min_rise")]
    pub min_rise: f64,
    /// PromQL for the job's total source input rate (records/s), with the usual
    /// placeholders; evaluated `offset` one period back. Default: the sum of the source
    /// operators' `numRecordsOutPerSecond` by job name (job ids change on resubmission).
    #[serde(default)]
    pub query: Option<String>,
}

impl PredictiveSpec {
    /// Validates and converts; `path` is e.g. `policies.default.predictive`.
    fn to_config(&self, path: &str) -> Result<PredictiveConfig, ConfigError> {
        let p = |f: &str| format!("{path}.{f}");
        if self.lead.is_zero() || self.lead >= self.period {
            return Err(ConfigError::invalid(
                p("lead"),
                "must be > 0 and shorter than period",
            ));
        }
        if !(self.headroom.is_finite() && self.headroom >= 1.0) {
            return Err(ConfigError::invalid(
                p("headroom"),
                format!("must be >= 1, got {}", self.headroom),
            ));
        }
        if !(self.min_rise.is_finite() && self.min_rise >= 0.0) {
            return Err(ConfigError::invalid(
                p("minRise"),
                format!("must be >= 0, got {}", self.min_rise),
            ));
        }
        if self.query.as_deref().is_some_and(|q| q.trim().is_empty()) {
            return Err(ConfigError::invalid(p("query"), "must not be empty"));
        }
        Ok(PredictiveConfig {
            period_s: self.period.as_secs_f64(),
            lead_s: self.lead.as_secs_f64(),
            headroom: self.headroom,
            min_rise: self.min_rise,
        })
    }
}

fn one_day() -> Duration {
    Duration::from_secs(86_400)
}
fn fifteen_minutes() -> Duration {
    Duration::from_secs(900)
}
fn headroom() -> f64 {
    1.1
}
fn min_rise() -> f64 {
    0.3
}

/// A schedule as written in YAML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScheduleSpec {
    /// Name used in reasons.
    pub name: String,
    /// Cron expression with seconds: `sec min hour day-of-month month day-of-week [year]`.
    pub cron: String,
    /// IANA time zone (default `UTC`).
    #[serde(default = "utc")]
    pub timezone: String,
    /// How long the window stays open after each fire.
    #[serde(with = "duration")]
    pub duration: Duration,
    /// Floor (`minTaskManagers`) or ceiling (`maxTaskManagers`): exactly one.
    pub min_task_managers: Option<u32>,
    /// Ceiling.
    pub max_task_managers: Option<u32>,
}

fn utc() -> String {
    "UTC".to_string()
}

fn in_unit(path: &str, v: f64, open_low: bool, closed_high: bool) -> Result<f64, ConfigError> {
    let ok_low = if open_low { v > 0.0 } else { v >= 0.0 };
    let ok_high = if closed_high { v <= 1.0 } else { v < 1.0 };
    if v.is_finite() && ok_low && ok_high {
        Ok(v)
    } else {
        let lo = if open_low { "(0" } else { "[0" };
        let hi = if closed_high { "1]" } else { "1)" };
        Err(ConfigError::invalid(
            path,
            format!("must be in {lo}, {hi}, got {v}"),
        ))
    }
}

/// The utilization band, validated: each edge in range, `low < target <= high`.
struct Band {
    target: f64,
    low: f64,
    high: f64,
}

/// The TaskManager bounds, validated: `1 <= min <= max`.
struct TaskManagerBounds {
    min: u32,
    max: u32,
}

/// `v` when set (and > 0), else `default`.
fn positive(path: String, v: Option<Duration>, default: Duration) -> Result<Duration, ConfigError> {
    match v {
        Some(x) if x.is_zero() => Err(ConfigError::invalid(path, "must be > 0")),
        Some(x) => Ok(x),
        None => Ok(default),
    }
}

impl PolicySpec {
    /// Validates and converts to a core policy; `path` is e.g. `policies.default`. The
    /// fields are checked in a fixed order, so the first error reported is stable.
    pub fn to_policy(&self, path: &str) -> Result<Policy, ConfigError> {
        let d = Policy::default();
        let p = |f: &str| format!("{path}.{f}");
        let band = self.band(path, &d)?;
        let max_scale_down_factor = match self.max_scale_down_factor {
            Some(v) => in_unit(&p("maxScaleDownFactor"), v, true, false)?,
            None => d.max_scale_down_factor,
        };
        let catch_up_duration = positive(
            p("catchUpDuration"),
            self.catch_up_duration,
            d.catch_up_duration,
        )?;
        let backlog_threshold = positive(
            p("backlogThreshold"),
            self.backlog_threshold,
            d.backlog_threshold,
        )?;
        let bounds = self.task_manager_bounds(path, &d)?;
        let spare_task_managers = self.spare_task_managers(path, &bounds)?;
        if self.slots_per_task_manager == Some(0) {
            return Err(ConfigError::invalid(
                p("slotsPerTaskManager"),
                "must be >= 1",
            ));
        }
        let max_rescales_per_hour = self
            .max_rescales_per_hour
            .unwrap_or(d.max_rescales_per_hour);
        if max_rescales_per_hour == 0 {
            return Err(ConfigError::invalid(
                p("maxRescalesPerHour"),
                "must be >= 1",
            ));
        }
        let io_bound_cpu_max = match self.io_bound_cpu_max {
            Some(v) => in_unit(&p("ioBoundCpuMax"), v, true, true)?,
            None => d.io_bound_cpu_max,
        };
        self.check_queries(path)?;
        let task_manager_cpu_cores = self.task_manager_cpu_cores(path)?;
        let schedules = self.schedules(path)?;
        let predictive = self
            .predictive
            .as_ref()
            .map(|pr| pr.to_config(&p("predictive")))
            .transpose()?;
        Ok(Policy {
            target_utilization: band.target,
            utilization_low: band.low,
            utilization_high: band.high,
            catch_up_duration,
            stabilization: self.stabilization.unwrap_or(d.stabilization),
            scale_down_delay: self.scale_down_delay.unwrap_or(d.scale_down_delay),
            scale_up_delay: self.scale_up_delay.unwrap_or(d.scale_up_delay),
            max_scale_down_factor,
            cooldown: self.cooldown.unwrap_or(d.cooldown),
            max_rescales_per_hour,
            backlog_threshold,
            min_task_managers: bounds.min,
            max_task_managers: bounds.max,
            slots_per_task_manager: self.slots_per_task_manager,
            alignment: self.alignment.unwrap_or(d.alignment),
            io_bound_cpu_max,
            schedules,
            task_manager_cpu_cores,
            dry_run: self.dry_run.unwrap_or(false),
            predictive,
            spare_task_managers,
            signal_settle: self.signal_settle,
        })
    }

    /// `spareTaskManagers` (default 0), at most `maxTaskManagers − minTaskManagers`.
    fn spare_task_managers(
        &self,
        path: &str,
        bounds: &TaskManagerBounds,
    ) -> Result<u32, ConfigError> {
        let spare = self.spare_task_managers.unwrap_or(0);
        let room = bounds.max - bounds.min;
        if spare > room {
            return Err(ConfigError::invalid(
                format!("{path}.spareTaskManagers"),
                format!(
                    "must be <= maxTaskManagers - minTaskManagers ({} - {} = {room}), got {spare}",
                    bounds.max, bounds.min
                ),
            ));
        }
        Ok(spare)
    }

    /// The band; unset edges derive from the target (low: 0.6 × target at most, high:
    /// at least the target).
    fn band(&self, path: &str, d: &Policy) -> Result<Band, ConfigError> {
        let p = |f: &str| format!("{path}.{f}");
        let target = match self.target_utilization {
            Some(v) => in_unit(&p("targetUtilization"), v, true, true)?,
            None => d.target_utilization,
        };
        let low = match self.utilization_low {
            Some(v) => in_unit(&p("utilizationLow"), v, false, false)?,
            None => d.utilization_low.min(target * 0.6),
        };
        let high = match self.utilization_high {
            Some(v) => in_unit(&p("utilizationHigh"), v, true, true)?,
            None => d.utilization_high.max(target).min(1.0),
        };
        if !(low < target && target <= high) {
            return Err(ConfigError::invalid(
                p("targetUtilization"),
                format!(
                    "must lie inside the band: utilizationLow ({low}) < targetUtilization ({target}) <= utilizationHigh ({high})"
                ),
            ));
        }
        Ok(Band { target, low, high })
    }

    /// `minTaskManagers` (>= 1) and `maxTaskManagers` (>= min; unset: the default, raised
    /// to the min).
    fn task_manager_bounds(
        &self,
        path: &str,
        d: &Policy,
    ) -> Result<TaskManagerBounds, ConfigError> {
        let min = self.min_task_managers.unwrap_or(d.min_task_managers);
        if min == 0 {
            return Err(ConfigError::invalid(
                format!("{path}.minTaskManagers"),
                "must be >= 1 (Flink cannot run a job on zero TaskManagers; suspend the job instead)",
            ));
        }
        let max = self
            .max_task_managers
            .unwrap_or(d.max_task_managers.max(min));
        if max < min {
            return Err(ConfigError::invalid(
                format!("{path}.maxTaskManagers"),
                format!("must be >= minTaskManagers ({min}), got {max}"),
            ));
        }
        Ok(TaskManagerBounds { min, max })
    }

    /// `taskManagerCpuCores`, when set, is > 0.
    fn task_manager_cpu_cores(&self, path: &str) -> Result<Option<f64>, ConfigError> {
        match self.task_manager_cpu_cores {
            Some(v) if !(v.is_finite() && v > 0.0) => Err(ConfigError::invalid(
                format!("{path}.taskManagerCpuCores"),
                format!("must be > 0, got {v}"),
            )),
            other => Ok(other),
        }
    }

    /// The schedules, each validated under `schedules[i]`.
    fn schedules(&self, path: &str) -> Result<Vec<Schedule>, ConfigError> {
        self.schedules
            .iter()
            .enumerate()
            .map(|(i, s)| s.to_schedule(&format!("{path}.schedules[{i}]")))
            .collect()
    }

    /// Every query override names a known signal and is not empty.
    fn check_queries(&self, path: &str) -> Result<(), ConfigError> {
        for (signal, query) in &self.queries {
            if Signal::from_name(signal).is_none() {
                let known: Vec<&str> = Signal::ALL.iter().map(|s| s.name()).collect();
                return Err(ConfigError::invalid(
                    format!("{path}.queries.{signal}"),
                    format!("unknown signal (known: {})", known.join(", ")),
                ));
            }
            if query.trim().is_empty() {
                return Err(ConfigError::invalid(
                    format!("{path}.queries.{signal}"),
                    "must not be empty",
                ));
            }
        }
        Ok(())
    }

    /// Query overrides keyed by signal (names were validated by `to_policy`).
    pub fn query_overrides(&self) -> BTreeMap<Signal, String> {
        self.queries
            .iter()
            .filter_map(|(k, v)| Signal::from_name(k).map(|s| (s, v.clone())))
            .collect()
    }
}

impl ScheduleSpec {
    fn to_schedule(&self, path: &str) -> Result<Schedule, ConfigError> {
        if self.name.trim().is_empty() {
            return Err(ConfigError::invalid(
                format!("{path}.name"),
                "must not be empty",
            ));
        }
        let (kind, task_managers) =
            match (self.min_task_managers, self.max_task_managers) {
                (Some(n), None) => (ScheduleKind::Floor, n),
                (None, Some(n)) => (ScheduleKind::Ceiling, n),
                _ => return Err(ConfigError::invalid(
                    path,
                    "set exactly one of minTaskManagers (a floor) or maxTaskManagers (a ceiling)",
                )),
            };
        if task_managers == 0 {
            return Err(ConfigError::invalid(
                path,
                "the TaskManager count must be >= 1",
            ));
        }
        Schedule::new(
            self.name.clone(),
            &self.cron,
            &self.timezone,
            self.duration,
            kind,
            task_managers,
        )
        .map_err(|e| match e {
            ScheduleError::Cron { cron, reason, .. } => ConfigError::invalid(
                format!("{path}.cron"),
                format!("invalid cron expression '{cron}': {reason} (format: sec min hour day-of-month month day-of-week [year])"),
            ),
            ScheduleError::TimeZone { timezone, .. } => ConfigError::invalid(
                format!("{path}.timezone"),
                format!("unknown IANA time zone '{timezone}'"),
            ),
            ScheduleError::Duration { .. } => {
                ConfigError::invalid(format!("{path}.duration"), "must be > 0")
            }
        })
    }
}

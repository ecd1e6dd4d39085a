//! The JobManager's configuration as `GET /jobmanager/config` shows it, and what the
//! scaler needs from it: the Flink line (1.x / 2.x), the scheduler, reactive mode and the
//! adaptive scheduler's own timings with each line's defaults.
//!
//! `/jobmanager/config` lists only the keys that were **set** (config file, dynamic
//! properties) with their values verbatim, never defaults (measured on 2.3.0 and 1.20.5,
//! fixtures `tests/fixtures/flink/<v>/jobmanager_config.json`). So an absent key means the
//! line's default, which this module knows (read from the two jars' `ConfigOption`s):
//!
//! | setting | 1.20 key (default) | 2.x key (default), deprecated fallback key |
//! |---|---|---|
//! | cooldown after a (re)start | `jobmanager.adaptive-scheduler.scaling-interval.min` (30 s) | `…executing.cooldown-after-rescaling` (30 s), `…scaling-interval.min` |
//! | submission stabilization | `…resource-stabilization-timeout` (10 s; reactive: 0 unless set) | `…submission.resource-stabilization-timeout` (10 s; reactive: 0 unless set), `…resource-stabilization-timeout` |
//! | executing stabilization | – | `…executing.resource-stabilization-timeout` (60 s) |
//! | rescale history | – | `web.adaptive-scheduler.rescale-history.size` (0: off) |
//!
//! Flink 2.3 also answers `GET /jobs/:id/rescales/config` with the **effective** values
//! ([`RescalesConfig`]); when it answers, its values win (see [`FlinkSetup::with_rescales_config`]).

use std::{collections::BTreeMap, time::Duration};

use serde::{Deserialize, Serialize};

/// `scheduler-mode` (`JobManagerOptions.SCHEDULER_MODE`, an enum parsed case-insensitively).
pub const SCHEDULER_MODE: &str = "scheduler-mode";
/// `jobmanager.scheduler` (`Default` unless set, in 1.20.5 and 2.3.0).
pub const SCHEDULER: &str = "jobmanager.scheduler";
/// 1.x cooldown (2.x: deprecated fallback key of [`COOLDOWN_2X`]).
pub const COOLDOWN_1X: &str = "jobmanager.adaptive-scheduler.scaling-interval.min";
/// 2.x cooldown after a rescale or restart.
pub const COOLDOWN_2X: &str = "jobmanager.adaptive-scheduler.executing.cooldown-after-rescaling";
/// 1.x stabilization while waiting for resources (2.x: fallback of [`SUBMISSION_STAB_2X`]).
pub const STABILIZATION_1X: &str = "jobmanager.adaptive-scheduler.resource-stabilization-timeout";
/// 2.x stabilization while waiting for resources (job start, after a restart).
pub const SUBMISSION_STAB_2X: &str =
    "jobmanager.adaptive-scheduler.submission.resource-stabilization-timeout";
/// 2.x stabilization of a running job before it rescales to more resources.
pub const EXECUTING_STAB_2X: &str =
    "jobmanager.adaptive-scheduler.executing.resource-stabilization-timeout";
/// 2.3 rescale history size (0 = off).
pub const RESCALE_HISTORY_SIZE: &str = "web.adaptive-scheduler.rescale-history.size";
/// The restart strategy (`exponential-delay` when checkpointing is on and it is unset).
pub const RESTART_STRATEGY: &str = "restart-strategy.type";

/// One entry of `GET /jobmanager/config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigEntry {
    /// Config key.
    pub key: String,
    /// Value as written.
    pub value: String,
}

/// The keys set on the JobManager (what `/jobmanager/config` lists).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobManagerConfig {
    /// key → value, verbatim.
    pub entries: BTreeMap<String, String>,
}

impl JobManagerConfig {
    /// From the REST entries (a repeated key keeps its last value).
    pub fn from_entries(entries: Vec<ConfigEntry>) -> Self {
        Self {
            entries: entries.into_iter().map(|e| (e.key, e.value)).collect(),
        }
    }

    /// A config from `(key, value)` pairs (tests).
    #[cfg(test)]
    pub(crate) fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Self::from_entries(
            pairs
                .iter()
                .map(|(k, v)| ConfigEntry {
                    key: (*k).into(),
                    value: (*v).into(),
                })
                .collect(),
        )
    }

    /// The value of `key`, trimmed, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(|v| v.trim())
    }

    /// `scheduler-mode: reactive` (Flink parses the enum case-insensitively).
    pub fn reactive(&self) -> bool {
        self.get(SCHEDULER_MODE)
            .is_some_and(|m| m.eq_ignore_ascii_case("reactive"))
    }

    /// The first of `keys` that is set, with its key.
    fn first<'a>(&'a self, keys: &[&'static str]) -> Option<(&'static str, &'a str)> {
        keys.iter().find_map(|k| self.get(k).map(|v| (*k, v)))
    }
}

/// A Flink release line, from `/overview`'s `flink-version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlinkLine {
    /// 1.x, with its minor version.
    V1 {
        /// Minor version (20 for 1.20.5).
        minor: u32,
    },
    /// 2.x and later.
    V2,
}

impl FlinkLine {
    /// Parses `2.3.0`, `1.20.5`, `1.20-SNAPSHOT`; `None` when unparsable.
    pub fn parse(version: &str) -> Option<Self> {
        let mut parts = version.trim().split(['.', '-']);
        let major: u32 = parts.next()?.parse().ok()?;
        let minor: u32 = parts.next()?.parse().ok()?;
        match major {
            1 => Some(FlinkLine::V1 { minor }),
            m if m >= 2 => Some(FlinkLine::V2),
            _ => None,
        }
    }

    /// True for 1.18+ (the resource-requirements API; the operator's in-place path).
    pub fn supports_requirements_api(self) -> bool {
        match self {
            FlinkLine::V1 { minor } => minor >= 18,
            FlinkLine::V2 => true,
        }
    }

    /// `1.x` or `2.x`, for messages and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            FlinkLine::V1 { .. } => "1.x",
            FlinkLine::V2 => "2.x",
        }
    }
}

/// Which scheduler runs the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scheduler {
    /// The adaptive scheduler (`jobmanager.scheduler: adaptive`, or reactive mode).
    Adaptive,
    /// Any other (Flink's default `Default` scheduler): no in-place rescale.
    Other,
}

/// Where an effective value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "from")]
pub enum Source {
    /// The key was set (this key, possibly a deprecated fallback key).
    Set {
        /// The key that was set.
        key: String,
    },
    /// Not set: the line's default.
    Default,
    /// Flink 2.3's `/jobs/:id/rescales/config` (the effective value).
    Effective,
}

/// An effective duration setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Timing {
    /// The key that governs it on this line (the current name).
    pub key: &'static str,
    /// The effective value.
    pub value: Duration,
    /// Where the value comes from.
    pub source: Source,
}

/// What the scaler needs to know about the JobManager's set-up.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlinkSetup {
    /// `flink-version` from `/overview`.
    pub version: String,
    /// The line, when the version parses.
    pub line: Option<FlinkLine>,
    /// The scheduler (`/jobs/:id` `schedulerType` when reported, else the config).
    pub scheduler: Scheduler,
    /// `scheduler-mode: reactive`.
    pub reactive: bool,
    /// Cooldown after entering Executing (1.x `scaling-interval.min`, 2.x
    /// `executing.cooldown-after-rescaling`).
    pub cooldown: Timing,
    /// Stabilization while waiting for resources (job start, after every restart).
    pub submission_stabilization: Timing,
    /// 2.x only: stabilization of a running job before rescaling to more resources.
    pub executing_stabilization: Option<Timing>,
    /// 2.3 rescale history size (0 = off; always 0 on 1.x).
    pub rescale_history_size: u32,
    /// `restart-strategy.type` as set (`None`: Flink's default, `exponential-delay` with
    /// checkpointing).
    pub restart_strategy: Option<String>,
}

/// Why a config value could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Flink config {key}: cannot parse {value:?} as a duration")]
pub struct ConfigValueError {
    /// The key.
    pub key: String,
    /// The value as written.
    pub value: String,
}

/// Parses a Flink duration (`TimeUtils.parseDuration`): a number with an optional unit
/// (`ms`, `s`, `min`, `h`, `d` and their long forms; none = milliseconds), or ISO-8601
/// `PT…` (how Flink prints defaults).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    if let Some(iso) = t.strip_prefix("PT").or_else(|| t.strip_prefix("pt")) {
        return parse_iso(iso);
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().ok()?;
    let ms = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => n,
        "s" | "sec" | "secs" | "second" | "seconds" => n.checked_mul(1_000)?,
        "m" | "min" | "mins" | "minute" | "minutes" => n.checked_mul(60_000)?,
        "h" | "hour" | "hours" => n.checked_mul(3_600_000)?,
        "d" | "day" | "days" => n.checked_mul(86_400_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(ms))
}

/// `1H2M3.5S` (after `PT`).
fn parse_iso(mut rest: &str) -> Option<Duration> {
    let mut total = 0.0_f64;
    while !rest.is_empty() {
        let end = rest.find(|c: char| c.is_ascii_alphabetic())?;
        let (num, tail) = rest.split_at(end);
        let n: f64 = num.parse().ok()?;
        let mut chars = tail.chars();
        let unit = chars.next()?.to_ascii_uppercase();
        total += n * match unit {
            'H' => 3600.0,
            'M' => 60.0,
            'S' => 1.0,
            _ => return None,
        };
        rest = chars.as_str();
    }
    (total.is_finite() && total >= 0.0).then(|| Duration::from_secs_f64(total))
}

/// A duration setting: the first of `keys` that is set, else `default`.
fn timing(
    config: &JobManagerConfig,
    key: &'static str,
    keys: &[&'static str],
    default: Duration,
) -> Result<Timing, ConfigValueError> {
    match config.first(keys) {
        Some((set, raw)) => Ok(Timing {
            key,
            value: parse_duration(raw).ok_or_else(|| ConfigValueError {
                key: set.to_string(),
                value: raw.to_string(),
            })?,
            source: Source::Set {
                key: set.to_string(),
            },
        }),
        None => Ok(Timing {
            key,
            value: default,
            source: Source::Default,
        }),
    }
}

impl FlinkSetup {
    /// Reads the set-up from the JobManager's config, the cluster's `version` and the
    /// job's `schedulerType` (`/jobs/:id`, 2.x only; `None` when not reported).
    pub fn from_config(
        config: &JobManagerConfig,
        version: &str,
        scheduler_type: Option<&str>,
    ) -> Result<Self, ConfigValueError> {
        let line = FlinkLine::parse(version);
        let reactive = config.reactive();
        // Reactive mode runs the adaptive scheduler whatever `jobmanager.scheduler` says
        // (`ClusterOptions#getSchedulerType`).
        let adaptive = match scheduler_type {
            Some(t) => t.eq_ignore_ascii_case("adaptive"),
            None => {
                reactive
                    || config
                        .get(SCHEDULER)
                        .is_some_and(|s| s.eq_ignore_ascii_case("adaptive"))
            }
        };
        let v2 = line == Some(FlinkLine::V2);
        let secs = Duration::from_secs;
        // Reactive mode makes the submission stabilization 0 unless the key is set
        // (`AdaptiveScheduler$Settings#of`, both jars).
        let stab_default = if reactive { Duration::ZERO } else { secs(10) };
        let (cooldown, submission, executing) = if v2 {
            (
                timing(config, COOLDOWN_2X, &[COOLDOWN_2X, COOLDOWN_1X], secs(30))?,
                timing(
                    config,
                    SUBMISSION_STAB_2X,
                    &[SUBMISSION_STAB_2X, STABILIZATION_1X],
                    stab_default,
                )?,
                Some(timing(
                    config,
                    EXECUTING_STAB_2X,
                    &[EXECUTING_STAB_2X],
                    secs(60),
                )?),
            )
        } else {
            (
                timing(config, COOLDOWN_1X, &[COOLDOWN_1X], secs(30))?,
                timing(config, STABILIZATION_1X, &[STABILIZATION_1X], stab_default)?,
                None,
            )
        };
        let history = if v2 {
            config
                .get(RESCALE_HISTORY_SIZE)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        } else {
            0
        };
        Ok(Self {
            version: version.to_string(),
            line,
            scheduler: if adaptive {
                Scheduler::Adaptive
            } else {
                Scheduler::Other
            },
            reactive,
            cooldown,
            submission_stabilization: submission,
            executing_stabilization: executing,
            rescale_history_size: history,
            restart_strategy: config.get(RESTART_STRATEGY).map(str::to_string),
        })
    }

    /// Takes the effective values of Flink 2.3's `/jobs/:id/rescales/config`.
    pub fn with_rescales_config(mut self, c: &RescalesConfig) -> Self {
        let eff = |t: &mut Timing, ms: Option<u64>| {
            if let Some(ms) = ms {
                t.value = Duration::from_millis(ms);
                if t.source == Source::Default {
                    t.source = Source::Effective;
                }
            }
        };
        eff(&mut self.cooldown, c.executing_cooldown_ms);
        eff(
            &mut self.submission_stabilization,
            c.submission_stabilization_ms,
        );
        if let Some(e) = self.executing_stabilization.as_mut() {
            eff(e, c.executing_stabilization_ms);
        }
        if let Some(n) = c.rescale_history_max {
            self.rescale_history_size = n;
        }
        if let Some(mode) = &c.scheduler_execution_mode {
            self.reactive = mode.eq_ignore_ascii_case("reactive");
        }
        self
    }

    /// True when a rescale waits for the next completed checkpoint (FLIP-461): Flink 2.x's
    /// adaptive scheduler outside reactive mode (the 1.20.5 jar has no rescale trigger;
    /// checkpointing, the other condition, is the job's: `/jobs/:id/checkpoints/config`).
    pub fn rescales_at_checkpoints(&self) -> bool {
        self.line == Some(FlinkLine::V2) && self.scheduler == Scheduler::Adaptive && !self.reactive
    }

    /// True when Flink 2.3's rescale history is on (records carry the trigger cause).
    pub fn rescale_history(&self) -> bool {
        self.rescale_history_size > 0
    }
}

/// Flink 2.3's `GET /jobs/:id/rescales/config` (the effective timings, in ms). 1.x: 404.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RescalesConfig {
    /// `rescaleHistoryMax`.
    #[serde(rename = "rescaleHistoryMax", default)]
    pub rescale_history_max: Option<u32>,
    /// `schedulerExecutionMode` (`REACTIVE`, or null).
    #[serde(rename = "schedulerExecutionMode", default)]
    pub scheduler_execution_mode: Option<String>,
    /// `submissionResourceStabilizationTimeoutInMillis`.
    #[serde(rename = "submissionResourceStabilizationTimeoutInMillis", default)]
    pub submission_stabilization_ms: Option<u64>,
    /// `executingCooldownTimeoutInMillis`.
    #[serde(rename = "executingCooldownTimeoutInMillis", default)]
    pub executing_cooldown_ms: Option<u64>,
    /// `executingResourceStabilizationTimeoutInMillis`.
    #[serde(rename = "executingResourceStabilizationTimeoutInMillis", default)]
    pub executing_stabilization_ms: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> JobManagerConfig {
        JobManagerConfig::from_pairs(pairs)
    }

    /// Flink's duration syntax: plain numbers are ms; units short and long; ISO-8601.
    #[test]
    fn durations_as_flink_writes_them() {
        let s = Duration::from_secs;
        for (text, want) in [
            ("30s", Some(s(30))),
            ("30 s", Some(s(30))),
            ("2000", Some(Duration::from_millis(2000))),
            ("1 min", Some(s(60))),
            ("5m", Some(s(300))),
            ("1h", Some(s(3600))),
            ("0s", Some(Duration::ZERO)),
            ("500ms", Some(Duration::from_millis(500))),
            ("PT30S", Some(s(30))),
            ("PT1M", Some(s(60))),
            ("PT1H0.5S", Some(Duration::from_millis(3_600_500))),
            ("thirty", None),
            ("30 fortnights", None),
            ("", None),
        ] {
            assert_eq!(parse_duration(text), want, "{text:?}");
        }
    }

    #[test]
    fn lines_from_versions() {
        assert_eq!(FlinkLine::parse("2.3.0"), Some(FlinkLine::V2));
        assert_eq!(
            FlinkLine::parse("1.20.5"),
            Some(FlinkLine::V1 { minor: 20 })
        );
        assert_eq!(
            FlinkLine::parse("1.17-SNAPSHOT"),
            Some(FlinkLine::V1 { minor: 17 })
        );
        assert_eq!(FlinkLine::parse("<unknown>"), None);
        assert!(!FlinkLine::V1 { minor: 17 }.supports_requirements_api());
        assert!(FlinkLine::V1 { minor: 18 }.supports_requirements_api());
    }

    /// Unset keys take each line's defaults; the deprecated 1.x keys still count on 2.x;
    /// reactive mode makes the submission stabilization 0 unless set.
    #[test]
    fn defaults_and_fallback_keys_per_line() {
        let empty = config(&[]);
        let v1 = FlinkSetup::from_config(&empty, "1.20.5", None).expect("setup");
        assert_eq!(v1.scheduler, Scheduler::Other);
        assert_eq!(v1.cooldown.value, Duration::from_secs(30));
        assert_eq!(v1.cooldown.key, COOLDOWN_1X);
        assert_eq!(v1.submission_stabilization.value, Duration::from_secs(10));
        assert_eq!(v1.executing_stabilization, None);
        let v2 = FlinkSetup::from_config(&empty, "2.3.0", None).expect("setup");
        assert_eq!(v2.cooldown.key, COOLDOWN_2X);
        assert_eq!(
            v2.executing_stabilization.map(|t| t.value),
            Some(Duration::from_secs(60))
        );
        let old_keys = config(&[
            (COOLDOWN_1X, "2s"),
            (STABILIZATION_1X, "1s"),
            (SCHEDULER_MODE, "REACTIVE"),
        ]);
        let v2 = FlinkSetup::from_config(&old_keys, "2.3.0", None).expect("setup");
        assert!(v2.reactive);
        assert_eq!(v2.scheduler, Scheduler::Adaptive);
        assert_eq!(v2.cooldown.value, Duration::from_secs(2));
        assert_eq!(
            v2.cooldown.source,
            Source::Set {
                key: COOLDOWN_1X.into()
            }
        );
        assert_eq!(v2.submission_stabilization.value, Duration::from_secs(1));
        let reactive = config(&[(SCHEDULER_MODE, "reactive")]);
        let v1 = FlinkSetup::from_config(&reactive, "1.20.5", None).expect("setup");
        assert_eq!(v1.submission_stabilization.value, Duration::ZERO);
        let bad = config(&[(COOLDOWN_2X, "soon")]);
        let e = FlinkSetup::from_config(&bad, "2.3.0", None).expect_err("bad value");
        assert_eq!(e.key, COOLDOWN_2X);
    }

    /// `schedulerType` of `/jobs/:id` wins over the config when Flink reports it.
    #[test]
    fn scheduler_type_wins() {
        let c = config(&[(SCHEDULER, "adaptive")]);
        let s = FlinkSetup::from_config(&c, "2.3.0", Some("Default")).expect("setup");
        assert_eq!(s.scheduler, Scheduler::Other);
        let s = FlinkSetup::from_config(&config(&[]), "2.3.0", Some("Adaptive")).expect("setup");
        assert_eq!(s.scheduler, Scheduler::Adaptive);
    }
}

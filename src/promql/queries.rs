//! The PromQL behind every [`Signal`]: defaults written for Flink's PrometheusReporter
//! names and labels, overridable per policy and per ScaledObject, rendered per job.
//!
//! Every query returns **one series per group**: per vertex `by (task_id)`, per
//! TaskManager `by (tm_id)`, per job or cluster a single series. One query per signal
//! per job per tick, never one per vertex.
//!
//! # Placeholders
//! | placeholder | expands to |
//! |---|---|
//! | `{{job_id}}` | the Flink job id (32 hex characters) |
//! | `{{job_name}}` | the job name sanitised like Flink's reporter does (every character outside `[a-zA-Z0-9:_]` becomes `_`: `my-job` → `my_job`) |
//! | `{{matchers}}` | the extra label matchers from the config followed by a comma (`namespace="x",`), or nothing. Put it first inside a selector: `metric{ {{matchers}}job_id="{{job_id}}"}` |
//!
//! # Choices made by the defaults
//! * Load signals use Flink's Meters/Gauges that are already per-second rates
//!   (`busyTimeMsPerSecond`, `numRecordsInPerSecond`): they work with any scrape interval,
//!   but Flink computes them over a 60 s moving window updated every 5 s (`MeterView`,
//!   `TimerGauge`), so a load step shows in full only after about a minute (measured by
//!   `fks-lab`). Jobs that must react within seconds override `busyTime`, `recordsIn`,
//!   `recordsOut` and `lagGrowth` with `rate()` over Flink's counters
//!   (`accumulateBusyTimeMs`, `numRecordsIn`, `numRecordsOut`): README "Reacting within
//!   seconds", `fks_lab::scenario::FAST_QUERIES`.
//! * `recordsIn` of a **source** vertex is the source operator's
//!   `numRecordsOutPerSecond` (records it emits): the task-level `numRecordsIn` of a
//!   source task counts network input and is 0, and operator `numRecordsIn` is only
//!   counted by FLIP-27 readers built on `SourceReaderBase`, while `numRecordsOut` is
//!   counted for every source (legacy `SourceFunction` too). Source operators are found by
//!   Flink's `Source: <name>` naming (`operator_name=~"Source.*"`); other vertices use
//!   the task-level `numRecordsInPerSecond`. The two halves are joined with `or`.
//! * `gcTime` uses Flink's `GarbageCollector_All_TimeMsPerSecond` gauge where it exists
//!   (Flink 1.19+), else the rate of the per-collector `..._Time` counters summed per
//!   TaskManager *before* `rate` (a subquery): `rate` drops the metric name, so rating the
//!   collectors separately fails with "vector cannot contain metrics with the same
//!   labelset" (seen on real Flink 2.3 with G1 Young + Old).
//! * TaskManager signals are restricted to the TaskManagers that run a task of the job
//!   (`and on (tm_id)` a job-scoped task metric), so session clusters work.
//! * Cluster slots have no job label: they are taken from the JobManager that runs the job
//!   (`and on (host)` its `job_numRestarts` series, both carry Flink's `host` label), so
//!   several clusters and standby JobManagers in one Prometheus do not mix.

use std::collections::BTreeMap;

use crate::core::Signal;

/// Per-vertex task metric selector used by the defaults.
macro_rules! job_sel {
    () => {
        r#"{ {{matchers}}job_id="{{job_id}}"}"#
    };
}

/// The default PromQL of a signal.
pub fn default_query(signal: Signal) -> &'static str {
    match signal {
        Signal::BusyTime => concat!(
            "max by (task_id) (flink_taskmanager_job_task_busyTimeMsPerSecond",
            job_sel!(),
            ")"
        ),
        Signal::BackPressuredTime => concat!(
            "max by (task_id) (flink_taskmanager_job_task_backPressuredTimeMsPerSecond",
            job_sel!(),
            ")"
        ),
        Signal::RecordsIn => concat!(
            r#"sum by (task_id) (flink_taskmanager_job_task_operator_numRecordsOutPerSecond{ {{matchers}}job_id="{{job_id}}",operator_name=~"Source.*"})"#,
            " or sum by (task_id) (flink_taskmanager_job_task_numRecordsInPerSecond",
            job_sel!(),
            ")"
        ),
        Signal::RecordsOut => concat!(
            "sum by (task_id) (flink_taskmanager_job_task_numRecordsOutPerSecond",
            job_sel!(),
            ")"
        ),
        Signal::PendingRecords => concat!(
            "sum by (task_id) (flink_taskmanager_job_task_operator_pendingRecords",
            job_sel!(),
            ")"
        ),
        Signal::LagGrowth => concat!(
            "sum by (task_id) (deriv(flink_taskmanager_job_task_operator_pendingRecords",
            job_sel!(),
            "[1m]))"
        ),
        Signal::SourcePartitions => concat!(
            "count by (task_id) (count by (task_id, topic, partition) (flink_taskmanager_job_task_operator_KafkaSourceReader_topic_partition_currentOffset",
            job_sel!(),
            "))"
        ),
        Signal::CpuLoad => concat!(
            "max by (tm_id) (flink_taskmanager_Status_JVM_CPU_Load{ {{matchers}}})",
            " and on (tm_id) group by (tm_id) (flink_taskmanager_job_task_busyTimeMsPerSecond",
            job_sel!(),
            ")"
        ),
        Signal::HeapUsed => concat!(
            "max by (tm_id) (flink_taskmanager_Status_JVM_Memory_Heap_Used{ {{matchers}}})",
            " and on (tm_id) group by (tm_id) (flink_taskmanager_job_task_busyTimeMsPerSecond",
            job_sel!(),
            ")"
        ),
        Signal::HeapMax => concat!(
            "max by (tm_id) (flink_taskmanager_Status_JVM_Memory_Heap_Max{ {{matchers}}})",
            " and on (tm_id) group by (tm_id) (flink_taskmanager_job_task_busyTimeMsPerSecond",
            job_sel!(),
            ")"
        ),
        Signal::GcTime => concat!(
            "(max by (tm_id) (flink_taskmanager_Status_JVM_GarbageCollector_All_TimeMsPerSecond{ {{matchers}}})",
            r#" or sum by (tm_id) (rate((sum by (tm_id) ({ {{matchers}}__name__=~"flink_taskmanager_Status_JVM_GarbageCollector_.+_Time",__name__!="flink_taskmanager_Status_JVM_GarbageCollector_All_Time"}))[1m:5s])))"#,
            " and on (tm_id) group by (tm_id) (flink_taskmanager_job_task_busyTimeMsPerSecond",
            job_sel!(),
            ")"
        ),
        Signal::NumRestarts => concat!("max(flink_jobmanager_job_numRestarts", job_sel!(), ")"),
        Signal::NumRescales => concat!("max(flink_jobmanager_job_numRescales", job_sel!(), ")"),
        Signal::SlotsTotal => concat!(
            "max(flink_jobmanager_taskSlotsTotal{ {{matchers}}}",
            " and on (host) flink_jobmanager_job_numRestarts",
            job_sel!(),
            ")"
        ),
        Signal::SlotsAvailable => concat!(
            "max(flink_jobmanager_taskSlotsAvailable{ {{matchers}}}",
            " and on (host) flink_jobmanager_job_numRestarts",
            job_sel!(),
            ")"
        ),
    }
}

/// Sanitises a label value like Flink's PrometheusReporter (`filterLabelValueCharacters`,
/// the default): every character outside `[a-zA-Z0-9:_]` becomes `_`.
pub fn sanitize_label_value(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == ':' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The per-job values substituted into query templates.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobVars {
    /// Flink job id.
    pub job_id: String,
    /// Flink job name as Flink reports it (sanitised when rendered).
    pub job_name: String,
    /// Extra label matchers (e.g. `namespace="x",pod=~"jm-.*"`), no braces; empty = none.
    pub matchers: String,
}

impl JobVars {
    /// Vars for a job without extra matchers.
    pub fn new(job_id: impl Into<String>, job_name: impl Into<String>) -> Self {
        Self {
            job_id: job_id.into(),
            job_name: job_name.into(),
            matchers: String::new(),
        }
    }

    /// Sets the extra label matchers.
    pub fn with_matchers(mut self, matchers: impl Into<String>) -> Self {
        self.matchers = matchers.into();
        self
    }
}

/// A query template is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template uses a placeholder we do not know.
    #[error("signal {signal}: unknown placeholder {{{{{name}}}}} (known: {{{{job_id}}}}, {{{{job_name}}}}, {{{{matchers}}}})")]
    UnknownPlaceholder {
        /// The signal whose query it is.
        signal: Signal,
        /// The placeholder name.
        name: String,
    },
    /// A required signal's query was disabled (set to an empty string).
    #[error("signal {signal} is required and its query cannot be empty")]
    RequiredDisabled {
        /// The signal.
        signal: Signal,
    },
    /// The job variables contain characters that would break out of a label matcher.
    #[error("{field} {value:?} contains characters not allowed in a label matcher value")]
    UnsafeValue {
        /// `job_id` or `job_name`.
        field: &'static str,
        /// The value.
        value: String,
    },
    /// The extra matchers are not a bare matcher list.
    #[error("matchers {0:?} must be a comma-separated matcher list without braces, e.g. namespace=\"x\"")]
    BadMatchers(String),
}

impl TemplateError {
    /// Bounded label value.
    pub fn kind(&self) -> &'static str {
        match self {
            TemplateError::UnknownPlaceholder { .. } => "unknown_placeholder",
            TemplateError::RequiredDisabled { .. } => "required_disabled",
            TemplateError::UnsafeValue { .. } => "unsafe_value",
            TemplateError::BadMatchers(_) => "bad_matchers",
        }
    }
}

/// The query of every signal for one ScaledObject: defaults, then per-policy overrides,
/// then per-ScaledObject overrides. An empty override disables an optional signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalQueries {
    queries: BTreeMap<Signal, String>,
}

impl Default for SignalQueries {
    fn default() -> Self {
        Self::defaults()
    }
}

impl SignalQueries {
    /// The default query for every signal.
    pub fn defaults() -> Self {
        Self {
            queries: Signal::ALL
                .into_iter()
                .map(|s| (s, default_query(s).to_string()))
                .collect(),
        }
    }

    /// Applies overrides (later layers win). Validates placeholders and refuses to
    /// disable a required signal.
    pub fn with_overrides(
        mut self,
        overrides: &BTreeMap<Signal, String>,
    ) -> Result<Self, TemplateError> {
        for (signal, query) in overrides {
            let query = query.trim();
            if query.is_empty() && signal.is_required() {
                return Err(TemplateError::RequiredDisabled { signal: *signal });
            }
            check_placeholders(*signal, query)?;
            self.queries.insert(*signal, query.to_string());
        }
        Ok(self)
    }

    /// The query template of a signal; `None` when disabled.
    pub fn get(&self, signal: Signal) -> Option<&str> {
        self.queries
            .get(&signal)
            .map(String::as_str)
            .filter(|q| !q.is_empty())
    }

    /// Enabled signals with their templates, in `Signal` order.
    pub fn enabled(&self) -> impl Iterator<Item = (Signal, &str)> + '_ {
        self.queries
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(s, q)| (*s, q.as_str()))
    }

    /// Renders the query of `signal` for a job; `Ok(None)` when the signal is disabled.
    pub fn render(&self, signal: Signal, vars: &JobVars) -> Result<Option<String>, TemplateError> {
        let Some(template) = self.get(signal) else {
            return Ok(None);
        };
        render(signal, template, vars).map(Some)
    }
}

/// Renders one template.
pub fn render(signal: Signal, template: &str, vars: &JobVars) -> Result<String, TemplateError> {
    check_placeholders(signal, template)?;
    let safe = |field: &'static str, value: &str| {
        if value.contains(['"', '\\', '\n', '{', '}']) {
            Err(TemplateError::UnsafeValue {
                field,
                value: value.to_string(),
            })
        } else {
            Ok(())
        }
    };
    safe("job_id", &vars.job_id)?;
    let job_name = sanitize_label_value(&vars.job_name);
    check_matchers(&vars.matchers)?;
    let matchers = vars.matchers.trim().trim_end_matches(',').trim();
    let matchers = if matchers.is_empty() {
        String::new()
    } else {
        format!("{matchers},")
    };
    Ok(template
        .replace("{{job_id}}", &vars.job_id)
        .replace("{{job_name}}", &job_name)
        .replace("{{matchers}}", &matchers))
}

/// Checks extra label matchers from the config (`namespace="x",pod=~"jm-.*"`): no
/// braces or newlines (they would break out of the selector). Syntax errors beyond that
/// surface as PromQL errors naming the signal.
pub fn check_matchers(matchers: &str) -> Result<(), TemplateError> {
    let m = matchers.trim();
    let balanced_quotes = m.matches('"').count() % 2 == 0;
    if m.contains(['{', '}', '\n']) || !balanced_quotes || m.starts_with(',') {
        return Err(TemplateError::BadMatchers(matchers.to_string()));
    }
    Ok(())
}

fn check_placeholders(signal: Signal, template: &str) -> Result<(), TemplateError> {
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        // `{{{matchers}}}`: skip extra opening braces
        if after.starts_with('{') {
            rest = &rest[start + 1..];
            continue;
        }
        let Some(end) = after.find("}}") else {
            break;
        };
        let name = &after[..end];
        let is_name =
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if is_name && !matches!(name, "job_id" | "job_name" | "matchers") {
            return Err(TemplateError::UnknownPlaceholder {
                signal,
                name: name.to_string(),
            });
        }
        rest = &after[end + 2..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promql::Scope;

    const JOB: &str = "0123456789abcdef0123456789abcdef";

    /// Flink's sanitisation: every character outside `[a-zA-Z0-9:_]` becomes `_`.
    #[test]
    fn sanitizes_like_flink() {
        assert_eq!(sanitize_label_value("my-job"), "my_job");
        assert_eq!(
            sanitize_label_value("Source: Kafka -> Map"),
            "Source:_Kafka____Map"
        );
        assert_eq!(sanitize_label_value("ok_name:1"), "ok_name:1");
    }

    /// Every default renders without leftover placeholders, groups as documented and
    /// scopes job queries to the job id.
    #[test]
    fn defaults_render() {
        let q = SignalQueries::defaults();
        let vars = JobVars::new(JOB, "my-job");
        for signal in Signal::ALL {
            let rendered = q.render(signal, &vars).expect("renders").expect("enabled");
            assert!(!rendered.contains("{{"), "{signal}: {rendered}");
            let per_vertex = Scope::of(signal) == Scope::Vertex;
            assert_eq!(
                rendered.contains("by (task_id)"),
                per_vertex,
                "{signal}: {rendered}"
            );
            assert!(
                rendered.contains(&format!("job_id=\"{JOB}\"")),
                "{signal}: {rendered}"
            );
        }
    }

    /// `{{matchers}}` expands with a trailing comma, or to nothing.
    #[test]
    fn matchers_placeholder() {
        let t = r#"m{ {{matchers}}job_id="{{job_id}}"} + n{{{matchers}}} + x{j="{{job_name}}"}"#;
        let with = render(
            Signal::BusyTime,
            t,
            &JobVars::new("j1", "a-b").with_matchers("namespace=\"x\", "),
        )
        .expect("renders");
        assert_eq!(
            with,
            r#"m{ namespace="x",job_id="j1"} + n{namespace="x",} + x{j="a_b"}"#
        );
        let without = render(Signal::BusyTime, t, &JobVars::new("j1", "a")).expect("renders");
        assert_eq!(without, r#"m{ job_id="j1"} + n{} + x{j="a"}"#);
        let e = render(
            Signal::BusyTime,
            t,
            &JobVars::new("j1", "a").with_matchers("{a=\"b\"}"),
        )
        .expect_err("braces refused");
        assert_eq!(e.kind(), "bad_matchers");
        let e = render(Signal::BusyTime, t, &JobVars::new("j\"1", "a")).expect_err("quote refused");
        assert_eq!(e.kind(), "unsafe_value");
    }

    /// Overrides replace defaults, unknown placeholders and disabling a required signal
    /// are refused, disabling an optional one works.
    #[test]
    fn overrides() {
        let mut o = BTreeMap::new();
        o.insert(Signal::PendingRecords, String::new());
        o.insert(
            Signal::BusyTime,
            "max by (task_id) (my_busy{job=\"{{job_name}}\"})".to_string(),
        );
        let q = SignalQueries::defaults()
            .with_overrides(&o)
            .expect("valid overrides");
        assert_eq!(q.get(Signal::PendingRecords), None);
        assert_eq!(q.enabled().count(), Signal::ALL.len() - 1);
        assert_eq!(
            q.render(Signal::BusyTime, &JobVars::new("j", "x-y"))
                .expect("renders"),
            Some("max by (task_id) (my_busy{job=\"x_y\"})".to_string())
        );
        let mut bad = BTreeMap::new();
        bad.insert(Signal::CpuLoad, "x{a=\"{{jobid}}\"}".to_string());
        let e = SignalQueries::defaults()
            .with_overrides(&bad)
            .expect_err("unknown placeholder");
        assert!(
            e.to_string()
                .starts_with("signal cpuLoad: unknown placeholder {{jobid}}"),
            "{e}"
        );
        let mut req = BTreeMap::new();
        req.insert(Signal::RecordsIn, " ".to_string());
        let e = SignalQueries::defaults()
            .with_overrides(&req)
            .expect_err("required");
        assert_eq!(
            e,
            TemplateError::RequiredDisabled {
                signal: Signal::RecordsIn
            }
        );
    }
}

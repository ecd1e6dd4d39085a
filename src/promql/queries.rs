//! The PromQL behind every [`Signal`]: the defaults of a preset ([`super::defaults`]),
//! overridable per policy and per ScaledObject, rendered for one job or a batch of jobs.
//!
//! Every query returns **one series per group**: per vertex `by (task_id)`, per
//! TaskManager `by (tm_id)`, per job or cluster a single series — and, when it selects a
//! batch of jobs with `{{job_ids}}`, grouped by `job_id` too, so the rows can be handed to
//! each job ([`super::batch`]).
//!
//! # Placeholders
//! | placeholder | expands to |
//! |---|---|
//! | `{{job_ids}}` | the Flink job ids of the batch as a regex alternation (`id1\|id2`): use it as `job_id=~"{{job_ids}}"` and group by `job_id`; one query then answers every job that shares the server, matchers and template |
//! | `{{job_id}}` | the Flink job id (32 hex characters); a template that uses it (or `{{job_name}}`) is read per job |
//! | `{{job_name}}` | the job name sanitised like Flink's reporter does (every character outside `[a-zA-Z0-9:_]` becomes `_`: `my-job` → `my_job`) |
//! | `{{matchers}}` | the extra label matchers from the config followed by a comma (`namespace="x",`), or nothing. Put it first inside a selector: `metric{ {{matchers}}job_id=~"{{job_ids}}"}` |
//! | `{{window}}` | the counter window derived from the learned scrape interval: `max(4 × interval, 10s)` (e.g. `60s`) |
//! | `{{arrival_window}}` | the sources' arrival window: `max(4 × interval, 5s)` (e.g. `5s` at a 1 s scrape; see [`super::windows`]) |
//! | `{{interval}}` | the learned scrape interval (e.g. `15s`), e.g. a subquery resolution |

use std::collections::BTreeMap;

use super::{
    defaults::{preset_query, QueryPreset},
    windows::{promql_duration, Windows},
};
use crate::core::Signal;

/// Every placeholder a template may use.
pub const PLACEHOLDERS: [&str; 7] = [
    "job_ids",
    "job_id",
    "job_name",
    "matchers",
    "window",
    "arrival_window",
    "interval",
];

/// The signals that size a vertex: their windows decide how long a load change takes to
/// show in full (see [`SignalQueries::load_follows_window`]).
const LOAD_SIGNALS: [Signal; 5] = [
    Signal::BusyTime,
    Signal::BackPressuredTime,
    Signal::RecordsIn,
    Signal::RecordsOut,
    Signal::LagGrowth,
];

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
    #[error("signal {signal}: unknown placeholder {{{{{name}}}}} (known: {{{{job_ids}}}}, {{{{job_id}}}}, {{{{job_name}}}}, {{{{matchers}}}}, {{{{window}}}}, {{{{arrival_window}}}}, {{{{interval}}}})")]
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

/// How the rows of a template are attributed to jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Batching {
    /// Uses `{{job_id}}` or `{{job_name}}`: rendered and read per job; every row is the job's.
    PerJob,
    /// Uses `{{job_ids}}` (and no per-job placeholder): one query for a batch of jobs, each
    /// row attributed by its `job_id` label.
    ByJobId,
    /// Names no job at all (a cluster-wide query): one query, every row goes to every job.
    Shared,
}

impl Batching {
    /// How `template` can be batched.
    pub fn of(template: &str) -> Self {
        if template.contains("{{job_id}}") || template.contains("{{job_name}}") {
            Batching::PerJob
        } else if template.contains("{{job_ids}}") {
            Batching::ByJobId
        } else {
            Batching::Shared
        }
    }
}

/// The query of every signal for one ScaledObject: a preset's defaults, then per-policy
/// overrides, then per-ScaledObject overrides. An empty override disables an optional
/// signal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SignalQueries {
    queries: BTreeMap<Signal, String>,
}

impl Default for SignalQueries {
    fn default() -> Self {
        Self::defaults()
    }
}

impl SignalQueries {
    /// The default query for every signal (the `counters` preset).
    pub fn defaults() -> Self {
        Self::preset(QueryPreset::default())
    }

    /// The queries of a preset.
    pub fn preset(preset: QueryPreset) -> Self {
        Self {
            queries: Signal::ALL
                .into_iter()
                .map(|s| (s, preset_query(preset, s).to_string()))
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

    /// Whether every enabled load signal (busy and back-pressured time, record rates, lag
    /// growth: what sizes a vertex) is read over `{{window}}`, so a load change shows in
    /// full once that window (plus a scrape) has passed it. False for the `gauges` preset
    /// (Flink's 60 s moving averages) and for overrides with fixed windows: then no one
    /// knows how long the signals take to settle.
    pub fn load_follows_window(&self) -> bool {
        LOAD_SIGNALS
            .iter()
            .filter_map(|s| self.get(*s))
            .all(|q| q.contains("{{window}}"))
    }

    /// Whether `arrivalRate` is enabled and read over `{{arrival_window}}`, so a load
    /// step shows in the sources' arrival once that window has passed the first sample
    /// taken after it.
    pub fn arrival_follows_window(&self) -> bool {
        self.get(Signal::ArrivalRate)
            .is_some_and(|q| q.contains("{{arrival_window}}"))
    }

    /// Enabled signals with their templates, in `Signal` order.
    pub fn enabled(&self) -> impl Iterator<Item = (Signal, &str)> + '_ {
        self.queries
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(s, q)| (*s, q.as_str()))
    }

    /// Renders the query of `signal` for one job; `Ok(None)` when the signal is disabled.
    pub fn render(
        &self,
        signal: Signal,
        vars: &JobVars,
        windows: &Windows,
    ) -> Result<Option<String>, TemplateError> {
        let Some(template) = self.get(signal) else {
            return Ok(None);
        };
        render(signal, template, vars, windows).map(Some)
    }
}

/// Renders one template for one job (`{{job_ids}}` is that job's id).
pub fn render(
    signal: Signal,
    template: &str,
    vars: &JobVars,
    windows: &Windows,
) -> Result<String, TemplateError> {
    render_for(signal, template, std::slice::from_ref(vars), windows)
}

/// Renders one template for the jobs of a batch: `{{job_ids}}` is their ids joined by `|`;
/// the per-job placeholders and `{{matchers}}` take the first job's values (a batch
/// shares its matchers; a [`Batching::PerJob`] template is rendered for one job only).
pub fn render_for(
    signal: Signal,
    template: &str,
    jobs: &[JobVars],
    windows: &Windows,
) -> Result<String, TemplateError> {
    check_placeholders(signal, template)?;
    let first = jobs.first().cloned().unwrap_or_default();
    for job in jobs {
        check_job_id(&job.job_id)?;
    }
    let job_name = sanitize_label_value(&first.job_name);
    check_matchers(&first.matchers)?;
    let matchers = first.matchers.trim().trim_end_matches(',').trim();
    let matchers = if matchers.is_empty() {
        String::new()
    } else {
        format!("{matchers},")
    };
    let mut text = template.to_string();
    if text.contains("{{job_ids}}") {
        let ids: Vec<&str> = jobs.iter().map(|j| j.job_id.as_str()).collect();
        text = text.replace("{{job_ids}}", &ids.join("|"));
    }
    Ok(text
        .replace("{{job_id}}", &first.job_id)
        .replace("{{job_name}}", &job_name)
        .replace("{{matchers}}", &matchers)
        .replace("{{window}}", &promql_duration(windows.window))
        .replace("{{arrival_window}}", &promql_duration(windows.arrival))
        .replace("{{interval}}", &promql_duration(windows.interval)))
}

/// A job id must not break out of a label matcher nor act as a regex in `{{job_ids}}`.
fn check_job_id(job_id: &str) -> Result<(), TemplateError> {
    let plain = job_id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == ':');
    if plain {
        Ok(())
    } else {
        Err(TemplateError::UnsafeValue {
            field: "job_id",
            value: job_id.to_string(),
        })
    }
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
        if is_name && !PLACEHOLDERS.contains(&name) {
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

    /// Every default of both presets renders without leftover placeholders, groups by
    /// `job_id` and the scope's label, is batchable and selects the batch's job ids.
    #[test]
    fn defaults_render() {
        let w = Windows::from_interval(std::time::Duration::from_secs(15));
        for preset in [QueryPreset::Counters, QueryPreset::Gauges] {
            let q = SignalQueries::preset(preset);
            let jobs = [JobVars::new(JOB, "my-job"), JobVars::new("b2", "other")];
            for signal in Signal::ALL {
                // the gauges preset sizes sources from `recordsIn + lagGrowth`
                if (preset, signal) == (QueryPreset::Gauges, Signal::ArrivalRate) {
                    assert_eq!(q.get(signal), None);
                    continue;
                }
                let template = q.get(signal).expect("enabled");
                assert_eq!(Batching::of(template), Batching::ByJobId, "{signal}");
                let rendered = render_for(signal, template, &jobs, &w).expect("renders");
                assert!(!rendered.contains("{{"), "{signal}: {rendered}");
                let group = match Scope::of(signal) {
                    Scope::Vertex => "by (job_id, task_id)",
                    Scope::TaskManager => "by (job_id, tm_id)",
                    Scope::Job => "by (job_id)",
                };
                assert!(rendered.contains(group), "{signal}: {rendered}");
                assert!(
                    rendered.contains(&format!("job_id=~\"{JOB}|b2\"")),
                    "{signal}: {rendered}"
                );
            }
        }
    }

    /// `{{window}}` and `{{interval}}` follow the learned interval; the batching of a
    /// template follows its placeholders.
    #[test]
    fn window_placeholders_and_batching() {
        let w = Windows::from_interval(std::time::Duration::from_secs(15));
        let r = render(
            Signal::LagGrowth,
            "deriv(x[{{window}}]) + y[{{interval}}]",
            &JobVars::new("j", "n"),
            &w,
        )
        .expect("renders");
        assert_eq!(r, "deriv(x[60s]) + y[15s]");
        let one = Windows::from_interval(std::time::Duration::from_secs(1));
        let r = render(
            Signal::ArrivalRate,
            "deriv(x[{{arrival_window}}]) + deriv(y[{{window}}])",
            &JobVars::new("j", "n"),
            &one,
        )
        .expect("renders");
        assert_eq!(r, "deriv(x[5s]) + deriv(y[10s])");
        assert_eq!(Batching::of("x{a=\"{{job_id}}\"}"), Batching::PerJob);
        assert_eq!(
            Batching::of("x{a=~\"{{job_ids}}\",b=\"{{job_name}}\"}"),
            Batching::PerJob
        );
        assert_eq!(Batching::of("x{a=~\"{{job_ids}}\"}"), Batching::ByJobId);
        assert_eq!(Batching::of("max(x)"), Batching::Shared);
    }

    /// `{{matchers}}` expands with a trailing comma, or to nothing.
    #[test]
    fn matchers_placeholder() {
        let t = r#"m{ {{matchers}}job_id="{{job_id}}"} + n{{{matchers}}} + x{j="{{job_name}}"}"#;
        let w = Windows::default();
        let with = render(
            Signal::BusyTime,
            t,
            &JobVars::new("j1", "a-b").with_matchers("namespace=\"x\", "),
            &w,
        )
        .expect("renders");
        assert_eq!(
            with,
            r#"m{ namespace="x",job_id="j1"} + n{namespace="x",} + x{j="a_b"}"#
        );
        let without = render(Signal::BusyTime, t, &JobVars::new("j1", "a"), &w).expect("renders");
        assert_eq!(without, r#"m{ job_id="j1"} + n{} + x{j="a"}"#);
        let e = render(
            Signal::BusyTime,
            t,
            &JobVars::new("j1", "a").with_matchers("{a=\"b\"}"),
            &w,
        )
        .expect_err("braces refused");
        assert_eq!(e.kind(), "bad_matchers");
        let e =
            render(Signal::BusyTime, t, &JobVars::new("j\"1", "a"), &w).expect_err("quote refused");
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
            q.render(
                Signal::BusyTime,
                &JobVars::new("j", "x-y"),
                &Windows::default()
            )
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

    /// The counters preset is read over the learned window; the gauges preset (60 s
    /// moving averages) and an override with a fixed window are not; a disabled load
    /// signal does not count.
    #[test]
    fn only_windowed_load_queries_follow_the_window() {
        assert!(SignalQueries::preset(QueryPreset::Counters).load_follows_window());
        assert!(!SignalQueries::preset(QueryPreset::Gauges).load_follows_window());
        let fixed = |signal: Signal, q: &str| {
            let o = BTreeMap::from([(signal, q.to_string())]);
            SignalQueries::defaults()
                .with_overrides(&o)
                .expect("valid overrides")
        };
        let busy = "max by (task_id) (rate(busy{job_id=\"{{job_id}}\"}[1m]))";
        assert!(!fixed(Signal::BusyTime, busy).load_follows_window());
        let lag = "sum by (task_id) (deriv(lag{job_id=\"{{job_id}}\"}[{{window}}]))";
        assert!(fixed(Signal::LagGrowth, lag).load_follows_window());
        assert!(fixed(Signal::BackPressuredTime, "").load_follows_window());
        assert!(fixed(Signal::CpuLoad, "max(cpu)").load_follows_window());
    }
}

//! The Flink REST client: typed GETs of the endpoints the scaler reads, the
//! resource-requirements GET/PUT, job resolution and the job topology. Every request has
//! a bounded timeout; idempotent GETs are retried (bounded) on transient errors.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use url::Url;

use super::{
    error::{DecodeError, FlinkError, UrlError},
    model::{
        parse_plan, CheckpointConfig, CheckpointStats, ClusterOverview, ExceptionHistory,
        JobDetails, JobExceptions, JobPlan, JobSummary, JobsOverview, ResourceRequirements,
        TaskManagerInfo, TaskManagers,
    },
    topology::build_topology,
};
use crate::core::{JobId, JobSelector, Topology};

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Timeout of one request (connect + response).
    pub request_timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Retries of idempotent GETs on transient errors (0 = none).
    pub get_retries: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            get_retries: 2,
        }
    }
}

/// Terminal job states (`JobStatus.isGloballyTerminalState` plus SUSPENDED).
pub fn is_terminal_state(state: &str) -> bool {
    matches!(state, "FINISHED" | "CANCELED" | "FAILED" | "SUSPENDED")
}

/// A client for one Flink cluster's REST endpoint.
#[derive(Debug, Clone)]
pub struct FlinkClient {
    base: Url,
    http: reqwest::Client,
    opts: ClientOptions,
}

impl FlinkClient {
    /// A client for `base_url` (e.g. `http://flink-jobmanager:8081`; a path prefix is kept).
    pub fn new(base_url: &str, opts: ClientOptions) -> Result<Self, FlinkError> {
        let mut text = base_url.trim().to_string();
        if !text.ends_with('/') {
            text.push('/');
        }
        let invalid = |source| FlinkError::InvalidUrl {
            url: base_url.to_string(),
            source,
        };
        let base = Url::parse(&text).map_err(|e| invalid(UrlError::Parse(e)))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(invalid(UrlError::Scheme));
        }
        let http = reqwest::Client::builder()
            .timeout(opts.request_timeout)
            .connect_timeout(opts.connect_timeout)
            .build()
            .map_err(|e| invalid(UrlError::Client(e)))?;
        Ok(Self { base, http, opts })
    }

    /// The base URL.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    fn url(&self, path: &str) -> Result<Url, FlinkError> {
        self.base.join(path).map_err(|e| FlinkError::InvalidUrl {
            url: format!("{}{path}", self.base),
            source: UrlError::Parse(e),
        })
    }

    /// One request; maps status codes to typed errors. `job` is the job the path is about
    /// (for 404 / job-not-found mapping).
    pub(super) async fn send(
        &self,
        method: Method,
        path: &str,
        job: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> Result<String, FlinkError> {
        let what = format!("{method} /{path}");
        let url = self.url(path)?;
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| self.transport(&what, e))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| self.transport(&what, e))?;
        if status.is_success() {
            return Ok(text);
        }
        Err(map_status(&what, job, status, &text))
    }

    fn transport(&self, what: &str, e: reqwest::Error) -> FlinkError {
        if e.is_timeout() {
            FlinkError::Timeout {
                what: what.to_string(),
                after: self.opts.request_timeout,
            }
        } else {
            FlinkError::Transport {
                what: what.to_string(),
                source: e,
            }
        }
    }

    pub(super) async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        job: Option<&str>,
    ) -> Result<T, FlinkError> {
        let attempt = || async {
            let text = self.send(Method::GET, path, job, None).await?;
            decode::<T>(&format!("GET /{path}"), &text)
        };
        attempt
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(200))
                    .with_max_delay(Duration::from_secs(2))
                    .with_max_times(self.opts.get_retries),
            )
            .when(|e: &FlinkError| {
                matches!(e, FlinkError::Timeout { .. } | FlinkError::Transport { .. })
                    || matches!(e, FlinkError::Http { status, .. } if *status >= 502)
            })
            .await
    }

    /// `GET /overview`: TaskManagers, slots, version.
    pub async fn overview(&self) -> Result<ClusterOverview, FlinkError> {
        self.get("overview", None).await
    }

    /// `GET /jobs/overview`: all jobs the dispatcher knows (incl. terminal ones).
    pub async fn jobs(&self) -> Result<Vec<JobSummary>, FlinkError> {
        Ok(self.get::<JobsOverview>("jobs/overview", None).await?.jobs)
    }

    /// `GET /jobs/:id`: state, timestamps, vertices.
    pub async fn job(&self, job_id: &JobId) -> Result<JobDetails, FlinkError> {
        self.get(&format!("jobs/{}", job_id), Some(job_id.as_str()))
            .await
    }

    /// `GET /jobs/:id/plan`.
    pub async fn plan(&self, job_id: &JobId) -> Result<JobPlan, FlinkError> {
        let path = format!("jobs/{}/plan", job_id);
        let v: serde_json::Value = self.get(&path, Some(job_id.as_str())).await?;
        parse_plan(&v).map_err(|e| FlinkError::Decode {
            what: format!("GET /{path}"),
            source: e.into(),
        })
    }

    /// `GET /jobs/:id/exceptions`: the exception history (newest first).
    pub async fn exceptions(&self, job_id: &JobId) -> Result<ExceptionHistory, FlinkError> {
        let path = format!("jobs/{}/exceptions", job_id);
        Ok(self
            .get::<JobExceptions>(&path, Some(job_id.as_str()))
            .await?
            .exception_history)
    }

    /// `GET /taskmanagers`.
    pub async fn task_managers(&self) -> Result<Vec<TaskManagerInfo>, FlinkError> {
        Ok(self
            .get::<TaskManagers>("taskmanagers", None)
            .await?
            .taskmanagers)
    }

    /// `GET /jobs/:id/checkpoints/config` → the checkpoint interval, `None` when
    /// checkpointing is disabled (interval ≤ 0 or `Long.MAX_VALUE`, or a 404 from old versions
    /// whose job still exists).
    pub async fn checkpoint_interval(
        &self,
        job_id: &JobId,
    ) -> Result<Option<Duration>, FlinkError> {
        let path = format!("jobs/{}/checkpoints/config", job_id);
        match self
            .get::<CheckpointConfig>(&path, Some(job_id.as_str()))
            .await
        {
            Ok(c) if c.interval > 0 && c.interval < i64::MAX / 2 => {
                Ok(Some(Duration::from_millis(c.interval as u64)))
            }
            Ok(_) => Ok(None),
            Err(FlinkError::JobGone { .. }) => {
                // 404 also means "checkpointing not enabled" on old versions: check the job.
                self.job(job_id).await?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// `GET /jobs/:id/checkpoints` summarized (counts, latest, last restore).
    pub async fn checkpoint_stats(&self, job_id: &JobId) -> Result<CheckpointStats, FlinkError> {
        let path = format!("jobs/{}/checkpoints", job_id);
        let v: serde_json::Value = self.get(&path, Some(job_id.as_str())).await?;
        let u = |p: &str| v.pointer(p).and_then(serde_json::Value::as_u64);
        Ok(CheckpointStats {
            completed: u("/counts/completed").unwrap_or(0),
            failed: u("/counts/failed").unwrap_or(0),
            latest_completed_id: u("/latest/completed/id"),
            restored_id: u("/latest/restored/id"),
            restored_at_ms: v
                .pointer("/latest/restored/restore_timestamp")
                .and_then(serde_json::Value::as_i64),
        })
    }

    /// `GET /jobs/:id/metrics?get=a,b` → name → value (values Flink reports as strings are
    /// parsed; unparsable or absent metrics are left out).
    pub async fn job_metrics(
        &self,
        job_id: &JobId,
        names: &[&str],
    ) -> Result<std::collections::BTreeMap<String, f64>, FlinkError> {
        #[derive(serde::Deserialize)]
        struct M {
            id: String,
            value: serde_json::Value,
        }
        let path = format!("jobs/{}/metrics?get={}", job_id, names.join(","));
        let ms: Vec<M> = self.get(&path, Some(job_id.as_str())).await?;
        Ok(ms
            .into_iter()
            .filter_map(|m| {
                let v = match &m.value {
                    serde_json::Value::String(s) => s.parse::<f64>().ok(),
                    serde_json::Value::Number(n) => n.as_f64(),
                    _ => None,
                }?;
                Some((m.id, v))
            })
            .collect())
    }

    /// `GET /jobs/:id/resource-requirements`.
    pub async fn resource_requirements(
        &self,
        job_id: &JobId,
    ) -> Result<ResourceRequirements, FlinkError> {
        let path = format!("jobs/{}/resource-requirements", job_id);
        self.get(&path, Some(job_id.as_str())).await
    }

    /// `PUT /jobs/:id/resource-requirements` (raw: no editing, no retry). Prefer
    /// [`super::requirements::apply_target`], which does GET-edit-PUT of every vertex.
    pub async fn put_resource_requirements(
        &self,
        job_id: &JobId,
        body: &ResourceRequirements,
    ) -> Result<(), FlinkError> {
        let path = format!("jobs/{}/resource-requirements", job_id);
        let value = serde_json::to_value(body).map_err(|e| FlinkError::Decode {
            what: format!("PUT /{path}"),
            source: DecodeError::Encode(e),
        })?;
        self.send(Method::PUT, &path, Some(job_id.as_str()), Some(&value))
            .await?;
        Ok(())
    }

    /// The job graph: `/jobs/:id` vertices joined with the plan's edges (the plan embedded
    /// in the details when parsable, `/jobs/:id/plan` otherwise).
    pub async fn topology(&self, job_id: &JobId) -> Result<Topology, FlinkError> {
        let details = self.job(job_id).await?;
        let plan = match details.plan.as_ref().map(parse_plan) {
            Some(Ok(p)) => p,
            _ => self.plan(job_id).await?,
        };
        build_topology(&details, &plan).map_err(|e| FlinkError::Decode {
            what: format!("GET /jobs/{job_id}"),
            source: e.into(),
        })
    }

    /// Finds one job: by id (any state), by name (non-terminal jobs), or the only
    /// non-terminal job. `NotFound` when none matches, `Ambiguous` when several do.
    pub async fn resolve_job(&self, selector: &JobSelector) -> Result<JobSummary, FlinkError> {
        let jobs = self.jobs().await?;
        let matches: Vec<JobSummary> = match selector {
            JobSelector::Id(id) => jobs.into_iter().filter(|j| j.jid == *id).collect(),
            JobSelector::Name(name) => jobs
                .into_iter()
                .filter(|j| j.name == *name && !is_terminal_state(&j.state))
                .collect(),
            JobSelector::OnlyRunning => jobs
                .into_iter()
                .filter(|j| !is_terminal_state(&j.state))
                .collect(),
        };
        match matches.len() {
            0 => Err(FlinkError::NotFound {
                selector: selector.to_string(),
            }),
            1 => matches.into_iter().next().ok_or(FlinkError::NotFound {
                selector: selector.to_string(),
            }),
            _ => Err(FlinkError::Ambiguous {
                selector: selector.to_string(),
                candidates: matches
                    .iter()
                    .map(|j| format!("{} ({}, {})", j.jid, j.name, j.state))
                    .collect(),
            }),
        }
    }
}

fn decode<T: DeserializeOwned>(what: &str, text: &str) -> Result<T, FlinkError> {
    serde_json::from_str(text).map_err(|source| FlinkError::Decode {
        what: what.to_string(),
        source: DecodeError::Json {
            source,
            body: truncate(text, 300),
        },
    })
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Flink's error body `{"errors": ["…", "<Exception on server side: …>"]}` → one message.
pub(crate) fn error_message(body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<String>,
    }
    match serde_json::from_str::<Errors>(body) {
        Ok(e) if !e.errors.is_empty() => e
            .errors
            .iter()
            .map(|m| first_meaningful_line(m))
            .collect::<Vec<_>>()
            .join("; "),
        _ => truncate(body.trim(), 300),
    }
}

/// For server-side stack traces keep the message lines (`…Exception: message`, the
/// validation messages, `Caused by:`), not the frames.
fn first_meaningful_line(m: &str) -> String {
    let lines: Vec<&str> = m
        .lines()
        .map(str::trim)
        .filter(|l| {
            let frame = l.starts_with("at ") || (l.starts_with("...") && l.ends_with("more"));
            let wrapper = l.starts_with("<Exception on server side")
                || l.starts_with("End of exception on server side");
            !(l.is_empty() || frame || wrapper)
        })
        .collect();
    truncate(&lines.join(" | "), 800)
}

fn map_status(what: &str, job: Option<&str>, status: StatusCode, body: &str) -> FlinkError {
    let message = error_message(body);
    let job_id = job.unwrap_or_default().to_string();
    let job_missing = body.contains("FlinkJobNotFoundException")
        || body.contains("Could not find Flink job")
        || body.contains("JobNotFound");
    if job.is_some() && (status == StatusCode::NOT_FOUND || job_missing) {
        return FlinkError::JobGone { job_id, message };
    }
    if status == StatusCode::CONFLICT {
        return FlinkError::Conflict { job_id, message };
    }
    // Reactive mode answers 500 with "Cannot change the parallelism of a job running in
    // reactive mode." from AdaptiveScheduler itself: not a missing adaptive scheduler.
    if body.contains("UnsupportedOperationException") && body.contains("reactive mode") {
        return FlinkError::ReactiveMode { job_id, message };
    }
    if body.contains("UnsupportedOperationException")
        && (body.contains("AdaptiveScheduler") || body.contains("without a job restart"))
    {
        return FlinkError::AdaptiveSchedulerRequired { job_id, message };
    }
    if status == StatusCode::BAD_REQUEST {
        return FlinkError::BadRequest {
            what: what.to_string(),
            message,
        };
    }
    FlinkError::Http {
        what: what.to_string(),
        status: status.as_u16(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_message_keeps_root_cause_lines() {
        let body = r#"{"errors":["Internal server error.","<Exception on server side:\njava.util.concurrent.CompletionException: java.lang.UnsupportedOperationException: The DefaultScheduler does not support changing the parallelism without a job restart.\n\tat a.b.C(C.java:1)\nCaused by: java.lang.UnsupportedOperationException: The DefaultScheduler does not support changing the parallelism without a job restart.\n\tat x.y(Z.java:2)\n\nEnd of exception on server side>"]}"#;
        let m = error_message(body);
        assert!(m.starts_with("Internal server error.; "), "{m}");
        assert!(
            m.contains("Caused by: java.lang.UnsupportedOperationException"),
            "{m}"
        );
        assert!(!m.contains("C.java"), "{m}");
        let e = map_status("PUT /x", Some("j"), StatusCode::INTERNAL_SERVER_ERROR, body);
        assert_eq!(e.kind(), "adaptive_scheduler_required");
        assert!(e.to_string().contains("jobmanager.scheduler: adaptive"));
    }

    #[test]
    fn status_mapping() {
        let b =
            r#"{"errors":["Another update to the job [x] resource requirements is in progress."]}"#;
        assert_eq!(
            map_status("PUT", Some("x"), StatusCode::CONFLICT, b).kind(),
            "conflict"
        );
        assert_eq!(
            map_status("GET", Some("x"), StatusCode::NOT_FOUND, "{}").kind(),
            "job_gone"
        );
        assert_eq!(
            map_status("GET", None, StatusCode::NOT_FOUND, "{}").kind(),
            "http"
        );
        let nf = r#"{"errors":["org.apache.flink.runtime.messages.FlinkJobNotFoundException: Could not find Flink job (abc)"]}"#;
        assert_eq!(
            map_status("GET", Some("abc"), StatusCode::INTERNAL_SERVER_ERROR, nf).kind(),
            "job_gone"
        );
        let bad = r#"{"errors":["The request is incomplete, missing job vertex [v] resource requirements."]}"#;
        let e = map_status("PUT", Some("x"), StatusCode::BAD_REQUEST, bad);
        assert_eq!(e.kind(), "bad_request");
        assert!(e.to_string().contains("missing job vertex [v]"));
    }
}

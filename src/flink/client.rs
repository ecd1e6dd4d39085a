//! The Flink REST client: typed GETs of the endpoints the scaler reads, the
//! resource-requirements GET/PUT, job resolution and the job topology. Every request has
//! a bounded timeout and waits its turn under a bound on requests in flight; idempotent
//! GETs are retried (bounded) on transient errors. TLS (CA, client certificate), bearer
//! or basic credentials and extra headers come from [`Access`] (files re-read when they
//! change); redirects are never followed and of an error body only Flink's `errors`
//! field is kept (see [`super::response`]).

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use backon::{ExponentialBuilder, Retryable};
use fks_net::{read_capped, Auth, BodyError, ClientSpec, Credentials, HttpClient, Limiter};
use reqwest::{header::AUTHORIZATION, Method};
use serde::de::DeserializeOwned;
use url::Url;

use super::{
    error::{DecodeError, FlinkError, UrlError},
    model::{
        parse_plan, CheckpointConfig, CheckpointStats, ClusterOverview, ExceptionHistory,
        JobDetails, JobExceptions, JobPlan, JobSummary, JobsOverview, ResourceRequirements,
        TaskManagerInfo, TaskManagers,
    },
    response::{decode, map_status, MAX_BODY_BYTES},
    topology::build_topology,
};
use crate::core::{ClientTls, JobId, JobSelector, Topology};

/// How requests reach the JobManagers: the same for every JobManager URL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    /// TLS files (CA bundle, client certificate); `None`: the built-in roots.
    pub tls: Option<ClientTls>,
    /// Credentials (bearer token or basic auth, from files or the environment).
    pub auth: Auth,
    /// Extra headers sent with every request.
    pub headers: BTreeMap<String, String>,
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Timeout of one request (connect + response).
    pub request_timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Retries of idempotent GETs on transient errors (0 = none).
    pub get_retries: usize,
    /// TLS, credentials, headers.
    pub access: Access,
    /// Bound on requests in flight, shared by every client built with these options
    /// (clones share it).
    pub limiter: Limiter,
}

/// Default bound on requests in flight to all JobManagers.
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 64;

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            get_retries: 2,
            access: Access::default(),
            limiter: Limiter::new(DEFAULT_MAX_CONCURRENT_REQUESTS),
        }
    }
}

/// Terminal job states (`JobStatus.isGloballyTerminalState` plus SUSPENDED).
pub fn is_terminal_state(state: &str) -> bool {
    matches!(state, "FINISHED" | "CANCELED" | "FAILED" | "SUSPENDED")
}

/// Called once per REST request with its route template (`GET /jobs/:id/plan`), for
/// counting calls per endpoint.
#[derive(Clone)]
pub struct CallHook(pub std::sync::Arc<dyn Fn(&str) + Send + Sync>);

impl std::fmt::Debug for CallHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallHook")
    }
}

/// A client for one Flink cluster's REST endpoint.
#[derive(Debug, Clone)]
pub struct FlinkClient {
    base: Url,
    http: Arc<HttpClient>,
    credentials: Credentials,
    opts: ClientOptions,
    on_call: Option<CallHook>,
}

/// Idle connections kept per JobManager.
const MAX_IDLE_PER_HOST: usize = 2;

impl FlinkClient {
    /// A client for `base_url` (e.g. `http://flink-jobmanager:8081`; a path prefix is kept).
    /// Reads the TLS and credential files of `opts.access` (a missing or invalid file
    /// fails here).
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
        let http = HttpClient::new(client_spec(&opts))?;
        let credentials = Credentials::from_auth(&opts.access.auth)?;
        Ok(Self {
            base,
            http: Arc::new(http),
            credentials,
            opts,
            on_call: None,
        })
    }

    /// Calls `hook` with the route template of every request this client sends.
    pub fn with_call_hook(mut self, hook: CallHook) -> Self {
        self.on_call = Some(hook);
        self
    }

    /// Checks that clients can be built with `opts` (the files exist and parse), so a
    /// bad `flink` section of the config fails at start, not on the first job.
    pub fn check_options(opts: &ClientOptions) -> Result<(), FlinkError> {
        HttpClient::new(client_spec(opts))?;
        Credentials::from_auth(&opts.access.auth)?;
        Ok(())
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
        if let Some(hook) = &self.on_call {
            (hook.0)(&route_template(&method, path, job));
        }
        let url = self.url(path)?;
        let http = self.http.current()?;
        let mut req = http.request(method, url);
        if let Some(b) = body {
            req = req.json(b);
        }
        let auth = self
            .credentials
            .header()
            .map_err(|source| FlinkError::Credentials {
                what: what.clone(),
                source,
            })?;
        if let Some((value, _)) = auth {
            req = req.header(AUTHORIZATION, value);
        }
        let _turn = self
            .opts
            .limiter
            .turn(self.opts.request_timeout)
            .await
            .map_err(|source| FlinkError::Saturated {
                what: what.clone(),
                source,
            })?;
        let resp = req.send().await.map_err(|e| self.transport(&what, e))?;
        let status = resp.status();
        let bytes = match read_capped(resp, MAX_BODY_BYTES).await {
            Ok(b) => b,
            Err(BodyError::Read(e)) => return Err(self.transport(&what, e)),
            Err(BodyError::TooLarge { limit }) => return Err(FlinkError::TooLarge { what, limit }),
        };
        let text = String::from_utf8_lossy(&bytes).into_owned();
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
        self.topology_of(&details).await
    }

    /// The job graph of already read details (`/jobs/:id/plan` only when the embedded
    /// plan is missing or unparsable).
    pub async fn topology_of(&self, details: &JobDetails) -> Result<Topology, FlinkError> {
        let job_id = &details.jid;
        let plan = match details.plan.as_ref().map(parse_plan) {
            Some(Ok(p)) => p,
            _ => self.plan(job_id).await?,
        };
        build_topology(details, &plan).map_err(|e| FlinkError::Decode {
            what: format!("GET /jobs/{job_id}"),
            source: e.into(),
        })
    }

    /// Finds one job: by id (any state), by name (non-terminal jobs), or the only
    /// non-terminal job. `NotFound` when none matches, `Ambiguous` when several do.
    pub async fn resolve_job(&self, selector: &JobSelector) -> Result<JobSummary, FlinkError> {
        select_job(self.jobs().await?, selector)
    }
}

/// The one job of `/jobs/overview` the selector names (see [`FlinkClient::resolve_job`]).
pub fn select_job(jobs: Vec<JobSummary>, selector: &JobSelector) -> Result<JobSummary, FlinkError> {
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

/// `GET /jobs/:id/plan` for `GET /jobs/<id>/plan?x=y` (bounded label values).
fn route_template(method: &Method, path: &str, job: Option<&str>) -> String {
    let path = path.split('?').next().unwrap_or(path);
    let path = match job {
        Some(id) if !id.is_empty() => path.replace(id, ":id"),
        _ => path.to_string(),
    };
    format!("{method} /{path}")
}

fn client_spec(opts: &ClientOptions) -> ClientSpec {
    let mut spec = ClientSpec::new(opts.request_timeout);
    spec.connect_timeout = opts.connect_timeout;
    spec.headers = opts.access.headers.clone();
    spec.tls = opts.access.tls.clone();
    spec.follow_redirects = false;
    spec.max_idle_per_host = MAX_IDLE_PER_HOST;
    spec
}

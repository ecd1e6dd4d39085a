//! Typed errors of the Flink REST adapter. Every variant names the request (`what`) or
//! the job it concerns, and [`FlinkError::kind`] maps it to a closed set of metric labels.

use std::{fmt, time::Duration};

/// An error talking to the Flink REST API or applying resource requirements.
#[derive(Debug, thiserror::Error)]
pub enum FlinkError {
    /// The base URL or a path could not be turned into a URL, or no HTTP client can be
    /// built for it.
    #[error("invalid Flink REST URL {url:?}: {source}")]
    InvalidUrl {
        /// The offending URL text.
        url: String,
        /// Why it is invalid.
        #[source]
        source: UrlError,
    },
    /// The request did not complete within its timeout.
    #[error("Flink REST {what} timed out after {after:?}")]
    Timeout {
        /// The request, e.g. `GET /jobs/abc`.
        what: String,
        /// The timeout that expired.
        after: Duration,
    },
    /// The connection failed (refused, reset, DNS, TLS).
    #[error("Flink REST {what} failed: {}", Chain(source))]
    Transport {
        /// The request.
        what: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// 400: Flink rejected the request; `message` is Flink's own explanation.
    #[error("Flink rejected {what}: {message}")]
    BadRequest {
        /// The request.
        what: String,
        /// Flink's `errors` joined with "; ".
        message: String,
    },
    /// 409: another resource-requirements update of the job is in progress; retry later.
    #[error(
        "another resource-requirements update of job {job_id} is in progress (409): {message}"
    )]
    Conflict {
        /// The job.
        job_id: String,
        /// Flink's message.
        message: String,
    },
    /// The job no longer exists (404 or `FlinkJobNotFoundException`): re-resolve it.
    #[error("Flink job {job_id} not found (gone?): {message}")]
    JobGone {
        /// The job id that was used.
        job_id: String,
        /// Flink's message.
        message: String,
    },
    /// The cluster does not run the adaptive scheduler, so parallelism cannot change in place.
    #[error(
        "job {job_id}: the Flink cluster does not support changing parallelism in place; \
         set `jobmanager.scheduler: adaptive` in the Flink configuration (Flink 1.18+). \
         Flink said: {message}"
    )]
    AdaptiveSchedulerRequired {
        /// The job.
        job_id: String,
        /// Flink's message.
        message: String,
    },
    /// The job runs in reactive mode (`scheduler-mode: reactive`): Flink refuses every
    /// resource-requirements PUT (`AdaptiveScheduler#updateJobResourceRequirements` throws
    /// first thing; measured on 2.3.0 and 1.20.5) and runs every vertex at the slot count,
    /// so the only lever is the number of TaskManagers.
    #[error(
        "job {job_id} runs in reactive mode (`scheduler-mode: reactive`): Flink refuses \
         resource-requirements updates and runs every vertex at the number of slots; scale it \
         by TaskManagers only. Flink said: {message}"
    )]
    ReactiveMode {
        /// The job.
        job_id: String,
        /// Flink's message (or why the scaler refused before asking).
        message: String,
    },
    /// Any other non-success status.
    #[error("Flink REST {what} returned HTTP {status}: {message}")]
    Http {
        /// The request.
        what: String,
        /// HTTP status code.
        status: u16,
        /// Flink's `errors` joined with "; " (or the raw body, truncated).
        message: String,
    },
    /// The response body was not the JSON we expect.
    #[error("Flink REST {what}: unexpected response: {source}")]
    Decode {
        /// The request.
        what: String,
        /// What did not parse.
        #[source]
        source: DecodeError,
    },
    /// No job matches the selector.
    #[error("no Flink job matches {selector}")]
    NotFound {
        /// The selector, e.g. `name "orders"`.
        selector: String,
    },
    /// Several jobs match the selector.
    #[error("{selector} is ambiguous: {} jobs match ({})", candidates.len(), candidates.join(", "))]
    Ambiguous {
        /// The selector.
        selector: String,
        /// `id (name, state)` of each candidate.
        candidates: Vec<String>,
    },
    /// The requested target cannot be applied to this job (unknown vertex, 0, > maxParallelism).
    #[error("invalid rescale target for job {job_id}: {message}")]
    InvalidTarget {
        /// The job.
        job_id: String,
        /// What is wrong.
        message: String,
    },
    /// The answer was a redirect, which is never followed (a JobManager URL must name the
    /// JobManager itself, not a page that points elsewhere).
    #[error("Flink REST {what} answered with a redirect (HTTP {status}); redirects are not followed: set the JobManager's own REST URL")]
    Redirect {
        /// The request.
        what: String,
        /// HTTP status code (3xx).
        status: u16,
    },
    /// The client's TLS or credential files are missing or unusable.
    #[error("Flink REST client: {0}")]
    Files(#[from] fks_net::FilesError),
    /// The credentials could not be re-read.
    #[error("Flink REST {what}: {source}")]
    Credentials {
        /// The request.
        what: String,
        /// Why.
        #[source]
        source: fks_net::SecretError,
    },
    /// Too many requests to Flink in flight (`flink.maxConcurrentRequests`).
    #[error("Flink REST {what} not sent: {source} (flink.maxConcurrentRequests)")]
    Saturated {
        /// The request.
        what: String,
        /// The bound and the wait.
        #[source]
        source: fks_net::Saturated,
    },
    /// The response body exceeds the bound.
    #[error("Flink REST {what}: response body larger than {limit} bytes")]
    TooLarge {
        /// The request.
        what: String,
        /// The bound.
        limit: usize,
    },
}

/// Why a Flink REST URL cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    /// Not a URL.
    #[error("{0}")]
    Parse(#[source] url::ParseError),
    /// Neither http nor https.
    #[error("scheme must be http or https")]
    Scheme,
    /// The HTTP client (TLS backend) could not be built.
    #[error("cannot build HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// Why a Flink REST body could not be used. Never quotes the body (serde's own messages
/// quote the offending values, so they are not kept).
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not the JSON shape expected: where parsing stopped, not what it read.
    #[error("{problem} at `{path}` in a body of {bytes} bytes")]
    Json {
        /// JSON path of the value that did not fit (capped), `.` for the document.
        path: String,
        /// What kind of problem and where (line, column).
        problem: String,
        /// Body size.
        bytes: usize,
    },
    /// A request body could not be encoded.
    #[error("cannot encode body: {0}")]
    Encode(#[source] serde_json::Error),
    /// The job plan is unusable.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The plan and the job's vertices do not match.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// A JobManager config value the scaler reads does not parse.
    #[error(transparent)]
    Config(#[from] super::jm_config::ConfigValueError),
}

/// Why a job plan value is unusable (see [`super::model::parse_plan`]). Never quotes it.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A plan string that is not JSON.
    #[error("plan string is {0}")]
    NotJson(String),
    /// A plan object without the expected fields.
    #[error("plan object is {0}")]
    Shape(String),
    /// Neither an object nor a string.
    #[error("plan has unexpected JSON type {0}")]
    Type(&'static str),
}

/// The plan names a vertex the job's details do not have (see
/// [`super::topology::build_topology`]).
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// A plan node.
    #[error("plan node {node} is not a vertex of job {job_id}")]
    UnknownNode {
        /// The node id.
        node: String,
        /// The job.
        job_id: String,
    },
    /// An input of a plan node.
    #[error("plan input {input} of node {node} is not a vertex of job {job_id}")]
    UnknownInput {
        /// The input's id.
        input: String,
        /// The node id.
        node: String,
        /// The job.
        job_id: String,
    },
}

/// An error and its causes, `: `-separated (a transport error's useful part, e.g.
/// `Connection refused`, is in its causes).
struct Chain<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

impl FlinkError {
    /// A bounded label value for metrics (`timeout`, `conflict`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            FlinkError::InvalidUrl { .. } => "invalid_url",
            FlinkError::Timeout { .. } => "timeout",
            FlinkError::Transport { .. } => "transport",
            FlinkError::BadRequest { .. } => "bad_request",
            FlinkError::Conflict { .. } => "conflict",
            FlinkError::JobGone { .. } => "job_gone",
            FlinkError::AdaptiveSchedulerRequired { .. } => "adaptive_scheduler_required",
            FlinkError::ReactiveMode { .. } => "reactive_mode",
            FlinkError::Http { .. } => "http",
            FlinkError::Decode { .. } => "decode",
            FlinkError::NotFound { .. } => "not_found",
            FlinkError::Ambiguous { .. } => "ambiguous",
            FlinkError::InvalidTarget { .. } => "invalid_target",
            FlinkError::Redirect { .. } => "redirect",
            FlinkError::Files(_) => "client_files",
            FlinkError::Credentials { .. } => "credentials",
            FlinkError::Saturated { .. } => "saturated",
            FlinkError::TooLarge { .. } => "too_large",
        }
    }

    /// True for errors worth retrying soon (timeouts, transport errors, 409, 5xx other than
    /// the adaptive-scheduler one).
    pub fn is_transient(&self) -> bool {
        match self {
            FlinkError::Timeout { .. }
            | FlinkError::Transport { .. }
            | FlinkError::Saturated { .. }
            | FlinkError::Conflict { .. } => true,
            FlinkError::Http { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

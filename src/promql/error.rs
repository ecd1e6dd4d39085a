//! Typed errors of the Prometheus client. Every error has a `kind()` from a closed set
//! (bounded metric label values). Messages never contain credentials: the bearer token
//! and passwords are scrubbed from anything copied from a response.

use super::response::ResponseError;

/// An invalid [`super::Endpoint`] field: its config path and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct SettingsError {
    /// Config path of the offending field (e.g. `prometheus.default.url`).
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

/// Building a [`super::PromClient`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientBuildError {
    /// The endpoint's URL or headers are not usable.
    #[error("invalid Prometheus settings: {0}")]
    Settings(#[from] SettingsError),
    /// A file named by the settings (token, password, CA, certificate, key) or a
    /// password variable is missing or unusable.
    #[error(transparent)]
    Files(#[from] fks_net::FilesError),
}

impl ClientBuildError {
    /// Bounded label value.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientBuildError::Settings(_) => "settings",
            ClientBuildError::Files(e) => e.kind(),
        }
    }
}

/// A query failed. Upstream failures are errors, never "no load".
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The server could not be reached: connect error, timeout, connection reset.
    #[error("Prometheus at {endpoint} unreachable after {attempts} attempt(s): {reason}")]
    Unreachable {
        /// Endpoint URL (no credentials).
        endpoint: String,
        /// Attempts made (1 + retries).
        attempts: u32,
        /// `timeout` or the transport error chain, as text scrubbed of the credentials (so
        /// not the `reqwest::Error` itself, whose chain could carry them).
        reason: String,
    },
    /// The server answered with a non-success HTTP status.
    #[error("Prometheus at {endpoint} returned HTTP {status}{}", message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    HttpStatus {
        /// Endpoint URL (no credentials).
        endpoint: String,
        /// HTTP status code.
        status: u16,
        /// Prometheus' `error` field if the body was API JSON, else a short body excerpt.
        message: Option<String>,
    },
    /// The body is not the Prometheus API JSON we expect.
    #[error("Prometheus at {endpoint} returned malformed JSON: {source}")]
    MalformedJson {
        /// Endpoint URL (no credentials).
        endpoint: String,
        /// What did not parse.
        #[source]
        source: ResponseError,
    },
    /// Prometheus rejected the query (`status: error`): bad syntax, execution error.
    #[error("PromQL error ({error_type}): {error}")]
    PromQl {
        /// Prometheus' `errorType` (`bad_data`, `execution`, ...).
        error_type: String,
        /// Prometheus' `error` message.
        error: String,
    },
    /// The query returned no series (a target may be down or the metric absent).
    #[error("query returned no series: {query}")]
    EmptyResult {
        /// The PromQL that was sent.
        query: String,
    },
    /// A single-value query returned NaN or ±Inf.
    #[error("query returned a non-finite value ({value}): {query}")]
    NonFinite {
        /// The PromQL that was sent.
        query: String,
        /// The value.
        value: f64,
    },
    /// A single-value query returned more than one series.
    #[error("query returned {count} series where one was expected: {query}")]
    MultipleSeries {
        /// The PromQL that was sent.
        query: String,
        /// Series returned.
        count: usize,
    },
    /// The result type does not fit the call (e.g. a matrix from an instant query).
    #[error("unexpected result type {got} (expected {expected})")]
    UnexpectedResultType {
        /// What the call accepts.
        expected: &'static str,
        /// What the server sent.
        got: String,
    },
    /// The credentials could not be (re-)read or used.
    #[error("credentials from {origin} unusable: {source}")]
    Credentials {
        /// Where they come from (`file /var/run/token`, `env var PROM_PW`).
        origin: String,
        /// Why.
        #[source]
        source: CredentialError,
    },
}

pub use fks_net::CredentialError;

impl QueryError {
    /// Bounded label value.
    pub fn kind(&self) -> &'static str {
        match self {
            QueryError::Unreachable { .. } => "unreachable",
            QueryError::HttpStatus { .. } => "http_status",
            QueryError::MalformedJson { .. } => "malformed_json",
            QueryError::PromQl { .. } => "promql",
            QueryError::EmptyResult { .. } => "empty_result",
            QueryError::NonFinite { .. } => "non_finite",
            QueryError::MultipleSeries { .. } => "multiple_series",
            QueryError::UnexpectedResultType { .. } => "unexpected_result_type",
            QueryError::Credentials { .. } => "credentials",
        }
    }

    /// Worth retrying: unreachable, HTTP 5xx and 429. Never PromQL errors.
    pub fn is_retryable(&self) -> bool {
        match self {
            QueryError::Unreachable { .. } => true,
            QueryError::HttpStatus { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

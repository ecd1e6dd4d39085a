//! Typed errors of the Prometheus client. Every error has a `kind()` from a closed set
//! (bounded metric label values). Messages never contain credentials: the bearer token
//! and passwords are scrubbed from anything copied from a response.

use std::path::PathBuf;

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
    /// A file named by the settings (token, password, CA, certificate, key) could not be read.
    #[error("cannot read {what} file {path}: {source}")]
    ReadFile {
        /// Which setting (`bearer token`, `CA`, ...).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A credential file or variable is empty.
    #[error("{what} is empty")]
    EmptyCredential {
        /// Which credential (`bearer token file /x`, `env var PROM_PW`).
        what: String,
    },
    /// The environment variable named by `passwordEnv` is not set (or not UTF-8).
    #[error("environment variable {var} (auth.basic.passwordEnv) is not set")]
    MissingEnv {
        /// The variable name.
        var: String,
    },
    /// A PEM file could not be parsed.
    #[error("invalid PEM in {what} file {path}: {source}")]
    InvalidPem {
        /// Which setting (`CA`, `client certificate/key`).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: reqwest::Error,
    },
    /// The HTTP client could not be built (TLS backend).
    #[error("cannot build HTTP client: {0}")]
    Http(#[source] reqwest::Error),
}

impl ClientBuildError {
    /// Bounded label value.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientBuildError::Settings(_) => "settings",
            ClientBuildError::ReadFile { .. } => "read_file",
            ClientBuildError::EmptyCredential { .. } => "empty_credential",
            ClientBuildError::MissingEnv { .. } => "missing_env",
            ClientBuildError::InvalidPem { .. } => "invalid_pem",
            ClientBuildError::Http(_) => "http_client",
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

/// Why credentials could not be (re-)read or used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The file could not be read.
    #[error("{0}")]
    Io(#[source] std::io::Error),
    /// The file is empty.
    #[error("empty")]
    Empty,
    /// The cache lock was poisoned by a panic elsewhere.
    #[error("credential cache poisoned")]
    Poisoned,
    /// The value cannot go in an HTTP header.
    #[error("contains characters not allowed in an HTTP header")]
    NotHeaderValue,
}

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

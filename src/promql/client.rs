//! `PromClient`: instant and range queries against the standard Prometheus HTTP API
//! (`POST /api/v1/query`, `POST /api/v1/query_range`, form-encoded), which Prometheus,
//! Thanos, Mimir and VictoriaMetrics all serve. Every attempt is bounded by the
//! configured timeout; retryable failures (unreachable, 5xx, 429) are retried with
//! exponential backoff, PromQL errors never are. A response is read in chunks and cut at
//! the endpoint's byte bound, and refused above its series bound, so a query that
//! matches a million series is an error naming the limit, not an out-of-memory.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use chrono::{DateTime, Utc};
use fks_net::{read_capped, BodyError, ClientSpec, HttpClient, Limiter, SecretError};
use reqwest::header::AUTHORIZATION;

use super::{
    auth::{scrub, Credentials},
    endpoint::Endpoint,
    error::{ClientBuildError, QueryError, SettingsError},
    response::{decode_capped, QueryData, ResponseError, Sample, Series},
};

/// First backoff delay between retries.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Largest backoff delay between retries.
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// How long a connection is kept idle. The hub's round sends its queries together once
/// per interval; a pooled connection keeps its read buffer, grown to ~400 kB by a batched
/// answer (3.9–5 MB at 1,000 jobs), so connections close soon after a round instead of
/// living until the next one. Reconnecting ~8 times per interval costs nothing that shows.
const IDLE_BETWEEN_ROUNDS: Duration = Duration::from_secs(1);

/// A client for one Prometheus-compatible server. Cheap to clone (clones share the
/// connection pool and the bound on requests in flight).
#[derive(Clone)]
pub struct PromClient {
    http: std::sync::Arc<HttpClient>,
    base: url::Url,
    timeout: Duration,
    retries: u32,
    credentials: Credentials,
    max_body: usize,
    max_series: usize,
    limiter: Limiter,
}

impl std::fmt::Debug for PromClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PromClient")
            .field("base", &self.base.as_str())
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("credentials", &self.credentials)
            .finish()
    }
}

impl PromClient {
    /// Checks the URL and headers, reads credential and TLS files once and builds the
    /// client (rebuilt when a TLS file changes; credential files are re-read when they
    /// change). Redirects are followed: the server is the operator's, from the config.
    pub fn new(settings: &Endpoint) -> Result<Self, ClientBuildError> {
        let base = base_url(&settings.url)?;
        let mut spec = ClientSpec::new(settings.timeout);
        spec.connect_timeout = settings.timeout;
        spec.headers = settings.headers.clone();
        spec.tls = settings.tls.clone();
        spec.follow_redirects = true;
        spec.max_idle_per_host = settings.max_concurrent_requests;
        spec.pool_idle_timeout = IDLE_BETWEEN_ROUNDS;
        let http = HttpClient::new(spec).map_err(|e| match e {
            fks_net::FilesError::Header { name } => {
                settings_error(&format!("headers.{name}"), "not a valid HTTP header")
            }
            other => ClientBuildError::Files(other),
        })?;
        Ok(Self {
            http: std::sync::Arc::new(http),
            base,
            timeout: settings.timeout,
            retries: settings.retries,
            credentials: Credentials::from_auth(&settings.auth)?,
            max_body: settings.max_response_bytes,
            max_series: settings.max_series,
            limiter: Limiter::new(settings.max_concurrent_requests),
        })
    }

    /// The base URL (no credentials: validation refuses them).
    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    /// The per-attempt timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The worst-case time of one call: every attempt timing out plus the backoff.
    pub fn max_call_duration(&self) -> Duration {
        let attempts = self.retries + 1;
        self.timeout * attempts + BACKOFF_MAX * self.retries
    }

    /// Instant query at `at` (server time when `None`). Multi-series results are data,
    /// keyed by their labels; a scalar is one sample without labels; a string result is
    /// parsed as a number. An empty vector is [`QueryError::EmptyResult`]. NaN/±Inf
    /// values are returned as they are (see [`PromClient::query_value`]).
    pub async fn query(
        &self,
        promql: &str,
        at: Option<DateTime<Utc>>,
    ) -> Result<Vec<Sample>, QueryError> {
        let mut form = vec![("query", promql.to_string())];
        if let Some(at) = at {
            form.push(("time", unix_seconds(at)));
        }
        let data = self.call("query", &form).await?;
        let samples = match data {
            QueryData::Vector(v) => v,
            QueryData::Scalar(s) => vec![s],
            QueryData::String { at, text } => {
                let value = super::response::parse_value(&text).map_err(|source| {
                    QueryError::MalformedJson {
                        endpoint: self.endpoint("query"),
                        source,
                    }
                })?;
                vec![Sample {
                    labels: Default::default(),
                    at,
                    value,
                }]
            }
            other @ QueryData::Matrix(_) => {
                return Err(QueryError::UnexpectedResultType {
                    expected: "vector, scalar or string",
                    got: other.type_name().into(),
                })
            }
        };
        if samples.is_empty() {
            return Err(QueryError::EmptyResult {
                query: promql.to_string(),
            });
        }
        Ok(samples)
    }

    /// Instant query that must return exactly one finite value.
    pub async fn query_value(
        &self,
        promql: &str,
        at: Option<DateTime<Utc>>,
    ) -> Result<f64, QueryError> {
        let samples = self.query(promql, at).await?;
        match samples.as_slice() {
            [one] if one.value.is_finite() => Ok(one.value),
            [one] => Err(QueryError::NonFinite {
                query: promql.to_string(),
                value: one.value,
            }),
            many => Err(QueryError::MultipleSeries {
                query: promql.to_string(),
                count: many.len(),
            }),
        }
    }

    /// Range query from `start` to `end` every `step`. An empty matrix is
    /// [`QueryError::EmptyResult`]; NaN/±Inf points are kept.
    pub async fn query_range(
        &self,
        promql: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
    ) -> Result<Vec<Series>, QueryError> {
        let form = vec![
            ("query", promql.to_string()),
            ("start", unix_seconds(start)),
            ("end", unix_seconds(end)),
            ("step", format!("{:.3}", step.as_secs_f64())),
        ];
        match self.call("query_range", &form).await? {
            QueryData::Matrix(m) if m.is_empty() => Err(QueryError::EmptyResult {
                query: promql.to_string(),
            }),
            QueryData::Matrix(m) => Ok(m),
            other => Err(QueryError::UnexpectedResultType {
                expected: "matrix",
                got: other.type_name().into(),
            }),
        }
    }

    fn endpoint(&self, api: &str) -> String {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(["api", "v1", api]);
        }
        url.to_string()
    }

    /// POSTs the form with retries and decodes the response.
    async fn call(&self, api: &str, form: &[(&str, String)]) -> Result<QueryData, QueryError> {
        let endpoint = self.endpoint(api);
        let backoff = ExponentialBuilder::default()
            .with_min_delay(BACKOFF_MIN)
            .with_max_delay(BACKOFF_MAX)
            .with_max_times(self.retries as usize)
            .with_jitter();
        let attempts = std::sync::atomic::AtomicU32::new(0);
        let result = (|| async {
            attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.attempt(&endpoint, form).await
        })
        .retry(backoff)
        .when(QueryError::is_retryable)
        .notify(|e, delay| {
            tracing::debug!(endpoint = %endpoint, kind = e.kind(), error = %e, ?delay, "retrying Prometheus query");
        })
        .await;
        match result {
            Err(QueryError::Unreachable {
                endpoint, reason, ..
            }) => Err(QueryError::Unreachable {
                endpoint,
                attempts: attempts.load(std::sync::atomic::Ordering::Relaxed),
                reason,
            }),
            other => other,
        }
    }

    async fn attempt(
        &self,
        endpoint: &str,
        form: &[(&str, String)],
    ) -> Result<QueryData, QueryError> {
        let http = self.http.current().map_err(|e| QueryError::Unreachable {
            endpoint: endpoint.to_string(),
            attempts: 1,
            reason: format!("TLS files unusable: {e}"),
        })?;
        let _turn = self
            .limiter
            .turn(self.timeout)
            .await
            .map_err(|e| QueryError::Unreachable {
                endpoint: endpoint.to_string(),
                attempts: 1,
                reason: e.to_string(),
            })?;
        let mut request = http.post(endpoint).form(form);
        let auth = self.credentials.header().map_err(credentials_error)?;
        let secret = auth.as_ref().map(|(_, s)| s.clone());
        if let Some((value, _)) = auth {
            request = request.header(AUTHORIZATION, value);
        }
        let unreachable = |e: reqwest::Error| QueryError::Unreachable {
            endpoint: endpoint.to_string(),
            attempts: 1,
            reason: scrub(&transport_reason(&e), secret.as_ref()),
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status().as_u16();
        let body = match read_capped(response, self.max_body).await {
            Ok(body) => body,
            Err(BodyError::Read(e)) => return Err(unreachable(e)),
            Err(BodyError::TooLarge { limit }) => {
                return Err(QueryError::MalformedJson {
                    endpoint: endpoint.to_string(),
                    source: ResponseError::TooLarge { limit },
                })
            }
        };
        let decoded = decode_capped(status, &body, endpoint, self.max_series)
            .map_err(|e| redact(e, secret.as_ref()))?;
        if !decoded.warnings.is_empty() {
            tracing::debug!(endpoint, warnings = ?decoded.warnings, "Prometheus returned warnings");
        }
        Ok(decoded.data)
    }
}

/// Scrubs the secret from text copied from a response.
fn redact(e: QueryError, secret: Option<&super::auth::Secret>) -> QueryError {
    match e {
        QueryError::HttpStatus {
            endpoint,
            status,
            message,
        } => QueryError::HttpStatus {
            endpoint,
            status,
            message: message.map(|m| scrub(&m, secret)),
        },
        QueryError::PromQl { error_type, error } => QueryError::PromQl {
            error_type,
            error: scrub(&error, secret),
        },
        other => other,
    }
}

/// `timeout` or the error chain of a transport error (without the URL, already known).
fn transport_reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timeout".into();
    }
    let mut parts = Vec::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    if parts.is_empty() {
        e.to_string()
    } else {
        parts.join(": ")
    }
}

fn settings_error(field: &str, message: impl Into<String>) -> ClientBuildError {
    ClientBuildError::Settings(SettingsError {
        path: format!("prometheus.{field}"),
        message: message.into(),
    })
}

/// The base URL the API paths are joined to (http or https). The config file checks
/// the rest (host, no inline credentials) with the field's path.
fn base_url(url: &str) -> Result<url::Url, ClientBuildError> {
    let base = url::Url::parse(url).map_err(|e| settings_error("url", e.to_string()))?;
    if !matches!(base.scheme(), "http" | "https") {
        return Err(settings_error("url", "must be http or https"));
    }
    Ok(base)
}

fn unix_seconds(at: DateTime<Utc>) -> String {
    format!("{}.{:03}", at.timestamp(), at.timestamp_subsec_millis())
}

fn credentials_error(e: SecretError) -> QueryError {
    QueryError::Credentials {
        origin: e.origin,
        source: e.source,
    }
}

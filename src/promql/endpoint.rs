//! `Endpoint`: what the client needs to reach one Prometheus-compatible server, as plain
//! values. The runtime builds it from the config file's `prometheus.<name>` (validated
//! there); the client only re-checks what it builds URLs and headers from. The
//! credential sources are the ones every client shares (`fks_net::secret`).

use std::{collections::BTreeMap, time::Duration};

use crate::core::ClientTls;

/// One server: base URL, bounds, credentials, TLS, extra headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Base URL (`http` or `https`), possibly with a path prefix; `/api/v1/...` is appended.
    pub url: String,
    /// Timeout of one HTTP attempt (connect included).
    pub timeout: Duration,
    /// Retries after the first attempt for retryable errors (unreachable, 5xx, 429).
    pub retries: u32,
    /// Extra headers sent with every request (never `Authorization`: see [`Endpoint::auth`]).
    pub headers: BTreeMap<String, String>,
    /// Credentials.
    pub auth: Auth,
    /// TLS (custom CA, client certificate); `None`: the built-in roots.
    pub tls: Option<ClientTls>,
    /// Largest response body read, in bytes.
    pub max_response_bytes: usize,
    /// Most series one response may hold.
    pub max_series: usize,
    /// Requests in flight to this server at most (a slow server then holds that many
    /// connections, however many jobs wait on it).
    pub max_concurrent_requests: usize,
}

/// Default of [`Endpoint::max_response_bytes`].
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
/// Default of [`Endpoint::max_series`].
pub const DEFAULT_MAX_SERIES: usize = 50_000;
/// Default [`Endpoint::max_concurrent_requests`].
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 16;

impl Endpoint {
    /// `url` with a per-attempt `timeout` and `retries`, no credentials, no TLS options, no
    /// extra headers.
    pub fn new(url: impl Into<String>, timeout: Duration, retries: u32) -> Self {
        Self {
            url: url.into(),
            timeout,
            retries,
            headers: BTreeMap::new(),
            auth: Auth::None,
            tls: None,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_series: DEFAULT_MAX_SERIES,
            max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
        }
    }
}

pub use fks_net::secret::{Auth, PasswordSource};

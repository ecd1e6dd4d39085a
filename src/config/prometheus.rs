//! `ServerSettings`: how to reach one Prometheus-compatible server (`prometheus.<name>` in
//! the YAML config), and its validation. Secrets are never inline: a bearer token comes
//! from a file (re-read when it changes), a basic-auth password from a file or an
//! environment variable. The runtime hands the validated values to the Prometheus client
//! (`prometheus::Endpoint`).

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ConfigError;
use crate::core::ClientTls;

/// Default per-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default number of retries after the first attempt (retryable errors only).
pub const DEFAULT_RETRIES: u32 = 2;
/// Upper bound accepted for `retries`.
pub const MAX_RETRIES: u32 = 10;
/// Upper bound accepted for `timeout`.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);
/// Default bound on one response body.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
/// Default bound on the series of one response.
pub const DEFAULT_MAX_SERIES: usize = 50_000;

/// Connection settings for one Prometheus-compatible server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServerSettings {
    /// Base URL (`http` or `https`), possibly with a path prefix
    /// (e.g. `http://mimir:8080/prometheus`); `/api/v1/...` is appended.
    pub url: String,
    /// Timeout of one HTTP attempt (humantime string, e.g. `5s`, `500ms`). Default 5s.
    #[serde(
        default = "default_timeout",
        serialize_with = "ser_duration",
        deserialize_with = "de_duration"
    )]
    pub timeout: Duration,
    /// Authentication, if the server needs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<ServerAuth>,
    /// TLS settings (custom CA, client certificate for mTLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ClientTls>,
    /// Extra headers sent with every request (e.g. `X-Scope-OrgID: tenant-a`).
    /// `Authorization` is refused here: use `auth`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Retries after the first attempt for retryable errors (unreachable, 5xx, 429),
    /// with exponential backoff. Default 2.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// The scrape interval of the Flink series (e.g. `30s`). Default: learned from the
    /// samples' timestamps every 5 minutes; set it when learning cannot work (no
    /// TaskManager JVM metrics under the policy's matchers).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_opt_duration",
        deserialize_with = "de_opt_duration"
    )]
    pub scrape_interval: Option<Duration>,
    /// Largest response body read (bytes; the read stops there with an error naming the
    /// limit). Default 16 MiB.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: usize,
    /// Most series one query may return (more is an error naming the limit, never a
    /// partial answer). Default 50,000.
    #[serde(default = "default_max_series")]
    pub max_series: usize,
    /// Requests in flight to this server at most (default 16): a slow server then holds
    /// that many connections, however many jobs wait on it.
    #[serde(default = "default_max_concurrent_requests")]
    pub max_concurrent_requests: usize,
}

/// Upper bound accepted for `maxConcurrentRequests`.
pub const MAX_CONCURRENT_REQUESTS: usize = 256;

/// Authentication: exactly one of `bearerTokenFile` or `basic`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServerAuth {
    /// File holding a bearer token (re-read when its modification time changes, so
    /// rotated tokens are picked up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<PathBuf>,
    /// HTTP basic authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic: Option<BasicAuthSettings>,
}

/// HTTP basic authentication: a username and a password from a file or an env var.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BasicAuthSettings {
    /// User name (not a secret).
    pub username: String,
    /// File holding the password (re-read when it changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// Environment variable holding the password (read once at client build).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
}

fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}

fn default_retries() -> u32 {
    DEFAULT_RETRIES
}

fn default_max_response_bytes() -> usize {
    DEFAULT_MAX_RESPONSE_BYTES
}

fn default_max_series() -> usize {
    DEFAULT_MAX_SERIES
}

fn ser_opt_duration<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => ser_duration(d, s),
        None => s.serialize_none(),
    }
}

fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    de_duration(d).map(Some)
}

fn default_max_concurrent_requests() -> usize {
    crate::promql::endpoint::DEFAULT_MAX_CONCURRENT_REQUESTS
}

fn ser_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(text.trim()).map_err(|e| {
        serde::de::Error::custom(format!(
            "invalid duration {text:?}: {e} (expected e.g. 5s, 500ms)"
        ))
    })
}

impl ServerSettings {
    /// Settings for `url` with every default (no auth, no TLS options).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            timeout: DEFAULT_TIMEOUT,
            auth: None,
            tls: None,
            headers: BTreeMap::new(),
            retries: DEFAULT_RETRIES,
            scrape_interval: None,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_series: DEFAULT_MAX_SERIES,
            max_concurrent_requests: default_max_concurrent_requests(),
        }
    }

    /// Checks the settings without any I/O. `path` is the config path of these settings
    /// (e.g. `prometheus.default`); errors name the offending field below it
    /// (`prometheus.default.url: must be http or https`).
    pub fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let err = FieldError(path);
        let url = self.check_url(err)?;
        self.check_limits(err)?;
        if let Some(auth) = &self.auth {
            auth.check(err)?;
        }
        self.check_tls(err, &url)?;
        check_headers(&self.headers, err)
    }

    /// An http(s) URL with a host, no credentials, no query or fragment.
    fn check_url(&self, err: FieldError<'_>) -> Result<url::Url, ConfigError> {
        let url = url::Url::parse(&self.url)
            .map_err(|e| err.at("url", format!("not a valid URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(err.at("url", "must be http or https".into()));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(err.at("url", "has no host".into()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(err.at(
                "url",
                "must not contain credentials (use auth.basic with passwordFile or passwordEnv)"
                    .into(),
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(err.at("url", "must not have a query or fragment".into()));
        }
        Ok(url)
    }

    /// `timeout` in (0, MAX_TIMEOUT], `retries` at most MAX_RETRIES, a plausible
    /// `scrapeInterval`, non-zero response bounds.
    fn check_limits(&self, err: FieldError<'_>) -> Result<(), ConfigError> {
        if self.timeout.is_zero() || self.timeout > MAX_TIMEOUT {
            return Err(err.at(
                "timeout",
                format!(
                    "must be > 0 and <= {}",
                    humantime::format_duration(MAX_TIMEOUT)
                ),
            ));
        }
        if self.retries > MAX_RETRIES {
            return Err(err.at("retries", format!("must be <= {MAX_RETRIES}")));
        }
        if let Some(i) = self.scrape_interval {
            if i < Duration::from_millis(100) || i > Duration::from_secs(600) {
                return Err(err.at("scrapeInterval", "must be between 100ms and 10m".into()));
            }
        }
        if self.max_response_bytes < 1024 {
            return Err(err.at("maxResponseBytes", "must be >= 1024".into()));
        }
        if self.max_series == 0 {
            return Err(err.at("maxSeries", "must be >= 1".into()));
        }
        if !(1..=MAX_CONCURRENT_REQUESTS).contains(&self.max_concurrent_requests) {
            return Err(err.at(
                "maxConcurrentRequests",
                format!("must be in [1, {MAX_CONCURRENT_REQUESTS}]"),
            ));
        }
        Ok(())
    }

    /// A client certificate comes with its key; CA and certificate need https.
    fn check_tls(&self, err: FieldError<'_>, url: &url::Url) -> Result<(), ConfigError> {
        if let Some(tls) = &self.tls {
            if tls.cert_file.is_some() != tls.key_file.is_some() {
                return Err(err.at("tls", "certFile and keyFile must be set together".into()));
            }
            if url.scheme() != "https" && (tls.ca_file.is_some() || tls.cert_file.is_some()) {
                return Err(err.at("tls", "is set but url is not https".into()));
            }
        }
        Ok(())
    }
}

/// Valid header names and values; credentials never inline.
pub(super) fn check_headers(
    headers: &BTreeMap<String, String>,
    err: FieldError<'_>,
) -> Result<(), ConfigError> {
    for (name, value) in headers {
        let field = format!("headers.{name}");
        let header = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| err.at(&field, "not a valid HTTP header name".into()))?;
        if header == reqwest::header::AUTHORIZATION
            || header == reqwest::header::PROXY_AUTHORIZATION
        {
            return Err(err.at(
                &field,
                "credentials must not be inline; use auth.bearerTokenFile or auth.basic".into(),
            ));
        }
        reqwest::header::HeaderValue::from_str(value)
            .map_err(|_| err.at(&field, "not a valid HTTP header value".into()))?;
    }
    Ok(())
}

/// Builds errors naming a field below one server's config path.
#[derive(Clone, Copy)]
pub(super) struct FieldError<'a>(pub(super) &'a str);

impl FieldError<'_> {
    pub(super) fn at(self, field: &str, message: String) -> ConfigError {
        ConfigError::invalid(format!("{}.{field}", self.0), message)
    }
}

impl ServerAuth {
    /// Exactly one credential source: a bearer token file, or basic auth with exactly one
    /// password source.
    pub(super) fn check(&self, err: FieldError<'_>) -> Result<(), ConfigError> {
        match (&self.bearer_token_file, &self.basic) {
            (Some(_), Some(_)) => {
                return Err(err.at(
                    "auth",
                    "set exactly one of bearerTokenFile or basic, not both".into(),
                ))
            }
            (None, None) => {
                return Err(err.at("auth", "set exactly one of bearerTokenFile or basic".into()))
            }
            (Some(file), None) if file.as_os_str().is_empty() => {
                return Err(err.at("auth.bearerTokenFile", "must not be empty".into()))
            }
            (None, Some(basic)) => {
                if basic.username.is_empty() {
                    return Err(err.at("auth.basic.username", "must not be empty".into()));
                }
                match (&basic.password_file, &basic.password_env) {
                    (Some(_), Some(_)) | (None, None) => {
                        return Err(err.at(
                            "auth.basic",
                            "set exactly one of passwordFile or passwordEnv".into(),
                        ))
                    }
                    (None, Some(var)) if var.is_empty() || var.contains('=') => {
                        return Err(err.at(
                            "auth.basic.passwordEnv",
                            "must be an environment variable name".into(),
                        ))
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<ServerSettings, serde_yaml::Error> {
        serde_yaml::from_str(yaml)
    }

    /// Defaults apply when only the URL is given, and the YAML names are camelCase.
    #[test]
    fn defaults_and_camel_case() {
        let s = parse("url: http://prom:9090\n").expect("minimal settings parse");
        assert_eq!(s, ServerSettings::new("http://prom:9090"));
        let s = parse(
            "url: https://prom\ntimeout: 750ms\nretries: 0\nheaders: {X-Scope-OrgID: team-a}\n\
             auth: {basic: {username: u, passwordEnv: PROM_PW}}\n\
             tls: {caFile: /ca.pem, certFile: /c.pem, keyFile: /k.pem}\n",
        )
        .expect("full settings parse");
        assert_eq!(s.timeout, Duration::from_millis(750));
        assert_eq!(s.retries, 0);
        assert_eq!(s.headers["X-Scope-OrgID"], "team-a");
        assert_eq!(
            s.auth.and_then(|a| a.basic).and_then(|b| b.password_env),
            Some("PROM_PW".to_string())
        );
        let tls = s.tls.expect("tls parsed");
        assert!(!tls.insecure_skip_verify);
        assert_eq!(tls.key_file, Some(PathBuf::from("/k.pem")));
    }

    /// Unknown fields (e.g. an inline `password`) are rejected by serde.
    #[test]
    fn unknown_fields_are_rejected() {
        let e = parse("url: http://p\nauth: {basic: {username: u, password: hunter2}}\n")
            .expect_err("inline password must be refused");
        assert!(e.to_string().contains("unknown field `password`"), "{e}");
        let e = parse("url: http://p\ntimeout: soon\n").expect_err("bad duration");
        assert!(e.to_string().contains("invalid duration"), "{e}");
    }

    /// Every validation error names the field path below the given prefix.
    #[test]
    fn validation_names_the_field() {
        let cases: Vec<(&str, &str)> = vec![
            ("url: ftp://p\n", "prometheus.default.url: must be http or https"),
            ("url: not a url\n", "prometheus.default.url: not a valid URL"),
            ("url: http://u:pw@p\n", "prometheus.default.url: must not contain credentials"),
            ("url: http://p\ntimeout: 0s\n", "prometheus.default.timeout: must be > 0"),
            ("url: http://p\nretries: 99\n", "prometheus.default.retries: must be <= 10"),
            ("url: http://p\nauth: {}\n", "prometheus.default.auth: set exactly one"),
            (
                "url: http://p\nauth: {bearerTokenFile: /t, basic: {username: u, passwordEnv: X}}\n",
                "prometheus.default.auth: set exactly one of bearerTokenFile or basic, not both",
            ),
            (
                "url: http://p\nauth: {basic: {username: u}}\n",
                "prometheus.default.auth.basic: set exactly one of passwordFile or passwordEnv",
            ),
            (
                "url: https://p\ntls: {certFile: /c}\n",
                "prometheus.default.tls: certFile and keyFile must be set together",
            ),
            (
                "url: http://p\nheaders: {Authorization: Bearer x}\n",
                "prometheus.default.headers.Authorization: credentials must not be inline",
            ),
            (
                "url: http://p\nheaders: {\"bad header\": x}\n",
                "prometheus.default.headers.bad header: not a valid HTTP header name",
            ),
        ];
        for (yaml, want) in cases {
            let s = parse(yaml).expect("parses");
            let e = s.validate("prometheus.default").expect_err(yaml);
            assert!(e.to_string().starts_with(want), "{yaml}: got {e}");
        }
        let ok = parse("url: https://mimir:8080/prometheus\nauth: {bearerTokenFile: /t}\n")
            .expect("parses");
        assert!(ok.validate("prometheus.default").is_ok());
    }
}

//! [`HttpClient`]: the `reqwest` client of one upstream (a Prometheus server, the Flink
//! JobManagers), built from a [`ClientSpec`]: bounded timeouts, extra headers, optional
//! TLS from files (a CA bundle, a client certificate for mTLS), redirects off unless
//! asked for, a bounded idle pool. When a TLS file changes (cert-manager rotation) the
//! client is rebuilt on the next request, so a new handshake sees the new certificate
//! without a restart.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use fks_core::ClientTls;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::{error::FilesError, stamp::Watched};

/// How to build the client of one upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSpec {
    /// Timeout of one request (connect, send, response body).
    pub timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Extra headers sent with every request (never credentials: see [`crate::Credentials`]).
    pub headers: BTreeMap<String, String>,
    /// TLS files; `None`: the built-in roots, no client certificate.
    pub tls: Option<ClientTls>,
    /// Follow redirects (at most 5); off: a 3xx is the answer.
    pub follow_redirects: bool,
    /// Idle connections kept per host.
    pub max_idle_per_host: usize,
    /// How long an idle connection is kept (hyper keeps each one's read buffer, grown to
    /// the largest answer it read, while it is pooled).
    pub pool_idle_timeout: Duration,
}

impl ClientSpec {
    /// A spec with `timeout` (and a connect timeout of at most 5 s), no extra headers, no
    /// TLS files, no redirects, 8 idle connections per host kept 90 s (reqwest's default).
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            connect_timeout: timeout.min(Duration::from_secs(5)),
            headers: BTreeMap::new(),
            tls: None,
            follow_redirects: false,
            max_idle_per_host: 8,
            pool_idle_timeout: Duration::from_secs(90),
        }
    }

    /// The TLS files the client is built from.
    pub fn files(&self) -> Vec<PathBuf> {
        let Some(tls) = &self.tls else {
            return Vec::new();
        };
        [&tls.ca_file, &tls.cert_file, &tls.key_file]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }

    fn describe_files(&self) -> String {
        let files = self.files();
        if files.is_empty() {
            "defaults".to_string()
        } else {
            files
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        }
    }
}

/// A client rebuilt when its TLS files change.
#[derive(Debug)]
pub struct HttpClient {
    spec: ClientSpec,
    client: Watched<reqwest::Client>,
}

impl HttpClient {
    /// Reads the TLS files and builds the client (a missing or invalid file fails here).
    pub fn new(spec: ClientSpec) -> Result<Self, FilesError> {
        let client = Watched::new(spec.files(), || build(&spec))?;
        Ok(Self { spec, client })
    }

    /// The client to send the next request with (rebuilt first when a TLS file changed).
    pub fn current(&self) -> Result<reqwest::Client, FilesError> {
        Ok(self.client.current(|| build(&self.spec))?.as_ref().clone())
    }

    /// The spec.
    pub fn spec(&self) -> &ClientSpec {
        &self.spec
    }
}

/// The headers of `spec` as sent.
pub fn header_map(headers: &BTreeMap<String, String>) -> Result<HeaderMap, FilesError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let invalid = || FilesError::Header { name: name.clone() };
        let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
        map.insert(n, HeaderValue::from_str(value).map_err(|_| invalid())?);
    }
    Ok(map)
}

fn read(path: &std::path::Path, what: &'static str) -> Result<Vec<u8>, FilesError> {
    std::fs::read(path).map_err(|source| FilesError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn build(spec: &ClientSpec) -> Result<reqwest::Client, FilesError> {
    let redirects = if spec.follow_redirects {
        reqwest::redirect::Policy::limited(5)
    } else {
        reqwest::redirect::Policy::none()
    };
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(spec.timeout)
        .connect_timeout(spec.connect_timeout)
        .default_headers(header_map(&spec.headers)?)
        .redirect(redirects)
        .pool_max_idle_per_host(spec.max_idle_per_host)
        .pool_idle_timeout(spec.pool_idle_timeout)
        .user_agent(concat!("flink-keda-scaler/", env!("CARGO_PKG_VERSION")));
    if let Some(tls) = &spec.tls {
        builder = with_tls(builder, tls)?;
    }
    builder.build().map_err(|source| FilesError::Client {
        files: spec.describe_files(),
        source,
    })
}

fn with_tls(
    mut builder: reqwest::ClientBuilder,
    tls: &ClientTls,
) -> Result<reqwest::ClientBuilder, FilesError> {
    if let Some(ca) = &tls.ca_file {
        let pem = read(ca, "CA")?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| FilesError::InvalidPem {
                what: "CA",
                path: ca.clone(),
                problem: format!("is not a PEM certificate bundle ({e})"),
            })?;
        if certs.is_empty() {
            return Err(FilesError::InvalidPem {
                what: "CA",
                path: ca.clone(),
                problem: "holds no CERTIFICATE block".into(),
            });
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
        let mut pem = read(cert, "client certificate")?;
        pem.push(b'\n');
        pem.extend(read(key, "client key")?);
        let identity = reqwest::Identity::from_pem(&pem).map_err(|e| FilesError::InvalidPem {
            what: "client certificate/key",
            path: cert.clone(),
            problem: format!("is not a PEM certificate with its key ({e})"),
        })?;
        builder = builder.identity(identity);
    }
    if tls.insecure_skip_verify {
        builder = builder.danger_accept_invalid_certs(true);
    }
    Ok(builder)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Missing and invalid TLS files fail at build, naming the file.
    #[test]
    fn bad_files_fail_at_build() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut spec = ClientSpec::new(Duration::from_secs(1));
        spec.tls = Some(ClientTls {
            ca_file: Some(dir.path().join("missing.pem")),
            ..ClientTls::default()
        });
        let e = HttpClient::new(spec.clone()).expect_err("missing CA");
        assert!(e.to_string().starts_with("cannot read CA file "), "{e}");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not pem").expect("write");
        spec.tls = Some(ClientTls {
            ca_file: Some(junk),
            ..ClientTls::default()
        });
        let e = HttpClient::new(spec).expect_err("junk CA");
        assert!(e.to_string().contains("junk.pem"), "{e}");
        let ok = HttpClient::new(ClientSpec::new(Duration::from_secs(1))).expect("plain");
        assert!(ok.current().is_ok());
    }

    /// Invalid header names are refused at build.
    #[test]
    fn headers_are_checked() {
        let mut spec = ClientSpec::new(Duration::from_secs(1));
        spec.headers.insert("bad header".into(), "x".into());
        let e = HttpClient::new(spec).expect_err("bad header");
        assert_eq!(e.to_string(), "header bad header: not a valid HTTP header");
    }
}

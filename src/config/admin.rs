//! `admin`: the listener of `GET /debug/jobs` and `POST /admin/rescale`, apart from
//! `/metrics`, `/healthz` and `/readyz`. On a loopback address (the default
//! `127.0.0.1:9091`) only processes of the scaler's own pod reach it; on any other
//! address it must authenticate callers — a bearer token from a file, or client
//! certificates (mTLS) — and the process refuses to start otherwise.

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
};

use serde::Deserialize;

use super::ConfigError;
use crate::core::ServerTls;

/// Admin listener settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AdminConfig {
    /// Listen address (default `127.0.0.1:9091`: loopback only).
    #[serde(default = "default_addr")]
    pub listen_address: SocketAddr,
    /// Authentication of callers (required off loopback unless `tls.clientCaFile` is set).
    #[serde(default)]
    pub auth: Option<AdminAuth>,
    /// TLS of the listener; with `clientCaFile`, callers must present a certificate it
    /// signed (mTLS), which then identifies them.
    #[serde(default)]
    pub tls: Option<ServerTls>,
    /// Manual rescales accepted per minute, over all jobs (default 6).
    #[serde(default = "default_rescales_per_minute")]
    pub max_rescales_per_minute: u32,
}

/// Bearer-token authentication.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AdminAuth {
    /// File holding the token callers send as `Authorization: Bearer <token>` (re-read
    /// when it changes; compared in constant time).
    pub bearer_token_file: PathBuf,
}

fn default_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9091))
}

fn default_rescales_per_minute() -> u32 {
    6
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen_address: default_addr(),
            auth: None,
            tls: None,
            max_rescales_per_minute: default_rescales_per_minute(),
        }
    }
}

/// True for an address only the local host can reach.
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

impl AdminConfig {
    /// True when callers must present a client certificate.
    pub fn mutual_tls(&self) -> bool {
        self.tls
            .as_ref()
            .is_some_and(|t| t.client_ca_file.is_some())
    }

    /// Checks the settings for the listener on `addr` (the configured one, or the
    /// `--admin-addr` override): off loopback, callers must authenticate.
    pub fn check(&self, addr: SocketAddr) -> Result<(), ConfigError> {
        if self.max_rescales_per_minute == 0 {
            return Err(ConfigError::invalid(
                "admin.maxRescalesPerMinute",
                "must be >= 1",
            ));
        }
        if let Some(auth) = &self.auth {
            if auth.bearer_token_file.as_os_str().is_empty() {
                return Err(ConfigError::invalid(
                    "admin.auth.bearerTokenFile",
                    "must not be empty",
                ));
            }
        }
        if is_loopback(addr.ip()) || self.auth.is_some() || self.mutual_tls() {
            return Ok(());
        }
        Err(ConfigError::invalid(
            "admin.listenAddress",
            format!(
                "{addr} is not a loopback address, so anyone who reaches it could rescale any job: \
                 set admin.auth.bearerTokenFile or admin.tls.clientCaFile (mTLS), or listen on 127.0.0.1"
            ),
        ))
    }

    /// Warnings for `check-config`: a bearer token sent in clear across the network.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !is_loopback(self.listen_address.ip()) && self.auth.is_some() && self.tls.is_none() {
            out.push(format!(
                "admin.listenAddress {} is off loopback without admin.tls: the bearer token crosses the network in clear",
                self.listen_address
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> AdminConfig {
        serde_yaml::from_str(yaml).expect("admin settings parse")
    }

    /// Loopback needs nothing; any other address needs a token or mTLS.
    #[test]
    fn off_loopback_needs_authentication() {
        let loopback = parse("{}");
        assert!(loopback.check(loopback.listen_address).is_ok());
        assert!(loopback.check("[::1]:9091".parse().expect("addr")).is_ok());
        let open: SocketAddr = "0.0.0.0:9091".parse().expect("addr");
        let e = loopback.check(open).expect_err("unauthenticated");
        assert!(
            e.to_string()
                .starts_with("admin.listenAddress: 0.0.0.0:9091 is not a loopback address"),
            "{e}"
        );
        let token = parse("listenAddress: 0.0.0.0:9091\nauth: {bearerTokenFile: /t}\n");
        assert!(token.check(open).is_ok());
        assert_eq!(token.warnings().len(), 1);
        let mtls = parse("tls: {certFile: /c, keyFile: /k, clientCaFile: /ca}\n");
        assert!(mtls.check(open).is_ok());
        let tls_only = parse("tls: {certFile: /c, keyFile: /k}\n");
        assert!(tls_only.check(open).is_err());
    }
}

//! TLS file locations: plain values shared by the config file (which reads them from YAML)
//! and the adapters that load them (the gRPC server, the Prometheus client), so they are
//! written once and never copied field by field. No I/O here: the adapters read the files.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// TLS for a server we run (the KEDA gRPC endpoint): PEM files read once at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServerTls {
    /// PEM certificate chain. Its SAN must match the host in KEDA's `scalerAddress`.
    pub cert_file: PathBuf,
    /// PEM private key.
    pub key_file: PathBuf,
    /// PEM CA bundle; when set, clients must present a certificate signed by it (mTLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca_file: Option<PathBuf>,
}

/// TLS for a server we call (an `https` Prometheus): extra trust and an optional client
/// certificate.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClientTls {
    /// PEM bundle of CA certificates trusted in addition to the built-in roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (mTLS); requires `keyFile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate; requires `certFile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// Accept any server certificate. For tests only.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

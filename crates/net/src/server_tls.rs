//! [`ServerTlsFiles`]: the rustls configuration of a server we run (the gRPC endpoint, the
//! admin listener) from PEM files — a certificate chain, its key and, for mTLS, a client
//! CA bundle — read at start (a missing or invalid file is a start-up error) and again
//! when one of them changes: each accepted connection is handshaken with the current
//! configuration, so a rotated certificate is served without a restart.

use std::{path::PathBuf, sync::Arc};

use fks_core::ServerTls;
use rustls::{
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
    server::WebPkiClientVerifier,
    RootCertStore, ServerConfig,
};

use crate::{error::FilesError, stamp::Watched};

/// The server TLS configuration, rebuilt when its files change.
#[derive(Debug)]
pub struct ServerTlsFiles {
    tls: ServerTls,
    alpn: Vec<Vec<u8>>,
    config: Watched<ServerConfig>,
}

impl ServerTlsFiles {
    /// Reads the files and builds the configuration, offering `alpn` (e.g. `h2` for gRPC:
    /// KEDA's grpc-go client requires it).
    pub fn load(tls: &ServerTls, alpn: &[&[u8]]) -> Result<Self, FilesError> {
        let alpn: Vec<Vec<u8>> = alpn.iter().map(|p| p.to_vec()).collect();
        let config = Watched::new(files(tls), || build(tls, &alpn))?;
        Ok(Self {
            tls: tls.clone(),
            alpn,
            config,
        })
    }

    /// The configuration for the next handshake. When the files changed and the new ones
    /// cannot be used (e.g. a certificate written before its key), the previous
    /// configuration stays in use and the problem is logged; the next handshake retries.
    pub fn current(&self) -> Arc<ServerConfig> {
        match self.config.current(|| build(&self.tls, &self.alpn)) {
            Ok(c) => c,
            Err(error) => {
                tracing::warn!(%error, "TLS files changed but cannot be used; serving the previous certificate");
                self.config.last()
            }
        }
    }

    /// True when clients must present a certificate (mTLS).
    pub fn requires_client_certificate(&self) -> bool {
        self.tls.client_ca_file.is_some()
    }

    /// Forces the next [`Self::current`] to look at the files.
    pub fn expire(&self) {
        self.config.expire();
    }
}

fn files(tls: &ServerTls) -> Vec<PathBuf> {
    let mut files = vec![tls.cert_file.clone(), tls.key_file.clone()];
    files.extend(tls.client_ca_file.clone());
    files
}

fn read(path: &std::path::Path, what: &'static str) -> Result<Vec<u8>, FilesError> {
    std::fs::read(path).map_err(|source| FilesError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// Every certificate of a PEM file (at least one).
pub fn read_certificates(
    path: &std::path::Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, FilesError> {
    let pem = read(path, what)?;
    let invalid = |problem: String| FilesError::InvalidPem {
        what,
        path: path.to_path_buf(),
        problem,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("is not valid PEM ({e})")))?;
    if certs.is_empty() {
        return Err(invalid("is not PEM or holds no CERTIFICATE block".into()));
    }
    Ok(certs)
}

/// The private key of a PEM file.
pub fn read_private_key(
    path: &std::path::Path,
    what: &'static str,
) -> Result<PrivateKeyDer<'static>, FilesError> {
    let pem = read(path, what)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| FilesError::InvalidPem {
        what,
        path: path.to_path_buf(),
        problem: format!("is not PEM or holds no PRIVATE KEY block ({e})"),
    })
}

fn describe(tls: &ServerTls) -> String {
    files(tls)
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn build(tls: &ServerTls, alpn: &[Vec<u8>]) -> Result<ServerConfig, FilesError> {
    let certs = read_certificates(&tls.cert_file, "TLS certificate")?;
    let key = read_private_key(&tls.key_file, "TLS private key")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let rejected = |source| FilesError::Tls {
        files: describe(tls),
        source,
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(rejected)?;
    let builder = match &tls.client_ca_file {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certificates(ca, "TLS client CA")? {
                roots.add(cert).map_err(rejected)?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|source| FilesError::ClientCa {
                    path: ca.clone(),
                    source,
                })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key).map_err(rejected)?;
    config.alpn_protocols = alpn.to_vec();
    Ok(config)
}

//! Errors of loading files (certificates, keys, CA bundles, tokens, passwords) and of
//! using the credentials they hold. Messages name the file and what is wrong with it,
//! never a secret.

use std::path::PathBuf;

/// A file named by the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// The file could not be read.
    #[error("cannot read {what} file {}: {source}", path.display())]
    Read {
        /// Which file (`TLS certificate`, `bearer token`, ...).
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A PEM file does not hold what it should.
    #[error("{what} file {} {problem}", path.display())]
    InvalidPem {
        /// Which file.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// What is wrong (`holds no CERTIFICATE block`, ...).
        problem: String,
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
    /// rustls rejected the certificates, key or CA bundle.
    #[error("TLS configuration from {files} rejected: {source}")]
    Tls {
        /// The files it was built from.
        files: String,
        /// Why.
        #[source]
        source: rustls::Error,
    },
    /// The client-certificate verifier could not be built from the CA bundle.
    #[error("client CA file {} unusable: {source}", path.display())]
    ClientCa {
        /// The CA bundle.
        path: PathBuf,
        /// Why.
        #[source]
        source: rustls::server::VerifierBuilderError,
    },
    /// A header name or value cannot be sent.
    #[error("header {name}: not a valid HTTP header")]
    Header {
        /// The header name as configured.
        name: String,
    },
    /// The HTTP client could not be built from the files (reqwest's TLS setup).
    #[error("cannot build the HTTP client from {files}: {source}")]
    Client {
        /// The files it was built from (or `defaults`).
        files: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
}

impl FilesError {
    /// Bounded label value.
    pub fn kind(&self) -> &'static str {
        match self {
            FilesError::Read { .. } => "read_file",
            FilesError::InvalidPem { .. } => "invalid_pem",
            FilesError::EmptyCredential { .. } => "empty_credential",
            FilesError::MissingEnv { .. } => "missing_env",
            FilesError::Tls { .. } | FilesError::ClientCa { .. } => "tls",
            FilesError::Header { .. } => "header",
            FilesError::Client { .. } => "http_client",
        }
    }
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

/// Credentials that could not be (re-)read or used, with where they come from.
#[derive(Debug, thiserror::Error)]
#[error("credentials from {origin} unusable: {source}")]
pub struct SecretError {
    /// `file /var/run/token`, `auth.basic.passwordEnv`.
    pub origin: String,
    /// Why.
    #[source]
    pub source: CredentialError,
}

//! Serving: the external-scaler service plus `grpc.health.v1` and server reflection
//! (v1 and v1alpha) on one listener, optionally with TLS or mTLS (rustls, ALPN `h2`, which
//! KEDA's grpc-go client requires), with a graceful shutdown that first ends open streams.

use std::{future::Future, path::PathBuf, time::Duration};

use tokio::net::TcpListener;
use tonic::transport::{server::TcpIncoming, Certificate, Identity, Server, ServerTlsConfig};
use tonic_health::ServingStatus;

use crate::core::ServerTls;

use super::{
    evaluator::Evaluator,
    pb::{external_scaler_server::ExternalScalerServer, FILE_DESCRIPTOR_SET},
    service::ExternalScalerService,
};

/// gRPC name of the external-scaler service (for health checks).
pub const SERVICE_NAME: &str = "externalscaler.ExternalScaler";
/// Largest request accepted (a ScaledObjectRef with its metadata is a few KiB).
pub const MAX_DECODING_MESSAGE_SIZE: usize = 256 * 1024;
/// Bound on a TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP/2 keepalive ping interval (detects dead KEDA connections).
pub const HTTP2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// HTTP/2 keepalive ping timeout.
pub const HTTP2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A TLS PEM file could not be read.
    #[error("cannot read TLS {what} file {}: {source}", path.display())]
    ReadTlsFile {
        /// Which file (`certificate`, `private key`, `client CA`).
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A TLS PEM file does not contain what it should.
    #[error("TLS {what} file {} {problem}", path.display())]
    InvalidTlsFile {
        /// Which file.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// What is wrong.
        problem: &'static str,
    },
    /// rustls rejected the certificate/key pair or the client CA.
    #[error("TLS configuration from {cert} / {key} rejected: {source}")]
    TlsConfig {
        /// Certificate file.
        cert: String,
        /// Key file.
        key: String,
        /// The transport error.
        #[source]
        source: tonic::transport::Error,
    },
    /// Building the reflection service failed (corrupt descriptor set).
    #[error("cannot build gRPC reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The listener's local address could not be read.
    #[error("cannot read the gRPC listener address: {0}")]
    LocalAddr(#[source] std::io::Error),
    /// The server failed while serving.
    #[error("gRPC server on {addr} failed: {source}")]
    Serve {
        /// Listen address.
        addr: String,
        /// The transport error.
        #[source]
        source: tonic::transport::Error,
    },
}

/// Reads the PEM files of `tls` and builds tonic's TLS config (ALPN `h2` included by
/// tonic); a client CA turns on mTLS.
pub fn load_tls(tls: &ServerTls) -> Result<ServerTlsConfig, ServerError> {
    let cert = read_pem(&tls.cert_file, "certificate", "CERTIFICATE-----")?;
    let key = read_pem(&tls.key_file, "private key", "PRIVATE KEY-----")?;
    let mut config = ServerTlsConfig::new()
        .identity(Identity::from_pem(cert, key))
        .timeout(TLS_HANDSHAKE_TIMEOUT);
    if let Some(ca_file) = &tls.client_ca_file {
        let ca = read_pem(ca_file, "client CA", "CERTIFICATE-----")?;
        config = config.client_ca_root(Certificate::from_pem(ca));
    }
    Ok(config)
}

fn read_pem(path: &PathBuf, what: &'static str, marker: &str) -> Result<Vec<u8>, ServerError> {
    let bytes = std::fs::read(path).map_err(|source| ServerError::ReadTlsFile {
        what,
        path: path.clone(),
        source,
    })?;
    let text = String::from_utf8_lossy(&bytes);
    if !text.contains("-----BEGIN ") || !text.contains(marker) {
        return Err(ServerError::InvalidTlsFile {
            what,
            path: path.clone(),
            problem: "is not PEM or holds no matching PEM block",
        });
    }
    Ok(bytes)
}

/// Options of [`serve_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeOptions {
    /// TLS (mTLS when it has a client CA); `None`: plaintext.
    pub tls: Option<ServerTls>,
    /// How long the graceful shutdown may wait for in-flight calls and streams we do not
    /// end ourselves (e.g. a health `Watch`); then remaining connections are closed.
    pub shutdown_grace: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            tls: None,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        }
    }
}

/// Default [`ServeOptions::shutdown_grace`].
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves `service`, `grpc.health.v1` and reflection on `listener` until `shutdown`
/// resolves, with default [`ServeOptions`] and the given TLS.
pub async fn serve<E: Evaluator>(
    listener: TcpListener,
    service: ExternalScalerService<E>,
    tls: Option<ServerTls>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    let options = ServeOptions {
        tls,
        ..ServeOptions::default()
    };
    serve_with(listener, service, options, shutdown).await
}

/// The server with HTTP/2 keepalives and, when configured, (m)TLS.
fn builder(tls: Option<&ServerTls>) -> Result<Server, ServerError> {
    let server = Server::builder()
        .http2_keepalive_interval(Some(HTTP2_KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(HTTP2_KEEPALIVE_TIMEOUT));
    let Some(tls) = tls else {
        return Ok(server);
    };
    server
        .tls_config(load_tls(tls)?)
        .map_err(|source| ServerError::TlsConfig {
            cert: tls.cert_file.display().to_string(),
            key: tls.key_file.display().to_string(),
            source,
        })
}

/// Health turns NOT_SERVING (the scaler's and the overall status) and the open scaler
/// streams end.
async fn stop_serving<E: Evaluator>(
    health: &tonic_health::server::HealthReporter,
    streams: &ExternalScalerService<E>,
) {
    health
        .set_service_status(SERVICE_NAME, ServingStatus::NotServing)
        .await;
    health
        .set_service_status("", ServingStatus::NotServing)
        .await;
    streams.begin_shutdown();
}

/// Serves `service`, `grpc.health.v1` and reflection on `listener` until `shutdown`
/// resolves. On shutdown: health turns NOT_SERVING, open scaler streams end (status OK),
/// then tonic drains in-flight calls (each bounded by the service's rpc timeout) for at
/// most `shutdown_grace`.
pub async fn serve_with<E: Evaluator>(
    listener: TcpListener,
    service: ExternalScalerService<E>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    let ServeOptions {
        tls,
        shutdown_grace,
    } = options;
    let addr = listener.local_addr().map_err(ServerError::LocalAddr)?;
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status(SERVICE_NAME, ServingStatus::Serving)
        .await;
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;

    let mut server = builder(tls.as_ref())?;

    // serve_with_incoming ignores the builder's TCP settings: set them on the incoming.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let streams = service.clone();
    let scaler =
        ExternalScalerServer::new(service).max_decoding_message_size(MAX_DECODING_MESSAGE_SIZE);
    let (fired_tx, fired_rx) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        tracing::info!(%addr, "gRPC server shutting down.");
        stop_serving(&health, &streams).await;
        let _ = fired_tx.send(());
    };
    let grace_expired = async move {
        match fired_rx.await {
            Ok(()) => tokio::time::sleep(shutdown_grace).await,
            Err(_) => std::future::pending().await,
        }
    };
    tracing::info!(%addr, tls = tls.is_some(), "gRPC server listening.");
    let serving = server
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(scaler)
        .serve_with_incoming_shutdown(incoming, signal);
    tokio::select! {
        result = serving => result.map_err(|source| ServerError::Serve {
            addr: addr.to_string(),
            source,
        }),
        () = grace_expired => {
            tracing::warn!(
                %addr,
                grace = %humantime::format_duration(shutdown_grace),
                "gRPC graceful shutdown exceeded its grace period; closing remaining connections.",
            );
            Ok(())
        }
    }
}

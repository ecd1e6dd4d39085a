//! Serving: the external-scaler service plus `grpc.health.v1` and server reflection
//! (v1 and v1alpha) on one listener, optionally with TLS or mTLS (rustls, ALPN `h2`, which
//! KEDA's grpc-go client requires), with a graceful shutdown that first ends open streams.
//! Everything that can fail is done by [`prepare`], before a connection is accepted: a
//! bad certificate stops the start, never a running server. The certificate files are
//! re-read when they change (each handshake uses the current ones).

use std::{future::Future, sync::Arc, time::Duration};

use fks_net::{incoming, FilesError, ServerTlsFiles};
use tokio::net::TcpListener;
use tonic::transport::{server::TcpIncoming, Server};
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
    /// A TLS file is missing, not PEM, or rejected by rustls.
    #[error("gRPC TLS: {0}")]
    Tls(#[from] FilesError),
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

/// Reads the PEM files of `tls` and builds the TLS configuration (ALPN `h2`); a client CA
/// turns on mTLS. The files are re-read when they change.
pub fn load_tls(tls: &ServerTls) -> Result<ServerTlsFiles, ServerError> {
    Ok(ServerTlsFiles::load(tls, &[b"h2"])?)
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

/// The server with HTTP/2 keepalives.
fn builder() -> Server {
    Server::builder()
        .http2_keepalive_interval(Some(HTTP2_KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(HTTP2_KEEPALIVE_TIMEOUT))
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
/// resolves ([`prepare`] then [`Prepared::run`]). On shutdown: health turns NOT_SERVING,
/// open scaler streams end (status OK), then tonic drains in-flight calls (each bounded
/// by the service's rpc timeout) for at most `shutdown_grace`.
pub async fn serve_with<E: Evaluator>(
    listener: TcpListener,
    service: ExternalScalerService<E>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    prepare(listener, service, options)?.run(shutdown).await
}

/// A server ready to accept connections: TLS loaded, reflection built.
pub struct Prepared<E: Evaluator> {
    listener: TcpListener,
    addr: std::net::SocketAddr,
    service: ExternalScalerService<E>,
    tls: Option<Arc<ServerTlsFiles>>,
    shutdown_grace: Duration,
}

fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

/// Does everything that can fail before serving: reads the listener's address, loads the
/// TLS files, builds the reflection services.
pub fn prepare<E: Evaluator>(
    listener: TcpListener,
    service: ExternalScalerService<E>,
    options: ServeOptions,
) -> Result<Prepared<E>, ServerError> {
    let addr = listener.local_addr().map_err(ServerError::LocalAddr)?;
    let tls = options.tls.as_ref().map(load_tls).transpose()?;
    // built here so a corrupt descriptor set fails the start (built again to serve)
    reflection().build_v1()?;
    reflection().build_v1alpha()?;
    Ok(Prepared {
        listener,
        addr,
        service,
        tls: tls.map(Arc::new),
        shutdown_grace: options.shutdown_grace,
    })
}

impl<E: Evaluator> Prepared<E> {
    /// The address the server listens on.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` resolves (see [`serve_with`]).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServerError> {
        let Prepared {
            listener,
            addr,
            service,
            tls,
            shutdown_grace,
        } = self;
        let reflection_v1 = reflection().build_v1()?;
        let reflection_v1alpha = reflection().build_v1alpha()?;
        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_service_status(SERVICE_NAME, ServingStatus::Serving)
            .await;
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
        let router = builder()
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(scaler);
        let serving = async move {
            match tls {
                Some(files) => {
                    let incoming = incoming::tls(listener, files, TLS_HANDSHAKE_TIMEOUT)
                        .map_err(ServerError::LocalAddr)?;
                    router.serve_with_incoming_shutdown(incoming, signal).await
                }
                // serve_with_incoming ignores the builder's TCP settings: set them here.
                None => {
                    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
                    router.serve_with_incoming_shutdown(incoming, signal).await
                }
            }
            .map_err(|source| ServerError::Serve {
                addr: addr.to_string(),
                source,
            })
        };
        tokio::select! {
            result = serving => result,
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
}

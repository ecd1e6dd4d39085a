//! [`Incoming`]: the connections a server accepts on one listener, plain or TLS, handed
//! over with the [`Peer`] on the other end. TLS handshakes run concurrently (at most
//! [`MAX_HANDSHAKES`] at once, each bounded by a timeout), each with the configuration
//! current at accept time (see [`ServerTlsFiles`]), so a slow or hostile client never
//! holds up the others and a rotated certificate is served at once. Usable as tonic's
//! incoming stream and as an axum [`Listener`].

use std::{
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use axum::serve::Listener;
use futures_util::Stream;
use rustls::pki_types::CertificateDer;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{mpsc, Semaphore},
    task::JoinHandle,
};
use tokio_rustls::{server::TlsStream, TlsAcceptor};

use crate::server_tls::ServerTlsFiles;

/// TLS handshakes in progress at most; further connections are closed at once.
pub const MAX_HANDSHAKES: usize = 128;
/// Accepted connections waiting for the server at most.
const QUEUE: usize = 64;

/// Who is on the other end of an accepted connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The remote address.
    pub addr: SocketAddr,
    /// `sha256:<first 16 hex digits>` of the client certificate (mTLS), if one was
    /// presented and verified.
    pub certificate: Option<String>,
}

impl Peer {
    fn plain(addr: SocketAddr) -> Self {
        Self {
            addr,
            certificate: None,
        }
    }
}

/// A short, stable identity of a certificate: `sha256:` and 16 hex digits of its digest.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
    let hex: String = digest
        .as_ref()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// Accepted connections of one listener (the accept loop stops when this is dropped).
pub struct Incoming<Io> {
    rx: mpsc::Receiver<(Io, Peer)>,
    local: SocketAddr,
    task: JoinHandle<()>,
}

impl<Io> Drop for Incoming<Io> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<Io> std::fmt::Debug for Incoming<Io> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

/// Waits after an accept error (e.g. out of file descriptors) before the next accept.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

async fn accept(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((tcp, addr)) => {
                let _ = tcp.set_nodelay(true);
                return (tcp, addr);
            }
            Err(error) => {
                tracing::warn!(%error, "accept failed; retrying");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// The listener's connections, unencrypted.
pub fn plain(listener: TcpListener) -> std::io::Result<Incoming<TcpStream>> {
    let local = listener.local_addr()?;
    let (tx, rx) = mpsc::channel(QUEUE);
    let task = tokio::spawn(async move {
        loop {
            let (tcp, addr) = accept(&listener).await;
            if tx.send((tcp, Peer::plain(addr))).await.is_err() {
                return;
            }
        }
    });
    Ok(Incoming { rx, local, task })
}

/// The listener's connections after a TLS handshake with the configuration current at
/// accept time, each bounded by `handshake_timeout`; failed handshakes are logged at
/// debug and dropped.
pub fn tls(
    listener: TcpListener,
    files: Arc<ServerTlsFiles>,
    handshake_timeout: Duration,
) -> std::io::Result<Incoming<TlsStream<TcpStream>>> {
    let local = listener.local_addr()?;
    let (tx, rx) = mpsc::channel(QUEUE);
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    let task = tokio::spawn(async move {
        loop {
            let (tcp, addr) = accept(&listener).await;
            if tx.is_closed() {
                return;
            }
            let Ok(permit) = handshakes.clone().try_acquire_owned() else {
                tracing::warn!(%addr, limit = MAX_HANDSHAKES, "too many TLS handshakes in progress; connection closed");
                continue;
            };
            let acceptor = TlsAcceptor::from(files.current());
            let tx = tx.clone();
            tokio::spawn(async move {
                let _permit = permit;
                match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let certificate = stream
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|c| c.first())
                            .map(fingerprint);
                        let _ = tx.send((stream, Peer { addr, certificate })).await;
                    }
                    Ok(Err(error)) => tracing::debug!(%addr, %error, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
                }
            });
        }
    });
    Ok(Incoming { rx, local, task })
}

impl<Io> Incoming<Io> {
    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

/// tonic's incoming stream: the connections (the accept loop never fails).
impl<Io: Unpin> Stream for Incoming<Io> {
    type Item = Result<Io, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx).map(|next| next.map(|(io, _)| Ok(io)))
    }
}

/// The peer of each connection as axum's `ConnectInfo<Peer>`.
impl<Io> axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, Incoming<Io>>>
    for Peer
where
    Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, Incoming<Io>>) -> Self {
        stream.remote_addr().clone()
    }
}

impl<Io> Listener for Incoming<Io>
where
    Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    type Io = Io;
    type Addr = Peer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(next) => next,
            // the accept loop never ends while this is alive
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(Peer::plain(self.local))
    }
}

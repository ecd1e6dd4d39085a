//! A loopback port in front of a fake upstream whose reachability a test switches at run
//! time: [`Reach::Up`] forwards every connection to the fake, [`Reach::Down`] closes the
//! port (connection refused), [`Reach::Hang`] accepts and never answers. Every switch drops
//! the connections open at that moment, so pooled keep-alive connections see the new
//! behaviour too. The port stays the same across switches (`SO_REUSEADDR`), so a process
//! configured with its URL reaches it again when it is back up.

use std::{net::SocketAddr, sync::Arc};

use tokio::{
    io::AsyncReadExt,
    net::{TcpListener, TcpSocket, TcpStream},
    sync::watch,
    task::{JoinHandle, JoinSet},
};

/// What the port does with connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Forwards to the fake.
    Up,
    /// Closed: connection refused.
    Down,
    /// Accepts, reads and never answers.
    Hang,
}

/// The switchable port; its task stops on drop.
pub struct FaultPort {
    addr: SocketAddr,
    reach: Arc<watch::Sender<Reach>>,
    task: JoinHandle<()>,
}

impl FaultPort {
    /// A port on 127.0.0.1 forwarding to `backend` (up).
    pub async fn start(backend: SocketAddr) -> Self {
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind a fault port");
        let addr = listener.local_addr().expect("fault port addr");
        let (tx, rx) = watch::channel(Reach::Up);
        let task = tokio::spawn(run(listener, addr, backend, rx));
        Self {
            addr,
            reach: Arc::new(tx),
            task,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Switches the port (drops the connections open now).
    pub fn set(&self, reach: Reach) {
        self.reach.send_replace(reach);
    }
}

impl Drop for FaultPort {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Serves the current reach until it changes, then starts over with the new one.
async fn run(
    first: TcpListener,
    addr: SocketAddr,
    backend: SocketAddr,
    mut rx: watch::Receiver<Reach>,
) {
    let mut listener = Some(first);
    loop {
        let reach = *rx.borrow_and_update();
        let mut conns = JoinSet::new();
        if reach == Reach::Down {
            listener = None;
        } else if listener.is_none() {
            listener = bind(addr).ok();
        }
        loop {
            let accepted = async {
                match &listener {
                    Some(l) => l.accept().await.ok(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    break;
                }
                Some((conn, _)) = accepted => {
                    conns.spawn(serve(conn, reach, backend));
                }
            }
        }
        conns.abort_all();
    }
}

async fn serve(mut conn: TcpStream, reach: Reach, backend: SocketAddr) {
    if reach == Reach::Up {
        if let Ok(mut upstream) = TcpStream::connect(backend).await {
            let _ = tokio::io::copy_bidirectional(&mut conn, &mut upstream).await;
        }
        return;
    }
    let mut sink = [0u8; 4096];
    // never answers; returns when the client gives up
    while conn.read(&mut sink).await.is_ok_and(|n| n > 0) {}
}

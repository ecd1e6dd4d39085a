//! The runtime: wires adapters to the core. (Being assembled.)
use std::net::SocketAddr;

use crate::config::Config;

/// Errors that stop the scaler.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// Binding a listen address failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// Runs the scaler until SIGINT/SIGTERM.
pub async fn serve(config: Config, grpc: Option<SocketAddr>, http: Option<SocketAddr>) -> Result<(), RuntimeError> {
    let _ = (config, grpc, http);
    Ok(())
}

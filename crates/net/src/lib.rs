//! Network plumbing shared by the scaler's adapters (the Prometheus and Flink REST
//! clients, the gRPC server) and the runtime's admin listener, which may not use each
//! other:
//!
//! * [`stamp`]: values built from files and rebuilt when the files change;
//! * [`secret`]: bearer tokens and passwords from files (re-read on change) or the
//!   environment, never printed, compared in constant time;
//! * [`client`]: an HTTP client with TLS from files, rebuilt when they change, redirects
//!   off by default;
//! * [`server_tls`] and [`incoming`]: a TLS server configuration from files, rebuilt when
//!   they change, and the accepted connections with the peer's identity;
//! * [`limit`] and [`body`]: bounds on requests in flight and on response bodies.

pub mod body;
pub mod client;
pub mod error;
pub mod incoming;
pub mod limit;
pub mod secret;
pub mod server_tls;
pub mod stamp;

pub use body::{read_capped, BodyError};
pub use client::{ClientSpec, HttpClient};
pub use error::{CredentialError, FilesError, SecretError};
pub use incoming::{Incoming, Peer};
pub use limit::{Limiter, Saturated};
pub use secret::{scrub, Auth, Credentials, FileSecret, PasswordSource, Secret};
pub use server_tls::ServerTlsFiles;
pub use stamp::{FileStamp, Watched};

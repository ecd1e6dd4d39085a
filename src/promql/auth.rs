//! Credentials for requests: a bearer token or a basic-auth password from a file that is
//! re-read whenever it changes (rotated Kubernetes tokens keep working), or a password
//! from an environment variable. The implementation is shared with the Flink REST client
//! (`fks_net::secret`); this module names what the Prometheus client uses.
//!
//! `Debug` never prints a secret.

pub use fks_net::secret::{scrub, Credentials, FileSecret, Secret};

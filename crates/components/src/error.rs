//! Errors of the components: every variant names the component and what was being done,
//! so a failed set-up says which piece broke.

use std::time::Duration;

/// Components result.
pub type Result<T> = std::result::Result<T, ComponentError>;

/// What went wrong while starting or talking to a real component.
#[derive(Debug, thiserror::Error)]
pub enum ComponentError {
    /// A component is not installed (and how to install it).
    #[error("{what} is not available: {hint}")]
    Missing {
        /// The component.
        what: String,
        /// How to get it.
        hint: String,
    },
    /// File or process I/O.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Waited too long; `detail` carries log tails.
    #[error("timed out after {timeout:?} waiting for {what}{detail}")]
    Timeout {
        /// What did not happen.
        what: String,
        /// How long we waited.
        timeout: Duration,
        /// Extra context (log tails), starting with a newline when present.
        detail: String,
    },
    /// An HTTP call to Flink, Prometheus or the scaler failed.
    #[error("{what}: {detail}")]
    Http {
        /// The call.
        what: String,
        /// Status or transport error.
        detail: String,
    },
    /// A component started but did not behave (exited early, registered nothing).
    #[error("{0}")]
    Failed(String),
}

impl ComponentError {
    /// An I/O error with what was being done.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }

    /// An HTTP error with the call.
    pub fn http(what: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        Self::Http {
            what: what.into(),
            detail: detail.to_string(),
        }
    }
}

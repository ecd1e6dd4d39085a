//! Errors of the lab (the local loop on real components). Every variant names the
//! component and what was being done, so a failed demo says which piece broke.

use fks_components::ComponentError;

/// Lab result.
pub type Result<T> = std::result::Result<T, LabError>;

/// What went wrong while running the loop.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A real component (Flink, Prometheus, the scaler process, a file) failed.
    #[error(transparent)]
    Component(#[from] ComponentError),
    /// A gRPC call to the scaler failed (transport level; rpc errors are recorded).
    #[error("gRPC {what}: {detail}")]
    Grpc {
        /// The call.
        what: String,
        /// The cause.
        detail: String,
    },
    /// The scenario could not go on (a step that must happen did not).
    #[error("scenario: {0}")]
    Scenario(String),
}

impl LabError {
    /// An I/O error with what was being done.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        ComponentError::io(what, source).into()
    }

    /// An HTTP error with the call.
    pub fn http(what: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        ComponentError::http(what, detail).into()
    }

    /// True when a component is not installed (tests skip outside CI then).
    pub fn is_missing_component(&self) -> bool {
        matches!(self, LabError::Component(ComponentError::Missing { .. }))
    }
}

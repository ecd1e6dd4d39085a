//! Prometheus adapter (placeholder settings until the client lands).
use serde::Deserialize;

/// Settings of one Prometheus server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServerSettings {
    /// Base URL.
    pub url: url::Url,
    /// Timeout.
    pub timeout: Option<String>,
}

/// A validation error with its field path.
pub struct SettingsError {
    /// Field path.
    pub path: String,
    /// Problem.
    pub message: String,
}

impl ServerSettings {
    /// Validates.
    pub fn validate(&self, path: &str) -> Result<(), SettingsError> {
        if !matches!(self.url.scheme(), "http" | "https") {
            return Err(SettingsError { path: format!("{path}.url"), message: "must be http or https".into() });
        }
        Ok(())
    }
}

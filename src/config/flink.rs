//! Validation of the `flink` section (the REST client: allow-list of JobManager URLs,
//! TLS, credentials, headers, the bound on requests in flight) and of the Kubernetes
//! namespaces the scaler serves.

use super::{
    allowed_urls::AllowedUrls,
    prometheus::{check_headers, FieldError},
    ConfigError, FlinkConfig, KubernetesConfig,
};

/// Upper bound accepted for `flink.maxConcurrentRequests`.
pub const MAX_CONCURRENT_REQUESTS: usize = 1024;

impl FlinkConfig {
    /// Checks the client settings; `kubernetes` selects the default allow-list.
    pub(super) fn validate(&self, kubernetes: bool) -> Result<(), ConfigError> {
        let err = FieldError("flink");
        self.allowed_urls(kubernetes)?;
        if let Some(auth) = &self.auth {
            auth.check(err)?;
        }
        if let Some(tls) = &self.tls {
            if tls.cert_file.is_some() != tls.key_file.is_some() {
                return Err(err.at("tls", "certFile and keyFile must be set together".into()));
            }
        }
        check_headers(&self.headers, err)?;
        if !(1..=MAX_CONCURRENT_REQUESTS).contains(&self.max_concurrent_requests) {
            return Err(err.at(
                "maxConcurrentRequests",
                format!("must be in [1, {MAX_CONCURRENT_REQUESTS}]"),
            ));
        }
        Ok(())
    }

    /// The allow-list in force (`flink.allowedUrls`, or the default for `kubernetes`).
    pub fn allowed_urls(&self, kubernetes: bool) -> Result<AllowedUrls, ConfigError> {
        AllowedUrls::parse(self.allowed_urls.as_deref(), kubernetes).map_err(|(i, message)| {
            ConfigError::invalid(format!("flink.allowedUrls[{i}]"), message)
        })
    }
}

impl KubernetesConfig {
    /// `namespaces`: a non-empty list of namespace names without duplicates;
    /// `staleStateGrace` above zero.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.stale_state_grace.is_some_and(|g| g.is_zero()) {
            return Err(ConfigError::invalid(
                "kubernetes.staleStateGrace",
                "must be above 0 (a ScaledObject re-created at once would lose its state)",
            ));
        }
        let Some(namespaces) = &self.namespaces else {
            return Ok(());
        };
        if namespaces.is_empty() {
            return Err(ConfigError::invalid(
                "kubernetes.namespaces",
                "must not be empty (remove the key to watch every namespace)",
            ));
        }
        for (i, ns) in namespaces.iter().enumerate() {
            if !crate::core::text::is_dns_label(ns) {
                return Err(ConfigError::invalid(
                    format!("kubernetes.namespaces[{i}]"),
                    format!("'{ns}' is not a namespace name"),
                ));
            }
            if namespaces[..i].contains(ns) {
                return Err(ConfigError::invalid(
                    format!("kubernetes.namespaces[{i}]"),
                    format!("'{ns}' is listed twice"),
                ));
            }
        }
        Ok(())
    }

    /// True when ScaledObjects of `namespace` are served.
    pub fn watches(&self, namespace: &str) -> bool {
        self.namespaces
            .as_ref()
            .is_none_or(|n| n.iter().any(|x| x == namespace))
    }
}

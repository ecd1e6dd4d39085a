//! The [`Metrics`] struct: every metric family the scaler exports, registered in one
//! place on a private registry prefixed `flink_keda_scaler_`, and the text encoder.
//!
//! Recording helpers live next to their subject: [`super::scaling`] (rescales, plans,
//! decisions, signals) and [`super::clients`] (Prometheus, Flink REST, gRPC, leader).

use ::prometheus::{HistogramVec, IntCounter, IntGauge, IntGaugeVec, Registry, TextEncoder};

use std::sync::atomic::{AtomicUsize, Ordering};

use super::{
    families::{register, rescale_duration, Builder, ClientFamilies},
    job_series::{JobSeries, FAMILIES},
};
use crate::core::ScaledObjectRef;

/// Registry prefix: every exported name starts with `flink_keda_scaler_`.
pub const PREFIX: &str = "flink_keda_scaler";

/// Label name for the Flink job. Not `job`: Prometheus attaches its own `job` target
/// label to every scraped series, and this name matches Flink's reporter label.
pub const JOB_LABEL: &str = "job_name";

/// Errors building or encoding the metrics.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// A metric could not be created or registered (duplicate name, bad label name).
    #[error("failed to register metric {name}: {source}")]
    Register {
        /// The metric name (without prefix).
        name: &'static str,
        /// The underlying error.
        #[source]
        source: ::prometheus::Error,
    },
}

/// Identifies a scaled job in the metrics: the ScaledObject and the Flink job name (from
/// the trigger metadata `jobName`), the labels `namespace`, `scaled_object`, `job`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct JobKey<'a> {
    /// The ScaledObject.
    pub scaled_object: &'a ScaledObjectRef,
    /// Flink job name.
    pub job: &'a str,
}

impl<'a> JobKey<'a> {
    /// The ScaledObject's namespace (every per-job series carries it, so two
    /// ScaledObjects with the same `jobName` in two namespaces never share a series).
    pub fn namespace(&self) -> &'a str {
        &self.scaled_object.namespace
    }

    /// `[namespace, scaled_object, job]` label values.
    pub fn labels(&self) -> [&'a str; 3] {
        [
            &self.scaled_object.namespace,
            &self.scaled_object.name,
            self.job,
        ]
    }
}

/// How an in-place rescale ended (bounded label `outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RescaleOutcome {
    /// Flink reports the target parallelism.
    Succeeded,
    /// The PUT was rejected or the job failed while rescaling.
    Failed,
    /// The target parallelism was not reached in time.
    TimedOut,
    /// Abandoned (superseded by a newer decision, leadership lost, job gone).
    Aborted,
}

impl RescaleOutcome {
    /// Every outcome, in a fixed order.
    pub const ALL: [RescaleOutcome; 4] = [
        RescaleOutcome::Succeeded,
        RescaleOutcome::Failed,
        RescaleOutcome::TimedOut,
        RescaleOutcome::Aborted,
    ];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RescaleOutcome::Succeeded => "succeeded",
            RescaleOutcome::Failed => "failed",
            RescaleOutcome::TimedOut => "timed_out",
            RescaleOutcome::Aborted => "aborted",
        }
    }
}

/// The signal values one decision used for one vertex. `None` removes the series (no
/// stale values when a signal disappears).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SignalValues {
    /// Pending records (FLIP-33 backlog), sources only.
    pub pending_records: Option<f64>,
    /// Busy ratio 0..=1 (`busyTimeMsPerSecond / 1000`).
    pub busy_ratio: Option<f64>,
    /// True processing rate in records per second (rate / busy ratio).
    pub true_processing_rate: Option<f64>,
    /// Observed input rate in records per second.
    pub input_rate: Option<f64>,
}

/// Every metric family of the scaler, on its own registry. Share it as `Arc<Metrics>`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub(super) jobs: JobSeries,
    pub(super) rescale_duration: HistogramVec,
    pub(super) clients: ClientFamilies,
    pub(super) hub: super::hub::HubFamilies,
    pub(super) leader: IntGauge,
    pub(super) state_collected: IntCounter,
    pub(super) build_info: IntGaugeVec,
    /// Length of the last `/metrics` text (the next buffer's capacity).
    encoded_len: AtomicUsize,
}

impl Metrics {
    /// Builds every family on a fresh registry, with `build_info` for this crate's
    /// version and the `FKS_GIT_SHA` compile-time environment variable (`unknown` if
    /// unset; the Dockerfile sets it from its `GIT_SHA` build argument).
    pub fn new() -> Result<Self, MetricsError> {
        Self::with_build_info(
            env!("CARGO_PKG_VERSION"),
            option_env!("FKS_GIT_SHA").unwrap_or("unknown"),
        )
    }

    /// Like [`Metrics::new`] with an explicit version and git sha for `build_info`.
    pub fn with_build_info(version: &str, git_sha: &str) -> Result<Self, MetricsError> {
        let registry = Registry::new_custom(Some(PREFIX.into()), None).map_err(|source| {
            MetricsError::Register {
                name: "registry",
                source,
            }
        })?;
        let b = Builder(&registry);
        let m = Metrics {
            jobs: JobSeries::default(),
            rescale_duration: rescale_duration(&b)?,
            clients: ClientFamilies::register(&b)?,
            hub: super::hub::HubFamilies::register(&b)?,
            leader: register(
                &registry,
                "is_leader",
                IntGauge::new(
                    "is_leader",
                    "1 when this replica holds the leader Lease (applies rescales).",
                ),
            )?,
            state_collected: register(
                &registry,
                "state_configmaps_collected_total",
                IntCounter::new(
                    "state_configmaps_collected_total",
                    "State ConfigMaps the leader deleted because their ScaledObject was gone.",
                ),
            )?,
            build_info: b.int_gauge(
                "build_info",
                "Always 1; labels carry the version and git sha.",
                &["version", "git_sha"],
            )?,
            registry,
            encoded_len: AtomicUsize::new(0),
        };
        m.build_info.with_label_values(&[version, git_sha]).set(1);
        Ok(m)
    }

    /// The registry (for tests or to register extra collectors).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Every family in the Prometheus text exposition format (version 0.0.4): the
    /// registry's families, then the per-job series ([`JobSeries`]) written straight
    /// from their values, into one buffer sized from the last scrape (at 1,000 jobs the
    /// text is megabytes: no growth by doubling, no second copy).
    pub fn encode(&self) -> String {
        let hint = self.encoded_len.load(Ordering::Relaxed);
        let mut buf = String::with_capacity(hint + hint / 16);
        // Encoding into a String cannot fail for I/O reasons; the only error is a
        // malformed family, which the registry rejects at registration.
        if let Err(error) = TextEncoder::new().encode_utf8(&self.registry.gather(), &mut buf) {
            tracing::warn!(%error, "Failed to encode metrics.");
        }
        self.jobs.encode(&mut buf);
        self.encoded_len.store(buf.len(), Ordering::Relaxed);
        buf
    }

    /// Part `part` of the `/metrics` text (`None` past the last): the registry's
    /// families, then each per-job family on its own, each part written when asked
    /// for. Concatenated, the parts are [`Metrics::encode`].
    pub fn encode_part(&self, part: usize) -> Option<String> {
        if part == 0 {
            let mut buf = String::new();
            if let Err(error) = TextEncoder::new().encode_utf8(&self.registry.gather(), &mut buf) {
                tracing::warn!(%error, "Failed to encode metrics.");
            }
            return Some(buf);
        }
        let family = part - 1;
        if family >= FAMILIES {
            return None;
        }
        let mut buf = String::new();
        self.jobs.encode_family(family, &mut buf);
        Some(buf)
    }

    /// The content type of [`Metrics::encode`].
    pub fn content_type() -> &'static str {
        ::prometheus::TEXT_FORMAT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_registers_build_info_with_prefix() {
        let m = Metrics::with_build_info("1.2.3", "abc").unwrap();
        let text = m.encode();
        assert!(
            text.contains(r#"flink_keda_scaler_build_info{git_sha="abc",version="1.2.3"} 1"#),
            "{text}"
        );
        assert!(text.contains("flink_keda_scaler_is_leader 0"), "{text}");
    }

    #[test]
    fn two_instances_do_not_share_state() {
        let a = Metrics::new().unwrap();
        let b = Metrics::new().unwrap();
        a.set_leader(true);
        assert_eq!(a.leader.get(), 1);
        assert_eq!(b.leader.get(), 0);
    }

    #[test]
    fn outcome_labels_are_distinct() {
        let mut names: Vec<_> = RescaleOutcome::ALL.iter().map(|o| o.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), RescaleOutcome::ALL.len());
    }
}

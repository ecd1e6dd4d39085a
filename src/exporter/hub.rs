//! Metrics of the runtime's signal hub: the Prometheus queries it sends (by kind), the
//! queries of its last full round (queries per tick) and the scrape interval it uses per
//! (server, matchers).

use ::prometheus::{GaugeVec, IntCounterVec, IntGaugeVec};

use super::{
    families::Builder,
    metrics::{Metrics, MetricsError},
};

/// Longest `matchers` label value (longer ones are cut; they come from the config).
const MATCHERS_LABEL_LEN: usize = 120;

/// The hub's families.
#[derive(Debug)]
pub(super) struct HubFamilies {
    queries: IntCounterVec,
    round_queries: IntGaugeVec,
    scrape_interval: GaugeVec,
}

impl HubFamilies {
    pub(super) fn register(b: &Builder<'_>) -> Result<Self, MetricsError> {
        Ok(Self {
            queries: b.counter(
                "prometheus_queries_total",
                "Prometheus queries sent, by server and kind (batch: a full round's query for every job of a batch; catch_up: a round for jobs new to their batch; job: a query for one job (per-job template, or a job its batch could not answer in time); learn: the scrape-interval probe).",
                &["server", "kind"],
            )?,
            round_queries: b.int_gauge(
                "signal_round_queries",
                "Prometheus queries of the last full round of the signal hub (queries per evaluation interval for every job of the server), by server.",
                &["server"],
            )?,
            scrape_interval: b.gauge(
                "scrape_interval_seconds",
                "Scrape interval of the Flink series the query windows are derived from (learned or configured), by server and matchers.",
                &["server", "matchers"],
            )?,
        })
    }
}

impl Metrics {
    /// Counts `n` Prometheus queries of `kind` (`batch`, `catch_up`, `job`, `learn`).
    pub fn count_prometheus_queries(&self, server: &str, kind: &'static str, n: u64) {
        self.hub
            .queries
            .with_label_values(&[server, kind])
            .inc_by(n);
    }

    /// Sets the queries of the last full round for `server`.
    pub fn set_round_queries(&self, server: &str, n: u64) {
        self.hub
            .round_queries
            .with_label_values(&[server])
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Sets the scrape interval used for (`server`, `matchers`).
    pub fn set_scrape_interval(&self, server: &str, matchers: &str, secs: f64) {
        let matchers: String = matchers.chars().take(MATCHERS_LABEL_LEN).collect();
        self.hub
            .scrape_interval
            .with_label_values(&[server, &matchers])
            .set(secs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The families are exported with the prefix and their labels.
    #[test]
    fn hub_metrics_are_exported() {
        let m = Metrics::new().expect("metrics");
        m.count_prometheus_queries("default", "batch", 15);
        m.set_round_queries("default", 15);
        m.set_scrape_interval("default", "", 15.0);
        let text = m.encode();
        for want in [
            r#"flink_keda_scaler_prometheus_queries_total{kind="batch",server="default"} 15"#,
            r#"flink_keda_scaler_signal_round_queries{server="default"} 15"#,
            r#"flink_keda_scaler_scrape_interval_seconds{matchers="",server="default"} 15"#,
        ] {
            assert!(text.contains(want), "{want}\n{text}");
        }
    }
}

//! `Stack`: the real-component set-up the end-to-end suites share — a job's load written
//! as Flink's PrometheusReporter would expose it ([`SyntheticExporter`]) → a real
//! Prometheus scraping it every second → the first scrapes seen → a fake Flink JobManager
//! serving the same job ([`FakeFlink`]). The scaler (process or library) comes on top.

use super::{
    fake_flink::FakeFlink,
    prometheus::{PrometheusHarness, SyntheticExporter, SyntheticJob, FIRST_SCRAPE_WAIT},
    scaler::Load,
};

/// A job under load: its series in Prometheus, its REST API on a fake JobManager.
pub struct Stack {
    /// The job (vertices, TaskManagers, ids).
    pub job: SyntheticJob,
    /// Its metrics endpoint (change values for load steps).
    pub exporter: SyntheticExporter,
    /// The Prometheus scraping it.
    pub prom: PrometheusHarness,
    /// Its JobManager.
    pub flink: FakeFlink,
}

impl Stack {
    /// `job` under `load`, scraped by Prometheus until its busy time is queryable, on a
    /// fake Flink that accepts resource-requirements PUTs or refuses them. `None` (after
    /// SKIPPED) when Prometheus is not installed outside CI.
    pub async fn start(job: SyntheticJob, load: &Load, accept_puts: bool) -> Option<Self> {
        let (exporter, prom) = scraped(|e| load.export(&job, e)).await?;
        prom.wait_for_job(&job.job_id).await;
        let flink = FakeFlink::start(&job, accept_puts).await;
        Some(Self {
            job,
            exporter,
            prom,
            flink,
        })
    }
}

/// The Prometheus half of a [`Stack`]: an exporter with the series `export` sets, a real
/// Prometheus scraping it, and two scrapes seen (`rate()`/`deriv()` need two samples).
pub async fn scraped(
    export: impl FnOnce(&SyntheticExporter),
) -> Option<(SyntheticExporter, PrometheusHarness)> {
    let exporter = SyntheticExporter::new();
    export(&exporter);
    let prom = PrometheusHarness::start(&[exporter.target()]).await?;
    prom.wait_up(1, FIRST_SCRAPE_WAIT).await;
    exporter.wait_scrapes(2, FIRST_SCRAPE_WAIT).await;
    Some((exporter, prom))
}

//! Reading the JobManager's set-up over REST: `GET /overview` (the version),
//! `GET /jobmanager/config` (the keys set) and, on Flink 2.3, `GET
//! /jobs/:id/rescales/config` (the effective adaptive-scheduler timings, reactive mode
//! and the rescale history size), turned into a [`FlinkSetup`]. The runtime reads it once
//! per job (and JobManager) and keeps it until the job id changes.

use super::{
    client::FlinkClient,
    error::{DecodeError, FlinkError},
    jm_config::{ConfigEntry, FlinkSetup, JobManagerConfig, RescalesConfig},
};
use crate::core::JobId;

impl FlinkClient {
    /// `GET /jobmanager/config`: the keys set on the JobManager, verbatim.
    pub async fn jobmanager_config(&self) -> Result<JobManagerConfig, FlinkError> {
        let entries: Vec<ConfigEntry> = self.get("jobmanager/config", None).await?;
        Ok(JobManagerConfig::from_entries(entries))
    }

    /// `GET /jobs/:id/rescales/config` (Flink 2.3+): the effective rescale settings.
    /// `None` when the path does not exist (1.x answers 404 on every `/rescales/...` path).
    pub async fn rescales_config(
        &self,
        job_id: &JobId,
    ) -> Result<Option<RescalesConfig>, FlinkError> {
        // no job id for the status mapping: a 404 here is "no such path", not "job gone"
        let path = format!("jobs/{job_id}/rescales/config");
        match self.get::<RescalesConfig>(&path, None).await {
            Ok(c) => Ok(Some(c)),
            Err(FlinkError::Http { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Reads the set-up of the cluster that runs `job_id`; `scheduler_type` is the job's
/// `schedulerType` from `/jobs/:id` (reported by 2.x only).
pub async fn read_setup(
    client: &FlinkClient,
    job_id: &JobId,
    scheduler_type: Option<&str>,
) -> Result<FlinkSetup, FlinkError> {
    let version = client.overview().await?.flink_version;
    let config = client.jobmanager_config().await?;
    let setup = FlinkSetup::from_config(&config, &version, scheduler_type).map_err(|e| {
        FlinkError::Decode {
            what: "GET /jobmanager/config".into(),
            source: DecodeError::Config(e),
        }
    })?;
    if setup.line != Some(super::jm_config::FlinkLine::V2) {
        return Ok(setup);
    }
    Ok(match client.rescales_config(job_id).await? {
        Some(effective) => setup.with_rescales_config(&effective),
        None => setup,
    })
}

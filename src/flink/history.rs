//! Flink 2.3's rescale history (`GET /jobs/:id/rescales/history`, on when
//! `web.adaptive-scheduler.rescale-history.size` > 0; 1.x answers 404): a JSON array of
//! records, newest first, each with its `triggerCause` (`INITIAL_SCHEDULE`,
//! `UPDATE_REQUIREMENT`, `NEW_RESOURCE_AVAILABLE`, `RECOVERABLE_FAILOVER`) and
//! `startTimestampInMillis`. Mapped to the core's [`HistoryRecord`], which the failover
//! watch uses to tell the scaler's own rescales from failovers exactly.

use serde::Deserialize;

use super::{client::FlinkClient, error::FlinkError};
use crate::core::{HistoryRecord, JobId, RescaleTrigger};

/// One record as Flink 2.3 serves it (the fields the scaler reads).
#[derive(Debug, Clone, Deserialize)]
pub struct RescaleRecordJson {
    /// `startTimestampInMillis`.
    #[serde(rename = "startTimestampInMillis")]
    pub start_ms: i64,
    /// `triggerCause` (unknown values map to [`RescaleTrigger::Other`]).
    #[serde(rename = "triggerCause")]
    pub trigger: RescaleTrigger,
    /// `resourceRequirementsUuid`.
    #[serde(rename = "resourceRequirementsUuid", default)]
    pub requirements_uuid: Option<String>,
    /// `terminalState` (`COMPLETED`, `FAILED`, `IGNORED`; null while in progress).
    #[serde(rename = "terminalState", default)]
    pub terminal_state: Option<String>,
}

impl FlinkClient {
    /// `GET /jobs/:id/rescales/history`: the records, newest first. `Ok(None)` when the
    /// path does not exist (Flink 1.x).
    pub async fn rescale_history(
        &self,
        job_id: &JobId,
    ) -> Result<Option<Vec<RescaleRecordJson>>, FlinkError> {
        let path = format!("jobs/{job_id}/rescales/history");
        match self.get::<Vec<RescaleRecordJson>>(&path, None).await {
            Ok(r) => Ok(Some(r)),
            Err(FlinkError::Http { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The core's view of the records.
pub fn history_records(records: &[RescaleRecordJson]) -> Vec<HistoryRecord> {
    records
        .iter()
        .map(|r| HistoryRecord {
            start_ms: r.start_ms,
            trigger: r.trigger,
        })
        .collect()
}

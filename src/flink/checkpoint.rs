//! A checkpoint on demand: `POST /jobs/:id/checkpoints` (`{"checkpointType": ...}`, 202
//! with a `request-id`, Flink 1.19+) and `GET /jobs/:id/checkpoints/:request-id` until the
//! operation completes. Reactive mode takes a full one right before a TaskManager goes
//! away, so the failover that follows restores from a checkpoint a fraction of a second
//! old: measured on 2.3.0 and 1.20.5, the checkpoint completed 0.05–0.6 s after the
//! trigger and the reprocessed records dropped from 2k–15k to 87–656. A Flink 2.x rescale
//! waits for the next completed checkpoint: the scaler triggers a `CONFIGURED` one as
//! soon as the job holds the new slots ([`crate::core::rescale::nudge`]).

use std::time::{Duration, Instant};

use reqwest::Method;
use serde::Deserialize;

use super::{client::FlinkClient, error::FlinkError};
use crate::core::JobId;

/// Where a triggered checkpoint stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointProgress {
    /// Still running.
    InProgress,
    /// Completed, with its id.
    Completed {
        /// The checkpoint id.
        checkpoint_id: u64,
    },
    /// Flink reports a failure.
    Failed {
        /// Flink's failure cause, shortened.
        message: String,
    },
}

/// The `checkpointType` of a triggered checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointKind {
    /// `FULL`: self-contained (the reactive scale-down's restore point).
    Full,
    /// `CONFIGURED`: what the job's periodic checkpoints are (incremental when they are):
    /// the checkpoint a Flink 2.x rescale waits for, no heavier than the periodic one.
    Configured,
}

impl CheckpointKind {
    /// The REST value.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckpointKind::Full => "FULL",
            CheckpointKind::Configured => "CONFIGURED",
        }
    }
}

#[derive(Deserialize)]
struct Triggered {
    #[serde(rename = "request-id")]
    request_id: String,
}

#[derive(Deserialize)]
struct Status {
    status: StatusId,
    #[serde(default)]
    operation: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct StatusId {
    id: String,
}

impl FlinkClient {
    /// `POST /jobs/:id/checkpoints` for a checkpoint of `kind`; the trigger's request id.
    pub async fn trigger_checkpoint(
        &self,
        job_id: &JobId,
        kind: CheckpointKind,
    ) -> Result<String, FlinkError> {
        let path = format!("jobs/{job_id}/checkpoints");
        let body = serde_json::json!({"checkpointType": kind.as_str()});
        let text = self
            .send(Method::POST, &path, Some(job_id.as_str()), Some(&body))
            .await?;
        let t: Triggered = decode(&format!("POST /{path}"), &text)?;
        Ok(t.request_id)
    }

    /// `GET /jobs/:id/checkpoints/:request-id`: where the triggered checkpoint stands.
    pub async fn checkpoint_progress(
        &self,
        job_id: &JobId,
        request_id: &str,
    ) -> Result<CheckpointProgress, FlinkError> {
        let path = format!("jobs/{job_id}/checkpoints/{request_id}");
        let s: Status = self.get(&path, Some(job_id.as_str())).await?;
        let op = s.operation.unwrap_or_default();
        Ok(match s.status.id.as_str() {
            "COMPLETED" => match op.get("checkpointId").and_then(serde_json::Value::as_u64) {
                Some(checkpoint_id) => CheckpointProgress::Completed { checkpoint_id },
                None => CheckpointProgress::Failed {
                    message: failure(&op),
                },
            },
            _ => CheckpointProgress::InProgress,
        })
    }
}

fn failure(op: &serde_json::Value) -> String {
    let cause = op
        .pointer("/failure-cause/stack-trace")
        .or_else(|| op.get("failure-cause"))
        .map(|c| c.as_str().map_or_else(|| c.to_string(), str::to_string))
        .unwrap_or_else(|| "no checkpoint id and no failure cause".into());
    cause
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect()
}

use super::response::decode;

/// Triggers a full checkpoint and waits (polling every `poll`) until it completes; the
/// checkpoint id. A failure or `timeout` is an error naming the job.
pub async fn checkpoint_now(
    client: &FlinkClient,
    job_id: &JobId,
    timeout: Duration,
    poll: Duration,
) -> Result<u64, FlinkError> {
    let started = Instant::now();
    let request = client
        .trigger_checkpoint(job_id, CheckpointKind::Full)
        .await?;
    loop {
        match client.checkpoint_progress(job_id, &request).await? {
            CheckpointProgress::Completed { checkpoint_id } => return Ok(checkpoint_id),
            CheckpointProgress::Failed { message } => {
                return Err(FlinkError::InvalidTarget {
                    job_id: job_id.to_string(),
                    message: format!("checkpoint {request} failed: {message}"),
                })
            }
            CheckpointProgress::InProgress if started.elapsed() >= timeout => {
                return Err(FlinkError::Timeout {
                    what: format!("checkpoint {request} of job {job_id}"),
                    after: timeout,
                })
            }
            CheckpointProgress::InProgress => tokio::time::sleep(poll).await,
        }
    }
}

//! `GET /debug/jobs` (the last decision of every job with its inputs and reasons, as
//! JSON) and the body of `POST /admin/rescale` (a manual in-place rescale through the
//! same code path as the `rescale` command); both are served on the admin listener.

use std::{collections::BTreeMap, sync::Arc};

use axum::{extract::State, routing::get, Json, Router};
use serde::Deserialize;

use super::workers::Workers;

/// `POST /admin/rescale` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RescaleRequest {
    /// JobManager REST URL.
    pub flink_rest_url: String,
    /// Namespace whose `flink.allowedUrls` rules apply (`{namespace}` in a rule).
    pub namespace: Option<String>,
    /// Job name or id (default: the only running job).
    pub job: Option<String>,
    /// Every vertex to this parallelism.
    pub parallelism: Option<u32>,
    /// Per-vertex parallelism by vertex id.
    #[serde(default)]
    pub vertices: BTreeMap<String, u32>,
    /// Compute, do not PUT.
    #[serde(default)]
    pub dry_run: bool,
}

/// `GET /debug/jobs`, mounted on the admin listener (see [`super::admin`]).
pub fn debug_routes(workers: Arc<Workers>) -> Router {
    Router::new()
        .route("/debug/jobs", get(debug_jobs))
        .with_state(workers)
}

#[tracing::instrument(name = "http", skip_all, fields(route = "/debug/jobs"))]
async fn debug_jobs(State(workers): State<Arc<Workers>>) -> Json<serde_json::Value> {
    let reports: Vec<serde_json::Value> = workers
        .reports()
        .iter()
        .map(|r| serde_json::to_value(r.as_ref()).unwrap_or_default())
        .collect();
    Json(serde_json::json!({ "jobs": reports }))
}

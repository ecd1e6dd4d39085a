//! `GET /debug/jobs` (the last decision of every job with its inputs and reasons, as
//! JSON) and the body of `POST /admin/rescale` (a manual in-place rescale through the
//! same code path as the `rescale` command); both are served on the admin listener.

use std::{collections::BTreeMap, sync::Arc};

use axum::{
    extract::{rejection::QueryRejection, Query, State},
    http::StatusCode,
    routing::get,
    Json, Router,
};
use serde::Deserialize;

use super::{
    debug_jobs::{self, JobsQuery},
    workers::Workers,
};

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

/// One page of job reports (filters and cursor: [`super::debug_jobs`]); 400 naming the
/// bad query parameter.
#[tracing::instrument(name = "http", skip_all, fields(route = "/debug/jobs"))]
async fn debug_jobs(
    State(workers): State<Arc<Workers>>,
    query: Result<Query<JobsQuery>, QueryRejection>,
) -> (StatusCode, Json<serde_json::Value>) {
    let page = query
        .map_err(|e| e.body_text())
        .and_then(|Query(q)| debug_jobs::page(&workers.reports(), &q));
    match page {
        Ok(body) => (StatusCode::OK, Json(body)),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({ "error": e })),
        ),
    }
}

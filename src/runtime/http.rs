//! Extra HTTP routes mounted on the exporter's server: `GET /debug/jobs` (the last
//! decision of every job with its inputs and reasons, as JSON) and `POST /admin/rescale`
//! (a manual in-place rescale through the same code path as the `rescale` command).

use std::{collections::BTreeMap, sync::Arc};

use axum::{
    extract::{rejection::QueryRejection, Query, State},
    http::StatusCode,
    routing::{get, post},
    Json, Router,
};
use serde::Deserialize;

use super::{
    debug_jobs::{self, JobsQuery},
    rescale,
    workers::Workers,
};

/// `POST /admin/rescale` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RescaleRequest {
    /// JobManager REST URL.
    pub flink_rest_url: String,
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

/// The routes.
pub fn routes(
    workers: Arc<Workers>,
    flink: crate::flink::ClientOptions,
    timeout: std::time::Duration,
) -> Router {
    Router::new()
        .route("/debug/jobs", get(debug_jobs))
        .with_state(workers)
        .merge(
            Router::new()
                .route("/admin/rescale", post(admin_rescale))
                .with_state(Arc::new((flink, timeout))),
        )
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

#[tracing::instrument(
    name = "http",
    skip_all,
    fields(
        route = "/admin/rescale",
        flink_rest_url = %req.flink_rest_url,
        job = req.job.as_deref().unwrap_or(""),
        dry_run = req.dry_run,
    )
)]
async fn admin_rescale(
    State(opts): State<Arc<(crate::flink::ClientOptions, std::time::Duration)>>,
    Json(req): Json<RescaleRequest>,
) -> (StatusCode, Json<serde_json::Value>) {
    let request = rescale::Request {
        flink_url: req.flink_rest_url,
        job: req.job,
        parallelism: req.parallelism,
        vertices: req.vertices,
        dry_run: req.dry_run,
        timeout: opts.1,
    };
    match rescale::run(&request, opts.0.clone()).await {
        Ok(report) => (
            StatusCode::OK,
            Json(serde_json::to_value(report).unwrap_or_default()),
        ),
        Err(e) => {
            tracing::warn!(status = e.status().as_u16(), error = %e, "manual rescale failed");
            (
                e.status(),
                Json(serde_json::json!({ "error": e.to_string() })),
            )
        }
    }
}

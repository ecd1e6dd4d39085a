//! The HTTP side of the fleet: one listener per JobManager serving Flink's REST API for
//! its jobs and, on `/metrics`, the PrometheusReporter series of the JobManager and its
//! TaskManagers; `/fleet/*` control routes (stats, rates) on every listener. Every REST
//! call is counted by JobManager and endpoint (`GET /jobs/:id`, ...); scrapes and control
//! calls are not REST calls.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::{Duration, Instant},
};

use axum::{
    extract::{Path, Query, State},
    http::{StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use serde_json::Value;

use super::{
    exposition::{self, JobView},
    ids::FleetIds,
    rest::{self, Job},
    sim::{JobSim, VERTICES},
};

/// ms since the epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Everything the listeners share.
pub(crate) struct Shared {
    pub(crate) ids: FleetIds,
    pub(crate) jobs: Vec<Mutex<JobSim>>,
    pub(crate) by_id: HashMap<String, usize>,
    pub(crate) rescale_delay: Duration,
    /// Per JobManager: `METHOD /endpoint` → calls.
    pub(crate) calls: Vec<Mutex<BTreeMap<String, u64>>>,
    pub(crate) scrapes: Vec<AtomicU64>,
    pub(crate) unavailable: Vec<AtomicBool>,
}

impl Shared {
    /// Job `j` advanced to now, cloned (locks are never held across a response).
    pub(crate) fn snapshot(&self, j: usize) -> JobSim {
        let mut sim = lock(&self.jobs[j]);
        sim.advance(Instant::now(), now_ms());
        sim.clone()
    }

    /// The live jobs of JobManager `jm`, advanced to now.
    fn jm_jobs(&self, jm: usize) -> Vec<(usize, JobSim)> {
        (jm..self.jobs.len())
            .step_by(self.ids.job_managers.max(1))
            .map(|j| (j, self.snapshot(j)))
            .filter(|(_, s)| !s.gone)
            .collect()
    }

    fn count(&self, jm: usize, endpoint: &str) {
        *lock(&self.calls[jm])
            .entry(endpoint.to_string())
            .or_default() += 1;
    }

    /// The index of a live job of `jm` with id `id`.
    fn job_of(&self, jm: usize, id: &str) -> Option<usize> {
        let j = *self.by_id.get(id)?;
        (self.ids.jm_of(j) == jm && !lock(&self.jobs[j]).gone).then_some(j)
    }
}

type St = State<(Arc<Shared>, usize)>;

/// The router of JobManager `jm`.
pub(crate) fn router(shared: Arc<Shared>, jm: usize) -> Router {
    Router::new()
        .route("/overview", get(overview))
        .route("/jobs/overview", get(jobs_overview))
        .route("/taskmanagers", get(task_managers))
        .route("/jobmanager/config", get(jobmanager_config))
        .route("/jobs/{id}", get(job_details))
        .route("/jobs/{id}/plan", get(job_plan))
        .route(
            "/jobs/{id}/resource-requirements",
            get(get_requirements).put(put_requirements),
        )
        .route("/jobs/{id}/checkpoints/config", get(checkpoints_config))
        .route("/jobs/{id}/checkpoints", get(checkpoints))
        .route("/jobs/{id}/exceptions", get(exceptions))
        .route("/jobs/{id}/metrics", get(job_metrics))
        .route("/metrics", get(scrape))
        .route("/fleet/stats", get(stats))
        .fallback(not_found)
        .with_state((shared, jm))
}

fn reply(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

/// Counts the call; `Err` with Flink's 503 when the JobManager is made unavailable.
fn enter(s: &Shared, jm: usize, endpoint: &str) -> Result<(), Box<Response>> {
    s.count(jm, endpoint);
    if s.unavailable[jm].load(Ordering::Relaxed) {
        return Err(Box::new(reply(
            StatusCode::SERVICE_UNAVAILABLE,
            rest::error("Service temporarily unavailable due to an ongoing leader election. Please refresh."),
        )));
    }
    Ok(())
}

/// Counts the call and finds the job; Flink's 404 when it is not there.
fn enter_job(s: &Shared, jm: usize, endpoint: &str, id: &str) -> Result<usize, Box<Response>> {
    enter(s, jm, endpoint)?;
    s.job_of(jm, id).ok_or_else(|| {
        Box::new(reply(
            StatusCode::NOT_FOUND,
            rest::error(&format!(
                "org.apache.flink.runtime.rest.NotFoundException: Job {id} not found"
            )),
        ))
    })
}

fn views(jobs: &[(usize, JobSim)]) -> Vec<Job<'_>> {
    jobs.iter()
        .map(|(index, sim)| Job { index: *index, sim })
        .collect()
}

async fn overview(State((s, jm)): St) -> Response {
    if let Err(r) = enter(&s, jm, "GET /overview") {
        return *r;
    }
    let jobs = s.jm_jobs(jm);
    reply(StatusCode::OK, rest::overview(&s.ids, &views(&jobs)))
}

async fn jobs_overview(State((s, jm)): St) -> Response {
    if let Err(r) = enter(&s, jm, "GET /jobs/overview") {
        return *r;
    }
    let jobs = s.jm_jobs(jm);
    reply(
        StatusCode::OK,
        rest::jobs_overview(&s.ids, &views(&jobs), now_ms()),
    )
}

async fn task_managers(State((s, jm)): St) -> Response {
    if let Err(r) = enter(&s, jm, "GET /taskmanagers") {
        return *r;
    }
    let jobs = s.jm_jobs(jm);
    reply(
        StatusCode::OK,
        rest::task_managers(&s.ids, &views(&jobs), now_ms()),
    )
}

async fn jobmanager_config(State((s, jm)): St) -> Response {
    if let Err(r) = enter(&s, jm, "GET /jobmanager/config") {
        return *r;
    }
    reply(StatusCode::OK, rest::jobmanager_config(&s.ids, jm))
}

/// Runs `f` on job `id` (advanced to now) after counting the call as `endpoint`.
fn on_job(
    s: &Shared,
    jm: usize,
    endpoint: &str,
    id: &str,
    f: impl FnOnce(usize, &JobSim) -> Value,
) -> Response {
    match enter_job(s, jm, endpoint, id) {
        Ok(j) => {
            let sim = s.snapshot(j);
            reply(StatusCode::OK, f(j, &sim))
        }
        Err(r) => *r,
    }
}

async fn job_details(State((s, jm)): St, Path(id): Path<String>) -> Response {
    on_job(&s, jm, "GET /jobs/:id", &id, |index, sim| {
        rest::job_details(&s.ids, &Job { index, sim }, now_ms())
    })
}

async fn job_plan(State((s, jm)): St, Path(id): Path<String>) -> Response {
    on_job(&s, jm, "GET /jobs/:id/plan", &id, |index, sim| {
        rest::job_plan(&s.ids, &Job { index, sim })
    })
}

async fn get_requirements(State((s, jm)): St, Path(id): Path<String>) -> Response {
    on_job(
        &s,
        jm,
        "GET /jobs/:id/resource-requirements",
        &id,
        |_, sim| rest::requirements(&s.ids, sim),
    )
}

async fn checkpoints_config(State((s, jm)): St, Path(id): Path<String>) -> Response {
    on_job(&s, jm, "GET /jobs/:id/checkpoints/config", &id, |_, _| {
        rest::checkpoints_config()
    })
}

async fn checkpoints(State((s, jm)): St, Path(id): Path<String>) -> Response {
    on_job(&s, jm, "GET /jobs/:id/checkpoints", &id, |_, sim| {
        rest::checkpoints(sim, now_ms())
    })
}

async fn exceptions(State((s, jm)): St, Path(id): Path<String>) -> Response {
    on_job(&s, jm, "GET /jobs/:id/exceptions", &id, |_, _| {
        rest::exceptions()
    })
}

async fn job_metrics(
    State((s, jm)): St,
    Path(id): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    on_job(&s, jm, "GET /jobs/:id/metrics", &id, |_, sim| {
        rest::job_metrics(sim, q.get("get").map(String::as_str), now_ms())
    })
}

/// The bounds of every vertex in a PUT body, or Flink's 400 message.
fn parse_bounds(ids: &FleetIds, body: &Value) -> Result<[(u32, u32); VERTICES], String> {
    let mut out = [(1, 1); VERTICES];
    for (v, o) in out.iter_mut().enumerate() {
        let vid = ids.vertex_id(v);
        let p = body.get(&vid).map(|b| &b["parallelism"]).ok_or_else(|| {
            format!("The request is incomplete, missing job vertex [{vid}] resource requirements.")
        })?;
        let bound = |k: &str| {
            p[k].as_i64()
                .ok_or_else(|| format!("{k} of [{vid}] is not a number"))
        };
        let (lower, upper) = (bound("lowerBound")?, bound("upperBound")?);
        if upper != -1 && (upper < 1 || (lower > 0 && upper < lower)) {
            return Err(format!(
                "The upper bound ({upper}) of job vertex [{vid}] must be positive and not below its lower bound ({lower})."
            ));
        }
        let upper = if upper == -1 { u32::MAX } else { upper as u32 };
        *o = (lower.max(1) as u32, upper);
    }
    Ok(out)
}

async fn put_requirements(
    State((s, jm)): St,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let j = match enter_job(&s, jm, "PUT /jobs/:id/resource-requirements", &id) {
        Ok(j) => j,
        Err(r) => return *r,
    };
    let parsed = serde_json::from_slice::<Value>(&body)
        .map_err(|e| {
            format!("Request did not match expected format JobResourceRequirementsBody: {e}")
        })
        .and_then(|v| parse_bounds(&s.ids, &v));
    match parsed {
        Ok(bounds) => {
            let mut sim = lock(&s.jobs[j]);
            let now = Instant::now();
            sim.advance(now, now_ms());
            sim.put_requirements(&bounds, now, s.rescale_delay);
            reply(StatusCode::OK, serde_json::json!({}))
        }
        Err(m) => reply(StatusCode::BAD_REQUEST, rest::error(&m)),
    }
}

async fn scrape(State((s, jm)): St) -> Response {
    s.scrapes[jm].fetch_add(1, Ordering::Relaxed);
    let body = render_jm(&s, jm);
    (
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
        .into_response()
}

/// The exposition text of JobManager `jm`.
pub(crate) fn render_jm(s: &Shared, jm: usize) -> String {
    let jobs = s.jm_jobs(jm);
    let now = now_ms();
    let views: Vec<JobView<'_>> = jobs
        .iter()
        .map(|(index, sim)| JobView {
            ids: &s.ids,
            index: *index,
            sim,
            now_ms: now,
        })
        .collect();
    let mut out = String::with_capacity(jobs.len() * 40_000 + 4096);
    exposition::render(&mut out, jm, &s.ids, &views);
    out
}

async fn stats(State((s, _)): St) -> Response {
    reply(StatusCode::OK, super::FleetStats::of(&s).to_json())
}

async fn not_found(State((s, jm)): St, uri: Uri) -> Response {
    let path = uri.path();
    if path.starts_with("/fleet/") {
        return reply(StatusCode::NOT_FOUND, rest::error("unknown control route"));
    }
    s.count(jm, "other");
    reply(
        StatusCode::NOT_FOUND,
        rest::error(&format!("Not found: {path}")),
    )
}

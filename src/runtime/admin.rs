//! The admin listener (`admin.listenAddress`, default `127.0.0.1:9091`), apart from
//! `/metrics`, `/healthz` and `/readyz`: `GET /debug/jobs` and `POST /admin/rescale`.
//! Callers authenticate with a bearer token from a file (re-read when it changes,
//! compared in constant time) or a client certificate (mTLS); off loopback one of the two
//! is required (checked by the config loader, so the process refuses to start without).
//! A manual rescale is taken only by the leader (a follower answers 503 "not the leader"),
//! at most `admin.maxRescalesPerMinute`, only towards an allowed JobManager URL, and each
//! one is audited with the caller's identity. Before its PUT it takes the job's claim
//! ([`super::claims`], the one automatic rescales take): while either kind is in flight
//! the other is refused (409 naming the holder). It is announced by a `ManualRescale`
//! Event on the ScaledObject that evaluates the job, naming the caller and the
//! parallelism asked for.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{header::AUTHORIZATION, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
    Json, Router,
};
use fks_net::{FileSecret, Incoming, Peer, ServerTlsFiles};
use tokio::net::TcpListener;

use super::{
    claims::ClaimGuard,
    context::Context,
    http::RescaleRequest,
    rescale::{self, Planned, RescaleError},
    workers::Workers,
};
use crate::config::AdminConfig;

/// The admin listener could not start or failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The token file or a TLS file is missing or unusable.
    #[error("admin listener: {0}")]
    Files(#[from] fks_net::FilesError),
    /// Accepting or serving failed.
    #[error("admin listener on {addr}: {source}")]
    Serve {
        /// Listen address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// How callers are checked.
pub struct Guard {
    token: Option<FileSecret>,
    mutual_tls: bool,
}

impl Guard {
    /// Loads the token file (missing or empty: an error now, not at the first call).
    pub fn new(config: &AdminConfig) -> Result<Self, AdminError> {
        let token = config
            .auth
            .as_ref()
            .map(|a| FileSecret::load(&a.bearer_token_file, "admin bearer token"))
            .transpose()?;
        Ok(Self {
            token,
            mutual_tls: config.mutual_tls(),
        })
    }

    /// The caller's identity for the audit log, or why it is refused.
    fn admit(&self, peer: &Peer, authorization: Option<&[u8]>) -> Result<String, &'static str> {
        if self.mutual_tls && peer.certificate.is_none() {
            return Err("a client certificate is required");
        }
        let mut who = match &peer.certificate {
            Some(c) => format!("{} cert {c}", peer.addr),
            None => peer.addr.to_string(),
        };
        if let Some(token) = &self.token {
            let presented = authorization
                .and_then(|h| h.strip_prefix(b"Bearer "))
                .ok_or("missing Authorization: Bearer token")?;
            let current = token.current().map_err(|e| {
                tracing::error!(error = %e, "admin bearer token unreadable; refusing every call");
                "the admin token cannot be read"
            })?;
            if !current.matches(presented) {
                return Err("wrong bearer token");
            }
            who.push_str(" (bearer token)");
        }
        Ok(who)
    }
}

/// Manual rescales accepted per minute over all jobs.
pub struct RateLimit {
    per_minute: usize,
    recent: Mutex<VecDeque<Instant>>,
}

impl RateLimit {
    /// At most `per_minute` in any 60 s.
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute: per_minute as usize,
            recent: Mutex::new(VecDeque::new()),
        }
    }

    /// Takes one slot, or says how long until one frees.
    fn take(&self, now: Instant) -> Result<(), Duration> {
        const WINDOW: Duration = Duration::from_secs(60);
        let mut recent = match self.recent.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            recent.pop_front();
        }
        if recent.len() >= self.per_minute {
            let oldest = recent.front().copied().unwrap_or(now);
            return Err(WINDOW.saturating_sub(now.duration_since(oldest)));
        }
        recent.push_back(now);
        Ok(())
    }
}

/// What the admin handlers share.
pub struct Admin {
    ctx: Arc<Context>,
    workers: Arc<Workers>,
    guard: Guard,
    limit: RateLimit,
    timeout: Duration,
}

impl Admin {
    /// The admin state for `ctx`'s config; `workers` find the ScaledObject of a job.
    pub fn new(ctx: Arc<Context>, workers: Arc<Workers>) -> Result<Self, AdminError> {
        let config = &ctx.config.admin;
        Ok(Self {
            guard: Guard::new(config)?,
            limit: RateLimit::new(config.max_rescales_per_minute),
            timeout: ctx.config.flink.rescale_timeout,
            ctx,
            workers,
        })
    }
}

/// Checks the caller of every admin route; the identity goes with the request.
async fn authenticate(
    State(admin): State<Arc<Admin>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    mut request: Request,
    next: Next,
) -> Response {
    let authorization = request
        .headers()
        .get(AUTHORIZATION)
        .map(|v| v.as_bytes().to_vec());
    match admin.guard.admit(&peer, authorization.as_deref()) {
        Ok(who) => {
            request.extensions_mut().insert(Caller(who));
            next.run(request).await
        }
        Err(why) => {
            tracing::warn!(peer = %peer.addr, route = %request.uri().path(), why, "admin call refused");
            (
                StatusCode::UNAUTHORIZED,
                [("www-authenticate", "Bearer")],
                Json(serde_json::json!({ "error": format!("unauthorized: {why}") })),
            )
                .into_response()
        }
    }
}

/// The authenticated caller (address, certificate fingerprint, how).
#[derive(Debug, Clone)]
pub struct Caller(pub String);

fn refuse(status: StatusCode, message: String) -> (StatusCode, Json<serde_json::Value>) {
    (status, Json(serde_json::json!({ "error": message })))
}

#[tracing::instrument(name = "admin", skip_all, fields(route = "/admin/rescale", caller = %caller.0))]
async fn admin_rescale(
    State(admin): State<Arc<Admin>>,
    axum::Extension(caller): axum::Extension<Caller>,
    Json(req): Json<RescaleRequest>,
) -> (StatusCode, Json<serde_json::Value>) {
    if !req.dry_run && !admin.ctx.is_leader() {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "not the leader: only the replica holding the Lease rescales; send this to the leader"
                .into(),
        );
    }
    let namespace = req.namespace.clone().unwrap_or_default();
    let url = req.flink_rest_url.trim_end_matches('/').to_string();
    if let Err(e) = admin.ctx.allow_flink_url(&url, &namespace) {
        return refuse(StatusCode::FORBIDDEN, e.to_string());
    }
    if let Err(wait) = admin.limit.take(Instant::now()) {
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "more than admin.maxRescalesPerMinute manual rescales; retry in {}s",
                wait.as_secs().max(1)
            ),
        );
    }
    tracing::info!(
        caller = %caller.0,
        flink_rest_url = %url,
        job = req.job.as_deref().unwrap_or(""),
        parallelism = ?req.parallelism,
        vertices = ?req.vertices,
        dry_run = req.dry_run,
        "audit: manual rescale requested"
    );
    let request = rescale::Request {
        flink_url: url,
        job: req.job,
        parallelism: req.parallelism,
        vertices: req.vertices,
        dry_run: req.dry_run,
        timeout: admin.timeout,
    };
    let claim = |planned: Planned| claim_and_announce(&admin, &caller.0, planned);
    match rescale::run_claimed(&request, admin.ctx.flink_options(), claim).await {
        Ok(report) => (
            StatusCode::OK,
            Json(serde_json::to_value(report).unwrap_or_default()),
        ),
        Err(e) => {
            tracing::warn!(status = e.status().as_u16(), error = %e, "manual rescale failed");
            refuse(e.status(), e.to_string())
        }
    }
}

/// Takes the job's rescale claim for `caller` (refused while another rescale of the job
/// is in flight) and announces the rescale with a `ManualRescale` Event on the
/// ScaledObject evaluating the job (none when no worker evaluates it; a failed Event is
/// logged, never fatal).
async fn claim_and_announce(
    admin: &Admin,
    caller: &str,
    planned: Planned,
) -> Result<ClaimGuard, RescaleError> {
    let guard = admin
        .ctx
        .claims
        .try_claim(&planned.job_id, format!("manual rescale by {caller}"))
        .map_err(|holder| {
            tracing::warn!(job_id = %planned.job_id, %holder, "manual rescale refused: another rescale of the job is in flight");
            RescaleError::Claimed {
                job_id: planned.job_id.to_string(),
                holder,
            }
        })?;
    let Some(kube) = admin.ctx.kube.as_ref() else {
        return Ok(guard);
    };
    let job_id = planned.job_id.to_string();
    let report = admin
        .workers
        .reports()
        .into_iter()
        .find(|r| r.job_id.as_deref() == Some(job_id.as_str()));
    let Some((namespace, name)) = report
        .as_ref()
        .and_then(|r| r.scaled_object.split_once('/'))
    else {
        tracing::info!(%job_id, "no ScaledObject evaluates this job here; no Event for the manual rescale");
        return Ok(guard);
    };
    let rest_url = report.as_ref().and_then(|r| r.flink_url.as_deref());
    let asked: Vec<String> = planned.to.iter().map(|(v, p)| format!("{v}={p}")).collect();
    let note = format!(
        "manual rescale of job {} ({job_id}) requested by {caller}: parallelism {} → {} TaskManagers",
        planned.job_name,
        asked.join(", "),
        planned.task_managers
    );
    let published = match kube.discovery.resolve(namespace, name, rest_url) {
        Ok(target) => kube.events.manual_rescale(&target, &note).await,
        Err(e) => Err(e),
    };
    if let Err(error) = published {
        tracing::warn!(%error, "cannot write the ManualRescale Event");
    }
    Ok(guard)
}

/// The admin routes behind authentication.
pub fn router(admin: Arc<Admin>, debug: Router) -> Router {
    Router::new()
        .route("/admin/rescale", axum::routing::post(admin_rescale))
        .with_state(admin.clone())
        .merge(debug)
        .layer(axum::middleware::from_fn_with_state(admin, authenticate))
}

/// Serves `router` on `listener` (TLS when `tls` is set) until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<ServerTlsFiles>>,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), AdminError> {
    let addr = listener.local_addr().map_err(|source| AdminError::Serve {
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        source,
    })?;
    let service = router.into_make_service_with_connect_info::<Peer>();
    let io = |source| AdminError::Serve { addr, source };
    tracing::info!(%addr, tls = tls.is_some(), "admin listener serving (/debug/jobs, /admin/rescale)");
    match tls {
        Some(files) => {
            let incoming =
                fks_net::incoming::tls(listener, files, Duration::from_secs(10)).map_err(io)?;
            axum::serve(incoming, service)
                .with_graceful_shutdown(shutdown)
                .await
                .map_err(io)
        }
        None => {
            let incoming: Incoming<_> = fks_net::incoming::plain(listener).map_err(io)?;
            axum::serve(incoming, service)
                .with_graceful_shutdown(shutdown)
                .await
                .map_err(io)
        }
    }
}

/// Loads the admin TLS files (missing or unusable: an error before anything serves).
pub fn load_tls(config: &AdminConfig) -> Result<Option<Arc<ServerTlsFiles>>, AdminError> {
    Ok(config
        .tls
        .as_ref()
        .map(|t| ServerTlsFiles::load(t, &[b"http/1.1"]))
        .transpose()?
        .map(Arc::new))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> Peer {
        Peer {
            addr: "10.0.0.9:5555".parse().expect("addr"),
            certificate: None,
        }
    }

    /// A token guard admits the right token only; no token guard admits anyone.
    #[test]
    fn bearer_token_is_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("token");
        std::fs::write(&file, "s3cret\n").expect("write");
        let config: AdminConfig =
            serde_yaml::from_str(&format!("auth: {{bearerTokenFile: {}}}", file.display()))
                .expect("config");
        let guard = Guard::new(&config).expect("guard");
        assert_eq!(
            guard.admit(&peer(), None),
            Err("missing Authorization: Bearer token")
        );
        assert_eq!(
            guard.admit(&peer(), Some(b"Bearer nope")),
            Err("wrong bearer token")
        );
        let who = guard.admit(&peer(), Some(b"Bearer s3cret")).expect("ok");
        assert_eq!(who, "10.0.0.9:5555 (bearer token)");
        // rotated: the old token stops working
        std::fs::write(&file, "n3w-and-longer\n").expect("write");
        assert!(guard.admit(&peer(), Some(b"Bearer s3cret")).is_err());
        assert!(guard.admit(&peer(), Some(b"Bearer n3w-and-longer")).is_ok());
        let open = Guard::new(&AdminConfig::default()).expect("guard");
        assert!(open.admit(&peer(), None).is_ok());
    }

    /// At most N per rolling minute.
    #[test]
    fn rate_limit_per_minute() {
        let limit = RateLimit::new(2);
        let t0 = Instant::now();
        assert!(limit.take(t0).is_ok());
        assert!(limit.take(t0).is_ok());
        let wait = limit.take(t0 + Duration::from_secs(10)).expect_err("third");
        assert_eq!(wait, Duration::from_secs(50));
        assert!(limit.take(t0 + Duration::from_secs(60)).is_ok());
    }
}

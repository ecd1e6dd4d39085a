//! The HTTP server: `GET /metrics` (Prometheus text format), `GET /healthz` (200 while
//! the process runs) and `GET /readyz` (200 when ready, else 503 with the reason). The
//! runtime mounts its own routes (`/debug/jobs`, admin endpoints) by passing a
//! [`Router`] that is merged in.

use std::{future::Future, sync::Arc};

use axum::{
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use tokio::{net::TcpListener, sync::watch};

use super::metrics::Metrics;

/// Readiness as published by the runtime through a `watch` channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Ready to serve (e.g. first evaluation done, gRPC listening).
    Ready,
    /// Not ready; the reason is returned in the 503 body.
    NotReady(String),
}

impl Readiness {
    /// The initial state: not ready, "starting".
    pub fn starting() -> Self {
        Readiness::NotReady("starting".into())
    }
}

/// Errors of the HTTP server.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The server failed while serving.
    #[error("metrics HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
}

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    readiness: watch::Receiver<Readiness>,
}

/// The exporter routes, merged with `extra` (routes of `extra` must not collide with
/// `/metrics`, `/healthz`, `/readyz`).
pub fn router(
    metrics: Arc<Metrics>,
    readiness: watch::Receiver<Readiness>,
    extra: Router,
) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(AppState { metrics, readiness })
        .merge(extra)
}

/// Serves [`router`] on `listener` until `shutdown` completes (graceful: in-flight
/// requests finish).
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    readiness: watch::Receiver<Readiness>,
    extra: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), HttpError> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "HTTP server listening.");
    }
    axum::serve(listener, router(metrics, readiness, extra))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(HttpError::Serve)
}

/// `/metrics`, sent part by part ([`Metrics::encode_part`]: at 1,000 jobs the text is
/// megabytes; no scrape holds all of it at once).
async fn metrics_handler(State(s): State<AppState>) -> Response {
    let parts = futures_util::stream::unfold((s.metrics, 0), |(metrics, part)| async move {
        let text = metrics.encode_part(part)?;
        Some((Ok::<_, std::convert::Infallible>(text), (metrics, part + 1)))
    });
    (
        [(header::CONTENT_TYPE, Metrics::content_type())],
        axum::body::Body::from_stream(parts),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(s): State<AppState>) -> Response {
    let state = s.readiness.borrow().clone();
    match state {
        Readiness::Ready => (StatusCode::OK, "ready\n").into_response(),
        Readiness::NotReady(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn start(
        extra: Router,
    ) -> (
        String,
        Arc<Metrics>,
        watch::Sender<Readiness>,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<Result<(), HttpError>>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let metrics = Arc::new(Metrics::new().unwrap());
        let (tx, rx) = watch::channel(Readiness::starting());
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, metrics.clone(), rx, extra, async move {
            let _ = stop_rx.await;
        }));
        (base, metrics, tx, stop_tx, task)
    }

    #[tokio::test]
    async fn metrics_health_ready_and_extra_routes() {
        let extra = Router::new().route("/debug/jobs", get(|| async { "[]" }));
        let (base, metrics, ready_tx, stop, task) = start(extra).await;
        metrics.set_leader(true);
        let c = reqwest::Client::new();

        let r = c.get(format!("{base}/metrics")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let ct = r.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(ct.starts_with("text/plain"), "{ct}");
        assert!(r
            .text()
            .await
            .unwrap()
            .contains("flink_keda_scaler_is_leader 1"));

        let r = c.get(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!(r.status(), 200);

        let r = c.get(format!("{base}/readyz")).send().await.unwrap();
        assert_eq!(r.status(), 503);
        assert!(r.text().await.unwrap().contains("starting"));
        ready_tx.send(Readiness::Ready).unwrap();
        let r = c.get(format!("{base}/readyz")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        ready_tx
            .send(Readiness::NotReady("lost Prometheus".into()))
            .unwrap();
        let r = c.get(format!("{base}/readyz")).send().await.unwrap();
        assert_eq!(r.status(), 503);
        assert!(r.text().await.unwrap().contains("lost Prometheus"));

        let r = c.get(format!("{base}/debug/jobs")).send().await.unwrap();
        assert_eq!(r.text().await.unwrap(), "[]");

        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
        assert!(c.get(format!("{base}/healthz")).send().await.is_err());
    }
}

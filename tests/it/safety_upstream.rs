//! What an upstream can make the built binary say or do (issue 12): a JobManager URL
//! whose error page holds a secret-looking string has it neither in the gRPC message nor
//! in the log (only Flink's structured `errors` is kept, capped); a JobManager that
//! redirects is not followed (a listener at the redirect target records no connection).
//! Fakes on loopback; the binary and its listeners are real.

use std::{sync::atomic::Ordering, time::Duration};

use axum::{http::StatusCode, response::IntoResponse, Router};
use flink_keda_scaler::keda::pb::external_scaler_client::ExternalScalerClient;

use super::safety_listeners::{counting_listener, spawn, POLICY};
use crate::support::{free_port, grpc_fake::so_ref, scaler::config_yaml};

const SECRET: &str = "db_password=hunter2";

/// Serves `router` on a free loopback port; returns its URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// `IsActive` for a ScaledObject pointing at `flink`; the error it must answer.
async fn is_active_error(grpc: u16, flink: &str) -> tonic::Status {
    let mut client = ExternalScalerClient::connect(format!("http://127.0.0.1:{grpc}"))
        .await
        .expect("connect");
    let so = so_ref(
        "team-a",
        "orders",
        &[("flinkRestUrl", flink), ("jobName", "x")],
    );
    client.is_active(so).await.expect_err("the upstream failed")
}

/// An HTML error page with a secret: the answer names the failure, never the page.
#[tokio::test]
async fn an_upstream_error_page_is_never_echoed() {
    let page = format!(
        "<html><body>debug dump {SECRET} {}</body></html>",
        "x".repeat(4000)
    );
    let flink = serve(Router::new().fallback(move || {
        let page = page.clone();
        async move { (StatusCode::INTERNAL_SERVER_ERROR, page).into_response() }
    }))
    .await;
    let mut p = spawn(
        &config_yaml("http://127.0.0.1:9", POLICY),
        &format!("127.0.0.1:{}", free_port()),
    );
    p.ready().await;
    let status = is_active_error(p.grpc, &flink).await;
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(status.message().contains("500"), "{}", status.message());
    assert!(
        !status.message().contains("hunter2"),
        "{}",
        status.message()
    );
    assert!(
        status.message().len() < 2048,
        "{} bytes",
        status.message().len()
    );
    // give the worker's own tick time to log its failure too
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let log = p.log();
    assert!(log.contains("500"), "the failure is logged: {log}");
    assert!(!log.contains("hunter2"), "the page body was logged: {log}");
}

/// A JobManager answering 302 to elsewhere: not followed, the answer says so.
#[tokio::test]
async fn redirects_are_not_followed() {
    let (target, connections) = counting_listener().await;
    let location = format!("http://127.0.0.1:{target}/jobs/overview");
    let flink = serve(Router::new().fallback(move || {
        let location = location.clone();
        async move { (StatusCode::FOUND, [("location", location)], "").into_response() }
    }))
    .await;
    let mut p = spawn(
        &config_yaml("http://127.0.0.1:9", POLICY),
        &format!("127.0.0.1:{}", free_port()),
    );
    p.ready().await;
    let status = is_active_error(p.grpc, &flink).await;
    assert_ne!(status.code(), tonic::Code::Ok, "{status:?}");
    assert!(status.message().contains("302"), "{}", status.message());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "the redirect was followed; log: {}",
        p.log()
    );
}

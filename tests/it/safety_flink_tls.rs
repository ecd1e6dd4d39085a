//! The Flink REST client over TLS with a client certificate and a bearer token from a
//! file (issue 12): a local TLS fake JobManager that requires a client certificate (the
//! scaler's own TLS server code, `fks_net`) records the `Authorization` header and the
//! certificate it saw. The token file is rotated and the next request carries the new
//! token; a client without the certificate is refused by the handshake. Flink itself has
//! no mTLS on its REST endpoint in these tests: this side is a fake.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{extract::ConnectInfo, http::HeaderMap, routing::get, Json, Router};
use fks_net::{Auth, Peer, ServerTlsFiles};
use flink_keda_scaler::{
    core::{ClientTls, ServerTls},
    flink::{Access, ClientOptions, FlinkClient},
};

use crate::support::{self, tls::make_certs};

type Seen = Arc<Mutex<Vec<(Option<String>, Option<String>)>>>;

/// A TLS JobManager fake on loopback requiring a client certificate signed by `ca`.
async fn fake_jobmanager(dir: &std::path::Path) -> (String, Seen) {
    let files = ServerTlsFiles::load(
        &ServerTls {
            cert_file: dir.join("server.crt"),
            key_file: dir.join("server.key"),
            client_ca_file: Some(dir.join("ca.crt")),
        },
        &[b"http/1.1"],
    )
    .expect("server TLS");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let router = Router::new().route(
        "/jobs/overview",
        get(
            move |ConnectInfo(peer): ConnectInfo<Peer>, headers: HeaderMap| {
                let record = record.clone();
                async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    record.lock().expect("lock").push((auth, peer.certificate));
                    Json(serde_json::json!({ "jobs": [] }))
                }
            },
        ),
    );
    let incoming = fks_net::incoming::tls(listener, Arc::new(files), Duration::from_secs(5))
        .expect("incoming");
    tokio::spawn(async move {
        axum::serve(
            incoming,
            router.into_make_service_with_connect_info::<Peer>(),
        )
        .await
    });
    (format!("https://localhost:{port}"), seen)
}

fn options(dir: &std::path::Path, client_cert: bool, token: &std::path::Path) -> ClientOptions {
    ClientOptions {
        request_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        get_retries: 0,
        access: Access {
            tls: Some(ClientTls {
                ca_file: Some(dir.join("ca.crt")),
                cert_file: client_cert.then(|| dir.join("client.crt")),
                key_file: client_cert.then(|| dir.join("client.key")),
                insecure_skip_verify: false,
            }),
            auth: Auth::BearerTokenFile(token.to_path_buf()),
            headers: Default::default(),
        },
        ..ClientOptions::default()
    }
}

#[tokio::test]
async fn flink_client_mtls_and_rotated_token() {
    if support::which("openssl").is_none() && !support::component_missing("openssl CLI") {
        return;
    }
    let dir = support::tempdir("fks-flink-tls-");
    make_certs(dir.path());
    let token = dir.path().join("flink-token");
    std::fs::write(&token, "token-one\n").expect("token");
    let (url, seen) = fake_jobmanager(dir.path()).await;

    let client = FlinkClient::new(&url, options(dir.path(), true, &token)).expect("client");
    client.jobs().await.expect("GET over mTLS");
    std::fs::write(&token, "token-two-rotated\n").expect("rotate");
    client.jobs().await.expect("GET after the rotation");
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].0.as_deref(), Some("Bearer token-one"));
    assert_eq!(seen[1].0.as_deref(), Some("Bearer token-two-rotated"));
    assert!(
        seen.iter().all(|(_, cert)| cert.is_some()),
        "client certificate presented: {seen:?}"
    );

    let anonymous = FlinkClient::new(&url, options(dir.path(), false, &token)).expect("client");
    let err = anonymous.jobs().await.expect_err("no client certificate");
    assert!(
        !err.to_string().contains("token-two"),
        "secret in the error: {err}"
    );
}

//! TLS and mTLS of the gRPC server. KEDA's grpc-go client refuses TLS servers that do not
//! negotiate ALPN `h2`, so a raw rustls client checks the negotiated protocol; tonic
//! clients check that mTLS rejects clients without a certificate. Certificates are made
//! per test with the `openssl` CLI in a temp dir.

use crate::support::{self, grpc_fake};

use std::{path::Path, sync::Arc, time::Duration};

use flink_keda_scaler::{
    core::ServerTls,
    keda::{load_tls, pb::external_scaler_client::ExternalScalerClient, ServeOptions, ServerError},
};
use grpc_fake::{so_ref, test_settings, TestServer};
use tokio_rustls::{
    rustls::{
        self,
        pki_types::{pem::PemObject, CertificateDer, ServerName},
    },
    TlsConnector,
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

fn make_certs(dir: &Path) {
    support::tls::make_certs(dir);
}

fn openssl_available() -> bool {
    support::which("openssl").is_some() || support::component_missing("openssl CLI")
}

fn tls_settings(dir: &Path, mtls: bool) -> ServerTls {
    ServerTls {
        cert_file: dir.join("server.crt"),
        key_file: dir.join("server.key"),
        client_ca_file: mtls.then(|| dir.join("ca.crt")),
    }
}

async fn start_tls(dir: &Path, mtls: bool) -> TestServer {
    let options = ServeOptions {
        tls: Some(tls_settings(dir, mtls)),
        ..ServeOptions::default()
    };
    TestServer::start_with(test_settings(), options).await
}

async fn tls_client(
    server: &TestServer,
    dir: &Path,
    with_client_cert: bool,
) -> Result<ExternalScalerClient<Channel>, tonic::transport::Error> {
    let ca = std::fs::read(dir.join("ca.crt")).expect("ca");
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    if with_client_cert {
        let cert = std::fs::read(dir.join("client.crt")).expect("client cert");
        let key = std::fs::read(dir.join("client.key")).expect("client key");
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    let mut last = None;
    for _ in 0..50 {
        match Channel::from_shared(format!("https://{}", server.addr))
            .expect("url")
            .tls_config(tls.clone())?
            .connect_timeout(Duration::from_secs(2))
            .connect()
            .await
        {
            Ok(ch) => return Ok(ExternalScalerClient::new(ch)),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(last.expect("at least one attempt"))
}

#[tokio::test]
async fn tls_server_negotiates_alpn_h2() {
    if !openssl_available() {
        return;
    }
    let dir = support::tempdir("fks-tls-");
    make_certs(dir.path());
    let server = start_tls(dir.path(), false).await;

    let mut roots = rustls::RootCertStore::empty();
    let ca = std::fs::read(dir.path().join("ca.crt")).expect("ca");
    roots
        .add(CertificateDer::from_pem_slice(&ca).expect("ca pem"))
        .expect("add root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    // What grpc-go offers.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let connector = TlsConnector::from(Arc::new(config));

    let mut tls = None;
    for _ in 0..50 {
        if let Ok(tcp) = tokio::net::TcpStream::connect(server.addr).await {
            let name = ServerName::try_from("localhost").expect("name");
            tls = Some(connector.connect(name, tcp).await.expect("TLS handshake"));
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let tls = tls.expect("connected");
    let (_, session) = tls.get_ref();
    assert_eq!(session.alpn_protocol(), Some(&b"h2"[..]));
}

#[tokio::test]
async fn tls_server_answers_a_tls_grpc_client() {
    if !openssl_available() {
        return;
    }
    let dir = support::tempdir("fks-tls-");
    make_certs(dir.path());
    let server = start_tls(dir.path(), false).await;
    let mut client = tls_client(&server, dir.path(), false)
        .await
        .expect("TLS channel");
    let spec = client
        .get_metric_spec(so_ref("prod", "so", &[("jobName", "orders")]))
        .await
        .expect("GetMetricSpec over TLS")
        .into_inner();
    assert_eq!(
        spec.metric_specs[0].metric_name,
        "flink-taskmanagers-orders"
    );
}

#[tokio::test]
async fn mtls_rejects_clients_without_a_certificate_and_accepts_with_one() {
    if !openssl_available() {
        return;
    }
    let dir = support::tempdir("fks-mtls-");
    make_certs(dir.path());
    let server = start_tls(dir.path(), true).await;
    let request = so_ref("prod", "so", &[("jobName", "orders")]);

    // Without a client certificate: the handshake or the first call fails.
    let rejected = match tls_client(&server, dir.path(), false).await {
        Err(e) => Err(e.to_string()),
        Ok(mut c) => c
            .get_metric_spec(request.clone())
            .await
            .map(|_| ())
            .map_err(|s| format!("{:?}: {}", s.code(), s.message())),
    };
    assert!(
        rejected.is_err(),
        "a client without certificate was accepted"
    );

    let mut client = tls_client(&server, dir.path(), true)
        .await
        .expect("mTLS channel");
    let spec = client
        .get_metric_spec(request)
        .await
        .expect("GetMetricSpec over mTLS")
        .into_inner();
    assert_eq!(spec.metric_specs.len(), 1);
}

#[tokio::test]
async fn tls_file_errors_name_the_file() {
    if !openssl_available() {
        return;
    }
    let dir = support::tempdir("fks-tls-bad-");
    make_certs(dir.path());
    let missing = ServerTls {
        cert_file: dir.path().join("nope.crt"),
        key_file: dir.path().join("server.key"),
        client_ca_file: None,
    };
    let err = load_tls(&missing).expect_err("missing cert");
    assert!(
        matches!(err, ServerError::Tls(fks_net::FilesError::Read { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("nope.crt"), "{err}");

    let swapped = ServerTls {
        cert_file: dir.path().join("server.crt"),
        key_file: dir.path().join("server.crt"),
        client_ca_file: None,
    };
    let err = load_tls(&swapped).expect_err("cert as key");
    assert!(err.to_string().contains("private key file"), "{err}");
    assert!(err.to_string().contains("server.crt"), "{err}");

    let bad_ca = ServerTls {
        client_ca_file: Some(dir.path().join("ca.key")),
        ..tls_settings(dir.path(), false)
    };
    let err = load_tls(&bad_ca).expect_err("key as CA");
    assert!(err.to_string().contains("client CA file"), "{err}");
    assert!(err.to_string().contains("ca.key"), "{err}");

    // PEM markers but mismatched pair: rustls rejects it when the server starts.
    let mismatched = ServerTls {
        cert_file: dir.path().join("server.crt"),
        key_file: dir.path().join("client.key"),
        client_ca_file: None,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let service = flink_keda_scaler::keda::ExternalScalerService::new(
        grpc_fake::FakeEvaluator::new(),
        test_settings(),
    );
    let result = tokio::time::timeout(
        Duration::from_secs(5),
        flink_keda_scaler::keda::serve(listener, service, Some(mismatched), std::future::pending()),
    )
    .await
    .expect("serve must fail fast on a bad TLS config");
    let err = result.expect_err("mismatched key");
    assert!(err.to_string().contains("server.crt"), "{err}");
    assert!(err.to_string().contains("client.key"), "{err}");
}

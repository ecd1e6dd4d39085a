//! TLS and mTLS against a real Prometheus (`--web.config.file` with a server certificate
//! and `RequireAndVerifyClientCert`), certificates made by the `openssl` CLI per run.
//!
//! Run: `cargo test --test it prometheus_tls -- --nocapture`.

use crate::support;

use flink_keda_scaler::{
    config::DEFAULT_TIMEOUT,
    core::ClientTls,
    promql::{Endpoint, PromClient, QueryError},
};
use support::prometheus::PrometheusHarness;

fn settings(url: &str, tls: ClientTls) -> Endpoint {
    let mut s = Endpoint::new(url, DEFAULT_TIMEOUT, 0);
    s.tls = Some(tls);
    s
}

/// mTLS works with the CA and a client certificate; without the client certificate or
/// without trusting the CA the server is unreachable with a TLS reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_against_real_prometheus() {
    if support::which("openssl").is_none() {
        let _ = support::component_missing("openssl CLI");
        return;
    }
    let dir = support::tempdir("fks-prom-tls-");
    let c = support::tls::make_certs(dir.path());
    let web = format!(
        "tls_server_config:\n  cert_file: {}\n  key_file: {}\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {}\n",
        c.server_cert.display(),
        c.server_key.display(),
        c.ca.display()
    );
    let Some(prom) = PrometheusHarness::start_with_web_config(&[], &web).await else {
        return;
    };
    let url = prom.url();
    assert!(url.starts_with("https://"), "{url}");

    let mtls = ClientTls {
        ca_file: Some(c.ca.clone()),
        cert_file: Some(c.client_cert.clone()),
        key_file: Some(c.client_key.clone()),
        insecure_skip_verify: false,
    };
    let client = PromClient::new(&settings(&url, mtls.clone())).expect("mTLS client");
    // With a TLS web config the harness can only wait for the port: Prometheus answers
    // 503 until its TSDB is open, so the first query waits for that (at most 20 s).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let v = loop {
        match client.query_value("vector(42)", None).await {
            Err(QueryError::HttpStatus { status: 503, .. })
                if std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            r => break r.expect("mTLS query"),
        }
    };
    assert_eq!(v, 42.0);

    // No client certificate: the server refuses the handshake.
    let no_cert = ClientTls {
        cert_file: None,
        key_file: None,
        ..mtls.clone()
    };
    let e = PromClient::new(&settings(&url, no_cert))
        .expect("client")
        .query_value("vector(1)", None)
        .await
        .expect_err("client certificate required");
    assert!(matches!(e, QueryError::Unreachable { .. }), "{e:?}");

    // Server certificate from an unknown CA.
    let untrusted = ClientTls {
        ca_file: None,
        ..mtls.clone()
    };
    let e = PromClient::new(&settings(&url, untrusted))
        .expect("client")
        .query_value("vector(1)", None)
        .await
        .expect_err("unknown CA");
    match &e {
        QueryError::Unreachable { reason, .. } => {
            assert!(reason.to_lowercase().contains("certificate"), "{reason}")
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }

    // insecureSkipVerify accepts the unknown CA (client certificate still sent).
    let skip = ClientTls {
        ca_file: None,
        insecure_skip_verify: true,
        ..mtls
    };
    let v = PromClient::new(&settings(&url, skip))
        .expect("client")
        .query_value("vector(7)", None)
        .await
        .expect("insecure query");
    assert_eq!(v, 7.0);
}

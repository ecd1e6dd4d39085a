//! Certificate rotation on the built binary (issue 12): the gRPC server's certificate
//! and key files are replaced (as cert-manager does: new files renamed over the old) and
//! the next TLS handshake presents the new certificate, without a restart. Certificates
//! are made with the `openssl` CLI.

use std::{path::Path, sync::Arc, time::Duration};

use tokio_rustls::{
    rustls::{
        self,
        pki_types::{pem::PemObject, CertificateDer, ServerName},
    },
    TlsConnector,
};

use super::safety_listeners::{spawn, POLICY};
use crate::support::{self, free_port, scaler::config_yaml, tls::make_certs};

/// A rustls client trusting the CA of each dir; returns the server certificate it saw.
async fn server_certificate(port: u16, cas: &[&Path]) -> Vec<u8> {
    let mut roots = rustls::RootCertStore::empty();
    for dir in cas {
        let pem = std::fs::read(dir.join("ca.crt")).expect("ca");
        roots
            .add(CertificateDer::from_pem_slice(&pem).expect("ca pem"))
            .expect("add root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let name = ServerName::try_from("localhost").expect("name");
    let tls = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake");
    let (_, session) = tls.get_ref();
    session.peer_certificates().expect("a certificate")[0].to_vec()
}

fn der_of(pem_file: &Path) -> Vec<u8> {
    let pem = std::fs::read(pem_file).expect("cert");
    CertificateDer::from_pem_slice(&pem).expect("pem").to_vec()
}

/// Replaces `live/<name>` with `from/<name>` by rename (a new inode, as a Secret
/// volume update does).
fn replace(live: &Path, from: &Path, name: &str) {
    let tmp = live.join(format!(".{name}.new"));
    std::fs::copy(from.join(name), &tmp).expect("copy");
    std::fs::rename(&tmp, live.join(name)).expect("rename");
}

#[tokio::test]
async fn grpc_certificate_rotation_needs_no_restart() {
    if support::which("openssl").is_none() && !support::component_missing("openssl CLI") {
        return;
    }
    let (first, second) = (
        support::tempdir("fks-rot-a-"),
        support::tempdir("fks-rot-b-"),
    );
    make_certs(first.path());
    make_certs(second.path());
    let live = support::tempdir("fks-rot-live-");
    for f in ["ca.crt", "server.crt", "server.key"] {
        replace(live.path(), first.path(), f);
    }
    let config = config_yaml("http://127.0.0.1:9", POLICY).replace(
        "  streamInterval: 1s\n",
        &format!(
            "  streamInterval: 1s\n  tls:\n    certFile: {0}/server.crt\n    keyFile: {0}/server.key\n",
            live.path().display()
        ),
    );
    let mut p = spawn(&config, &format!("127.0.0.1:{}", free_port()));
    p.ready().await;
    let cas = [first.path(), second.path()];
    let before = server_certificate(p.grpc, &cas).await;
    assert_eq!(before, der_of(&first.path().join("server.crt")));

    replace(live.path(), second.path(), "server.key");
    replace(live.path(), second.path(), "server.crt");
    let want = der_of(&second.path().join("server.crt"));
    let mut seen = Vec::new();
    for _ in 0..40 {
        seen = server_certificate(p.grpc, &cas).await;
        if seen == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        seen,
        want,
        "the rotated certificate is not served; log:\n{}",
        p.log()
    );
}

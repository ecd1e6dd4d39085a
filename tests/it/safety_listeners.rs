//! Safety of the built binary's listeners and of where it sends requests (issue 12), with
//! real listeners and no Flink/Prometheus needed:
//!
//! * admin off loopback without authentication → the process refuses to start, naming
//!   the fix; with a bearer token file, an unauthenticated call → 401, the right token →
//!   served; `/debug/jobs` is no longer on the `/metrics` port;
//! * missing gRPC TLS files → non-zero exit within seconds, the file named; fatal errors
//!   in the chosen log format, no ANSI codes when stderr is not a terminal;
//! * a `flinkRestUrl` outside `flink.allowedUrls` → `PERMISSION_DENIED` naming the rule,
//!   and a listener at that address records no connection.

use std::{
    process::Stdio,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use flink_keda_scaler::keda::pb::external_scaler_client::ExternalScalerClient;
use tokio::process::{Child, Command};

use crate::support::{free_port, grpc_fake::so_ref, scaler::config_yaml, scaler_bin, tempdir};

pub(crate) const POLICY: &str = "    minTaskManagers: 1\n    maxTaskManagers: 4\n";

/// The binary on free loopback gRPC/HTTP ports, admin on `admin_addr`.
pub(crate) struct Proc {
    child: Child,
    pub(crate) grpc: u16,
    http: u16,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

pub(crate) fn spawn(config: &str, admin_addr: &str) -> Proc {
    spawn_as(config, admin_addr, "json")
}

fn spawn_as(config: &str, admin_addr: &str, log_format: &str) -> Proc {
    let dir = tempdir("fks-safety-");
    let path = dir.path().join("scaler.yaml");
    std::fs::write(&path, config).expect("write config");
    let log = dir.path().join("scaler.log");
    let file = std::fs::File::create(&log).expect("log file");
    let (grpc, http) = (free_port(), free_port());
    let child = Command::new(scaler_bin())
        .args(["--log-format", log_format, "serve", "--config"])
        .arg(&path)
        .args(["--grpc-addr", &format!("127.0.0.1:{grpc}")])
        .args(["--http-addr", &format!("127.0.0.1:{http}")])
        .args(["--admin-addr", admin_addr])
        .env("RUST_LOG", "info")
        .env_remove("FKS_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::from(file.try_clone().expect("clone log")))
        .stderr(Stdio::from(file))
        .kill_on_drop(true)
        .spawn()
        .expect("spawn flink-keda-scaler");
    Proc {
        child,
        grpc,
        http,
        log,
        _dir: dir,
    }
}

impl Proc {
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The exit status within `within` (panics with the log if it keeps running).
    async fn exits_within(&mut self, within: Duration) -> std::process::ExitStatus {
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(status) => status.expect("wait"),
            Err(_) => panic!("still running after {within:?}; log:\n{}", self.log()),
        }
    }

    pub(crate) async fn ready(&mut self) {
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("exited with {status} before ready; log:\n{}", self.log());
            }
            let url = format!("http://127.0.0.1:{}/readyz", self.http);
            if client
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("not ready within 10 s; log:\n{}", self.log());
    }
}

/// Admin on 0.0.0.0 with no authentication: refused at start, naming the remedy.
#[tokio::test]
async fn admin_off_loopback_without_auth_refuses_to_start() {
    let config = config_yaml("http://127.0.0.1:9", POLICY);
    let mut p = spawn(&config, &format!("0.0.0.0:{}", free_port()));
    let status = p.exits_within(Duration::from_secs(10)).await;
    assert!(!status.success(), "{status}");
    let log = p.log();
    assert!(
        log.contains("is not a loopback address") && log.contains("admin.auth.bearerTokenFile"),
        "{log}"
    );
    // the fatal error is a JSON line too (--log-format json)
    let last: serde_json::Value = serde_json::from_str(log.lines().last().expect("a line"))
        .unwrap_or_else(|e| panic!("fatal error not JSON ({e}): {log}"));
    assert_eq!(last["level"], "ERROR", "{last}");
    assert_eq!(last["fatal"], true, "{last}");
}

/// Admin on 0.0.0.0 with a bearer token: 401 without it or with a wrong one, 200 with it
/// (and with the rotated one after the file changes); `/debug/jobs` is off the metrics port.
#[tokio::test]
async fn admin_off_loopback_requires_the_token() {
    let dir = tempdir("fks-admin-token-");
    let token = dir.path().join("token");
    std::fs::write(&token, "first-token\n").expect("write token");
    let config = format!(
        "{}admin:\n  auth:\n    bearerTokenFile: {}\n",
        config_yaml("http://127.0.0.1:9", POLICY),
        token.display()
    );
    let admin_port = free_port();
    let mut p = spawn(&config, &format!("0.0.0.0:{admin_port}"));
    p.ready().await;
    let http = reqwest::Client::new();
    let debug = format!("http://127.0.0.1:{admin_port}/debug/jobs");
    let status = |r: reqwest::Result<reqwest::Response>| r.expect("admin answers").status();
    assert_eq!(status(http.get(&debug).send().await), 401);
    assert_eq!(
        status(http.get(&debug).bearer_auth("wrong").send().await),
        401
    );
    let rescale = http
        .post(format!("http://127.0.0.1:{admin_port}/admin/rescale"))
        .json(&serde_json::json!({"flinkRestUrl": "http://127.0.0.1:9", "parallelism": 2}))
        .send()
        .await;
    assert_eq!(status(rescale), 401);
    assert_eq!(
        status(http.get(&debug).bearer_auth("first-token").send().await),
        200
    );
    std::fs::write(&token, "second-token-after-rotation\n").expect("rotate");
    assert_eq!(
        status(http.get(&debug).bearer_auth("first-token").send().await),
        401
    );
    assert_eq!(
        status(
            http.get(&debug)
                .bearer_auth("second-token-after-rotation")
                .send()
                .await
        ),
        200
    );
    let on_metrics_port = http
        .get(format!("http://127.0.0.1:{}/debug/jobs", p.http))
        .send()
        .await;
    assert_eq!(status(on_metrics_port), 404);
    assert!(!p.log().contains("first-token"), "token logged");
}

/// gRPC TLS files that do not exist: non-zero exit before ready, the file named.
#[tokio::test]
async fn missing_grpc_tls_files_exit_non_zero() {
    let config = config_yaml("http://127.0.0.1:9", POLICY).replace(
        "  streamInterval: 1s\n",
        "  streamInterval: 1s\n  tls:\n    certFile: /nonexistent/fks/tls.crt\n    keyFile: /nonexistent/fks/tls.key\n",
    );
    let mut p = spawn_as(&config, &format!("127.0.0.1:{}", free_port()), "pretty");
    let status = p.exits_within(Duration::from_secs(10)).await;
    assert!(!status.success(), "{status}");
    let log = p.log();
    assert!(log.contains("/nonexistent/fks/tls.crt"), "{log}");
    // stderr is a file here: no ANSI escape codes in it
    assert!(!log.contains('\u{1b}'), "ANSI codes in a log file: {log:?}");
    assert!(!log.contains("serving (gRPC"), "{log}");
}

/// A listener that counts the connections it accepts.
pub(crate) async fn counting_listener() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((_conn, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
        }
    });
    (port, count)
}

/// `flinkRestUrl` outside `flink.allowedUrls`: `PERMISSION_DENIED` naming the rule; nothing
/// reaches that address.
#[tokio::test]
async fn flink_url_outside_the_allow_list_is_denied_before_any_request() {
    let (port, connections) = counting_listener().await;
    let config = config_yaml("http://127.0.0.1:9", POLICY).replace(
        "flink:\n  timeout: 2s\n",
        "flink:\n  timeout: 2s\n  allowedUrls: [\"http://flink-allowed.example:8081\"]\n",
    );
    let mut p = spawn(&config, &format!("127.0.0.1:{}", free_port()));
    p.ready().await;
    let mut client = ExternalScalerClient::connect(format!("http://127.0.0.1:{}", p.grpc))
        .await
        .expect("connect");
    let url = format!("http://127.0.0.1:{port}");
    let so = so_ref(
        "team-a",
        "orders",
        &[("flinkRestUrl", &url), ("jobName", "x")],
    );
    let err = client.is_active(so).await.expect_err("denied");
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
    assert!(
        err.message().contains("flink.allowedUrls")
            && err.message().contains("http://flink-allowed.example:8081"),
        "{}",
        err.message()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(connections.load(Ordering::SeqCst), 0, "a request was sent");
}

//! `PromClient` and `read_signals` against a fake Prometheus (wiremock) for fault
//! injection: every error type, retries, auth headers, redaction, range queries,
//! multi-series parsing, per-signal failures.
//!
//! Run: `cargo test --test it prometheus_client::`.

use std::{collections::BTreeMap, time::Duration};

use chrono::{TimeZone, Utc};
use flink_keda_scaler::{
    config::{BasicAuthSettings, ServerAuth, ServerSettings},
    core::{ClientTls, Edge, ShipStrategy, Signal, Topology, Vertex, VertexId},
    promql::{
        read_signals, ClientBuildError, JobVars, PromClient, QueryError, ReadOptions,
        SignalErrorKind, SignalQueries,
    },
    runtime::prometheus_endpoint,
};
use serde_json::{json, Value};
use wiremock::{
    matchers::{body_string_contains, method, path},
    Mock, MockServer, Request, ResponseTemplate,
};

mod signals;

const JOB: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90";
const V1: &str = "bc764cd8ddf7a0cff126f51c16239658";
const V2: &str = "0a448493b4782967b150582570326227";

fn settings(uri: &str) -> ServerSettings {
    ServerSettings::new(uri)
}

fn client(uri: &str) -> PromClient {
    PromClient::new(&prometheus_endpoint(&settings(uri))).expect("client")
}

fn vector(result: Value) -> Value {
    json!({"status": "success", "data": {"resultType": "vector", "result": result}})
}

fn ok(result: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(vector(result))
}

fn sample(labels: Value, value: &str) -> Value {
    json!({"metric": labels, "value": [1_700_000_000.0, value]})
}

fn form(req: &Request) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(&req.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The instant query is a form POST to `<base path>/api/v1/query` with `query` and
/// `time`; every series comes back with its labels.
#[tokio::test]
async fn instant_query_posts_form_and_keeps_every_series() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/prom/api/v1/query"))
        .respond_with(ok(json!([
            sample(json!({"task_id": V1}), "250.5"),
            sample(json!({"task_id": V2}), "NaN"),
        ])))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&format!("{}/prom/", server.uri()));
    let at = Utc
        .timestamp_millis_opt(1_700_000_000_250)
        .single()
        .expect("time");
    let samples = c
        .query("max by (task_id) (busy)", Some(at))
        .await
        .expect("query");
    assert_eq!(samples.len(), 2);
    assert_eq!(samples[0].label("task_id"), Some(V1));
    assert_eq!(samples[0].value, 250.5);
    assert!(samples[1].value.is_nan(), "NaN is data for query()");
    let reqs = server.received_requests().await.expect("recording");
    let f = form(&reqs[0]);
    assert_eq!(f["query"], "max by (task_id) (busy)");
    assert_eq!(f["time"], "1700000000.250");
    let ct = reqs[0]
        .headers
        .get("content-type")
        .map(|v| v.to_str().unwrap_or(""));
    assert_eq!(ct, Some("application/x-www-form-urlencoded"));
}

/// Range queries send start/end/step and decode the matrix.
#[tokio::test]
async fn range_query_decodes_matrix() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/query_range"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "status": "success",
            "data": {"resultType": "matrix", "result": [
                {"metric": {"tm_id": "tm1"}, "values": [[1_700_000_000, "0.5"], [1_700_000_015, "0.75"]]},
                {"metric": {"tm_id": "tm2"}, "values": [[1_700_000_000, "0.25"]]}
            ]}
        })))
        .mount(&server)
        .await;
    let c = client(&server.uri());
    let start = Utc.timestamp_opt(1_700_000_000, 0).single().expect("start");
    let end = Utc.timestamp_opt(1_700_000_015, 0).single().expect("end");
    let series = c
        .query_range("cpu", start, end, Duration::from_secs(15))
        .await
        .expect("range");
    assert_eq!(series.len(), 2);
    assert_eq!(series[0].labels["tm_id"], "tm1");
    let values: Vec<f64> = series[0].points.iter().map(|p| p.1).collect();
    assert_eq!(values, vec![0.5, 0.75]);
    assert_eq!(series[0].points[1].0, end);
    let f = form(&server.received_requests().await.expect("recording")[0]);
    assert_eq!(
        (f["start"].as_str(), f["end"].as_str(), f["step"].as_str()),
        ("1700000000.000", "1700000015.000", "15.000")
    );
}

/// Mounts one response and returns the client's error and how many requests were made.
async fn fail_with(response: ResponseTemplate, retries: u32) -> (QueryError, usize) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(response)
        .mount(&server)
        .await;
    let mut s = settings(&server.uri());
    s.retries = retries;
    s.timeout = Duration::from_millis(300);
    let c = PromClient::new(&prometheus_endpoint(&s)).expect("client");
    let e = c.query("up", None).await.expect_err("must fail");
    let n = server
        .received_requests()
        .await
        .map(|r| r.len())
        .unwrap_or(0);
    (e, n)
}

/// Each failure has its own error type; only unreachable/5xx/429 are retried.
#[tokio::test]
async fn errors_are_typed_and_only_server_errors_retried() {
    let (e, n) = fail_with(
        ResponseTemplate::new(400).set_body_json(json!({
            "status": "error", "errorType": "bad_data",
            "error": "1:5: parse error: unclosed left parenthesis"
        })),
        2,
    )
    .await;
    assert!(
        matches!(&e, QueryError::PromQl { error_type, error } if error_type == "bad_data" && error.contains("unclosed")),
        "{e:?}"
    );
    assert_eq!(
        (e.kind(), n),
        ("promql", 1),
        "PromQL errors are not retried"
    );

    let (e, n) = fail_with(
        ResponseTemplate::new(503).set_body_json(json!({
            "status": "error", "errorType": "timeout", "error": "query timed out in expression evaluation"
        })),
        2,
    )
    .await;
    assert!(
        matches!(&e, QueryError::HttpStatus { status: 503, message: Some(m), .. } if m.contains("query timed out")),
        "{e:?}"
    );
    assert_eq!(n, 3, "1 attempt + 2 retries");

    let (e, n) = fail_with(ResponseTemplate::new(429).set_body_string("slow down"), 1).await;
    assert!(
        matches!(&e, QueryError::HttpStatus { status: 429, .. }),
        "{e:?}"
    );
    assert_eq!(n, 2);

    let (e, n) = fail_with(
        ResponseTemplate::new(404).set_body_string("404 page not found"),
        2,
    )
    .await;
    assert!(
        matches!(&e, QueryError::HttpStatus { status: 404, message: Some(m), .. } if m == "404 page not found"),
        "{e:?}"
    );
    assert_eq!(n, 1);

    let (e, _) = fail_with(
        ResponseTemplate::new(200).set_body_string("<html>proxy login</html>"),
        0,
    )
    .await;
    assert_eq!(e.kind(), "malformed_json", "{e}");

    let (e, _) = fail_with(ok(json!([])), 0).await;
    assert!(
        matches!(&e, QueryError::EmptyResult { query } if query == "up"),
        "{e:?}"
    );

    let (e, n) = fail_with(ok(json!([])).set_delay(Duration::from_secs(2)), 1).await;
    assert!(
        matches!(&e, QueryError::Unreachable { reason, attempts: 2, .. } if reason == "timeout"),
        "{e:?}"
    );
    assert_eq!(n, 2, "timeouts are retried");

    // Connection refused: a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let mut s = settings(&format!("http://127.0.0.1:{port}"));
    s.retries = 2;
    let e = PromClient::new(&prometheus_endpoint(&s))
        .expect("client")
        .query("up", None)
        .await
        .expect_err("refused");
    assert!(
        matches!(&e, QueryError::Unreachable { attempts: 3, .. }),
        "{e:?}"
    );
    assert!(e.is_retryable());
}

/// `query_value` wants exactly one finite value: NaN/Inf and several series are errors.
#[tokio::test]
async fn query_value_rejects_non_finite_and_multiple() {
    for (body, kind) in [
        (json!([sample(json!({}), "NaN")]), "non_finite"),
        (json!([sample(json!({}), "+Inf")]), "non_finite"),
        (
            json!([
                sample(json!({"a": "1"}), "1"),
                sample(json!({"a": "2"}), "2")
            ]),
            "multiple_series",
        ),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ok(body))
            .mount(&server)
            .await;
        let e = client(&server.uri())
            .query_value("x", None)
            .await
            .expect_err(kind);
        assert_eq!(e.kind(), kind, "{e}");
    }
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "status": "success", "data": {"resultType": "scalar", "result": [1_700_000_000.0, "42"]}
        })))
        .mount(&server)
        .await;
    assert_eq!(
        client(&server.uri())
            .query_value("scalar(x)", None)
            .await
            .expect("scalar"),
        42.0
    );
}

fn auth_headers(reqs: &[Request]) -> Vec<String> {
    reqs.iter()
        .map(|r| {
            r.headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

/// A rotated bearer token file is picked up on the next request without rebuilding.
#[tokio::test]
async fn bearer_token_file_is_reread_after_rotation() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ok(json!([sample(json!({}), "1")])))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().expect("tmp");
    let token = dir.path().join("token");
    std::fs::write(&token, "token-one\n").expect("write");
    let mut s = settings(&server.uri());
    s.auth = Some(ServerAuth {
        bearer_token_file: Some(token.clone()),
        basic: None,
    });
    let c = PromClient::new(&prometheus_endpoint(&s)).expect("client");
    c.query("up", None).await.expect("q1");
    c.query("up", None).await.expect("q2");
    std::fs::write(&token, "token-number-two").expect("rotate");
    c.query("up", None).await.expect("q3");
    let got = auth_headers(&server.received_requests().await.expect("recording"));
    assert_eq!(
        got,
        vec![
            "Bearer token-one",
            "Bearer token-one",
            "Bearer token-number-two"
        ]
    );
    std::fs::remove_file(&token).expect("rm");
    let e = c.query("up", None).await.expect_err("token file gone");
    assert_eq!(e.kind(), "credentials");
}

/// Basic auth (RFC 7617 example credentials) from a file or an env var, plus custom headers.
#[tokio::test]
async fn basic_auth_and_custom_headers() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ok(json!([sample(json!({}), "1")])))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().expect("tmp");
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "open sesame\n").expect("write");
    let mut s = settings(&server.uri());
    s.headers.insert("X-Scope-OrgID".into(), "tenant-a".into());
    s.auth = Some(ServerAuth {
        bearer_token_file: None,
        basic: Some(BasicAuthSettings {
            username: "Aladdin".into(),
            password_file: Some(pw),
            password_env: None,
        }),
    });
    PromClient::new(&prometheus_endpoint(&s))
        .expect("client")
        .query("up", None)
        .await
        .expect("file");
    let var = "FKS_TEST_PROM_BASIC_PASSWORD_7617";
    std::env::set_var(var, "open sesame");
    s.auth = Some(ServerAuth {
        bearer_token_file: None,
        basic: Some(BasicAuthSettings {
            username: "Aladdin".into(),
            password_file: None,
            password_env: Some(var.into()),
        }),
    });
    PromClient::new(&prometheus_endpoint(&s))
        .expect("client")
        .query("up", None)
        .await
        .expect("env");
    let reqs = server.received_requests().await.expect("recording");
    // RFC 7617 §2: Aladdin / open sesame → QWxhZGRpbjpvcGVuIHNlc2FtZQ==
    assert_eq!(
        auth_headers(&reqs),
        vec!["Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="; 2]
    );
    for r in &reqs {
        assert_eq!(
            r.headers.get("x-scope-orgid").and_then(|v| v.to_str().ok()),
            Some("tenant-a")
        );
    }
}

/// Secrets never appear in errors or Debug output, even when the server echoes them.
#[tokio::test]
async fn secrets_are_redacted() {
    let secret = "tok-s3cr3t-0123456789";
    let dir = tempfile::tempdir().expect("tmp");
    let token = dir.path().join("token");
    std::fs::write(&token, secret).expect("write");
    for response in [
        ResponseTemplate::new(401).set_body_string(format!("invalid token Bearer {secret}")),
        ResponseTemplate::new(400).set_body_json(json!({
            "status": "error", "errorType": "bad_data", "error": format!("bad header {secret}")
        })),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(response)
            .mount(&server)
            .await;
        let mut s = settings(&server.uri());
        s.auth = Some(ServerAuth {
            bearer_token_file: Some(token.clone()),
            basic: None,
        });
        let c = PromClient::new(&prometheus_endpoint(&s)).expect("client");
        let e = c.query("up", None).await.expect_err("rejected");
        for text in [e.to_string(), format!("{e:?}"), format!("{c:?}")] {
            assert!(!text.contains(secret), "secret leaked: {text}");
        }
        assert!(e.to_string().contains("<redacted>"), "{e}");
    }
}

/// Client build errors name the file or variable at fault.
#[test]
fn build_errors_name_what_is_wrong() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut s = settings("https://prom.example:9090");
    s.auth = Some(ServerAuth {
        bearer_token_file: Some(dir.path().join("missing")),
        basic: None,
    });
    let e = PromClient::new(&prometheus_endpoint(&s)).expect_err("missing token file");
    assert_eq!(e.kind(), "read_file");
    assert!(e.to_string().contains("bearer token file"), "{e}");
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "  \n").expect("write");
    s.auth = Some(ServerAuth {
        bearer_token_file: Some(empty),
        basic: None,
    });
    assert!(matches!(
        PromClient::new(&prometheus_endpoint(&s)),
        Err(ClientBuildError::Files(
            fks_net::FilesError::EmptyCredential { .. }
        ))
    ));
    s.auth = Some(ServerAuth {
        bearer_token_file: None,
        basic: Some(BasicAuthSettings {
            username: "u".into(),
            password_file: None,
            password_env: Some("FKS_TEST_SURELY_UNSET_VAR".into()),
        }),
    });
    let e = PromClient::new(&prometheus_endpoint(&s)).expect_err("unset env");
    assert!(e.to_string().contains("FKS_TEST_SURELY_UNSET_VAR"), "{e}");
    s.auth = None;
    let ca = dir.path().join("ca.pem");
    std::fs::write(
        &ca,
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .expect("write");
    s.tls = Some(ClientTls {
        ca_file: Some(ca),
        ..ClientTls::default()
    });
    let e = PromClient::new(&prometheus_endpoint(&s)).expect_err("bad CA");
    assert!(
        matches!(
            e,
            ClientBuildError::Files(fks_net::FilesError::InvalidPem { what: "CA", .. })
        ),
        "{e:?}"
    );
    s.tls = None;
    s.url = "ftp://x".into();
    let e = PromClient::new(&prometheus_endpoint(&s)).expect_err("bad url");
    assert!(e.to_string().contains("must be http or https"), "{e}");
}

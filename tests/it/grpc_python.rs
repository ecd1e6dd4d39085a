//! An independent client (Python grpcio, stubs generated from the vendored proto at run
//! time) against the in-process keda server: every rpc, health, reflection and an
//! INVALID_ARGUMENT case, asserted on the client's JSON.

use crate::support::{self, grpc_fake};

use flink_keda_scaler::keda::EvalError;
use grpc_fake::{test_settings, Answer, TestServer};

const METADATA: &[(&str, &str)] = &[
    ("flinkRestUrl", "http://orders-rest.flink:8081"),
    ("jobName", "Orders"),
    ("maxTaskManagers", "10"),
    ("scalerAddress", "flink-keda-scaler.keda:9090"),
];

use support::python::field;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpcio_client_sees_every_rpc() {
    let Some(python) = support::python::require_venv() else {
        return;
    };
    let server = TestServer::start(test_settings()).await;
    server.evaluator.set(
        "orders-so",
        Answer::Ok {
            task_managers: 6,
            active: true,
        },
    );
    let out = support::python::run_keda_client(
        &python,
        &server.addr.to_string(),
        "prod",
        "orders-so",
        METADATA,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    support::python::assert_health_and_reflection(&out);

    let expected_name = "flink-taskmanagers-orders-";
    let specs = field(&out, &["getMetricSpec", "metricSpecs"])
        .as_array()
        .unwrap_or_else(|| panic!("no specs in {out:#}"));
    assert_eq!(specs.len(), 1, "{out:#}");
    let name = specs[0]["metricName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    // "Orders" is not lowercase: the name gets a hash suffix to stay unique.
    assert!(name.starts_with(expected_name), "{name}");
    assert!(name.len() <= 63, "{name}");
    assert_eq!(specs[0]["targetSize"], 1);
    assert_eq!(specs[0]["targetSizeFloat"], 1.0);

    for key in ["getMetrics", "getMetricsPrefixedUpper"] {
        let values = field(&out, &[key, "metricValues"])
            .as_array()
            .unwrap_or_else(|| panic!("no values for {key} in {out:#}"));
        assert_eq!(values.len(), 1, "{key}: {out:#}");
        assert_eq!(values[0]["metricValue"], 6, "{key}");
        assert_eq!(values[0]["metricValueFloat"], 6.0, "{key}");
        assert_eq!(values[0]["metricName"], name.as_str(), "{key}");
    }
    assert_eq!(field(&out, &["isActive", "result"]), true, "{out:#}");
    assert_eq!(field(&out, &["streamIsActive", "result"]), true, "{out:#}");
    assert_eq!(
        field(&out, &["streamMetricSpec", "metricSpecs"])[0]["metricName"],
        name.as_str(),
        "{out:#}"
    );

    let invalid = &out["invalidArgument"];
    assert_eq!(invalid["ok"], false, "{out:#}");
    assert_eq!(invalid["code"], "INVALID_ARGUMENT", "{out:#}");
    let details = invalid["details"].as_str().unwrap_or_default();
    assert!(details.contains("'minTaskManager'"), "{details}");
    assert!(
        details.contains("did you mean 'minTaskManagers'"),
        "{details}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpcio_client_sees_upstream_failures_as_unavailable() {
    let Some(python) = support::python::require_venv() else {
        return;
    };
    let server = TestServer::start(test_settings()).await;
    server.evaluator.set(
        "orders-so",
        Answer::Err(EvalError::unavailable(
            "prometheus 'main': connection refused",
        )),
    );
    let out = support::python::run_keda_client(
        &python,
        &server.addr.to_string(),
        "prod",
        "orders-so",
        METADATA,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    // The spec is pure: still served while the upstream is down.
    assert_eq!(field(&out, &["getMetricSpec", "ok"]), true, "{out:#}");
    for key in ["getMetrics", "isActive", "streamIsActive"] {
        assert_eq!(out[key]["ok"], false, "{key}: {out:#}");
        assert_eq!(out[key]["code"], "UNAVAILABLE", "{key}: {out:#}");
        let details = out[key]["details"].as_str().unwrap_or_default();
        assert!(details.contains("connection refused"), "{key}: {details}");
        assert!(details.contains("prod/orders-so"), "{key}: {details}");
    }
}

//! The independent Python grpcio client (`tests/python/keda_client.py`, stubs generated
//! at run time from `proto/externalscaler.proto`) against the BUILT BINARY
//! (`flink-keda-scaler serve` on free ports) evaluating a job of a fake Flink JobManager
//! whose signals come from a real Prometheus scraping a synthetic exporter.
//!
//! Every rpc (health Check, reflection, GetMetricSpec, GetMetrics with the exact and the
//! HPA-style name, IsActive, first StreamIsActive and StreamMetricSpec messages) and an
//! INVALID_ARGUMENT case are asserted on the script's JSON; a second run names a job the
//! JobManager does not have (NOT_FOUND).
//!
//! Run: `cargo test --test it grpc_python_binary:: -- --nocapture` (needs Prometheus and the
//! venv from `scripts/python-venv.sh`; SKIPPED without them, fails in CI).

use crate::support;

use support::{
    fake_flink::SLOTS_PER_TM,
    scaler::{config_yaml, e2e_job, e2e_policy, Load, ScalerProcess},
    stack::Stack,
};

const P: u32 = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpcio_client_against_the_binary() {
    let Some(python) = support::python::require_venv() else {
        return;
    };
    let load = Load {
        rate: 500.0,
        busy: [0.3, 0.3, 0.25],
    };
    // `_exporter`, not `..`: fields a pattern leaves out are dropped at the end of the
    // `let`, and an exporter gone makes Prometheus mark every series stale at its next scrape
    let Some(Stack {
        job,
        prom,
        flink,
        exporter: _exporter,
    }) = Stack::start(e2e_job(P), &load, false).await
    else {
        return;
    };
    let scaler = ScalerProcess::start(&config_yaml(&prom.url(), &e2e_policy(true, 1, 10))).await;
    let url = flink.url();
    let metadata = [
        ("flinkRestUrl", url.as_str()),
        ("jobName", job.job_name.as_str()),
        ("minTaskManagers", "1"),
        ("maxTaskManagers", "10"),
        ("scalerAddress", "flink-keda-scaler.keda:9090"),
    ];
    let out = support::python::run_keda_client(
        &python,
        &scaler.grpc_addr(),
        "prod",
        "orders-so",
        &metadata,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\nscaler log:\n{}", scaler.log()));
    eprintln!("{out:#}");

    // Health and reflection.
    support::python::assert_health_and_reflection(&out);

    // GetMetricSpec: one metric, AverageValue target 1 (value = TaskManagers).
    let spec = &out["getMetricSpec"];
    assert_eq!(spec["ok"], true, "{out:#}");
    let specs = spec["metricSpecs"].as_array().expect("metricSpecs");
    assert_eq!(specs.len(), 1, "{out:#}");
    let name = specs[0]["metricName"].as_str().expect("metricName");
    assert!(!name.is_empty());
    assert_eq!(specs[0]["targetSize"], 1);
    assert_eq!(specs[0]["targetSizeFloat"], 1.0);

    // GetMetrics: what parallelism P needs (one slot sharing group, 2 slots per TM).
    let expected = P.div_ceil(SLOTS_PER_TM);
    for key in ["getMetrics", "getMetricsPrefixedUpper"] {
        let gm = &out[key];
        assert_eq!(gm["ok"], true, "{key}: {out:#}");
        let values = gm["metricValues"].as_array().expect("metricValues");
        assert_eq!(values.len(), 1, "{key}: {out:#}");
        assert_eq!(values[0]["metricName"], name, "{key}: {out:#}");
        assert_eq!(values[0]["metricValue"], expected, "{key}: {out:#}");
        assert_eq!(
            values[0]["metricValueFloat"],
            f64::from(expected),
            "{key}: {out:#}"
        );
    }

    // IsActive and the first StreamIsActive message: active (TaskManagers > 0).
    assert_eq!(out["isActive"]["ok"], true, "{out:#}");
    assert_eq!(out["isActive"]["result"], true, "{out:#}");
    assert_eq!(out["streamIsActive"]["ok"], true, "{out:#}");
    assert_eq!(out["streamIsActive"]["result"], true, "{out:#}");

    // StreamMetricSpec's first message equals GetMetricSpec.
    assert_eq!(out["streamMetricSpec"], out["getMetricSpec"], "{out:#}");

    // Misspelled key → INVALID_ARGUMENT naming it.
    let inv = &out["invalidArgument"];
    assert_eq!(inv["ok"], false, "{out:#}");
    assert_eq!(inv["code"], "INVALID_ARGUMENT", "{out:#}");
    assert!(
        inv["details"]
            .as_str()
            .is_some_and(|d| d.contains("minTaskManager")),
        "{out:#}"
    );

    // A job the JobManager does not have: the spec is still served (pure function of the
    // metadata), evaluations are NOT_FOUND.
    let missing = [
        ("flinkRestUrl", url.as_str()),
        ("jobName", "no-such-job"),
        ("maxTaskManagers", "10"),
    ];
    let out = support::python::run_keda_client(
        &python,
        &scaler.grpc_addr(),
        "prod",
        "missing-so",
        &missing,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out["getMetricSpec"]["ok"], true, "{out:#}");
    for key in ["getMetrics", "isActive"] {
        assert_eq!(out[key]["ok"], false, "{key}: {out:#}");
        assert_eq!(out[key]["code"], "NOT_FOUND", "{key}: {out:#}");
        assert!(
            out[key]["details"]
                .as_str()
                .is_some_and(|d| d.contains("no-such-job")),
            "{key}: {out:#}"
        );
    }
    // No PUT was ever sent (dry run, steady load).
    assert!(flink.puts().is_empty());
}

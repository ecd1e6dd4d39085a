//! The KEDA external-scaler service over real gRPC (in-process tonic server on
//! 127.0.0.1:0, fake evaluator, generated client): every rpc, every error code, metric
//! name matching, streaming, shutdown, health and reflection.

use crate::support::grpc_fake;

use std::time::{Duration, Instant};

use flink_keda_scaler::keda::{pb::ScaledObjectRef, EvalError, ServeOptions};
use grpc_fake::{metrics_request, so_ref, test_settings, valid_metadata, Answer, TestServer};
use tokio_stream::StreamExt;
use tonic::Code;

mod streams;

fn valid_ref(name: &str) -> ScaledObjectRef {
    let md: Vec<(&str, &str)> = valid_metadata().into_iter().collect();
    so_ref("prod", name, &md)
}

const ORDERS_METRIC: &str = "flink-taskmanagers-orders";

#[tokio::test]
async fn get_metric_spec_is_pure_and_has_one_spec_with_target_one() {
    let server = TestServer::start(test_settings()).await;
    let mut client = server.client().await;
    let spec = client
        .get_metric_spec(valid_ref("orders-so"))
        .await
        .expect("GetMetricSpec")
        .into_inner();
    assert_eq!(spec.metric_specs.len(), 1);
    let s = &spec.metric_specs[0];
    assert_eq!(s.metric_name, ORDERS_METRIC);
    #[allow(deprecated)]
    let target_size = s.target_size;
    assert_eq!(target_size, 1);
    assert_eq!(s.target_size_float, 1.0);
    assert_eq!(
        server.evaluator.calls(),
        0,
        "GetMetricSpec must not evaluate"
    );

    // Without a job selector the name is the bare prefix; it is stable across calls.
    let bare = so_ref("prod", "any", &[("flinkRestUrl", "https://jm:8081")]);
    let a = client
        .get_metric_spec(bare.clone())
        .await
        .expect("spec")
        .into_inner();
    let b = client
        .get_metric_spec(bare)
        .await
        .expect("spec")
        .into_inner();
    assert_eq!(a.metric_specs[0].metric_name, "flink-taskmanagers");
    assert_eq!(a, b);
}

#[tokio::test]
async fn get_metrics_returns_exactly_one_value_with_both_fields() {
    let server = TestServer::start(test_settings()).await;
    server.evaluator.set(
        "orders-so",
        Answer::Ok {
            task_managers: 7,
            active: true,
        },
    );
    let mut client = server.client().await;
    let resp = client
        .get_metrics(metrics_request(valid_ref("orders-so"), ORDERS_METRIC))
        .await
        .expect("GetMetrics")
        .into_inner();
    assert_eq!(resp.metric_values.len(), 1);
    let v = &resp.metric_values[0];
    assert_eq!(v.metric_name, ORDERS_METRIC);
    #[allow(deprecated)]
    let int_value = v.metric_value;
    assert_eq!(int_value, 7);
    assert_eq!(v.metric_value_float, 7.0);
}

#[tokio::test]
async fn metric_name_matches_case_insensitively_with_or_without_index_prefix() {
    let server = TestServer::start(test_settings()).await;
    server.evaluator.set(
        "orders-so",
        Answer::Ok {
            task_managers: 3,
            active: true,
        },
    );
    let mut client = server.client().await;
    for name in [
        ORDERS_METRIC.to_string(),
        ORDERS_METRIC.to_uppercase(),
        format!("s0-{ORDERS_METRIC}"),
        format!("S12-{}", ORDERS_METRIC.to_uppercase()),
    ] {
        let resp = client
            .get_metrics(metrics_request(valid_ref("orders-so"), &name))
            .await
            .unwrap_or_else(|e| panic!("GetMetrics({name}): {e}"))
            .into_inner();
        assert_eq!(resp.metric_values[0].metric_value_float, 3.0, "{name}");
    }
    for wrong in [
        "",
        "flink-taskmanagers",
        "s0-other",
        "s-flink-taskmanagers-orders",
    ] {
        let err = client
            .get_metrics(metrics_request(valid_ref("orders-so"), wrong))
            .await
            .expect_err(wrong);
        assert_eq!(err.code(), Code::InvalidArgument, "{wrong}: {err:?}");
        assert!(err.message().contains("'metricName'"), "{}", err.message());
        assert!(err.message().contains(ORDERS_METRIC), "{}", err.message());
    }
}

#[tokio::test]
async fn is_active_reports_the_evaluator_activity() {
    let server = TestServer::start(test_settings()).await;
    let mut client = server.client().await;
    for active in [true, false] {
        server.evaluator.set(
            "orders-so",
            Answer::Ok {
                task_managers: 2,
                active,
            },
        );
        let r = client
            .is_active(valid_ref("orders-so"))
            .await
            .expect("IsActive")
            .into_inner();
        assert_eq!(r.result, active);
    }
}

#[tokio::test]
async fn bad_metadata_is_invalid_argument_naming_the_key_on_every_rpc() {
    let server = TestServer::start(test_settings()).await;
    let mut client = server.client().await;
    let typo = so_ref("prod", "orders-so", &[("minTaskManager", "2")]);

    let errors = vec![
        client
            .get_metric_spec(typo.clone())
            .await
            .expect_err("spec"),
        client.is_active(typo.clone()).await.expect_err("active"),
        client
            .get_metrics(metrics_request(typo.clone(), "flink-taskmanagers"))
            .await
            .expect_err("metrics"),
        client
            .stream_is_active(typo.clone())
            .await
            .expect_err("stream active"),
        client
            .stream_metric_spec(typo)
            .await
            .expect_err("stream spec"),
    ];
    for err in errors {
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert!(
            err.message().contains("'minTaskManager'"),
            "{}",
            err.message()
        );
        assert!(
            err.message().contains("did you mean 'minTaskManagers'"),
            "{}",
            err.message()
        );
    }
    assert_eq!(server.evaluator.calls(), 0);

    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: &[Case] = &[
        (&[("minTaskManagers", "0")], "minTaskManagers", ">= 1"),
        (&[("maxTaskManagers", "ten")], "maxTaskManagers", "'ten'"),
        (
            &[("minTaskManagers", "5"), ("maxTaskManagers", "2")],
            "minTaskManagers",
            "<= maxTaskManagers",
        ),
        (
            &[
                ("jobName", "a"),
                ("jobId", "0123456789abcdef0123456789abcdef"),
            ],
            "jobId",
            "mutually exclusive",
        ),
        (&[("jobId", "xyz")], "jobId", "32 hex"),
        (
            &[("flinkRestUrl", "ftp://jm:8081")],
            "flinkRestUrl",
            "http or https",
        ),
        (
            &[("targetUtilization", "1.5")],
            "targetUtilization",
            "(0, 1]",
        ),
        (&[("catchUpDuration", "0s")], "catchUpDuration", "> 0"),
        (&[("dryRun", "yes")], "dryRun", "'true' or 'false'"),
        (&[("busyTimeQuery", "  ")], "busyTimeQuery", "empty"),
        (&[("fooQuery", "up")], "fooQuery", "unknown"),
    ];
    for (md, key, needle) in cases {
        let err = client
            .get_metric_spec(so_ref("prod", "orders-so", md))
            .await
            .expect_err(key);
        assert_eq!(err.code(), Code::InvalidArgument, "{md:?}");
        assert!(
            err.message().contains(&format!("'{key}'")),
            "{md:?}: {}",
            err.message()
        );
        assert!(err.message().contains(needle), "{md:?}: {}", err.message());
    }

    for (ns, name, key) in [("", "so", "namespace"), ("prod", " ", "name")] {
        let err = client
            .get_metric_spec(so_ref(ns, name, &[]))
            .await
            .expect_err(key);
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(
            err.message().contains(&format!("'{key}'")),
            "{}",
            err.message()
        );
    }

    let missing_ref = flink_keda_scaler::keda::pb::GetMetricsRequest {
        scaled_object_ref: None,
        metric_name: "flink-taskmanagers".into(),
    };
    let err = client.get_metrics(missing_ref).await.expect_err("no ref");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("'scaledObjectRef'"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn evaluator_errors_map_to_grpc_codes_with_their_cause() {
    let server = TestServer::start(test_settings()).await;
    let mut client = server.client().await;
    let cases = [
        (
            "inv",
            Answer::Err(EvalError::invalid_argument(
                "policy",
                "no policy named 'fast' in the config",
            )),
            Code::InvalidArgument,
            "'policy'",
        ),
        (
            "nf",
            Answer::Err(EvalError::not_found("no running job named 'orders'")),
            Code::NotFound,
            "no running job named 'orders'",
        ),
        (
            "down",
            Answer::Err(EvalError::unavailable("prometheus: connection refused")),
            Code::Unavailable,
            "connection refused",
        ),
        (
            "bug",
            Answer::Err(EvalError::internal("decision missing")),
            Code::Internal,
            "decision missing",
        ),
        (
            "zero",
            Answer::Ok {
                task_managers: 0,
                active: true,
            },
            Code::Internal,
            "refusing to publish 0",
        ),
        (
            "stale",
            Answer::Stale {
                task_managers: 4,
                age: Duration::from_secs(600),
            },
            Code::Unavailable,
            "stale",
        ),
    ];
    for (name, answer, code, needle) in cases {
        server.evaluator.set(name, answer);
        let m = client
            .get_metrics(metrics_request(valid_ref(name), ORDERS_METRIC))
            .await
            .expect_err(name);
        let a = client.is_active(valid_ref(name)).await.expect_err(name);
        for err in [m, a] {
            assert_eq!(err.code(), code, "{name}: {err:?}");
            assert!(err.message().contains(needle), "{name}: {}", err.message());
            assert!(
                err.message().contains(&format!("prod/{name}")),
                "{}",
                err.message()
            );
        }
    }
    // Unknown ScaledObject: the fake answers NOT_FOUND.
    let err = client
        .is_active(valid_ref("nobody"))
        .await
        .expect_err("nobody");
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn a_hanging_evaluator_times_out_as_unavailable() {
    let server = TestServer::start(test_settings()).await;
    server.evaluator.set("hung", Answer::Hang);
    let mut client = server.client().await;
    let started = Instant::now();
    let err = client
        .get_metrics(metrics_request(valid_ref("hung"), ORDERS_METRIC))
        .await
        .expect_err("hung");
    assert_eq!(err.code(), Code::Unavailable);
    assert!(
        err.message()
            .contains("evaluation of prod/hung timed out after 300ms"),
        "{}",
        err.message()
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let err = client.is_active(valid_ref("hung")).await.expect_err("hung");
    assert_eq!(err.code(), Code::Unavailable);
}

#[tokio::test]
async fn every_rpc_is_observed_with_its_final_code() {
    let server = TestServer::start(test_settings()).await;
    server.evaluator.set(
        "ok",
        Answer::Ok {
            task_managers: 2,
            active: true,
        },
    );
    let mut client = server.client().await;
    client.get_metric_spec(valid_ref("ok")).await.expect("spec");
    client
        .get_metrics(metrics_request(valid_ref("ok"), ORDERS_METRIC))
        .await
        .expect("metrics");
    client.is_active(valid_ref("ok")).await.expect("active");
    let _ = client.is_active(valid_ref("missing")).await;
    let _ = client
        .get_metric_spec(so_ref("prod", "x", &[("bogus", "1")]))
        .await;
    let seen = server.observer.seen();
    for expected in [
        ("GetMetricSpec", Code::Ok),
        ("GetMetrics", Code::Ok),
        ("IsActive", Code::Ok),
        ("IsActive", Code::NotFound),
        ("GetMetricSpec", Code::InvalidArgument),
    ] {
        assert!(seen.contains(&expected), "{expected:?} not in {seen:?}");
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
}

#[tokio::test]
async fn oversized_requests_are_rejected() {
    let server = TestServer::start(test_settings()).await;
    let mut client = server.client().await;
    let huge = "x".repeat(512 * 1024);
    let err = client
        .get_metric_spec(so_ref("prod", "big", &[("busyTimeQuery", &huge)]))
        .await
        .expect_err("oversized");
    // tonic reports an over-limit message as OUT_OF_RANGE.
    assert_eq!(err.code(), Code::OutOfRange, "{err:?}");
    assert!(err.message().contains("too large"), "{}", err.message());
}

#[tokio::test]
async fn health_serves_both_names_and_turns_not_serving_on_shutdown() {
    use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
    let options = ServeOptions {
        shutdown_grace: Duration::from_millis(300),
        ..ServeOptions::default()
    };
    let mut server = TestServer::start_with(test_settings(), options).await;
    let mut health = HealthClient::new(server.channel().await);
    for service in ["", "externalscaler.ExternalScaler"] {
        let r = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("Check")
            .into_inner();
        assert_eq!(r.status, 1, "SERVING expected for '{service}'");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "nope".into(),
        })
        .await
        .expect_err("unknown service");
    assert_eq!(unknown.code(), Code::NotFound);

    // A Watch stream sees NOT_SERVING at shutdown; the grace period bounds the shutdown
    // although tonic-health never ends that stream itself.
    let mut watch = health
        .watch(HealthCheckRequest {
            service: "externalscaler.ExternalScaler".into(),
        })
        .await
        .expect("Watch")
        .into_inner();
    assert_eq!(watch.next().await.expect("msg").expect("ok").status, 1);
    server.begin_stop();
    let next = tokio::time::timeout(Duration::from_secs(2), watch.next())
        .await
        .expect("status change in time")
        .expect("msg")
        .expect("ok");
    assert_eq!(next.status, 2, "NOT_SERVING expected");
    server
        .stop(Duration::from_secs(3))
        .await
        .expect("serve returns Ok after the grace period");
}

#[tokio::test]
async fn reflection_lists_and_describes_the_services() {
    use tonic_reflection::pb::v1::{
        server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        ServerReflectionRequest,
    };
    let server = TestServer::start(test_settings()).await;
    let mut client = ServerReflectionClient::new(server.channel().await);
    let requests = vec![
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        },
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "externalscaler.ExternalScaler".into(),
            )),
        },
    ];
    let mut responses = client
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .expect("reflection")
        .into_inner();
    let list = responses.next().await.expect("list").expect("ok");
    let Some(MessageResponse::ListServicesResponse(list)) = list.message_response else {
        panic!("unexpected response {list:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "externalscaler.ExternalScaler",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} not in {names:?}"
        );
    }
    let file = responses.next().await.expect("file").expect("ok");
    let Some(MessageResponse::FileDescriptorResponse(fd)) = file.message_response else {
        panic!("unexpected response {file:?}");
    };
    assert!(!fd.file_descriptor_proto.is_empty());
    let raw = String::from_utf8_lossy(&fd.file_descriptor_proto[0]).to_string();
    assert!(raw.contains("externalscaler.proto"), "{raw}");
    assert!(raw.contains("StreamIsActive"), "{raw}");
}

//! `read_signals` against the fake: one query per signal over a two-vertex topology,
//! optional failures as issues, required failures as errors naming the signal.

use super::*;

fn topology() -> Topology {
    let v = |id: &str, name: &str| Vertex {
        id: VertexId::new(id),
        name: name.into(),
        parallelism: 2,
        max_parallelism: 128,
        slot_sharing_group: None,
    };
    Topology {
        vertices: vec![v(V1, "Source: events"), v(V2, "Sink: out")],
        edges: vec![Edge {
            from: VertexId::new(V1),
            to: VertexId::new(V2),
            ship_strategy: ShipStrategy::Hash,
        }],
    }
}

/// Every signal's query replaced by `q_<signal>{job_id="..."}` so a fake can answer
/// each signal separately.
fn tagged_queries() -> SignalQueries {
    let overrides: BTreeMap<Signal, String> = Signal::ALL
        .into_iter()
        .map(|s| (s, format!(r#"q_{}{{job_id="{{{{job_id}}}}"}}"#, s.name())))
        .collect();
    SignalQueries::defaults()
        .with_overrides(&overrides)
        .expect("overrides")
}

async fn answer(server: &MockServer, signal: Signal, response: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(body_string_contains(format!("q_{}%7B", signal.name())))
        .respond_with(response)
        .with_priority(2)
        .mount(server)
        .await;
}

/// A fake where busyTime/recordsIn answer per vertex and everything else is empty.
async fn healthy_fake() -> MockServer {
    let server = MockServer::start().await;
    let per_vertex = |a: &str, b: &str| {
        ok(json!([
            sample(json!({"task_id": V1}), a),
            sample(json!({"task_id": V2}), b)
        ]))
    };
    answer(&server, Signal::BusyTime, per_vertex("700", "NaN")).await;
    answer(&server, Signal::RecordsIn, per_vertex("1000", "990")).await;
    answer(
        &server,
        Signal::CpuLoad,
        ok(json!([
            sample(json!({"tm_id": "tm-b"}), "0.5"),
            sample(json!({"tm_id": "tm-a"}), "0.25")
        ])),
    )
    .await;
    answer(
        &server,
        Signal::NumRestarts,
        ok(json!([sample(json!({}), "3")])),
    )
    .await;
    // an optional signal whose (overridden) query is broken
    answer(
        &server,
        Signal::GcTime,
        ResponseTemplate::new(400).set_body_json(
            json!({"status": "error", "errorType": "bad_data", "error": "parse error"}),
        ),
    )
    .await;
    Mock::given(method("POST"))
        .respond_with(ok(json!([])))
        .with_priority(10)
        .mount(&server)
        .await;
    server
}

/// One query per signal regardless of the vertex count; optional failures become
/// issues; values land on the right vertex/TM/job field; NaN is kept.
#[tokio::test]
async fn read_signals_one_query_per_signal() {
    let server = healthy_fake().await;
    let c = client(&server.uri());
    let read = read_signals(
        &c,
        &tagged_queries(),
        &JobVars::new(JOB, "j"),
        &topology(),
        &ReadOptions::default(),
    )
    .await
    .expect("read");
    let requests = server.received_requests().await.expect("recording").len();
    assert_eq!(
        (read.query_count(), requests),
        (Signal::ALL.len(), Signal::ALL.len())
    );
    let v1 = &read.vertices[&VertexId::new(V1)];
    assert_eq!(
        (v1.busy_ms_per_s, v1.records_in_per_s, v1.pending_records),
        (Some(700.0), Some(1000.0), None)
    );
    assert!(read.vertices[&VertexId::new(V2)]
        .busy_ms_per_s
        .is_some_and(f64::is_nan));
    let tms: Vec<(&str, Option<f64>)> = read
        .task_managers
        .iter()
        .map(|t| (t.tm_id.as_str(), t.cpu_load))
        .collect();
    assert_eq!(tms, vec![("tm-a", Some(0.25)), ("tm-b", Some(0.5))]);
    assert_eq!(read.job.num_restarts, Some(3.0));
    let kinds: BTreeMap<Signal, &str> = read.issues.iter().map(|i| (i.signal, i.kind)).collect();
    assert_eq!(kinds[&Signal::GcTime], "promql");
    assert_eq!(kinds[&Signal::PendingRecords], "empty_result");
    assert_eq!(kinds[&Signal::BusyTime], "non_finite");
    let stat = read
        .queries
        .iter()
        .find(|q| q.signal == Signal::BusyTime)
        .expect("stat");
    assert_eq!((stat.series, stat.outcome), (2, "ok"));

    // Disabling an optional signal removes its query.
    let mut off = BTreeMap::new();
    off.insert(Signal::PendingRecords, String::new());
    let fewer = tagged_queries().with_overrides(&off).expect("disable");
    let read = read_signals(
        &c,
        &fewer,
        &JobVars::new(JOB, "j"),
        &topology(),
        &ReadOptions::default(),
    )
    .await
    .expect("read");
    assert_eq!(read.query_count(), Signal::ALL.len() - 1);
}

/// Required-signal failures are errors naming the signal (and vertex); timeouts are
/// bounded by the read deadline.
#[tokio::test]
async fn required_signal_failures_are_errors() {
    let vars = JobVars::new(JOB, "j");
    let q = tagged_queries();
    let opts = ReadOptions::default();

    let server = healthy_fake().await;
    Mock::given(method("POST"))
        .and(body_string_contains("q_recordsIn%7B"))
        .respond_with(ResponseTemplate::new(502).set_body_string("bad gateway"))
        .with_priority(1)
        .mount(&server)
        .await;
    let mut s = settings(&server.uri());
    s.retries = 0;
    let c = PromClient::new(&prometheus_endpoint(&s)).expect("client");
    let e = read_signals(&c, &q, &vars, &topology(), &opts)
        .await
        .expect_err("502");
    assert_eq!((e.signal, e.kind()), (Signal::RecordsIn, "http_status"));
    assert!(
        e.to_string().starts_with(&format!(
            "signal recordsIn: query for job {JOB} failed: Prometheus at"
        )),
        "{e}"
    );

    let cases: Vec<(ResponseTemplate, &str, &str)> = vec![
        (
            ok(json!([sample(json!({"task_id": V1}), "1")])),
            "missing_vertex",
            "no series for vertex 0a448493b4782967b150582570326227 (Sink: out)",
        ),
        (
            ok(json!([sample(json!({}), "1")])),
            "missing_label",
            "no series carries the label task_id",
        ),
        (
            ok(json!([
                sample(json!({"task_id": V1, "subtask_index": "0"}), "1"),
                sample(json!({"task_id": V1, "subtask_index": "1"}), "2")
            ])),
            "duplicate_series",
            "2 series for task_id=bc764cd8ddf7a0cff126f51c16239658",
        ),
        (
            ok(json!([])),
            "empty_result",
            "query returned no series for job a1b2c3d4e5f60718293a4b5c6d7e8f90",
        ),
    ];
    for (response, kind, text) in cases {
        let server = healthy_fake().await;
        Mock::given(method("POST"))
            .and(body_string_contains("q_busyTime%7B"))
            .respond_with(response)
            .with_priority(1)
            .mount(&server)
            .await;
        let e = read_signals(&client(&server.uri()), &q, &vars, &topology(), &opts)
            .await
            .expect_err(kind);
        assert_eq!((e.signal, e.kind()), (Signal::BusyTime, kind), "{e}");
        assert!(e.to_string().contains(text), "{e}");
    }

    // Slow server: the read deadline bounds the whole read.
    let server = healthy_fake().await;
    Mock::given(method("POST"))
        .and(body_string_contains("q_busyTime%7B"))
        .respond_with(ok(json!([])).set_delay(Duration::from_secs(5)))
        .with_priority(1)
        .mount(&server)
        .await;
    let started = std::time::Instant::now();
    let short = ReadOptions {
        timeout: Duration::from_millis(300),
        ..ReadOptions::default()
    };
    let e = read_signals(&client(&server.uri()), &q, &vars, &topology(), &short)
        .await
        .expect_err("slow");
    assert!(matches!(e.source, SignalErrorKind::Timeout { .. }), "{e}");
    assert_eq!(e.signal, Signal::BusyTime);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "bounded: {:?}",
        started.elapsed()
    );
}

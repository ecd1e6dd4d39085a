//! Flink REST client, PUT discipline and driver against a fake JobManager (wiremock)
//! serving responses recorded from real Flink clusters (`tests/fixtures/flink/<version>/`,
//! recorded with `FKS_RECORD_FIXTURES=1 cargo test --test it flink_rescale::record_fixtures --
//! --ignored`), plus fault injection: 409, 400, 500, unknown job, slow responses.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    time::{Duration, Instant},
};

use flink_keda_scaler::{
    core::{JobId, JobSelector, Plan, RescalePhase, ShipStrategy, VertexId},
    flink::{apply_target, ClientOptions, FlinkClient, RequirementsChange},
    runtime::apply::{ApplyOptions, Rescaler},
};
use serde_json::{json, Value};
use wiremock::{
    matchers::{method, path},
    Mock, MockServer, Request, ResponseTemplate,
};

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/flink")
}

/// Versions with recorded fixtures.
fn versions() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(fixture_dir())
        .expect("tests/fixtures/flink exists")
        .flatten()
        .filter(|e| e.path().join("job.json").is_file())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no recorded Flink fixtures");
    v
}

/// (status, body) of a recorded response.
fn fixture(version: &str, name: &str) -> (u16, Value) {
    let p = fixture_dir().join(version).join(format!("{name}.json"));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let v: Value = serde_json::from_str(&text).expect("fixture JSON");
    (
        v["status"].as_u64().expect("status") as u16,
        v["body"].clone(),
    )
}

fn respond(version: &str, name: &str) -> ResponseTemplate {
    let (status, body) = fixture(version, name);
    ResponseTemplate::new(status).set_body_json(body)
}

fn job_id(version: &str) -> JobId {
    fixture(version, "job").1["jid"]
        .as_str()
        .expect("jid")
        .parse()
        .expect("a job id")
}

fn client(server: &MockServer) -> FlinkClient {
    FlinkClient::new(
        &server.uri(),
        ClientOptions {
            request_timeout: Duration::from_millis(800),
            connect_timeout: Duration::from_millis(500),
            get_retries: 0,
            ..ClientOptions::default()
        },
    )
    .expect("client")
}

/// Mounts the recorded GETs of a healthy running job.
async fn mount_job(server: &MockServer, version: &str) -> JobId {
    let job = job_id(version);
    for (p, name) in [
        ("/overview".to_string(), "overview"),
        ("/jobs/overview".to_string(), "jobs_overview"),
        (format!("/jobs/{job}"), "job"),
        (format!("/jobs/{job}/plan"), "plan"),
        (format!("/jobs/{job}/exceptions"), "exceptions_empty"),
        ("/taskmanagers".to_string(), "taskmanagers"),
        (
            format!("/jobs/{job}/checkpoints/config"),
            "checkpoints_config",
        ),
        (format!("/jobs/{job}/checkpoints"), "checkpoints"),
        (format!("/jobs/{job}/metrics"), "job_metrics"),
    ] {
        Mock::given(method("GET"))
            .and(path(p))
            .respond_with(respond(version, name))
            .mount(server)
            .await;
    }
    job
}

fn requirements_with(version: &str, lower: i64, upper: i64) -> Value {
    let (_, body) = fixture(version, "resource_requirements");
    let map = body.as_object().expect("requirements object");
    map.keys()
        .map(|k| {
            (
                k.clone(),
                json!({"parallelism": {"lowerBound": lower, "upperBound": upper}}),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

#[tokio::test]
async fn topology_joins_details_and_plan_for_every_recorded_version() {
    for v in versions() {
        let server = MockServer::start().await;
        let job = mount_job(&server, &v).await;
        let topo = client(&server).topology(&job).await.expect("topology");
        let details = fixture(&v, "job").1;
        let vertices = details["vertices"].as_array().expect("vertices");
        assert_eq!(topo.vertices.len(), vertices.len(), "{v}");
        for (tv, fv) in topo.vertices.iter().zip(vertices) {
            assert_eq!(tv.id.as_str(), fv["id"].as_str().expect("id"));
            assert_eq!(
                u64::from(tv.parallelism),
                fv["parallelism"].as_u64().expect("p")
            );
            assert_eq!(
                u64::from(tv.max_parallelism),
                fv["maxParallelism"].as_u64().expect("max")
            );
            assert_eq!(
                tv.slot_sharing_group.as_deref(),
                fv["slotSharingGroupId"].as_str()
            );
        }
        // the load job: topic source --HASH--> count -> sink
        assert_eq!(topo.edges.len(), 1, "{v}: {topo:?}");
        assert_eq!(topo.edges[0].ship_strategy, ShipStrategy::Hash);
        assert!(topo.is_source(&topo.edges[0].from));
        assert!(topo.is_keyed(&topo.edges[0].to));
    }
}

#[tokio::test]
async fn flink_1_18_raw_json_plan_is_unwrapped() {
    let v = versions().pop().expect("a version");
    let job = job_id(&v);
    let (_, mut details) = fixture(&v, "job");
    // Flink 1.17–1.18 serialized the embedded plan as RawJson{json='…'}
    let plan_text = serde_json::to_string(&details["plan"]).expect("plan");
    details["plan"] = Value::String(format!("RawJson{{json='{plan_text}'}}"));
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/jobs/{job}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(&details))
        .mount(&server)
        .await;
    // /plan must not be needed
    Mock::given(method("GET"))
        .and(path(format!("/jobs/{job}/plan")))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let topo = client(&server).topology(&job).await.expect("topology");
    assert_eq!(topo.edges.len(), 1);
    assert_eq!(topo.edges[0].ship_strategy, ShipStrategy::Hash);
}

#[tokio::test]
async fn put_sends_every_vertex_and_never_raises_the_lower_bound() {
    for v in versions() {
        let server = MockServer::start().await;
        let job = mount_job(&server, &v).await;
        let rpath = format!("/jobs/{job}/resource-requirements");
        // current: lower 2, upper 2 on every vertex
        Mock::given(method("GET"))
            .and(path(&rpath))
            .respond_with(ResponseTemplate::new(200).set_body_json(requirements_with(&v, 2, 2)))
            .mount(&server)
            .await;
        Mock::given(method("PUT"))
            .and(path(&rpath))
            .respond_with(respond(&v, "put_ok"))
            .expect(2)
            .mount(&server)
            .await;
        let c = client(&server);
        let topo = c.topology(&job).await.expect("topology");
        let ids: Vec<VertexId> = topo.vertices.iter().map(|x| x.id.clone()).collect();
        let up: BTreeMap<VertexId, u32> = ids.iter().map(|id| (id.clone(), 4)).collect();
        let down: BTreeMap<VertexId, u32> = ids.iter().map(|id| (id.clone(), 1)).collect();
        assert!(matches!(
            apply_target(&c, &job, &up, &BTreeMap::new(), false).await,
            Ok(RequirementsChange::Updated(_))
        ));
        apply_target(&c, &job, &down, &BTreeMap::new(), false)
            .await
            .expect("down");
        let puts: Vec<Request> = server
            .received_requests()
            .await
            .expect("recording")
            .into_iter()
            .filter(|r| r.method.as_str() == "PUT")
            .collect();
        let bodies: Vec<Value> = puts
            .iter()
            .map(|r| r.body_json().expect("json body"))
            .collect();
        for (body, (lower, upper)) in bodies.iter().zip([(2, 4), (1, 1)]) {
            let map = body.as_object().expect("object");
            assert_eq!(map.len(), ids.len(), "every vertex is sent: {body}");
            for id in &ids {
                assert_eq!(
                    body[id.as_str()]["parallelism"],
                    json!({"lowerBound": lower, "upperBound": upper})
                );
            }
        }
    }
}

#[tokio::test]
async fn no_put_when_at_target_and_none_in_dry_run() {
    let v = versions().pop().expect("a version");
    let server = MockServer::start().await;
    let job = mount_job(&server, &v).await;
    let rpath = format!("/jobs/{job}/resource-requirements");
    Mock::given(method("GET"))
        .and(path(&rpath))
        .respond_with(ResponseTemplate::new(200).set_body_json(requirements_with(&v, 1, 2)))
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path(&rpath))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let c = client(&server);
    let topo = c.topology(&job).await.expect("topology");
    let at: BTreeMap<VertexId, u32> = topo.vertices.iter().map(|x| (x.id.clone(), 2)).collect();
    let more: BTreeMap<VertexId, u32> = topo.vertices.iter().map(|x| (x.id.clone(), 3)).collect();
    assert_eq!(
        apply_target(&c, &job, &at, &BTreeMap::new(), false)
            .await
            .expect("ok"),
        RequirementsChange::Unchanged
    );
    match apply_target(&c, &job, &more, &BTreeMap::new(), true)
        .await
        .expect("dry run")
    {
        RequirementsChange::WouldUpdate(body) => {
            assert!(body
                .values()
                .all(|r| r.parallelism.upper_bound == 3 && r.parallelism.lower_bound == 1))
        }
        other => panic!("expected WouldUpdate, got {other:?}"),
    }
    // the driver in dry run reports, stays Pending, never PUTs
    let plan = Plan {
        parallelism: more,
        task_managers: 2,
    };
    let opts = ApplyOptions {
        dry_run: true,
        ..ApplyOptions::default()
    };
    let r = Rescaler::start(&c, &job, plan, &opts, None)
        .await
        .expect("dry run start");
    assert_eq!(r.phase(), RescalePhase::Pending);
    assert!(matches!(r.change(), RequirementsChange::WouldUpdate(_)));
}

#[tokio::test]
async fn recorded_error_responses_map_to_typed_errors() {
    for v in versions() {
        let job = job_id(&v);
        let rpath = format!("/jobs/{job}/resource-requirements");
        let cases = [
            ("put_missing_vertex", "bad_request", "missing job vertex"),
            (
                "put_over_max_parallelism",
                "bad_request",
                "exceeds its maximum parallelism",
            ),
            ("put_lower_above_upper", "bad_request", "lower bound"),
        ];
        for (name, kind, text) in cases {
            let server = MockServer::start().await;
            Mock::given(method("GET"))
                .and(path(&rpath))
                .respond_with(ResponseTemplate::new(200).set_body_json(requirements_with(&v, 1, 1)))
                .mount(&server)
                .await;
            Mock::given(method("PUT"))
                .and(path(&rpath))
                .respond_with(respond(&v, name))
                .mount(&server)
                .await;
            let c = client(&server);
            let body = c.resource_requirements(&job).await.expect("get");
            let e = c
                .put_resource_requirements(&job, &body)
                .await
                .expect_err(name);
            assert_eq!(e.kind(), kind, "{v} {name}: {e}");
            assert!(
                e.to_string().contains(text),
                "{v} {name}: Flink's message surfaces: {e}"
            );
        }
        // a job the cluster does not know
        let server = MockServer::start().await;
        let unknown: JobId = "00000000000000000000000000000000"
            .parse()
            .expect("a job id");
        Mock::given(method("GET"))
            .and(path(format!("/jobs/{unknown}")))
            .respond_with(respond(&v, "job_unknown"))
            .mount(&server)
            .await;
        Mock::given(method("PUT"))
            .and(path(format!("/jobs/{unknown}/resource-requirements")))
            .respond_with(respond(&v, "put_unknown_job"))
            .mount(&server)
            .await;
        let c = client(&server);
        assert_eq!(
            c.job(&unknown).await.expect_err("unknown").kind(),
            "job_gone",
            "{v}"
        );
        let e = c
            .put_resource_requirements(&unknown, &BTreeMap::new())
            .await
            .expect_err("unknown");
        assert_eq!(e.kind(), "job_gone", "{v}: {e}");
        // default scheduler
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(&rpath))
            .respond_with(respond(&v, "default_scheduler_get_requirements"))
            .mount(&server)
            .await;
        Mock::given(method("PUT"))
            .and(path(&rpath))
            .respond_with(respond(&v, "default_scheduler_put_requirements"))
            .mount(&server)
            .await;
        let c = client(&server);
        let target: BTreeMap<VertexId, u32> = BTreeMap::new();
        let e = apply_target(&c, &job, &target, &BTreeMap::new(), false)
            .await
            .expect_err("default scheduler");
        assert_eq!(e.kind(), "adaptive_scheduler_required", "{v}: {e}");
        assert!(e.to_string().contains("jobmanager.scheduler: adaptive"));
    }
}

#[tokio::test]
async fn conflict_is_typed_and_the_driver_retries_it() {
    let v = versions().pop().expect("a version");
    let server = MockServer::start().await;
    let job = mount_job(&server, &v).await;
    let rpath = format!("/jobs/{job}/resource-requirements");
    Mock::given(method("GET"))
        .and(path(&rpath))
        .respond_with(ResponseTemplate::new(200).set_body_json(requirements_with(&v, 1, 2)))
        .mount(&server)
        .await;
    let conflict = json!({"errors": [format!("Another update to the job [{job}] resource requirements is in progress.")]});
    Mock::given(method("PUT"))
        .and(path(&rpath))
        .respond_with(ResponseTemplate::new(409).set_body_json(&conflict))
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path(&rpath))
        .respond_with(respond(&v, "put_ok"))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let topo = c.topology(&job).await.expect("topology");
    let target: BTreeMap<VertexId, u32> = topo.vertices.iter().map(|x| (x.id.clone(), 3)).collect();
    // raw: the first PUT is a typed Conflict
    let e = apply_target(&c, &job, &target, &BTreeMap::new(), false)
        .await
        .expect_err("409");
    assert_eq!(e.kind(), "conflict");
    assert!(e.is_transient());
    // driver: retries after the backoff and gets through
    let opts = ApplyOptions {
        conflict_backoff: Duration::from_millis(50),
        ..ApplyOptions::default()
    };
    let plan = Plan {
        parallelism: target,
        task_managers: 2,
    };
    let r = Rescaler::start(&c, &job, plan, &opts, None)
        .await
        .expect("start after retry");
    assert_eq!(r.phase(), RescalePhase::Applying);
    // a second rescale of the same job is refused while this one is in flight
    let again = Rescaler::start(&c, &job, r.rescale().to.clone(), &opts, Some(r.rescale()))
        .await
        .expect_err("in flight");
    assert_eq!(again.kind(), "rescale_in_flight");
}

#[tokio::test]
async fn slow_responses_time_out_within_the_bound() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/overview"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let start = Instant::now();
    let e = client(&server).overview().await.expect_err("timeout");
    assert_eq!(e.kind(), "timeout");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    // nothing listening: transport error, also bounded
    let dead = FlinkClient::new(
        "http://127.0.0.1:9/",
        ClientOptions {
            get_retries: 0,
            ..ClientOptions::default()
        },
    )
    .expect("client");
    assert_eq!(
        dead.overview().await.expect_err("refused").kind(),
        "transport"
    );
    assert_eq!(
        FlinkClient::new("ftp://x", ClientOptions::default())
            .expect_err("scheme")
            .kind(),
        "invalid_url"
    );
}

#[tokio::test]
async fn resolve_job_by_name_id_and_only_running() {
    let v = versions().pop().expect("a version");
    let (_, overview) = fixture(&v, "jobs_overview");
    let running = overview["jobs"][0].clone();
    let mut dup = running.clone();
    dup["jid"] = json!("ffffffffffffffffffffffffffffffff");
    let mut done = running.clone();
    done["jid"] = json!("eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee");
    done["state"] = json!("CANCELED");
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/jobs/overview"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"jobs": [running, done]})))
        .up_to_n_times(3)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/jobs/overview"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"jobs": [running, dup]})))
        .mount(&server)
        .await;
    let c = client(&server);
    let name = running["name"].as_str().expect("name").to_string();
    let jid: JobId = running["jid"]
        .as_str()
        .expect("jid")
        .parse()
        .expect("a job id");
    assert_eq!(
        c.resolve_job(&JobSelector::Name(name.clone()))
            .await
            .expect("by name")
            .jid,
        jid
    );
    assert_eq!(
        c.resolve_job(&JobSelector::OnlyRunning)
            .await
            .expect("only")
            .jid,
        jid
    );
    let e = c
        .resolve_job(&JobSelector::Name("nope".into()))
        .await
        .expect_err("none");
    assert_eq!(e.kind(), "not_found");
    assert!(e.to_string().contains("\"nope\""));
    // now two running jobs with the same name
    let e = c
        .resolve_job(&JobSelector::Name(name))
        .await
        .expect_err("ambiguous");
    assert_eq!(e.kind(), "ambiguous");
    assert!(
        e.to_string().contains("ffffffffffffffffffffffffffffffff"),
        "{e}"
    );
    assert_eq!(
        c.resolve_job(&JobSelector::Id(jid.clone()))
            .await
            .expect("by id")
            .jid,
        jid
    );
}

#[tokio::test]
async fn recorded_cluster_state_parses() {
    for v in versions() {
        let server = MockServer::start().await;
        let job = mount_job(&server, &v).await;
        let ex = fixture(&v, "exceptions_after_failover");
        Mock::given(method("GET"))
            .and(path(format!("/jobs/{job}/exceptions")))
            .respond_with(ResponseTemplate::new(ex.0).set_body_json(ex.1))
            .with_priority(1)
            .mount(&server)
            .await;
        let c = client(&server);
        let o = c.overview().await.expect("overview");
        assert_eq!(o.flink_version, v);
        let tms = c.task_managers().await.expect("taskmanagers");
        assert_eq!(tms.len() as u32, o.taskmanagers);
        assert!(tms.iter().all(|t| t.host() == Some("127.0.0.1")), "{tms:?}");
        assert_eq!(
            tms.iter().map(|t| t.free_slots).sum::<u32>(),
            o.slots_available
        );
        let interval = c.checkpoint_interval(&job).await.expect("interval");
        let want = fixture(&v, "checkpoints_config").1["interval"]
            .as_u64()
            .expect("interval");
        assert_eq!(interval, Some(Duration::from_millis(want)));
        let stats = c.checkpoint_stats(&job).await.expect("stats");
        assert!(stats.completed >= 1, "{stats:?}");
        let m = c
            .job_metrics(&job, &["numRestarts"])
            .await
            .expect("metrics");
        assert!(m.contains_key("numRestarts"), "{m:?}");
        let h = c.exceptions(&job).await.expect("exceptions");
        assert!(!h.entries.is_empty(), "{v}: failover entries recorded");
        assert!(h
            .entries
            .iter()
            .all(|e| e.timestamp > 0 && !e.exception_name.is_empty()));
    }
}

#[tokio::test]
async fn disabled_checkpointing_has_no_interval() {
    let v = versions().pop().expect("a version");
    let job = job_id(&v);
    let server = MockServer::start().await;
    let (_, mut cfg) = fixture(&v, "checkpoints_config");
    cfg["interval"] = json!(i64::MAX);
    Mock::given(method("GET"))
        .and(path(format!("/jobs/{job}/checkpoints/config")))
        .respond_with(ResponseTemplate::new(200).set_body_json(cfg))
        .mount(&server)
        .await;
    assert_eq!(
        client(&server).checkpoint_interval(&job).await.expect("ok"),
        None
    );
}

//! Helpers of the `kube_runtime` suite: a controllable fake Flink JobManager (wiremock)
//! whose TaskManagers carry pod IPs, the built `flink-keda-scaler serve` binary as a child
//! process with its own identity (`POD_NAME`) and kubeconfig, and a Flink-shaped load for
//! the [`SyntheticExporter`].

use std::{
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use flink_keda_scaler::keda::pb::external_scaler_client::ExternalScalerClient;
use serde_json::{json, Value};
use wiremock::{
    matchers::{method, path},
    Mock, MockServer, Request, Respond, ResponseTemplate,
};

use crate::support::prometheus::{SyntheticExporter, SyntheticJob};

/// Slots per TaskManager of the fake cluster.
pub const SLOTS_PER_TM: u32 = 2;

/// Mutable state of the fake JobManager.
#[derive(Debug, Clone)]
pub struct FakeState {
    /// Job id.
    pub job_id: String,
    /// Job name.
    pub job_name: String,
    /// `(vertex id, name, parallelism)` in topological order.
    pub vertices: Vec<(String, String, u32)>,
    /// Pod IP of each registered TaskManager (slots are filled in this order).
    pub tm_ips: Vec<String>,
    /// Every PUT body received.
    pub puts: Vec<Value>,
    /// Apply a PUT at once (the job runs at `upperBound` right away); otherwise the PUT
    /// is accepted and held until [`FakeFlink::release`].
    pub apply_puts: bool,
}

impl FakeState {
    /// Slots in use (one slot sharing group: the max parallelism).
    pub fn slots_used(&self) -> u32 {
        self.vertices.iter().map(|v| v.2).max().unwrap_or(1)
    }

    fn apply(&mut self, body: &Value) {
        for v in &mut self.vertices {
            if let Some(u) = body
                .get(&v.0)
                .and_then(|b| b["parallelism"]["upperBound"].as_u64())
            {
                v.2 = u32::try_from(u).unwrap_or(u32::MAX);
            }
        }
    }

    fn details(&self) -> Value {
        let now = chrono::Utc::now().timestamp_millis();
        let since = now - 600_000;
        let vertices: Vec<Value> = self
            .vertices
            .iter()
            .map(|(id, name, p)| {
                json!({
                    "id": id, "slotSharingGroupId": "a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4",
                    "name": name, "maxParallelism": 128, "parallelism": p, "status": "RUNNING",
                    "start-time": since, "end-time": -1, "duration": now - since,
                    "tasks": {"CREATED": 0, "SCHEDULED": 0, "DEPLOYING": 0, "RUNNING": p,
                        "FINISHED": 0, "CANCELING": 0, "CANCELED": 0, "FAILED": 0,
                        "RECONCILING": 0, "INITIALIZING": 0},
                    "metrics": {}
                })
            })
            .collect();
        let nodes: Vec<Value> = self
            .vertices
            .iter()
            .enumerate()
            .map(|(i, (id, name, p))| {
                let mut n = json!({"id": id, "parallelism": p, "operator": "",
                    "operator_strategy": "", "description": name, "optimizer_properties": {}});
                if i > 0 {
                    let ship = if i == 1 { "HASH" } else { "REBALANCE" };
                    n["inputs"] = json!([{"num": 0, "id": self.vertices[i - 1].0,
                        "ship_strategy": ship, "exchange": "pipelined_bounded"}]);
                }
                n
            })
            .collect();
        json!({
            "jid": self.job_id, "name": self.job_name, "isStoppable": false, "state": "RUNNING",
            "job-type": "STREAMING", "start-time": since, "end-time": -1, "duration": now - since,
            "maxParallelism": -1, "now": now,
            "timestamps": {"CREATED": since, "INITIALIZING": since, "RUNNING": since, "FAILED": 0,
                "CANCELED": 0, "FINISHED": 0, "RESTARTING": 0, "SUSPENDED": 0, "FAILING": 0,
                "CANCELLING": 0, "RECONCILING": 0},
            "vertices": vertices,
            "status-counts": {"RUNNING": self.vertices.len()},
            "plan": {"jid": self.job_id, "name": self.job_name, "type": "STREAMING", "nodes": nodes}
        })
    }

    /// `/taskmanagers`: slots filled in `tm_ips` order.
    fn task_managers(&self) -> Value {
        let mut used = self.slots_used();
        let tms: Vec<Value> = self
            .tm_ips
            .iter()
            .enumerate()
            .map(|(i, ip)| {
                let here = used.min(SLOTS_PER_TM);
                used -= here;
                json!({
                    "id": format!("{ip}:6122-{:06x}", 0xaaaaaa + i),
                    "path": format!("pekko.tcp://flink@{ip}:6122/user/rpc/taskmanager_0"),
                    "dataPort": 6121, "jmxPort": -1,
                    "timeSinceLastHeartbeat": chrono::Utc::now().timestamp_millis(),
                    "slotsNumber": SLOTS_PER_TM, "freeSlots": SLOTS_PER_TM - here,
                    "totalResource": {}, "freeResource": {}, "hardware": {},
                    "memoryConfiguration": {}, "blocked": false
                })
            })
            .collect();
        json!({ "taskmanagers": tms })
    }

    fn requirements(&self) -> Value {
        let m: serde_json::Map<String, Value> = self
            .vertices
            .iter()
            .map(|(id, _, p)| {
                (
                    id.clone(),
                    json!({"parallelism": {"lowerBound": 1, "upperBound": p}}),
                )
            })
            .collect();
        Value::Object(m)
    }
}

struct Responder<F>(Arc<Mutex<FakeState>>, F);

impl<F> Respond for Responder<F>
where
    F: Fn(&mut FakeState, &Request) -> ResponseTemplate + Send + Sync + 'static,
{
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut s = self.0.lock().expect("fake flink state");
        (self.1)(&mut s, request)
    }
}

/// A fake JobManager for one job.
pub struct FakeFlink {
    /// The wiremock server.
    pub server: MockServer,
    /// Shared state.
    pub state: Arc<Mutex<FakeState>>,
}

impl FakeFlink {
    /// `job`'s vertices at their parallelism, one TaskManager per IP in `tm_ips`.
    pub async fn start(job: &SyntheticJob, tm_ips: Vec<String>, apply_puts: bool) -> Self {
        let state = Arc::new(Mutex::new(FakeState {
            job_id: job.job_id.clone(),
            job_name: job.job_name.clone(),
            vertices: job
                .vertices
                .iter()
                .map(|v| (v.id.clone(), v.name.clone(), v.parallelism))
                .collect(),
            tm_ips,
            puts: Vec::new(),
            apply_puts,
        }));
        let server = MockServer::start().await;
        let jid = job.job_id.clone();
        let ok = |v: Value| ResponseTemplate::new(200).set_body_json(v);
        let get = |p: String| Mock::given(method("GET")).and(path(p));
        get("/jobs/overview".into())
            .respond_with(Responder(
                state.clone(),
                move |s: &mut FakeState, _: &Request| {
                    // As Flink: `tasks.total` is the sum of the vertices' parallelism.
                    let n: u32 = s.vertices.iter().map(|v| v.2).sum();
                    ok(
                        json!({"jobs": [{"jid": s.job_id, "name": s.job_name, "state": "RUNNING",
                    "start-time": 1, "end-time": -1, "duration": 1, "last-modification": 1,
                    "tasks": {"running": n, "total": n, "canceling": 0, "canceled": 0,
                        "created": 0, "scheduled": 0, "deploying": 0, "reconciling": 0,
                        "finished": 0, "initializing": 0, "failed": 0}}]}),
                    )
                },
            ))
            .mount(&server)
            .await;
        get("/taskmanagers".into())
            .respond_with(Responder(
                state.clone(),
                move |s: &mut FakeState, _: &Request| ok(s.task_managers()),
            ))
            .mount(&server)
            .await;
        get(format!("/jobs/{jid}"))
            .respond_with(Responder(
                state.clone(),
                move |s: &mut FakeState, _: &Request| ok(s.details()),
            ))
            .mount(&server)
            .await;
        get(format!("/jobs/{jid}/plan"))
            .respond_with(Responder(
                state.clone(),
                move |s: &mut FakeState, _: &Request| {
                    ok(json!({"plan": s.details()["plan"].clone()}))
                },
            ))
            .mount(&server)
            .await;
        get(format!("/jobs/{jid}/resource-requirements"))
            .respond_with(Responder(
                state.clone(),
                move |s: &mut FakeState, _: &Request| ok(s.requirements()),
            ))
            .mount(&server)
            .await;
        Mock::given(method("PUT"))
            .and(path(format!("/jobs/{jid}/resource-requirements")))
            .respond_with(Responder(
                state.clone(),
                move |s: &mut FakeState, r: &Request| {
                    let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                    s.puts.push(body.clone());
                    if s.apply_puts {
                        s.apply(&body);
                    }
                    ok(json!({}))
                },
            ))
            .mount(&server)
            .await;
        // as a real JobManager: its version and the adaptive scheduler, not reactive mode (a
        // manual rescale reads both before any PUT; 1.x: no checkpoint to nudge)
        get("/overview".into())
            .respond_with(ok(json!({"taskmanagers": 2, "slots-total": 4,
                "slots-available": 0, "jobs-running": 1, "jobs-finished": 0,
                "jobs-cancelled": 0, "jobs-failed": 0, "flink-version": "1.20.1",
                "flink-commit": "ab12cd3"})))
            .mount(&server)
            .await;
        get("/jobmanager/config".into())
            .respond_with(ok(json!([
                {"key": "jobmanager.scheduler", "value": "adaptive"},
                // the recommended cooldown: no FlinkRescaleDelay Event in these tests
                {"key": "jobmanager.adaptive-scheduler.scaling-interval.min", "value": "2s"}
            ])))
            .mount(&server)
            .await;
        get(format!("/jobs/{jid}/checkpoints/config"))
            .respond_with(ok(json!({"mode": "exactly_once", "interval": 1000,
                "timeout": 600_000, "min_pause": 0, "max_concurrent": 1})))
            .mount(&server)
            .await;
        get(format!("/jobs/{jid}/metrics"))
            .respond_with(ok(json!([{"id": "numRestarts", "value": "0"}])))
            .mount(&server)
            .await;
        get(format!("/jobs/{jid}/exceptions"))
            .respond_with(ok(json!({"root-exception": null, "timestamp": null,
                "all-exceptions": [], "truncated": false,
                "exceptionHistory": {"entries": [], "truncated": false}})))
            .mount(&server)
            .await;
        Self { server, state }
    }

    /// Base URL.
    pub fn url(&self) -> String {
        self.server.uri()
    }

    /// A snapshot of the state.
    pub fn snapshot(&self) -> FakeState {
        self.state.lock().expect("state").clone()
    }

    /// Changes the state.
    pub fn with<T>(&self, f: impl FnOnce(&mut FakeState) -> T) -> T {
        f(&mut self.state.lock().expect("state"))
    }

    /// PUT requests to `/jobs/:id/resource-requirements` in wiremock's journal.
    pub async fn put_count(&self) -> usize {
        let jid = self.snapshot().job_id;
        let p = format!("/jobs/{jid}/resource-requirements");
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.method.as_str() == "PUT" && r.url.path() == p)
            .count()
    }

    /// Applies the last held PUT: the job now runs at its upper bounds.
    pub fn release(&self) {
        self.with(|s| {
            if let Some(body) = s.puts.last().cloned() {
                s.apply(&body);
            }
            s.apply_puts = true;
        });
    }
}

/// A uniform load: every subtask carries `rate` records/s and is busy `busy` of a second.
pub fn export_load(job: &SyntheticJob, e: &SyntheticExporter, rate: f64, busy: f64) {
    let last = job.vertices.len() - 1;
    for (v, vertex) in job.vertices.iter().enumerate() {
        for s in 0..vertex.parallelism {
            job.set_task(e, "busyTimeMsPerSecond", v, s, busy * 1000.0);
            job.set_task(e, "backPressuredTimeMsPerSecond", v, s, 0.0);
            job.set_task(
                e,
                "numRecordsInPerSecond",
                v,
                s,
                if v == 0 { 0.0 } else { rate },
            );
            job.set_task(
                e,
                "numRecordsOutPerSecond",
                v,
                s,
                if v == last { 0.0 } else { rate },
            );
        }
    }
    for s in 0..job.vertices[0].parallelism {
        e.set(
            &job.operator_series("numRecordsOutPerSecond", 0, "Source: events", s, ""),
            rate,
        );
        e.set(
            &job.operator_series("pendingRecords", 0, "Source: events", s, ""),
            0.0,
        );
    }
    e.set(&job.jm_job_series("numRestarts"), 0.0);
}

/// The built scaler binary running `serve` as `POD_NAME=<identity>`.
pub struct Scaler {
    child: Option<Child>,
    /// `POD_NAME`.
    pub identity: String,
    /// gRPC port.
    pub grpc_port: u16,
    /// HTTP port.
    pub http_port: u16,
    /// Admin port (`/debug/jobs`).
    pub admin_port: u16,
    log: std::path::PathBuf,
    http: reqwest::Client,
}

impl Scaler {
    /// Starts the binary with `config` (written to `dir`), `KUBECONFIG=kubeconfig`,
    /// `POD_NAME=identity`, `POD_NAMESPACE=namespace`; waits for `/readyz`.
    pub async fn start(
        dir: &std::path::Path,
        identity: &str,
        namespace: &str,
        kubeconfig: &std::path::Path,
        config: &str,
    ) -> Self {
        let config_path = dir.join(format!("{identity}.yaml"));
        std::fs::write(&config_path, config).expect("write config");
        let log = dir.join(format!("{identity}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let grpc_port = crate::support::free_port();
        let http_port = crate::support::free_port();
        let admin_port = crate::support::free_port();
        let child = Command::new(crate::support::scaler_bin())
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .arg("--grpc-addr")
            .arg(format!("127.0.0.1:{grpc_port}"))
            .arg("--http-addr")
            .arg(format!("127.0.0.1:{http_port}"))
            .arg("--admin-addr")
            .arg(format!("127.0.0.1:{admin_port}"))
            .env("KUBECONFIG", kubeconfig)
            .env("POD_NAME", identity)
            .env("POD_NAMESPACE", namespace)
            .env("RUST_LOG", "info,kube_client=error")
            .env("NO_COLOR", "1")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdin(Stdio::null())
            .stdout(Stdio::from(file.try_clone().expect("clone log")))
            .stderr(Stdio::from(file))
            .spawn()
            .expect("spawn flink-keda-scaler");
        let mut me = Self {
            child: Some(child),
            identity: identity.to_string(),
            grpc_port,
            http_port,
            admin_port,
            log,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(3))
                .build()
                .expect("http client"),
        };
        let started = Instant::now();
        loop {
            let ready = me
                .http
                .get(format!("http://127.0.0.1:{http_port}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                break;
            }
            if let Some(status) = me.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("{identity} exited with {status}; log:\n{}", me.log());
            }
            assert!(
                started.elapsed() < Duration::from_secs(40),
                "{identity} not ready after 40 s; log:\n{}",
                me.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eprintln!("{identity} ready in {:?}", started.elapsed());
        me
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A gRPC client.
    pub async fn client(&self) -> ExternalScalerClient<tonic::transport::Channel> {
        ExternalScalerClient::connect(format!("http://127.0.0.1:{}", self.grpc_port))
            .await
            .expect("connect to the scaler")
    }

    /// `/metrics` text (empty when unreachable).
    pub async fn metrics(&self) -> String {
        match self
            .http
            .get(format!("http://127.0.0.1:{}/metrics", self.http_port))
            .send()
            .await
        {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// The `flink_keda_scaler_is_leader` gauge (None when absent or unreachable).
    pub async fn leader_gauge(&self) -> Option<f64> {
        self.metrics()
            .await
            .lines()
            .find(|l| l.starts_with("flink_keda_scaler_is_leader "))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// `/debug/jobs` JSON (Null when unreachable).
    pub async fn debug_jobs(&self) -> Value {
        match self
            .http
            .get(format!("http://127.0.0.1:{}/debug/jobs", self.admin_port))
            .send()
            .await
        {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        }
    }

    /// SIGKILL (no shutdown, no Lease release); waits for the exit.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// True while the process runs.
    pub fn running(&self) -> bool {
        self.child.is_some()
    }
}

impl Drop for Scaler {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!(
                "--- {} log (last 60 lines) ---\n{}",
                self.identity,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }
}

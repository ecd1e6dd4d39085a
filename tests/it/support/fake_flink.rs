//! A fake Flink JobManager REST API (wiremock) replaying JSON shaped like real Flink
//! 1.19+/1.20 responses for one job: `/jobs/overview`, `/jobs/:id` (with the plan
//! embedded), `/jobs/:id/plan`, `/taskmanagers`, `/jobs/:id/resource-requirements`
//! (GET and PUT), `/jobs/:id/checkpoints/config`, `/jobs/:id/metrics`,
//! `/jobs/:id/exceptions`, `/overview`.
//!
//! The state is shared: a PUT of resource requirements is recorded and, when the fake
//! accepts PUTs, immediately applied (vertices run at `upperBound`, TaskManagers follow
//! the slots needed), so the next `/jobs/:id` shows the new parallelism. A [`FlinkFault`]
//! set in the state switches what the stateful endpoints answer (fault matrix).

use std::sync::{Arc, Mutex};

use wiremock::{
    matchers::{method, path, path_regex},
    Mock, MockServer, Request, Respond, ResponseTemplate,
};

use super::prometheus::SyntheticJob;

/// Slots per TaskManager of the fake cluster.
pub const SLOTS_PER_TM: u32 = 2;
/// maxParallelism of every vertex.
pub const MAX_PARALLELISM: u32 = 128;

/// One vertex of the fake job.
#[derive(Debug, Clone)]
pub struct FakeVertex {
    /// Job-vertex id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Current parallelism.
    pub parallelism: u32,
    /// Ship strategy of its input from the previous vertex (`None` for the source).
    pub input_ship: Option<String>,
    /// lowerBound of its resource requirements.
    pub lower_bound: i64,
    /// upperBound of its resource requirements when it differs from the running
    /// parallelism (a job running degraded below them); `None`: the parallelism.
    pub upper_bound: Option<u32>,
}

/// The mutable state of the fake cluster.
#[derive(Debug, Clone)]
pub struct FakeState {
    /// Job id.
    pub job_id: String,
    /// Job name.
    pub job_name: String,
    /// Vertices in topological order (a chain).
    pub vertices: Vec<FakeVertex>,
    /// `timestamps.RUNNING` (ms since epoch).
    pub running_since_ms: i64,
    /// Registered TaskManagers.
    pub task_managers: u32,
    /// Every PUT body received.
    pub puts: Vec<serde_json::Value>,
    /// Whether a PUT is accepted (200) and applied; otherwise 500.
    pub accept_puts: bool,
    /// A PUT's parallelism waits for the slots it needs, as the adaptive scheduler does:
    /// the requirements change at once, the job only once enough TaskManagers are
    /// registered ([`FakeFlink::register_task_managers`]). Otherwise applied at once.
    pub waits_for_slots: bool,
    /// The fault the fake answers with, if any.
    pub fault: Option<FlinkFault>,
}

/// What a faulty JobManager answers instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlinkFault {
    /// Every request: HTTP 500 with Flink's error envelope.
    Status500,
    /// Every GET: a 200 whose JSON is cut off.
    Malformed,
    /// The job is gone: `/jobs/overview` lists none, `/jobs/:id/...` is Flink's 404.
    JobGone,
    /// The job is RESTARTING (overview and details).
    Restarting,
    /// A PUT of resource requirements answers 409 (a rescale already in progress).
    PutConflict,
    /// A PUT of resource requirements answers 400 (validation).
    PutBadRequest,
    /// A PUT of resource requirements answers 500: the scheduler is not adaptive.
    PutNonAdaptive,
    /// GET resource requirements omits the last vertex.
    RequirementsOmitVertex,
}

/// Flink's error envelope.
fn flink_error(status: u16, errors: &[&str]) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(serde_json::json!({ "errors": errors }))
}

impl FlinkFault {
    /// The answer to `r` under this fault, when it changes it.
    fn answer(self, s: &FakeState, r: &Request) -> Option<ResponseTemplate> {
        let put = r.method.as_str() == "PUT";
        let job_path = r.url.path().starts_with(&format!("/jobs/{}", s.job_id));
        match self {
            FlinkFault::Status500 => Some(flink_error(500, &["Internal server error."])),
            FlinkFault::Malformed if !put => Some(
                ResponseTemplate::new(200)
                    .insert_header("content-type", "application/json")
                    .set_body_string(r#"{"jobs":[{"jid":"#),
            ),
            FlinkFault::JobGone if job_path => Some(flink_error(
                404,
                &["org.apache.flink.runtime.rest.NotFoundException: Job not found"],
            )),
            FlinkFault::JobGone if r.url.path() == "/jobs/overview" => Some(
                ResponseTemplate::new(200).set_body_json(serde_json::json!({"jobs": []})),
            ),
            FlinkFault::PutConflict if put => Some(flink_error(
                409,
                &["org.apache.flink.runtime.rest.handler.RestHandlerException: a rescale is already in progress"],
            )),
            FlinkFault::PutBadRequest if put => Some(flink_error(
                400,
                &["Request did not match expected format JobResourceRequirementsBody."],
            )),
            FlinkFault::PutNonAdaptive if put => Some(flink_error(
                500,
                &[
                    "Internal server error.",
                    "<Exception on server side:\njava.util.concurrent.CompletionException: java.lang.UnsupportedOperationException: The DefaultScheduler does not support changing the parallelism without a job restart. This feature is currently only expected to work with the AdaptiveScheduler.\n\tat org.apache.flink.runtime.scheduler.SchedulerBase.updateJobResourceRequirements(SchedulerBase.java:1120)\n\nEnd of exception on server side>",
                ],
            )),
            FlinkFault::RequirementsOmitVertex
                if !put && r.url.path().ends_with("/resource-requirements") =>
            {
                let mut req = s.requirements_json();
                if let (Some(m), Some(last)) = (req.as_object_mut(), s.vertices.last()) {
                    m.remove(&last.id);
                }
                Some(ResponseTemplate::new(200).set_body_json(req))
            }
            _ => None,
        }
    }
}

impl FakeState {
    /// The job's state as Flink reports it.
    pub fn job_state(&self) -> &'static str {
        match self.fault {
            Some(FlinkFault::Restarting) => "RESTARTING",
            _ => "RUNNING",
        }
    }

    /// Slots the job uses (one slot sharing group: the max parallelism).
    pub fn slots_used(&self) -> u32 {
        self.vertices
            .iter()
            .map(|v| v.parallelism)
            .max()
            .unwrap_or(1)
    }

    /// TaskManagers needed at the current parallelism.
    pub fn needed_tms(&self) -> u32 {
        self.slots_used().div_ceil(SLOTS_PER_TM).max(1)
    }

    /// The job restarts at its requirements (every vertex at its upper bound).
    fn apply_requirements(&mut self) {
        for v in &mut self.vertices {
            if let Some(u) = v.upper_bound.take() {
                v.parallelism = u;
            }
        }
        self.running_since_ms = chrono::Utc::now().timestamp_millis();
    }

    /// The requirements' slots, when the registered TaskManagers hold them: applied.
    fn apply_if_slots(&mut self) {
        let wanted = self
            .vertices
            .iter()
            .map(|v| v.upper_bound.unwrap_or(v.parallelism))
            .max()
            .unwrap_or(1);
        let pending = self.vertices.iter().any(|v| v.upper_bound.is_some());
        if pending && self.task_managers * SLOTS_PER_TM >= wanted {
            self.apply_requirements();
        }
    }

    fn plan(&self) -> serde_json::Value {
        let nodes: Vec<serde_json::Value> = self
            .vertices
            .iter()
            .enumerate()
            .rev()
            .map(|(i, v)| {
                let mut node = serde_json::json!({
                    "id": v.id,
                    "parallelism": v.parallelism,
                    "operator": "",
                    "operator_strategy": "",
                    "description": v.name,
                    "optimizer_properties": {}
                });
                if let (Some(ship), true) = (&v.input_ship, i > 0) {
                    node["inputs"] = serde_json::json!([{
                        "num": 0,
                        "id": self.vertices[i - 1].id,
                        "ship_strategy": ship,
                        "exchange": "pipelined_bounded"
                    }]);
                }
                node
            })
            .collect();
        serde_json::json!({
            "jid": self.job_id,
            "name": self.job_name,
            "type": "STREAMING",
            "nodes": nodes
        })
    }

    fn job_details(&self) -> serde_json::Value {
        let now = chrono::Utc::now().timestamp_millis();
        let vertices: Vec<serde_json::Value> = self
            .vertices
            .iter()
            .map(|v| {
                serde_json::json!({
                    "id": v.id,
                    "slotSharingGroupId": "a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4",
                    "name": v.name,
                    "maxParallelism": MAX_PARALLELISM,
                    "parallelism": v.parallelism,
                    "status": "RUNNING",
                    "start-time": self.running_since_ms,
                    "end-time": -1,
                    "duration": now - self.running_since_ms,
                    "tasks": {
                        "CREATED": 0, "SCHEDULED": 0, "DEPLOYING": 0,
                        "RUNNING": v.parallelism, "FINISHED": 0, "CANCELING": 0,
                        "CANCELED": 0, "FAILED": 0, "RECONCILING": 0, "INITIALIZING": 0
                    },
                    "metrics": {
                        "read-bytes": 0, "read-bytes-complete": true,
                        "write-bytes": 0, "write-bytes-complete": true,
                        "read-records": 0, "read-records-complete": true,
                        "write-records": 0, "write-records-complete": true,
                        "accumulated-backpressured-time": 0,
                        "accumulated-idle-time": 0,
                        "accumulated-busy-time": "NaN"
                    }
                })
            })
            .collect();
        serde_json::json!({
            "jid": self.job_id,
            "name": self.job_name,
            "isStoppable": false,
            "state": self.job_state(),
            "job-type": "STREAMING",
            "start-time": self.running_since_ms - 5_000,
            "end-time": -1,
            "duration": now - self.running_since_ms + 5_000,
            "maxParallelism": -1,
            "now": now,
            "timestamps": {
                "CREATED": self.running_since_ms - 5_000,
                "INITIALIZING": self.running_since_ms - 5_000,
                "RUNNING": self.running_since_ms,
                "FAILED": 0, "CANCELED": 0, "FINISHED": 0, "RESTARTING": 0,
                "SUSPENDED": 0, "FAILING": 0, "CANCELLING": 0, "RECONCILING": 0
            },
            "vertices": vertices,
            "status-counts": {
                "CREATED": 0, "SCHEDULED": 0, "DEPLOYING": 0,
                "RUNNING": self.vertices.len(), "FINISHED": 0, "CANCELING": 0,
                "CANCELED": 0, "FAILED": 0, "RECONCILING": 0, "INITIALIZING": 0
            },
            "plan": self.plan()
        })
    }

    fn task_managers_json(&self) -> serde_json::Value {
        let mut used = self.slots_used();
        let tms: Vec<serde_json::Value> = (0..self.task_managers)
            .map(|i| {
                let here = used.min(SLOTS_PER_TM);
                used -= here;
                serde_json::json!({
                    "id": format!("10.0.0.{}:6122-{:06x}", i + 1, 0xaaaaaa + i),
                    "path": format!("pekko.tcp://flink@10.0.0.{}:6122/user/rpc/taskmanager_0", i + 1),
                    "dataPort": 6121,
                    "jmxPort": -1,
                    "timeSinceLastHeartbeat": chrono::Utc::now().timestamp_millis(),
                    "slotsNumber": SLOTS_PER_TM,
                    "freeSlots": SLOTS_PER_TM - here,
                    "totalResource": {"cpuCores": 2.0, "taskHeapMemory": 383, "taskOffHeapMemory": 0,
                        "managedMemory": 512, "networkMemory": 128, "extendedResources": {}},
                    "freeResource": {"cpuCores": 0.0, "taskHeapMemory": 0, "taskOffHeapMemory": 0,
                        "managedMemory": 0, "networkMemory": 0, "extendedResources": {}},
                    "hardware": {"cpuCores": 2, "physicalMemory": 8_000_000_000_i64,
                        "freeMemory": 536_870_912, "managedMemory": 536_870_912},
                    "memoryConfiguration": {"frameworkHeap": 134_217_728, "taskHeap": 401_604_608,
                        "frameworkOffHeap": 134_217_728, "taskOffHeap": 0,
                        "networkMemory": 134_217_730, "managedMemory": 536_870_920,
                        "jvmMetaspace": 268_435_456, "jvmOverhead": 201_326_592,
                        "totalFlinkMemory": 1_342_177_280, "totalProcessMemory": 1_811_939_328},
                    "blocked": false
                })
            })
            .collect();
        serde_json::json!({ "taskmanagers": tms })
    }

    fn requirements_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for v in &self.vertices {
            m.insert(
                v.id.clone(),
                serde_json::json!({"parallelism": {"lowerBound": v.lower_bound, "upperBound": v.upper_bound.unwrap_or(v.parallelism)}}),
            );
        }
        serde_json::Value::Object(m)
    }
}

/// The fake JobManager.
pub struct FakeFlink {
    /// The wiremock server.
    pub server: MockServer,
    /// Shared state.
    pub state: Arc<Mutex<FakeState>>,
}

struct Responder<F>(Arc<Mutex<FakeState>>, F);

impl<F> Respond for Responder<F>
where
    F: Fn(&mut FakeState, &Request) -> ResponseTemplate + Send + Sync + 'static,
{
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut s = self.0.lock().expect("fake flink state");
        if let Some(answer) = s.fault.and_then(|f| f.answer(&s, request)) {
            if request.method.as_str() == "PUT" {
                let body = serde_json::from_slice(&request.body).unwrap_or_default();
                s.puts.push(body);
            }
            return answer;
        }
        (self.1)(&mut s, request)
    }
}

impl FakeFlink {
    /// A fake cluster running `job`'s vertices at their parallelism (source → keyed
    /// operator by HASH → sink by REBALANCE), RUNNING for 10 minutes, with the
    /// TaskManagers the parallelism needs.
    pub async fn start(job: &SyntheticJob, accept_puts: bool) -> Self {
        let vertices = job
            .vertices
            .iter()
            .enumerate()
            .map(|(i, v)| FakeVertex {
                id: v.id.clone(),
                name: v.name.clone(),
                parallelism: v.parallelism,
                input_ship: match i {
                    0 => None,
                    1 => Some("HASH".into()),
                    _ => Some("REBALANCE".into()),
                },
                lower_bound: 1,
                upper_bound: None,
            })
            .collect();
        let mut state = FakeState {
            job_id: job.job_id.clone(),
            job_name: job.job_name.clone(),
            vertices,
            running_since_ms: chrono::Utc::now().timestamp_millis() - 600_000,
            task_managers: 0,
            puts: Vec::new(),
            accept_puts,
            waits_for_slots: false,
            fault: None,
        };
        state.task_managers = state.needed_tms();
        let state = Arc::new(Mutex::new(state));
        let server = MockServer::start().await;
        let me = Self { server, state };
        me.mount().await;
        me
    }

    async fn mount(&self) {
        let st = &self.state;
        let jid = self.state.lock().expect("state").job_id.clone();
        let json = |v: serde_json::Value| ResponseTemplate::new(200).set_body_json(v);
        Mock::given(method("GET"))
            .and(path("/jobs/overview"))
            .respond_with(Responder(st.clone(), move |s: &mut FakeState, _: &Request| {
                let now = chrono::Utc::now().timestamp_millis();
                // As Flink: `tasks.total` is the sum of the vertices' parallelism.
                let n: u32 = s.vertices.iter().map(|v| v.parallelism).sum();
                json(serde_json::json!({"jobs": [{
                    "jid": s.job_id, "name": s.job_name, "start-time": s.running_since_ms - 5_000,
                    "end-time": -1, "duration": now - s.running_since_ms, "state": s.job_state(),
                    "last-modification": s.running_since_ms,
                    "tasks": {"running": n, "canceling": 0, "canceled": 0, "total": n, "created": 0,
                        "scheduled": 0, "deploying": 0, "reconciling": 0, "finished": 0,
                        "initializing": 0, "failed": 0}
                }]}))
            }))
            .mount(&self.server)
            .await;
        // the keys set on the JobManager (read once per job id): adaptive, not reactive
        Mock::given(method("GET"))
            .and(path("/jobmanager/config"))
            .respond_with(json(serde_json::json!([
                {"key": "jobmanager.scheduler", "value": "adaptive"},
                {"key": "jobmanager.adaptive-scheduler.scaling-interval.min", "value": "2s"}
            ])))
            .mount(&self.server)
            .await;
        Mock::given(method("GET"))
            .and(path("/overview"))
            .respond_with(Responder(st.clone(), move |s: &mut FakeState, _: &Request| {
                let total = s.task_managers * SLOTS_PER_TM;
                json(serde_json::json!({
                    "taskmanagers": s.task_managers, "slots-total": total,
                    "slots-available": total.saturating_sub(s.slots_used()),
                    "jobs-running": 1, "jobs-finished": 0, "jobs-cancelled": 0, "jobs-failed": 0,
                    "flink-version": "1.20.1", "flink-commit": "ab12cd3"
                }))
            }))
            .mount(&self.server)
            .await;
        Mock::given(method("GET"))
            .and(path("/taskmanagers"))
            .respond_with(Responder(
                st.clone(),
                move |s: &mut FakeState, _: &Request| json(s.task_managers_json()),
            ))
            .mount(&self.server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/jobs/{jid}")))
            .respond_with(Responder(
                st.clone(),
                move |s: &mut FakeState, _: &Request| json(s.job_details()),
            ))
            .mount(&self.server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/jobs/{jid}/plan")))
            .respond_with(Responder(
                st.clone(),
                move |s: &mut FakeState, _: &Request| json(serde_json::json!({ "plan": s.plan() })),
            ))
            .mount(&self.server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/jobs/{jid}/resource-requirements")))
            .respond_with(Responder(
                st.clone(),
                move |s: &mut FakeState, _: &Request| json(s.requirements_json()),
            ))
            .mount(&self.server)
            .await;
        Mock::given(method("PUT"))
            .and(path(format!("/jobs/{jid}/resource-requirements")))
            .respond_with(Responder(
                st.clone(),
                move |s: &mut FakeState, r: &Request| {
                    let body: serde_json::Value =
                        serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null);
                    s.puts.push(body.clone());
                    if !s.accept_puts {
                        return ResponseTemplate::new(500).set_body_json(
                            serde_json::json!({"errors": ["Internal server error."]}),
                        );
                    }
                    for v in &mut s.vertices {
                        if let Some(b) = body.get(&v.id) {
                            if let Some(u) = b["parallelism"]["upperBound"].as_u64() {
                                v.upper_bound = Some(u as u32);
                            }
                            if let Some(l) = b["parallelism"]["lowerBound"].as_i64() {
                                v.lower_bound = l;
                            }
                        }
                    }
                    if s.waits_for_slots {
                        s.apply_if_slots();
                    } else {
                        // More TaskManagers come up for a scale-up; after a scale-down the
                        // surplus ones stay registered (idle) until KEDA removes them.
                        s.apply_requirements();
                        s.task_managers = s.task_managers.max(s.needed_tms());
                    }
                    ResponseTemplate::new(200).set_body_json(serde_json::json!({}))
                },
            ))
            .mount(&self.server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/jobs/{jid}/checkpoints/config")))
            .respond_with(json(serde_json::json!({
                "mode": "exactly_once", "interval": 10_000, "timeout": 600_000,
                "min_pause": 0, "max_concurrent": 1,
                "externalization": {"enabled": false, "delete_on_cancellation": true},
                "state_backend": "HashMapStateBackend", "checkpoint_storage": "JobManagerCheckpointStorage",
                "unaligned_checkpoints": false, "tolerable_failed_checkpoints": 0,
                "aligned_checkpoint_timeout": 0, "checkpoints_after_tasks_finish": true,
                "state_changelog_enabled": false, "changelog_periodic_materialization_interval": 600_000,
                "changelog_storage": "memory"
            })))
            .mount(&self.server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/jobs/{jid}/metrics")))
            .respond_with(json(
                serde_json::json!([{"id": "numRestarts", "value": "0"}]),
            ))
            .mount(&self.server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/jobs/{jid}/exceptions")))
            .respond_with(json(serde_json::json!({
                "root-exception": null, "timestamp": null, "all-exceptions": [], "truncated": false,
                "exceptionHistory": {"entries": [], "truncated": false}
            })))
            .mount(&self.server)
            .await;
        // Any other job id: Flink's 404.
        Mock::given(path_regex(r"^/jobs/[0-9a-f]{32}(/.*)?$"))
            .respond_with(ResponseTemplate::new(404).set_body_json(serde_json::json!({
                "errors": ["org.apache.flink.runtime.rest.NotFoundException: Job not found"]
            })))
            .with_priority(10)
            .mount(&self.server)
            .await;
    }

    /// Base URL (`http://127.0.0.1:<port>`).
    pub fn url(&self) -> String {
        self.server.uri()
    }

    /// A snapshot of the state.
    pub fn snapshot(&self) -> FakeState {
        self.state.lock().expect("state").clone()
    }

    /// `n` TaskManagers registered (pods started by KEDA); a scale-up waiting for their
    /// slots ([`FakeState::waits_for_slots`]) restarts at its requirements.
    pub fn register_task_managers(&self, n: u32) {
        let mut s = self.state.lock().expect("state");
        s.task_managers = n;
        s.apply_if_slots();
    }

    /// Every PUT body received so far.
    pub fn puts(&self) -> Vec<serde_json::Value> {
        self.snapshot().puts
    }

    /// Requests received for `method path` (from wiremock's journal).
    pub async fn requests(&self, m: &str, p: &str) -> usize {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.method.as_str() == m && r.url.path() == p)
            .count()
    }
}

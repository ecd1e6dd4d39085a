//! The JSON bodies of the Flink REST endpoints the fleet serves, shaped like Flink 2.3.0's
//! (field names and nesting as recorded from a real 2.3.0 session cluster: `/overview`,
//! `/jobs/overview`, `/jobs/:id` with its embedded plan, `/jobs/:id/plan`,
//! `/taskmanagers`, `/jobmanager/config`, `/jobs/:id/resource-requirements`, the
//! checkpoint and exception endpoints, `/jobs/:id/metrics`).

use serde_json::{json, Value};

use super::{
    ids::FleetIds,
    sim::{input_ship_strategy, JobSim, VERTEX_SPECS},
};

/// The Flink version the fleet claims to be.
pub const FLINK_VERSION: &str = "2.3.0";

/// One job of a JobManager, advanced to now.
pub struct Job<'a> {
    /// Index in the fleet.
    pub index: usize,
    /// The model.
    pub sim: &'a JobSim,
}

/// `GET /overview`.
pub fn overview(ids: &FleetIds, jobs: &[Job<'_>]) -> Value {
    let tms: u32 = jobs.iter().map(|j| ids.task_managers(j.sim)).sum();
    let used: u32 = jobs.iter().map(|j| j.sim.slots()).sum();
    let total = tms * ids.slots_per_task_manager;
    json!({
        "taskmanagers": tms,
        "slots-total": total,
        "slots-available": total.saturating_sub(used),
        "jobs-running": jobs.len(),
        "jobs-finished": 0, "jobs-cancelled": 0, "jobs-failed": 0,
        "flink-version": FLINK_VERSION,
        "flink-commit": "c0f8d1a"
    })
}

fn tasks(sim: &JobSim) -> Value {
    let n = sim.tasks();
    json!({
        "running": n, "canceling": 0, "canceled": 0, "total": n, "created": 0,
        "scheduled": 0, "deploying": 0, "reconciling": 0, "finished": 0,
        "initializing": 0, "failed": 0
    })
}

/// `GET /jobs/overview`.
pub fn jobs_overview(ids: &FleetIds, jobs: &[Job<'_>], now_ms: i64) -> Value {
    let jobs: Vec<Value> = jobs
        .iter()
        .map(|j| {
            json!({
                "jid": ids.job_id(j.index),
                "name": ids.job_name(j.index),
                "jobType": "STREAMING",
                "schedulerType": "Adaptive",
                "start-time": j.sim.start_ms,
                "end-time": -1,
                "duration": now_ms - j.sim.start_ms,
                "state": "RUNNING",
                "last-modification": j.sim.last_modification_ms,
                "tasks": tasks(j.sim),
                "pending-operators": 0
            })
        })
        .collect();
    json!({ "jobs": jobs })
}

fn plan(ids: &FleetIds, job: &Job<'_>) -> Value {
    let nodes: Vec<Value> = job
        .sim
        .vertices
        .iter()
        .enumerate()
        .map(|(v, vertex)| {
            let mut node = json!({
                "id": ids.vertex_id(v),
                "operator": "",
                "parallelism": vertex.parallelism,
                "operator_strategy": "",
                "description": format!("{}<br/>", VERTEX_SPECS[v].0.replace(" -> ", "<br/>+- ")),
                "optimizer_properties": {}
            });
            if let Some(ship) = input_ship_strategy(v) {
                node["inputs"] = json!([{
                    "id": ids.vertex_id(v - 1), "num": 0,
                    "exchange": "pipelined_bounded", "ship_strategy": ship
                }]);
            }
            node
        })
        .collect();
    json!({
        "jid": ids.job_id(job.index),
        "name": ids.job_name(job.index),
        "type": "STREAMING",
        "nodes": nodes
    })
}

/// `GET /jobs/:id/plan`.
pub fn job_plan(ids: &FleetIds, job: &Job<'_>) -> Value {
    json!({ "plan": plan(ids, job) })
}

fn task_counts(running: u32) -> Value {
    json!({
        "CANCELING": 0, "INITIALIZING": 0, "RUNNING": running, "RECONCILING": 0,
        "CREATED": 0, "CANCELED": 0, "FINISHED": 0, "FAILED": 0, "SCHEDULED": 0,
        "DEPLOYING": 0
    })
}

/// `GET /jobs/:id`.
pub fn job_details(ids: &FleetIds, job: &Job<'_>, now_ms: i64) -> Value {
    let sim = job.sim;
    let vertices: Vec<Value> = sim
        .vertices
        .iter()
        .enumerate()
        .map(|(v, vertex)| {
            json!({
                "id": ids.vertex_id(v),
                "slotSharingGroupId": "d40e5821b6af2fe9c54aef98f2ad3bc0",
                "name": VERTEX_SPECS[v].0,
                "maxParallelism": sim.max_parallelism(),
                "parallelism": vertex.parallelism,
                "status": "RUNNING",
                "start-time": sim.running_since_ms,
                "end-time": -1,
                "duration": now_ms - sim.running_since_ms,
                "tasks": task_counts(vertex.parallelism),
                "metrics": {
                    "read-bytes": 0, "read-bytes-complete": true,
                    "write-bytes": 0, "write-bytes-complete": true,
                    "read-records": 0, "read-records-complete": true,
                    "write-records": 0, "write-records-complete": true,
                    "accumulated-backpressured-time": 0, "accumulated-idle-time": 0,
                    "accumulated-busy-time": 0.0
                }
            })
        })
        .collect();
    let jid = ids.job_id(job.index);
    json!({
        "jid": jid,
        "application-id": jid,
        "name": ids.job_name(job.index),
        "isStoppable": false,
        "state": "RUNNING",
        "job-type": "STREAMING",
        "schedulerType": "Adaptive",
        "start-time": sim.start_ms,
        "end-time": -1,
        "duration": now_ms - sim.start_ms,
        "maxParallelism": -1,
        "now": now_ms,
        "timestamps": {
            "SUSPENDED": 0, "RUNNING": sim.running_since_ms, "FINISHED": 0, "RESTARTING": 0,
            "CANCELLING": 0, "CREATED": sim.start_ms + 500, "RECONCILING": 0, "FAILED": 0,
            "CANCELED": 0, "INITIALIZING": sim.start_ms, "FAILING": 0
        },
        "vertices": vertices,
        "status-counts": task_counts(sim.vertices.len() as u32),
        "plan": plan(ids, job),
        "pending-operators": 0
    })
}

/// `GET /taskmanagers` of a JobManager running `jobs`.
pub fn task_managers(ids: &FleetIds, jobs: &[Job<'_>], now_ms: i64) -> Value {
    let slots = ids.slots_per_task_manager;
    let mut tms = Vec::new();
    for job in jobs {
        let mut used = job.sim.slots();
        for k in 0..ids.task_managers(job.sim) {
            let tm = ids.task_manager(job.index, k);
            let here = used.min(slots);
            used -= here;
            tms.push(json!({
                "id": tm.id,
                "path": tm.path,
                "dataPort": 32951 + k,
                "jmxPort": -1,
                "timeSinceLastHeartbeat": now_ms - 1_500,
                "slotsNumber": slots,
                "freeSlots": slots - here,
                "assignedTasks": here * VERTEX_SPECS.len() as u32,
                "totalResource": {"cpuCores": 2.0, "taskHeapMemory": 25, "taskOffHeapMemory": 0,
                    "managedMemory": 230, "networkMemory": 64, "extendedResources": {}},
                "freeResource": {"cpuCores": 0.0, "taskHeapMemory": 0, "taskOffHeapMemory": 0,
                    "managedMemory": 0, "networkMemory": 0, "extendedResources": {}},
                "hardware": {"cpuCores": 2, "physicalMemory": 25_276_502_016_i64,
                    "freeMemory": 161_480_704, "managedMemory": 241_591_914},
                "memoryConfiguration": {"frameworkHeap": 134_217_728, "taskHeap": 26_843_542,
                    "frameworkOffHeap": 134_217_728, "taskOffHeap": 0,
                    "networkMemory": 67_108_864, "managedMemory": 241_591_914,
                    "jvmMetaspace": 268_435_456, "jvmOverhead": 201_326_592,
                    "totalFlinkMemory": 603_979_776, "totalProcessMemory": 1_073_741_824}
            }));
        }
    }
    json!({ "taskmanagers": tms })
}

/// `GET /jobmanager/config`: the keys a session cluster with the adaptive scheduler has.
pub fn jobmanager_config(ids: &FleetIds, jm: usize) -> Value {
    let entries = [
        ("jobmanager.rpc.address", ids.jm_host(jm)),
        ("jobmanager.scheduler", "adaptive".into()),
        ("execution.target", "embedded".into()),
        (
            "jobmanager.adaptive-scheduler.prefer-minimal-taskmanagers",
            "true".into(),
        ),
        (
            "taskmanager.numberOfTaskSlots",
            ids.slots_per_task_manager.to_string(),
        ),
        ("parallelism.default", "1".into()),
        ("execution.checkpointing.interval", "10000ms".into()),
        ("state.backend.type", "hashmap".into()),
        (
            "metrics.reporter.prom.factory.class",
            "org.apache.flink.metrics.prometheus.PrometheusReporterFactory".into(),
        ),
        ("metrics.reporter.prom.port", "9249".into()),
        ("rest.port", "8081".into()),
    ];
    Value::Array(
        entries
            .into_iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect(),
    )
}

/// `GET /jobs/:id/resource-requirements`.
pub fn requirements(ids: &FleetIds, sim: &JobSim) -> Value {
    let mut m = serde_json::Map::new();
    for (v, vertex) in sim.vertices.iter().enumerate() {
        m.insert(
            ids.vertex_id(v),
            json!({"parallelism": {"lowerBound": vertex.lower_bound, "upperBound": vertex.upper_bound}}),
        );
    }
    Value::Object(m)
}

/// `GET /jobs/:id/checkpoints/config`.
pub fn checkpoints_config() -> Value {
    json!({
        "mode": "exactly_once", "interval": 10_000, "timeout": 600_000, "min_pause": 0,
        "max_concurrent": 1,
        "externalization": {"enabled": false, "delete_on_cancellation": true},
        "state_backend": "HashMapStateBackend", "checkpoint_storage": "FileSystemCheckpointStorage",
        "unaligned_checkpoints": false, "tolerable_failed_checkpoints": 0,
        "aligned_checkpoint_timeout": 0, "checkpoints_after_tasks_finish": true,
        "state_changelog_enabled": false, "changelog_periodic_materialization_interval": 600_000,
        "changelog_storage": "memory"
    })
}

/// `GET /jobs/:id/checkpoints`: one completed checkpoint every 10 s since the start.
pub fn checkpoints(sim: &JobSim, now_ms: i64) -> Value {
    let completed = ((now_ms - sim.start_ms).max(0) / 10_000) as u64;
    let latest = (completed > 0).then(|| {
        json!({"id": completed, "status": "COMPLETED", "latest_ack_timestamp": now_ms - (now_ms - sim.start_ms) % 10_000})
    });
    json!({
        "counts": {"restored": sim.rescales, "total": completed, "in_progress": 0,
            "completed": completed, "failed": 0},
        "latest": {"completed": latest, "savepoint": null, "failed": null,
            "restored": (sim.rescales > 0).then(|| json!({
                "id": completed, "restore_timestamp": sim.running_since_ms,
                "is_savepoint": false, "external_path": "<checkpoint-not-externally-addressable>"
            }))},
        "history": []
    })
}

/// `GET /jobs/:id/exceptions` (2.x shape: the exception history only).
pub fn exceptions() -> Value {
    json!({"exceptionHistory": {"entries": [], "truncated": false}})
}

/// `GET /jobs/:id/metrics?get=a,b`: the job metrics the fleet knows (`numRestarts`,
/// `numRescales`, `uptime`), values as strings like Flink's.
pub fn job_metrics(sim: &JobSim, get: Option<&str>, now_ms: i64) -> Value {
    let known = [
        ("numRestarts", "0".to_string()),
        ("numRescales", sim.rescales.to_string()),
        ("uptime", (now_ms - sim.running_since_ms).max(0).to_string()),
    ];
    let wanted: Vec<&str> = get.map(|g| g.split(',').collect()).unwrap_or_default();
    Value::Array(
        known
            .into_iter()
            .filter(|(k, _)| wanted.is_empty() || wanted.contains(k))
            .map(|(k, v)| {
                if get.is_some() {
                    json!({"id": k, "value": v})
                } else {
                    json!({"id": k})
                }
            })
            .collect(),
    )
}

/// Flink's error body.
pub fn error(message: &str) -> Value {
    json!({ "errors": [message] })
}

//! A fake Prometheus HTTP API (`/api/v1/query`) for fault injection against the built
//! binary, behind a [`FaultPort`] (down, hung). The scaler's policy replaces every
//! signal's query with `fks_fault_<signal>{job_id=~"{{job_ids}}"}` ([`queries_yaml`]), so
//! the fake knows which signal a (batched) query asks for and answers the jobs of the
//! batch, one series per vertex, TaskManager or job, labelled as the product's defaults
//! return them (`job_id`, `task_id` / `tm_id`). [`PromFault`] switches what it answers.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
};

use axum::{body::Bytes, extract::State, http::StatusCode, response::IntoResponse, Router};
use flink_keda_scaler::{core::Signal, promql::Scope};

use super::fault_port::{FaultPort, Reach};

/// The metric name prefix of the tagged queries.
pub const PREFIX: &str = "fks_fault_";
/// Stray series of `busyTime` in [`PromFault::StrayFlood`].
pub const STRAY_SERIES: usize = 10_000;

/// What the fake answers (the port's reachability is switched separately).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromFault {
    /// Every signal as configured.
    None,
    /// HTTP 500 with a plain-text body.
    Status500,
    /// A 200 whose JSON is cut off.
    Malformed,
    /// Prometheus' own error envelope (HTTP 422, `errorType: execution`).
    ExecutionError,
    /// `busyTime` answers no series.
    Empty,
    /// `busyTime` of the first vertex is NaN.
    NaN,
    /// `busyTime` of the first vertex is +Inf.
    PosInf,
    /// `busyTime` of the first vertex is 1e300.
    Huge,
    /// `busyTime` answers the first vertex twice.
    Duplicate,
    /// `busyTime` answers [`STRAY_SERIES`] more series of the job, for task ids that are
    /// no vertex of it (an override without its filter). One signal only, 10,000 series:
    /// parsing 20,000 took 0.65–0.9 s in a debug build against the round's 1 s deadline (the
    /// tests' evaluation interval) and missed it once in CI on the loaded machine.
    StrayFlood,
    /// `heapUsed` answers [`STRAY_SERIES`] TaskManager series of the job (an override
    /// without its filter, on a TaskManager signal).
    StrayTaskManagers,
}

/// One job the fake answers for.
#[derive(Debug, Clone)]
pub struct PromJob {
    /// Flink job id.
    pub job_id: String,
    /// Vertex ids (the first is the source).
    pub vertices: Vec<String>,
    /// TaskManager ids.
    pub task_managers: Vec<String>,
}

struct Shared {
    jobs: Vec<PromJob>,
    fault: PromFault,
    /// busyTime of every vertex (ms/s).
    busy: f64,
    /// The stray rows of each job (built once).
    stray: BTreeMap<String, Arc<String>>,
}

/// The fake; its server runs on the test's runtime.
pub struct FakePrometheus {
    shared: Arc<Mutex<Shared>>,
    queries: Arc<AtomicU64>,
    /// The port the scaler is configured with.
    pub port: FaultPort,
}

/// The policy's `queries:` block (indented by 4 spaces) that tags every signal.
pub fn queries_yaml() -> String {
    let mut out = String::from("    queries:\n");
    for s in Signal::ALL {
        let _ = writeln!(
            out,
            "      {}: '{PREFIX}{}{{job_id=~\"{{{{job_ids}}}}\"}}'",
            s.name(),
            s.name()
        );
    }
    out
}

impl FakePrometheus {
    /// A healthy fake answering for `jobs`, every vertex busy `busy` ms/s.
    pub async fn start(jobs: Vec<PromJob>, busy: f64) -> Self {
        let shared = Arc::new(Mutex::new(Shared {
            jobs,
            fault: PromFault::None,
            busy,
            stray: BTreeMap::new(),
        }));
        let queries: Arc<AtomicU64> = Arc::default();
        let app = Router::new()
            .route("/api/v1/query", axum::routing::post(query).get(query))
            .with_state((shared.clone(), queries.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Prometheus");
        let backend = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            shared,
            queries,
            port: FaultPort::start(backend).await,
        }
    }

    /// The URL to configure (through the fault port).
    pub fn url(&self) -> String {
        self.port.url()
    }

    /// Switches what it answers.
    pub fn set_fault(&self, fault: PromFault) {
        self.shared.lock().expect("fake prometheus").fault = fault;
    }

    /// Switches whether it is reachable.
    pub fn set_reach(&self, reach: Reach) {
        self.port.set(reach);
    }

    /// Sets every vertex's busyTime (ms/s).
    pub fn set_busy(&self, busy: f64) {
        self.shared.lock().expect("fake prometheus").busy = busy;
    }

    /// Queries answered so far.
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }
}

type AppState = (Arc<Mutex<Shared>>, Arc<AtomicU64>);

/// The signal a tagged query asks for.
fn signal_of(query: &str) -> Option<Signal> {
    let rest = &query[query.find(PREFIX)? + PREFIX.len()..];
    let name = &rest[..rest.find('{').unwrap_or(rest.len())];
    Signal::ALL.into_iter().find(|s| s.name() == name)
}

async fn query(
    State((shared, count)): State<AppState>,
    raw: axum::extract::RawQuery,
    body: Bytes,
) -> axum::response::Response {
    count.fetch_add(1, Ordering::Relaxed);
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(&body)
        .chain(url::form_urlencoded::parse(
            raw.0.as_deref().unwrap_or("").as_bytes(),
        ))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let Some(query) = form.get("query") else {
        return (StatusCode::BAD_REQUEST, "no query").into_response();
    };
    let Some(signal) = signal_of(query) else {
        return (StatusCode::BAD_REQUEST, "not a tagged query").into_response();
    };
    let mut s = shared.lock().expect("fake prometheus");
    let json = |status: StatusCode, body: String| {
        (status, [("content-type", "application/json")], body).into_response()
    };
    match s.fault {
        PromFault::Status500 => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
        PromFault::Malformed => {
            return json(
                StatusCode::OK,
                r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":"#.into(),
            )
        }
        PromFault::ExecutionError => {
            return json(
                StatusCode::UNPROCESSABLE_ENTITY,
                r#"{"status":"error","errorType":"execution","error":"query processing would load too many samples into memory"}"#.into(),
            )
        }
        _ => {}
    }
    let rows = rows(&mut s, signal, &job_ids_of(query));
    json(
        StatusCode::OK,
        format!(r#"{{"status":"success","data":{{"resultType":"vector","result":[{rows}]}}}}"#),
    )
}

/// One row: `{"metric":{labels},"value":[t,"v"]}`.
fn row(out: &mut String, job_id: &str, key: Option<(&str, &str)>, value: f64) {
    if !out.is_empty() {
        out.push(',');
    }
    let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
    let value = if value.is_nan() {
        "NaN".to_string()
    } else if value.is_infinite() {
        "+Inf".to_string()
    } else {
        value.to_string()
    };
    let label = key.map_or(String::new(), |(k, v)| format!(r#","{k}":"{v}""#));
    let _ = write!(
        out,
        r#"{{"metric":{{"job_id":"{job_id}"{label}}},"value":[{now:.3},"{value}"]}}"#
    );
}

/// The healthy value of `signal` for vertex `v` (None: no series there).
fn vertex_value(signal: Signal, v: usize, busy: f64) -> Option<f64> {
    let source = v == 0;
    match signal {
        Signal::BusyTime => Some(busy),
        Signal::BackPressuredTime => Some(0.0),
        Signal::RecordsIn | Signal::RecordsOut => Some(1_000.0),
        Signal::PendingRecords | Signal::LagGrowth => source.then_some(0.0),
        Signal::SourcePartitions => source.then_some(64.0),
        _ => None,
    }
}

/// The job ids of the query's `job_id=~"a|b|..."` (a batch), empty when it has none.
fn job_ids_of(query: &str) -> Vec<&str> {
    let Some(start) = query.find("job_id=~\"") else {
        return Vec::new();
    };
    let rest = &query[start + 9..];
    rest[..rest.find('"').unwrap_or(rest.len())]
        .split('|')
        .collect()
}

/// The rows of `signal` for the jobs named (all when none is).
fn rows(s: &mut Shared, signal: Signal, only: &[&str]) -> String {
    let mut out = String::new();
    let (fault, busy) = (s.fault, s.busy);
    if fault == PromFault::Empty && signal == Signal::BusyTime {
        return out;
    }
    let jobs: Vec<PromJob> = s
        .jobs
        .iter()
        .filter(|j| only.is_empty() || only.contains(&j.job_id.as_str()))
        .cloned()
        .collect();
    for job in &jobs {
        let id = job.job_id.as_str();
        match Scope::of(signal) {
            Scope::Vertex => {
                for (i, v) in job.vertices.iter().enumerate() {
                    let Some(mut value) = vertex_value(signal, i, busy) else {
                        continue;
                    };
                    if signal == Signal::BusyTime && i == 0 {
                        value = match fault {
                            PromFault::NaN => f64::NAN,
                            PromFault::PosInf => f64::INFINITY,
                            PromFault::Huge => 1e300,
                            _ => value,
                        };
                        if fault == PromFault::Duplicate {
                            row(&mut out, id, Some(("task_id", v)), value);
                        }
                    }
                    row(&mut out, id, Some(("task_id", v)), value);
                }
                if fault == PromFault::StrayFlood && signal == Signal::BusyTime {
                    let stray = s
                        .stray
                        .entry(id.to_string())
                        .or_insert_with(|| Arc::new(stray_rows(id)))
                        .clone();
                    out.push(',');
                    out.push_str(&stray);
                }
            }
            Scope::TaskManager => {
                let value = match signal {
                    Signal::CpuLoad => 0.5,
                    Signal::HeapUsed => 2e8,
                    Signal::HeapMax => 1e9,
                    _ => 5.0,
                };
                for tm in &job.task_managers {
                    row(&mut out, id, Some(("tm_id", tm)), value);
                }
                if fault == PromFault::StrayTaskManagers && signal == Signal::HeapUsed {
                    for i in 0..STRAY_SERIES {
                        row(
                            &mut out,
                            id,
                            Some(("tm_id", &format!("stray-tm-{i}"))),
                            value,
                        );
                    }
                }
            }
            Scope::Job => {
                let value = match signal {
                    Signal::SlotsTotal => 2.0 * job.task_managers.len() as f64,
                    _ => 0.0,
                };
                row(&mut out, id, None, value);
            }
        }
    }
    out
}

/// [`STRAY_SERIES`] rows of `job_id` for task ids that are no vertex of it.
fn stray_rows(job_id: &str) -> String {
    let mut out = String::new();
    for i in 0..STRAY_SERIES {
        row(
            &mut out,
            job_id,
            Some(("task_id", &format!("{:032x}", 0xdead_0000_u64 + i as u64))),
            500.0,
        );
    }
    out
}

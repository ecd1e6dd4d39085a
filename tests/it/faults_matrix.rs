//! The fault matrix (issue 12) against the BUILT BINARY: one `serve` process, one fake
//! Prometheus ([`FakePrometheus`]) and one fake JobManager ([`FakeFlink`]), each behind a
//! [`FaultPort`], switched into every mode of [`modes::MODES`] in turn. For each mode and
//! each rpc of KEDA's proto (GetMetricSpec, GetMetrics, IsActive, the first StreamIsActive
//! message) it asserts:
//!
//! * the right gRPC code, and a message naming the cause (signal, endpoint) — or, where
//!   the job can still be sized, an answer that is never 0 and never below what the job's
//!   resource requirements need (read from the fake), with the cause in the log;
//! * an answer within the rpc deadline (`grpc.rpcTimeout` 2 s; the client's deadline is
//!   3 s), no panic (the process runs, its log has no "panicked");
//! * recovery: when the fault clears, the next answers are the normal one;
//! * bounded resources: open file descriptors (`/proc/<pid>/fd`) at most [`MAX_FDS`]
//!   after every mode, RSS after the stray-series flood at most [`MAX_RSS_MIB`] MiB and the
//!   `/debug/jobs` page at most [`MAX_DEBUG_BYTES`] bytes.
//!
//! The table (mode × rpc → code, value, message excerpt) is printed with `--nocapture`:
//! `cargo test --test it faults_matrix:: -- --nocapture`. Needs nothing but the binary.

mod fleet_fds;
mod modes;

use std::time::{Duration, Instant};

use flink_keda_scaler::keda::pb::{
    external_scaler_client::ExternalScalerClient, GetMetricsRequest, ScaledObjectRef,
};
use tonic::{transport::Channel, Code};

use self::modes::{Expect, Fault, Mode, MODES};
use crate::support::{
    fake_flink::{FakeFlink, SLOTS_PER_TM},
    fake_prometheus::{queries_yaml, FakePrometheus, PromFault, PromJob},
    fault_port::{FaultPort, Reach},
    grpc_fake::so_ref,
    prometheus::SyntheticJob,
    scaler::{config_yaml, e2e_job, ScalerProcess},
};

/// Open file descriptors allowed in the scaler at any point of the matrix.
pub const MAX_FDS: usize = 256;
/// RSS allowed after the stray-series flood.
pub const MAX_RSS_MIB: u64 = 160;
/// Size allowed of the `/debug/jobs` page during a flood (one job keeps at most
/// `promql::read::MAX_TASK_MANAGERS` TaskManagers, about 240 KB in its report).
pub const MAX_DEBUG_BYTES: usize = 512 * 1024;
/// The client's deadline on every rpc (the scaler's own is 2 s).
const CLIENT_DEADLINE: Duration = Duration::from_secs(3);
/// Longest wait for a fault to show, or to clear.
const CONVERGE: Duration = Duration::from_secs(30);
/// Parallelism of every vertex in the healthy state.
const P: u32 = 4;
/// busyTime in the healthy state (ms/s: within the band, no rescale).
const BUSY: f64 = 500.0;
/// busyTime that makes the core want a scale-up.
const HIGH_BUSY: f64 = 950.0;

/// The policy (4-space YAML): a rescale may be tried every second; PUTs always fail (the
/// fake refuses them), so the job's requirements never change.
fn policy() -> String {
    format!(
        "    minTaskManagers: 1\n    maxTaskManagers: 8\n    stabilization: 1s\n    cooldown: 1s\n\
         \x20   maxRescalesPerHour: 1000\n{}",
        queries_yaml()
    )
}

/// Everything one matrix run uses.
struct Env {
    scaler: ScalerProcess,
    prom: FakePrometheus,
    flink: FakeFlink,
    flink_port: FaultPort,
    client: ExternalScalerClient<Channel>,
    so: ScaledObjectRef,
    metric: String,
    /// The healthy job's vertices (parallelism, upper bound), restored after each mode.
    healthy: (u32, Vec<(u32, Option<u32>)>),
}

/// One rpc's outcome in one mode.
struct Row {
    mode: &'static str,
    rpc: &'static str,
    code: Code,
    value: Option<f64>,
    message: String,
    millis: u128,
}

impl Env {
    async fn start(job: SyntheticJob) -> Self {
        let flink = FakeFlink::start(&job, false).await;
        let flink_port = FaultPort::start(flink.server.address().to_owned()).await;
        let snapshot = flink.snapshot();
        let prom = FakePrometheus::start(
            vec![PromJob {
                job_id: job.job_id.clone(),
                vertices: job.vertices.iter().map(|v| v.id.clone()).collect(),
                task_managers: (0..snapshot.task_managers)
                    .map(|i| format!("10.0.0.{}:6122-{:06x}", i + 1, 0xaaaaaa + i))
                    .collect(),
            }],
            BUSY,
        )
        .await;
        let config = config_yaml(&prom.url(), &policy()).replace(
            "    timeout: 1s\n",
            "    timeout: 1s\n    scrapeInterval: 1s\n",
        );
        let scaler = ScalerProcess::start(&config).await;
        let so = so_ref(
            "faults",
            "orders-fault-so",
            &[
                ("flinkRestUrl", flink_port.url().as_str()),
                ("jobName", job.job_name.as_str()),
            ],
        );
        let mut client = scaler.client().await;
        let spec = client
            .get_metric_spec(so.clone())
            .await
            .expect("GetMetricSpec")
            .into_inner();
        let metric = spec.metric_specs[0].metric_name.clone();
        let healthy = (
            snapshot.task_managers,
            snapshot
                .vertices
                .iter()
                .map(|v| (v.parallelism, v.upper_bound))
                .collect(),
        );
        Self {
            scaler,
            prom,
            flink,
            flink_port,
            client,
            so,
            metric,
            healthy,
        }
    }

    /// What the job's resource requirements need (the fake's upper bounds).
    fn need(&self) -> u32 {
        let s = self.flink.snapshot();
        let slots = s
            .vertices
            .iter()
            .map(|v| v.upper_bound.unwrap_or(v.parallelism))
            .max()
            .unwrap_or(1);
        slots.div_ceil(SLOTS_PER_TM).max(1)
    }

    fn apply(&self, mode: &Mode) {
        if mode.high_load {
            self.prom.set_busy(HIGH_BUSY);
        }
        match mode.fault {
            Fault::Prom(f) => self.prom.set_fault(f),
            Fault::PromReach(r) => self.prom.set_reach(r),
            Fault::Flink(f) => self.flink.state.lock().expect("state").fault = Some(f),
            Fault::FlinkReach(r) => self.flink_port.set(r),
            Fault::TaskManagerLost | Fault::NoTaskManager => {
                let mut s = self.flink.state.lock().expect("state");
                for v in &mut s.vertices {
                    v.upper_bound = Some(v.parallelism);
                    v.parallelism = (v.parallelism / 2).max(1);
                }
                s.task_managers = 1;
                if matches!(mode.fault, Fault::NoTaskManager) {
                    s.task_managers = 0;
                    s.fault = Some(crate::support::fake_flink::FlinkFault::Restarting);
                }
            }
        }
    }

    fn clear(&self) {
        self.prom.set_busy(BUSY);
        self.prom.set_fault(PromFault::None);
        self.prom.set_reach(Reach::Up);
        self.flink_port.set(Reach::Up);
        let mut s = self.flink.state.lock().expect("state");
        s.fault = None;
        s.task_managers = self.healthy.0;
        for (v, (p, upper)) in s.vertices.iter_mut().zip(&self.healthy.1) {
            v.parallelism = *p;
            v.upper_bound = *upper;
        }
    }

    async fn get_metrics(&mut self) -> Result<f64, tonic::Status> {
        let mut req = tonic::Request::new(GetMetricsRequest {
            scaled_object_ref: Some(self.so.clone()),
            metric_name: self.metric.clone(),
        });
        req.set_timeout(CLIENT_DEADLINE);
        let r = self.client.get_metrics(req).await?.into_inner();
        let v = r.metric_values.first().map(|m| m.metric_value_float);
        Ok(v.unwrap_or(-1.0))
    }

    /// One rpc, timed; its code, value and message.
    async fn rpc(&mut self, rpc: &'static str, mode: &'static str) -> Row {
        let started = Instant::now();
        let so = self.so.clone();
        let mut req = tonic::Request::new(so);
        req.set_timeout(CLIENT_DEADLINE);
        let out: Result<Option<f64>, tonic::Status> = match rpc {
            "GetMetricSpec" => self.client.get_metric_spec(req).await.map(|r| {
                r.into_inner()
                    .metric_specs
                    .first()
                    .map(|s| s.target_size_float)
            }),
            "GetMetrics" => self.get_metrics().await.map(Some),
            "IsActive" => self
                .client
                .is_active(req)
                .await
                .map(|r| Some(f64::from(u8::from(r.into_inner().result)))),
            _ => match self.client.stream_is_active(req).await {
                Ok(stream) => match stream.into_inner().message().await {
                    Ok(Some(m)) => Ok(Some(f64::from(u8::from(m.result)))),
                    Ok(None) => Ok(None),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            },
        };
        let millis = started.elapsed().as_millis();
        match out {
            Ok(value) => Row {
                mode,
                rpc,
                code: Code::Ok,
                value,
                message: String::new(),
                millis,
            },
            Err(s) => Row {
                mode,
                rpc,
                code: s.code(),
                value: None,
                message: s.message().to_string(),
                millis,
            },
        }
    }

    /// GetMetrics for a ScaledObject the scaler has not seen, whose first evaluation waits
    /// on the hung upstream: a JobManager URL never read before (a hung port), or a
    /// `busyTimeQuery` no batch has yet (a catch-up round on the hung Prometheus).
    async fn first_call(&mut self, mode: &Mode, n: usize) -> Row {
        let mut so = self.so.clone();
        so.name = format!("first-call-{n}");
        let hung = FaultPort::start(self.flink.server.address().to_owned()).await;
        hung.set(Reach::Hang);
        if matches!(mode.fault, Fault::FlinkReach(_)) {
            so.scaler_metadata.insert("flinkRestUrl".into(), hung.url());
        } else {
            so.scaler_metadata.insert(
                "busyTimeQuery".into(),
                format!("fks_fault_busyTime{{job_id=~\"{{{{job_ids}}}}\",call=\"{n}\"}}"),
            );
        }
        let mode = mode.name;
        let mut req = tonic::Request::new(GetMetricsRequest {
            scaled_object_ref: Some(so),
            metric_name: self.metric.clone(),
        });
        req.set_timeout(CLIENT_DEADLINE);
        let started = Instant::now();
        let out = self.client.get_metrics(req).await;
        let (code, message) = match out {
            Ok(_) => (Code::Ok, String::new()),
            Err(s) => (s.code(), s.message().to_string()),
        };
        Row {
            mode,
            rpc: "GetMetrics (first call)",
            code,
            value: None,
            message,
            millis: started.elapsed().as_millis(),
        }
    }

    /// Open file descriptors of the scaler.
    fn fds(&self) -> usize {
        Self::fds_of(&self.scaler)
    }

    /// Open file descriptors of `scaler` (`/proc/<pid>/fd`).
    fn fds_of(scaler: &ScalerProcess) -> usize {
        let pid = scaler.pid().expect("scaler pid");
        std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
    }
}

/// True when `text` contains one of the `|`-separated alternatives of every entry.
fn names_all(text: &str, names: &[&str]) -> bool {
    names
        .iter()
        .all(|alts| alts.split('|').any(|a| text.contains(a)))
}

fn excerpt(text: &str, n: usize) -> String {
    let t: String = text.chars().take(n).collect();
    if t.len() < text.len() {
        format!("{t}…")
    } else {
        t
    }
}

/// What the scaler said since `log_before`: its log and its `/debug/jobs` page.
async fn said(env: &Env, log_before: usize) -> String {
    let log = env.scaler.log();
    let page = reqwest::get(format!("{}/debug/jobs", env.scaler.admin_url()))
        .await
        .expect("GET /debug/jobs")
        .text()
        .await
        .expect("/debug/jobs body");
    format!("{}\n{page}", log.get(log_before..).unwrap_or_default())
}

/// Waits until the fault shows: the expected error code, or (for modes that still
/// answer) two ticks after the fault was set and the cause in what the scaler said.
async fn wait_fault(
    env: &mut Env,
    mode: &Mode,
    since: Instant,
    log_before: usize,
) -> Result<(), String> {
    loop {
        let got = env.get_metrics().await;
        let shown = match (mode.expect, &got) {
            (Expect::Fails(code, _), Err(s)) => s.code() == code,
            (Expect::Answers(names), _) => {
                since.elapsed() > Duration::from_millis(2_500)
                    && names_all(&said(env, log_before).await, names)
            }
            _ => false,
        };
        if shown {
            return Ok(());
        }
        if since.elapsed() > CONVERGE {
            return Err(format!(
                "{}: not seen within {CONVERGE:?}; last {got:?}",
                mode.name
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until GetMetrics answers `normal` again.
async fn wait_recovery(env: &mut Env, normal: f64) -> Result<Duration, String> {
    let since = Instant::now();
    loop {
        let got = env.get_metrics().await;
        if got.as_ref().is_ok_and(|v| *v == normal) {
            return Ok(since.elapsed());
        }
        if since.elapsed() > CONVERGE {
            return Err(format!("no recovery within {CONVERGE:?}; last {got:?}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The first call for a new ScaledObject during a hang says what it waited on (or, when
/// the upstream's own timeout came first, that upstream's error).
fn check_first_call(row: &Row, mode: &Mode) -> Vec<String> {
    let upstream = match mode.fault {
        Fault::PromReach(_) => "waiting for the first evaluation: Prometheus 'default' at http://",
        _ => "Flink REST http://",
    };
    // or, when Prometheus' own 1 s timeout ends the first evaluation before the rpc's
    // deadline (seen once in CI under load: after 1,074 ms), that timeout naming the signal
    const PROM_TIMED_OUT: [&str; 2] = ["Prometheus 'default': signal ", ": no answer within 1s"];
    let named = row.message.contains(upstream)
        || (matches!(mode.fault, Fault::PromReach(_))
            && PROM_TIMED_OUT.iter().all(|p| row.message.contains(p)));
    let ok = row.code == Code::Unavailable && named && row.millis <= CLIENT_DEADLINE.as_millis();
    if ok {
        return Vec::new();
    }
    vec![format!(
        "{} / first call: {:?} {} ({} ms): want UNAVAILABLE naming {upstream:?}",
        mode.name, row.code, row.message, row.millis
    )]
}

/// Checks one row against the mode's expectation; the problems found.
fn check(row: &Row, mode: &Mode, need: u32, log: &str) -> Vec<String> {
    let mut bad = Vec::new();
    let at = format!("{} / {}", mode.name, row.rpc);
    if row.millis > CLIENT_DEADLINE.as_millis() {
        bad.push(format!("{at}: answered after {} ms", row.millis));
    }
    if row.rpc == "GetMetricSpec" {
        if row.code != Code::Ok || row.value != Some(1.0) {
            bad.push(format!(
                "{at}: the spec must not depend on upstreams: {:?} {}",
                row.code, row.message
            ));
        }
        return bad;
    }
    match mode.expect {
        Expect::Fails(code, names) => {
            if row.code != code {
                bad.push(format!(
                    "{at}: {:?} {:?} {}, want {code:?}",
                    row.code, row.value, row.message
                ));
            } else if !names_all(&row.message, names) {
                bad.push(format!(
                    "{at}: message {:?} does not name {names:?}",
                    row.message
                ));
            }
        }
        Expect::Answers(names) => {
            if row.code != Code::Ok {
                bad.push(format!(
                    "{at}: {:?} {}, want an answer",
                    row.code, row.message
                ));
            } else if row.rpc == "GetMetrics"
                && row.value.is_none_or(|v| v < f64::from(need) || v <= 0.0)
            {
                bad.push(format!(
                    "{at}: answered {:?}, below the requirements' need {need}",
                    row.value
                ));
            } else if row.rpc != "GetMetrics" && row.value != Some(1.0) {
                bad.push(format!("{at}: not active: {:?}", row.value));
            }
            if !names_all(log, names) {
                bad.push(format!("{at}: the log does not name {names:?}"));
            }
        }
    }
    bad
}

const RPCS: [&str; 4] = ["GetMetricSpec", "GetMetrics", "IsActive", "StreamIsActive"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_matrix_against_the_binary() {
    let mut job = e2e_job(P);
    job.job_name = "orders-fault".into();
    let mut env = Env::start(job).await;
    let normal = f64::from(env.need());
    wait_recovery(&mut env, normal)
        .await
        .unwrap_or_else(|e| panic!("the healthy answer: {e}\n{}", env.scaler.log()));
    let (mut rows, mut problems, mut peak_fds) = (Vec::new(), Vec::new(), env.fds());
    for mode in MODES {
        let (log_before, need) = (env.scaler.log().len(), env.need());
        env.apply(mode);
        if let Err(e) = wait_fault(&mut env, mode, Instant::now(), log_before).await {
            problems.push(e);
        }
        let during = said(&env, log_before).await;
        for rpc in RPCS {
            let row = env.rpc(rpc, mode.name).await;
            problems.extend(check(&row, mode, need, &during));
            rows.push(row);
        }
        if let Fault::PromReach(Reach::Hang) | Fault::FlinkReach(Reach::Hang) = mode.fault {
            let row = env.first_call(mode, rows.len()).await;
            problems.extend(check_first_call(&row, mode));
            rows.push(row);
        }
        if let Fault::Prom(PromFault::StrayFlood | PromFault::StrayTaskManagers) = mode.fault {
            problems.extend(flood_bounds(&env, mode).await);
        }
        peak_fds = peak_fds.max(env.fds());
        env.clear();
        match wait_recovery(&mut env, normal).await {
            Ok(d) => eprintln!("{}: recovered in {d:?}", mode.name),
            Err(e) => problems.push(format!("{}: {e}", mode.name)),
        }
        if let Fault::Prom(PromFault::StrayFlood | PromFault::StrayTaskManagers) = mode.fault {
            let rss = env.scaler.rss_bytes().unwrap_or(0) / (1024 * 1024);
            println!("{} cleared: RSS {rss} MiB", mode.name);
        }
        assert!(
            !env.scaler.log().contains("panicked"),
            "{}: the scaler panicked:\n{}",
            mode.name,
            env.scaler.log()
        );
        assert!(env.scaler.running(), "{}: the scaler exited", mode.name);
    }
    print_table(&rows);
    println!(
        "open fds: peak {peak_fds} (bound {MAX_FDS}); fake Prometheus queries: {}",
        env.prom.queries()
    );
    assert!(rows.len() >= 60, "{} cases", rows.len());
    if peak_fds > MAX_FDS {
        problems.push(format!("{peak_fds} open file descriptors, bound {MAX_FDS}"));
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// During a stray-series flood: RSS and the `/debug/jobs` page stay bounded.
async fn flood_bounds(env: &Env, mode: &Mode) -> Vec<String> {
    let mut bad = Vec::new();
    let page = said(env, usize::MAX).await;
    let rss_mib = env.scaler.rss_bytes().unwrap_or(0) / (1024 * 1024);
    let report: serde_json::Value = serde_json::from_str(page.trim()).unwrap_or_default();
    let queries: Vec<String> = report["jobs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|j| j["scaled_object"] == "faults/orders-fault-so")
        .flat_map(|j| j["queries"].as_array().cloned().unwrap_or_default())
        .filter(|q| q["series"].as_u64().unwrap_or(0) > 1_000)
        .map(|q| {
            format!(
                "{} {} series in {} ms",
                q["signal"], q["series"], q["duration_ms"]
            )
        })
        .collect();
    println!("{}: queries {}", mode.name, queries.join("; "));
    println!(
        "{}: RSS {rss_mib} MiB (bound {MAX_RSS_MIB}), /debug/jobs {} bytes (bound {MAX_DEBUG_BYTES})",
        mode.name,
        page.len()
    );
    if rss_mib > MAX_RSS_MIB {
        bad.push(format!(
            "RSS {rss_mib} MiB during the flood, bound {MAX_RSS_MIB}"
        ));
    }
    if page.len() > MAX_DEBUG_BYTES {
        bad.push(format!(
            "/debug/jobs {} bytes during the flood, bound {MAX_DEBUG_BYTES}",
            page.len()
        ));
    }
    bad
}

/// The message without `evaluation of <ScaledObject> failed: ` (the same on every row).
fn strip_prefix(message: &str) -> &str {
    message
        .split_once(" failed: ")
        .map_or(message, |(_, rest)| rest)
}

fn print_table(rows: &[Row]) {
    println!("| mode | rpc | code | value | ms | message |");
    println!("|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {:?} | {} | {} | {} |",
            r.mode,
            r.rpc,
            r.code,
            r.value.map_or("-".into(), |v| v.to_string()),
            r.millis,
            excerpt(strip_prefix(&r.message), 160).replace('|', "/")
        );
    }
}

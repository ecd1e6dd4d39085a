//! Bounded file descriptors for a fleet (issue 12: about 1,200 descriptors were held while
//! Prometheus was slow for 200 jobs, so a 1,024 limit would break): 200 jobs of the
//! synthetic fleet on 10 JobManagers (each behind a [`FaultPort`]) and the fake
//! Prometheus, every ScaledObject answered; then Prometheus and every JobManager hang for
//! several evaluation intervals while KEDA keeps polling every job: the scaler's open
//! descriptors (`/proc/<pid>/fd`) stay at most [`MAX_FDS`], and every job answers again
//! once the upstreams are back.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use fks_components::fleet::{FleetOptions, SyntheticFleet};
use flink_keda_scaler::keda::pb::{external_scaler_client::ExternalScalerClient, ScaledObjectRef};
use futures_util::{stream, StreamExt};
use tonic::transport::Channel;

use super::{policy, Env, BUSY, CONVERGE, MAX_FDS};
use crate::support::{
    fake_prometheus::{FakePrometheus, PromJob},
    fault_port::{FaultPort, Reach},
    grpc_fake::so_ref,
    scaler::{config_yaml, ScalerProcess},
};

const JOBS: usize = 200;
const JOB_MANAGERS: usize = 10;
/// How long every upstream hangs.
const HANG: Duration = Duration::from_secs(12);

/// IsActive (the same evaluation as GetMetrics) for every ScaledObject, 50 in flight; how
/// many answered.
async fn poll_all(client: &ExternalScalerClient<Channel>, refs: &[ScaledObjectRef]) -> usize {
    stream::iter(refs.iter().cloned())
        .map(|r| {
            let mut client = client.clone();
            async move {
                let mut req = tonic::Request::new(r);
                req.set_timeout(Duration::from_secs(3));
                client.is_active(req).await.is_ok()
            }
        })
        .buffer_unordered(50)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await
}

/// Polls every ScaledObject until all answer.
async fn wait_all(client: &ExternalScalerClient<Channel>, refs: &[ScaledObjectRef], what: &str) {
    let since = Instant::now();
    loop {
        let ok = poll_all(client, refs).await;
        if ok == refs.len() {
            eprintln!("{what}: all {ok} answered after {:?}", since.elapsed());
            return;
        }
        assert!(
            since.elapsed() < CONVERGE * 4,
            "{what}: {ok} of {} answered",
            refs.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fds_stay_bounded_while_upstreams_hang_for_200_jobs() {
    let fleet = SyntheticFleet::start(&FleetOptions {
        jobs: JOBS,
        job_managers: JOB_MANAGERS,
        parallelism: 2,
        ..FleetOptions::default()
    })
    .expect("start the synthetic fleet");
    let mut ports = Vec::new();
    for target in fleet.metrics_targets() {
        let addr: SocketAddr = target.parse().expect("JobManager address");
        ports.push(FaultPort::start(addr).await);
    }
    let jobs = fleet.jobs();
    let prom = FakePrometheus::start(
        jobs.iter()
            .map(|j| PromJob {
                job_id: j.id.clone(),
                vertices: j.vertex_ids.clone(),
                task_managers: vec!["tm-0".into()],
            })
            .collect(),
        BUSY,
    )
    .await;
    // a 5 s interval and a 4 s Prometheus timeout: 200 jobs' batched rounds in a debug
    // build on a shared 2-core machine
    let config = config_yaml(&prom.url(), &policy())
        .replace("  interval: 1s\n", "  interval: 5s\n")
        .replace(
            "    timeout: 1s\n",
            "    timeout: 4s\n    scrapeInterval: 1s\n",
        );
    let scaler = ScalerProcess::start(&config).await;
    let refs: Vec<ScaledObjectRef> = jobs
        .iter()
        .map(|j| {
            so_ref(
                "fleet",
                &format!("job-{}", j.index),
                &[
                    ("flinkRestUrl", ports[j.job_manager].url().as_str()),
                    ("jobId", j.id.as_str()),
                ],
            )
        })
        .collect();
    let client = scaler.client().await;
    wait_all(&client, &refs, "healthy").await;
    let fds = || Env::fds_of(&scaler);
    let healthy = fds();

    prom.set_reach(Reach::Hang);
    ports.iter().for_each(|p| p.set(Reach::Hang));
    let (since, mut peak, mut answered) = (Instant::now(), healthy, 0);
    while since.elapsed() < HANG {
        answered += poll_all(&client, &refs).await;
        peak = peak.max(fds());
    }
    peak = peak.max(fds());
    prom.set_reach(Reach::Up);
    ports.iter().for_each(|p| p.set(Reach::Up));
    wait_all(&client, &refs, "recovered").await;
    println!(
        "{JOBS} jobs on {JOB_MANAGERS} JobManagers: open fds {healthy} healthy, peak {peak} while Prometheus and every JobManager hung for {HANG:?} (bound {MAX_FDS}); answers during the hang: {answered} (evaluations made before it, until stale)"
    );
    assert!(
        peak <= MAX_FDS,
        "{peak} open file descriptors while upstreams hung, bound {MAX_FDS}"
    );
    assert!(scaler.running(), "the scaler exited:\n{}", scaler.log());
}

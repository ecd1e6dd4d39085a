//! Two real `flink-keda-scaler serve` processes against one real kube-apiserver (+ etcd),
//! one real Prometheus scraping a synthetic Flink exporter, and one fake JobManager
//! (wiremock). The processes run as the shipped ServiceAccount (`manifests/rbac.yaml`,
//! through kubeconfig impersonation), discover the JobManager from the TaskManager
//! Deployment behind the ScaledObject, and elect a leader through a Lease. Proven:
//!
//! 1. exactly one leader (`flink_keda_scaler_is_leader` gauge + Lease holder), and
//!    exactly one resource-requirements PUT for the decision although both evaluate;
//! 2. the state ConfigMap holds the decision (`applied: true`) and the in-flight rescale,
//!    and the follower answers GetMetrics like the leader within a tick;
//! 3. the rescale's Kubernetes Events (RescaleStarted by the leader that PUT,
//!    RescaleCompleted by the leader that saw it through) land on the ScaledObject;
//! 4. SIGKILL of the leader: the other process takes the Lease within leaseDuration + a
//!    few retry periods, resumes the in-flight rescale from the ConfigMap without a second
//!    PUT, and completes it;
//! 5. surplus TaskManagers: the leader gives the idle TaskManager's pod a lower
//!    `controller.kubernetes.io/pod-deletion-cost` than the busy ones; after a second
//!    failover (a third replica), the new leader clears the annotations its predecessor
//!    set once the idle pod is gone.
//!
//! `namespaced` runs the binary as the namespaced install (a real ServiceAccount token,
//! namespaced Roles only, `kubernetes.namespaces`) and checks the apiserver's audit log.
//!
//! `cargo test --test it kube_runtime:: -- --nocapture` (needs kube-apiserver, etcd and
//! Prometheus: `scripts/install-components.sh`; SKIPPED without them, fails in CI).

use crate::support::{self, kube_runtime};

use std::{
    collections::{BTreeMap, HashMap},
    time::{Duration, Instant},
};

use flink_keda_scaler::{
    core,
    keda::pb::{external_scaler_client::ExternalScalerClient, GetMetricsRequest, ScaledObjectRef},
    kube::{resources, PersistedJob, StateStore, DELETION_COST_ANNOTATION},
};
use k8s_openapi::api::{
    apps::v1::Deployment,
    coordination::v1::Lease,
    core::v1::{ConfigMap, Pod},
    events::v1::Event,
};
use kube::{
    api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams},
    Client, ResourceExt,
};
use kube_runtime::{export_load, FakeFlink, Scaler, SLOTS_PER_TM};
use serde_json::json;
use support::{
    kube::{apply_rbac, install_crds, namespace, KubeApiServer, SERVICE_ACCOUNT},
    prometheus::{PrometheusHarness, SyntheticExporter, SyntheticJob},
};
use tonic::transport::Channel;

mod admin;
mod namespaced;
mod objects;
mod state_gc;
use objects::{
    create_scale_target, create_tm_pod, deletion_costs, events_on_scaled_object, lease_holder,
    state, tm_ip,
};

const LEASE: &str = "fks-runtime-leader";
const LEASE_DURATION: Duration = Duration::from_secs(3);
const RETRY_PERIOD: Duration = Duration::from_millis(500);
const SO: &str = "orders";
const DEPLOYMENT: &str = "orders-taskmanager";
const APP: &str = "orders-tm";
/// Parallelism the job starts at (2 TaskManagers of 2 slots).
const P: u32 = 4;

fn config(prom_url: &str) -> String {
    format!(
        "grpc:\n  listenAddress: \"127.0.0.1:1\"\n  rpcTimeout: 10s\n  streamInterval: 1s\n\
         http:\n  listenAddress: \"127.0.0.1:2\"\n\
         evaluation:\n  interval: 1s\n  idleTimeout: 10m\n\
         prometheus:\n  default:\n    url: \"{prom_url}\"\n    timeout: 2s\n\
         flink:\n  timeout: 2s\n  rescaleTimeout: 60s\n  allowedUrls: [\"http://127.0.0.1:*\"]\n\
         kubernetes:\n  enabled: true\n  leaderElection:\n    leaseName: {LEASE}\n\
         \x20   leaseDuration: 3s\n    renewDeadline: 2s\n    retryPeriod: 500ms\n\
         policies:\n  default:\n    targetUtilization: 0.5\n    utilizationLow: 0.2\n\
         \x20   utilizationHigh: 0.85\n    catchUpDuration: 5m\n    stabilization: 1s\n\
         \x20   scaleDownDelay: 10m\n    cooldown: 10m\n    maxRescalesPerHour: 6\n\
         \x20   minTaskManagers: 1\n    maxTaskManagers: 10\n"
    )
}

/// The admin kubeconfig, acting as the scaler's ServiceAccount (impersonation), so the
/// processes run with exactly the shipped RBAC.
fn service_account_kubeconfig(
    server: &KubeApiServer,
    ns: &str,
    dir: &std::path::Path,
) -> std::path::PathBuf {
    let text = std::fs::read_to_string(server.dir().join("kubeconfig")).expect("kubeconfig");
    let mut kc: serde_yaml::Value = serde_yaml::from_str(&text).expect("kubeconfig yaml");
    let user = &mut kc["users"][0]["user"];
    user["as"] = format!("system:serviceaccount:{ns}:{SERVICE_ACCOUNT}").into();
    user["as-groups"] = serde_yaml::to_value(vec![
        "system:serviceaccounts".to_string(),
        format!("system:serviceaccounts:{ns}"),
        "system:authenticated".to_string(),
    ])
    .expect("groups");
    let path = dir.join("kubeconfig-sa");
    std::fs::write(&path, serde_yaml::to_string(&kc).expect("yaml")).expect("write kubeconfig");
    path
}

fn metadata(job_name: &str) -> HashMap<String, String> {
    [
        ("jobName", job_name),
        ("minTaskManagers", "1"),
        ("maxTaskManagers", "10"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn object_ref(ns: &str, job_name: &str) -> ScaledObjectRef {
    ScaledObjectRef {
        name: SO.into(),
        namespace: ns.into(),
        scaler_metadata: metadata(job_name),
    }
}

/// GetMetricSpec + GetMetrics: the TaskManager count.
async fn get_metrics(
    client: &ExternalScalerClient<Channel>,
    r: &ScaledObjectRef,
) -> Result<f64, tonic::Status> {
    let mut client = client.clone();
    let spec = client.get_metric_spec(r.clone()).await?.into_inner();
    let name = spec.metric_specs[0].metric_name.clone();
    let resp = client
        .get_metrics(GetMetricsRequest {
            scaled_object_ref: Some(r.clone()),
            metric_name: name,
        })
        .await?
        .into_inner();
    Ok(resp.metric_values[0].metric_value_float)
}

async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = f().await {
            eprintln!("{what}: after {:.2} s", started.elapsed().as_secs_f64());
            return v;
        }
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn rescale_phase(doc: &PersistedJob) -> Option<String> {
    doc.rescale
        .as_ref()
        .and_then(|r| r["phase"].as_str())
        .map(str::to_string)
}

/// What every test of this suite starts from: the shared apiserver (CRDs installed) and
/// its admin client, the three-vertex job at parallelism [`P`] exported with `busy` to a
/// real Prometheus. None (SKIPPED) when a component is missing.
struct Base {
    server: std::sync::Arc<KubeApiServer>,
    admin: Client,
    job: SyntheticJob,
    exporter: SyntheticExporter,
    prom: PrometheusHarness,
}

async fn base(busy: f64) -> Option<Base> {
    let server = KubeApiServer::shared()?;
    let mut job = SyntheticJob::three_vertices();
    for v in &mut job.vertices {
        v.parallelism = P;
    }
    let exporter = SyntheticExporter::new();
    export_load(&job, &exporter, 500.0, busy);
    let prom = PrometheusHarness::start(&[exporter.target()]).await?;
    let admin = server.admin().await;
    install_crds(&admin).await;
    Some(Base {
        server,
        admin,
        job,
        exporter,
        prom,
    })
}

/// The first Event with `reason` on the ScaledObject of `ns`, waited for.
async fn event_with_reason(admin: &Client, ns: &str, reason: &str, timeout: Duration) -> Event {
    eventually(&format!("{reason} Event"), timeout, || async move {
        events_on_scaled_object(admin, ns)
            .await
            .into_iter()
            .find(|e| e.reason.as_deref() == Some(reason))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_scalers_one_leader_one_put_failover_resumes_and_marks_idle_pods() {
    let t0 = Instant::now();
    // Busy 0.9 everywhere at target utilization 0.5: the core wants about twice the
    // parallelism (a scale-UP).
    let Some(Base {
        server,
        admin,
        job,
        exporter,
        prom,
    }) = base(0.9).await
    else {
        return;
    };
    let ns = namespace(&admin, "runtime").await;
    apply_rbac(&server, &admin, &ns).await;
    let flink = FakeFlink::start(&job, vec![tm_ip(0), tm_ip(1)], false).await;
    create_scale_target(&admin, &ns, &flink.url(), &job.job_name).await;
    prom.wait_for_job(&job.job_id).await;
    eprintln!("set-up done after {:.1} s", t0.elapsed().as_secs_f64());

    let dir = support::tempdir("fks-kube-runtime-");
    let kubeconfig = service_account_kubeconfig(&server, &ns, dir.path());
    let cfg = config(&prom.url());
    let (a, b) = tokio::join!(
        Scaler::start(dir.path(), "scaler-a", &ns, &kubeconfig, &cfg),
        Scaler::start(dir.path(), "scaler-b", &ns, &kubeconfig, &cfg),
    );
    let mut scalers = [a, b];
    let r = object_ref(&ns, &job.job_name);
    let clients = [scalers[0].client().await, scalers[1].client().await];
    // KEDA's first poll on both replicas starts their evaluation.
    let (ra, rb) = tokio::join!(get_metrics(&clients[0], &r), get_metrics(&clients[1], &r));
    eprintln!("first GetMetrics: scaler-a {ra:?}, scaler-b {rb:?}");

    // 1. Exactly one leader; exactly one PUT.
    let holder = eventually("Lease held", Duration::from_secs(15), || {
        let admin = admin.clone();
        let ns = ns.clone();
        async move { lease_holder(&admin, &ns).await }
    })
    .await;
    let li = scalers
        .iter()
        .position(|s| s.identity == holder)
        .unwrap_or_else(|| panic!("Lease holder {holder} is not one of the scalers"));
    let fi = 1 - li;
    eprintln!("leader: {holder}");
    eventually("leader gauges 1/0", Duration::from_secs(10), || {
        let (l, f) = (&scalers[li], &scalers[fi]);
        async move {
            let (gl, gf) = (l.leader_gauge().await, f.leader_gauge().await);
            ((gl, gf) == (Some(1.0), Some(0.0))).then_some(())
        }
    })
    .await;
    eventually("the first PUT", Duration::from_secs(30), || {
        let flink = &flink;
        async move { (flink.put_count().await >= 1).then_some(()) }
    })
    .await;
    let put = flink.snapshot().puts[0].clone();
    // Both keep evaluating (1 s interval): three more ticks each, still one PUT.
    for _ in 0..3 {
        for (c, s) in clients.iter().zip(&scalers) {
            let v = get_metrics(c, &r).await;
            assert!(v.is_ok(), "{}: {v:?}", s.identity);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(flink.put_count().await, 1, "one decision, one PUT");
    assert_eq!(
        lease_holder(&admin, &ns).await.as_deref(),
        Some(holder.as_str())
    );
    assert_eq!(scalers[li].leader_gauge().await, Some(1.0));
    assert_eq!(scalers[fi].leader_gauge().await, Some(0.0));
    assert!(
        !scalers[fi].log().contains("rescale started"),
        "the follower never starts a rescale"
    );
    let follower_debug = scalers[fi].debug_jobs().await;
    assert!(
        follower_debug.to_string().contains("\"decision\""),
        "the follower evaluates too: {follower_debug}"
    );

    // 2. The persisted state: the claimed decision and the in-flight rescale.
    let doc = eventually(
        "state with decision and rescale",
        Duration::from_secs(5),
        || {
            let (admin, ns) = (admin.clone(), ns.clone());
            async move {
                state(&admin, &ns)
                    .await
                    .filter(|d| d.decision.is_some() && d.rescale.is_some())
            }
        },
    )
    .await;
    let decision = doc.decision.clone().expect("decision");
    assert!(decision.applied, "claimed before the PUT: {decision:?}");
    assert_eq!(decision.id, 1);
    assert_eq!(doc.updated_by.as_deref(), Some(holder.as_str()));
    assert!(
        decision.target.task_managers > 2,
        "a scale-up: {decision:?}"
    );
    for (vertex, p) in &decision.target.parallelism {
        assert_eq!(
            put[vertex.as_str()]["parallelism"]["upperBound"].as_u64(),
            Some(u64::from(*p)),
            "the PUT carries the persisted target: {put}"
        );
    }
    let phase = rescale_phase(&doc).expect("phase");
    assert!(
        !["completed", "timed_out", "aborted"].contains(&phase.as_str()),
        "in flight: {phase}"
    );
    let target_tms = decision.target.task_managers;
    let cms = Api::<ConfigMap>::namespaced(admin.clone(), &ns)
        .list(&ListParams::default().labels("flink-keda-scaler.io/state"))
        .await
        .expect("list state ConfigMaps");
    assert_eq!(cms.items.len(), 1, "one state ConfigMap per job");
    // Both answer what the leader decided (the follower reads the leader's state).
    let agreed = eventually("both GetMetrics agree", Duration::from_secs(3), || {
        let (clients, r) = (&clients, &r);
        async move {
            let (x, y) = (
                get_metrics(&clients[0], r).await.ok()?,
                get_metrics(&clients[1], r).await.ok()?,
            );
            (x == y).then_some(x)
        }
    })
    .await;
    assert_eq!(
        agreed,
        f64::from(target_tms),
        "both report the rescale's target"
    );
    // 3. The leader publishes the start of the rescale as an Event on the ScaledObject.
    let started = event_with_reason(&admin, &ns, "RescaleStarted", Duration::from_secs(5)).await;
    assert_eq!(started.reporting_instance.as_deref(), Some(holder.as_str()));
    assert_eq!(started.type_.as_deref(), Some("Normal"));

    // 4. Kill the leader (SIGKILL: no Lease release). The other takes over.
    scalers[li].kill();
    let killed = Instant::now();
    eventually("failover", LEASE_DURATION + RETRY_PERIOD * 6, || {
        let (admin, ns, f) = (admin.clone(), ns.clone(), &scalers[fi]);
        async move {
            (lease_holder(&admin, &ns).await.as_deref() == Some(f.identity.as_str())
                && f.leader_gauge().await == Some(1.0))
            .then_some(())
        }
    })
    .await;
    let failover = killed.elapsed();
    eprintln!("failover in {:.2} s", failover.as_secs_f64());
    let new_leader = scalers[fi].identity.clone();
    // It resumes the persisted rescale, without a second PUT.
    eventually("resume logged", Duration::from_secs(5), || {
        let s = &scalers[fi];
        async move {
            s.log()
                .contains("resuming the in-flight rescale")
                .then_some(())
        }
    })
    .await;
    for _ in 0..3 {
        let v = get_metrics(&clients[fi], &r).await.expect("GetMetrics");
        assert_eq!(
            v,
            f64::from(target_tms),
            "the new leader reports the rescale's target"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(
        flink.put_count().await,
        1,
        "failover does not re-PUT the decision"
    );

    // KEDA adds the TaskManagers; the adaptive scheduler reaches the target.
    let tms = target_tms as usize;
    flink.with(|s| s.tm_ips = (0..tms).map(tm_ip).collect());
    for i in 2..tms {
        create_tm_pod(&admin, &ns, i).await;
    }
    flink.release();
    let completed =
        event_with_reason(&admin, &ns, "RescaleCompleted", Duration::from_secs(15)).await;
    assert_eq!(
        completed.reporting_instance.as_deref(),
        Some(new_leader.as_str())
    );
    assert_eq!(
        completed.regarding.as_ref().and_then(|r| r.uid.clone()),
        Api::<DynamicObject>::namespaced_with(admin.clone(), &ns, &resources::scaled_object())
            .get(SO)
            .await
            .expect("ScaledObject")
            .uid()
    );
    let doc = eventually("state after completion", Duration::from_secs(5), || {
        let (admin, ns) = (admin.clone(), ns.clone());
        async move { state(&admin, &ns).await.filter(|d| d.rescale.is_none()) }
    })
    .await;
    assert_eq!(doc.updated_by.as_deref(), Some(new_leader.as_str()));
    assert_eq!(doc.decision.as_ref().map(|d| d.id), Some(1));
    let events = events_on_scaled_object(&admin, &ns).await;
    let mut reasons: Vec<&str> = events.iter().filter_map(|e| e.reason.as_deref()).collect();
    reasons.sort_unstable();
    assert_eq!(
        reasons,
        ["RescaleCompleted", "RescaleStarted"],
        "one Event per phase, none from the follower"
    );

    // 5. Scale-down: the job runs one TaskManager's worth of slots lower (all slots of
    // the last TaskManager free) while the load drops. The leader reports fewer
    // TaskManagers than registered and marks the idle one's pod cheapest to delete.
    let lower = (target_tms - 1) * SLOTS_PER_TM;
    flink.with(|s| {
        for v in &mut s.vertices {
            v.2 = v.2.min(lower);
        }
    });
    export_load(&job, &exporter, 100.0, 0.3);
    let idle_pod = format!("tm-{}", tms - 1);
    let costs = eventually("deletion costs", Duration::from_secs(10), || {
        let (admin, ns, idle_pod) = (admin.clone(), ns.clone(), idle_pod.clone());
        async move {
            let c = deletion_costs(&admin, &ns).await;
            (c.get(&idle_pod).copied().flatten().is_some() && c.values().all(Option::is_some))
                .then_some(c)
        }
    })
    .await;
    eprintln!("pod-deletion-cost: {costs:?}");
    let idle_cost = costs[&idle_pod].expect("idle cost");
    for (pod, cost) in &costs {
        if *pod != idle_pod {
            assert!(
                idle_cost < cost.expect("busy cost"),
                "idle {idle_pod} ({idle_cost}) must cost less than busy {pod} ({cost:?})"
            );
        }
    }
    let reported = get_metrics(&clients[fi], &r).await.expect("GetMetrics");
    assert_eq!(
        reported,
        f64::from(target_tms - 1),
        "KEDA is told one TaskManager fewer"
    );
    assert_eq!(
        flink.put_count().await,
        1,
        "no new decision within the cooldown, so no new PUT"
    );
    // 5b. A third replica joins (follower), then the leader dies while the idle pod is
    // being removed: the ReplicaSet deletes it and its TaskManager deregisters before the
    // new leader's first tick. No surplus is left, so the new leader must clear the
    // annotations the old one set (it never set any itself).
    let c = Scaler::start(dir.path(), "scaler-c", &ns, &kubeconfig, &cfg).await;
    let c_client = c.client().await;
    assert_eq!(
        get_metrics(&c_client, &r)
            .await
            .expect("scaler-c GetMetrics"),
        f64::from(target_tms - 1),
        "the new follower answers like the leader"
    );
    assert_eq!(c.leader_gauge().await, Some(0.0));
    scalers[fi].kill();
    Api::<Pod>::namespaced(admin.clone(), &ns)
        .delete(&idle_pod, &Default::default())
        .await
        .expect("delete idle pod");
    flink.with(|s| s.tm_ips.truncate(tms - 1));
    eventually("second failover", LEASE_DURATION + RETRY_PERIOD * 6, || {
        let (admin, ns, c) = (admin.clone(), ns.clone(), &c);
        async move {
            (lease_holder(&admin, &ns).await.as_deref() == Some("scaler-c")
                && c.leader_gauge().await == Some(1.0))
            .then_some(())
        }
    })
    .await;
    let c_costs = eventually("deletion costs cleared", Duration::from_secs(10), || {
        let (admin, ns) = (admin.clone(), ns.clone());
        async move {
            let c = deletion_costs(&admin, &ns).await;
            (c.len() == tms - 1 && c.values().all(Option::is_none)).then_some(c)
        }
    })
    .await;
    eprintln!("pod-deletion-cost after the surplus is gone: {c_costs:?}");
    assert_eq!(
        flink.put_count().await,
        1,
        "still one PUT after two failovers"
    );
    assert!(!scalers[li].running() && !scalers[fi].running());
    for s in scalers.iter().chain([&c]) {
        let log = s.log();
        for l in log
            .lines()
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        {
            if !l.contains("cert bypassed") {
                eprintln!("{}: {l}", s.identity);
            }
        }
        for bad in [
            "decision not claimed",
            "cannot save state",
            "cannot write the rescale Event",
            "cannot update pod-deletion-cost",
        ] {
            assert!(!log.contains(bad), "{}: `{bad}` in its log", s.identity);
        }
    }
    eprintln!("total {:.1} s", t0.elapsed().as_secs_f64());
}

//! High availability against a real kube-apiserver (v1.20) + etcd, as the scaler's
//! ServiceAccount: persisted per-job state across a scaler restart, stale decisions,
//! optimistic-concurrency conflicts, Lease leader election with failover, and "never two
//! PUTs for one decision".

use crate::support;

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicU32, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use chrono::Utc;
use flink_keda_scaler::{
    core::{JobState, Plan, ScaledObjectRef, VertexId},
    kube::{
        check_decision, LeaderElector, PersistedDecision, PersistedJob, Staleness, StateCache,
        StateStore,
    },
};
use k8s_openapi::api::coordination::v1::Lease;
use kube::{api::Api, Client};
use serde_json::json;
use support::kube::{apply_rbac, namespace, KubeApiServer};

const MAX_AGE: chrono::Duration = chrono::Duration::seconds(120);

fn plan(p: u32, tms: u32) -> Plan {
    Plan {
        parallelism: BTreeMap::from([(VertexId::new("cbc357ccb763df2852fee8c4fc7d55f2"), p)]),
        task_managers: tms,
    }
}

fn decision(id: u64, age: chrono::Duration, generation: i64) -> PersistedDecision {
    PersistedDecision {
        id,
        decided_at: Utc::now() - age,
        observed_generation: Some(generation),
        current: plan(2, 1),
        target: plan(4, 2),
        reason: "scale_up: busy 0.93 above band".into(),
        applied: false,
    }
}

async fn setup(prefix: &str) -> Option<(Arc<KubeApiServer>, String)> {
    let server = KubeApiServer::shared()?;
    let admin = server.admin().await;
    let ns = namespace(&admin, prefix).await;
    apply_rbac(&server, &admin, &ns).await;
    Some((server, ns))
}

/// A scaler that dies in the middle of a rescale leaves decision, in-flight rescale and
/// core state behind; a new process (new client, new store) reads them back unchanged.
/// A decision that has gone stale meanwhile is discarded, never applied.
#[tokio::test]
async fn persisted_state_survives_restart_and_stale_decisions_are_discarded() {
    let Some((server, ns)) = setup("state").await else {
        return;
    };
    let job = ScaledObjectRef::new("flink", "orders");
    let t0 = Instant::now();
    {
        let store = StateStore::new(server.scaler(&ns).await, &ns, "scaler-0");
        assert!(store.load(&job).await.expect("load").is_none());
        let mut state = PersistedJob::default();
        let mut core_state = JobState::default();
        core_state.record(Utc::now(), 1, 2);
        state.job_state = core_state;
        let id = state.next_decision_id();
        state.decision = Some(PersistedDecision {
            applied: true,
            ..decision(id, chrono::Duration::seconds(5), 7)
        });
        state.rescale = Some(
            json!({"phase": "waiting_for_parallelism", "target_task_managers": 2, "put_at": "2026-01-01T00:00:00Z"}),
        );
        store
            .save(&job, &state, None)
            .await
            .expect("first save (create)");
    } // the scaler process "dies": store and client are dropped
    let saved_in = t0.elapsed();

    let store = StateStore::new(server.scaler(&ns).await, &ns, "scaler-1");
    let (restored, version) = store
        .load(&job)
        .await
        .expect("load after restart")
        .expect("state exists");
    assert_eq!(restored.decision_id, 1);
    assert_eq!(restored.updated_by.as_deref(), Some("scaler-0"));
    assert_eq!(restored.job_state.history.len(), 1);
    assert!(restored.job_state.last_rescale_at.is_some());
    let d = restored.decision.clone().expect("decision persisted");
    assert!(d.applied, "the new leader must resume (verify), not re-PUT");
    assert_eq!(d.target, plan(4, 2));
    assert_eq!(
        restored
            .rescale
            .as_ref()
            .and_then(|r| r.get("phase"))
            .and_then(|p| p.as_str()),
        Some("waiting_for_parallelism")
    );

    // A decision older than the max age, not applied yet: the restarted scaler discards it.
    let mut stale = restored.clone();
    stale.decision = Some(decision(
        stale.next_decision_id(),
        chrono::Duration::seconds(600),
        7,
    ));
    stale.rescale = None;
    let stale_version = store
        .save(&job, &stale, Some(&version))
        .await
        .expect("save stale decision");
    assert_ne!(stale_version, version, "each save yields a new version");
    let puts = AtomicU32::new(0);
    let (loaded, v) = store.load(&job).await.expect("load").expect("state");
    assert_eq!(v, stale_version);
    let pending = loaded.decision.clone().expect("pending decision");
    let verdict = check_decision(&pending, Utc::now(), MAX_AGE, &plan(2, 1), Some(7));
    assert!(
        matches!(verdict, Staleness::TooOld { age_secs } if age_secs >= 600),
        "{verdict:?}"
    );
    if verdict.is_fresh() {
        puts.fetch_add(1, Ordering::SeqCst);
    } else {
        let mut cleaned = loaded.clone();
        cleaned.decision = None;
        store
            .save(&job, &cleaned, Some(&v))
            .await
            .expect("discard stale decision");
    }
    assert_eq!(
        puts.load(Ordering::SeqCst),
        0,
        "a stale decision is never applied"
    );
    assert!(store
        .load(&job)
        .await
        .expect("load")
        .expect("state")
        .0
        .decision
        .is_none());
    // Followers read the same state from a watch cache, no GET per RPC.
    let cache = StateCache::start(server.scaler(&ns).await, &ns);
    let t_cache = Instant::now();
    let cached = loop {
        if let Ok(Some(c)) = cache.get(&job) {
            if c.0.decision.is_none() {
                break c;
            }
        }
        assert!(
            t_cache.elapsed() < Duration::from_secs(10),
            "state cache never caught up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (direct, direct_version) = store.load(&job).await.expect("load").expect("state");
    assert_eq!(cached, (direct, direct_version));
    assert_eq!(
        cache
            .get(&ScaledObjectRef::new("flink", "unknown"))
            .expect("ready"),
        None
    );
    // A fresh decision made against another plan / generation is stale too.
    let fresh = decision(9, chrono::Duration::seconds(1), 7);
    assert_eq!(
        check_decision(&fresh, Utc::now(), MAX_AGE, &plan(3, 2), Some(7)),
        Staleness::PlanChanged
    );
    assert!(matches!(
        check_decision(&fresh, Utc::now(), MAX_AGE, &plan(2, 1), Some(8)),
        Staleness::GenerationChanged { .. }
    ));
    assert!(check_decision(&fresh, Utc::now(), MAX_AGE, &plan(2, 1), Some(7)).is_fresh());
    eprintln!(
        "state: create + restart + load in {:.3} s",
        saved_in.as_secs_f64()
    );
}

/// Two writers that read the same version: the second save gets a Conflict; a create of
/// an existing record is a Conflict too; `update` retries and loses no increment.
#[tokio::test]
async fn concurrent_writers_get_conflicts() {
    let Some((server, ns)) = setup("conflict").await else {
        return;
    };
    let job = ScaledObjectRef::new("flink", "payments");
    let a = StateStore::new(server.scaler(&ns).await, &ns, "scaler-a");
    let b = StateStore::new(server.scaler(&ns).await, &ns, "scaler-b");
    a.save(&job, &PersistedJob::default(), None)
        .await
        .expect("create");
    let again = b.save(&job, &PersistedJob::default(), None).await;
    assert!(again.as_ref().is_err_and(|e| e.is_conflict()), "{again:?}");

    let (mut sa, va) = a.load(&job).await.expect("load").expect("state");
    let (mut sb, vb) = b.load(&job).await.expect("load").expect("state");
    assert_eq!(va, vb);
    sa.next_decision_id();
    sb.next_decision_id();
    a.save(&job, &sa, Some(&va))
        .await
        .expect("first writer wins");
    let lost = b.save(&job, &sb, Some(&vb)).await;
    assert!(
        lost.as_ref()
            .is_err_and(|e| e.is_conflict() && e.kind() == "conflict"),
        "{lost:?}"
    );

    // Read-modify-write with retries from two writers at once loses nothing.
    let t0 = Instant::now();
    let (ra, rb) = tokio::join!(
        async {
            for _ in 0..10 {
                a.update(&job, 20, |s| {
                    s.next_decision_id();
                    true
                })
                .await
                .expect("update a");
            }
        },
        async {
            for _ in 0..10 {
                b.update(&job, 20, |s| {
                    s.next_decision_id();
                    true
                })
                .await
                .expect("update b");
            }
        }
    );
    let _ = (ra, rb);
    let (end, _) = a.load(&job).await.expect("load").expect("state");
    assert_eq!(end.decision_id, 21, "1 + 20 increments");
    eprintln!(
        "state: 20 contended updates in {:.3} s",
        t0.elapsed().as_secs_f64()
    );
}

fn elector(client: Client, ns: &str, id: &str) -> LeaderElector {
    LeaderElector::new(
        client,
        ns,
        "flink-keda-scaler",
        id,
        Duration::from_secs(3),
        Duration::from_secs(2),
        Duration::from_millis(200),
    )
}

/// Samples both electors until `until`; panics if both ever claim leadership.
async fn never_two_leaders(a: &LeaderElector, b: &LeaderElector, until: Duration) {
    let deadline = Instant::now() + until;
    while Instant::now() < deadline {
        assert!(!(a.is_leader() && b.is_leader()), "two leaders at once");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn wait_leader(e: &LeaderElector, timeout: Duration) -> Duration {
    let t0 = Instant::now();
    while !e.is_leader() {
        assert!(
            t0.elapsed() < timeout,
            "{} did not become leader within {timeout:?}",
            e.identity()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    t0.elapsed()
}

/// Exactly one of two electors leads; when the leader stops renewing (its task dies) it
/// stops claiming leadership within renew_deadline and the other takes over once the
/// Lease expires; a graceful shutdown releases the Lease for a fast hand-over.
#[tokio::test]
async fn lease_election_has_one_leader_and_fails_over() {
    let Some((server, ns)) = setup("lease").await else {
        return;
    };
    let a = elector(server.scaler(&ns).await, &ns, "scaler-a");
    let b = elector(server.scaler(&ns).await, &ns, "scaler-b");
    let (stop_a, rx_a) = tokio::sync::oneshot::channel::<()>();
    let (stop_b, rx_b) = tokio::sync::oneshot::channel::<()>();
    let task_a = tokio::spawn(a.clone().run(async move {
        let _ = rx_a.await;
    }));
    let task_b = tokio::spawn(b.clone().run(async move {
        let _ = rx_b.await;
    }));
    let t0 = Instant::now();
    while !(a.is_leader() || b.is_leader()) {
        assert!(t0.elapsed() < Duration::from_secs(5), "no leader elected");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elected_in = t0.elapsed();
    never_two_leaders(&a, &b, Duration::from_secs(1)).await;
    let (leader, follower, leader_task, follower_task, follower_stop) = if a.is_leader() {
        (a.clone(), b.clone(), task_a, task_b, stop_b)
    } else {
        (b.clone(), a.clone(), task_b, task_a, stop_a)
    };
    assert!(!follower.is_leader());
    let mut leader_rx = leader.subscribe();
    assert!(*leader_rx.borrow_and_update());

    // Crash: the leader stops renewing without releasing.
    leader_task.abort();
    let crashed = Instant::now();
    let stepped_down = {
        while leader.is_leader() {
            assert!(
                crashed.elapsed() < Duration::from_secs(3),
                "stalled leader kept claiming"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        crashed.elapsed()
    };
    let failover = stepped_down + wait_leader(&follower, Duration::from_secs(6)).await;
    assert!(
        stepped_down <= Duration::from_millis(2500),
        "old leader stepped down after {stepped_down:?}"
    );
    assert!(
        failover >= Duration::from_secs(2),
        "the follower must wait for the Lease to expire (took {failover:?})"
    );
    never_two_leaders(&leader, &follower, Duration::from_millis(500)).await;
    let lease = Api::<Lease>::namespaced(server.admin().await, &ns)
        .get("flink-keda-scaler")
        .await
        .expect("lease")
        .spec
        .expect("spec");
    assert_eq!(lease.holder_identity.as_deref(), Some(follower.identity()));
    assert_eq!(lease.lease_transitions, Some(1));

    // Graceful shutdown releases: a new instance takes over at its first round.
    let _ = follower_stop.send(());
    follower_task.await.expect("run returns after shutdown");
    assert!(!follower.is_leader());
    let c = elector(server.scaler(&ns).await, &ns, "scaler-c");
    let (_stop_c, rx_c) = tokio::sync::oneshot::channel::<()>();
    let task_c = tokio::spawn(c.clone().run(async move {
        let _ = rx_c.await;
    }));
    let handover = wait_leader(&c, Duration::from_secs(2)).await;
    task_c.abort();
    eprintln!(
        "lease: elected in {:.3} s; crash → step-down {:.3} s, failover {:.3} s (lease 3 s); release → new leader {:.3} s",
        elected_in.as_secs_f64(),
        stepped_down.as_secs_f64(),
        failover.as_secs_f64(),
        handover.as_secs_f64()
    );
}

/// One scaler instance: while leader, applies the persisted pending decision at most
/// once — it marks the decision applied with a compare-and-swap on the state's version
/// and only then counts the PUT.
async fn instance_loop(
    elector: LeaderElector,
    store: StateStore,
    job: ScaledObjectRef,
    puts: Arc<Mutex<BTreeMap<u64, u32>>>,
) {
    loop {
        if elector.is_leader() {
            if let Ok(Some((mut state, version))) = store.load(&job).await {
                if let Some(d) = state.decision.as_mut().filter(|d| !d.applied) {
                    let fresh =
                        check_decision(d, Utc::now(), MAX_AGE, &plan(2, 1), None).is_fresh();
                    d.applied = true;
                    let id = d.id;
                    if fresh
                        && elector.is_leader()
                        && store.save(&job, &state, Some(&version)).await.is_ok()
                    {
                        if let Ok(mut m) = puts.lock() {
                            *m.entry(id).or_default() += 1;
                        }
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Two instances, one decision each before and after a leader crash: every decision is
/// PUT exactly once.
#[tokio::test]
async fn never_two_puts_for_one_decision() {
    let Some((server, ns)) = setup("puts").await else {
        return;
    };
    let job = ScaledObjectRef::new("flink", "clicks");
    let puts = Arc::new(Mutex::new(BTreeMap::<u64, u32>::new()));
    let writer = StateStore::new(server.scaler(&ns).await, &ns, "runtime");
    let mut instances = Vec::new();
    for id in ["scaler-a", "scaler-b"] {
        let client = server.scaler(&ns).await;
        let e = elector(client.clone(), &ns, id);
        let run = tokio::spawn(e.clone().run(std::future::pending()));
        let work = tokio::spawn(instance_loop(
            e.clone(),
            StateStore::new(client, &ns, id),
            job.clone(),
            puts.clone(),
        ));
        instances.push((e, run, work));
    }
    let publish = |id: u64| {
        let writer = writer.clone();
        let job = job.clone();
        async move {
            writer
                .update(&job, 10, |s| {
                    s.decision_id = id;
                    s.decision = Some(decision(id, chrono::Duration::zero(), 1));
                    true
                })
                .await
                .expect("publish decision");
        }
    };
    publish(1).await;
    let applied = |id: u64| {
        let puts = puts.clone();
        move || {
            puts.lock()
                .map(|m| m.get(&id).copied().unwrap_or(0))
                .unwrap_or(0)
        }
    };
    let t0 = Instant::now();
    while applied(1)() == 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(6),
            "decision 1 never applied"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Crash the leader (elector and worker), then publish decision 2.
    let leader = instances
        .iter()
        .position(|(e, _, _)| e.is_leader())
        .expect("a leader");
    let (e, run, work) = instances.remove(leader);
    run.abort();
    work.abort();
    drop(e);
    publish(2).await;
    let t1 = Instant::now();
    while applied(2)() == 0 {
        assert!(
            t1.elapsed() < Duration::from_secs(8),
            "decision 2 never applied after failover"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (_, run, work) in instances {
        run.abort();
        work.abort();
    }
    let counts = puts.lock().map(|m| m.clone()).unwrap_or_default();
    assert_eq!(
        counts,
        BTreeMap::from([(1, 1), (2, 1)]),
        "exactly one PUT per decision"
    );
    eprintln!(
        "puts: decision 2 applied {:.3} s after the leader crash",
        t1.elapsed().as_secs_f64()
    );
}

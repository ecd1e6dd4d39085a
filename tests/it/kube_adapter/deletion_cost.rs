//! pod-deletion-cost against the real kube-apiserver: idle TaskManagers' pods first, unrelated
//! pods untouched, everything cleared after the rescale.

use super::*;

/// Idle TaskManagers' pods get the lowest deletion cost, busy ones a cost by used slots,
/// unrelated pods are untouched, stale annotations are cleared, and everything is cleared
/// after the rescale.
#[tokio::test]
async fn deletion_cost_lands_on_idle_pods_only() {
    let Some(Setup {
        server: _server,
        admin,
        scaler,
        ns,
    }) = setup("cost").await
    else {
        return;
    };
    let pods = Api::<Pod>::namespaced(admin.clone(), &ns);
    let pp = PostParams::default();
    for (i, name) in ["tm-0", "tm-1", "tm-2", "tm-3"].iter().enumerate() {
        let mut p = pod(name, "job");
        if *name == "tm-3" {
            p.annotations_mut()
                .insert(DELETION_COST_ANNOTATION.into(), "-1000".into());
        }
        pods.create(&pp, &p).await.expect("create pod");
        pods.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(
                json!({"status": {"phase": "Running", "podIP": format!("10.9.0.{}", i + 1)}}),
            ),
        )
        .await
        .expect("pod status");
    }
    pods.create(&pp, &pod("other", "unrelated"))
        .await
        .expect("create pod");
    let tms = [
        TaskManagerSlots {
            id: "10.9.0.1:6122-a".into(),
            address: "pekko.tcp://flink@10.9.0.1:6122/user/rpc/taskmanager_0".into(),
            slots: 2,
            free_slots: 2,
        },
        TaskManagerSlots {
            id: "10.9.0.2:6122-b".into(),
            address: "pekko.tcp://flink@10.9.0.2:6122/user/rpc/taskmanager_0".into(),
            slots: 2,
            free_slots: 0,
        },
        TaskManagerSlots {
            id: "10.9.0.3:6122-c".into(),
            address: "pekko.tcp://flink@10.9.0.3:6122/user/rpc/taskmanager_0".into(),
            slots: 2,
            free_slots: 1,
        },
    ];
    let t0 = Instant::now();
    let report = mark_deletion_costs(&scaler, &ns, "app=job,component=taskmanager", &tms)
        .await
        .expect("mark deletion costs as the scaler");
    let took = t0.elapsed();
    assert_eq!(report.idle, vec!["tm-0".to_string()]);
    assert_eq!(report.busy, vec!["tm-1".to_string(), "tm-2".to_string()]);
    assert_eq!(
        report.cleared,
        vec!["tm-3".to_string()],
        "tm-3 has no TaskManager: stale"
    );
    let cost = |p: &Pod| p.annotations().get(DELETION_COST_ANNOTATION).cloned();
    let read = |name: &'static str| {
        let pods = pods.clone();
        async move { pods.get(name).await.expect("get pod") }
    };
    assert_eq!(cost(&read("tm-0").await).as_deref(), Some("-1000"));
    assert_eq!(cost(&read("tm-1").await).as_deref(), Some("200"));
    assert_eq!(cost(&read("tm-2").await).as_deref(), Some("100"));
    assert_eq!(cost(&read("tm-3").await), None);
    assert_eq!(cost(&read("other").await), None);
    let idle: Vec<String> = pods
        .list(&ListParams::default().labels("app=job"))
        .await
        .expect("list")
        .items
        .iter()
        .filter(|p| {
            cost(p)
                .and_then(|c| c.parse::<i32>().ok())
                .is_some_and(|c| c < 0)
        })
        .map(|p| p.name_any())
        .collect();
    assert_eq!(
        idle,
        vec!["tm-0".to_string()],
        "only the idle pod has the lowest cost"
    );

    // A second pass with the same slots changes nothing.
    let again = mark_deletion_costs(&scaler, &ns, "app=job", &tms)
        .await
        .expect("again");
    assert_eq!(
        (
            again.idle.len(),
            again.busy.len(),
            again.cleared.len(),
            again.unchanged
        ),
        (0, 0, 0, 4)
    );

    // After the rescale: clear everything.
    let cleared = mark_deletion_costs(&scaler, &ns, "app=job", &[])
        .await
        .expect("clear");
    assert_eq!(
        cleared.cleared,
        vec!["tm-0".to_string(), "tm-1".to_string(), "tm-2".to_string()]
    );
    for name in ["tm-0", "tm-1", "tm-2"] {
        assert_eq!(cost(&read(name).await), None, "{name}");
    }
    eprintln!(
        "deletion cost: list + 4 merge patches in {:.3} s",
        took.as_secs_f64()
    );
}

//! A scale-up still waiting for its TaskManagers is raised, not repeated
//! (`core::rescale::raise`), end to end against the built binary: the fake JobManager
//! keeps the job at its parallelism until the TaskManagers the requirements need are
//! registered (as the adaptive scheduler does). A hot keyed vertex asks for 4 TaskManagers
//! (PUT 1); before any registers, a backlog appears that needs more: the scaler PUTs
//! again (the same rescale, despite the policy's 10 min cooldown), GetMetrics answers the
//! raised count at once, and when that many TaskManagers register the job runs at the
//! raised target — two PUTs, one rescale.

use super::*;

/// A keyed vertex busy 0.9 at parallelism 4: DS2 sizes it 8 (4 TaskManagers of 2 slots).
const HOT: Load = Load {
    rate: 500.0,
    busy: [0.3, 0.9, 0.25],
};
/// Backlog at the source (per subtask): over the 5 min catch-up it raises every target
/// rate, so the keyed vertex needs more than 8 subtasks.
const BACKLOG_PER_SUBTASK: f64 = 5_000.0;

fn rescale_of(jobs: &Value) -> Value {
    jobs["jobs"][0]["rescale"].clone()
}

async fn wait_puts(e: &Env, n: usize) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let puts = e.flink.puts();
        if puts.len() >= n {
            return puts;
        }
        assert!(
            started.elapsed() < CONVERGE,
            "{n} PUTs not seen within {CONVERGE:?}: {puts:#?}; /debug/jobs: {:#}",
            e.scaler.debug_jobs().await
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_up_waiting_for_its_task_managers_is_raised_with_one_more_put() {
    let Some(e) = env(false, true).await else {
        return;
    };
    e.flink.state.lock().expect("state").waits_for_slots = true;
    let mut client = e.scaler.client().await;
    let r = object_ref(&e.flink.url(), &e.job.job_name, &[]);
    wait_metrics(&mut client, &r, "steady", |g| g.is_ok(), &e.scaler)
        .await
        .expect("steady GetMetrics");
    let keyed = e.job.vertices[1].id.clone();

    HOT.export(&e.job, &e.exporter);
    let puts = wait_puts(&e, 1).await;
    assert_eq!(puts[0][&keyed]["parallelism"]["upperBound"], 8, "{puts:#?}");
    let first = rescale_of(&e.scaler.debug_jobs().await);
    assert_eq!(first["to"]["task_managers"], 4, "{first:#}");
    wait_metrics(
        &mut client,
        &r,
        "GetMetrics for the scale-up",
        |g| matches!(g, Ok(v) if *v == 4.0),
        &e.scaler,
    )
    .await
    .expect("GetMetrics");
    assert_eq!(
        e.flink.snapshot().vertices[1].parallelism,
        P,
        "waits for its slots"
    );

    // a backlog before any new TaskManager registered: the same rescale is raised
    for s in 0..e.job.vertices[0].parallelism {
        let series = e
            .job
            .operator_series("pendingRecords", 0, "Source: events", s, "");
        e.exporter.set(&series, BACKLOG_PER_SUBTASK);
    }
    let puts = wait_puts(&e, 2).await;
    assert_eq!(puts.len(), 2, "{puts:#?}");
    let keyed_raised = puts[1][&keyed]["parallelism"]["upperBound"]
        .as_u64()
        .expect("upperBound");
    assert!(keyed_raised > 8, "{puts:#?}");
    let raised = rescale_of(&e.scaler.debug_jobs().await);
    assert_eq!(
        raised["started_at"], first["started_at"],
        "the same rescale: {raised:#}"
    );
    assert_eq!(raised["phase"], "applying", "{raised:#}");
    let tms = raised["to"]["task_managers"]
        .as_u64()
        .expect("raised TaskManagers");
    assert!(tms > 4 && tms <= u64::from(MAX_TMS), "{raised:#}");
    wait_metrics(
        &mut client,
        &r,
        "GetMetrics for the raised target",
        |g| matches!(g, Ok(v) if *v == tms as f64),
        &e.scaler,
    )
    .await
    .expect("GetMetrics");
    assert!(
        e.scaler
            .log()
            .contains("scale-up raised before Flink restarted"),
        "{}",
        e.scaler.log()
    );

    // the pods KEDA starts register: the job restarts once, at the raised target
    e.flink.register_task_managers(tms as u32);
    let d = wait_decision(&e.scaler, "running at the raised target", |d| {
        d["current"]["task_managers"] == tms
    })
    .await;
    assert_eq!(d["current"]["parallelism"][&keyed], keyed_raised, "{d:#}");
    assert_eq!(e.flink.puts().len(), 2, "no further PUT");
    let v = get_metrics(&mut client, &r).await.expect("GetMetrics");
    assert!(
        v >= tms as f64,
        "never below what the running parallelism needs: {v}"
    );
}

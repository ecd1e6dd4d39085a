//! Bounded Flink REST traffic for a fleet of jobs: per JobManager one `/jobs/overview`
//! and one `/taskmanagers` per evaluation slot, shared by every job on it; per job the
//! details and topology read again only when its id, state or parallelism changed.
//!
//! * A **slot** is a wall-clock window of one `evaluation.interval` (`now / interval`).
//!   Every job ticks once per interval, so one read per slot is one read per tick per
//!   JobManager, whichever of its jobs ticks first; the others reuse it (at most one
//!   interval old).
//! * Reads are **coalesced**: one in flight per JobManager and endpoint. A failed read is
//!   shared for its slot too: every job of a JobManager that is down gets UNAVAILABLE
//!   naming the same cause, and the JobManager gets one call per slot, not one per job.
//! * A tick with a rescale in flight reads **fresh** (the state machine's fast polling),
//!   and its fresh read replaces the shared copy, so the jobs that tick next see the
//!   rescale too. A job the shared overview does not list is looked up once more in a
//!   fresh overview (a job submitted during the slot is found at once).
//! * A job's details and topology are read with at most [`PER_JOB_READS`] such reads in
//!   flight per JobManager, and kept by its worker ([`JobView`]) under the
//!   overview's change key (id, state, `last-modification`, `tasks.total`: an in-place
//!   rescale moves the last two on Flink 1.20 and 2.x).

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use crate::{
    core::{JobSelector, Topology},
    flink::{select_job, FlinkClient, FlinkError, JobDetails, JobSummary, TaskManagerInfo},
};

/// Per-job reads (a job's details and plan) in flight at one JobManager at most: a
/// thousand new ScaledObjects on one JobManager do not open a thousand requests at once.
const PER_JOB_READS: usize = 4;

/// Two reads of one endpoint closer than this share the first one's answer, fresh or not.
const COALESCE: Duration = Duration::from_millis(500);

/// A failed Flink REST read: the job's own (not found, ambiguous, ...) or a shared
/// JobManager read that failed for every job of that JobManager in this slot.
#[derive(Debug)]
pub enum RestError {
    /// This job's own error.
    Job(FlinkError),
    /// The shared read failed.
    Shared(Arc<FlinkError>),
}

impl From<FlinkError> for RestError {
    fn from(e: FlinkError) -> Self {
        Self::Job(e)
    }
}

struct Cached<T> {
    slot: u64,
    interval_ms: u64,
    read_at: Instant,
    value: Result<Arc<T>, Arc<FlinkError>>,
}

type Cell<T> = tokio::sync::Mutex<Option<Cached<T>>>;

struct JobManagerViews {
    jobs: Cell<Vec<JobSummary>>,
    task_managers: Cell<Vec<TaskManagerInfo>>,
    /// Bounds the per-job reads (details, plan) in flight at one JobManager.
    per_job: tokio::sync::Semaphore,
}

impl Default for JobManagerViews {
    fn default() -> Self {
        Self {
            jobs: Cell::default(),
            task_managers: Cell::default(),
            per_job: tokio::sync::Semaphore::new(PER_JOB_READS),
        }
    }
}

/// The shared per-JobManager reads, by JobManager URL.
#[derive(Default)]
pub struct RestCache {
    job_managers: Mutex<HashMap<String, Arc<JobManagerViews>>>,
}

/// What one job's worker keeps between ticks: its details and topology and the change
/// key they were read under.
#[derive(Debug, Default)]
pub struct JobView {
    key: Option<(crate::core::JobId, String, i64, Option<u32>)>,
    read: Option<(Arc<JobDetails>, Topology)>,
}

/// What Flink REST says about one job for one tick.
pub struct JobRead {
    /// The job's entry of `/jobs/overview`.
    pub summary: JobSummary,
    /// `/jobs/:id`.
    pub details: Arc<JobDetails>,
    /// Its graph.
    pub topology: Topology,
    /// `/taskmanagers` of its JobManager.
    pub task_managers: Arc<Vec<TaskManagerInfo>>,
}

impl RestCache {
    fn views(&self, url: &str) -> Arc<JobManagerViews> {
        let mut map = match self.job_managers.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.entry(url.to_string()).or_default().clone()
    }

    /// Everything a tick reads from Flink about the job `selector` names on `client`'s
    /// JobManager (`url`), sharing the JobManager reads of this `interval` slot unless
    /// `fresh`.
    pub async fn read_job(
        &self,
        client: &FlinkClient,
        url: &str,
        selector: &JobSelector,
        interval: Duration,
        fresh: bool,
        view: &mut JobView,
    ) -> Result<JobRead, RestError> {
        let jm = self.views(url);
        let summary = resolve(&jm, client, selector, interval, fresh).await?;
        let key = summary.change_key();
        let (job, task_managers) = tokio::join!(
            async {
                match &view.read {
                    Some(read) if !fresh && view.key.as_ref() == Some(&key) => Ok(read.clone()),
                    _ => {
                        // Never closed, so `acquire` does not fail; without a permit the read
                        // still goes ahead (bounded by the client's timeout).
                        let _permit = jm.per_job.acquire().await.ok();
                        let mut details = client.job(&summary.jid).await?;
                        let topology = client.topology_of(&details).await?;
                        // The embedded plan is in the topology now; the worker keeps the
                        // details until the job changes, so not the plan's JSON tree too.
                        details.plan = None;
                        Ok::<_, FlinkError>((Arc::new(details), topology))
                    }
                }
            },
            shared_read(&jm.task_managers, interval, fresh, || client
                .task_managers()),
        );
        let (details, topology) = job?;
        let task_managers = task_managers.map_err(RestError::Shared)?;
        view.key = Some(key);
        view.read = Some((details.clone(), topology.clone()));
        Ok(JobRead {
            summary,
            details,
            topology,
            task_managers,
        })
    }
}

/// The job in this slot's overview; a job it does not list is looked for once more in a
/// fresh one.
async fn resolve(
    jm: &JobManagerViews,
    client: &FlinkClient,
    selector: &JobSelector,
    interval: Duration,
    fresh: bool,
) -> Result<JobSummary, RestError> {
    let jobs = shared_read(&jm.jobs, interval, fresh, || client.jobs())
        .await
        .map_err(RestError::Shared)?;
    match select_job(jobs.as_ref().clone(), selector) {
        Err(FlinkError::NotFound { .. }) if !fresh => {
            let jobs = shared_read(&jm.jobs, interval, true, || client.jobs())
                .await
                .map_err(RestError::Shared)?;
            Ok(select_job(jobs.as_ref().clone(), selector)?)
        }
        other => Ok(other?),
    }
}

fn slot_of(interval_ms: u64) -> u64 {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    now_ms / interval_ms.max(1)
}

/// This slot's answer of one JobManager endpoint: the shared one, or read now (when
/// there is none for this slot, or `fresh` and the shared one is older than
/// [`COALESCE`]). Holds the cell's lock while reading, so concurrent ticks wait for one
/// read instead of sending their own.
async fn shared_read<T, F, Fut>(
    cell: &Cell<T>,
    interval: Duration,
    fresh: bool,
    read: F,
) -> Result<Arc<T>, Arc<FlinkError>>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, FlinkError>>,
{
    let interval_ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
    let mut cached = cell.lock().await;
    let slot = slot_of(interval_ms);
    if let Some(c) = cached.as_ref() {
        let same_slot = c.slot == slot && c.interval_ms == interval_ms;
        if (same_slot && !fresh) || c.read_at.elapsed() < COALESCE {
            return c.value.clone();
        }
    }
    let value = read().await.map(Arc::new).map_err(Arc::new);
    *cached = Some(Cached {
        slot,
        interval_ms,
        read_at: Instant::now(),
        value: value.clone(),
    });
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    async fn count(cell: &Cell<u32>, calls: &AtomicU32, interval: Duration, fresh: bool) -> u32 {
        let r = shared_read(cell, interval, fresh, || async {
            Ok(calls.fetch_add(1, Ordering::SeqCst) + 1)
        })
        .await;
        *r.unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test]
    async fn one_read_per_slot_fresh_reads_replace_it() {
        let (cell, calls) = (Cell::<u32>::default(), AtomicU32::new(0));
        let hour = Duration::from_secs(3600);
        assert_eq!(count(&cell, &calls, hour, false).await, 1);
        assert_eq!(count(&cell, &calls, hour, false).await, 1, "same slot");
        assert_eq!(
            count(&cell, &calls, hour, true).await,
            1,
            "fresh within the coalescing window"
        );
        tokio::time::sleep(COALESCE).await;
        assert_eq!(count(&cell, &calls, hour, true).await, 2, "fresh read");
        assert_eq!(count(&cell, &calls, hour, false).await, 2, "shared again");
        // A 1 ms interval: every read is in a new slot (after the coalescing window).
        tokio::time::sleep(COALESCE).await;
        assert_eq!(
            count(&cell, &calls, Duration::from_millis(1), false).await,
            3
        );
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_failed_read_is_shared_for_the_slot() {
        let cell = Cell::<u32>::default();
        let calls = AtomicU32::new(0);
        for _ in 0..3 {
            let r = shared_read(&cell, Duration::from_secs(3600), false, || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(FlinkError::NotFound {
                    selector: "x".into(),
                })
            })
            .await;
            assert!(r.is_err());
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}

//! Bounded Flink REST traffic for a fleet of jobs: per JobManager one `/jobs/overview`
//! per evaluation slot, shared by every job on it, `/taskmanagers` only when something
//! may have changed, and per job the details and topology read again only when its id,
//! state or parallelism changed.
//!
//! * A **slot** is a wall-clock window of one `evaluation.interval` (`now / interval`).
//!   Every job ticks once per interval, so one read per slot is one read per tick per
//!   JobManager, whichever of its jobs ticks first; the others reuse it (at most one
//!   interval old).
//! * `/taskmanagers` is read again only when it is needed (steady state: 1 + 1 /
//!   [`TM_REFRESH_SLOTS`] calls per JobManager per tick): the overview changed since the
//!   last read (any job's id, state, `last-modification` or task count: a TaskManager
//!   lost with tasks restarts its jobs, so it shows there), a rescale is in flight (fresh
//!   reads), a scale-down needs the busy/idle ordering ([`RestCache::fresh_task_managers`]),
//!   the last read or the overview failed (an outage), and every [`TM_REFRESH_SLOTS`]
//!   slots (an idle TaskManager that came or went, which no job shows).
//! * Reads are **coalesced**: one in flight per JobManager and endpoint. A failed read is
//!   shared for its slot too: every job of a JobManager that is down gets UNAVAILABLE
//!   naming the same cause, and the JobManager gets one call per slot, not one per job.
//! * A tick with a rescale in flight reads **fresh** (the state machine's fast polling)
//!   unless another in-flight job of the JobManager read within [`IN_FLIGHT_SHARE`]: in a
//!   wave the JobManager gets one overview and one `/taskmanagers` per poll period, not
//!   one per job in flight. A fresh read replaces the shared copy, so the jobs that tick
//!   next see the rescale too. A job the shared overview does not list is looked up once
//!   more in a fresh overview (a job submitted during the slot is found at once).
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

/// Fresh reads of the ticks with a rescale in flight share one answer this young: the
/// worker's fast poll period, so a JobManager gets one overview and one `/taskmanagers`
/// per poll period however many of its jobs are in flight.
pub const IN_FLIGHT_SHARE: Duration = Duration::from_secs(2);

/// A successful `/taskmanagers` read is reused for at most this many slots while the
/// overview does not change (an idle TaskManager that came or went shows in no job).
pub const TM_REFRESH_SLOTS: u64 = 10;

/// When a shared read's answer may be used instead of reading now.
#[derive(Debug, Clone, Copy)]
enum Reuse {
    /// One of the last `n` slots' (a failed one: this slot's only) read under the same
    /// tag, or one younger than [`COALESCE`].
    Slots(u64),
    /// Only an answer younger than this.
    Within(Duration),
}

impl Reuse {
    /// The overview: this slot's, or fresh (`within`).
    fn overview(fresh: Option<Duration>) -> Self {
        fresh.map_or(Self::Slots(1), Self::Within)
    }
}

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
    /// What the answer was read under (the overview's fingerprint for `/taskmanagers`).
    tag: u64,
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
    /// JobManager (`url`), sharing the JobManager reads of this `interval` slot, or,
    /// when `fresh` (a rescale in flight), the reads younger than [`IN_FLIGHT_SHARE`].
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
        let within = fresh.then_some(IN_FLIGHT_SHARE);
        let (summary, overview) = match resolve(&jm, client, selector, interval, within).await {
            Ok(found) => found,
            Err(e) => {
                if matches!(e, RestError::Shared(_)) {
                    // an outage: the TaskManagers are read again once it is over
                    *jm.task_managers.lock().await = None;
                }
                return Err(e);
            }
        };
        let key = summary.change_key();
        let tms = within.map_or(Reuse::Slots(TM_REFRESH_SLOTS), Reuse::Within);
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
            shared_read(&jm.task_managers, interval, tms, Some(overview), || client
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

    /// The JobManager's TaskManagers read now (or by another job within [`COALESCE`]),
    /// replacing the shared copy: what a scale-down's busy/idle ordering needs.
    pub async fn fresh_task_managers(
        &self,
        client: &FlinkClient,
        url: &str,
        interval: Duration,
    ) -> Result<Arc<Vec<TaskManagerInfo>>, Arc<FlinkError>> {
        let jm = self.views(url);
        let reuse = Reuse::Within(COALESCE);
        shared_read(&jm.task_managers, interval, reuse, None, || {
            client.task_managers()
        })
        .await
    }
}

/// The job in the overview (this slot's, or one younger than `within`) and that
/// overview's fingerprint; a job it does not list is looked for once more in a fresh one.
async fn resolve(
    jm: &JobManagerViews,
    client: &FlinkClient,
    selector: &JobSelector,
    interval: Duration,
    within: Option<Duration>,
) -> Result<(JobSummary, u64), RestError> {
    let jobs = shared_read(&jm.jobs, interval, Reuse::overview(within), None, || {
        client.jobs()
    })
    .await
    .map_err(RestError::Shared)?;
    match select_job(jobs.as_ref().clone(), selector) {
        Err(FlinkError::NotFound { .. }) if within.is_none_or(|w| w > COALESCE) => {
            let jobs = shared_read(&jm.jobs, interval, Reuse::Within(COALESCE), None, || {
                client.jobs()
            })
            .await
            .map_err(RestError::Shared)?;
            Ok((
                select_job(jobs.as_ref().clone(), selector)?,
                fingerprint(&jobs),
            ))
        }
        other => Ok((other?, fingerprint(&jobs))),
    }
}

/// What changes when any job of an overview changes (its id, state,
/// `last-modification` or task count), in any order of the jobs.
fn fingerprint(jobs: &[JobSummary]) -> u64 {
    use std::hash::{Hash, Hasher};
    jobs.iter()
        .map(|j| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            j.change_key().hash(&mut h);
            h.finish()
        })
        .fold(jobs.len() as u64, u64::wrapping_add)
}

fn slot_of(interval_ms: u64) -> u64 {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    now_ms / interval_ms.max(1)
}

/// True when `c` may be used in `slot` under `reuse` and `tag` (`None`: any).
fn reusable<T>(c: &Cached<T>, slot: u64, interval_ms: u64, reuse: Reuse, tag: Option<u64>) -> bool {
    let age = c.read_at.elapsed();
    match reuse {
        _ if age < COALESCE => true,
        Reuse::Within(within) => age < within,
        Reuse::Slots(n) => {
            let n = if c.value.is_ok() { n } else { 1 };
            c.interval_ms == interval_ms
                && tag.is_none_or(|t| t == c.tag)
                && slot.saturating_sub(c.slot) < n
        }
    }
}

/// The answer of one JobManager endpoint: the shared one when `reuse` and `tag` (what
/// the answer depends on; `None`: keep the shared one's) allow it, else read now. Holds the cell's lock while reading, so concurrent ticks wait for one read
/// instead of sending their own.
async fn shared_read<T, F, Fut>(
    cell: &Cell<T>,
    interval: Duration,
    reuse: Reuse,
    tag: Option<u64>,
    read: F,
) -> Result<Arc<T>, Arc<FlinkError>>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, FlinkError>>,
{
    let interval_ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
    let mut cached = cell.lock().await;
    let slot = slot_of(interval_ms);
    if let Some(c) = cached
        .as_ref()
        .filter(|c| reusable(c, slot, interval_ms, reuse, tag))
    {
        return c.value.clone();
    }
    let value = read().await.map(Arc::new).map_err(Arc::new);
    let tag = tag.or(cached.as_ref().map(|c| c.tag)).unwrap_or(0);
    *cached = Some(Cached {
        slot,
        interval_ms,
        tag,
        read_at: Instant::now(),
        value: value.clone(),
    });
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    async fn count(
        cell: &Cell<u32>,
        calls: &AtomicU32,
        interval: Duration,
        reuse: Reuse,
        tag: Option<u64>,
    ) -> u32 {
        let r = shared_read(cell, interval, reuse, tag, || async {
            Ok(calls.fetch_add(1, Ordering::SeqCst) + 1)
        })
        .await;
        *r.unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test]
    async fn one_read_per_slot_fresh_reads_replace_it() {
        let (cell, calls) = (Cell::<u32>::default(), AtomicU32::new(0));
        let hour = Duration::from_secs(3600);
        let (slot, fresh) = (Reuse::overview(None), Reuse::overview(Some(COALESCE)));
        assert_eq!(count(&cell, &calls, hour, slot, None).await, 1);
        assert_eq!(count(&cell, &calls, hour, slot, None).await, 1, "same slot");
        assert_eq!(
            count(&cell, &calls, hour, fresh, None).await,
            1,
            "fresh within the coalescing window"
        );
        tokio::time::sleep(COALESCE).await;
        assert_eq!(
            count(&cell, &calls, hour, fresh, None).await,
            2,
            "fresh read"
        );
        assert_eq!(
            count(&cell, &calls, hour, slot, None).await,
            2,
            "shared again"
        );
        // A 1 ms interval: every read is in a new slot (after the coalescing window).
        tokio::time::sleep(COALESCE).await;
        let ms = Duration::from_millis(1);
        assert_eq!(count(&cell, &calls, ms, slot, None).await, 3);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn in_flight_reads_share_one_answer_per_poll_period() {
        let (cell, calls) = (Cell::<u32>::default(), AtomicU32::new(0));
        let hour = Duration::from_secs(3600);
        let in_flight = Reuse::overview(Some(IN_FLIGHT_SHARE));
        assert_eq!(count(&cell, &calls, hour, in_flight, None).await, 1);
        tokio::time::sleep(COALESCE * 2).await;
        // a second job in flight on the JobManager, a second later: the same answer
        assert_eq!(count(&cell, &calls, hour, in_flight, None).await, 1);
        // but a job that needs it fresher (not listed: a new job) reads again
        let lookup = Reuse::Within(COALESCE);
        assert_eq!(count(&cell, &calls, hour, lookup, None).await, 2);
    }

    #[tokio::test]
    async fn task_managers_are_read_again_only_when_the_overview_changed() {
        let (cell, calls) = (Cell::<u32>::default(), AtomicU32::new(0));
        // 200 ms slots: each pause below spans 3-4 slots, fewer than TM_REFRESH_SLOTS
        let slot = Duration::from_millis(200);
        let pause = COALESCE + slot;
        let tms = Reuse::Slots(TM_REFRESH_SLOTS);
        assert_eq!(count(&cell, &calls, slot, tms, Some(7)).await, 1);
        tokio::time::sleep(pause).await;
        assert_eq!(
            count(&cell, &calls, slot, tms, Some(7)).await,
            1,
            "same overview"
        );
        assert_eq!(
            count(&cell, &calls, slot, tms, Some(8)).await,
            2,
            "it changed"
        );
        tokio::time::sleep(pause).await;
        assert_eq!(count(&cell, &calls, slot, tms, Some(8)).await, 2);
        // a scale-down's ordering (read now, any fingerprint) keeps the fingerprint
        let now = Reuse::Within(COALESCE);
        assert_eq!(count(&cell, &calls, slot, now, None).await, 3);
        tokio::time::sleep(pause).await;
        assert_eq!(count(&cell, &calls, slot, tms, Some(8)).await, 3);
        // TM_REFRESH_SLOTS slots after the last read: read again though nothing changed
        let refresh = u32::try_from(TM_REFRESH_SLOTS).unwrap_or(u32::MAX);
        tokio::time::sleep(slot * refresh).await;
        assert_eq!(count(&cell, &calls, slot, tms, Some(8)).await, 4, "refresh");
    }

    #[tokio::test]
    async fn a_failed_read_is_shared_for_its_slot_only() {
        let cell = Cell::<u32>::default();
        let calls = AtomicU32::new(0);
        let hour = Duration::from_secs(3600);
        let fail = |calls: &AtomicU32| {
            calls.fetch_add(1, Ordering::SeqCst);
            async {
                Err(FlinkError::NotFound {
                    selector: "x".into(),
                })
            }
        };
        for _ in 0..3 {
            let tms = Reuse::Slots(TM_REFRESH_SLOTS);
            let r = shared_read(&cell, hour, tms, Some(1), || fail(&calls)).await;
            assert!(r.is_err());
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // a failed answer is not kept for the slots after it, unlike a good one
        tokio::time::sleep(COALESCE).await;
        let ms = Duration::from_millis(1);
        let tms = Reuse::Slots(TM_REFRESH_SLOTS);
        let r = shared_read(&cell, ms, tms, Some(1), || fail(&calls)).await;
        assert!(r.is_err());
        tokio::time::sleep(COALESCE + ms * 2).await;
        let r = shared_read(&cell, ms, tms, Some(1), || fail(&calls)).await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn the_fingerprint_follows_any_job_change_in_any_order() {
        let job = |id: &str, state: &str, modified: i64| -> JobSummary {
            serde_json::from_value(serde_json::json!({
                "jid": id, "name": id, "state": state, "start-time": 1,
                "last-modification": modified, "tasks": {"total": 2}
            }))
            .unwrap_or_else(|e| panic!("{e}"))
        };
        let a = job("00000000000000000000000000000001", "RUNNING", 5);
        let b = job("00000000000000000000000000000002", "RUNNING", 6);
        let ab = fingerprint(&[a.clone(), b.clone()]);
        assert_eq!(ab, fingerprint(&[b.clone(), a.clone()]));
        let restarted = job("00000000000000000000000000000002", "RESTARTING", 9);
        assert_ne!(ab, fingerprint(&[a.clone(), restarted]));
        assert_ne!(ab, fingerprint(&[a]));
    }
}

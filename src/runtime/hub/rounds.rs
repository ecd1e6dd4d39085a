//! The hub's round task: a full round every `evaluation.interval`, a catch-up round
//! [`CATCH_UP_DEBOUNCE`] after a job new to its batches asked; each round plans one
//! query per batch key (per [`MAX_JOBS_PER_QUERY`] job ids), runs them under one
//! deadline, demultiplexes the rows per job and publishes a [`RoundInfo`].

use std::{
    collections::BTreeMap,
    sync::{atomic::Ordering, Arc},
    time::{Duration, Instant},
};

use chrono::Utc;
use futures_util::{stream, StreamExt};

use super::{
    intern, lock, Answered, Batch, BatchKey, RoundInfo, Rows, SignalHub, MAX_JOBS_PER_QUERY,
    MEMBER_TTL_INTERVALS,
};
use crate::{
    promql::{
        read::{query_until, Fault},
        BatchQuery, Batching, JobOutcome, JobVars, PromClient, ReadOptions, SignalErrorKind,
    },
    runtime::shutdown::ShutdownSignal,
};

/// How long a catch-up round waits for more new jobs (a burst of first calls).
const CATCH_UP_DEBOUNCE: Duration = Duration::from_millis(200);
/// Queries of one round in flight at once.
const ROUND_CONCURRENCY: usize = 8;

/// One query of a round: a batch key and the jobs it answers.
struct Planned {
    key: BatchKey,
    client: Arc<PromClient>,
    jobs: Vec<JobVars>,
}

/// One query's per-job outcomes.
struct Done {
    key: BatchKey,
    duration: Duration,
    jobs: usize,
    outcomes: BTreeMap<String, JobOutcome>,
}

impl SignalHub {
    /// Starts the round task (the server does; `explain` and tests that read directly
    /// do not). It stops on shutdown.
    pub fn spawn(self: &Arc<Self>, shutdown: ShutdownSignal) -> tokio::task::JoinHandle<()> {
        self.running.store(true, Ordering::Relaxed);
        let hub = Arc::clone(self);
        tokio::spawn(async move {
            tokio::select! {
                () = hub.run() => {}
                () = shutdown.wait() => {}
            }
            hub.running.store(false, Ordering::Relaxed);
        })
    }

    async fn run(&self) {
        let mut next_full = tokio::time::Instant::now() + self.interval;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(next_full) => {
                    self.round(true).await;
                    next_full = (next_full + self.interval).max(tokio::time::Instant::now());
                }
                () = self.wake.notified() => {
                    tokio::time::sleep(CATCH_UP_DEBOUNCE).await;
                    self.round(false).await;
                }
            }
        }
    }

    /// One round: every member (`full`) or the members waiting for rows.
    async fn round(&self, full: bool) {
        let started = Instant::now();
        let planned = self.plan(full);
        if planned.is_empty() {
            return;
        }
        let jobs = planned
            .iter()
            .flat_map(|p| p.jobs.iter().map(|j| j.job_id.as_str()))
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        let queries = planned.len();
        let mut per_server: BTreeMap<Arc<str>, u64> = BTreeMap::new();
        for p in &planned {
            *per_server.entry(p.key.server.clone()).or_default() += 1;
        }
        let kind = if full { "batch" } else { "catch_up" };
        // Each query's rows replace the batch's previous ones as soon as it answers: the
        // round never holds two copies of every job's rows (16,000 at 1,000 jobs).
        stream::iter(planned)
            .map(|p| self.run_one(p, kind))
            .buffer_unordered(ROUND_CONCURRENCY)
            .for_each(|done| {
                self.store(done);
                std::future::ready(())
            })
            .await;
        if full {
            for (server, n) in &per_server {
                self.metrics.set_round_queries(server, *n);
            }
        }
        let duration = started.elapsed();
        tracing::debug!(full, queries, jobs, ?duration, "signal round");
        self.rounds.send_modify(|r| {
            *r = RoundInfo {
                seq: r.seq + 1,
                at: Some(Utc::now()),
                full,
                queries: u32::try_from(queries).unwrap_or(u32::MAX),
                jobs: u32::try_from(jobs).unwrap_or(u32::MAX),
                duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            }
        });
    }

    /// The queries of a round; a full round first drops the jobs not read for
    /// [`MEMBER_TTL_INTERVALS`] intervals (and batches left without jobs).
    fn plan(&self, full: bool) -> Vec<Planned> {
        let ttl = self.interval * MEMBER_TTL_INTERVALS;
        let now = Instant::now();
        let mut batches = lock(&self.batches);
        if full {
            for batch in batches.values_mut() {
                batch
                    .members
                    .retain(|_, m| now.duration_since(m.seen) <= ttl);
            }
            batches.retain(|_, b| !b.members.is_empty());
            lock(&self.keys).retain(|k| Arc::strong_count(k) > 1);
        }
        let mut planned = Vec::new();
        for (key, batch) in batches.iter_mut() {
            let jobs: Vec<JobVars> = batch
                .members
                .values_mut()
                .filter(|m| full || m.pending)
                .map(|m| {
                    m.pending = false;
                    JobVars::clone(&m.vars)
                })
                .collect();
            planned.extend(chunks(key, batch, jobs));
        }
        planned
    }

    /// Runs one planned query under the round's deadline and demultiplexes it.
    async fn run_one(&self, p: Planned, kind: &'static str) -> Done {
        let windows = self.windows_for(&p.key, &p.client).await;
        let query = BatchQuery::new(p.key.signal, &p.key.template, windows);
        let options = ReadOptions {
            at: None,
            timeout: self.interval.min(p.client.max_call_duration()),
            concurrency: 1,
            windows,
        };
        let deadline = tokio::time::Instant::now() + options.timeout;
        let t0 = Instant::now();
        let result = match query.render(&p.jobs) {
            Ok(promql) => query_until(&p.client, &promql, &options, deadline).await,
            Err(e) => Err(Fault::Template(e)),
        };
        let duration = t0.elapsed();
        let by_job = match result {
            Ok(samples) => query.demux(&p.jobs, Ok(samples)),
            Err(Fault::Query(e)) => query.demux(&p.jobs, Err(e)),
            Err(Fault::Template(e)) => each(&p.jobs, |_| SignalErrorKind::Template(e.clone())),
            Err(Fault::Timeout) => each(&p.jobs, |j| SignalErrorKind::Timeout {
                job_id: j.job_id.clone(),
                timeout: options.timeout,
            }),
        };
        self.record_batch(&p.key, kind, duration, &by_job);
        Done {
            key: p.key,
            duration,
            jobs: p.jobs.len(),
            outcomes: by_job,
        }
    }

    /// Records the query once: its duration, and a failure when it failed for every job.
    fn record_batch(
        &self,
        key: &BatchKey,
        kind: &'static str,
        duration: Duration,
        outcomes: &BTreeMap<String, JobOutcome>,
    ) {
        let name = key.signal.name();
        self.metrics
            .observe_prometheus_query(&key.server, name, duration.as_secs_f64());
        self.metrics.count_prometheus_queries(&key.server, kind, 1);
        let failed = outcomes.values().find_map(|o| o.as_ref().err());
        let all_failed = outcomes.values().all(Result::is_err);
        if let (Some(e), true) = (failed, all_failed) {
            self.metrics
                .record_prometheus_error(&key.server, name, e.kind());
        }
    }

    /// Keeps every job's rows of one query of the round.
    fn store(&self, d: Done) {
        let now = Instant::now();
        let mut batches = lock(&self.batches);
        let mut keys = lock(&self.keys);
        let Some(batch) = batches.get_mut(&d.key) else {
            return;
        };
        let query = Arc::new(Answered {
            at: now,
            duration: d.duration,
            jobs: d.jobs,
        });
        for (job_id, mut outcome) in d.outcomes {
            if let Some(member) = batch.members.get_mut(job_id.as_str()) {
                // fresh rows are this job's alone; a shared template's are shared
                if let Some(rows) = outcome.as_mut().ok().and_then(Arc::get_mut) {
                    rows.share_keys(|k| intern(&mut keys, k));
                }
                member.rows = Some(Rows::new(query.clone(), outcome));
            }
        }
    }
}

/// The queries of one batch: one per [`MAX_JOBS_PER_QUERY`] jobs for a `{{job_ids}}`
/// template, one for a shared template (every job gets its rows).
fn chunks(key: &BatchKey, batch: &Batch, jobs: Vec<JobVars>) -> Vec<Planned> {
    if jobs.is_empty() {
        return Vec::new();
    }
    let size = match Batching::of(&key.template) {
        Batching::ByJobId => MAX_JOBS_PER_QUERY,
        Batching::Shared | Batching::PerJob => usize::MAX,
    };
    jobs.chunks(size.max(1))
        .map(|c| Planned {
            key: key.clone(),
            client: batch.client.clone(),
            jobs: c.to_vec(),
        })
        .collect()
}

/// The same error for every job.
fn each(
    jobs: &[JobVars],
    error: impl Fn(&JobVars) -> SignalErrorKind,
) -> BTreeMap<String, JobOutcome> {
    jobs.iter()
        .map(|j| (j.job_id.clone(), Err(error(j))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{core::Signal, promql::Endpoint};

    fn batch(template: &str) -> (BatchKey, Batch) {
        let endpoint = Endpoint::new("http://127.0.0.1:9", Duration::from_secs(1), 0);
        let client = Arc::new(PromClient::new(&endpoint).expect("client"));
        let key = BatchKey {
            server: "default".into(),
            signal: Signal::BusyTime,
            template: template.into(),
            matchers: "".into(),
        };
        let batch = Batch {
            client,
            members: BTreeMap::new(),
        };
        (key, batch)
    }

    fn jobs(n: usize) -> Vec<JobVars> {
        (0..n)
            .map(|i| JobVars::new(format!("{i:032x}"), format!("j{i}")))
            .collect()
    }

    /// A `{{job_ids}}` batch is cut at MAX_JOBS_PER_QUERY ids per query; a shared
    /// (cluster-wide) template is one query whatever the jobs; no jobs, no query.
    #[test]
    fn chunks_bound_the_ids_per_query() {
        let (key, b) = batch("max by (job_id, task_id) (m{job_id=~\"{{job_ids}}\"})");
        let planned = chunks(&key, &b, jobs(2 * MAX_JOBS_PER_QUERY + 1));
        let sizes: Vec<usize> = planned.iter().map(|p| p.jobs.len()).collect();
        assert_eq!(sizes, [MAX_JOBS_PER_QUERY, MAX_JOBS_PER_QUERY, 1]);
        let (key, b) = batch("max(slots)");
        assert_eq!(chunks(&key, &b, jobs(5000)).len(), 1);
        assert!(chunks(&key, &b, Vec::new()).is_empty());
    }
}

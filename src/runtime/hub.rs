//! The signal hub: one Prometheus query per signal per tick for **all** jobs that share
//! a server, matchers and template, instead of one per signal per job.
//!
//! ```text
//!  worker tick ──read(job)──► take the job's rows of its batches (≤ 2 intervals old)
//!       │                      ├─ missing (job new to a batch): wake a catch-up round,
//!       │                      │  wait ≤ 3 s for it, else read those signals directly
//!       │                      └─ per-job templates ({{job_id}}/{{job_name}}): directly
//!       ▼
//!  assemble ──► SignalRead (exactly the per-job semantics of promql::read_signals)
//!
//!  round task: every evaluation.interval a full round (every batch with members, one
//!  query per batch key, ≤ 2,000 job ids per query, 8 in flight, each bounded by
//!  min(interval, the server's call bound)); 200 ms after a new job a catch-up round for
//!  the jobs waiting; rows demultiplexed per job and kept per batch until the next round.
//! ```
//!
//! A batch key is (server, signal, template, matchers): two policies that differ in one
//! query share the other queries' batches. Jobs leave a batch when not read for three
//! intervals. The windows (`{{window}}`, `{{interval}}`) come from the scrape interval of
//! the (server, matchers) ([`intervals`]). The hub never calls Flink; a worker stuck on
//! Flink delays nobody else's signals.

mod intervals;
mod rounds;

use super::sync::lock;
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{watch, Notify};

pub use intervals::{IntervalSource, Intervals, ScrapeIntervalReport};

use crate::{
    core::{Signal, Topology},
    exporter::Metrics,
    promql::{
        assemble, read_direct, stat, Batching, JobOutcome, JobRows, JobVars, PromClient, QueryStat,
        ReadOptions, SignalError, SignalErrorKind, SignalOutcome, SignalQueries, SignalRead,
        Windows,
    },
};

/// Most job ids in one query's `{{job_ids}}` (about 66 KB of PromQL, sent by POST).
pub const MAX_JOBS_PER_QUERY: usize = 2_000;
/// How long a read waits for the catch-up round of a job new to its batches.
const CATCH_UP_WAIT: Duration = Duration::from_secs(3);
/// Queries in flight for a direct read.
const DIRECT_CONCURRENCY: usize = 8;
/// Intervals without a read after which a job leaves its batches.
const MEMBER_TTL_INTERVALS: u32 = 3;

/// One signal's batch: everything that makes two jobs' queries the same query.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct BatchKey {
    server: Arc<str>,
    signal: Signal,
    template: Arc<str>,
    matchers: Arc<str>,
}

/// A job of a batch. A job's members of all its batches share one `Arc<JobVars>` (and
/// one job-id key): at 1,000 jobs × 15 signals, per-batch copies were most of what the
/// hub held besides the rows.
#[derive(Debug, Clone)]
struct Member {
    vars: Arc<JobVars>,
    seen: Instant,
    /// Waits for a catch-up round (no rows yet).
    pending: bool,
    /// The job's rows from the last round that answered it.
    rows: Option<Rows>,
}

/// What one query of a round was: shared by the rows of every job it answered.
#[derive(Debug)]
struct Answered {
    at: Instant,
    duration: Duration,
    jobs: usize,
}

/// A job's rows of one batch, from one round: the query's shared part and the job's own
/// outcome (the error boxed: a member is ~64 bytes, not 184, at 15,000 members).
#[derive(Debug, Clone)]
struct Rows {
    query: Arc<Answered>,
    outcome: Result<Arc<JobRows>, Box<SignalErrorKind>>,
}

impl Rows {
    fn new(query: Arc<Answered>, outcome: JobOutcome) -> Self {
        Self {
            query,
            outcome: outcome.map_err(Box::new),
        }
    }

    /// The job's outcome of `signal` with the statistics of the query behind it.
    fn signal_outcome(&self, signal: Signal) -> SignalOutcome {
        let result = match &self.outcome {
            Ok(rows) => Ok(rows.clone()),
            Err(e) => Err(SignalErrorKind::clone(e)),
        };
        let stat = stat(signal, self.query.duration, self.query.jobs, &result);
        SignalOutcome { stat, result }
    }
}

/// The jobs of one batch key (by job id) and their latest rows.
struct Batch {
    client: Arc<PromClient>,
    members: BTreeMap<Arc<str>, Member>,
}

/// What one round did (published after every round).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoundInfo {
    /// Rounds so far.
    pub seq: u64,
    /// When the round ended.
    pub at: Option<DateTime<Utc>>,
    /// A full round (every member), or a catch-up round (jobs new to their batches).
    pub full: bool,
    /// Queries sent.
    pub queries: u32,
    /// Jobs answered.
    pub jobs: u32,
    /// Wall time of the round in milliseconds.
    pub duration_ms: u64,
}

/// What a worker asks the hub for.
#[derive(Debug, Clone, Copy)]
pub struct SignalRequest<'a> {
    /// Prometheus server name (`settings.prometheus_name`).
    pub server: &'a str,
    /// Its client.
    pub client: &'a Arc<PromClient>,
    /// The job's queries.
    pub queries: &'a SignalQueries,
    /// Job id, name and matchers.
    pub vars: &'a JobVars,
    /// The job's topology (coverage of required signals, unknown vertices).
    pub topology: &'a Topology,
}

/// Batched signal reads for every job of the process (one per [`super::Context`]).
pub struct SignalHub {
    interval: Duration,
    metrics: Arc<Metrics>,
    intervals: Intervals,
    batches: Mutex<HashMap<BatchKey, Batch>>,
    /// One copy of each vertex / TaskManager id the kept rows use (all signals, all
    /// rounds); ids no row uses any more leave at the next full round.
    keys: Mutex<HashSet<Arc<str>>>,
    rounds: watch::Sender<RoundInfo>,
    wake: Notify,
    running: AtomicBool,
}

/// The job id and vars a job's members share (from its first member that has them).
#[derive(Default)]
struct Shared {
    id: Option<Arc<str>>,
    vars: Option<Arc<JobVars>>,
}

impl Shared {
    fn id(&mut self, vars: &JobVars) -> Arc<str> {
        self.id
            .get_or_insert_with(|| vars.job_id.as_str().into())
            .clone()
    }

    fn vars(&mut self, vars: &JobVars) -> Arc<JobVars> {
        self.vars
            .get_or_insert_with(|| Arc::new(vars.clone()))
            .clone()
    }
}

/// Where a read's signals come from.
#[derive(Default)]
struct Taken {
    outcomes: Vec<SignalOutcome>,
    missing: Vec<Signal>,
    direct: Vec<Signal>,
    oldest: Duration,
}

impl SignalHub {
    /// A hub for `evaluation.interval` with the configured scrape intervals per server.
    pub fn new(
        interval: Duration,
        scrape_intervals: BTreeMap<String, Duration>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            interval,
            intervals: Intervals::new(scrape_intervals, metrics.clone()),
            metrics,
            batches: Mutex::new(HashMap::new()),
            keys: Mutex::new(HashSet::new()),
            rounds: watch::Sender::new(RoundInfo::default()),
            wake: Notify::new(),
            running: AtomicBool::new(false),
        }
    }

    /// Completed rounds: subscribe to run a tick right after fresh rows arrived.
    pub fn rounds(&self) -> watch::Receiver<RoundInfo> {
        self.rounds.subscribe()
    }

    /// The scrape interval of every (server, matchers) in use.
    pub fn scrape_intervals(&self) -> Vec<ScrapeIntervalReport> {
        self.intervals.reports()
    }

    /// The scrape interval (and windows) for one (server, matchers), learning it first if
    /// it is not known yet.
    pub async fn scrape_interval(
        &self,
        server: &str,
        matchers: &str,
        client: &PromClient,
    ) -> ScrapeIntervalReport {
        self.intervals.report(server, matchers, client).await
    }

    /// The job's signals for this tick, within `deadline`: the rows of its batches from
    /// the last round, the rest (per-job templates, a job its batches could not answer in
    /// time, or every signal when the round task does not run, as in `explain`) read for
    /// this job alone. Fails only when a required signal cannot be read for every vertex.
    pub async fn read(
        &self,
        req: &SignalRequest<'_>,
        deadline: Duration,
    ) -> Result<SignalRead, SignalError> {
        let started = Instant::now();
        let interval = self
            .intervals
            .report(req.server, &req.vars.matchers, req.client)
            .await;
        let windows = interval.windows;
        let mut rounds = self.rounds.subscribe();
        let mut taken = self.take(req);
        if !taken.missing.is_empty() && self.running.load(Ordering::Relaxed) {
            self.wake.notify_one();
            let wait = CATCH_UP_WAIT.min(deadline / 2);
            let until = tokio::time::Instant::now() + wait;
            while !taken.missing.is_empty() {
                match tokio::time::timeout_at(until, rounds.changed()).await {
                    Ok(Ok(())) => self.retake(req, &mut taken),
                    _ => break,
                }
            }
        }
        let mut direct = std::mem::take(&mut taken.direct);
        direct.append(&mut taken.missing);
        if !direct.is_empty() {
            let options = ReadOptions {
                at: None,
                timeout: deadline
                    .saturating_sub(started.elapsed())
                    .max(Duration::from_secs(1)),
                concurrency: DIRECT_CONCURRENCY,
                windows,
            };
            let outcomes = read_direct(req.client, req.queries, &direct, req.vars, &options).await;
            self.record(req.server, "job", outcomes.iter().map(|o| &o.stat));
            taken.outcomes.extend(outcomes);
        }
        taken.outcomes.sort_by_key(|o| o.stat.signal);
        let mut read = assemble(
            Utc::now(),
            taken.outcomes,
            req.topology,
            &req.vars.job_id,
            windows,
        )?;
        read.elapsed = started.elapsed();
        read.age = taken.oldest;
        read.signal_window = interval.signal_window(req.queries);
        read.arrival_window = interval.arrival_window(req.queries);
        Ok(read)
    }

    /// Registers the job in the batches of its signals and takes their fresh rows.
    fn take(&self, req: &SignalRequest<'_>) -> Taken {
        let mut taken = Taken::default();
        let now = Instant::now();
        let mut batches = lock(&self.batches);
        let mut shared = Shared::default();
        for (signal, template) in req.queries.enabled() {
            if Batching::of(template) == Batching::PerJob {
                taken.direct.push(signal);
                continue;
            }
            let key = BatchKey {
                server: req.server.into(),
                signal,
                template: template.into(),
                matchers: req.vars.matchers.as_str().into(),
            };
            let batch = batches.entry(key).or_insert_with(|| Batch {
                client: req.client.clone(),
                members: BTreeMap::new(),
            });
            let member = member(batch, req.vars, &mut shared, now);
            match &member.rows {
                Some(rows) if now.duration_since(rows.query.at) <= self.interval * 2 => {
                    taken.oldest = taken.oldest.max(now.duration_since(rows.query.at));
                    taken.outcomes.push(rows.signal_outcome(signal));
                }
                _ => {
                    member.pending = true;
                    taken.missing.push(signal);
                }
            }
        }
        taken
    }

    /// Takes the rows that arrived for the signals still missing.
    fn retake(&self, req: &SignalRequest<'_>, taken: &mut Taken) {
        let again = self.take(req);
        for outcome in again.outcomes {
            let signal = outcome.stat.signal;
            if let Some(i) = taken.missing.iter().position(|s| *s == signal) {
                taken.missing.swap_remove(i);
                taken.outcomes.push(outcome);
            }
        }
        taken.oldest = taken.oldest.max(again.oldest);
    }

    /// Records the durations and failures of the queries behind `stats` (each once).
    fn record<'a>(
        &self,
        server: &str,
        kind: &'static str,
        stats: impl Iterator<Item = &'a QueryStat>,
    ) {
        let mut n = 0;
        for s in stats {
            n += 1;
            self.metrics.observe_prometheus_query(
                server,
                s.signal.name(),
                s.duration.as_secs_f64(),
            );
            if s.outcome != "ok" {
                self.metrics
                    .record_prometheus_error(server, s.signal.name(), s.outcome);
            }
        }
        self.metrics.count_prometheus_queries(server, kind, n);
    }

    /// The windows the batch key's queries use now.
    async fn windows_for(&self, key: &BatchKey, client: &PromClient) -> Windows {
        self.intervals
            .windows(&key.server, &key.matchers, client)
            .await
    }
}

/// The job's member of `batch` (added when new), seen `now`, with the job's current
/// vars; shares the id and vars with the job's other members through `shared`.
fn member<'b>(
    batch: &'b mut Batch,
    vars: &JobVars,
    shared: &mut Shared,
    now: Instant,
) -> &'b mut Member {
    if let Some((id, m)) = batch.members.get_key_value(vars.job_id.as_str()) {
        shared.id.get_or_insert_with(|| id.clone());
        if *m.vars == *vars {
            shared.vars.get_or_insert_with(|| m.vars.clone());
        }
    }
    let member = batch
        .members
        .entry(shared.id(vars))
        .or_insert_with(|| Member {
            vars: shared.vars(vars),
            seen: now,
            pending: true,
            rows: None,
        });
    member.seen = now;
    if *member.vars != *vars {
        member.vars = shared.vars(vars);
    }
    member
}

/// The shared copy of `key` (kept from now on when new).
fn intern(keys: &mut HashSet<Arc<str>>, key: &Arc<str>) -> Arc<str> {
    match keys.get(&**key) {
        Some(shared) => shared.clone(),
        None => {
            keys.insert(key.clone());
            key.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promql::Endpoint;

    fn batch() -> Batch {
        let endpoint = Endpoint::new("http://127.0.0.1:9", Duration::from_secs(1), 0);
        Batch {
            client: Arc::new(PromClient::new(&endpoint).expect("client")),
            members: BTreeMap::new(),
        }
    }

    /// A job's members of all its batches share one id and one vars; changed vars are
    /// taken (and shared again).
    #[test]
    fn members_share_the_job_id_and_vars() {
        let (mut a, mut b) = (batch(), batch());
        let now = Instant::now();
        let vars = JobVars::new("0123", "orders");
        let mut shared = Shared::default();
        let va = member(&mut a, &vars, &mut shared, now).vars.clone();
        let vb = member(&mut b, &vars, &mut shared, now).vars.clone();
        assert!(Arc::ptr_eq(&va, &vb));
        let (ka, kb) = (a.members.keys().next(), b.members.keys().next());
        assert!(ka.zip(kb).is_some_and(|(x, y)| Arc::ptr_eq(x, y)));
        // the next tick, with other matchers: taken, shared again
        let changed = vars.clone().with_matchers("namespace=\"x\"");
        let mut shared = Shared::default();
        let va = member(&mut a, &changed, &mut shared, now).vars.clone();
        let vb = member(&mut b, &changed, &mut shared, now).vars.clone();
        assert_eq!(*va, changed);
        assert!(Arc::ptr_eq(&va, &vb));
        assert_eq!((a.members.len(), b.members.len()), (1, 1));
    }

    /// A kept row gives back exactly what the query answered the job: its rows (shared,
    /// not copied) or its error, with the statistics of the query behind it.
    #[test]
    fn kept_rows_give_back_the_jobs_outcome_and_statistics() {
        let query = Arc::new(Answered {
            at: Instant::now(),
            duration: Duration::from_millis(40),
            jobs: 1_000,
        });
        let mut values = JobRows::default();
        values.values.insert(Arc::from("v1"), 0.5);
        values.values.insert(Arc::from("v2"), 0.25);
        let values = Arc::new(values);
        let ok = Rows::new(query.clone(), Ok(values.clone()));
        let got = ok.signal_outcome(Signal::BusyTime);
        assert!(got.result.as_ref().is_ok_and(|r| Arc::ptr_eq(r, &values)));
        assert_eq!(
            got.stat,
            QueryStat {
                signal: Signal::BusyTime,
                duration: Duration::from_millis(40),
                series: 2,
                jobs: 1_000,
                outcome: "ok",
            }
        );
        let error = SignalErrorKind::Timeout {
            job_id: "0123".into(),
            timeout: Duration::from_secs(15),
        };
        let failed = Rows::new(query, Err(error.clone()));
        let got = failed.signal_outcome(Signal::RecordsIn);
        assert_eq!(
            got.result.as_ref().err().map(|e| e.kind()),
            Some(error.kind())
        );
        assert_eq!((got.stat.series, got.stat.outcome), (0, error.kind()));
        assert_eq!(got.stat.signal, Signal::RecordsIn);
        // a member stays small: 15 batches × 1,000 jobs of them
        assert!(
            std::mem::size_of::<Member>() <= 64,
            "{}",
            std::mem::size_of::<Member>()
        );
    }

    /// Rows' keys become one shared copy per id; unused ids can be dropped.
    #[test]
    fn row_keys_are_shared() {
        let mut keys = HashSet::new();
        let mut rows = |ids: &[&str]| {
            let mut r = crate::promql::JobRows::default();
            for id in ids {
                r.values.insert(Arc::from(*id), 1.0);
            }
            r.share_keys(|k| intern(&mut keys, k));
            r
        };
        let (busy, rate) = (rows(&["v1", "v2"]), rows(&["v2", "v1"]));
        for (x, y) in busy.values.keys().zip(rate.values.keys()) {
            assert_eq!(x, y);
            assert!(Arc::ptr_eq(x, y), "{x}");
        }
        drop((busy, rate));
        keys.retain(|k| Arc::strong_count(k) > 1);
        assert!(keys.is_empty());
    }
}

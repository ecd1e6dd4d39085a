//! One signal's query for a batch of jobs, and the demultiplexing of its rows into
//! per-job outcomes with exactly the per-job semantics of a query made for that job alone:
//! rows are attributed by their `job_id` label ([`Batching::ByJobId`]), every row is the
//! job's ([`Batching::PerJob`], a batch of one) or every job gets every row
//! ([`Batching::Shared`]); then each job's rows are keyed by the scope's label with the one
//! keying the backtest uses too ([`key_by_scope`]): a job without rows gets its own
//! "no series" error (naming the query as it would have been made for that job alone), a
//! job whose rows repeat a key its own "duplicate series" error, and a failed query the
//! same error for every job it carries. NaN values are kept (the read reports them).

use std::{collections::BTreeMap, sync::Arc};

use super::{
    defaults::FALLBACK_LABEL,
    error::QueryError,
    keying::key_by_scope,
    queries::{render, render_for, Batching, JobVars, TemplateError},
    response::Sample,
    signals::SignalErrorKind,
    windows::Windows,
};
use crate::core::Signal;

/// One signal's rows for one job, keyed by the scope's label (`task_id`, `tm_id`, `""`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobRows {
    /// Value per key. `Arc<str>` keys: a holder of many jobs' rows (the signal hub) can
    /// share one copy of each vertex / TaskManager id across signals and rounds
    /// ([`JobRows::share_keys`]).
    pub values: KeyedValues,
    /// Keys answered by a fallback gauge (rows marked with `fks_fallback`), with the
    /// gauge's name.
    pub fallback: BTreeMap<String, String>,
}

/// What one signal's query gave one job.
pub type JobOutcome = Result<Arc<JobRows>, SignalErrorKind>;

/// One signal's template, how it batches, and the windows it is rendered with.
#[derive(Debug, Clone, Copy)]
pub struct BatchQuery<'a> {
    /// The signal.
    pub signal: Signal,
    /// Its template.
    pub template: &'a str,
    /// How its rows are attributed.
    pub batching: Batching,
    /// `{{window}}` and `{{interval}}`.
    pub windows: Windows,
}

impl<'a> BatchQuery<'a> {
    /// A signal's template with the windows to render it with.
    pub fn new(signal: Signal, template: &'a str, windows: Windows) -> Self {
        Self {
            signal,
            template,
            batching: Batching::of(template),
            windows,
        }
    }

    /// The PromQL for these jobs (all sharing the matchers; one job for `PerJob`).
    pub fn render(&self, jobs: &[JobVars]) -> Result<String, TemplateError> {
        render_for(self.signal, self.template, jobs, &self.windows)
    }

    /// The PromQL as it would be sent for one job alone (for error messages).
    fn render_one(&self, job: &JobVars) -> String {
        render(self.signal, self.template, job, &self.windows)
            .unwrap_or_else(|_| self.template.to_string())
    }

    /// Splits the query's result into one outcome per job of `jobs`.
    pub fn demux(
        &self,
        jobs: &[JobVars],
        result: Result<Vec<Sample>, QueryError>,
    ) -> BTreeMap<String, JobOutcome> {
        match result {
            Ok(samples) => self.demux_rows(jobs, samples),
            Err(QueryError::EmptyResult { .. }) => jobs
                .iter()
                .map(|j| (j.job_id.clone(), Err(self.empty(j))))
                .collect(),
            Err(e) => {
                let shared = Arc::new(e);
                jobs.iter()
                    .map(|j| {
                        let kind = SignalErrorKind::Query {
                            job_id: j.job_id.clone(),
                            source: shared.clone(),
                        };
                        (j.job_id.clone(), Err(kind))
                    })
                    .collect()
            }
        }
    }

    fn empty(&self, job: &JobVars) -> SignalErrorKind {
        SignalErrorKind::Empty {
            job_id: job.job_id.clone(),
            query: self.render_one(job),
        }
    }

    fn demux_rows(&self, jobs: &[JobVars], samples: Vec<Sample>) -> BTreeMap<String, JobOutcome> {
        match self.batching {
            Batching::PerJob | Batching::Shared => {
                let Some(first) = jobs.first() else {
                    return BTreeMap::new();
                };
                let keyed = self.key(first, samples);
                jobs.iter()
                    .map(|j| (j.job_id.clone(), rekey(keyed.clone(), &j.job_id)))
                    .collect()
            }
            Batching::ByJobId => self.demux_by_job_id(jobs, samples),
        }
    }

    /// Rows attributed by `job_id`; when no row carries it the query is not grouped by it.
    fn demux_by_job_id(
        &self,
        jobs: &[JobVars],
        samples: Vec<Sample>,
    ) -> BTreeMap<String, JobOutcome> {
        let any = !samples.is_empty();
        let mut by_job: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
        for s in samples {
            if let Some(id) = s.labels.get("job_id") {
                by_job.entry(id.clone()).or_default().push(s);
            }
        }
        let ungrouped = any && by_job.is_empty();
        jobs.iter()
            .map(|j| {
                let outcome = if ungrouped {
                    Err(SignalErrorKind::MissingLabel {
                        job_id: j.job_id.clone(),
                        label: "job_id",
                    })
                } else {
                    match by_job.remove(&j.job_id) {
                        Some(rows) => self.key(j, rows),
                        None => Err(self.empty(j)),
                    }
                };
                (j.job_id.clone(), outcome)
            })
            .collect()
    }

    /// One job's rows keyed by the scope's label.
    fn key(&self, job: &JobVars, samples: Vec<Sample>) -> JobOutcome {
        let keyed = key_by_scope(self.signal, samples, &job.job_id)?;
        let mut fallback = BTreeMap::new();
        let values = keyed
            .into_iter()
            .map(|(key, sample)| {
                if let Some(gauge) = sample.labels.get(FALLBACK_LABEL) {
                    fallback.insert(key.clone(), gauge.clone());
                }
                (Arc::from(key), sample.value)
            })
            .collect();
        Ok(Arc::new(JobRows { values, fallback }))
    }
}

impl JobRows {
    /// Replaces each key by the equal one `intern` returns (a shared copy), in place.
    pub fn share_keys(&mut self, mut intern: impl FnMut(&Arc<str>) -> Arc<str>) {
        for (k, _) in &mut self.values.0 {
            *k = intern(k);
        }
    }
}

/// Values by key, sorted by key, in one exactly sized slice: the signal hub holds one per
/// job and signal (16,000 at 1,000 jobs), and a `BTreeMap` leaf reserves eleven entries
/// however few keys a job has (five vertices: 120 bytes here against about 290).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyedValues(Vec<(Arc<str>, f64)>);

impl KeyedValues {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.position(key).ok().map(|i| self.0[i].1)
    }

    /// True when `key` has a value.
    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_ok()
    }

    /// Sets `key`'s value (kept sorted).
    pub fn insert(&mut self, key: Arc<str>, value: f64) {
        match self.position(&key) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.0.insert(i, (key, value)),
        }
    }

    /// Keys with their values, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&Arc<str>, f64)> {
        self.0.iter().map(|(k, v)| (k, *v))
    }

    /// Keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &Arc<str>> {
        self.0.iter().map(|(k, _)| k)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True without keys.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn position(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| (**k).cmp(key))
    }
}

impl FromIterator<(Arc<str>, f64)> for KeyedValues {
    /// Sorted by key; of a repeated key the last value.
    fn from_iter<I: IntoIterator<Item = (Arc<str>, f64)>>(iter: I) -> Self {
        let mut v: Vec<(Arc<str>, f64)> = iter.into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1 = later.1;
            }
            same
        });
        v.shrink_to_fit();
        Self(v)
    }
}

/// A shared outcome for another job: the rows as they are, an error re-addressed.
fn rekey(outcome: JobOutcome, job_id: &str) -> JobOutcome {
    outcome.map_err(|e| e.for_job(job_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_values_stay_sorted_and_keep_the_last_of_a_repeated_key() {
        let v: KeyedValues = [("b", 2.0), ("a", 1.0), ("b", 3.0)]
            .into_iter()
            .map(|(k, x)| (Arc::from(k), x))
            .collect();
        assert_eq!(v.keys().map(|k| &**k).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(
            (v.get("a"), v.get("b"), v.get("c")),
            (Some(1.0), Some(3.0), None)
        );
        let mut v = v;
        v.insert("0".into(), 0.5);
        v.insert("a".into(), 4.0);
        assert_eq!(
            v.iter()
                .map(|(k, x)| (k.to_string(), x))
                .collect::<Vec<_>>(),
            [("0".into(), 0.5), ("a".into(), 4.0), ("b".into(), 3.0)]
        );
        assert!(v.contains_key("0") && !v.contains_key("z") && v.len() == 3);
    }

    fn sample(labels: &[(&str, &str)], value: f64) -> Sample {
        Sample {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            at: chrono::DateTime::from_timestamp(0, 0).unwrap_or_default(),
            value,
        }
    }

    fn jobs() -> Vec<JobVars> {
        vec![JobVars::new("a", "ja"), JobVars::new("b", "jb")]
    }

    /// Rows go to their job; a job without rows gets its own "no series" error naming
    /// its own query; duplicates fail only the job they belong to.
    #[test]
    fn by_job_id() {
        let q = BatchQuery::new(
            Signal::BusyTime,
            "max by (job_id, task_id) (m{job_id=~\"{{job_ids}}\"})",
            Windows::default(),
        );
        let three = [
            JobVars::new("a", "ja"),
            JobVars::new("b", "jb"),
            JobVars::new("c", "jc"),
        ];
        let out = q.demux(
            &three,
            Ok(vec![
                sample(&[("job_id", "a"), ("task_id", "v1")], 1.0),
                sample(
                    &[("job_id", "a"), ("task_id", "v2"), ("fks_fallback", "g")],
                    f64::NAN,
                ),
                sample(&[("job_id", "b"), ("task_id", "v1")], 2.0),
                sample(&[("job_id", "b"), ("task_id", "v1")], 3.0),
            ]),
        );
        let a = out["a"].as_ref().expect("a answered");
        assert_eq!(a.values.len(), 2);
        assert!(a.values.get("v2").is_some_and(f64::is_nan));
        assert_eq!(a.fallback.get("v2").map(String::as_str), Some("g"));
        assert!(matches!(
            out["b"],
            Err(SignalErrorKind::Duplicate { count: 2, ref job_id, .. }) if job_id == "b"
        ));
        match &out["c"] {
            Err(SignalErrorKind::Empty { job_id, query }) => {
                assert_eq!(job_id, "c");
                assert_eq!(query, "max by (job_id, task_id) (m{job_id=~\"c\"})");
            }
            other => panic!("expected empty, got {other:?}"),
        }
    }

    /// A failed query fails every job it carries, each with the cause; rows without
    /// `job_id` mean the query is not grouped by it.
    #[test]
    fn failures_and_ungrouped() {
        let q = BatchQuery::new(
            Signal::BusyTime,
            "max by (task_id) (m{job_id=~\"{{job_ids}}\"})",
            Windows::default(),
        );
        let out = q.demux(
            &jobs(),
            Err(QueryError::PromQl {
                error_type: "bad_data".into(),
                error: "parse error".into(),
            }),
        );
        for id in ["a", "b"] {
            let e = out[id].as_ref().expect_err("failed");
            assert_eq!(e.kind(), "promql");
            assert!(e.to_string().contains(&format!("job {id}")), "{e}");
        }
        let out = q.demux(&jobs(), Ok(vec![sample(&[("task_id", "v1")], 1.0)]));
        assert!(matches!(
            out["a"],
            Err(SignalErrorKind::MissingLabel {
                label: "job_id",
                ..
            })
        ));
    }

    /// A shared (cluster-wide) template gives every job every row.
    #[test]
    fn shared() {
        let q = BatchQuery::new(Signal::SlotsTotal, "max(slots)", Windows::default());
        let out = q.demux(&jobs(), Ok(vec![sample(&[], 8.0)]));
        for id in ["a", "b"] {
            assert_eq!(
                out[id].as_ref().map(|r| r.values.get("")).ok().flatten(),
                Some(8.0)
            );
        }
    }
}

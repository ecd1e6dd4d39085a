//! The one keying of a signal's series, shared by the live read ([`super::read_signals`])
//! and the backtest's assembly of range queries: series are keyed by their scope's label
//! (`task_id` per vertex, `tm_id` per TaskManager, `""` for the job), one series per key;
//! a required signal must cover every vertex of the topology; a series for a `task_id`
//! that is not a vertex is reported, never guessed onto one.

use std::collections::BTreeMap;

use crate::core::{Signal, Topology};

use super::{
    response::{Sample, Series},
    signals::{Scope, SignalError, SignalErrorKind},
};

/// A labelled result of a query: an instant [`Sample`] or a range [`Series`].
pub trait Labelled {
    /// The label set.
    fn labels(&self) -> &BTreeMap<String, String>;
}

impl Labelled for Sample {
    fn labels(&self) -> &BTreeMap<String, String> {
        &self.labels
    }
}

impl Labelled for Series {
    fn labels(&self) -> &BTreeMap<String, String> {
        &self.labels
    }
}

impl<T: Labelled> Labelled for &T {
    fn labels(&self) -> &BTreeMap<String, String> {
        (*self).labels()
    }
}

/// Keys the series of one signal by its scope's label (`""` for job scope). Fails when
/// a job-scope signal has several series, when there are series but none carries the key
/// label (the query is not grouped by it), or when two series share a key (not
/// aggregated by it).
pub fn key_by_scope<T: Labelled>(
    signal: Signal,
    series: impl IntoIterator<Item = T>,
    job_id: &str,
) -> Result<BTreeMap<String, T>, SignalErrorKind> {
    let series: Vec<T> = series.into_iter().collect();
    let Some(label) = Scope::of(signal).key_label() else {
        if series.len() > 1 {
            return Err(SignalErrorKind::Duplicate {
                job_id: job_id.to_string(),
                label: "job",
                key: job_id.to_string(),
                count: series.len(),
            });
        }
        return Ok(series.into_iter().map(|s| (String::new(), s)).collect());
    };
    let any = !series.is_empty();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for s in series {
        if let Some(key) = s.labels().get(label).cloned() {
            *counts.entry(key.clone()).or_default() += 1;
            out.insert(key, s);
        }
    }
    if out.is_empty() && any {
        return Err(SignalErrorKind::MissingLabel {
            job_id: job_id.to_string(),
            label,
        });
    }
    if let Some((key, count)) = counts.into_iter().find(|(_, c)| *c > 1) {
        return Err(SignalErrorKind::Duplicate {
            job_id: job_id.to_string(),
            label,
            key,
            count,
        });
    }
    Ok(out)
}

/// A required signal's keys must name every vertex of the topology; the first vertex
/// without a series is the error (optional signals are not checked).
pub fn check_coverage(
    signal: Signal,
    has: impl Fn(&str) -> bool,
    topology: &Topology,
    job_id: &str,
) -> Result<(), SignalError> {
    if !signal.is_required() {
        return Ok(());
    }
    match topology.vertices.iter().find(|v| !has(v.id.as_str())) {
        None => Ok(()),
        Some(v) => Err(SignalError {
            signal,
            source: SignalErrorKind::MissingVertex {
                job_id: job_id.to_string(),
                vertex: v.id.clone(),
                name: v.name.clone(),
            },
        }),
    }
}

/// The issue text for a series whose `task_id` is not a vertex of the job.
pub fn unknown_vertex(signal: Signal, key: &str, job_id: &str) -> String {
    format!("signal {signal}: series for task_id {key} which is not a vertex of job {job_id}")
}

/// The one issue for `count` series of a signal whose `task_id` is not a vertex of the job
/// (`examples`: the first few).
pub fn unknown_vertices(signal: Signal, count: usize, examples: &str, job_id: &str) -> String {
    format!(
        "signal {signal}: {count} series for task_ids which are not vertices of job {job_id} \
         ({examples}); does the query keep its job filter?"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(labels: &[(&str, &str)]) -> Series {
        Series {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            points: Vec::new(),
        }
    }

    /// One series per key; ungrouped or unaggregated results are errors naming the label.
    #[test]
    fn keys_by_the_scope_label() {
        let ok = key_by_scope(
            Signal::BusyTime,
            [series(&[("task_id", "a")]), series(&[("task_id", "b")])],
            "j",
        );
        assert_eq!(
            ok.map(|m| m.into_keys().collect::<Vec<_>>()).ok(),
            Some(vec!["a".to_string(), "b".to_string()])
        );
        let ungrouped = key_by_scope(Signal::CpuLoad, [series(&[("host", "x")])], "j");
        assert!(matches!(
            ungrouped,
            Err(SignalErrorKind::MissingLabel { label: "tm_id", .. })
        ));
        let twice = key_by_scope(
            Signal::BusyTime,
            [series(&[("task_id", "a")]), series(&[("task_id", "a")])],
            "j",
        );
        assert!(matches!(
            twice,
            Err(SignalErrorKind::Duplicate { count: 2, .. })
        ));
        let job = key_by_scope(Signal::NumRestarts, [series(&[]), series(&[])], "j");
        assert!(matches!(
            job,
            Err(SignalErrorKind::Duplicate { label: "job", .. })
        ));
        let none = key_by_scope::<Series>(Signal::BusyTime, [], "j");
        assert_eq!(none.map(|m| m.len()).ok(), Some(0));
    }
}

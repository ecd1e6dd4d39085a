//! Pure assembly of range-query series into per-tick signals: for every tick the
//! per-vertex [`VertexSignals`] (keyed by `task_id`), per-TaskManager
//! [`TaskManagerSignals`] (keyed by `tm_id`) and [`JobSignals`], plus the parallelism
//! and TaskManager count that actually ran. Keying is the live read's
//! ([`crate::promql::keying`]): a required signal must have a series for every vertex of
//! the topology somewhere in the range, series must be grouped by their key label, one
//! series per key. A tick without a point keeps the signal `None` (the core then refuses
//! to decide at that tick with `missing_signal`, never reads it as 0).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::{fetch::History, range::TimeRange};
use crate::{
    core::{JobSignals, Signal, TaskManagerSignals, Topology, VertexId, VertexSignals},
    promql::{
        keying::{check_coverage, key_by_scope, unknown_vertex},
        Scope, Series, SignalError,
    },
};

/// The signals of one tick.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tick {
    /// Evaluation instant.
    pub at: Option<DateTime<Utc>>,
    /// Per-vertex signals (vertices of the topology only).
    pub vertices: BTreeMap<VertexId, VertexSignals>,
    /// Per-TaskManager signals, sorted by `tm_id`.
    pub task_managers: Vec<TaskManagerSignals>,
    /// Job and cluster signals.
    pub job: JobSignals,
    /// Subtasks per vertex seen at this tick (actual parallelism).
    pub parallelism: BTreeMap<VertexId, u32>,
    /// TaskManagers running a task of the job at this tick.
    pub task_managers_running: Option<u32>,
}

/// Per-tick signals over the whole range.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Timeline {
    /// One entry per tick of the range.
    pub ticks: Vec<Tick>,
    /// Non-fatal problems (series for unknown vertices).
    pub issues: Vec<String>,
}

impl Timeline {
    /// Builds the timeline; fails when a required signal misses a vertex over the whole
    /// range, or a signal's series are not grouped by their key label.
    pub fn build(
        history: &History,
        topology: &Topology,
        range: &TimeRange,
        job_id: &str,
    ) -> Result<Self, SignalError> {
        let mut ticks: Vec<Tick> = range
            .ticks()
            .into_iter()
            .map(|at| Tick {
                at: Some(at),
                ..Tick::default()
            })
            .collect();
        let mut tms: Vec<BTreeMap<String, TaskManagerSignals>> = vec![BTreeMap::new(); ticks.len()];
        let mut issues = BTreeSet::new();
        for (signal, series) in &history.signals {
            let signal = *signal;
            let keyed = key_by_scope(signal, series, job_id)
                .map_err(|source| SignalError { signal, source })?;
            check_coverage(signal, |k| keyed.contains_key(k), topology, job_id)?;
            for (key, s) in keyed {
                if Scope::of(signal) == Scope::Vertex
                    && topology.vertex(&VertexId::new(key.clone())).is_none()
                {
                    issues.insert(unknown_vertex(signal, &key, job_id));
                    continue;
                }
                place(signal, &key, s, range, &mut ticks, &mut tms);
            }
        }
        for (tick, tms) in ticks.iter_mut().zip(tms) {
            tick.task_managers = tms.into_values().collect();
        }
        ran(history, topology, range, &mut ticks);
        Ok(Self {
            ticks,
            issues: issues.into_iter().collect(),
        })
    }
}

/// Puts the points of one keyed series on their ticks (a point off the grid is dropped).
fn place(
    signal: Signal,
    key: &str,
    series: &Series,
    range: &TimeRange,
    ticks: &mut [Tick],
    tms: &mut [BTreeMap<String, TaskManagerSignals>],
) {
    for (at, value) in &series.points {
        let Some(i) = range.index_of(*at) else {
            continue;
        };
        match Scope::of(signal) {
            Scope::Vertex => VertexSignals::set(
                ticks[i].vertices.entry(VertexId::new(key)).or_default(),
                signal,
                *value,
            ),
            Scope::TaskManager => {
                let tm = tms[i]
                    .entry(key.to_string())
                    .or_insert_with(|| TaskManagerSignals {
                        tm_id: key.to_string(),
                        ..TaskManagerSignals::default()
                    });
                TaskManagerSignals::set(tm, signal, *value);
            }
            Scope::Job => JobSignals::set(&mut ticks[i].job, signal, *value),
        }
    }
}

/// What actually ran at each tick: subtasks per vertex and TaskManagers running a task.
fn ran(history: &History, topology: &Topology, range: &TimeRange, ticks: &mut [Tick]) {
    for s in &history.parallelism {
        let Some(task_id) = s.labels.get("task_id") else {
            continue;
        };
        let id = VertexId::new(task_id.clone());
        if topology.vertex(&id).is_none() {
            continue;
        }
        for (at, value) in &s.points {
            if let (Some(i), Some(n)) = (range.index_of(*at), count(*value)) {
                ticks[i].parallelism.insert(id.clone(), n);
            }
        }
    }
    for s in history.task_managers.iter().take(1) {
        for (at, value) in &s.points {
            if let (Some(i), Some(n)) = (range.index_of(*at), count(*value)) {
                ticks[i].task_managers_running = Some(n);
            }
        }
    }
}

fn count(v: f64) -> Option<u32> {
    (v.is_finite() && v >= 1.0 && v <= f64::from(u32::MAX)).then(|| v.round() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Vertex;
    use std::time::Duration;

    fn series(labels: &[(&str, &str)], points: &[(DateTime<Utc>, f64)]) -> Series {
        Series {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            points: points.to_vec(),
        }
    }

    fn topo() -> Topology {
        Topology {
            vertices: vec![Vertex {
                id: VertexId::new("v1"),
                name: "Source: s".into(),
                parallelism: 2,
                max_parallelism: 128,
                slot_sharing_group: None,
            }],
            edges: vec![],
        }
    }

    /// Points land on their tick; a gap stays None; counts give parallelism and TMs;
    /// a required signal without a series for a vertex is an error naming it.
    #[test]
    fn keys_points_by_tick() {
        let from = DateTime::from_timestamp(1_700_000_000, 0).expect("ts");
        let step = chrono::Duration::seconds(15);
        let range = TimeRange::new(from, from + step * 2, Duration::from_secs(15)).expect("range");
        let mut h = History::default();
        h.signals.insert(
            Signal::BusyTime,
            vec![series(
                &[("task_id", "v1")],
                &[(from, 100.0), (from + step * 2, 300.0)],
            )],
        );
        h.signals.insert(
            Signal::RecordsIn,
            vec![series(&[("task_id", "v1")], &[(from, 10.0)])],
        );
        h.signals.insert(
            Signal::CpuLoad,
            vec![series(&[("tm_id", "tm1")], &[(from + step, 0.5)])],
        );
        h.parallelism = vec![series(&[("task_id", "v1")], &[(from, 2.0)])];
        h.task_managers = vec![series(&[], &[(from, 2.0)])];
        let t = Timeline::build(&h, &topo(), &range, "j").expect("builds");
        assert_eq!(t.ticks.len(), 3);
        let v = VertexId::new("v1");
        assert_eq!(t.ticks[0].vertices[&v].busy_ms_per_s, Some(100.0));
        assert_eq!(t.ticks[1].vertices.get(&v), None);
        assert_eq!(t.ticks[2].vertices[&v].records_in_per_s, None);
        assert_eq!(t.ticks[1].task_managers[0].cpu_load, Some(0.5));
        assert_eq!(t.ticks[0].parallelism[&v], 2);
        assert_eq!(t.ticks[0].task_managers_running, Some(2));
        assert_eq!(t.ticks[1].task_managers_running, None);

        h.signals.insert(
            Signal::RecordsIn,
            vec![series(&[("task_id", "other")], &[(from, 10.0)])],
        );
        let e = Timeline::build(&h, &topo(), &range, "j").expect_err("missing vertex");
        assert!(
            e.to_string()
                .starts_with("signal recordsIn: no series for vertex v1"),
            "{e}"
        );
    }
}

//! Test fixtures for the decision core: an [`Observation`] builder, a test policy, and a
//! linear job model that produces consistent signals (busy time, rates, lag growth) for
//! a given input rate and parallelism, so tests derive expectations from the model
//! instead of hard-coding them.

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, TimeZone, Utc};

use super::{
    observation::{JobSignals, JobStatus, Observation, TaskManagerSignals, VertexSignals},
    policy::Policy,
    topology::{Edge, ShipStrategy, Topology, Vertex, VertexId},
};

/// The instant every test decides at: Thursday 2026-01-15 12:00:00 UTC.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

/// `t0()` plus `secs` (negative = before).
pub fn at(secs: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::seconds(secs)
}

/// Vertex id for a test name.
pub fn vid(name: &str) -> VertexId {
    VertexId::new(name)
}

impl Policy {
    /// The default policy with room to grow (max 100 TaskManagers) and nothing else changed.
    pub fn test() -> Self {
        Policy {
            max_task_managers: 100,
            ..Policy::default()
        }
    }
}

impl Observation {
    /// An empty RUNNING job, running for an hour at `t0()`, 1 slot per TaskManager.
    pub fn test() -> Self {
        Observation {
            at: t0(),
            job_id: "a1".into(),
            job_name: "test".into(),
            status: JobStatus::Running,
            running_since: Some(at(-3600)),
            topology: Topology::default(),
            slots_per_task_manager: Some(1),
            task_managers_registered: None,
            vertices: BTreeMap::new(),
            task_managers: Vec::new(),
            job: JobSignals::default(),
            predicted_floor: None,
            signal_window: None,
            arrival_window: None,
        }
    }

    /// Adds a vertex (in the default slot sharing group).
    pub fn vertex(mut self, name: &str, parallelism: u32, max_parallelism: u32) -> Self {
        self.topology.vertices.push(Vertex {
            id: vid(name),
            name: name.into(),
            parallelism,
            max_parallelism,
            slot_sharing_group: None,
        });
        self
    }

    /// Puts a vertex in a slot sharing group.
    pub fn group(mut self, name: &str, group: &str) -> Self {
        if let Some(v) = self
            .topology
            .vertices
            .iter_mut()
            .find(|v| v.id == vid(name))
        {
            v.slot_sharing_group = Some(group.into());
        }
        self
    }

    /// Adds an edge.
    pub fn edge(mut self, from: &str, to: &str, ship: ShipStrategy) -> Self {
        self.topology.edges.push(Edge {
            from: vid(from),
            to: vid(to),
            ship_strategy: ship,
        });
        self
    }

    fn signals(&mut self, name: &str) -> &mut VertexSignals {
        self.vertices.entry(vid(name)).or_default()
    }

    /// Sets busy ms/s and records in (= out) per second of a vertex.
    pub fn load(mut self, name: &str, busy_ms: f64, rate: f64) -> Self {
        let s = self.signals(name);
        s.busy_ms_per_s = Some(busy_ms);
        s.records_in_per_s = Some(rate);
        s.records_out_per_s = Some(rate);
        self
    }

    /// Sets a source's backlog and its growth.
    pub fn lag(mut self, name: &str, pending: f64, growth: f64) -> Self {
        let s = self.signals(name);
        s.pending_records = Some(pending);
        s.lag_growth_per_s = Some(growth);
        self
    }

    /// Sets a source's partition count.
    pub fn partitions(mut self, name: &str, n: u32) -> Self {
        self.signals(name).partitions = Some(n);
        self
    }

    /// Edits a vertex's raw signals.
    pub fn with(mut self, name: &str, f: impl FnOnce(&mut VertexSignals)) -> Self {
        f(self.signals(name));
        self
    }

    /// Adds `n` TaskManagers reporting this CPU load.
    pub fn cpu(mut self, n: usize, load: f64) -> Self {
        for i in 0..n {
            self.task_managers.push(TaskManagerSignals {
                tm_id: format!("tm-{i}"),
                cpu_load: Some(load),
                ..Default::default()
            });
        }
        self
    }

    /// Sets slots per TaskManager.
    pub fn slots(mut self, n: u32) -> Self {
        self.slots_per_task_manager = Some(n);
        self
    }

    /// Sets registered TaskManagers.
    pub fn registered(mut self, n: u32) -> Self {
        self.task_managers_registered = Some(n);
        self
    }
}

/// A linear job model: vertices in a line `names[0] → names[1] → …` (HASH into keyed
/// vertices), each processing every record once, each subtask of vertex `i` able to
/// handle `capacity[i]` records/s. At input rate `rate`, throughput is the bottleneck's
/// capacity; busy = throughput / (capacity × p); lag grows by `rate − throughput`.
#[derive(Debug, Clone)]
pub struct Line {
    /// (name, max parallelism, capacity per subtask, keyed input).
    pub vertices: Vec<(&'static str, u32, f64, bool)>,
}

impl Line {
    /// Observation of the model at `rate` records/s, `parallelism` per vertex, `pending`
    /// backlog at the source.
    pub fn observe(&self, rate: f64, parallelism: &[u32], pending: f64) -> Observation {
        let p = |i: usize| f64::from(parallelism.get(i).copied().unwrap_or(1).max(1));
        let throughput = self
            .vertices
            .iter()
            .enumerate()
            .map(|(i, v)| v.2 * p(i))
            .fold(rate, f64::min);
        let mut obs = Observation::test();
        for (i, (name, max_p, cap, keyed)) in self.vertices.iter().enumerate() {
            obs = obs.vertex(name, parallelism.get(i).copied().unwrap_or(1), *max_p);
            if i > 0 {
                let ship = if *keyed {
                    ShipStrategy::Hash
                } else {
                    ShipStrategy::Rebalance
                };
                obs = obs.edge(self.vertices[i - 1].0, name, ship);
            }
            obs = obs.load(name, 1000.0 * throughput / (cap * p(i)), throughput);
        }
        if let Some((src, ..)) = self.vertices.first() {
            obs = obs.lag(src, pending, rate - throughput);
        }
        obs
    }

    /// The DS2-optimal parallelism of vertex `i` at `rate` (no alignment):
    /// `ceil(rate / (capacity × target_utilization))`.
    pub fn optimal(&self, i: usize, rate: f64, target_utilization: f64) -> u32 {
        let cap = self.vertices.get(i).map_or(1.0, |v| v.2);
        (rate / (cap * target_utilization) - 1e-9).ceil().max(1.0) as u32
    }
}

/// Policy with a given scale-down delay.
pub fn policy_with_delay(delay_s: u64) -> Policy {
    Policy {
        scale_down_delay: Duration::from_secs(delay_s),
        ..Policy::test()
    }
}

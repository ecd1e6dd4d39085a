//! The job graph as the decision core sees it: vertices (Flink job vertices, whose hex id
//! is both the `task_id` label of Flink's Prometheus metrics and the key of the
//! resource-requirements PUT), the edges between them with their ship strategy, and slot
//! sharing groups. Read from Flink REST by the `flink` adapter; pure data here.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// A Flink job-vertex id (32 lowercase hex characters).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VertexId(pub String);

impl VertexId {
    /// Wraps an id string (not validated: ids come from Flink itself).
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }
    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for VertexId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How records travel along an edge (Flink's `ShipStrategyType` as shown in `/jobs/:id/plan`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ShipStrategy {
    /// keyBy: the downstream vertex is keyed (key groups ⇒ alignment applies).
    Hash,
    /// round robin to all downstream subtasks.
    Rebalance,
    /// round robin to a local subset.
    Rescale,
    /// one-to-one (chaining broken only by parallelism or slot sharing).
    Forward,
    /// every record to every subtask.
    Broadcast,
    /// everything to subtask 0.
    Global,
    /// random.
    Shuffle,
    /// a user partitioner.
    Custom,
    /// anything Flink reports that we do not know.
    Unknown,
}

impl ShipStrategy {
    /// Parses Flink's `ship_strategy` string (`HASH`, `REBALANCE`, `FORWARD`, ...).
    pub fn parse(s: &str) -> Self {
        match s.trim().to_ascii_uppercase().as_str() {
            "HASH" => Self::Hash,
            "REBALANCE" => Self::Rebalance,
            "RESCALE" => Self::Rescale,
            "FORWARD" => Self::Forward,
            "BROADCAST" => Self::Broadcast,
            "GLOBAL" => Self::Global,
            "SHUFFLE" => Self::Shuffle,
            "CUSTOM" => Self::Custom,
            _ => Self::Unknown,
        }
    }
}

/// One job vertex (a chain of operators that runs as one task).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vertex {
    /// Vertex id (hex), the join key to metrics and to the PUT body.
    pub id: VertexId,
    /// Display name (e.g. `Source: events -> Map`).
    pub name: String,
    /// Current parallelism as reported by `/jobs/:id`.
    pub parallelism: u32,
    /// Max parallelism (number of key groups); the PUT rejects an upper bound above it.
    pub max_parallelism: u32,
    /// Slot sharing group id (Flink 1.20+ reports it; older versions: all in "default").
    pub slot_sharing_group: Option<String>,
}

/// A directed edge `from → to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edge {
    /// Upstream vertex.
    pub from: VertexId,
    /// Downstream vertex.
    pub to: VertexId,
    /// Partitioning between them.
    pub ship_strategy: ShipStrategy,
}

/// The job graph. Vertex order is Flink's order; use [`Topology::topological_order`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Topology {
    /// Vertices.
    pub vertices: Vec<Vertex>,
    /// Edges.
    pub edges: Vec<Edge>,
}

/// The slot sharing group name used when Flink does not report one.
pub const DEFAULT_SLOT_SHARING_GROUP: &str = "default";

impl Topology {
    /// Looks a vertex up by id.
    pub fn vertex(&self, id: &VertexId) -> Option<&Vertex> {
        self.vertices.iter().find(|v| &v.id == id)
    }

    /// Edges that end at `id`.
    pub fn inputs<'a>(&'a self, id: &'a VertexId) -> impl Iterator<Item = &'a Edge> + 'a {
        self.edges.iter().filter(move |e| &e.to == id)
    }

    /// Edges that start at `id`.
    pub fn outputs<'a>(&'a self, id: &'a VertexId) -> impl Iterator<Item = &'a Edge> + 'a {
        self.edges.iter().filter(move |e| &e.from == id)
    }

    /// A source is a vertex without inputs.
    pub fn is_source(&self, id: &VertexId) -> bool {
        self.inputs(id).next().is_none()
    }

    /// A keyed vertex has at least one HASH input (its state is split in key groups).
    pub fn is_keyed(&self, id: &VertexId) -> bool {
        self.inputs(id)
            .any(|e| e.ship_strategy == ShipStrategy::Hash)
    }

    /// Vertex ids in topological order (Kahn's algorithm; ties broken by Flink's order).
    /// Returns `None` if the graph has a cycle or an edge names an unknown vertex.
    pub fn topological_order(&self) -> Option<Vec<VertexId>> {
        let ids: BTreeSet<&VertexId> = self.vertices.iter().map(|v| &v.id).collect();
        let mut indegree: BTreeMap<&VertexId, usize> = ids.iter().map(|id| (*id, 0)).collect();
        for e in &self.edges {
            if !ids.contains(&e.from) || !ids.contains(&e.to) {
                return None;
            }
            *indegree.entry(&e.to).or_default() += 1;
        }
        let mut order = Vec::with_capacity(self.vertices.len());
        let mut ready: Vec<&VertexId> = self
            .vertices
            .iter()
            .map(|v| &v.id)
            .filter(|id| indegree.get(id) == Some(&0))
            .collect();
        ready.reverse();
        while let Some(id) = ready.pop() {
            order.push(id.clone());
            let mut next: Vec<&VertexId> = Vec::new();
            for e in self.outputs(id) {
                if let Some(d) = indegree.get_mut(&e.to) {
                    *d -= 1;
                    if *d == 0 {
                        next.push(&e.to);
                    }
                }
            }
            // keep Flink's vertex order among newly ready vertices
            next.sort_by_key(|n| self.vertices.iter().position(|v| &v.id == *n));
            for n in next.into_iter().rev() {
                ready.push(n);
            }
        }
        (order.len() == self.vertices.len()).then_some(order)
    }

    /// Slot sharing group of a vertex (default group if Flink did not say).
    pub fn slot_sharing_group<'a>(&'a self, v: &'a Vertex) -> &'a str {
        v.slot_sharing_group
            .as_deref()
            .unwrap_or(DEFAULT_SLOT_SHARING_GROUP)
    }

    /// Current parallelism of every vertex.
    pub fn parallelism(&self) -> BTreeMap<VertexId, u32> {
        self.vertices
            .iter()
            .map(|v| (v.id.clone(), v.parallelism))
            .collect()
    }
}

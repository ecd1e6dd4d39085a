//! The topology indexed for the decision core's walks: vertex positions, upstream and
//! downstream neighbours, HASH and FORWARD inputs, and a topological order in O(V + E).
//! Built once per decision by [`guards`](super::guards) (the DAG check) and
//! [`ds2`](super::ds2) (sizing).

use std::collections::BTreeMap;

use super::topology::{ShipStrategy, Topology, VertexId};

/// Index of a topology for O(1) neighbour lookups (vertex ids are 32-character strings;
/// scanning edges per vertex dominated the decision time).
#[derive(Debug, Clone)]
pub struct Graph<'a> {
    index: BTreeMap<&'a VertexId, usize>,
    /// Upstream vertex indices per vertex (valid edges only).
    pub inputs: Vec<Vec<usize>>,
    /// Number of output edges per vertex.
    pub outputs: Vec<usize>,
    /// Whether a vertex has a HASH input.
    pub keyed: Vec<bool>,
    /// Upstream vertex indices reached through FORWARD edges.
    pub forward_inputs: Vec<Vec<usize>>,
    /// Downstream vertex indices per vertex, in edge order (one entry per edge).
    pub output_edges: Vec<Vec<usize>>,
    /// Whether a vertex has a BROADCAST output (each record reaches every subtask).
    pub broadcast_out: Vec<bool>,
    /// Some edge names a vertex that is not in the topology.
    pub dangling: bool,
}

impl<'a> Graph<'a> {
    /// Indexes `topology` (edges naming unknown vertices are ignored).
    pub fn new(topology: &'a Topology) -> Self {
        let n = topology.vertices.len();
        let index: BTreeMap<&VertexId, usize> = topology
            .vertices
            .iter()
            .enumerate()
            .map(|(i, v)| (&v.id, i))
            .collect();
        let mut inputs = vec![Vec::new(); n];
        let mut outputs = vec![0; n];
        let mut keyed = vec![false; n];
        let mut forward_inputs = vec![Vec::new(); n];
        let mut output_edges = vec![Vec::new(); n];
        let mut broadcast_out = vec![false; n];
        let mut dangling = false;
        for e in &topology.edges {
            let (Some(&f), Some(&t)) = (index.get(&e.from), index.get(&e.to)) else {
                dangling = true;
                continue;
            };
            output_edges[f].push(t);
            inputs[t].push(f);
            outputs[f] += 1;
            keyed[t] |= e.ship_strategy == ShipStrategy::Hash;
            broadcast_out[f] |= e.ship_strategy == ShipStrategy::Broadcast;
            if e.ship_strategy == ShipStrategy::Forward {
                forward_inputs[t].push(f);
            }
        }
        Self {
            index,
            inputs,
            outputs,
            keyed,
            forward_inputs,
            output_edges,
            broadcast_out,
            dangling,
        }
    }

    /// Vertex indices in topological order, with exactly the tie-breaking of
    /// [`Topology::topological_order`] (Kahn; Flink's vertex order among ready vertices)
    /// in O(V + E) instead of a string comparison per edge and vertex. `None` on a cycle,
    /// a dangling edge, or duplicate vertex ids.
    pub fn topological_order(&self) -> Option<Vec<usize>> {
        let n = self.inputs.len();
        if self.dangling || self.index.len() != n {
            return None;
        }
        let mut indegree: Vec<usize> = self.inputs.iter().map(Vec::len).collect();
        let mut ready: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).rev().collect();
        let mut order = Vec::with_capacity(n);
        while let Some(i) = ready.pop() {
            order.push(i);
            let mut next = Vec::new();
            for &t in &self.output_edges[i] {
                indegree[t] -= 1;
                if indegree[t] == 0 {
                    next.push(t);
                }
            }
            next.sort_unstable();
            ready.extend(next.into_iter().rev());
        }
        (order.len() == n).then_some(order)
    }

    /// Position of a vertex in `topology.vertices`.
    pub fn index(&self, id: &VertexId) -> Option<usize> {
        self.index.get(id).copied()
    }
}

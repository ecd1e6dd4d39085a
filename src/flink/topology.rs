//! Builds the core [`Topology`] from `/jobs/:id` (vertices, parallelism, max parallelism,
//! slot sharing groups) and the job plan (edges with ship strategies). Pure.

use crate::core::{Edge, ShipStrategy, Topology, Vertex, VertexId};

use super::{
    error::TopologyError,
    model::{JobDetails, JobPlan},
    response::quote_id,
};

/// Max parallelism assumed when Flink does not report one (Flink's hard upper limit,
/// `KeyGroupRangeAssignment.UPPER_BOUND_MAX_PARALLELISM`); the PUT validates the real one.
pub const UNKNOWN_MAX_PARALLELISM: u32 = 32_768;

/// Joins details and plan. Errors when the plan names a vertex the details do not have.
pub fn build_topology(details: &JobDetails, plan: &JobPlan) -> Result<Topology, TopologyError> {
    let vertices: Vec<Vertex> = details
        .vertices
        .iter()
        .map(|v| Vertex {
            id: VertexId::new(v.id.clone()),
            name: v.name.clone(),
            parallelism: v.parallelism,
            max_parallelism: v
                .max_parallelism
                .filter(|m| *m > 0)
                .unwrap_or(UNKNOWN_MAX_PARALLELISM),
            slot_sharing_group: v.slot_sharing_group_id.clone(),
        })
        .collect();
    let known = |id: &str| vertices.iter().any(|v| v.id.as_str() == id);
    let mut edges = Vec::new();
    for node in &plan.nodes {
        if !known(&node.id) {
            return Err(TopologyError::UnknownNode {
                node: quote_id(&node.id),
                job_id: details.jid.to_string(),
            });
        }
        for input in &node.inputs {
            if !known(&input.id) {
                return Err(TopologyError::UnknownInput {
                    input: quote_id(&input.id),
                    node: quote_id(&node.id),
                    job_id: details.jid.to_string(),
                });
            }
            edges.push(Edge {
                from: VertexId::new(input.id.clone()),
                to: VertexId::new(node.id.clone()),
                ship_strategy: ShipStrategy::parse(&input.ship_strategy),
            });
        }
    }
    Ok(Topology { vertices, edges })
}

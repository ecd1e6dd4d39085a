//! Target plans for a manual rescale: a uniform parallelism capped at each vertex's max,
//! and the TaskManager count the cluster's slots per TaskManager imply.

use std::collections::BTreeMap;

use crate::core::{required_task_managers, Plan, Topology, VertexId};

use super::{client::FlinkClient, error::FlinkError};

/// Per-vertex parallelism `p` for every vertex of `topology`, capped at each vertex's max.
pub fn uniform_parallelism(topology: &Topology, p: u32) -> BTreeMap<VertexId, u32> {
    topology
        .vertices
        .iter()
        .map(|v| (v.id.clone(), p.min(v.max_parallelism).max(1)))
        .collect()
}

/// A plan for `parallelism` with the TaskManager count the cluster's slots per
/// TaskManager imply (`slots_per_task_manager`, or the first registered TaskManager's).
pub async fn plan_for(
    client: &FlinkClient,
    topology: &Topology,
    parallelism: BTreeMap<VertexId, u32>,
    slots_per_task_manager: Option<u32>,
) -> Result<Plan, FlinkError> {
    let slots = match slots_per_task_manager {
        Some(s) => s,
        None => client
            .task_managers()
            .await?
            .first()
            .map(|t| t.slots_number)
            .ok_or_else(|| FlinkError::InvalidTarget {
                job_id: String::new(),
                message: "no TaskManager registered: cannot tell the slots per TaskManager".into(),
            })?,
    };
    Ok(Plan {
        task_managers: required_task_managers(topology, &parallelism, slots),
        parallelism,
    })
}

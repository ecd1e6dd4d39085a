//! Parallelism ↔ TaskManagers. With slot sharing, a group needs as many slots as its
//! largest vertex parallelism, so (reference §2.6, the operator's quota formula):
//!
//! ```text
//! slots        = Σ over slot sharing groups  max(parallelism of the group's vertices)
//! TaskManagers = ceil(slots / slotsPerTaskManager)
//! ```
//!
//! and the inverse moves: shrink parallelism proportionally to fit a TaskManager cap
//! ([`fit_to_task_managers`]), or grow it proportionally to use a TaskManager floor
//! ([`spread_to_task_managers`]).

use std::collections::BTreeMap;

use super::topology::{Topology, VertexId};

/// Parallelism of `v` in `parallelism`, falling back to the topology's current value.
fn get(topology: &Topology, parallelism: &BTreeMap<VertexId, u32>, v: &VertexId) -> u32 {
    parallelism
        .get(v)
        .copied()
        .or_else(|| topology.vertex(v).map(|x| x.parallelism))
        .unwrap_or(1)
}

/// Slots the job needs: Σ over slot sharing groups of the group's max parallelism.
/// Vertices missing from `parallelism` count at their current parallelism.
pub fn slots_needed(topology: &Topology, parallelism: &BTreeMap<VertexId, u32>) -> u64 {
    let mut groups: BTreeMap<&str, u32> = BTreeMap::new();
    for v in &topology.vertices {
        let p = get(topology, parallelism, &v.id);
        let g = groups.entry(topology.slot_sharing_group(v)).or_default();
        *g = (*g).max(p);
    }
    groups.values().map(|p| u64::from(*p)).sum()
}

/// TaskManagers needed for `parallelism`: `ceil(slots_needed / slots_per_tm)` (a zero
/// `slots_per_tm` counts as 1). Saturates at `u32::MAX`.
pub fn task_managers_for(
    topology: &Topology,
    parallelism: &BTreeMap<VertexId, u32>,
    slots_per_tm: u32,
) -> u32 {
    let tms = slots_needed(topology, parallelism).div_ceil(u64::from(slots_per_tm.max(1)));
    u32::try_from(tms).unwrap_or(u32::MAX)
}

/// Shrinks `parallelism` proportionally (never below 1) until the job fits in
/// `task_managers × slots_per_tm` slots. Unchanged when it already fits. If even
/// parallelism 1 everywhere does not fit (more groups than slots), returns all ones.
pub fn fit_to_task_managers(
    topology: &Topology,
    parallelism: &BTreeMap<VertexId, u32>,
    slots_per_tm: u32,
    task_managers: u32,
) -> BTreeMap<VertexId, u32> {
    let capacity = u64::from(task_managers) * u64::from(slots_per_tm.max(1));
    let needed = slots_needed(topology, parallelism);
    let mut out: BTreeMap<VertexId, u32> = topology
        .vertices
        .iter()
        .map(|v| (v.id.clone(), get(topology, parallelism, &v.id)))
        .collect();
    if needed <= capacity || needed == 0 {
        return out;
    }
    for p in out.values_mut() {
        // exact floor(p × capacity / needed); capacity < needed keeps it below p
        let scaled = u64::from(*p) * capacity / needed;
        *p = u32::try_from(scaled).unwrap_or(*p).max(1);
    }
    // max(1) floors may still overshoot: trim the largest group maxima one step at a time
    while slots_needed(topology, &out) > capacity {
        let Some(top) = out.values().copied().max().filter(|m| *m > 1) else {
            break;
        };
        for p in out.values_mut() {
            if *p == top {
                *p -= 1;
            }
        }
    }
    out
}

/// Like [`fit_to_task_managers`], but no vertex goes below its `floor` (the parallelism
/// it runs at, where the proposal keeps or grows it): a cap takes growth away, it does not
/// shrink a vertex the scale-down rules held. When the floor itself does not fit (the cap
/// is below what runs), the plain proportional fit applies.
pub fn fit_above_floor(
    topology: &Topology,
    parallelism: &BTreeMap<VertexId, u32>,
    floor: &BTreeMap<VertexId, u32>,
    slots_per_tm: u32,
    task_managers: u32,
) -> BTreeMap<VertexId, u32> {
    let capacity = u64::from(task_managers) * u64::from(slots_per_tm.max(1));
    let mut out = fit_to_task_managers(topology, parallelism, slots_per_tm, task_managers);
    let floor_of = |v: &VertexId, p: u32| floor.get(v).copied().unwrap_or(1).min(p).max(1);
    let floored: BTreeMap<VertexId, u32> = out
        .keys()
        .map(|v| (v.clone(), floor_of(v, get(topology, parallelism, v))))
        .collect();
    if slots_needed(topology, &floored) > capacity {
        return out;
    }
    for (v, p) in out.iter_mut() {
        *p = (*p).max(floored.get(v).copied().unwrap_or(1));
    }
    // raising to the floors may overshoot: trim the largest values above their floor
    while slots_needed(topology, &out) > capacity {
        let above = |v: &VertexId, p: u32| p > floored.get(v).copied().unwrap_or(1);
        let Some(top) = out
            .iter()
            .filter(|(v, p)| above(v, **p))
            .map(|(_, p)| *p)
            .max()
        else {
            break;
        };
        for (v, p) in out.iter_mut() {
            if *p == top && above(v, *p) {
                *p -= 1;
            }
        }
    }
    out
}

/// Grows `parallelism` proportionally to use `task_managers × slots_per_tm` slots (never
/// lowering a vertex, never above its maxParallelism). Used by schedule floors to
/// pre-scale before a known peak.
pub fn spread_to_task_managers(
    topology: &Topology,
    parallelism: &BTreeMap<VertexId, u32>,
    slots_per_tm: u32,
    task_managers: u32,
) -> BTreeMap<VertexId, u32> {
    let capacity = u64::from(task_managers) * u64::from(slots_per_tm.max(1));
    let needed = slots_needed(topology, parallelism).max(1);
    topology
        .vertices
        .iter()
        .map(|v| {
            let p = get(topology, parallelism, &v.id);
            // exact floor(p × capacity / needed), at most maxParallelism, never below p
            let grown = u128::from(p) * u128::from(capacity) / u128::from(needed);
            let max_p = v.max_parallelism.max(1);
            let grown = u32::try_from(grown).unwrap_or(u32::MAX).min(max_p);
            (v.id.clone(), grown.max(p))
        })
        .collect()
}

//! PUT discipline for `/jobs/:id/resource-requirements`: always GET, edit, PUT **every**
//! vertex (a missing vertex is a 400). For each vertex `upperBound = target` and
//! `lowerBound = min(target, current lower)`: the lower bound is never raised
//! (FLINK-34311: Flink could fail the job if it cannot get the raised minimum). `-1` is
//! never sent (Flink stores it and answers 500). No PUT when already at the target.

use std::collections::BTreeMap;

use crate::core::{JobId, VertexId};

use super::{
    client::FlinkClient,
    error::FlinkError,
    model::{ParallelismBounds, ResourceRequirements, VertexRequirements},
};

/// What [`apply_target`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequirementsChange {
    /// The upper bounds already equal the target: nothing sent.
    Unchanged,
    /// The requirements were PUT (the new body).
    Updated(ResourceRequirements),
    /// Dry run: the body that would have been PUT.
    WouldUpdate(ResourceRequirements),
}

/// What the job graph says of a vertex, for the checks and errors of an edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VertexLimit {
    /// The vertex's name.
    pub name: String,
    /// Its maxParallelism.
    pub max_parallelism: u32,
}

/// Edits `current` towards `target` (vertex → parallelism). Pure. Returns `None` when the
/// upper bounds already equal the target. Errors when the target names an unknown vertex,
/// misses a vertex, asks for 0, or exceeds a vertex's max parallelism (`limits`, when
/// known; their names name the vertex in errors).
pub fn edit_requirements(
    job_id: &str,
    current: &ResourceRequirements,
    target: &BTreeMap<VertexId, u32>,
    limits: &BTreeMap<VertexId, VertexLimit>,
) -> Result<Option<ResourceRequirements>, FlinkError> {
    let invalid = |message: String| FlinkError::InvalidTarget {
        job_id: job_id.to_string(),
        message,
    };
    for v in target.keys() {
        if !current.contains_key(v.as_str()) {
            // The target comes from the job graph: Flink's answer lacks one of its vertices.
            let name = limits
                .get(v)
                .map_or(String::new(), |l| format!(" ({})", l.name));
            return Err(invalid(format!(
                "Flink's resource requirements omit vertex {v}{name}, which the job graph has \
                 (answer of {} vertices; was the job resubmitted with another graph?)",
                current.len()
            )));
        }
    }
    let mut next = ResourceRequirements::new();
    let mut changed = false;
    for (id, req) in current {
        let t = *target.get(&VertexId::new(id.clone())).ok_or_else(|| {
            invalid(format!(
                "no target parallelism for vertex {id} (every vertex needs one)"
            ))
        })?;
        if t == 0 {
            return Err(invalid(format!("target parallelism of vertex {id} is 0")));
        }
        if let Some(l) = limits.get(&VertexId::new(id.clone())) {
            if t > l.max_parallelism {
                return Err(invalid(format!(
                    "target parallelism {t} of vertex {id} ({}) exceeds its max parallelism {}",
                    l.name, l.max_parallelism
                )));
            }
        }
        let upper = i64::from(t);
        // a stored -1 lower bound means 1
        let current_lower = if req.parallelism.lower_bound < 1 {
            1
        } else {
            req.parallelism.lower_bound
        };
        let lower = current_lower.min(upper);
        if req.parallelism.upper_bound != upper || req.parallelism.lower_bound != lower {
            changed = true;
        }
        next.insert(
            id.clone(),
            VertexRequirements {
                parallelism: ParallelismBounds {
                    lower_bound: lower,
                    upper_bound: upper,
                },
            },
        );
    }
    Ok(changed.then_some(next))
}

/// The explicit upper bound of every vertex of `requirements`, as parallelism. A `-1`
/// (or any value below 1: "as many as the slots allow", e.g. reactive mode or a job whose
/// parallelism was never set) is no requirement the job can be held to: the vertex is
/// left out, so the report counts it at its running parallelism.
pub fn upper_bounds(requirements: &ResourceRequirements) -> BTreeMap<VertexId, u32> {
    requirements
        .iter()
        .filter_map(|(id, r)| {
            let upper = u32::try_from(r.parallelism.upper_bound)
                .ok()
                .filter(|u| *u >= 1)?;
            Some((VertexId::new(id.clone()), upper))
        })
        .collect()
}

/// GET the requirements, edit them towards `target`, PUT them (unless unchanged or
/// `dry_run`). 400 surfaces Flink's message, 409 is [`FlinkError::Conflict`], a vanished
/// job is [`FlinkError::JobGone`], a non-adaptive scheduler is
/// [`FlinkError::AdaptiveSchedulerRequired`].
pub async fn apply_target(
    client: &FlinkClient,
    job_id: &JobId,
    target: &BTreeMap<VertexId, u32>,
    limits: &BTreeMap<VertexId, VertexLimit>,
    dry_run: bool,
) -> Result<RequirementsChange, FlinkError> {
    let current = client.resource_requirements(job_id).await?;
    match edit_requirements(job_id.as_str(), &current, target, limits)? {
        None => Ok(RequirementsChange::Unchanged),
        Some(body) if dry_run => Ok(RequirementsChange::WouldUpdate(body)),
        Some(body) => {
            client.put_resource_requirements(job_id, &body).await?;
            Ok(RequirementsChange::Updated(body))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(pairs: &[(&str, i64, i64)]) -> ResourceRequirements {
        pairs
            .iter()
            .map(|(id, l, u)| {
                (
                    id.to_string(),
                    VertexRequirements {
                        parallelism: ParallelismBounds {
                            lower_bound: *l,
                            upper_bound: *u,
                        },
                    },
                )
            })
            .collect()
    }
    fn target(pairs: &[(&str, u32)]) -> BTreeMap<VertexId, u32> {
        pairs
            .iter()
            .map(|(id, p)| (VertexId::new(*id), *p))
            .collect()
    }

    #[test]
    fn upper_bounds_leave_out_an_unset_bound() {
        let cur = req(&[("a", 1, 2), ("b", -1, -1), ("c", 1, 0)]);
        assert_eq!(upper_bounds(&cur), target(&[("a", 2)]));
    }

    #[test]
    fn lower_bound_is_never_raised_and_every_vertex_is_sent() {
        let cur = req(&[("a", 1, 2), ("b", 3, 3)]);
        let out = edit_requirements("j", &cur, &target(&[("a", 4), ("b", 2)]), &BTreeMap::new())
            .expect("valid")
            .expect("changed");
        assert_eq!(out, req(&[("a", 1, 4), ("b", 2, 2)]));
    }

    #[test]
    fn unchanged_target_needs_no_put() {
        let cur = req(&[("a", 1, 2), ("b", 1, 2)]);
        let out = edit_requirements("j", &cur, &target(&[("a", 2), ("b", 2)]), &BTreeMap::new())
            .expect("valid");
        assert_eq!(out, None);
    }

    #[test]
    fn stored_minus_one_is_replaced() {
        let cur = req(&[("a", -1, -1)]);
        let out = edit_requirements("j", &cur, &target(&[("a", 3)]), &BTreeMap::new())
            .expect("valid")
            .expect("changed");
        assert_eq!(out, req(&[("a", 1, 3)]));
    }

    #[test]
    fn bad_targets_are_named() {
        let cur = req(&[("a", 1, 2), ("b", 1, 2)]);
        let limit = |name: &str| VertexLimit {
            name: name.into(),
            max_parallelism: 8,
        };
        let limits = BTreeMap::from([
            (VertexId::new("a"), limit("Source: events")),
            (VertexId::new("c"), limit("Sink: out")),
        ]);
        let cases = [
            (target(&[("a", 2)]), "no target parallelism for vertex b"),
            (
                target(&[("a", 2), ("b", 2), ("c", 1)]),
                "Flink's resource requirements omit vertex c (Sink: out), which the job graph has",
            ),
            (target(&[("a", 0), ("b", 2)]), "vertex a is 0"),
            (
                target(&[("a", 9), ("b", 2)]),
                "vertex a (Source: events) exceeds its max parallelism 8",
            ),
        ];
        for (t, want) in cases {
            let e = edit_requirements("j", &cur, &t, &limits).expect_err("invalid");
            assert_eq!(e.kind(), "invalid_target");
            assert!(e.to_string().contains(want), "{e} should contain {want}");
        }
    }
}

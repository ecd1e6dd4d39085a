//! Drain-safe scale-down: annotate TaskManager pods with
//! `controller.kubernetes.io/pod-deletion-cost` so the ReplicaSet removes idle
//! TaskManagers (all slots free) before busy ones.
//!
//! Costs: an idle TaskManager gets [`IDLE_COST`] (below the default 0 of unannotated
//! pods), a busy one `used slots × `[`BUSY_COST_PER_SLOT`]. A pod without a matching
//! TaskManager, or a pod being deleted, loses a stale annotation. TaskManagers are
//! matched to pods by resource id (= pod name in Flink's Kubernetes modes) or by the pod
//! IP appearing in the TaskManager address/path (standalone).

use k8s_openapi::api::core::v1::Pod;
use kube::{
    api::{Api, ListParams, Patch, PatchParams},
    Client, ResourceExt,
};
use serde_json::json;

use super::{error::KubeError, timeout::call};

/// The annotation read by the ReplicaSet controller (Kubernetes ≥ 1.22 by default; beta
/// feature gate `PodDeletionCost` on 1.21).
pub const DELETION_COST_ANNOTATION: &str = "controller.kubernetes.io/pod-deletion-cost";
/// Cost of an idle TaskManager's pod (deleted first).
pub const IDLE_COST: i32 = -1000;
/// Cost per used slot of a busy TaskManager's pod.
pub const BUSY_COST_PER_SLOT: i32 = 100;

/// Slot usage of one TaskManager, as reported by Flink's `/taskmanagers` (plain data: the
/// runtime converts from the Flink client's types).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskManagerSlots {
    /// TaskManager resource id (`id` in `/taskmanagers`; the pod name in K8s modes).
    pub id: String,
    /// `path`/address of the TaskManager (contains the pod IP in standalone mode).
    pub address: String,
    /// Total slots.
    pub slots: u32,
    /// Free slots.
    pub free_slots: u32,
}

impl TaskManagerSlots {
    /// True when no slot is in use.
    pub fn idle(&self) -> bool {
        self.free_slots >= self.slots
    }

    /// The deletion cost for this TaskManager's pod.
    pub fn cost(&self) -> i32 {
        if self.idle() {
            IDLE_COST
        } else {
            let used = self.slots.saturating_sub(self.free_slots);
            i32::try_from(used)
                .unwrap_or(i32::MAX / BUSY_COST_PER_SLOT)
                .saturating_mul(BUSY_COST_PER_SLOT)
        }
    }
}

/// What [`plan_deletion_costs`] needs of a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodView {
    /// Pod name.
    pub name: String,
    /// `status.podIP`, if assigned.
    pub ip: Option<String>,
    /// Current value of the deletion-cost annotation.
    pub current: Option<String>,
    /// True when the pod is being deleted.
    pub terminating: bool,
}

impl PodView {
    /// Extracts the view from a Pod.
    pub fn from_pod(pod: &Pod) -> Self {
        Self {
            name: pod.name_any(),
            ip: pod
                .status
                .as_ref()
                .and_then(|s| s.pod_ip.clone())
                .filter(|ip| !ip.is_empty()),
            current: pod.annotations().get(DELETION_COST_ANNOTATION).cloned(),
            terminating: pod.metadata.deletion_timestamp.is_some(),
        }
    }
}

/// One annotation change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostChange {
    /// Pod name.
    pub pod: String,
    /// New cost, or None to remove the annotation.
    pub cost: Option<i32>,
}

/// True when `ip` occurs in `address` as a whole token (so `10.0.0.1` does not match
/// `10.0.0.12`).
fn contains_ip(address: &str, ip: &str) -> bool {
    let bytes = address.as_bytes();
    address.match_indices(ip).any(|(i, _)| {
        let before = i.checked_sub(1).map(|j| bytes[j]);
        let after = bytes.get(i + ip.len()).copied();
        let glued = |c: u8| c.is_ascii_alphanumeric() || c == b'.';
        !before.is_some_and(|c| glued(c) || c == b':') && !after.is_some_and(glued)
    })
}

/// The TaskManager running in `pod`, if any.
fn task_manager_of<'a>(pod: &PodView, tms: &'a [TaskManagerSlots]) -> Option<&'a TaskManagerSlots> {
    tms.iter().find(|tm| tm.id == pod.name).or_else(|| {
        let ip = pod.ip.as_deref()?;
        tms.iter()
            .find(|tm| contains_ip(&tm.address, ip) || contains_ip(&tm.id, ip))
    })
}

/// The annotation changes that bring `pods` in line with `tms` (pure). Only pods whose
/// annotation must change are listed; `tms` empty clears every annotation.
pub fn plan_deletion_costs(pods: &[PodView], tms: &[TaskManagerSlots]) -> Vec<CostChange> {
    pods.iter()
        .filter_map(|pod| {
            let want = if pod.terminating {
                None
            } else {
                task_manager_of(pod, tms).map(TaskManagerSlots::cost)
            };
            let have = pod
                .current
                .as_deref()
                .and_then(|v| v.trim().parse::<i32>().ok());
            let unchanged = match (want, &pod.current) {
                (None, None) => true,
                (Some(w), Some(_)) => have == Some(w),
                _ => false,
            };
            (!unchanged).then(|| CostChange {
                pod: pod.name.clone(),
                cost: want,
            })
        })
        .collect()
}

/// Outcome of [`mark_deletion_costs`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeletionCostReport {
    /// Pods annotated as idle (deleted first).
    pub idle: Vec<String>,
    /// Pods annotated as busy.
    pub busy: Vec<String>,
    /// Pods whose stale annotation was removed.
    pub cleared: Vec<String>,
    /// Pods left unchanged (already correct).
    pub unchanged: usize,
}

/// Lists the TaskManager pods selected by `pod_selector` in `namespace` and merge-patches
/// their deletion cost from `tms` (idle lowest, busy by used slots); stale annotations
/// are removed. Pass `tms = &[]` after a rescale to clear all annotations.
pub async fn mark_deletion_costs(
    client: &Client,
    namespace: &str,
    pod_selector: &str,
    tms: &[TaskManagerSlots],
) -> Result<DeletionCostReport, KubeError> {
    let api = Api::<Pod>::namespaced(client.clone(), namespace);
    let pods = call(
        format!("list pods {namespace} -l {pod_selector}"),
        api.list(&ListParams::default().labels(pod_selector)),
    )
    .await?;
    let views: Vec<PodView> = pods.items.iter().map(PodView::from_pod).collect();
    let changes = plan_deletion_costs(&views, tms);
    let mut report = DeletionCostReport {
        unchanged: views.len() - changes.len(),
        ..Default::default()
    };
    for change in changes {
        let value = change.cost.map(|c| c.to_string());
        let patch = json!({"metadata": {"annotations": {DELETION_COST_ANNOTATION: value}}});
        let op = format!("patch pod {namespace}/{} deletion cost", change.pod);
        match call(
            op,
            api.patch(&change.pod, &PatchParams::default(), &Patch::Merge(&patch)),
        )
        .await
        {
            Ok(_) => {}
            // The pod went away between list and patch: nothing to annotate.
            Err(e) if e.status_code() == Some(404) => continue,
            Err(e) => return Err(e),
        }
        match change.cost {
            Some(IDLE_COST) => report.idle.push(change.pod),
            Some(_) => report.busy.push(change.pod),
            None => report.cleared.push(change.pod),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, ip: &str, current: Option<&str>) -> PodView {
        PodView {
            name: name.into(),
            ip: Some(ip.into()),
            current: current.map(str::to_string),
            terminating: false,
        }
    }

    fn tm(id: &str, address: &str, slots: u32, free: u32) -> TaskManagerSlots {
        TaskManagerSlots {
            id: id.into(),
            address: address.into(),
            slots,
            free_slots: free,
        }
    }

    /// An IP must match as a whole token, not as a prefix of a longer IP.
    #[test]
    fn ip_matching_respects_token_boundaries() {
        assert!(contains_ip(
            "pekko.tcp://flink@10.0.0.1:6122/user/rpc/taskmanager_0",
            "10.0.0.1"
        ));
        assert!(!contains_ip(
            "pekko.tcp://flink@10.0.0.12:6122/user/rpc/taskmanager_0",
            "10.0.0.1"
        ));
        assert!(!contains_ip("pekko.tcp://flink@110.0.0.1:6122", "10.0.0.1"));
        assert!(contains_ip("10.0.0.1:6122-4f1a2b", "10.0.0.1"));
        assert!(contains_ip("pekko.tcp://flink@[fd00::1]:6122", "fd00::1"));
        assert!(!contains_ip("pekko.tcp://flink@[fd00::12]:6122", "fd00::1"));
    }

    /// Idle pods get the lowest cost, busy pods a cost growing with used slots, pods
    /// without a TaskManager lose a stale annotation, correct annotations are kept.
    #[test]
    fn plans_idle_lowest_busy_by_used_slots_and_clears_stale() {
        let pods = [
            pod("tm-a", "10.0.0.1", None),
            pod("tm-b", "10.0.0.2", None),
            pod("tm-c", "10.0.0.3", Some("-1000")),
            pod("tm-d", "10.0.0.4", Some("100")),
            pod("tm-e", "10.0.0.5", Some("200")),
        ];
        let tms = [
            tm(
                "10.0.0.1:6122-aaaa",
                "pekko.tcp://flink@10.0.0.1:6122/user/rpc/taskmanager_0",
                4,
                4,
            ),
            tm(
                "10.0.0.2:6122-bbbb",
                "pekko.tcp://flink@10.0.0.2:6122/user/rpc/taskmanager_0",
                4,
                1,
            ),
            tm(
                "10.0.0.3:6122-cccc",
                "pekko.tcp://flink@10.0.0.3:6122/user/rpc/taskmanager_0",
                4,
                4,
            ),
            tm(
                "10.0.0.5:6122-eeee",
                "pekko.tcp://flink@10.0.0.5:6122/user/rpc/taskmanager_0",
                4,
                2,
            ),
        ];
        let plan = plan_deletion_costs(&pods, &tms);
        let cost = |p: &str| plan.iter().find(|c| c.pod == p).map(|c| c.cost);
        assert_eq!(cost("tm-a"), Some(Some(IDLE_COST)));
        assert_eq!(cost("tm-b"), Some(Some(3 * BUSY_COST_PER_SLOT)));
        assert_eq!(cost("tm-c"), None, "already correct: no patch");
        assert_eq!(
            cost("tm-d"),
            Some(None),
            "no TaskManager: stale annotation cleared"
        );
        assert_eq!(cost("tm-e"), None, "2 used slots = 200 already");
        const { assert!(IDLE_COST < 0 && BUSY_COST_PER_SLOT > 0) };
    }

    /// In Flink's Kubernetes modes the resource id is the pod name.
    #[test]
    fn matches_by_resource_id_and_clears_everything_after_rescale() {
        let pods = [
            PodView {
                ip: None,
                ..pod("job-taskmanager-1-1", "", None)
            },
            pod("job-taskmanager-1-2", "10.0.0.9", Some("-1000")),
        ];
        let tms = [tm(
            "job-taskmanager-1-1",
            "pekko.tcp://flink@10.1.1.1:6122",
            2,
            2,
        )];
        let plan = plan_deletion_costs(&pods, &tms);
        assert_eq!(
            plan,
            vec![
                CostChange {
                    pod: "job-taskmanager-1-1".into(),
                    cost: Some(IDLE_COST)
                },
                CostChange {
                    pod: "job-taskmanager-1-2".into(),
                    cost: None
                },
            ]
        );
        let after: Vec<PodView> = pods
            .iter()
            .map(|p| PodView {
                current: Some(IDLE_COST.to_string()),
                ..p.clone()
            })
            .collect();
        let cleared = plan_deletion_costs(&after, &[]);
        assert_eq!(cleared.len(), 2);
        assert!(cleared.iter().all(|c| c.cost.is_none()));
    }

    /// A terminating pod is never annotated.
    #[test]
    fn terminating_pods_are_not_annotated() {
        let p = PodView {
            terminating: true,
            ..pod("tm-a", "10.0.0.1", None)
        };
        let tms = [tm("x", "pekko.tcp://flink@10.0.0.1:6122", 1, 1)];
        assert!(plan_deletion_costs(&[p], &tms).is_empty());
    }
}

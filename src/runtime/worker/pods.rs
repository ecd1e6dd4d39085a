//! Drain-safe scale-down on Kubernetes: while KEDA is told fewer TaskManagers than are
//! registered, the idle TaskManager pods get the lowest
//! `controller.kubernetes.io/pod-deletion-cost`, so the ReplicaSet removes idle pods
//! first; the annotations are cleared once the surplus is gone (leader only).

use super::Worker;
use crate::{
    kube::{mark_deletion_costs, TaskManagerSlots},
    runtime::{pipeline::Observed, settings::JobSettings},
};

impl Worker {
    /// Marks (or clears) the pod-deletion-costs of the job's TaskManager pods for
    /// `reported` TaskManagers.
    pub(super) async fn mark_pods(
        &mut self,
        settings: &JobSettings,
        observed: &Observed,
        reported: u32,
    ) {
        let (Some(k), Some(t)) = (self.ctx.kube.clone(), settings.scale_target.as_ref()) else {
            return;
        };
        let Some(selector) = t.pod_selector.as_deref() else {
            return;
        };
        if !self.ctx.is_leader() {
            return;
        }
        let registered = u32::try_from(observed.task_managers.len()).unwrap_or(u32::MAX);
        let tms: Vec<TaskManagerSlots> = if registered > reported {
            slots(observed)
        } else if self.marked_pods {
            Vec::new() // stale: clear
        } else {
            return;
        };
        match mark_deletion_costs(&k.client, &t.namespace, selector, &tms).await {
            Ok(r) => {
                self.marked_pods = !tms.is_empty();
                tracing::info!(idle = ?r.idle, busy = ?r.busy, cleared = ?r.cleared, "pod-deletion-cost updated");
            }
            Err(e) => tracing::warn!(error = %e, "cannot update pod-deletion-cost"),
        }
    }
}

/// The slots of every registered TaskManager, as the kube adapter takes them.
fn slots(observed: &Observed) -> Vec<TaskManagerSlots> {
    observed
        .task_managers
        .iter()
        .map(|tm| TaskManagerSlots {
            id: tm.id.clone(),
            address: tm.path.clone(),
            slots: tm.slots_number,
            free_slots: tm.free_slots,
        })
        .collect()
}

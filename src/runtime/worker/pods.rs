//! Drain-safe scale-down on Kubernetes: while KEDA is told fewer TaskManagers than are
//! registered, the idle TaskManager pods get the lowest
//! `controller.kubernetes.io/pod-deletion-cost`, so the ReplicaSet removes idle pods
//! first; the annotations are cleared once the surplus is gone (leader only). The
//! ordering needs every TaskManager's free slots now, so a surplus reads `/taskmanagers`
//! afresh (the tick's shared copy may be several intervals old in steady state).

use super::Worker;
use crate::{
    flink::{FlinkClient, TaskManagerInfo},
    kube::{mark_deletion_costs, TaskManagerSlots},
    runtime::{pipeline::Observed, settings::JobSettings},
};

impl Worker {
    /// Marks (or clears) the pod-deletion-costs of the job's TaskManager pods for
    /// `reported` TaskManagers.
    pub(super) async fn mark_pods(
        &mut self,
        client: &FlinkClient,
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
        let count = |tms: &[TaskManagerInfo]| u32::try_from(tms.len()).unwrap_or(u32::MAX);
        let mut registered = count(&observed.task_managers);
        let mut now = None;
        if registered > reported {
            let interval = self.ctx.config.evaluation.interval;
            match self
                .ctx
                .rest
                .fresh_task_managers(client, &settings.flink_url, interval)
                .await
            {
                Ok(tms) => {
                    registered = count(&tms);
                    now = Some(tms);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the TaskManagers for the scale-down's ordering; pod-deletion-cost left as it is");
                    return;
                }
            }
        }
        let tms: Vec<TaskManagerSlots> = if let Some(now) = now.filter(|_| registered > reported) {
            slots(&now)
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
fn slots(task_managers: &[TaskManagerInfo]) -> Vec<TaskManagerSlots> {
    task_managers
        .iter()
        .map(|tm| TaskManagerSlots {
            id: tm.id.clone(),
            address: tm.path.clone(),
            slots: tm.slots_number,
            free_slots: tm.free_slots,
        })
        .collect()
}

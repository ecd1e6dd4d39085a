//! The count KEDA gets: what the worker knows about the job's requirements and slots,
//! handed to the core's [`core::task_managers_to_report`] (spare, monotone drain, never
//! below what the requirements need when the job runs degraded), and what the report
//! remembers for the next tick (persisted with the job's state).
//!
//! The requirements are remembered, not read every tick: the scaler sets them itself
//! (each accepted rescale) and reads them from Flink (`GET
//! /jobs/:id/resource-requirements`) only when they are unknown or the job does not run at
//! them — not RUNNING, no TaskManager registered, or a parallelism that differs (a lost
//! TaskManager, a change made outside the scaler) and no rescale of the scaler is in flight.

use std::collections::BTreeMap;

use super::Worker;
use crate::{
    core::{self, JobStatus, Observation, Policy, Report, ReportInputs, VertexId},
    flink::{self, FlinkClient},
    keda::EvalError,
    runtime::pipeline::Observed,
};

impl Worker {
    /// Fills the observation's slots per TaskManager from memory when no TaskManager is
    /// registered, and remembers them when one is.
    pub(super) fn remember_slots(&mut self, obs: &mut Observation) {
        let memory = &mut self.job_state.report;
        match obs.slots_per_task_manager {
            Some(s) if s > 0 => memory.slots_per_task_manager = Some(s),
            _ => obs.slots_per_task_manager = memory.slots_per_task_manager,
        }
    }

    /// Remembers the requirements one of the scaler's rescales set.
    pub(super) fn remember_requirements(&mut self, parallelism: &BTreeMap<VertexId, u32>) {
        self.job_state.report.requirements = Some(parallelism.clone());
    }

    /// The job's requirements (upper bound per vertex) as far as known this tick: the
    /// remembered ones while the job runs at them, else Flink's (remembered from then on;
    /// a failed read keeps the remembered ones and is logged).
    async fn requirements(
        &mut self,
        client: &FlinkClient,
        observed: &Observed,
    ) -> Option<BTreeMap<VertexId, u32>> {
        let obs = &observed.observation;
        let remembered = self.job_state.report.requirements.clone();
        let parallelism = obs.topology.parallelism();
        let running_at_them = obs.status == JobStatus::Running
            && !observed.task_managers.is_empty()
            && remembered.as_ref().is_some_and(|r| {
                r.iter()
                    .all(|(v, p)| parallelism.get(v).is_none_or(|x| x == p))
            });
        // a rescale in flight set them itself (its target): no need to ask Flink
        let in_flight = self
            .rescale
            .as_ref()
            .is_some_and(|r| !r.phase.is_terminal());
        if running_at_them || (in_flight && remembered.is_some()) {
            return remembered;
        }
        match client.resource_requirements(&observed.job_id).await {
            Ok(r) => {
                let upper = flink::upper_bounds(&r);
                self.job_state.report.requirements = Some(upper.clone());
                Some(upper)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the job's resource requirements; using the remembered ones");
                remembered
            }
        }
    }

    /// The count to report now, remembered for the next tick's monotone drain. A count
    /// that cannot be computed (slots per TaskManager unknown) is UNAVAILABLE naming why.
    pub(super) async fn report_count(
        &mut self,
        client: &FlinkClient,
        observed: &Observed,
        policy: &Policy,
    ) -> Result<Report, EvalError> {
        let requirements = self.requirements(client, observed).await;
        let obs = &observed.observation;
        let in_flight = self.rescale.as_deref().filter(|r| !r.phase.is_terminal());
        let slots_now = observed.task_managers.first().map(|t| t.slots_number);
        let report = core::task_managers_to_report(ReportInputs {
            topology: &obs.topology,
            slots_now,
            requirements: requirements.as_ref(),
            rescale: in_flight,
            // a scale-up settling, or the raise of one waiting for its TaskManagers
            settling: match &self.raise {
                Some(raise) => raise.settling(),
                None => self
                    .job_state
                    .scale_up_window
                    .as_ref()
                    .and_then(core::state::ScaleUpWindow::proposal),
            },
            memory: &self.job_state.report,
            policy,
        })
        .map_err(|e| EvalError::unavailable_from(&format!("job {}", obs.job_name), e))?;
        if report.basis == core::report::Basis::Requirements {
            tracing::info!(
                running = report.running,
                needed = report.needed,
                "the job runs below its requirements (degraded or restarting): reporting what they need"
            );
        }
        self.job_state.report.reported = Some(report.task_managers);
        Ok(report)
    }
}

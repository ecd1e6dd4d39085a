//! The worker's side of the JobManager set-up ([`crate::runtime::flink_setup`]): read it at
//! the first evaluation of each job id, before any change, and say what it finds once —
//! reactive mode (sized in TaskManagers, never PUT to) and every Flink setting that would
//! hold back the scaler's rescales (issue 13 §5) — in the log, as Events (leader only),
//! in the metrics and in the `/debug/jobs` report's issues on every tick.

use super::{report::JobReport, Worker};
use crate::{
    core::{self, Plan},
    flink::FlinkClient,
    runtime::{
        flink_setup::{self, FreshSetup},
        pipeline::Observed,
        settings::JobSettings,
    },
};

impl Worker {
    /// Reads the set-up when the job id is new; a failed read is logged and retried on
    /// the next tick (the decision then takes the per-vertex path, and a PUT to a reactive
    /// job is still refused by Flink and reported as reactive mode).
    pub(super) async fn read_flink_setup(
        &mut self,
        client: &FlinkClient,
        settings: &JobSettings,
        observed: &Observed,
        report: &mut JobReport,
    ) {
        let job = observed.observation.job_name.as_str();
        match self
            .flink_setup
            .refresh(client, &observed.job_id, &settings.policy)
            .await
        {
            Ok(Some(fresh)) => self.announce_setup(settings, job, &fresh).await,
            Ok(None) => {}
            Err(e) => {
                self.ctx
                    .metrics
                    .record_flink_error("jobmanager_config", e.kind());
                tracing::warn!(error = %e, "cannot read the JobManager set-up; retrying next tick");
            }
        }
        if self.flink_setup.reactive() {
            report.issues.push(flink_setup::REACTIVE_NOTE.to_owned());
        }
        report
            .issues
            .extend(self.flink_setup.delays().iter().map(|d| d.summary()));
    }

    /// The TaskManagers KEDA gets in reactive mode
    /// ([`core::reactive::task_managers_to_report`]): never below what the job runs at or
    /// was last scaled to.
    pub(super) fn reactive_report(&self, current: &Plan) -> u32 {
        let last = self.job_state.history.last().map(|r| r.to_task_managers);
        core::reactive::task_managers_to_report(
            current.task_managers,
            last,
            self.rescale.as_deref(),
        )
    }

    /// Log, metric and Events of a freshly read set-up.
    async fn announce_setup(&self, settings: &JobSettings, job: &str, fresh: &FreshSetup) {
        let delays: Vec<(&str, f64)> = fresh
            .delays
            .iter()
            .map(|d| (d.key, d.delay.as_secs_f64()))
            .collect();
        self.ctx
            .metrics
            .set_flink_setup(&self.key(job), fresh.setup.reactive, &delays);
        if fresh.setup.reactive {
            tracing::info!(
                version = %fresh.setup.version,
                "{}",
                flink_setup::REACTIVE_NOTE
            );
        }
        for d in &fresh.delays {
            tracing::warn!(setting = d.key, delay_s = d.delay.as_secs_f64(), advice = %d.advice, "a Flink setting holds back the scaler's rescales");
        }
        let (Some(k), Some(t)) = (self.ctx.kube.as_ref(), settings.scale_target.as_ref()) else {
            return;
        };
        if !self.ctx.is_leader() {
            return;
        }
        let mut events = Vec::new();
        if fresh.setup.reactive {
            events.push((
                false,
                "FlinkReactiveMode",
                flink_setup::REACTIVE_NOTE.to_owned(),
            ));
        }
        events.extend(
            fresh
                .delays
                .iter()
                .map(|d| (true, "FlinkRescaleDelay", d.summary())),
        );
        for (warning, reason, note) in events {
            if let Err(e) = k.events.flink_setup(t, warning, reason, &note).await {
                tracing::warn!(error = %e, "cannot write the Flink set-up Event");
            }
        }
    }
}

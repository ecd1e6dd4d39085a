//! What a tick leaves behind: the [`Published`] value every rpc answers from until the
//! next tick, the [`JobReport`] `/debug/jobs` shows, the job's metric series and the
//! decision log (at info when something changes, debug otherwise).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Worker;
use crate::{
    core::{Decision, Observation, Policy, Rescale, Rule},
    exporter::{JobKey, SignalValues},
    keda::{EvalError, Evaluation, ScalerTarget},
    runtime::{
        debug_jobs,
        pipeline::{self, Observed, QuerySummary},
    },
};

/// The result of one tick, shared with every rpc until the next one.
#[derive(Debug, Clone)]
pub struct Published {
    /// What KEDA gets.
    pub result: Result<Evaluation, EvalError>,
    /// The inputs, decision and rescale state, for `/debug/jobs`.
    pub report: Arc<StoredReport>,
}

/// What a job keeps of its [`JobReport`] until the next tick: the fields `/debug/jobs`
/// filters and sorts on, and the report serialized once as compact JSON, deflated. A
/// thousand jobs then hold about 2 kB each instead of the tick's observation, decision
/// and policy structures (7.9 kB as plain JSON for a five-vertex job; issue 16's memory
/// budget). `/debug/jobs` inflates the page it shows.
#[derive(Debug)]
pub struct StoredReport {
    /// `namespace/name` of the ScaledObject.
    pub scaled_object: String,
    /// When the tick ran.
    pub evaluated_at: DateTime<Utc>,
    /// True when the tick's answer was an error.
    pub failed: bool,
    /// Flink job id, when resolved.
    pub job_id: Option<String>,
    /// JobManager URL, when resolved.
    pub flink_url: Option<String>,
    deflated: Box<[u8]>,
}

/// Deflate level of the stored reports: the fastest (level 6 saves another 7 %).
const DEFLATE_LEVEL: u8 = 1;

impl StoredReport {
    /// Serializes `report` (a report that cannot be serialized keeps its name, time and
    /// the serialization error instead).
    pub fn new(report: &JobReport) -> Self {
        let json = serde_json::to_vec(report).unwrap_or_else(|e| {
            let fallback = serde_json::json!({
                "scaled_object": report.scaled_object,
                "evaluated_at": report.evaluated_at,
                "error": format!("the report could not be serialized: {e}"),
            });
            fallback.to_string().into_bytes()
        });
        let deflated = miniz_oxide::deflate::compress_to_vec(&json, DEFLATE_LEVEL);
        Self {
            scaled_object: report.scaled_object.clone(),
            evaluated_at: report.evaluated_at,
            failed: report.error.is_some(),
            job_id: report.job_id.clone(),
            flink_url: report.flink_url.clone(),
            deflated: deflated.into_boxed_slice(),
        }
    }

    /// Bytes held for the report.
    pub fn deflated_len(&self) -> usize {
        self.deflated.len()
    }

    /// The report as JSON (an error only a bug could cause: bytes that do not inflate).
    pub fn json(&self) -> Result<serde_json::Value, String> {
        let bytes = miniz_oxide::inflate::decompress_to_vec(&self.deflated)
            .map_err(|e| format!("the stored report does not inflate: {e}"))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("the stored report is not JSON: {e}"))
    }
}

/// What `/debug/jobs` shows for one ScaledObject.
#[derive(Debug, Clone, Serialize)]
pub struct JobReport {
    /// `namespace/name` of the ScaledObject.
    pub scaled_object: String,
    /// JobManager URL, when resolved.
    pub flink_url: Option<String>,
    /// Flink job id, when resolved.
    pub job_id: Option<String>,
    /// Flink job name, when resolved.
    pub job_name: Option<String>,
    /// When this tick ran.
    pub evaluated_at: DateTime<Utc>,
    /// TaskManagers reported to KEDA (None on error).
    pub reported_task_managers: Option<u32>,
    /// The error KEDA gets, if any.
    pub error: Option<String>,
    /// The decision with its reasons.
    pub decision: Option<Decision>,
    /// The observation the decision used.
    pub observation: Option<Observation>,
    /// The rescale in flight (or just finished).
    pub rescale: Option<Rescale>,
    /// Prometheus queries of this tick.
    pub queries: Vec<QuerySummary>,
    /// Non-fatal signal issues (at most [`debug_jobs::MAX_ISSUES`], each length-capped).
    pub issues: Vec<String>,
    /// Scrape interval, counter window and age of the signals of this tick.
    pub signals: Option<pipeline::SignalsSummary>,
    /// Issues left out of `issues`.
    pub issues_dropped: usize,
    /// The effective policy.
    pub policy: Option<Policy>,
}

impl JobReport {
    /// An empty report of a tick of `target` at `now`.
    pub(super) fn new(target: &ScalerTarget, now: DateTime<Utc>) -> Self {
        Self::named(target.to_string(), now)
    }

    /// An empty report of `scaled_object` (`namespace/name`) at `now`.
    pub(crate) fn named(scaled_object: String, now: DateTime<Utc>) -> Self {
        Self {
            scaled_object,
            flink_url: None,
            job_id: None,
            job_name: None,
            evaluated_at: now,
            reported_task_managers: None,
            error: None,
            decision: None,
            observation: None,
            rescale: None,
            queries: Vec::new(),
            issues: Vec::new(),
            signals: None,
            issues_dropped: 0,
            policy: None,
        }
    }

    /// Takes the job's identity, the query statistics and the issues of an observation.
    pub(super) fn observed(&mut self, observed: &Observed) {
        self.job_id = Some(observed.observation.job_id.clone());
        self.job_name = Some(observed.observation.job_name.clone());
        self.queries = pipeline::query_summaries(&observed.queries);
        self.issues = observed.issues.clone();
        self.signals = Some(observed.signals_summary());
        (self.issues, self.issues_dropped) = debug_jobs::cap_issues(&observed.issues);
    }
}

impl Worker {
    /// The exporter's key of this ScaledObject's `job`.
    pub(super) fn key<'a>(&'a self, job: &'a str) -> JobKey<'a> {
        JobKey {
            scaled_object: &self.target.scaled_object,
            job,
        }
    }

    /// Logs a decision at info when it rescales or its main rule changed, else at debug.
    pub(super) fn log_decision(&mut self, decision: &Decision, dry_run: bool) {
        let rule = decision.main_rule();
        if decision.rescale || rule != self.last_rule {
            tracing::info!(
                rule = rule.map(Rule::as_str).unwrap_or("none"),
                direction = decision.direction.as_str(),
                from_task_managers = decision.current.task_managers,
                to_task_managers = decision.target.as_ref().map(|t| t.task_managers),
                rescale = decision.rescale,
                dry_run,
                reasons = %decision.summary(),
                "decision"
            );
        } else {
            tracing::debug!(reasons = %decision.summary(), "decision unchanged");
        }
        self.last_rule = rule;
    }

    /// The job's gauges: bounds, decision, TaskManagers (current, desired, reported),
    /// rescale phase, and per vertex the parallelism and signals.
    pub(super) fn record_metrics(
        &mut self,
        observed: &Observed,
        decision: &Decision,
        reported: Option<u32>,
        policy: &Policy,
    ) {
        let obs = &observed.observation;
        let job = obs.job_name.as_str();
        if self.registered_job.as_deref() != Some(job) {
            self.ctx.metrics.register_job(&self.key(job));
            self.registered_job = Some(job.to_string());
        }
        self.record_task_managers(obs, decision, reported, policy);
        let phase = self
            .rescale
            .as_ref()
            .filter(|r| !r.phase.is_terminal())
            .map(|r| r.phase.as_str());
        self.ctx.metrics.set_rescale_phase(&self.key(job), phase);
        self.record_vertices(obs, decision);
    }

    fn record_task_managers(
        &self,
        obs: &Observation,
        decision: &Decision,
        reported: Option<u32>,
        policy: &Policy,
    ) {
        let m = &self.ctx.metrics;
        let key = self.key(&obs.job_name);
        m.set_task_manager_bounds(&key, policy.min_task_managers, policy.max_task_managers);
        m.record_decision_of(&key, decision);
        m.set_current_task_managers(&key, obs.task_managers_registered.unwrap_or(0));
        if let Some(t) = &decision.target {
            m.set_desired_task_managers(&key, t.task_managers);
        }
        if let Some(r) = reported {
            m.set_reported_task_managers(&key, r);
        }
    }

    fn record_vertices(&self, obs: &Observation, decision: &Decision) {
        let m = &self.ctx.metrics;
        let key = self.key(&obs.job_name);
        for v in &obs.topology.vertices {
            let desired = decision
                .target
                .as_ref()
                .and_then(|t| t.parallelism.get(&v.id).copied())
                .unwrap_or(v.parallelism);
            m.set_vertex_parallelism(&key, v.id.as_str(), &v.name, desired, v.parallelism);
            if let Some(s) = obs.vertices.get(&v.id) {
                let busy = s.busy_ms_per_s.map(|b| b / 1000.0);
                let tpr = match (s.records_in_per_s, busy) {
                    (Some(r), Some(b)) if b > 0.0 => Some(r / b),
                    _ => None,
                };
                m.set_signals(
                    &key,
                    v.id.as_str(),
                    &SignalValues {
                        pending_records: s.pending_records,
                        busy_ratio: busy,
                        true_processing_rate: tpr,
                        input_rate: s.records_in_per_s,
                    },
                );
            }
        }
    }
}

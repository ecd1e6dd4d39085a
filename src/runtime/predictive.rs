//! Predictive pre-scaling in the runtime: one PromQL query per tick (only when the policy
//! enables `predictive`) reads the job's peak source input rate one period ago over the
//! coming lead window, and [`crate::core::predictive_floor`] turns it into a TaskManager
//! floor that the core applies as `Rule::PredictiveFloor`.
//!
//! The history is keyed by job *name*, since a resubmitted job gets a new id.

use crate::{
    core::{predictive_floor, Observation, PredictiveConfig, Signal},
    promql::{queries, JobVars, PromClient, QueryError, TemplateError, Windows},
};

/// Why there is no predictive floor this tick (a non-fatal issue of the observation).
#[derive(Debug, thiserror::Error)]
pub enum PredictiveError {
    /// The source-rate query template could not be rendered.
    #[error("predictive query: {0}")]
    Template(#[source] TemplateError),
    /// The history query failed (an empty history is no error: no floor).
    #[error("predictive history query failed: {0}")]
    Query(#[source] QueryError),
}

/// Default PromQL for the job's total source input rate (records/s).
pub const DEFAULT_SOURCE_RATE: &str = r#"sum(flink_taskmanager_job_task_operator_numRecordsOutPerSecond{ {{matchers}}job_name="{{job_name}}",operator_name=~"Source.*"})"#;

/// `max_over_time(<rate>[lead:1m] offset (period - lead))`: the peak of
/// `[now - period, now - period + lead]`.
pub fn history_query(rate: &str, cfg: &PredictiveConfig) -> String {
    let lead = cfg.lead_s.max(60.0).round() as u64;
    let offset = (cfg.period_s - cfg.lead_s).max(0.0).round() as u64;
    format!("max_over_time(({rate})[{lead}s:1m] offset {offset}s)")
}

/// Records/s one TaskManager carries at the target utilization, estimated from now: the
/// job's current input rate over the TaskManagers its parallelism needs, scaled from the
/// busiest vertex's busy ratio to the target utilization. `None` without a usable load.
pub fn rate_per_task_manager(
    obs: &Observation,
    current_task_managers: u32,
    target_utilization: f64,
) -> Option<f64> {
    let rate = source_rate(obs)?;
    let busiest = obs
        .vertices
        .values()
        .filter_map(|s| s.busy_ms_per_s)
        .filter(|b| b.is_finite())
        .fold(0.0_f64, f64::max)
        / 1000.0;
    if current_task_managers == 0 || busiest <= 0.01 || rate <= 0.0 {
        return None;
    }
    Some(rate * (target_utilization / busiest) / f64::from(current_task_managers))
}

/// The job's current source input rate (sum over source vertices).
pub fn source_rate(obs: &Observation) -> Option<f64> {
    let mut sum = None;
    for v in &obs.topology.vertices {
        if obs.topology.is_source(&v.id) {
            if let Some(r) = obs.vertices.get(&v.id).and_then(|s| s.records_in_per_s) {
                if r.is_finite() {
                    *sum.get_or_insert(0.0) += r;
                }
            }
        }
    }
    sum
}

/// The source-rate query of the history: a template (default [`DEFAULT_SOURCE_RATE`])
/// and the windows it is rendered with.
#[derive(Debug, Clone, Copy)]
pub struct SourceRate<'a> {
    /// The policy's `predictive.query`, if any.
    pub template: Option<&'a str>,
    /// `{{window}}` and `{{interval}}`.
    pub windows: Windows,
}

/// The floor for this tick, `None` without history or load, or why it could not be read
/// (for `/debug/jobs` issues).
pub async fn floor(
    client: &PromClient,
    source: SourceRate<'_>,
    vars: &JobVars,
    cfg: &PredictiveConfig,
    obs: &Observation,
    current_task_managers: u32,
    target_utilization: f64,
) -> Result<Option<u32>, PredictiveError> {
    let rate = queries::render(
        Signal::RecordsIn,
        source.template.unwrap_or(DEFAULT_SOURCE_RATE),
        vars,
        &source.windows,
    )
    .map_err(PredictiveError::Template)?;
    let promql = history_query(&rate, cfg);
    let past = match client.query_value(&promql, None).await {
        Ok(v) => v,
        // no history yet (new job, or retention shorter than the period): no floor
        Err(QueryError::EmptyResult { .. }) => return Ok(None),
        Err(e) => return Err(PredictiveError::Query(e)),
    };
    let (Some(current), Some(per_tm)) = (
        source_rate(obs),
        rate_per_task_manager(obs, current_task_managers, target_utilization),
    ) else {
        return Ok(None);
    };
    Ok(predictive_floor(&[past], current, cfg, per_tm))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_query_covers_the_window_one_period_back() {
        let cfg = PredictiveConfig {
            period_s: 86_400.0,
            lead_s: 900.0,
            headroom: 1.1,
            min_rise: 0.3,
        };
        assert_eq!(
            history_query("sum(x)", &cfg),
            "max_over_time((sum(x))[900s:1m] offset 85500s)"
        );
    }
}

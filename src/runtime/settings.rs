//! Resolves what one ScaledObject asks for into concrete job settings: the named policy
//! from the config with the metadata overrides on top, the signal queries, the Prometheus
//! client and the JobManager URL. Every problem names the scalerMetadata key at fault,
//! so KEDA gets `INVALID_ARGUMENT` with it.

use std::sync::Arc;

use super::context::Context;
use crate::{
    config::{Config, PolicySpec, QueryPresetSpec, DEFAULT_NAME},
    core::Policy,
    keda::{EvalError, ScalerTarget},
    kube::{KubeError, ScaleTarget},
    promql::{PromClient, QueryPreset, SignalQueries, TemplateError},
};

/// What a job worker evaluates with.
pub struct JobSettings {
    /// Policy: config policy + metadata overrides.
    pub policy: Policy,
    /// Queries: the policy's preset + policy overrides + metadata overrides (shared:
    /// the signal hub batches jobs by their templates).
    pub queries: Arc<SignalQueries>,
    /// Extra label matchers for `{{matchers}}`.
    pub matchers: String,
    /// Prometheus server name (for metrics labels).
    pub prometheus_name: String,
    /// Prometheus client.
    pub prometheus: Arc<PromClient>,
    /// JobManager REST base URL.
    pub flink_url: String,
    /// The scale target behind the ScaledObject (Kubernetes integration only).
    pub scale_target: Option<ScaleTarget>,
    /// PromQL override of the predictive history's source rate.
    pub predictive_query: Option<String>,
}

/// Resolves a target against the config.
pub fn resolve(ctx: &Context, target: &ScalerTarget) -> Result<JobSettings, EvalError> {
    let config = &ctx.config;
    let spec = policy_spec(config, target)?;
    let mut policy = config
        .policy(target.policy.as_deref())
        .map_err(|e| EvalError::internal_from("config policy", e))?;
    apply_overrides(&mut policy, target)?;
    let queries = queries(spec, target)?;
    let (prometheus_name, prometheus) = prometheus(ctx, target)?;
    let (flink_url, scale_target) = flink(ctx, target)?;
    Ok(JobSettings {
        policy,
        queries: Arc::new(queries),
        matchers: spec.and_then(|s| s.matchers.clone()).unwrap_or_default(),
        prometheus_name,
        prometheus,
        flink_url,
        scale_target,
        predictive_query: spec
            .and_then(|s| s.predictive.as_ref())
            .and_then(|p| p.query.clone()),
    })
}

/// The policy the `policy` key names (unknown: `INVALID_ARGUMENT`), else `default` if
/// the config has one.
fn policy_spec<'a>(
    config: &'a Config,
    target: &ScalerTarget,
) -> Result<Option<&'a PolicySpec>, EvalError> {
    let Some(n) = target.policy.as_deref() else {
        return Ok(config.policies.get(DEFAULT_NAME));
    };
    let spec = config.policies.get(n).ok_or_else(|| {
        let known: Vec<&str> = config.policies.keys().map(String::as_str).collect();
        EvalError::invalid_argument(
            "policy",
            format!(
                "no policy named '{n}' in the scaler config (known: {})",
                known.join(", ")
            ),
        )
    })?;
    Ok(Some(spec))
}

/// The queries of a policy: its preset's defaults with its overrides (the live scaler,
/// `explain` and the backtest alike).
pub fn policy_queries(spec: Option<&PolicySpec>) -> Result<SignalQueries, TemplateError> {
    let Some(spec) = spec else {
        return Ok(SignalQueries::defaults());
    };
    let preset = match spec.query_preset {
        QueryPresetSpec::Counters => QueryPreset::Counters,
        QueryPresetSpec::Gauges => QueryPreset::Gauges,
    };
    SignalQueries::preset(preset).with_overrides(&spec.query_overrides())
}

/// The policy's queries, then the ScaledObject's overrides (a bad one is
/// `INVALID_ARGUMENT` naming its own `<signal>Query` key).
fn queries(spec: Option<&PolicySpec>, target: &ScalerTarget) -> Result<SignalQueries, EvalError> {
    let queries =
        policy_queries(spec).map_err(|e| EvalError::internal_from("policy queries", e))?;
    if target.query_overrides.is_empty() {
        return Ok(queries);
    }
    queries
        .with_overrides(&target.query_overrides)
        .map_err(|e| {
            // Name the override that failed, not merely the first one.
            let failing = match &e {
                TemplateError::UnknownPlaceholder { signal, .. }
                | TemplateError::RequiredDisabled { signal } => Some(*signal),
                _ => None,
            };
            let key = failing
                .or_else(|| target.query_overrides.keys().next().copied())
                .map(|s| format!("{}Query", s.name()))
                .unwrap_or_else(|| "query".to_string());
            EvalError::invalid_argument_from(key, e)
        })
}

/// The Prometheus server the ScaledObject names (`prometheusServer`), else `default`.
fn prometheus(
    ctx: &Context,
    target: &ScalerTarget,
) -> Result<(String, Arc<PromClient>), EvalError> {
    let name = target
        .prometheus_server
        .clone()
        .unwrap_or_else(|| DEFAULT_NAME.to_string());
    let Some(client) = ctx.prometheus.get(&name).cloned() else {
        let known = ctx
            .prometheus
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        return Err(if target.prometheus_server.is_some() {
            EvalError::invalid_argument(
                "prometheusServer",
                format!(
                    "no Prometheus server named '{name}' in the scaler config (known: {known})"
                ),
            )
        } else {
            EvalError::internal(format!(
                "the scaler config has no 'prometheus.default' server and the ScaledObject names none (set prometheusServer; known: {known})"
            ))
        });
    };
    Ok((name, client))
}

/// The JobManager URL: from the discovered scale target (Kubernetes integration), else
/// the `flinkRestUrl` key, which is then required.
fn flink(ctx: &Context, target: &ScalerTarget) -> Result<(String, Option<ScaleTarget>), EvalError> {
    let explicit = target
        .flink_rest_url
        .as_ref()
        .map(|u| u.as_str().trim_end_matches('/').to_string());
    let scale_target = match &ctx.kube {
        Some(k) => Some(
            k.discovery
                .resolve(
                    &target.scaled_object.namespace,
                    &target.scaled_object.name,
                    explicit.as_deref(),
                )
                .map_err(kube_error)?,
        ),
        None => None,
    };
    let url = match (&scale_target, explicit) {
        (Some(t), _) => t.rest_url.trim_end_matches('/').to_string(),
        (None, Some(u)) => u,
        (None, None) => {
            return Err(EvalError::invalid_argument(
                "flinkRestUrl",
                "required (the JobManager REST URL, e.g. http://my-job-rest:8081) when Kubernetes discovery is off (kubernetes.enabled: false)",
            ))
        }
    };
    ctx.allow_flink_url(&url, &target.scaled_object.namespace)?;
    Ok((url, scale_target))
}

fn kube_error(e: KubeError) -> EvalError {
    match e {
        KubeError::ScaledObjectNotFound { .. } | KubeError::TargetNotFound { .. } => {
            EvalError::not_found_from(e)
        }
        KubeError::NoRestUrl { .. } => EvalError::invalid_argument_from("flinkRestUrl", e),
        KubeError::NamespaceNotWatched { .. } => EvalError::permission_denied_from(e),
        KubeError::UnsupportedTarget { .. } => {
            EvalError::invalid_argument_from("scaleTargetRef", e)
        }
        other => EvalError::unavailable_from("Kubernetes", other),
    }
}

/// Applies the per-ScaledObject overrides (already validated for type and range by the
/// metadata parser) and re-checks the combinations that involve the policy.
fn apply_overrides(policy: &mut Policy, target: &ScalerTarget) -> Result<(), EvalError> {
    if let Some(min) = target.min_task_managers {
        policy.min_task_managers = min;
    }
    if let Some(max) = target.max_task_managers {
        policy.max_task_managers = max;
    }
    if policy.max_task_managers < policy.min_task_managers {
        let key = if target.max_task_managers.is_some() {
            "maxTaskManagers"
        } else {
            "minTaskManagers"
        };
        return Err(EvalError::invalid_argument(
            key,
            format!(
                "minTaskManagers ({}) must not exceed maxTaskManagers ({})",
                policy.min_task_managers, policy.max_task_managers
            ),
        ));
    }
    if let Some(s) = target.slots_per_task_manager {
        policy.slots_per_task_manager = Some(s);
    }
    if let Some(u) = target.target_utilization {
        policy.target_utilization = u;
        // keep the band around the new target
        if policy.utilization_high < u {
            policy.utilization_high = u;
        }
        if policy.utilization_low >= u {
            policy.utilization_low = u * 0.6;
        }
    }
    if let Some(d) = target.catch_up_duration {
        policy.catch_up_duration = d;
    }
    if let Some(dry) = target.dry_run {
        policy.dry_run = dry;
    }
    if let Some(spare) = target.spare_task_managers {
        policy.spare_task_managers = spare;
    }
    let room = policy.max_task_managers - policy.min_task_managers;
    if policy.spare_task_managers > room {
        let key = if target.spare_task_managers.is_some() {
            "spareTaskManagers"
        } else {
            "maxTaskManagers"
        };
        return Err(EvalError::invalid_argument(
            key,
            format!(
                "spareTaskManagers ({}) must not exceed maxTaskManagers - minTaskManagers ({} - {} = {room})",
                policy.spare_task_managers, policy.max_task_managers, policy.min_task_managers
            ),
        ));
    }
    Ok(())
}

//! scalerMetadata → [`ScalerTarget`]: pure parsing and validation, no I/O.
//!
//! KEDA passes a trigger's whole `metadata` map. Every key is checked: an unknown key is an
//! error with a did-you-mean (a silently ignored typo is the worst autoscaler failure), and
//! a bad value is an error naming the key, the expected form and the value received.

use std::{collections::BTreeMap, time::Duration};

use url::Url;

use super::{
    suggest,
    target::{metadata_hash, metric_name_for, ScalerTarget},
};
use crate::core::{text::cap, JobId, JobSelector, ScaledObjectRef, Signal};

/// Bytes of a key quoted back in an error at most.
const MAX_ECHOED_KEY: usize = 128;
/// Bytes of a problem (which quotes the value received) in an error at most.
const MAX_ECHOED_PROBLEM: usize = 512;

/// `flinkRestUrl`.
pub const KEY_FLINK_REST_URL: &str = "flinkRestUrl";
/// `jobName`.
pub const KEY_JOB_NAME: &str = "jobName";
/// `jobId`.
pub const KEY_JOB_ID: &str = "jobId";
/// `minTaskManagers`.
pub const KEY_MIN_TASK_MANAGERS: &str = "minTaskManagers";
/// `maxTaskManagers`.
pub const KEY_MAX_TASK_MANAGERS: &str = "maxTaskManagers";
/// `slotsPerTaskManager`.
pub const KEY_SLOTS_PER_TASK_MANAGER: &str = "slotsPerTaskManager";
/// `targetUtilization`.
pub const KEY_TARGET_UTILIZATION: &str = "targetUtilization";
/// `catchUpDuration`.
pub const KEY_CATCH_UP_DURATION: &str = "catchUpDuration";
/// `policy`.
pub const KEY_POLICY: &str = "policy";
/// `prometheusServer`.
pub const KEY_PROMETHEUS_SERVER: &str = "prometheusServer";
/// `dryRun`.
pub const KEY_DRY_RUN: &str = "dryRun";
/// `spareTaskManagers`.
pub const KEY_SPARE_TASK_MANAGERS: &str = "spareTaskManagers";
/// Suffix of the per-signal PromQL override keys (`busyTimeQuery`, ...).
pub const QUERY_SUFFIX: &str = "Query";

/// Our own keys (without the `<signal>Query` overrides).
pub const KEYS: [&str; 12] = [
    KEY_FLINK_REST_URL,
    KEY_JOB_NAME,
    KEY_JOB_ID,
    KEY_MIN_TASK_MANAGERS,
    KEY_MAX_TASK_MANAGERS,
    KEY_SLOTS_PER_TASK_MANAGER,
    KEY_TARGET_UTILIZATION,
    KEY_CATCH_UP_DURATION,
    KEY_POLICY,
    KEY_PROMETHEUS_SERVER,
    KEY_DRY_RUN,
    KEY_SPARE_TASK_MANAGERS,
];

/// Keys KEDA itself reads from the trigger metadata (external scaler address and TLS);
/// accepted and ignored.
pub const KEDA_KEYS: [&str; 6] = [
    "scalerAddress",
    "enableTLS",
    "unsafeSsl",
    "caCert",
    "tlsClientCert",
    "tlsClientKey",
];

/// Where an invalid field lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A field of the `ScaledObjectRef` (`name`, `namespace`).
    ScaledObjectRef,
    /// A key of `scalerMetadata`.
    ScalerMetadata,
    /// A field of the request itself (`metricName` of GetMetrics).
    Request,
}

impl Scope {
    fn describe(self) -> &'static str {
        match self {
            Scope::ScaledObjectRef => "ScaledObjectRef field",
            Scope::ScalerMetadata => "scalerMetadata key",
            Scope::Request => "request field",
        }
    }
}

/// Invalid ScaledObject trigger input. Maps to gRPC `INVALID_ARGUMENT`; the message names
/// the key and the problem, each length-capped (a 10 kB value is quoted by its start).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {} '{key}': {problem}", scope.describe())]
pub struct MetadataError {
    /// Where the key lives.
    pub scope: Scope,
    /// The offending key (as the user wrote it).
    pub key: String,
    /// What is wrong with it, including the value received where there is one.
    pub problem: String,
}

impl MetadataError {
    /// An error on a scalerMetadata key.
    pub fn metadata(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            scope: Scope::ScalerMetadata,
            key: cap(&key.into(), MAX_ECHOED_KEY),
            problem: cap(&problem.into(), MAX_ECHOED_PROBLEM),
        }
    }

    /// An error on a field of the request (`metricName`).
    pub fn request(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            scope: Scope::Request,
            key: cap(&key.into(), MAX_ECHOED_KEY),
            problem: cap(&problem.into(), MAX_ECHOED_PROBLEM),
        }
    }

    fn object_ref(key: &str, problem: impl Into<String>) -> Self {
        Self {
            scope: Scope::ScaledObjectRef,
            key: key.to_string(),
            problem: problem.into(),
        }
    }
}

/// Every key accepted in scalerMetadata (ours, the query overrides, KEDA's).
pub fn known_keys() -> impl Iterator<Item = String> {
    KEYS.iter()
        .map(|k| (*k).to_string())
        .chain(Signal::ALL.iter().map(|s| query_key(*s)))
        .chain(KEDA_KEYS.iter().map(|k| (*k).to_string()))
}

/// The override key of a signal: `busyTime` → `busyTimeQuery`.
pub fn query_key(signal: Signal) -> String {
    format!("{}{QUERY_SUFFIX}", signal.name())
}

impl ScalerTarget {
    /// Parses and validates a ScaledObject trigger: `namespace`/`name` of the
    /// ScaledObjectRef (non-empty) and every scalerMetadata key. Keys are checked in sorted
    /// order, so the first error reported is deterministic.
    pub fn parse<'a, I>(namespace: &str, name: &str, metadata: I) -> Result<Self, MetadataError>
    where
        I: IntoIterator<Item = (&'a String, &'a String)>,
    {
        if namespace.trim().is_empty() {
            return Err(MetadataError::object_ref("namespace", "must not be empty"));
        }
        if name.trim().is_empty() {
            return Err(MetadataError::object_ref("name", "must not be empty"));
        }
        let sorted: BTreeMap<&str, &str> = metadata
            .into_iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut t = ScalerTarget {
            scaled_object: ScaledObjectRef::new(namespace, name),
            flink_rest_url: None,
            job: JobSelector::OnlyRunning,
            min_task_managers: None,
            max_task_managers: None,
            slots_per_task_manager: None,
            target_utilization: None,
            catch_up_duration: None,
            policy: None,
            prometheus_server: None,
            dry_run: None,
            spare_task_managers: None,
            query_overrides: BTreeMap::new(),
            metric_name: String::new(),
            metadata_hash: metadata_hash(&sorted),
        };
        for (&key, &raw) in &sorted {
            apply(&mut t, key, raw)?;
        }
        check_cross_fields(&t, &sorted)?;
        t.metric_name = metric_name_for(&t.job);
        Ok(t)
    }
}

/// Sets one key on the target.
fn apply(t: &mut ScalerTarget, key: &str, raw: &str) -> Result<(), MetadataError> {
    if KEDA_KEYS.contains(&key) {
        return Ok(());
    }
    let value = raw.trim();
    let known = KEYS.contains(&key)
        || key
            .strip_suffix(QUERY_SUFFIX)
            .and_then(Signal::from_name)
            .is_some();
    if !known {
        return Err(unknown_key(key));
    }
    if value.is_empty() {
        return Err(MetadataError::metadata(
            key,
            "value is empty; set a value or remove the key",
        ));
    }
    match key {
        KEY_FLINK_REST_URL => t.flink_rest_url = Some(parse_url(key, value)?),
        KEY_JOB_NAME => t.job = JobSelector::Name(value.to_string()),
        KEY_JOB_ID => t.job = JobSelector::Id(parse_job_id(key, value)?),
        KEY_MIN_TASK_MANAGERS => t.min_task_managers = Some(parse_count(key, value)?),
        KEY_MAX_TASK_MANAGERS => t.max_task_managers = Some(parse_count(key, value)?),
        KEY_SLOTS_PER_TASK_MANAGER => t.slots_per_task_manager = Some(parse_count(key, value)?),
        KEY_TARGET_UTILIZATION => t.target_utilization = Some(parse_utilization(key, value)?),
        KEY_CATCH_UP_DURATION => t.catch_up_duration = Some(parse_duration(key, value)?),
        KEY_POLICY => t.policy = Some(value.to_string()),
        KEY_PROMETHEUS_SERVER => t.prometheus_server = Some(value.to_string()),
        KEY_DRY_RUN => t.dry_run = Some(parse_bool(key, value)?),
        KEY_SPARE_TASK_MANAGERS => t.spare_task_managers = Some(parse_spare(key, value)?),
        _ => {
            // Known and not one of ours: a `<signal>Query` override.
            let signal = key
                .strip_suffix(QUERY_SUFFIX)
                .and_then(Signal::from_name)
                .ok_or_else(|| unknown_key(key))?;
            t.query_overrides.insert(signal, value.to_string());
        }
    }
    Ok(())
}

fn check_cross_fields(
    t: &ScalerTarget,
    sorted: &BTreeMap<&str, &str>,
) -> Result<(), MetadataError> {
    if sorted.contains_key(KEY_JOB_NAME) && sorted.contains_key(KEY_JOB_ID) {
        return Err(MetadataError::metadata(
            KEY_JOB_ID,
            "'jobName' and 'jobId' are mutually exclusive; set one of them (or neither to \
             scale the only running job)",
        ));
    }
    if let (Some(min), Some(max)) = (t.min_task_managers, t.max_task_managers) {
        if min > max {
            return Err(MetadataError::metadata(
                KEY_MIN_TASK_MANAGERS,
                format!("must be <= maxTaskManagers ({max}), got {min}"),
            ));
        }
    }
    Ok(())
}

fn unknown_key(key: &str) -> MetadataError {
    let known: Vec<String> = known_keys().collect();
    let problem = match suggest::closest(key, known.iter().map(String::as_str)) {
        Some(s) => format!("unknown scalerMetadata key; did you mean '{s}'?"),
        None => format!(
            "unknown scalerMetadata key; known keys: {}, <signal>Query for signals {}",
            KEYS.join(", "),
            Signal::ALL.map(Signal::name).join(", ")
        ),
    };
    MetadataError::metadata(key, problem)
}

fn parse_url(key: &str, value: &str) -> Result<Url, MetadataError> {
    let url = Url::parse(value)
        .map_err(|e| MetadataError::metadata(key, format!("not a URL ({e}): '{value}'")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(MetadataError::metadata(
            key,
            format!("scheme must be http or https, got '{}'", url.scheme()),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(MetadataError::metadata(
            key,
            format!("URL has no host: '{value}'"),
        ));
    }
    Ok(url)
}

fn parse_job_id(key: &str, value: &str) -> Result<JobId, MetadataError> {
    value.parse().map_err(|_| {
        MetadataError::metadata(
            key,
            format!("must be a Flink job id (32 hex characters), got '{value}'"),
        )
    })
}

fn parse_count(key: &str, value: &str) -> Result<u32, MetadataError> {
    match value.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(MetadataError::metadata(
            key,
            format!("must be an integer >= 1, got '{value}'"),
        )),
    }
}

fn parse_spare(key: &str, value: &str) -> Result<u32, MetadataError> {
    value.parse::<u32>().map_err(|_| {
        MetadataError::metadata(
            key,
            format!("must be an integer >= 0 (idle TaskManagers kept warm), got '{value}'"),
        )
    })
}

fn parse_utilization(key: &str, value: &str) -> Result<f64, MetadataError> {
    match value.parse::<f64>() {
        Ok(u) if u.is_finite() && u > 0.0 && u <= 1.0 => Ok(u),
        _ => Err(MetadataError::metadata(
            key,
            format!("must be a number in (0, 1] (e.g. 0.7), got '{value}'"),
        )),
    }
}

fn parse_duration(key: &str, value: &str) -> Result<Duration, MetadataError> {
    match humantime::parse_duration(value) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(MetadataError::metadata(
            key,
            format!("must be a duration > 0, got '{value}'"),
        )),
        Err(e) => Err(MetadataError::metadata(
            key,
            format!("must be a duration like '5m' or '90s' ({e}), got '{value}'"),
        )),
    }
}

fn parse_bool(key: &str, value: &str) -> Result<bool, MetadataError> {
    if value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(MetadataError::metadata(
            key,
            format!("must be 'true' or 'false', got '{value}'"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 10 kB value (or key) is quoted by its start only.
    #[test]
    fn echoed_values_are_capped() {
        let huge = "9".repeat(10_000);
        let e = MetadataError::metadata(
            "minTaskManagers",
            format!("must be an integer >= 1, got '{huge}x'"),
        );
        assert!(e.to_string().len() < 700, "{} bytes", e.to_string().len());
        let e = MetadataError::metadata(huge.clone(), "unknown scalerMetadata key");
        assert!(e.to_string().len() < 300, "{} bytes", e.to_string().len());
    }
}

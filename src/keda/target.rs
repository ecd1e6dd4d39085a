//! `ScalerTarget`: one ScaledObject trigger's scalerMetadata, parsed and validated (see
//! [`super::metadata`]), plus the two identities derived from it: the metric name KEDA
//! and the HPA see, and the cache key under which the runtime keeps one evaluation.

use std::{collections::BTreeMap, fmt, time::Duration};

use url::Url;

use crate::core::{JobSelector, ScaledObjectRef, Signal};

/// Prefix of every metric name we publish.
pub const METRIC_NAME_PREFIX: &str = "flink-taskmanagers";

/// Longest metric name we publish (a DNS label).
pub const METRIC_NAME_MAX_LEN: usize = 63;

/// Identity of one ScaledObject trigger configuration, for the runtime's evaluation cache:
/// namespace, name and a stable hash of the sorted raw scalerMetadata. Any metadata change
/// gives a new key, so a cached evaluation never outlives the config it was made for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey {
    /// The ScaledObject.
    pub scaled_object: ScaledObjectRef,
    /// FNV-1a 64 hash of the sorted `key=value` metadata pairs (stable across processes
    /// and versions, unlike `std`'s `DefaultHasher`).
    pub metadata_hash: u64,
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{:016x}", self.scaled_object, self.metadata_hash)
    }
}

/// A ScaledObject trigger, parsed from KEDA's `ScaledObjectRef`. Built only by
/// [`ScalerTarget::parse`](super::metadata) (so the derived metric name and cache key always
/// match the fields); `None` means "not set in scalerMetadata": the runtime applies the
/// policy or config default.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalerTarget {
    /// The ScaledObject (namespace and name non-empty).
    pub scaled_object: ScaledObjectRef,
    /// `flinkRestUrl`: JobManager REST API (http/https). `None`: Kubernetes discovery.
    pub flink_rest_url: Option<Url>,
    /// `jobName` / `jobId`.
    pub job: JobSelector,
    /// `minTaskManagers` (≥ 1, ≤ max when both are set).
    pub min_task_managers: Option<u32>,
    /// `maxTaskManagers` (≥ 1).
    pub max_task_managers: Option<u32>,
    /// `slotsPerTaskManager` (≥ 1). `None`: read `taskmanager.numberOfTaskSlots` from Flink.
    pub slots_per_task_manager: Option<u32>,
    /// `targetUtilization` in (0, 1].
    pub target_utilization: Option<f64>,
    /// `catchUpDuration` (> 0): time to drain a backlog.
    pub catch_up_duration: Option<Duration>,
    /// `policy`: name of a policy of the config file (existence checked by the runtime).
    pub policy: Option<String>,
    /// `prometheusServer`: name of a configured Prometheus server.
    pub prometheus_server: Option<String>,
    /// `dryRun`: decide and report, never PUT.
    pub dry_run: Option<bool>,
    /// `spareTaskManagers` (≥ 0): warm spare TaskManagers on top of what the job needs.
    pub spare_task_managers: Option<u32>,
    /// `<signal>Query` overrides (PromQL), by signal.
    pub query_overrides: BTreeMap<Signal, String>,
    pub(super) metric_name: String,
    pub(super) metadata_hash: u64,
}

impl ScalerTarget {
    /// The metric name of this trigger (lowercase DNS label, ≤ 63 chars, deterministic):
    /// `flink-taskmanagers` or `flink-taskmanagers-<job name or id>`. KEDA publishes it to
    /// the HPA as `s<index>-<name>`.
    pub fn metric_name(&self) -> &str {
        &self.metric_name
    }

    /// Cache key: namespace, name and a hash of the sorted metadata.
    pub fn cache_key(&self) -> CacheKey {
        CacheKey {
            scaled_object: self.scaled_object.clone(),
            metadata_hash: self.metadata_hash,
        }
    }

    /// True when `requested` (the `metricName` of a GetMetrics request) designates this
    /// trigger's metric: case-insensitive (K8s lowercases external metric names, KEDA
    /// #4954), with or without a leftover `s<N>-` trigger-index prefix.
    pub fn matches_metric_name(&self, requested: &str) -> bool {
        let requested = requested.trim();
        requested.eq_ignore_ascii_case(&self.metric_name)
            || strip_index_prefix(requested)
                .is_some_and(|rest| rest.eq_ignore_ascii_case(&self.metric_name))
    }
}

impl fmt::Display for ScalerTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.scaled_object.fmt(f)
    }
}

/// `s12-rest` → `Some("rest")`; anything else → `None`.
fn strip_index_prefix(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(['s', 'S'])?;
    let (digits, rest) = rest.split_once('-')?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(rest)
}

/// Builds the metric name for a job selector (see [`ScalerTarget::metric_name`]). A
/// suffix is lowercased and reduced to `[a-z0-9-]`; when that loses information
/// (other characters, or too long for 63 chars) a short hash of the original is appended
/// so two different jobs never share a name.
pub(super) fn metric_name_for(job: &JobSelector) -> String {
    let raw = match job {
        JobSelector::OnlyRunning => return METRIC_NAME_PREFIX.to_string(),
        JobSelector::Name(n) => n.as_str(),
        JobSelector::Id(id) => id.as_str(),
    };
    let mut slug = String::with_capacity(raw.len());
    for c in raw.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_matches('-');
    let budget = METRIC_NAME_MAX_LEN - METRIC_NAME_PREFIX.len() - 1;
    let lossless = slug == raw && slug.len() <= budget;
    if lossless {
        return format!("{METRIC_NAME_PREFIX}-{slug}");
    }
    // 8 hex chars of hash + a dash before it.
    let hash = format!("{:08x}", fnv1a(raw.as_bytes()) as u32);
    let keep = budget - hash.len() - 1;
    let cut = slug
        .get(..keep.min(slug.len()))
        .unwrap_or(slug)
        .trim_end_matches('-');
    if cut.is_empty() {
        format!("{METRIC_NAME_PREFIX}-{hash}")
    } else {
        format!("{METRIC_NAME_PREFIX}-{cut}-{hash}")
    }
}

/// FNV-1a 64 of the sorted `key=value` pairs (pairs separated by NUL bytes).
pub(super) fn metadata_hash(sorted: &BTreeMap<&str, &str>) -> u64 {
    let mut bytes = Vec::new();
    for (k, v) in sorted {
        bytes.extend_from_slice(k.as_bytes());
        bytes.push(b'=');
        bytes.extend_from_slice(v.as_bytes());
        bytes.push(0);
    }
    fnv1a(&bytes)
}

/// FNV-1a, 64 bit.
fn fnv1a(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::text::is_dns_label;

    #[test]
    fn metric_names_are_dns_labels_and_distinct() {
        let jobs = [
            JobSelector::OnlyRunning,
            JobSelector::Name("orders".into()),
            JobSelector::Name("Orders".into()),
            JobSelector::Name("orders enrichment (prod)".into()),
            JobSelector::Name("ünïcode ✓".into()),
            JobSelector::Name("x".repeat(200)),
            JobSelector::Name(format!("{}y", "x".repeat(199))),
            JobSelector::Id(
                "0123456789abcdef0123456789abcdef"
                    .parse()
                    .expect("a job id"),
            ),
        ];
        let names: Vec<String> = jobs.iter().map(metric_name_for).collect();
        for n in &names {
            assert!(is_dns_label(n), "{n:?} is not a DNS label");
            assert!(n.starts_with(METRIC_NAME_PREFIX));
        }
        let distinct: std::collections::BTreeSet<&String> = names.iter().collect();
        assert_eq!(distinct.len(), names.len(), "{names:?}");
        assert_eq!(names[1], "flink-taskmanagers-orders");
        assert_eq!(names, jobs.iter().map(metric_name_for).collect::<Vec<_>>());
    }

    #[test]
    fn index_prefix_is_stripped_only_when_well_formed() {
        assert_eq!(strip_index_prefix("s0-abc"), Some("abc"));
        assert_eq!(strip_index_prefix("S12-abc-def"), Some("abc-def"));
        assert_eq!(strip_index_prefix("s-abc"), None);
        assert_eq!(strip_index_prefix("sx-abc"), None);
        assert_eq!(strip_index_prefix("abc"), None);
    }

    #[test]
    fn fnv_matches_reference_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}

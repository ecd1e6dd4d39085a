//! The scrape interval of the Flink series and the counter windows derived from it
//! (`{{interval}}`, `{{window}}` in query templates).
//!
//! # The window rule: `window = max(4 × interval, 10 s)`
//! A range function needs two samples inside its window. Samples arrive every `interval`
//! with a little jitter, so a window of `4 × interval` holds four samples nominally, at
//! least three when jitter moves one across an edge, and still two when one scrape is
//! missed as well (the rule Grafana's `$__rate_interval` uses). The 10 s floor keeps two
//! of Flink's 5 s `TimerGauge` updates inside the window: idle and back-pressured time are
//! accounted at those updates, so busy time read from counters over a shorter window
//! swings between 0 and 1000 ms/s on a lightly loaded task. A step in load shows in full
//! one window after it happened and by more than half after two intervals.
//!
//! # The arrival window: `max(4 × interval, 5 s)`
//! `arrivalRate` (a source's records consumed plus its backlog's growth) is read from
//! counters that count every record (`numRecordsOut`, `pendingRecords`), not from the
//! 5 s-accounted busy time, so it needs no 10 s floor: a load step shows in full one
//! arrival window after it happened (4 s after the step at a 1 s scrape, against 10 s
//! for the load window). The 5 s floor smooths the source's fetch batches and
//! back-pressure bursts: measured on the lab's I/O-bound step (600 → 1,800 records/s,
//! 1 s scrape), the slope's tick-to-tick spread while the backlog built was ±15 % at 4 s,
//! ±10 % at 5 s and ±8 % at 6 s; it reached the new level 3, 4 and 5 s after the step.
//!
//! # Learning the interval
//! From the samples' own timestamps, so it works with any Prometheus-compatible server
//! (Thanos, Mimir and VictoriaMetrics have no targets API): for every TaskManager's
//! `flink_taskmanager_Status_JVM_CPU_Load` series (one per TaskManager, on every Flink
//! version) selected by the batch's matchers, the span between the first and last raw
//! sample seen in a recent range divided by the number of sample changes in it — the
//! exact mean gap, also for a series younger than the range — and the largest of those
//! (the slowest-scraped TaskManager, so every series gets its two samples):
//!
//! ```text
//! max((max_over_time(timestamp(P)[W:R]) - min_over_time(timestamp(P)[W:R]))
//!     / (changes(timestamp(P)[W:R]) > 0))
//! ```
//! One instant query returning one number, every few minutes per (server, matchers); the
//! subquery evaluates `W / R` steps per TaskManager (300 the first time, then about 100).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{client::PromClient, error::QueryError, queries::check_matchers};

/// The interval assumed until one is learned or configured: Prometheus' default
/// `scrape_interval`.
pub const FALLBACK_INTERVAL: Duration = Duration::from_secs(60);
/// Scrape intervals per window.
pub const WINDOW_INTERVALS: u32 = 4;
/// The shortest window (two of Flink's 5 s metric updates).
pub const MIN_WINDOW: Duration = Duration::from_secs(10);
/// The shortest arrival window (see the module doc).
pub const MIN_ARRIVAL_WINDOW: Duration = Duration::from_secs(5);
/// The series whose sample timestamps give the interval.
pub const PROBE_METRIC: &str = "flink_taskmanager_Status_JVM_CPU_Load";
/// Shortest and longest intervals accepted from the probe.
const PLAUSIBLE: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(600));

/// The scrape interval and the counter window of one (server, matchers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Windows {
    /// Scrape interval of the Flink series.
    #[serde(with = "as_promql")]
    pub interval: Duration,
    /// Window of the counter slopes: `max(4 × interval, 10 s)`, whole seconds.
    #[serde(with = "as_promql")]
    pub window: Duration,
    /// Window of the sources' arrival rate: `max(4 × interval, 5 s)`, whole seconds.
    #[serde(with = "as_promql")]
    pub arrival: Duration,
}

mod as_promql {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::promql_duration(*d))
    }
}

impl Windows {
    /// The windows for a scrape interval.
    pub fn from_interval(interval: Duration) -> Self {
        let whole = |floor: Duration| {
            let raw = (interval * WINDOW_INTERVALS).max(floor);
            Duration::from_secs(raw.as_secs() + u64::from(raw.subsec_nanos() > 0))
        };
        Self {
            interval,
            window: whole(MIN_WINDOW),
            arrival: whole(MIN_ARRIVAL_WINDOW),
        }
    }
}

impl Default for Windows {
    /// The windows of [`FALLBACK_INTERVAL`].
    fn default() -> Self {
        Self::from_interval(FALLBACK_INTERVAL)
    }
}

/// A duration as PromQL writes it: `15s`, or `1500ms` when not whole seconds.
pub fn promql_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Why the interval could not be learned.
#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    /// The matchers cannot be put in a selector.
    #[error("matchers {0:?} are not a bare matcher list")]
    BadMatchers(String),
    /// The probe query failed (an empty result: no TaskManager series under the matchers).
    #[error("probe query failed: {0}")]
    Query(#[source] QueryError),
    /// The probe returned something that is not a plausible interval.
    #[error("probe returned {0} s, not a plausible scrape interval (0.1 s – 10 min)")]
    Implausible(f64),
}

impl LearnError {
    /// Bounded label value.
    pub fn kind(&self) -> &'static str {
        match self {
            LearnError::BadMatchers(_) => "bad_matchers",
            LearnError::Query(e) => e.kind(),
            LearnError::Implausible(_) => "implausible",
        }
    }
}

/// The probe's range `W` and resolution `R`: 5 min at 1 s the first time; then 20
/// intervals (2–30 min) at a fifth of the interval (1 s – 1 min), so a faster scrape
/// configured later is seen within two learnings.
pub fn probe_range(previous: Option<Duration>) -> (Duration, Duration) {
    match previous {
        None => (Duration::from_secs(300), Duration::from_secs(1)),
        Some(p) => (
            (p * 20).clamp(Duration::from_secs(120), Duration::from_secs(1800)),
            Duration::from_secs((p / 5).as_secs().clamp(1, 60)),
        ),
    }
}

/// The probe query for `matchers` (a bare matcher list, possibly empty).
pub fn probe_query(matchers: &str, previous: Option<Duration>) -> Result<String, LearnError> {
    check_matchers(matchers).map_err(|_| LearnError::BadMatchers(matchers.to_string()))?;
    let m = matchers.trim().trim_end_matches(',').trim();
    let (range, resolution) = probe_range(previous);
    let ts = format!(
        "timestamp({PROBE_METRIC}{{{m}}})[{}:{}]",
        promql_duration(range),
        promql_duration(resolution)
    );
    Ok(format!(
        "max((max_over_time({ts}) - min_over_time({ts})) / (changes({ts}) > 0))"
    ))
}

/// Learns the scrape interval of the TaskManagers under `matchers` (one instant query),
/// rounded to 100 ms.
pub async fn learn_interval(
    client: &PromClient,
    matchers: &str,
    previous: Option<Duration>,
    at: Option<DateTime<Utc>>,
) -> Result<Duration, LearnError> {
    let query = probe_query(matchers, previous)?;
    let seconds = client
        .query_value(&query, at)
        .await
        .map_err(LearnError::Query)?;
    interval_from_seconds(seconds)
}

/// A probe value as an interval (rounded to 100 ms), if plausible.
pub fn interval_from_seconds(seconds: f64) -> Result<Duration, LearnError> {
    let plausible = seconds.is_finite()
        && seconds >= PLAUSIBLE.0.as_secs_f64()
        && seconds <= PLAUSIBLE.1.as_secs_f64();
    if !plausible {
        return Err(LearnError::Implausible(seconds));
    }
    let tenths = (seconds * 10.0).round() as u64;
    Ok(Duration::from_millis(tenths * 100))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 4 intervals, at least 10 s, whole seconds.
    #[test]
    fn arrival_window_rule() {
        let a = |ms: u64| Windows::from_interval(Duration::from_millis(ms)).arrival;
        assert_eq!(a(1_000), Duration::from_secs(5));
        assert_eq!(a(500), Duration::from_secs(5));
        assert_eq!(a(1_500), Duration::from_secs(6));
        assert_eq!(a(15_000), Duration::from_secs(60));
        for ms in [100, 1_000, 2_000, 15_000, 60_000] {
            let w = Windows::from_interval(Duration::from_millis(ms));
            assert!(w.arrival <= w.window, "{w:?}");
        }
    }

    #[test]
    fn window_rule() {
        let w = |ms: u64| Windows::from_interval(Duration::from_millis(ms)).window;
        assert_eq!(w(1_000), Duration::from_secs(10));
        assert_eq!(w(2_500), Duration::from_secs(10));
        assert_eq!(w(15_000), Duration::from_secs(60));
        assert_eq!(w(30_000), Duration::from_secs(120));
        assert_eq!(w(60_000), Duration::from_secs(240));
        assert_eq!(w(15_300), Duration::from_secs(62));
        assert_eq!(promql_duration(Duration::from_millis(1_500)), "1500ms");
        assert_eq!(promql_duration(Duration::from_secs(60)), "60s");
    }

    /// The probe selects the TaskManagers under the matchers; its range follows the
    /// previous value.
    #[test]
    fn probe() {
        let q = probe_query("namespace=\"a\",", None).expect("query");
        assert!(
            q.contains(
                "timestamp(flink_taskmanager_Status_JVM_CPU_Load{namespace=\"a\"})[300s:1s]"
            ),
            "{q}"
        );
        assert!(q.starts_with("max((max_over_time("), "{q}");
        assert_eq!(
            probe_range(Some(Duration::from_secs(15))),
            (Duration::from_secs(300), Duration::from_secs(3))
        );
        assert_eq!(
            probe_range(Some(Duration::from_secs(1))),
            (Duration::from_secs(120), Duration::from_secs(1))
        );
        assert!(probe_query("{x}", None).is_err());
        assert_eq!(
            interval_from_seconds(14.98).ok(),
            Some(Duration::from_secs(15))
        );
        assert!(interval_from_seconds(f64::NAN).is_err());
        assert!(interval_from_seconds(0.0).is_err());
    }
}

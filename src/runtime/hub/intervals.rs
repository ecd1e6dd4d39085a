//! The scrape interval per (Prometheus server, matchers), the windows derived from it
//! ([`Windows`]), learned on first use and again every [`RELEARN`]: the configured
//! `prometheus.<name>.scrapeInterval` wins; a failed learning keeps the last value (and
//! is retried after [`RETRY`]); before any success the fallback (1m) is used and
//! reported, and a failed learning is retried after [`RETRY_UNLEARNED`].

use crate::runtime::sync::lock;
use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{
    exporter::Metrics,
    promql::{learn_interval, PromClient, SignalQueries, Windows},
};

/// How often a learned interval is learned again.
pub const RELEARN: Duration = Duration::from_secs(300);
/// How soon a failed learning is retried when an interval was learned before (it stays
/// in use meanwhile).
pub const RETRY: Duration = Duration::from_secs(60);
/// How soon a failed learning is retried when none succeeded yet: the queries meanwhile
/// run on the 1m fallback's 240 s window and the core gets no signal window, so a scaler
/// started next to a fresh Prometheus (the series' second sample not in yet) must not
/// wait a minute for the next try (seen in the lab: a step 20 s after the start was sized
/// on the 240 s window, 2 → 3 instead of 2 → 6).
pub const RETRY_UNLEARNED: Duration = Duration::from_secs(5);

/// Where the interval in use comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum IntervalSource {
    /// `prometheus.<name>.scrapeInterval`.
    Configured,
    /// Learned from the samples' timestamps.
    Learned,
    /// Not learned yet: Prometheus' default `scrape_interval` (1m) assumed.
    Fallback,
}

/// What `/debug/jobs` and `explain` show about one (server, matchers).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScrapeIntervalReport {
    /// Prometheus server name.
    pub server: String,
    /// The policy's extra matchers (empty: none).
    pub matchers: String,
    /// Interval and window in use.
    #[serde(flatten)]
    pub windows: Windows,
    /// Where the interval comes from.
    pub source: IntervalSource,
    /// When it was last learned.
    pub learned_at: Option<DateTime<Utc>>,
    /// Why the last learning failed (kept value in use), if it did.
    pub error: Option<String>,
}

impl ScrapeIntervalReport {
    /// How long signals read with these windows take to show a load change in full: the
    /// counter window plus one scrape (the last sample lands up to an interval late), once
    /// the interval is known (learned or configured) and when `queries`' load signals
    /// follow `{{window}}`; `None` before the first learning (the 1m fallback is a guess)
    /// and for fixed-window queries (the core then settles on its own `stabilization`).
    pub fn signal_window(&self, queries: &SignalQueries) -> Option<Duration> {
        (self.known() && queries.load_follows_window())
            .then(|| self.windows.window + self.windows.interval)
    }

    /// How long after a tick first sees a load change in `arrivalRate` the arrival holds
    /// that change in full: the arrival window itself, once the interval is known and when
    /// the query follows `{{arrival_window}}`; `None` otherwise. No scrape on top (unlike
    /// [`Self::signal_window`], counted from the change): the core counts this from the
    /// first tick that saw the rise ([`crate::core::state::RateTrend`]), and that tick's
    /// query already held a sample taken after the change, so every sample taken before it
    /// is older than that query; one window later none is left inside the window, and
    /// the estimate (a slope of counters that count every record) is the new load's
    /// alone.
    pub fn arrival_window(&self, queries: &SignalQueries) -> Option<Duration> {
        (self.known() && queries.arrival_follows_window()).then_some(self.windows.arrival)
    }

    /// The interval was learned or configured (not the fallback guess).
    fn known(&self) -> bool {
        matches!(
            self.source,
            IntervalSource::Learned | IntervalSource::Configured
        )
    }
}

/// One (server, matchers).
#[derive(Debug, Clone)]
struct Entry {
    report: ScrapeIntervalReport,
    next_learning: Instant,
}

/// One (server, matchers): the value in use, and the lock of whoever learns it.
#[derive(Default)]
struct Slot {
    current: Mutex<Option<Entry>>,
    learner: Arc<tokio::sync::Mutex<()>>,
}

/// Every (server, matchers) seen.
pub struct Intervals {
    configured: BTreeMap<String, Duration>,
    slots: Mutex<BTreeMap<(String, String), Arc<Slot>>>,
    metrics: Arc<Metrics>,
}

impl Intervals {
    /// Configured intervals by server name.
    pub fn new(configured: BTreeMap<String, Duration>, metrics: Arc<Metrics>) -> Self {
        Self {
            configured,
            slots: Mutex::new(BTreeMap::new()),
            metrics,
        }
    }

    /// The windows for (`server`, `matchers`), learning first when due.
    pub async fn windows(&self, server: &str, matchers: &str, client: &PromClient) -> Windows {
        self.report(server, matchers, client).await.windows
    }

    /// Like [`Intervals::windows`], with where the value comes from. Only the first
    /// caller of a (server, matchers) waits for a learning; later ones get the value in
    /// use while another caller learns it again.
    pub async fn report(
        &self,
        server: &str,
        matchers: &str,
        client: &PromClient,
    ) -> ScrapeIntervalReport {
        if let Some(&interval) = self.configured.get(server) {
            return self.configured_report(server, matchers, interval);
        }
        let slot = self.slot(server, matchers);
        let current = lock(&slot.current).clone();
        let learner = slot.learner.clone();
        let _turn = match current.as_ref().map(|e| e.next_learning) {
            Some(next) if Instant::now() < next => return report_of(current),
            Some(_) => match learner.try_lock_owned() {
                Ok(g) => g,
                Err(_) => return report_of(current),
            },
            None => {
                let g = learner.lock_owned().await;
                let now = lock(&slot.current).clone();
                if now.is_some() {
                    return report_of(now);
                }
                g
            }
        };
        let next = self.learn(server, matchers, client, current).await;
        let report = next.report.clone();
        *lock(&slot.current) = Some(next);
        report
    }

    /// Every (server, matchers) known, for `/debug/jobs`.
    pub fn reports(&self) -> Vec<ScrapeIntervalReport> {
        let slots: Vec<Arc<Slot>> = lock(&self.slots).values().cloned().collect();
        slots
            .iter()
            .filter_map(|s| lock(&s.current).as_ref().map(|e| e.report.clone()))
            .collect()
    }

    fn slot(&self, server: &str, matchers: &str) -> Arc<Slot> {
        lock(&self.slots)
            .entry((server.to_string(), matchers.to_string()))
            .or_default()
            .clone()
    }

    fn configured_report(
        &self,
        server: &str,
        matchers: &str,
        interval: Duration,
    ) -> ScrapeIntervalReport {
        ScrapeIntervalReport {
            server: server.to_string(),
            matchers: matchers.to_string(),
            windows: Windows::from_interval(interval),
            source: IntervalSource::Configured,
            learned_at: None,
            error: None,
        }
    }

    /// One learning: a success replaces the value, a failure keeps the previous one.
    async fn learn(
        &self,
        server: &str,
        matchers: &str,
        client: &PromClient,
        previous: Option<Entry>,
    ) -> Entry {
        let known = previous
            .as_ref()
            .filter(|e| e.report.source == IntervalSource::Learned)
            .map(|e| e.report.windows.interval);
        self.metrics.count_prometheus_queries(server, "learn", 1);
        let entry = match learn_interval(client, matchers, known, None).await {
            Ok(interval) => {
                if known != Some(interval) {
                    tracing::info!(server, matchers, ?interval, "learned the scrape interval");
                }
                Entry {
                    report: ScrapeIntervalReport {
                        server: server.to_string(),
                        matchers: matchers.to_string(),
                        windows: Windows::from_interval(interval),
                        source: IntervalSource::Learned,
                        learned_at: Some(Utc::now()),
                        error: None,
                    },
                    next_learning: Instant::now() + RELEARN,
                }
            }
            Err(e) => {
                tracing::warn!(server, matchers, error = %e, "cannot learn the scrape interval; keeping the previous value");
                let mut report = match previous {
                    Some(p) => p.report,
                    None => fallback(server, matchers, None),
                };
                report.error = Some(e.to_string());
                let retry = retry_after(known.is_some());
                Entry {
                    report,
                    next_learning: Instant::now() + retry,
                }
            }
        };
        self.metrics.set_scrape_interval(
            server,
            matchers,
            entry.report.windows.interval.as_secs_f64(),
        );
        entry
    }
}

/// How soon a failed learning is tried again: [`RETRY`] once an interval was learned,
/// [`RETRY_UNLEARNED`] before.
fn retry_after(learned_before: bool) -> Duration {
    if learned_before {
        RETRY
    } else {
        RETRY_UNLEARNED
    }
}

/// The report of an entry known to exist.
fn report_of(entry: Option<Entry>) -> ScrapeIntervalReport {
    entry.map_or_else(|| fallback("", "", None), |e| e.report)
}

/// The report of a (server, matchers) whose interval was never learned.
fn fallback(server: &str, matchers: &str, error: Option<String>) -> ScrapeIntervalReport {
    ScrapeIntervalReport {
        server: server.to_string(),
        matchers: matchers.to_string(),
        windows: Windows::default(),
        source: IntervalSource::Fallback,
        learned_at: None,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promql::QueryPreset;

    fn report(source: IntervalSource, interval_s: u64) -> ScrapeIntervalReport {
        ScrapeIntervalReport {
            server: "prom".to_string(),
            matchers: String::new(),
            windows: Windows::from_interval(Duration::from_secs(interval_s)),
            source,
            learned_at: None,
            error: None,
        }
    }

    /// Before any success a failed learning is retried within seconds (the queries run on
    /// the fallback's 240 s window meanwhile); after one, within a minute.
    #[test]
    fn an_interval_never_learned_is_retried_soon() {
        assert_eq!(retry_after(false), RETRY_UNLEARNED);
        assert_eq!(retry_after(true), RETRY);
        assert!(RETRY_UNLEARNED < RETRY);
    }

    /// The window is handed on only once the interval is known, and only for queries
    /// that follow it: window `max(4 × interval, 10 s)` plus one interval.
    #[test]
    fn the_signal_window_is_known_only_once_learned_and_for_windowed_queries() {
        let counters = SignalQueries::preset(QueryPreset::Counters);
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(
            report(IntervalSource::Learned, 1).signal_window(&counters),
            secs(11)
        );
        assert_eq!(
            report(IntervalSource::Learned, 15).signal_window(&counters),
            secs(75)
        );
        assert_eq!(
            report(IntervalSource::Configured, 30).signal_window(&counters),
            secs(150)
        );
        assert_eq!(
            report(IntervalSource::Fallback, 60).signal_window(&counters),
            None
        );
        let gauges = SignalQueries::preset(QueryPreset::Gauges);
        assert_eq!(
            report(IntervalSource::Learned, 1).signal_window(&gauges),
            None
        );
        // the sources' arrival: `max(4 × interval, 5 s)`, counted from the tick that saw
        // the change
        assert_eq!(
            report(IntervalSource::Learned, 1).arrival_window(&counters),
            secs(5)
        );
        assert_eq!(
            report(IntervalSource::Learned, 15).arrival_window(&counters),
            secs(60)
        );
        assert_eq!(
            report(IntervalSource::Fallback, 60).arrival_window(&counters),
            None
        );
        assert_eq!(
            report(IntervalSource::Learned, 1).arrival_window(&gauges),
            None
        );
    }
}

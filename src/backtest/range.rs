//! The replayed time range: `--from`/`--to` parsing (`RFC3339`, `now`, `-2h`) and the
//! ticks `from, from+step, …, ≤ to` — the same instants Prometheus evaluates a range
//! query at, so each series point maps to exactly one tick.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::BacktestError;

/// Prometheus refuses range queries with more points per series than this.
pub const MAX_POINTS: usize = 11_000;

/// `[from, to]` every `step`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// First tick.
    pub from: DateTime<Utc>,
    /// Last instant (inclusive).
    pub to: DateTime<Utc>,
    /// Tick spacing.
    pub step: Duration,
}

impl TimeRange {
    /// Validates and builds a range: `from < to`, `step ≥ 1s`, at most [`MAX_POINTS`] ticks.
    pub fn new(
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        step: Duration,
    ) -> Result<Self, BacktestError> {
        if from >= to {
            return Err(BacktestError::Range(format!(
                "--from {from} must be before --to {to}"
            )));
        }
        if step < Duration::from_secs(1) {
            return Err(BacktestError::Range(format!(
                "--step must be at least 1s, got {step:?}"
            )));
        }
        let me = Self { from, to, step };
        let points = me.len();
        if points > MAX_POINTS {
            return Err(BacktestError::Range(format!(
                "{points} ticks exceed Prometheus' {MAX_POINTS} points per series; use a larger --step"
            )));
        }
        Ok(me)
    }

    fn step_ms(&self) -> i64 {
        i64::try_from(self.step.as_millis())
            .unwrap_or(i64::MAX)
            .max(1)
    }

    /// Number of ticks.
    pub fn len(&self) -> usize {
        let span = (self.to - self.from).num_milliseconds().max(0);
        usize::try_from(span / self.step_ms())
            .unwrap_or(usize::MAX)
            .saturating_add(1)
    }

    /// Always false (a valid range has at least one tick).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The ticks.
    pub fn ticks(&self) -> Vec<DateTime<Utc>> {
        let step = chrono::Duration::milliseconds(self.step_ms());
        (0..self.len())
            .map(|i| self.from + step * i32::try_from(i).unwrap_or(i32::MAX))
            .collect()
    }

    /// The tick index of an instant that lies on the grid (±1 ms), `None` otherwise.
    pub fn index_of(&self, at: DateTime<Utc>) -> Option<usize> {
        let off = (at - self.from).num_milliseconds();
        if off < 0 {
            return None;
        }
        let step = self.step_ms();
        let i = (off + step / 2) / step;
        let exact = (off - i * step).abs() <= 1;
        let i = usize::try_from(i).ok()?;
        (exact && i < self.len()).then_some(i)
    }
}

/// Parses `now`, `-<duration>` (relative to `now`, e.g. `-2h`, `-90m`) or RFC3339.
pub fn parse_time(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, BacktestError> {
    let t = text.trim();
    if t == "now" {
        return Ok(now);
    }
    if let Some(rel) = t.strip_prefix('-') {
        let d = humantime::parse_duration(rel).map_err(|e| time_error(text, "", e))?;
        let d = chrono::Duration::from_std(d).map_err(|e| time_error(text, "", e))?;
        return Ok(now - d);
    }
    DateTime::parse_from_rfc3339(t)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| time_error(text, " is neither now, -<duration> nor RFC3339", e))
}

fn time_error<E>(text: &str, hint: &'static str, source: E) -> BacktestError
where
    E: std::error::Error + Send + Sync + 'static,
{
    BacktestError::Time {
        text: text.to_string(),
        hint,
        source: Box::new(source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Relative, absolute and `now` parse; ticks sit on the grid and end at `to`.
    #[test]
    fn parses_and_ticks() {
        let now = parse_time("2026-01-01T12:00:00Z", Utc::now()).expect("rfc3339");
        let from = parse_time("-1h", now).expect("relative");
        assert_eq!((now - from).num_minutes(), 60);
        assert_eq!(parse_time("now", now).expect("now"), now);
        assert!(parse_time("yesterday", now).is_err());
        let r = TimeRange::new(from, now, Duration::from_secs(15)).expect("range");
        let ticks = r.ticks();
        assert_eq!(ticks.len(), 241);
        assert_eq!(ticks.last().copied(), Some(now));
        assert_eq!(r.index_of(from + chrono::Duration::seconds(30)), Some(2));
        assert_eq!(r.index_of(from + chrono::Duration::seconds(31)), None);
        assert!(TimeRange::new(now, from, Duration::from_secs(15)).is_err());
        assert!(TimeRange::new(from, now, Duration::from_millis(1)).is_err());
    }
}

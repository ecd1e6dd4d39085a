//! Failover detection across observations of one job: a new exception-history entry,
//! `FAILING`, or restarts beyond those the rescales in flight explain (each restart a
//! rescale step takes in place is expected, see [`FailoverWatch::expect_restarts`]).
//! Used by the [`rescale`](super::rescale) state machine and the apply loop.
//!
//! **Exactly, on Flink 2.3 with the rescale history on**
//! (`web.adaptive-scheduler.rescale-history.size` > 0): every restart of the adaptive
//! scheduler is a history record with its trigger cause (measured on 2.3.0: a PUT gives
//! an `UPDATE_REQUIREMENT` record ~9 ms later, a new TaskManager `NEW_RESOURCE_AVAILABLE`,
//! a lost TaskManager one or more `RECOVERABLE_FAILOVER`). A watch built
//! [`FailoverWatch::with_history`] counts only new `RECOVERABLE_FAILOVER` records and ignores
//! the restart counter and the exception history, which cannot tell the two apart (1.x
//! and 2.3 without the history keep today's counting).
//!
//! A failover the scaler causes on purpose (reactive mode removes a TaskManager: one
//! failover per TaskManager, measured) is announced with
//! [`FailoverWatch::expect_failovers`] and not reported.

use serde::{Deserialize, Serialize};

use super::observation::JobStatus;

/// Why a restart is considered a failover (not a rescale).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub enum FailoverCause {
    /// A new entry in the job's exception history.
    NewException {
        /// Timestamp (ms) of the newest entry.
        at_ms: i64,
    },
    /// The job is FAILING.
    Failing,
    /// The job restarted more often than the rescales in flight explain.
    UnexpectedRestarts {
        /// Restarts since the baseline.
        restarts: u64,
        /// Restarts a rescale explains.
        expected: u64,
    },
    /// A `RECOVERABLE_FAILOVER` record of Flink 2.3's rescale history.
    RecoverableFailover {
        /// Start (ms, JobManager clock) of the record.
        at_ms: i64,
    },
}

/// What triggered a record of Flink 2.3's rescale history (`triggerCause`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RescaleTrigger {
    /// The job's first scheduling.
    InitialSchedule,
    /// A resource-requirements update (our PUT).
    UpdateRequirement,
    /// More slots arrived (a new TaskManager).
    NewResourceAvailable,
    /// A failover.
    RecoverableFailover,
    /// A cause this version does not know.
    #[serde(other)]
    Other,
}

/// One record of Flink 2.3's rescale history, as the failover watch reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRecord {
    /// `startTimestampInMillis` (JobManager clock).
    pub start_ms: i64,
    /// `triggerCause`.
    pub trigger: RescaleTrigger,
}

impl FailoverCause {
    /// Stable label value.
    pub fn as_str(&self) -> &'static str {
        match self {
            FailoverCause::NewException { .. } => "new_exception",
            FailoverCause::Failing => "failing",
            FailoverCause::UnexpectedRestarts { .. } => "unexpected_restarts",
            FailoverCause::RecoverableFailover { .. } => "recoverable_failover",
        }
    }
}

/// Detects failovers of one job across observations. Pure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverWatch {
    restarts_baseline: Option<u64>,
    expected_restarts: u64,
    latest_exception_ms: Option<i64>,
    reported_restarts: u64,
    failing_reported: bool,
    /// Exact mode: the newest rescale-history record seen (ms); `None` = counting mode.
    #[serde(default)]
    history_floor_ms: Option<i64>,
    /// Failovers the scaler causes on purpose, not reported.
    #[serde(default)]
    expected_failovers: u64,
}

impl FailoverWatch {
    /// Starts watching from the current restart counter and newest exception timestamp.
    pub fn new(num_restarts: Option<u64>, latest_exception_ms: Option<i64>) -> Self {
        Self {
            restarts_baseline: num_restarts,
            expected_restarts: 0,
            latest_exception_ms,
            reported_restarts: 0,
            failing_reported: false,
            history_floor_ms: None,
            expected_failovers: 0,
        }
    }

    /// Exact mode from Flink 2.3's rescale history as it is now (`records`): later
    /// `RECOVERABLE_FAILOVER` records are the failovers; restarts and exceptions are
    /// ignored from here on.
    pub fn with_history(mut self, records: &[HistoryRecord]) -> Self {
        self.history_floor_ms = Some(records.iter().map(|r| r.start_ms).max().unwrap_or(0));
        self
    }

    /// True when failovers come from the rescale history (exact mode).
    pub fn exact(&self) -> bool {
        self.history_floor_ms.is_some()
    }

    /// The next `n` failovers are caused on purpose (e.g. reactive mode removing `n`
    /// TaskManagers): they are not reported.
    pub fn expect_failovers(&mut self, n: u64) {
        self.expected_failovers = self.expected_failovers.saturating_add(n);
    }

    /// Allows `n` more restarts (a rescale in flight restarts the job in place, once per
    /// rescale step the adaptive scheduler takes).
    pub fn expect_restarts(&mut self, n: u64) {
        self.expected_restarts = self.expected_restarts.saturating_add(n);
    }

    /// Feeds one observation; returns the failovers it reveals (each reported once).
    pub fn observe(
        &mut self,
        status: JobStatus,
        num_restarts: Option<u64>,
        latest_exception_ms: Option<i64>,
    ) -> Vec<FailoverCause> {
        self.observe_with_history(status, num_restarts, latest_exception_ms, None)
    }

    /// [`Self::observe`] with the rescale history read in the same observation (`None`
    /// when unreadable or off). In exact mode only the history and `FAILING` count.
    pub fn observe_with_history(
        &mut self,
        status: JobStatus,
        num_restarts: Option<u64>,
        latest_exception_ms: Option<i64>,
        history: Option<&[HistoryRecord]>,
    ) -> Vec<FailoverCause> {
        let failing = self.failing(status);
        let mut out = if self.exact() {
            let mut out = self.failovers_in_history(history);
            out.extend(failing);
            out
        } else {
            self.counted(num_restarts, latest_exception_ms, failing)
        };
        out.retain(|c| !self.swallow(c));
        out
    }

    /// `FAILING` once per episode.
    fn failing(&mut self, status: JobStatus) -> Option<FailoverCause> {
        if status != JobStatus::Failing {
            self.failing_reported = false;
            return None;
        }
        if self.failing_reported {
            return None;
        }
        self.failing_reported = true;
        Some(FailoverCause::Failing)
    }

    /// An expected failover is swallowed (once each); FAILING never is.
    fn swallow(&mut self, cause: &FailoverCause) -> bool {
        if self.expected_failovers == 0 || *cause == FailoverCause::Failing {
            return false;
        }
        self.expected_failovers -= 1;
        true
    }

    /// Exact mode: the new `RECOVERABLE_FAILOVER` records (an unreadable history reveals
    /// nothing; the next readable one does).
    fn failovers_in_history(&mut self, history: Option<&[HistoryRecord]>) -> Vec<FailoverCause> {
        let (Some(records), Some(floor)) = (history, self.history_floor_ms) else {
            return Vec::new();
        };
        let mut fresh: Vec<i64> = records
            .iter()
            .filter(|r| r.start_ms > floor && r.trigger == RescaleTrigger::RecoverableFailover)
            .map(|r| r.start_ms)
            .collect();
        fresh.sort_unstable();
        let newest = records.iter().map(|r| r.start_ms).max().unwrap_or(floor);
        self.history_floor_ms = Some(newest.max(floor));
        fresh
            .into_iter()
            .map(|at_ms| FailoverCause::RecoverableFailover { at_ms })
            .collect()
    }

    /// Counting mode: a new exception entry, `FAILING`, or restarts beyond the expected
    /// ones (reported only when nothing else explains them).
    fn counted(
        &mut self,
        num_restarts: Option<u64>,
        latest_exception_ms: Option<i64>,
        failing: Option<FailoverCause>,
    ) -> Vec<FailoverCause> {
        let mut out = Vec::new();
        if let Some(at) = latest_exception_ms {
            if self.latest_exception_ms.is_none_or(|prev| at > prev) {
                self.latest_exception_ms = Some(at);
                out.push(FailoverCause::NewException { at_ms: at });
            }
        }
        out.extend(failing);
        match (self.restarts_baseline, num_restarts) {
            (None, Some(n)) => self.restarts_baseline = Some(n),
            (Some(base), Some(n)) if n < base => self.restarts_baseline = Some(n), // counter reset (JM failover)
            (Some(base), Some(n)) => {
                let restarts = n - base;
                let unexplained = restarts.saturating_sub(self.expected_restarts);
                if unexplained > self.reported_restarts {
                    self.reported_restarts = unexplained;
                    // only report when no exception explained it already
                    if out.is_empty() {
                        out.push(FailoverCause::UnexpectedRestarts {
                            restarts,
                            expected: self.expected_restarts,
                        });
                    }
                }
            }
            _ => {}
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_beyond_the_rescale_allowance_are_failovers() {
        let mut w = FailoverWatch::new(Some(5), None);
        assert!(w.observe(JobStatus::Running, Some(5), None).is_empty());
        assert_eq!(
            w.observe(JobStatus::Restarting, Some(6), None),
            vec![FailoverCause::UnexpectedRestarts {
                restarts: 1,
                expected: 0
            }]
        );
        assert!(w.observe(JobStatus::Running, Some(6), None).is_empty());
        let mut w = FailoverWatch::new(Some(5), None);
        w.expect_restarts(2);
        assert!(w.observe(JobStatus::Running, Some(7), None).is_empty());
        assert_eq!(
            w.observe(JobStatus::Running, Some(8), None),
            vec![FailoverCause::UnexpectedRestarts {
                restarts: 3,
                expected: 2
            }]
        );
        assert_eq!(
            w.observe(JobStatus::Failing, Some(8), None),
            vec![FailoverCause::Failing]
        );
        assert!(w.observe(JobStatus::Failing, Some(8), None).is_empty());
    }

    /// Exact mode (2.3 rescale history): only new RECOVERABLE_FAILOVER records count; our
    /// own UPDATE_REQUIREMENT and NEW_RESOURCE_AVAILABLE restarts, the restart counter and
    /// the exception history do not; expected failovers are swallowed once each.
    #[test]
    fn history_tells_own_rescales_from_failovers() {
        let rec = |start_ms, trigger| HistoryRecord { start_ms, trigger };
        let mut history = vec![rec(100, RescaleTrigger::InitialSchedule)];
        let mut w = FailoverWatch::new(Some(0), None).with_history(&history);
        assert!(w.exact());
        history.insert(0, rec(200, RescaleTrigger::UpdateRequirement));
        history.insert(0, rec(300, RescaleTrigger::NewResourceAvailable));
        // restarts and a new exception are ignored in exact mode
        let seen = w.observe_with_history(JobStatus::Running, Some(7), Some(400), Some(&history));
        assert!(seen.is_empty(), "{seen:?}");
        history.insert(0, rec(500, RescaleTrigger::RecoverableFailover));
        history.insert(0, rec(600, RescaleTrigger::RecoverableFailover));
        assert_eq!(
            w.observe_with_history(JobStatus::Running, None, None, Some(&history)),
            vec![
                FailoverCause::RecoverableFailover { at_ms: 500 },
                FailoverCause::RecoverableFailover { at_ms: 600 }
            ]
        );
        // each record once; an unreadable history reveals nothing
        assert!(w
            .observe_with_history(JobStatus::Running, None, None, Some(&history))
            .is_empty());
        assert!(w
            .observe_with_history(JobStatus::Running, None, None, None)
            .is_empty());
        w.expect_failovers(1);
        history.insert(0, rec(700, RescaleTrigger::RecoverableFailover));
        history.insert(0, rec(800, RescaleTrigger::RecoverableFailover));
        assert_eq!(
            w.observe_with_history(JobStatus::Running, None, None, Some(&history)),
            vec![FailoverCause::RecoverableFailover { at_ms: 800 }]
        );
    }

    /// Counting mode swallows expected failovers too (reactive scale-down), never FAILING.
    #[test]
    fn expected_failovers_are_not_reported() {
        let mut w = FailoverWatch::new(Some(0), Some(10));
        w.expect_failovers(1);
        assert!(w.observe(JobStatus::Running, Some(1), Some(20)).is_empty());
        assert_eq!(
            w.observe(JobStatus::Failing, Some(1), Some(20)),
            vec![FailoverCause::Failing]
        );
        assert_eq!(
            w.observe(JobStatus::Running, Some(1), Some(30)),
            vec![FailoverCause::NewException { at_ms: 30 }]
        );
    }
}

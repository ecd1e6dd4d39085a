//! Failover detection across observations of one job: a new exception-history entry,
//! `FAILING`, or restarts beyond those the rescales in flight explain (each restart a
//! rescale step takes in place is expected, see [`FailoverWatch::expect_restarts`]).
//! Used by the [`rescale`](super::rescale) state machine and the apply loop.

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
}

impl FailoverCause {
    /// Stable label value.
    pub fn as_str(&self) -> &'static str {
        match self {
            FailoverCause::NewException { .. } => "new_exception",
            FailoverCause::Failing => "failing",
            FailoverCause::UnexpectedRestarts { .. } => "unexpected_restarts",
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
        }
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
        let mut out = Vec::new();
        if let Some(at) = latest_exception_ms {
            if self.latest_exception_ms.is_none_or(|prev| at > prev) {
                self.latest_exception_ms = Some(at);
                out.push(FailoverCause::NewException { at_ms: at });
            }
        }
        if status == JobStatus::Failing {
            if !self.failing_reported {
                self.failing_reported = true;
                out.push(FailoverCause::Failing);
            }
        } else {
            self.failing_reported = false;
        }
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
}

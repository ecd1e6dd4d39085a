//! Pure staleness check of a persisted decision: a restarted (or newly elected) scaler
//! must never apply a decision made too long ago, against another plan, or against an
//! older generation of the scale target.

use chrono::{DateTime, Duration, Utc};

use crate::core::Plan;

use super::state::PersistedDecision;

/// Clock skew tolerated for a `decided_at` in the future.
pub const MAX_CLOCK_SKEW: Duration = Duration::seconds(60);

/// Verdict of [`check_decision`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Staleness {
    /// Safe to apply.
    Fresh,
    /// Older than the maximum age.
    TooOld {
        /// Age in seconds.
        age_secs: i64,
    },
    /// `decided_at` lies in the future beyond [`MAX_CLOCK_SKEW`] (clock trouble).
    InFuture,
    /// The job no longer runs at the plan the decision was made against.
    PlanChanged,
    /// The scale target's `metadata.generation` moved since the decision.
    GenerationChanged {
        /// Generation when decided.
        decided: i64,
        /// Generation now.
        current: i64,
    },
}

impl Staleness {
    /// True when the decision may be applied.
    pub fn is_fresh(&self) -> bool {
        matches!(self, Staleness::Fresh)
    }

    /// Stable label value.
    pub fn as_str(&self) -> &'static str {
        match self {
            Staleness::Fresh => "fresh",
            Staleness::TooOld { .. } => "too_old",
            Staleness::InFuture => "in_future",
            Staleness::PlanChanged => "plan_changed",
            Staleness::GenerationChanged { .. } => "generation_changed",
        }
    }
}

/// Decides whether `decision` may still be applied at `now`, given the plan the job runs
/// at now and the target's current generation (None when unknown: not compared).
pub fn check_decision(
    decision: &PersistedDecision,
    now: DateTime<Utc>,
    max_age: Duration,
    current_plan: &Plan,
    current_generation: Option<i64>,
) -> Staleness {
    let age = now - decision.decided_at;
    if age > max_age {
        return Staleness::TooOld {
            age_secs: age.num_seconds(),
        };
    }
    if -age > MAX_CLOCK_SKEW {
        return Staleness::InFuture;
    }
    if let (Some(decided), Some(current)) = (decision.observed_generation, current_generation) {
        if decided != current {
            return Staleness::GenerationChanged { decided, current };
        }
    }
    if &decision.current != current_plan {
        return Staleness::PlanChanged;
    }
    Staleness::Fresh
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::core::VertexId;

    fn plan(p: u32, tms: u32) -> Plan {
        let mut parallelism = BTreeMap::new();
        parallelism.insert(VertexId::new("a"), p);
        Plan {
            parallelism,
            task_managers: tms,
        }
    }

    fn decision(at: DateTime<Utc>, generation: Option<i64>) -> PersistedDecision {
        PersistedDecision {
            id: 7,
            decided_at: at,
            observed_generation: generation,
            current: plan(2, 1),
            target: plan(4, 2),
            reason: "scale_up".into(),
            applied: false,
        }
    }

    /// Each staleness rule fires on its own input and only then.
    #[test]
    fn every_rule_discards_its_case() {
        let t0 = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let max_age = Duration::seconds(120);
        let d = decision(t0, Some(3));
        let cur = plan(2, 1);
        assert_eq!(
            check_decision(&d, t0 + Duration::seconds(30), max_age, &cur, Some(3)),
            Staleness::Fresh
        );
        assert_eq!(
            check_decision(&d, t0 + Duration::seconds(121), max_age, &cur, Some(3)),
            Staleness::TooOld { age_secs: 121 }
        );
        assert_eq!(
            check_decision(&d, t0 - Duration::seconds(61), max_age, &cur, Some(3)),
            Staleness::InFuture
        );
        assert!(check_decision(&d, t0 - Duration::seconds(30), max_age, &cur, Some(3)).is_fresh());
        assert_eq!(
            check_decision(&d, t0, max_age, &plan(3, 2), Some(3)),
            Staleness::PlanChanged
        );
        assert_eq!(
            check_decision(&d, t0, max_age, &cur, Some(4)),
            Staleness::GenerationChanged {
                decided: 3,
                current: 4
            }
        );
        assert!(
            check_decision(&d, t0, max_age, &cur, None).is_fresh(),
            "unknown generation is not compared"
        );
    }
}

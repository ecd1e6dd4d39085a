//! Scale-up confirmation (`scaleUpDelay`; 0, the default, scales up at once).
//!
//! Right after a load step the first ticks see a saturated vertex: busy time caps at
//! 1.0, the records it processes are its capacity, and the backlog growth that reveals
//! the real demand shows a few seconds later (it first fills network buffers, then the
//! source's `pendingRecords`). Sizing from the first over-utilized tick under-sizes the
//! step and takes a second rescale. With a delay, a scale-up is applied only after it
//! was recommended on every tick for that long, at the **highest** recommendation seen
//! in the window — the mirror of the scale-down delay.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{
    decision::{Reason, Rule},
    policy::Policy,
    state::ScaleUpWindow,
    topology::VertexId,
};

/// Parallelism to go on with, the window to persist, and a hold while waiting.
#[derive(Debug, Clone, PartialEq)]
pub struct Confirmed {
    /// Parallelism per vertex.
    pub parallelism: BTreeMap<VertexId, u32>,
    /// The window to persist (`None` closes it).
    pub window: Option<ScaleUpWindow>,
    /// Set while the scale-up waits for its window.
    pub hold: Option<Reason>,
}

/// Applies the confirmation window to `proposed` against `current`.
pub fn confirm(
    current: &BTreeMap<VertexId, u32>,
    proposed: BTreeMap<VertexId, u32>,
    window: Option<&ScaleUpWindow>,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Confirmed {
    let grows = proposed
        .iter()
        .any(|(v, p)| current.get(v).is_some_and(|c| p > c));
    if policy.scale_up_delay.is_zero() || !grows {
        return Confirmed {
            parallelism: proposed,
            window: None,
            hold: None,
        };
    }
    let mut w = window.cloned().unwrap_or_else(|| ScaleUpWindow {
        started_at: now,
        highest: BTreeMap::new(),
    });
    for (v, p) in &proposed {
        let h = w.highest.entry(v.clone()).or_insert(*p);
        *h = (*h).max(*p);
    }
    let delay = chrono::Duration::from_std(policy.scale_up_delay).unwrap_or(chrono::TimeDelta::MAX);
    let open_for = now.signed_duration_since(w.started_at);
    if open_for < delay {
        let remaining = (delay - open_for).num_milliseconds() as f64 / 1000.0;
        let hold = Reason::new(
            Rule::ScaleUpDelayed,
            format!(
                "scale-up recommended for {:.0}s, confirming {remaining:.0}s more",
                open_for.num_milliseconds() as f64 / 1000.0
            ),
        )
        .input("open_s", open_for.num_milliseconds() as f64 / 1000.0)
        .input("remaining_s", remaining);
        return Confirmed {
            parallelism: current.clone(),
            window: Some(w),
            hold: Some(hold),
        };
    }
    // confirmed: every vertex at the highest recommendation of the window (never below
    // what this tick proposes)
    let parallelism = proposed
        .iter()
        .map(|(v, p)| (v.clone(), w.highest.get(v).copied().unwrap_or(*p).max(*p)))
        .collect();
    Confirmed {
        parallelism,
        window: Some(w),
        hold: None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn v(id: &str) -> VertexId {
        VertexId(id.to_string())
    }

    fn plan(a: u32, b: u32) -> BTreeMap<VertexId, u32> {
        [(v("a"), a), (v("b"), b)].into_iter().collect()
    }

    fn policy(delay_s: u64) -> Policy {
        Policy {
            scale_up_delay: Duration::from_secs(delay_s),
            ..Policy::test()
        }
    }

    #[test]
    fn zero_delay_scales_up_at_once() {
        let c = confirm(&plan(1, 1), plan(2, 1), None, &policy(0), Utc::now());
        assert_eq!((c.parallelism, c.window, c.hold), (plan(2, 1), None, None));
    }

    #[test]
    fn holds_then_applies_the_highest_recommendation_of_the_window() {
        let t0 = Utc::now();
        let p = policy(10);
        let current = plan(1, 1);
        let c = confirm(&current, plan(2, 1), None, &p, t0);
        assert_eq!(c.parallelism, current);
        assert_eq!(c.hold.as_ref().map(|h| h.rule), Some(Rule::ScaleUpDelayed));
        let w = c.window.expect("window opened");
        // the demand shows: 4 recommended 6 s later, 3 at 10 s; 4 is applied
        let c = confirm(
            &current,
            plan(4, 1),
            Some(&w),
            &p,
            t0 + chrono::Duration::seconds(6),
        );
        assert_eq!(c.parallelism, current);
        let w = c.window.expect("window kept");
        let c = confirm(
            &current,
            plan(3, 1),
            Some(&w),
            &p,
            t0 + chrono::Duration::seconds(10),
        );
        assert_eq!(c.hold, None);
        assert_eq!(c.parallelism, plan(4, 1));
    }

    #[test]
    fn a_tick_without_scale_up_closes_the_window() {
        let t0 = Utc::now();
        let p = policy(10);
        let c = confirm(&plan(1, 1), plan(2, 1), None, &p, t0);
        assert!(c.window.is_some());
        let c = confirm(
            &plan(1, 1),
            plan(1, 1),
            c.window.as_ref(),
            &p,
            t0 + chrono::Duration::seconds(5),
        );
        assert_eq!((c.window, c.hold), (None, None));
    }
}

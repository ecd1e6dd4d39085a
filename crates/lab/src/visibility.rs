//! When a load change became visible in Prometheus. A sample sees it at the first
//! observation whose produced rate shows the new rate (within [`VISIBLE_FRACTION`]); the
//! change was visible at some instant since the previous sample, and the observer finds
//! that instant afterwards with a range query every [`VISIBLE_STEP_S`]
//! (`Observer::refine_visible`, an [`EventKind::Visible`] event). The figures read that
//! instant when there is one.

use crate::timeline::{EventKind, Point, Timeline};

/// Fraction of the new rate at which the step counts as visible.
pub const VISIBLE_FRACTION: f64 = 0.9;
/// Resolution of the range query that finds the instant (a tenth of the lab's scrape).
pub const VISIBLE_STEP_S: f64 = 0.1;

/// One load change and the first sample that showed it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Visibility {
    /// When the rate changed (scenario seconds).
    pub changed_at: f64,
    /// Records/s after the change.
    pub new_rate: f64,
    /// A step up.
    pub up: bool,
    /// The first sample of the phase showing the new rate.
    pub sampled_at: Option<f64>,
}

impl Visibility {
    /// The change into the phase of `in_phase` (its samples, in time order).
    pub fn of(changed_at: f64, in_phase: &[&Point], up: bool) -> Self {
        let new_rate = in_phase.first().map_or(0.0, |p| p.input_rate);
        let mut v = Self {
            changed_at,
            new_rate,
            up,
            sampled_at: None,
        };
        v.sampled_at = in_phase
            .iter()
            .find(|p| p.produced_rate.is_some_and(|r| v.shows(r)))
            .map(|p| p.at);
        v
    }

    /// A produced rate of `rate` records/s shows the new rate.
    pub fn shows(&self, rate: f64) -> bool {
        if self.up {
            rate >= VISIBLE_FRACTION * self.new_rate
        } else {
            rate <= self.new_rate / VISIBLE_FRACTION
        }
    }

    /// The first instant of a range query's `(instant, produced rate)` values that shows
    /// the new rate, no earlier than the change.
    pub fn first_showing(&self, values: &[(f64, f64)]) -> Option<f64> {
        values
            .iter()
            .find(|(at, rate)| *at >= self.changed_at && self.shows(*rate))
            .map(|(at, _)| *at)
    }

    /// When Prometheus first showed the change: the exact instant (a `Visible` event
    /// between the change and the sample) when the observer found it, else the sample.
    pub fn at(&self, t: &Timeline) -> Option<f64> {
        let sampled = self.sampled_at?;
        let exact = t
            .events
            .iter()
            .filter(|e| e.kind == EventKind::Visible)
            .map(|e| e.at)
            .find(|at| (self.changed_at..=sampled).contains(at));
        Some(exact.unwrap_or(sampled))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: f64, produced: f64) -> Point {
        Point {
            at,
            phase: "step",
            input_rate: 300.0,
            produced_rate: Some(produced),
            ..Point::default()
        }
    }

    #[test]
    fn the_first_sample_showing_the_new_rate_unless_an_exact_instant_precedes_it() {
        let points = [
            sample(10.0, 100.0),
            sample(11.0, 260.0),
            sample(12.0, 300.0),
        ];
        let in_phase: Vec<&Point> = points.iter().collect();
        let v = Visibility::of(9.6, &in_phase, true);
        assert_eq!(v.sampled_at, Some(12.0), "260 < 0.9 × 300");
        let mut t = Timeline::default();
        assert_eq!(v.at(&t), Some(12.0));
        // an instant outside the change's window belongs to another change
        t.push_event(12.5, EventKind::Visible, "300 records/s");
        assert_eq!(v.at(&t), Some(12.0));
        t.push_event(11.3, EventKind::Visible, "300 records/s");
        assert_eq!(v.at(&t), Some(11.3));
    }

    #[test]
    fn the_first_instant_of_a_range_showing_the_new_rate() {
        let v = Visibility {
            changed_at: 10.0,
            new_rate: 300.0,
            up: true,
            sampled_at: Some(11.0),
        };
        let values = [
            (9.9, 300.0),
            (10.0, 100.0),
            (10.1, 200.0),
            (10.2, 280.0),
            (10.3, 300.0),
        ];
        assert_eq!(
            v.first_showing(&values),
            Some(10.2),
            "9.9 is before the change"
        );
        assert_eq!(v.first_showing(&values[..3]), None);
    }

    #[test]
    fn a_step_down_is_visible_once_the_rate_is_within_the_fraction_above_the_new_rate() {
        let v = Visibility {
            changed_at: 0.0,
            new_rate: 90.0,
            up: false,
            sampled_at: None,
        };
        assert!(v.shows(100.0));
        assert!(!v.shows(101.0));
    }
}

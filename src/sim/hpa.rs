//! The Kubernetes HPA as KEDA drives it: a sync every 15 s, the AverageValue replica
//! calculation with the 10 % tolerance, the default scale-up rate limit and the 300 s
//! scale-down stabilization window. Pure.

use std::collections::VecDeque;

use super::constants::{HPA_SCALE_DOWN_STABILIZATION_S, HPA_SYNC_PERIOD_S, HPA_TOLERANCE};

/// HPA state for one scale target.
#[derive(Debug, Clone)]
pub struct Hpa {
    /// Current replicas.
    pub replicas: u32,
    /// `minReplicas`.
    pub min: u32,
    /// `maxReplicas`.
    pub max: u32,
    /// Tolerance (default 0.1).
    pub tolerance: f64,
    next_sync: f64,
    recommendations: VecDeque<(f64, u32)>,
}

impl Hpa {
    /// An HPA at `replicas` within `[min, max]`, default tolerance.
    pub fn new(replicas: u32, min: u32, max: u32) -> Self {
        Self {
            replicas,
            min,
            max,
            tolerance: HPA_TOLERANCE,
            next_sync: 0.0,
            recommendations: VecDeque::new(),
        }
    }

    /// Runs a sync if one is due at `now`, for an external metric of `usage` (sum of the
    /// values) against an AverageValue `target` per replica. Returns the new replica count
    /// when it changed.
    pub fn sync(&mut self, now: f64, usage: f64, target: f64) -> Option<u32> {
        if now < self.next_sync {
            return None;
        }
        self.next_sync = now + HPA_SYNC_PERIOD_S;
        let current = self.replicas.max(1);
        let ratio = usage / (target * f64::from(current));
        // Kubernetes ≥ 1.33 `Tolerances.isWithin`: (1 − tol) ≤ ratio ≤ (1 + tol)
        let within = (1.0 - self.tolerance) <= ratio && ratio <= (1.0 + self.tolerance);
        let raw = if within || !ratio.is_finite() {
            current
        } else {
            let d = (usage / target).ceil();
            if d.is_finite() && d > 0.0 {
                d.min(f64::from(u32::MAX)) as u32
            } else {
                0
            }
        };
        let rec = raw.clamp(self.min, self.max);
        self.recommendations.push_back((now, rec));
        while self
            .recommendations
            .front()
            .is_some_and(|(t, _)| *t < now - HPA_SCALE_DOWN_STABILIZATION_S)
        {
            self.recommendations.pop_front();
        }
        let new = if rec > current {
            // default scaleUp policies: max(100 %, 4 pods) per 15 s
            rec.min((current * 2).max(current + 4))
        } else {
            // scale-down stabilization: the highest recommendation of the window
            let highest = self
                .recommendations
                .iter()
                .map(|(_, r)| *r)
                .max()
                .unwrap_or(rec);
            highest.min(current)
        };
        (new != self.replicas).then(|| {
            self.replicas = new;
            new
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_percent_tolerance_blocks_ten_to_eleven() {
        let mut h = Hpa::new(10, 1, 20);
        assert_eq!(h.sync(0.0, 11.0, 1.0), None);
        assert_eq!(h.sync(15.0, 12.0, 1.0), Some(12));
    }

    #[test]
    fn scale_down_waits_for_the_stabilization_window() {
        let mut h = Hpa::new(8, 1, 20);
        let mut t = 0.0;
        let mut first_down = None;
        while t < 600.0 {
            if h.sync(t, 2.0, 1.0).is_some() && first_down.is_none() {
                first_down = Some(t);
            }
            t += 15.0;
        }
        // the initial "8" recommendation is not in the window; first sync already says 2,
        // so the window only holds lower values: scale-down on the first sync is allowed
        assert_eq!(h.replicas, 2);
        let mut h = Hpa::new(2, 1, 20);
        h.sync(0.0, 8.0, 1.0);
        assert_eq!(h.replicas, 6, "scale-up rate limit max(2x, +4)");
        h.sync(15.0, 8.0, 1.0);
        assert_eq!(h.replicas, 8);
        let mut down_at = None;
        let mut t = 30.0;
        while t < 800.0 {
            if h.sync(t, 2.0, 1.0).is_some() && down_at.is_none() {
                down_at = Some(t);
            }
            t += 15.0;
        }
        let d = down_at.unwrap_or(f64::INFINITY);
        assert!(
            d >= 15.0 + HPA_SCALE_DOWN_STABILIZATION_S,
            "scaled down at {d}"
        );
        assert!(first_down.is_some());
    }
}

//! The Kubernetes HPA as KEDA drives it: a sync every 15 s, the AverageValue replica
//! calculation with the 10 % tolerance, the default scale-up rate limit and the 300 s
//! scale-down stabilization window. Pure; the simulator and the lab's KEDA/HPA driver
//! (`fks-lab`) both use it.
//!
//! Sources (Kubernetes docs, "Horizontal Pod Autoscaling" → "Algorithm details",
//! "Stabilization window", "Default Policies"): `desired = ceil(sum / target)` for an
//! `AverageValue` external metric, unchanged while `|1 − sum / (target × current)| ≤
//! tolerance`; clamped to `[minReplicas, maxReplicas]`; scale-up at most
//! `max(100 %, 4 pods)` per 15 s; scale-down to the highest recommendation of the window.

use std::collections::VecDeque;

use super::constants::{
    HPA_SCALE_DOWN_STABILIZATION_S, HPA_SCALE_UP_PERCENT, HPA_SCALE_UP_PODS, HPA_SYNC_PERIOD_S,
    HPA_TOLERANCE,
};

/// HPA settings: the scale target's bounds and the controller's documented defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct HpaConfig {
    /// `minReplicas`.
    pub min: u32,
    /// `maxReplicas`.
    pub max: u32,
    /// `--horizontal-pod-autoscaler-tolerance` (default 0.1).
    pub tolerance: f64,
    /// `--horizontal-pod-autoscaler-sync-period` in seconds (default 15).
    pub sync_period_s: f64,
    /// `behavior.scaleDown.stabilizationWindowSeconds` (default 300).
    pub scale_down_stabilization_s: f64,
    /// `behavior.scaleUp.policies`, `type: Percent` per sync (default 100).
    pub scale_up_percent: f64,
    /// `behavior.scaleUp.policies`, `type: Pods` per sync (default 4); the HPA takes the
    /// larger of the two (`selectPolicy: Max`).
    pub scale_up_pods: u32,
}

impl HpaConfig {
    /// `[min, max]` with every default.
    pub fn new(min: u32, max: u32) -> Self {
        Self {
            min,
            max,
            tolerance: HPA_TOLERANCE,
            sync_period_s: HPA_SYNC_PERIOD_S,
            scale_down_stabilization_s: HPA_SCALE_DOWN_STABILIZATION_S,
            scale_up_percent: HPA_SCALE_UP_PERCENT,
            scale_up_pods: HPA_SCALE_UP_PODS,
        }
    }

    /// `[min, max]` with the `behavior` the project's example ScaledObjects ship
    /// (`manifests/examples/flinkdeployment-*.yaml`): no scale-down stabilization (the
    /// core settles and merges scale-downs itself, and its report never rises while a
    /// scale-down drains) and a scale-up of up to `max` pods per sync, so the core's
    /// whole step lands in one sync.
    pub fn shipped(min: u32, max: u32) -> Self {
        Self {
            scale_down_stabilization_s: 0.0,
            scale_up_pods: max,
            ..Self::new(min, max)
        }
    }

    /// The most pods a scale-up may reach in one sync from `current` (Kubernetes
    /// `calculateScaleUpLimitWithScalingRules`: `ceil(current × (1 + percent/100))` or
    /// `current + pods`, the larger).
    fn scale_up_limit(&self, current: u32) -> u32 {
        let by_percent = (f64::from(current) * (1.0 + self.scale_up_percent / 100.0))
            .ceil()
            .clamp(0.0, f64::from(u32::MAX)) as u32;
        by_percent.max(current.saturating_add(self.scale_up_pods))
    }
}

/// HPA state for one scale target.
#[derive(Debug, Clone)]
pub struct Hpa {
    /// Current replicas.
    pub replicas: u32,
    /// Settings.
    pub config: HpaConfig,
    next_sync: f64,
    recommendations: VecDeque<(f64, u32)>,
}

impl Hpa {
    /// An HPA at `replicas` within `[min, max]`, default tolerance, sync period and
    /// stabilization window.
    pub fn new(replicas: u32, min: u32, max: u32) -> Self {
        Self::with_config(replicas, HpaConfig::new(min, max))
    }

    /// An HPA at `replicas` with `config`.
    pub fn with_config(replicas: u32, config: HpaConfig) -> Self {
        Self {
            replicas,
            config,
            next_sync: 0.0,
            recommendations: VecDeque::new(),
        }
    }

    /// Runs a sync if one is due at `now` (seconds), for an external metric of `usage`
    /// (sum of the values) against an AverageValue `target` per replica, and applies it.
    /// Returns the new replica count when it changed.
    pub fn sync(&mut self, now: f64, usage: f64, target: f64) -> Option<u32> {
        if now < self.next_sync {
            return None;
        }
        self.next_sync = now + self.config.sync_period_s;
        let new = self.desired(now, usage, target)?;
        (new != self.replicas).then(|| {
            self.replicas = new;
            new
        })
    }

    /// One replica calculation at `now` (seconds) from the current [`Hpa::replicas`]:
    /// records the recommendation and returns the count the HPA sets, without setting it
    /// (a caller that cannot reach it — a pod that does not start — keeps `replicas`).
    /// `None` when the metric is unusable (non-positive target, non-finite usage): the
    /// HPA then changes nothing.
    pub fn desired(&mut self, now: f64, usage: f64, target: f64) -> Option<u32> {
        if target <= 0.0 || !usage.is_finite() {
            return None;
        }
        let current = self.replicas.max(1);
        let ratio = usage / (target * f64::from(current));
        // Kubernetes ≥ 1.33 `Tolerances.isWithin`: (1 − tol) ≤ ratio ≤ (1 + tol)
        let within =
            (1.0 - self.config.tolerance) <= ratio && ratio <= (1.0 + self.config.tolerance);
        let raw = if within || !ratio.is_finite() {
            current
        } else {
            (usage / target).ceil().clamp(0.0, f64::from(u32::MAX)) as u32
        };
        let rec = raw.clamp(self.config.min, self.config.max);
        self.recommendations.push_back((now, rec));
        while self
            .recommendations
            .front()
            .is_some_and(|(t, _)| *t < now - self.config.scale_down_stabilization_s)
        {
            self.recommendations.pop_front();
        }
        Some(if rec > current {
            // scaleUp policies (default max(100 %, 4 pods) per 15 s)
            rec.min(self.config.scale_up_limit(current))
        } else {
            // scale-down stabilization: the highest recommendation of the window
            let highest = self
                .recommendations
                .iter()
                .map(|(_, r)| *r)
                .max()
                .unwrap_or(rec);
            highest.min(current)
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
    fn average_value_math_with_tolerance() {
        let d = |current: u32, sum: f64, target: f64| {
            Hpa::new(current, 0, 100).desired(0.0, sum, target)
        };
        // within 10 %: unchanged
        assert_eq!(d(10, 10.5, 1.0), Some(10));
        assert_eq!(d(10, 9.0, 1.0), Some(10));
        // outside: ceil(sum / target)
        assert_eq!(d(10, 11.5, 1.0), Some(12));
        assert_eq!(d(1, 3.0, 1.0), Some(3));
        assert_eq!(d(3, 2.0, 1.0), Some(2));
        assert_eq!(d(2, 5.0, 2.0), Some(3));
        // with more than 10 replicas a one-replica step is not applied
        assert_eq!(d(11, 12.0, 1.0), Some(11));
        assert_eq!(d(0, 2.0, 1.0), Some(2));
        // a metric the HPA cannot use changes nothing
        assert_eq!(d(2, 5.0, 0.0), None);
        assert_eq!(d(2, f64::NAN, 1.0), None);
    }

    #[test]
    fn min_max_clamp() {
        let d = |current: u32, sum: f64| Hpa::new(current, 1, 3).desired(0.0, sum, 1.0);
        assert_eq!(d(2, 0.0), Some(1));
        assert_eq!(d(2, 7.0), Some(3));
        assert_eq!(d(2, 2.0), Some(2));
    }

    #[test]
    fn scale_up_is_rate_limited_to_double_or_four_pods() {
        let d = |current: u32, sum: f64| Hpa::new(current, 1, 100).desired(0.0, sum, 1.0);
        assert_eq!(d(2, 8.0), Some(6), "max(2x, +4)");
        assert_eq!(d(10, 40.0), Some(20), "max(2x, +4)");
        let shipped = |current: u32, sum: f64| {
            Hpa::with_config(current, HpaConfig::shipped(1, 16)).desired(0.0, sum, 1.0)
        };
        assert_eq!(shipped(2, 15.0), Some(15), "the whole step in one sync");
        assert_eq!(shipped(4, 40.0), Some(16), "bounded by max");
    }

    #[test]
    fn shipped_behaviour_scales_down_at_the_first_lower_sync() {
        let mut h = Hpa::with_config(8, HpaConfig::shipped(1, 16));
        assert_eq!(h.sync(0.0, 8.0, 1.0), None);
        assert_eq!(h.sync(15.0, 3.0, 1.0), Some(3));
    }

    #[test]
    fn scale_down_takes_the_highest_recommendation_of_the_window() {
        let mut h = Hpa::with_config(
            3,
            HpaConfig {
                scale_down_stabilization_s: 20.0,
                ..HpaConfig::new(1, 10)
            },
        );
        assert_eq!(h.desired(0.0, 3.0, 1.0), Some(3));
        // 3 still within the window: stays at 3
        assert_eq!(h.desired(10.0, 1.0, 1.0), Some(3));
        assert_eq!(h.desired(15.0, 1.0, 1.0), Some(3));
        // 3 left the window: 1
        assert_eq!(h.desired(25.0, 1.0, 1.0), Some(1));
        h.replicas = 1;
        // scale-up is immediate
        assert_eq!(h.desired(26.0, 2.0, 1.0), Some(2));
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

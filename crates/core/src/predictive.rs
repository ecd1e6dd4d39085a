//! Predictive pre-scaling: a TaskManager floor raised ahead of recurring peaks from the
//! input rate seen one period ago (yesterday / last week). In the scaler the history is one
//! PromQL query per tick (`max_over_time(<source input rate>[lead:1m] offset (period -
//! lead))`, see `runtime::pipeline`); in the simulator it is the trace over
//! `[t − period, t − period + lead]`. The floor is a pure function used by both; the core
//! applies it through [`super::observation::Observation::predicted_floor`].

/// Options of predictive pre-scaling.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PredictiveConfig {
    /// Seasonality period (s): 86 400 for "same time yesterday", 604 800 for last week.
    pub period_s: f64,
    /// How far ahead to provision (s); should exceed the scale-up reaction time
    /// (TaskManager start-up + checkpoint wait + decision delay).
    pub lead_s: f64,
    /// Multiplier on the past rate (≥ 1) for growth / safety margin.
    pub headroom: f64,
    /// Only pre-scale for a surge: the floor applies when the predicted peak exceeds the
    /// current input rate by more than this fraction (slow changes are left to the
    /// reactive rules, so the floor does not spend the hourly rescale budget in small
    /// steps).
    pub min_rise: f64,
}

impl Default for PredictiveConfig {
    /// 1 day period, 15 min lead, 10 % headroom, surges above +30 %.
    fn default() -> Self {
        Self {
            period_s: 86_400.0,
            lead_s: 900.0,
            headroom: 1.1,
            min_rise: 0.3,
        }
    }
}

/// TaskManager floor for the coming `lead`: enough TaskManagers to carry the highest past
/// input rate of the look-ahead window (`past_rates`, e.g. yesterday's rates over
/// `[now, now + lead]`) times `headroom`, at `rate_per_task_manager` records/s per
/// TaskManager (at the policy's target utilization).
///
/// `None` (no floor) when there is no usable history, or when the predicted peak is not a
/// surge: at most `current_rate × (1 + min_rise)`.
pub fn predictive_floor(
    past_rates: &[f64],
    current_rate: f64,
    cfg: &PredictiveConfig,
    rate_per_task_manager: f64,
) -> Option<u32> {
    let peak = past_rates
        .iter()
        .copied()
        .filter(|r| r.is_finite() && *r >= 0.0)
        .fold(None, |acc: Option<f64>, r| {
            Some(acc.map_or(r, |a| a.max(r)))
        })?;
    if !(rate_per_task_manager.is_finite()
        && rate_per_task_manager > 0.0
        && cfg.headroom.is_finite()
        && current_rate.is_finite())
    {
        return None;
    }
    if peak <= current_rate.max(0.0) * (1.0 + cfg.min_rise.max(0.0)) {
        return None;
    }
    let n = (peak * cfg.headroom.max(0.0) / rate_per_task_manager).ceil();
    Some(if n >= 1.0 {
        n.min(f64::from(u32::MAX)) as u32
    } else {
        1
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(headroom: f64) -> PredictiveConfig {
        PredictiveConfig {
            headroom,
            ..PredictiveConfig::default()
        }
    }

    #[test]
    fn floor_covers_the_highest_past_rate_of_a_surge() {
        let f = predictive_floor(&[1_000.0, 3_000.0, 2_000.0], 1_000.0, &cfg(1.0), 1_000.0);
        assert_eq!(f, Some(3));
        let f = predictive_floor(&[3_001.0], 1_000.0, &cfg(1.0), 1_000.0);
        assert_eq!(f, Some(4));
        let f = predictive_floor(&[3_000.0], 1_000.0, &cfg(1.5), 1_000.0);
        assert_eq!(f, Some(5));
    }

    #[test]
    fn no_floor_without_a_surge() {
        // +20 % is below the default 30 % rise
        assert_eq!(
            predictive_floor(&[1_200.0], 1_000.0, &cfg(1.0), 100.0),
            None
        );
    }

    #[test]
    fn no_history_no_floor() {
        assert_eq!(predictive_floor(&[], 0.0, &cfg(1.1), 1_000.0), None);
        assert_eq!(predictive_floor(&[f64::NAN], 0.0, &cfg(1.1), 1_000.0), None);
        assert_eq!(predictive_floor(&[5.0], 0.0, &cfg(1.1), 0.0), None);
    }
}

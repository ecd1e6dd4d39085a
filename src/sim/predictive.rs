//! Predictive pre-scaling: a TaskManager floor raised ahead of recurring peaks from the
//! input rate seen one period ago (yesterday / last week). In the real scaler the input is
//! a PromQL query such as
//! `max_over_time(sum(rate(records_in[1m]))[15m:1m] offset 1d - 15m)`; in the simulator it
//! is the trace value over `[t − period, t − period + lead]`. The floor itself is a pure
//! function so the runtime can call it unchanged.

/// Options of predictive pre-scaling.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictiveConfig {
    /// Seasonality period (s): 86 400 for "same time yesterday", 604 800 for last week.
    pub period_s: f64,
    /// How far ahead to provision (s); should exceed the scale-up reaction time
    /// (TaskManager start-up + checkpoint wait + decision delay).
    pub lead_s: f64,
    /// Multiplier on the past rate (≥ 1) for growth / safety margin.
    pub headroom: f64,
}

impl Default for PredictiveConfig {
    /// 1 day period, 15 min lead, 10 % headroom.
    fn default() -> Self {
        Self {
            period_s: 86_400.0,
            lead_s: 900.0,
            headroom: 1.1,
        }
    }
}

/// TaskManager floor for the coming `lead`: enough TaskManagers to carry the highest past
/// input rate of the look-ahead window (`past_rates`, e.g. yesterday's rates over
/// `[now, now + lead]`) times `headroom`, at `rate_per_task_manager` records/s per
/// TaskManager (at the policy's target utilization). `None` when there is no history (or
/// inputs are unusable), i.e. no floor.
pub fn predictive_floor(
    past_rates: &[f64],
    headroom: f64,
    rate_per_task_manager: f64,
) -> Option<u32> {
    let peak = past_rates
        .iter()
        .copied()
        .filter(|r| r.is_finite() && *r >= 0.0)
        .fold(None, |acc: Option<f64>, r| {
            Some(acc.map_or(r, |a| a.max(r)))
        })?;
    if !(rate_per_task_manager.is_finite() && rate_per_task_manager > 0.0 && headroom.is_finite()) {
        return None;
    }
    let n = (peak * headroom.max(0.0) / rate_per_task_manager).ceil();
    Some(if n >= 1.0 {
        n.min(f64::from(u32::MAX)) as u32
    } else {
        1
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_covers_the_highest_past_rate() {
        let f = predictive_floor(&[1_000.0, 3_000.0, 2_000.0], 1.0, 1_000.0);
        assert_eq!(f, Some(3));
        let f = predictive_floor(&[3_001.0], 1.0, 1_000.0);
        assert_eq!(f, Some(4));
    }

    #[test]
    fn no_history_no_floor() {
        assert_eq!(predictive_floor(&[], 1.1, 1_000.0), None);
        assert_eq!(predictive_floor(&[f64::NAN], 1.1, 1_000.0), None);
        assert_eq!(predictive_floor(&[5.0], 1.1, 0.0), None);
    }
}

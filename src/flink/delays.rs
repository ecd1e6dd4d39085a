//! Flink's own rescale timings, judged against what the scaler asks for (issue 13 §5):
//! which of the adaptive scheduler's cooldown and stabilization settings would hold back
//! a rescale the scaler requests, by how much at most, and what to set instead. Pure;
//! every figure below was measured on real Flink 2.3.0 and 1.20.5 (README "Flink
//! prerequisites").
//!
//! * **Cooldown** (1.x `scaling-interval.min`, 2.x `executing.cooldown-after-rescaling`,
//!   30 s by default) starts when the job enters Executing — after every rescale *and*
//!   every failover. A requirements change inside it waits until it ends (a PUT right
//!   after a rescale waited 23–24 s on both lines). The scaler itself decides only
//!   `stabilization` after the job (re)entered RUNNING, so the cooldown delays it by at
//!   most `cooldown − stabilization`.
//! * **Executing stabilization** (2.x only, 60 s): a running job that gets *some* of the
//!   slots it asked for waits this long for the rest before rescaling. In reactive mode
//!   the job asks for maxParallelism slots, which never all arrive, so **every** reactive
//!   scale-up waits the full timeout (measured 60.4 s with the default, 3–10 s at 2 s).
//!   Otherwise only a scale-up whose TaskManagers register at different times waits — and
//!   must wait at least an HPA sync period for the pods of a raised scale-up
//!   (`core::rescale::raise`), which start one sync after the rest: 20–30 s.
//! * **Submission stabilization** (1.x `resource-stabilization-timeout`, 2.x
//!   `submission.resource-stabilization-timeout`): reactive mode makes it 0 unless it is
//!   set, and a set value is added to every failover — i.e. to every reactive scale-down
//!   (measured +2 s with 2 s).
//! * **Restart strategy** (reactive mode only): every reactive scale-down is a failover, so
//!   Flink's default `exponential-delay` back-off (1 s × 1.5 per failover, reset after 1 h)
//!   stops the n-th scale-down within an hour for ~1.5ⁿ⁻¹ s (measured 1.5 → 12 s).

use std::time::Duration;

use serde::Serialize;

use super::jm_config::{FlinkSetup, Timing, RESTART_STRATEGY};

/// Recommended upper bound of the cooldown, both lines (README prerequisites).
pub const COOLDOWN_MAX: Duration = Duration::from_secs(5);
/// Recommended upper bound of 2.x executing stabilization (not reactive): long enough for
/// the pods of a scale-up raised after the HPA's sync (started one sync later, 15 s by
/// default) to join the same restart, short enough not to hold a scale-up long for a pod
/// that never comes.
pub const EXECUTING_STAB_MAX: Duration = Duration::from_secs(30);
/// Recommended lower bound of 2.x executing stabilization (not reactive): one HPA sync
/// period (15 s by default) plus a pod start's spread (README "Flink prerequisites").
pub const EXECUTING_STAB_MIN: Duration = Duration::from_secs(20);
/// Recommended upper bound of 2.x executing stabilization in reactive mode.
pub const EXECUTING_STAB_MAX_REACTIVE: Duration = Duration::from_secs(5);

/// One Flink setting that holds back the scaler's rescales.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RescaleDelay {
    /// The Flink key to change (the current name on this line).
    pub key: &'static str,
    /// Its effective value (`None` for a non-duration setting such as the restart strategy).
    pub value: Option<Duration>,
    /// Longest delay it adds to one rescale the scaler asks for.
    pub delay: Duration,
    /// What it delays and what to set instead.
    pub advice: String,
}

impl RescaleDelay {
    /// `key`: one line, for logs and Events.
    pub fn summary(&self) -> String {
        format!("{}: {}", self.key, self.advice)
    }
}

fn secs(d: Duration) -> String {
    format!("{:.0}s", d.as_secs_f64())
}

/// The settings of `setup` that would hold back a rescale the scaler asks for, given the
/// scaler's own `stabilization` (the wait after the job enters RUNNING).
pub fn rescale_delays(setup: &FlinkSetup, stabilization: Duration) -> Vec<RescaleDelay> {
    let mut out = Vec::new();
    out.extend(cooldown(&setup.cooldown, stabilization));
    if let Some(e) = &setup.executing_stabilization {
        out.extend(executing_stabilization(e, setup.reactive));
    }
    if setup.reactive {
        out.extend(reactive_submission(&setup.submission_stabilization));
        out.extend(reactive_restart_strategy(setup.restart_strategy.as_deref()));
    }
    out
}

fn cooldown(t: &Timing, stabilization: Duration) -> Option<RescaleDelay> {
    let delay = t.value.saturating_sub(stabilization);
    (delay > Duration::ZERO && t.value > COOLDOWN_MAX).then(|| RescaleDelay {
        key: t.key,
        value: Some(t.value),
        delay,
        advice: format!(
            "Flink holds every rescale for {} after the job (re)starts; the scaler decides {} \
             after RUNNING, so its rescale can wait up to {} more. Set it to 0s–{}",
            secs(t.value),
            secs(stabilization),
            secs(delay),
            secs(COOLDOWN_MAX)
        ),
    })
}

fn executing_stabilization(t: &Timing, reactive: bool) -> Option<RescaleDelay> {
    let max = if reactive {
        EXECUTING_STAB_MAX_REACTIVE
    } else {
        EXECUTING_STAB_MAX
    };
    (t.value > max).then(|| RescaleDelay {
        key: t.key,
        value: Some(t.value),
        delay: t.value,
        advice: if reactive {
            format!(
                "in reactive mode every scale-up waits this long after the new TaskManager \
                 registers (the job asks for maxParallelism slots, never all there). Set it to \
                 2s–{}",
                secs(max)
            )
        } else {
            format!(
                "a scale-up whose TaskManagers register at different times waits up to {} for \
                 the rest. Set it to {}–{} (the pods of a scale-up raised after the HPA's sync \
                 start one sync later and must join the same restart)",
                secs(t.value),
                secs(EXECUTING_STAB_MIN),
                secs(max)
            )
        },
    })
}

fn reactive_submission(t: &Timing) -> Option<RescaleDelay> {
    (t.value > Duration::ZERO).then(|| RescaleDelay {
        key: t.key,
        value: Some(t.value),
        delay: t.value,
        advice: "in reactive mode it is added to every failover, i.e. to every scale-down; \
                 leave it unset (reactive mode then uses 0)"
            .to_string(),
    })
}

fn reactive_restart_strategy(strategy: Option<&str>) -> Option<RescaleDelay> {
    let fixed = strategy.is_some_and(|s| {
        let s = s.to_ascii_lowercase();
        s == "fixed-delay" || s == "fixeddelay"
    });
    (!fixed).then(|| RescaleDelay {
        key: RESTART_STRATEGY,
        value: None,
        delay: Duration::from_secs(12),
        advice: format!(
            "{} in reactive mode: every scale-down is a failover, and the default \
             exponential-delay back-off (1s ×1.5 per failover, reset after 1h) grows with each \
             one (measured 1.5s → 12s over 7). Use fixed-delay with a 0–1s delay, or \
             exponential-delay with reset-backoff-threshold of a few minutes",
            strategy.unwrap_or("unset (exponential-delay)")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flink::jm_config::JobManagerConfig;

    fn setup(version: &str, pairs: &[(&str, &str)]) -> FlinkSetup {
        let c = JobManagerConfig::from_pairs(pairs);
        FlinkSetup::from_config(&c, version, Some("Adaptive")).expect("setup")
    }

    fn keys(d: &[RescaleDelay]) -> Vec<&'static str> {
        d.iter().map(|d| d.key).collect()
    }

    /// Flink's defaults hold rescales back on both lines; the recommended values do not.
    #[test]
    fn defaults_warn_recommended_values_do_not() {
        let ten = Duration::from_secs(10);
        let d = rescale_delays(&setup("1.20.5", &[]), ten);
        assert_eq!(
            keys(&d),
            ["jobmanager.adaptive-scheduler.scaling-interval.min"]
        );
        assert_eq!(d[0].delay, Duration::from_secs(20));
        let d = rescale_delays(&setup("2.3.0", &[]), ten);
        assert_eq!(
            keys(&d),
            [
                "jobmanager.adaptive-scheduler.executing.cooldown-after-rescaling",
                "jobmanager.adaptive-scheduler.executing.resource-stabilization-timeout"
            ]
        );
        let tuned = [
            (
                "jobmanager.adaptive-scheduler.executing.cooldown-after-rescaling",
                "2s",
            ),
            (
                "jobmanager.adaptive-scheduler.executing.resource-stabilization-timeout",
                "10s",
            ),
        ];
        assert!(rescale_delays(&setup("2.3.0", &tuned), ten).is_empty());
        // the scaler's own stabilization covers Flink's cooldown
        assert!(rescale_delays(&setup("1.20.5", &[]), Duration::from_secs(30)).is_empty());
    }

    /// Reactive mode: a set submission stabilization and the default restart strategy
    /// are named; fixed-delay is fine; executing stabilization above 5 s is named.
    #[test]
    fn reactive_mode_names_what_every_scale_costs() {
        let ten = Duration::from_secs(10);
        let base = [
            ("scheduler-mode", "reactive"),
            (
                "jobmanager.adaptive-scheduler.executing.cooldown-after-rescaling",
                "0s",
            ),
            (
                "jobmanager.adaptive-scheduler.executing.resource-stabilization-timeout",
                "10s",
            ),
            (
                "jobmanager.adaptive-scheduler.submission.resource-stabilization-timeout",
                "2s",
            ),
        ];
        let d = rescale_delays(&setup("2.3.0", &base), ten);
        assert_eq!(
            keys(&d),
            [
                "jobmanager.adaptive-scheduler.executing.resource-stabilization-timeout",
                "jobmanager.adaptive-scheduler.submission.resource-stabilization-timeout",
                "restart-strategy.type"
            ]
        );
        let fine = [
            ("scheduler-mode", "reactive"),
            ("jobmanager.adaptive-scheduler.scaling-interval.min", "0s"),
            ("restart-strategy.type", "fixed-delay"),
        ];
        assert!(rescale_delays(&setup("1.20.5", &fine), ten).is_empty());
    }
}

//! When a worker ticks: each ScaledObject at its own fixed phase of the evaluation
//! interval (a hash of its `namespace/name`), anchored to the wall clock. A fleet's ticks
//! are spread evenly over the interval (no burst at a JobManager, whatever the order
//! KEDA's first calls arrived in), each job ticks exactly once per interval (no drift by
//! the tick's own duration), and so once per [`super::rest_cache`] slot. The first tick
//! of a new ScaledObject runs at once (KEDA waits for it); the second lands on the phase
//! at most 1¼ intervals later, so the oldest evaluation stays within 1½ intervals even
//! right after a fleet starts (issue 16's evaluation-lag goal).

use std::{
    hash::{Hash, Hasher},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// The shortest gap to the next tick is `interval / MIN_GAP_DIVISOR`: a tick that ends
/// just before its phase point (a first tick, a slow tick) does not run again at once,
/// and the gap never exceeds 1¼ intervals. With ½ (as before) a first tick could wait
/// 1½ intervals for the second, and at 1,000 jobs some job always did (max lag 22.6 s
/// against a 22.5 s goal).
const MIN_GAP_DIVISOR: u64 = 4;

/// The phase of `key` within `interval` (stable across restarts and replicas).
fn phase_ms(key: &str, interval_ms: u64) -> u64 {
    // SipHash with fixed keys: the same phase on every replica and after a restart.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    h.finish() % interval_ms.max(1)
}

/// Time from `now_ms` (ms since the epoch) to `key`'s next tick: its next phase point
/// at least a quarter interval away (so between ¼ and 1¼ intervals; exactly one
/// interval in steady state).
pub fn delay_at(key: &str, interval: Duration, now_ms: u64) -> Duration {
    let interval_ms = u64::try_from(interval.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let phase = phase_ms(key, interval_ms);
    let mut d = (phase + interval_ms - now_ms % interval_ms) % interval_ms;
    if d < interval_ms / MIN_GAP_DIVISOR {
        d += interval_ms;
    }
    Duration::from_millis(d)
}

/// [`delay_at`] from now.
pub fn next_tick_delay(key: &str, interval: Duration) -> Duration {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    delay_at(key, interval, now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_land_on_the_phase_once_per_interval() {
        let interval = Duration::from_secs(15);
        let key = "prod/orders";
        let phase = phase_ms(key, 15_000);
        let mut now = 1_700_000_000_123_u64;
        let mut ticks = Vec::new();
        for _ in 0..5 {
            now += u64::try_from(delay_at(key, interval, now).as_millis()).unwrap_or(0);
            assert_eq!(now % 15_000, phase);
            ticks.push(now);
            now += 40; // the tick's own duration
        }
        let gaps: Vec<u64> = ticks.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(gaps, [15_000; 4]);
    }

    #[test]
    fn a_fleet_is_spread_over_the_interval() {
        let interval = Duration::from_secs(15);
        let mut per_second = [0u32; 15];
        for i in 0..1000 {
            let d = delay_at(&format!("ns/job-{i}"), interval, 1_700_000_000_000);
            assert!(d >= interval / 4 && d < interval * 5 / 4, "{d:?}");
            per_second[(phase_ms(&format!("ns/job-{i}"), 15_000) / 1000) as usize] += 1;
        }
        // 1000 jobs over 15 s: about 67 a second, none above twice that.
        assert!(
            per_second.iter().all(|n| (30..=134).contains(n)),
            "{per_second:?}"
        );
    }
}

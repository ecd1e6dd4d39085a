//! Schedules: time windows that bound the TaskManager count. A window opens at each fire
//! of a cron expression (with seconds; 6 or 7 fields), evaluated in the schedule's IANA
//! time zone (so "08:00 Europe/Berlin" follows daylight saving), and stays open for the
//! schedule's `duration`. A floor pre-scales before a known peak; a ceiling caps cost.

use std::str::FromStr;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use chrono_tz::Tz;

use super::policy::{Policy, Schedule, ScheduleKind};

/// Parses the cron expression and the time zone of a schedule.
fn parse(s: &Schedule) -> Result<(cron::Schedule, Tz), String> {
    let fields = s.cron.split_whitespace().count();
    if !(6..=7).contains(&fields) {
        return Err(format!(
            "schedule {}: cron {:?} must have 6 or 7 fields (sec min hour dom month dow [year])",
            s.name, s.cron
        ));
    }
    let cron = cron::Schedule::from_str(&s.cron)
        .map_err(|e| format!("schedule {}: invalid cron {:?}: {e}", s.name, s.cron))?;
    let tz = Tz::from_str(&s.timezone)
        .map_err(|_| format!("schedule {}: unknown time zone {:?}", s.name, s.timezone))?;
    Ok((cron, tz))
}

/// Checks a schedule for the config loader: a cron expression with seconds (6 or 7
/// fields) that the `cron` crate parses, a known IANA time zone, a non-zero duration.
pub fn validate_schedule(s: &Schedule) -> Result<(), String> {
    parse(s)?;
    if s.duration.is_zero() {
        return Err(format!("schedule {}: duration must be > 0", s.name));
    }
    Ok(())
}

/// The fire that opened the window containing `now`, if the window is open. An invalid
/// schedule is never open (the config loader rejects it first).
pub fn open_since(s: &Schedule, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let (cron, tz) = parse(s).ok()?;
    let duration = ChronoDuration::from_std(s.duration).ok()?;
    let probe = now
        .with_timezone(&tz)
        .checked_add_signed(ChronoDuration::seconds(1))?;
    // latest fire at or before now (second resolution)
    let fired = cron.after(&probe).next_back()?.with_timezone(&Utc);
    let closes = fired
        .checked_add_signed(duration)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    (fired <= now && now < closes).then_some(fired)
}

/// TaskManager bounds from the open schedules at `now`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduleBounds {
    /// Highest open floor and its schedule name.
    pub floor: Option<(u32, String)>,
    /// Lowest open ceiling and its schedule name.
    pub ceiling: Option<(u32, String)>,
}

/// Folds every open schedule of `policy` into one floor and one ceiling.
pub fn bounds(policy: &Policy, now: DateTime<Utc>) -> ScheduleBounds {
    let mut b = ScheduleBounds::default();
    for s in &policy.schedules {
        if open_since(s, now).is_none() {
            continue;
        }
        match s.kind {
            ScheduleKind::Floor => {
                if b.floor.as_ref().is_none_or(|(f, _)| s.task_managers > *f) {
                    b.floor = Some((s.task_managers, s.name.clone()));
                }
            }
            ScheduleKind::Ceiling => {
                if b.ceiling.as_ref().is_none_or(|(c, _)| s.task_managers < *c) {
                    b.ceiling = Some((s.task_managers, s.name.clone()));
                }
            }
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::TimeZone;

    use super::*;

    fn sched(cron: &str, tz: &str, minutes: u64) -> Schedule {
        Schedule {
            name: "peak".into(),
            cron: cron.into(),
            timezone: tz.into(),
            duration: Duration::from_secs(minutes * 60),
            kind: ScheduleKind::Floor,
            task_managers: 5,
        }
    }

    #[test]
    fn validate_rejects_bad_cron_and_zone() {
        let cases = [
            ("0 0 8 * * *", "Europe/Berlin", 60, true),
            ("0 0 8 * * Mon-Fri 2026", "UTC", 60, true),
            ("0 8 * * *", "UTC", 60, false), // 5 fields: no seconds
            ("0 0 25 * * *", "UTC", 60, false), // hour 25
            ("0 0 8 * * *", "Mars/Olympus", 60, false),
            ("0 0 8 * * *", "UTC", 0, false),
        ];
        for (cron, tz, min, ok) in cases {
            assert_eq!(
                validate_schedule(&sched(cron, tz, min)).is_ok(),
                ok,
                "{cron} {tz} {min}"
            );
        }
    }

    /// 08:00 Europe/Berlin is 07:00 UTC in winter and 06:00 UTC in summer.
    #[test]
    fn window_follows_the_time_zone() {
        let s = sched("0 0 8 * * *", "Europe/Berlin", 60);
        let utc = |m, d, h, min| Utc.with_ymd_and_hms(2026, m, d, h, min, 0).single();
        let cases = [
            (utc(1, 15, 6, 59), false),
            (utc(1, 15, 7, 0), true),
            (utc(1, 15, 7, 59), true),
            (utc(1, 15, 8, 0), false),
            (utc(7, 15, 5, 59), false),
            (utc(7, 15, 6, 0), true),
            (utc(7, 15, 6, 30), true),
            (utc(7, 15, 7, 0), false),
        ];
        for (at, open) in cases {
            let at = at.unwrap_or_default();
            assert_eq!(open_since(&s, at).is_some(), open, "at {at}");
        }
    }
}

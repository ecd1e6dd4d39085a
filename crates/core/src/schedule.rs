//! Schedules: time windows that bound the TaskManager count. A window opens at each fire
//! of a cron expression (with seconds; 6 or 7 fields), evaluated in the schedule's IANA
//! time zone (so "08:00 Europe/Berlin" follows daylight saving), and stays open for the
//! schedule's `duration`. A floor pre-scales before a known peak; a ceiling caps cost.
//!
//! A [`Schedule`] holds its cron expression and time zone parsed: it is checked once
//! ([`Schedule::new`], at config load) and never re-parsed per tick.

use std::{str::FromStr, time::Duration};

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::policy::Policy;

/// Whether a schedule sets a floor or a ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ScheduleKind {
    /// At least this many TaskManagers while the window is open (pre-scale for a peak).
    Floor,
    /// At most this many TaskManagers while the window is open.
    Ceiling,
}

/// A time window (cron start + duration, in a time zone) that bounds TaskManagers.
/// Serialized with the cron expression and the zone as text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ScheduleText", into = "ScheduleText")]
pub struct Schedule {
    /// Name, used in reasons.
    pub name: String,
    cron: cron::Schedule,
    timezone: Tz,
    /// How long the window stays open after each cron fire.
    pub duration: Duration,
    /// Floor or ceiling.
    pub kind: ScheduleKind,
    /// TaskManager count of the floor/ceiling.
    pub task_managers: u32,
}

/// Which part of a schedule is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The cron expression does not parse or lacks the seconds field.
    #[error("schedule {name}: invalid cron {cron:?}: {reason} (format: sec min hour day-of-month month day-of-week [year])")]
    Cron {
        /// Schedule name.
        name: String,
        /// The expression.
        cron: String,
        /// What is wrong.
        reason: String,
    },
    /// Not an IANA time zone name.
    #[error("schedule {name}: unknown time zone {timezone:?}")]
    TimeZone {
        /// Schedule name.
        name: String,
        /// The zone given.
        timezone: String,
    },
    /// A zero-length window.
    #[error("schedule {name}: duration must be > 0")]
    Duration {
        /// Schedule name.
        name: String,
    },
}

impl Schedule {
    /// Parses and checks a schedule: a cron expression with seconds (6 or 7 fields) that
    /// the `cron` crate accepts, a known IANA time zone, a non-zero duration.
    pub fn new(
        name: impl Into<String>,
        cron: &str,
        timezone: &str,
        duration: Duration,
        kind: ScheduleKind,
        task_managers: u32,
    ) -> Result<Self, ScheduleError> {
        let name = name.into();
        let cron_err = |reason: String| ScheduleError::Cron {
            name: name.clone(),
            cron: cron.chars().take(200).collect(),
            reason,
        };
        let fields = cron.split_whitespace().count();
        if !(6..=7).contains(&fields) {
            return Err(cron_err(format!("must have 6 or 7 fields, has {fields}")));
        }
        let parsed = cron::Schedule::from_str(cron).map_err(|e| cron_err(e.to_string()))?;
        let zone = Tz::from_str(timezone).map_err(|_| ScheduleError::TimeZone {
            name: name.clone(),
            timezone: timezone.chars().take(100).collect(),
        })?;
        if duration.is_zero() {
            return Err(ScheduleError::Duration { name });
        }
        Ok(Self {
            name,
            cron: parsed,
            timezone: zone,
            duration,
            kind,
            task_managers,
        })
    }

    /// The cron expression as written.
    pub fn cron(&self) -> &str {
        self.cron.source()
    }

    /// The time zone.
    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// The fire that opened the window containing `now`, if the window is open.
    pub fn open_since(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let duration = ChronoDuration::from_std(self.duration).ok()?;
        let probe = now
            .with_timezone(&self.timezone)
            .checked_add_signed(ChronoDuration::seconds(1))?;
        // latest fire at or before now (second resolution)
        let fired = self.cron.after(&probe).next_back()?.with_timezone(&Utc);
        let closes = fired
            .checked_add_signed(duration)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        (fired <= now && now < closes).then_some(fired)
    }
}

/// A schedule as text: how it is (de)serialized.
#[derive(Serialize, Deserialize)]
struct ScheduleText {
    name: String,
    cron: String,
    timezone: String,
    duration: Duration,
    kind: ScheduleKind,
    task_managers: u32,
}

impl TryFrom<ScheduleText> for Schedule {
    type Error = ScheduleError;

    fn try_from(t: ScheduleText) -> Result<Self, Self::Error> {
        Schedule::new(
            t.name,
            &t.cron,
            &t.timezone,
            t.duration,
            t.kind,
            t.task_managers,
        )
    }
}

impl From<Schedule> for ScheduleText {
    fn from(s: Schedule) -> Self {
        Self {
            cron: s.cron().to_string(),
            timezone: s.timezone.name().to_string(),
            name: s.name,
            duration: s.duration,
            kind: s.kind,
            task_managers: s.task_managers,
        }
    }
}

/// The fire that opened the window containing `now`, if the window is open.
pub fn open_since(s: &Schedule, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    s.open_since(now)
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

    fn sched(cron: &str, tz: &str, minutes: u64) -> Result<Schedule, ScheduleError> {
        Schedule::new(
            "peak",
            cron,
            tz,
            Duration::from_secs(minutes * 60),
            ScheduleKind::Floor,
            5,
        )
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
            assert_eq!(sched(cron, tz, min).is_ok(), ok, "{cron} {tz} {min}");
        }
    }

    /// 08:00 Europe/Berlin is 07:00 UTC in winter and 06:00 UTC in summer.
    #[test]
    fn window_follows_the_time_zone() {
        let s = sched("0 0 8 * * *", "Europe/Berlin", 60).expect("valid");
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
            assert_eq!(s.open_since(at).is_some(), open, "at {at}");
        }
    }

    #[test]
    fn errors_name_the_part_and_serde_round_trips_the_text() {
        let e = sched("every day", "UTC", 60).expect_err("cron");
        assert!(
            matches!(e, ScheduleError::Cron { .. }) && e.to_string().contains("cron"),
            "{e}"
        );
        let e = sched("0 0 8 * * *", "Nowhere/City", 60).expect_err("zone");
        assert!(
            matches!(e, ScheduleError::TimeZone { .. }) && e.to_string().contains("time zone"),
            "{e}"
        );
        let e = sched("0 0 8 * * *", "UTC", 0).expect_err("duration");
        assert!(matches!(e, ScheduleError::Duration { .. }), "{e}");
        let s = sched("0 30 7 * * Mon-Fri", "America/New_York", 90).expect("valid");
        assert_eq!(s.cron(), "0 30 7 * * Mon-Fri");
        assert_eq!(s.timezone(), chrono_tz::America::New_York);
        let json = serde_json::to_value(&s).expect("ser");
        assert_eq!(json["cron"], "0 30 7 * * Mon-Fri");
        assert_eq!(json["timezone"], "America/New_York");
        assert_eq!(
            serde_json::from_value::<Schedule>(json.clone()).expect("de"),
            s
        );
        let mut bad = json;
        bad["timezone"] = "Mars/Olympus".into();
        assert!(serde_json::from_value::<Schedule>(bad).is_err());
    }
}

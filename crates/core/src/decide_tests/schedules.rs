//! Schedules: floors and ceilings evaluated in the schedule's time zone.

use super::*;

fn schedule(kind: ScheduleKind, cron: &str, hours: u64, tms: u32) -> Schedule {
    Schedule::new(
        "peak",
        cron,
        "Europe/Berlin",
        Duration::from_secs(hours * 3600),
        kind,
        tms,
    )
    .expect("valid schedule")
}

#[test]
fn schedules_floor_and_ceiling_across_time_zones() {
    let utc = |m, d, h, min| {
        Utc.with_ymd_and_hms(2026, m, d, h, min, 0)
            .single()
            .unwrap_or_default()
    };
    let floor = Policy {
        schedules: vec![schedule(ScheduleKind::Floor, "0 0 8 * * Mon-Fri", 2, 6)],
        ..Policy::test()
    };
    let steady_at = |now: DateTime<Utc>| Observation {
        running_since: Some(now - chrono::Duration::hours(1)),
        ..steady()
    };
    let pre_scaled = || plan(&[("src", 6), ("map", 6)], 6);
    let held = || plan(&[("src", 2), ("map", 2)], 2);
    let floor_rules = vec![
        (Rule::WithinBand, None),
        (Rule::ScheduleFloor, None),
        (Rule::ScaleUp, None),
    ];
    let mut cases = Vec::new();
    // 06:30 UTC is 08:30 in Berlin in July (CEST) but 07:30 in January (CET)
    for (name, now, open) in [
        ("July 06:30 UTC = 08:30 CEST: open", utc(7, 15, 6, 30), true),
        (
            "July 05:30 UTC = 07:30 CEST: closed",
            utc(7, 15, 5, 30),
            false,
        ),
        (
            "January 06:30 UTC = 07:30 CET: closed",
            utc(1, 15, 6, 30),
            false,
        ),
        (
            "January 07:30 UTC = 08:30 CET: open",
            utc(1, 15, 7, 30),
            true,
        ),
        ("Saturday: closed", utc(7, 18, 6, 30), false),
    ] {
        cases.push(Case {
            name,
            obs: steady_at(now),
            state: JobState::default(),
            policy: floor.clone(),
            now,
            expect: if open {
                Expect {
                    target: pre_scaled(),
                    direction: Direction::Up,
                    rescale: true,
                    rules: floor_rules.clone(),
                }
            } else {
                Expect {
                    target: held(),
                    direction: Direction::None,
                    rescale: false,
                    rules: vec![(Rule::WithinBand, None)],
                }
            },
        });
    }
    // ceiling 4 TaskManagers (t0 = 13:00 CET, inside 08:00 + 12 h): the 3× step needs
    // 18 slots; each vertex × 4/18 → src 2, map 4, agg 3
    cases.push(Case {
        name: "ceiling caps the 3x step",
        obs: line().observe(3000.0, &[4, 8, 8], 0.0),
        state: JobState::default(),
        policy: Policy {
            schedules: vec![schedule(ScheduleKind::Ceiling, "0 0 8 * * *", 12, 4)],
            ..Policy::test()
        },
        now: t0(),
        expect: Expect {
            target: plan(&[("src", 2), ("map", 4), ("agg", 3)], 4),
            direction: Direction::Down,
            rescale: true,
            rules: vec![
                (Rule::Overutilized, Some("src")),
                (Rule::Overutilized, Some("map")),
                (Rule::Overutilized, Some("agg")),
                (Rule::Aligned, Some("agg")),
                (Rule::ScheduleCeiling, None),
                (Rule::ScaleDown, None),
            ],
        },
    });
    for c in cases {
        check(c);
    }
}

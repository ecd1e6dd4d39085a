//! Figures of one scenario run, computed from its [`Timeline`] only:
//!
//! * **P1** — seconds from the load step being *visible in Prometheus* (the first sample
//!   at which the produced rate Prometheus shows reaches 90 % of the new rate) to the job
//!   RUNNING, every subtask running, at the highest parallelism of the step phase.
//! * **Peak lag** after the step, and **recovery**: seconds from the step being visible
//!   until the lag is back at or under its pre-step level (the highest lag of the last
//!   30 s before the step).
//! * **P2** — rescales the scaler started per load change (the step up; the step down),
//!   any direction: a parallelism-only rescale is a restart too.
//! * **P3** — failovers: exceptions in Flink's exception history (an in-place rescale
//!   records none) and JobID changes.
//! * **TaskManager-seconds** used against a fixed allocation at the run's peak.

use std::fmt::Write as _;

use super::timeline::{EventKind, Point, Timeline};

/// Seconds before the step used for the pre-step lag level.
pub const PRE_STEP_WINDOW_S: f64 = 30.0;
/// Fraction of the new rate at which the step counts as visible.
pub const VISIBLE_FRACTION: f64 = 0.9;

/// Figures of one load change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepFigures {
    /// When the rate changed (scenario seconds).
    pub changed_at: f64,
    /// When Prometheus showed it.
    pub visible_at: Option<f64>,
    /// Parallelism before.
    pub from_parallelism: u32,
    /// Parallelism reached in the phase (highest for a step up, lowest for a step down).
    pub to_parallelism: u32,
    /// When the job first ran at `to_parallelism` with every subtask running.
    pub running_at: Option<f64>,
    /// `running_at − visible_at` (P1 for the step up).
    pub reaction_s: Option<f64>,
    /// Seconds from visible to the first RUNNING at any new parallelism (the first
    /// in-place rescale done).
    pub first_reaction_s: Option<f64>,
    /// Rescales the scaler started in the phase (P2).
    pub rescales: usize,
    /// When the scaler started the phase's first rescale (its own timestamp).
    pub decided_at: Option<f64>,
    /// When the driver had the phase's first TaskManagers registered (HPA sync + start),
    /// if that was before `running_at` (a warm spare makes the rescale wait for none).
    pub capacity_at: Option<f64>,
    /// When the driver's HPA sync raised the replicas for the phase's first rescale (KEDA
    /// poll + HPA sync; the TaskManagers start after it), if before `capacity_at`.
    pub scaled_at: Option<f64>,
    /// TaskManagers registered at the last sample before the load changed.
    pub registered_before: u32,
    /// Parallelism of the first in-place rescale done (the first sample past the visible
    /// change with every subtask running at a new parallelism in the step's direction).
    pub first_parallelism: Option<u32>,
    /// Most TaskManagers registered from the load change until that first rescale was
    /// done (equal to `registered_before` when it ran on TaskManagers already there: a
    /// warm spare).
    pub registered_by_first_running: Option<u32>,
    /// Idle TaskManagers (registered − what the running slots need) at the phase's last
    /// sample: the spare, replenished.
    pub idle_at_end: Option<u32>,
}

/// Everything measured in one run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measurements {
    /// The step up.
    pub up: StepFigures,
    /// The step down.
    pub down: StepFigures,
    /// Highest lag before the step (last 30 s).
    pub pre_step_lag: f64,
    /// Highest lag after the step.
    pub peak_lag: f64,
    /// Seconds from the step being visible until the lag was back at the pre-step level.
    pub recovery_s: Option<f64>,
    /// Failovers (exception-history entries).
    pub failovers: usize,
    /// Distinct JobIDs seen.
    pub job_ids: usize,
    /// TaskManager-seconds used.
    pub tm_seconds: f64,
    /// TaskManager-seconds of a fixed allocation at the peak.
    pub fixed_peak_tm_seconds: f64,
    /// TaskManager-seconds of an oracle that knows the schedule (the fewest TaskManagers
    /// the scheduled rate needs at each instant; 0 when not computed, see
    /// [`oracle_tm_seconds`]).
    pub oracle_tm_seconds: f64,
    /// Peak TaskManagers.
    pub peak_task_managers: u32,
    /// Seconds covered.
    pub duration_s: f64,
    /// The run's `spareTaskManagers` (P1's goal is 10 s when it covers the step).
    pub spare: u32,
}

/// The figures of the load change into `phase` (`up`: a step up).
fn step(t: &Timeline, phase: &'static str, up: bool) -> StepFigures {
    let Some(changed_at) = load_change_into(t, phase) else {
        return StepFigures::default();
    };
    let in_phase: Vec<&Point> = t.points.iter().filter(|p| p.phase == phase).collect();
    let from_parallelism = t
        .points
        .iter()
        .rev()
        .find(|p| p.at < changed_at && p.flink.is_some())
        .map_or(0, |p| p.max_parallelism());
    let visible_at = visible_at(&in_phase, up);
    let pars = in_phase
        .iter()
        .filter(|p| p.flink.is_some())
        .map(|p| p.max_parallelism());
    let to_parallelism = if up { pars.max() } else { pars.min() }.unwrap_or(from_parallelism);
    let running_at = visible_at.and_then(|v| running_at(&in_phase, v, to_parallelism));
    let first_running_at =
        visible_at.and_then(|v| first_running_at(&in_phase, v, from_parallelism, up));
    let end = in_phase.last().map_or(changed_at, |p| p.at);
    let started = rescales_started(t, changed_at, end);
    let decided_at = started.first().copied();
    let capacity_at = decided_at.and_then(|d| {
        t.events
            .iter()
            .find(|e| {
                e.kind == EventKind::TaskManagerStarted
                    && e.at >= d
                    && e.at <= running_at.unwrap_or(end)
            })
            .map(|e| e.at)
    });
    let scaled_at = decided_at.zip(capacity_at).and_then(|(d, c)| {
        t.events
            .iter()
            .find(|e| e.kind == EventKind::HpaScaled && e.at >= d && e.at <= c)
            .map(|e| e.at)
    });
    let registered_before = t
        .points
        .iter()
        .rev()
        .find(|p| p.at < changed_at && p.flink.is_some())
        .map_or(0, Point::task_managers);
    let first_parallelism = first_running_at.and_then(|f| {
        in_phase
            .iter()
            .find(|p| p.at == f)
            .map(|p| p.max_parallelism())
    });
    let registered_by_first_running = first_running_at.and_then(|f| {
        in_phase
            .iter()
            .filter(|p| p.at <= f && p.flink.is_some())
            .map(|p| p.task_managers())
            .max()
    });
    let idle_at_end = in_phase.iter().rev().find_map(|p| {
        let f = p.flink.as_ref()?;
        Some(f.task_managers.saturating_sub(f.required_task_managers()))
    });
    StepFigures {
        changed_at,
        visible_at,
        from_parallelism,
        to_parallelism,
        running_at,
        reaction_s: visible_at
            .zip(running_at)
            .map(|(v, r)| r - v)
            .filter(|_| to_parallelism != from_parallelism),
        first_reaction_s: visible_at.zip(first_running_at).map(|(v, r)| r - v),
        rescales: started.len(),
        decided_at,
        capacity_at,
        scaled_at,
        registered_before,
        first_parallelism,
        registered_by_first_running,
        idle_at_end,
    }
}

/// When the rate changed into `phase`: the first load event followed by a point of it.
fn load_change_into(t: &Timeline, phase: &str) -> Option<f64> {
    t.events
        .iter()
        .filter(|e| e.kind == EventKind::Load)
        .find(|e| {
            t.points
                .iter()
                .find(|p| p.at >= e.at)
                .is_some_and(|p| p.phase == phase)
        })
        .map(|e| e.at)
}

/// The first point of the phase at which Prometheus shows the new rate (within
/// [`VISIBLE_FRACTION`]).
fn visible_at(in_phase: &[&Point], up: bool) -> Option<f64> {
    let new_rate = in_phase.first().map_or(0.0, |p| p.input_rate);
    in_phase
        .iter()
        .find(|p| {
            p.produced_rate.is_some_and(|r| {
                if up {
                    r >= VISIBLE_FRACTION * new_rate
                } else {
                    r <= new_rate / VISIBLE_FRACTION
                }
            })
        })
        .map(|p| p.at)
}

/// The first point from `visible` on with the job RUNNING at `to_parallelism`, every
/// subtask running.
fn running_at(in_phase: &[&Point], visible: f64, to_parallelism: u32) -> Option<f64> {
    in_phase
        .iter()
        .filter(|p| p.at >= visible)
        .find(|p| {
            p.all_running
                && p.max_parallelism() == to_parallelism
                && p.flink.as_ref().is_some_and(|f| f.job_state == "RUNNING")
        })
        .map(|p| p.at)
}

/// The first point from `visible` on with every subtask running at any parallelism past
/// `from_parallelism` in the step's direction.
fn first_running_at(
    in_phase: &[&Point],
    visible: f64,
    from_parallelism: u32,
    up: bool,
) -> Option<f64> {
    in_phase
        .iter()
        .filter(|p| p.at >= visible && p.all_running)
        .find(|p| {
            let par = p.max_parallelism();
            par != from_parallelism && (par > from_parallelism) == up
        })
        .map(|p| p.at)
}

/// When the scaler started rescales in `[from, end]`.
fn rescales_started(t: &Timeline, from: f64, end: f64) -> Vec<f64> {
    t.events
        .iter()
        // every rescale is a restart, whatever its direction (a parallelism-only one too)
        .filter(|e| e.kind == EventKind::RescaleStarted && e.at >= from && e.at <= end)
        .map(|e| e.at)
        .collect()
}

/// Computes the figures of `t` (phases `steady` → `step` → `back`).
pub fn measure(t: &Timeline) -> Measurements {
    let up = step(t, "step", true);
    let down = step(t, "back", false);
    let pre_step_lag = t
        .points
        .iter()
        .filter(|p| p.at < up.changed_at && p.at >= up.changed_at - PRE_STEP_WINDOW_S)
        .filter_map(|p| p.lag)
        .fold(0.0, f64::max);
    let after: Vec<_> = t
        .points
        .iter()
        .filter(|p| p.at >= up.changed_at && p.lag.is_some())
        .collect();
    // the first sample at the highest lag
    let peak = after
        .iter()
        .fold(None::<&&super::timeline::Point>, |best, p| match best {
            Some(b) if b.lag.unwrap_or(0.0) >= p.lag.unwrap_or(0.0) => Some(b),
            _ => Some(p),
        });
    let peak_lag = peak.and_then(|p| p.lag).unwrap_or(0.0);
    let recovery_s = if peak_lag <= pre_step_lag {
        // the lag never rose above its pre-step level
        up.visible_at.map(|_| 0.0)
    } else {
        peak.and_then(|pk| {
            let from = up.visible_at?;
            after
                .iter()
                .filter(|p| p.at > pk.at)
                .find(|p| p.lag.is_some_and(|l| l <= pre_step_lag))
                .map(|p| p.at - from)
        })
    };
    let mut tm_seconds = 0.0;
    for w in t.points.windows(2) {
        tm_seconds += f64::from(w[0].task_managers()) * (w[1].at - w[0].at);
    }
    let peak_task_managers = t
        .points
        .iter()
        .map(|p| p.task_managers())
        .max()
        .unwrap_or(0);
    let duration_s = match (t.points.first(), t.points.last()) {
        (Some(a), Some(b)) => b.at - a.at,
        _ => 0.0,
    };
    let mut ids: Vec<&str> = t
        .points
        .iter()
        .filter_map(|p| p.flink.as_ref().map(|f| f.job_id.as_str()))
        .filter(|id| !id.is_empty() && *id != "?")
        .collect();
    ids.sort_unstable();
    ids.dedup();
    Measurements {
        up,
        down,
        pre_step_lag,
        peak_lag,
        recovery_s,
        failovers: t
            .events
            .iter()
            .filter(|e| e.kind == EventKind::Failover)
            .count(),
        job_ids: ids.len(),
        tm_seconds,
        fixed_peak_tm_seconds: f64::from(peak_task_managers) * duration_s,
        oracle_tm_seconds: 0.0,
        spare: 0,
        peak_task_managers,
        duration_s,
    }
}

/// TaskManager-seconds of an oracle that knows the schedule: `needed(scheduled rate)`
/// TaskManagers at every sample, over the same samples as [`Measurements::tm_seconds`].
pub fn oracle_tm_seconds(t: &Timeline, needed: impl Fn(f64) -> u32) -> f64 {
    t.points
        .windows(2)
        .map(|w| f64::from(needed(w[0].input_rate)) * (w[1].at - w[0].at))
        .sum()
}

impl StepFigures {
    /// `KEDA poll + HPA sync / TaskManager start` after a rescale decided at `decided`
    /// (`— / —` when it ran on TaskManagers already registered: a warm spare).
    pub fn hpa_and_start(&self, decided: f64) -> String {
        match (self.scaled_at, self.capacity_at) {
            (Some(s), Some(c)) => format!("{:.0} s / {:.0} s", s - decided, c - s),
            (None, Some(c)) => format!("{:.0} s (both)", c - decided),
            _ => "— / —".to_string(),
        }
    }
}

fn secs(v: Option<f64>) -> String {
    v.map(|s| format!("{s:.1} s"))
        .unwrap_or_else(|| "not reached".into())
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**missed**"
    }
}

impl Measurements {
    /// A Markdown table of the figures with their goals.
    pub fn markdown(&self) -> String {
        let mut out = String::from("| Figure | Value | Goal | |\n|---|---|---|---|\n");
        let p1 = self.up.reaction_s;
        let goal = if self.spare > 0 { 10.0 } else { 30.0 };
        let _ = writeln!(
            out,
            "| P1: step visible in Prometheus → RUNNING at parallelism {} (from {}) | {} | ≤ {goal:.0} s | {} |",
            self.up.to_parallelism,
            self.up.from_parallelism,
            secs(p1),
            verdict(p1.is_some_and(|s| s <= goal))
        );
        if let (Some(v), Some(d), Some(r)) =
            (self.up.visible_at, self.up.decided_at, self.up.running_at)
        {
            let restart = self.up.capacity_at.map_or(r - d, |c| r - c);
            let _ = writeln!(
                out,
                "| P1 breakdown: scaler detects and confirms / KEDA poll + HPA sync / TaskManager start and registration / Flink rescales in place | {:.0} s / {} / {restart:.0} s | | |",
                d - v,
                self.up.hpa_and_start(d),
            );
        }
        let _ = writeln!(
            out,
            "| Step visible → RUNNING after the first in-place rescale (parallelism {} → new) | {} | | |",
            self.up.from_parallelism,
            secs(self.up.first_reaction_s)
        );
        let _ = writeln!(
            out,
            "| Peak lag after the step (pre-step level {:.0}) | {:.0} records | | |",
            self.pre_step_lag, self.peak_lag
        );
        let _ = writeln!(
            out,
            "| Lag back under the pre-step level, from the step being visible | {} | < 60 s | {} |",
            secs(self.recovery_s),
            verdict(self.recovery_s.is_some_and(|s| s < 60.0))
        );
        let _ = writeln!(
            out,
            "| P2: rescales for the step up / the step down | {} / {} | 1 / 1 | {} |",
            self.up.rescales,
            self.down.rescales,
            verdict(self.up.rescales == 1 && self.down.rescales == 1)
        );
        let _ = writeln!(
            out,
            "| Step down: visible → RUNNING at parallelism {} (from {}) | {} | | |",
            self.down.to_parallelism,
            self.down.from_parallelism,
            secs(self.down.reaction_s)
        );
        let _ = writeln!(
            out,
            "| P3: failovers (exception history) / JobIDs seen | {} / {} | 0 / 1 | {} |",
            self.failovers,
            self.job_ids,
            verdict(self.failovers == 0 && self.job_ids == 1)
        );
        let saved = if self.fixed_peak_tm_seconds > 0.0 {
            100.0 * (1.0 - self.tm_seconds / self.fixed_peak_tm_seconds)
        } else {
            0.0
        };
        let _ = writeln!(
            out,
            "| TaskManager-seconds used vs. fixed at the peak ({} TMs × {:.0} s) | {:.0} vs. {:.0} ({saved:.0} % less) | | |",
            self.peak_task_managers,
            self.duration_s,
            self.tm_seconds,
            self.fixed_peak_tm_seconds
        );
        if self.oracle_tm_seconds > 0.0 {
            let _ = writeln!(
                out,
                "| TaskManager-seconds vs. an oracle that knows the schedule (fewest TMs the rate needs at each instant) | {:.0} vs. {:.0} ({:+.0} %) | | |",
                self.tm_seconds,
                self.oracle_tm_seconds,
                100.0 * (self.tm_seconds / self.oracle_tm_seconds - 1.0)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{driver::FlinkView, timeline::Point};

    fn point(at: f64, phase: &'static str, rate: f64, lag: f64, par: u32) -> Point {
        Point {
            at,
            phase,
            input_rate: rate,
            produced_rate: Some(rate),
            lag: Some(lag),
            flink: Some(FlinkView {
                task_managers: par.div_ceil(2),
                vertices: vec![("src".into(), par)],
                job_id: "j1".into(),
                job_state: "RUNNING".into(),
                slots_per_task_manager: 2,
            }),
            all_running: true,
            ..Point::default()
        }
    }

    /// steady (0–9 s, p=1) → step at 10 s (visible at 12 s, p=4 RUNNING at 30 s, lag
    /// peaks 900 at 25 s, back to 50 at 40 s) → back at 60 s (p=1 at 80 s).
    fn run() -> Timeline {
        let mut t = Timeline::default();
        for i in 0..100 {
            let at = f64::from(i);
            let p = match i {
                0..=9 => point(at, "steady", 100.0, 50.0, 1),
                10..=59 => {
                    let mut p = point(at, "step", 300.0, 0.0, if i >= 30 { 4 } else { 1 });
                    p.produced_rate = Some(if i < 12 { 150.0 } else { 300.0 });
                    p.lag = Some(match i {
                        10..=25 => 60.0 * (at - 10.0),
                        26..=39 => 900.0 - 60.0 * (at - 25.0),
                        _ => 40.0,
                    });
                    p
                }
                _ => point(at, "back", 100.0, 30.0, if i >= 80 { 1 } else { 4 }),
            };
            t.points.push(p);
        }
        t.push_event(10.0, EventKind::Load, "100 → 300");
        t.push_event(14.0, EventKind::RescaleStarted, "up 1→2 TMs");
        t.push_event(20.0, EventKind::HpaScaled, "1→2 replicas");
        t.push_event(25.0, EventKind::TaskManagerStarted, "fks-tm-1");
        t.push_event(60.0, EventKind::Load, "300 → 100");
        t.push_event(70.0, EventKind::RescaleStarted, "down 2→1 TMs");
        t
    }

    #[test]
    fn figures_of_a_clean_run() {
        let m = measure(&run());
        assert_eq!(m.up.visible_at, Some(12.0));
        assert_eq!(m.up.running_at, Some(30.0));
        assert_eq!(m.up.reaction_s, Some(18.0));
        assert_eq!(m.up.first_reaction_s, Some(18.0));
        assert_eq!(m.down.first_reaction_s, Some(20.0));
        assert_eq!((m.up.from_parallelism, m.up.to_parallelism), (1, 4));
        assert_eq!((m.down.from_parallelism, m.down.to_parallelism), (4, 1));
        assert_eq!(m.down.running_at, Some(80.0));
        assert_eq!((m.up.rescales, m.down.rescales), (1, 1));
        assert_eq!(
            (m.up.decided_at, m.up.capacity_at),
            (Some(14.0), Some(25.0))
        );
        assert_eq!(m.pre_step_lag, 50.0);
        assert_eq!(m.peak_lag, 900.0);
        // first sample at or under 50 after the peak: 40 at t=40 → 28 s after visible
        assert_eq!(m.recovery_s, Some(28.0));
        assert_eq!((m.failovers, m.job_ids), (0, 1));
        // TMs: 1 for 0..30, 2 for 30..80, 1 for 80..99
        assert_eq!(m.tm_seconds, 30.0 + 100.0 + 19.0);
        assert_eq!(m.fixed_peak_tm_seconds, 2.0 * 99.0);
        // registered: 1 before the step, 2 once running at 4; 0 idle at the ends
        assert_eq!(
            (m.up.registered_before, m.up.registered_by_first_running),
            (1, Some(2))
        );
        assert_eq!(m.up.first_parallelism, Some(4));
        assert_eq!((m.up.idle_at_end, m.down.idle_at_end), (Some(0), Some(0)));
        // an oracle needing 1 TM per 100 records/s: 1 × 10 + 3 × 50 + 1 × 39
        let oracle = oracle_tm_seconds(&run(), |r| (r / 100.0) as u32);
        assert_eq!(oracle, 10.0 + 150.0 + 39.0);
        let md = m.markdown();
        assert!(md.contains("| 18.0 s | ≤ 30 s | met |"), "{md}");
        assert!(md.contains("| 1 / 1 | 1 / 1 | met |"), "{md}");
        assert_eq!((m.up.scaled_at, m.up.capacity_at), (Some(20.0), Some(25.0)));
        assert!(md.contains("| 2 s / 6 s / 5 s / 5 s |"), "{md}");
    }

    #[test]
    fn a_lag_that_never_rose_recovered_at_once() {
        let mut t = run();
        for p in t.points.iter_mut() {
            p.lag = Some(0.0);
        }
        let m = measure(&t);
        assert_eq!((m.peak_lag, m.recovery_s), (0.0, Some(0.0)));
    }

    #[test]
    fn a_second_rescale_and_a_failover_are_counted() {
        let mut t = run();
        t.push_event(20.0, EventKind::RescaleStarted, "up 2→3 TMs");
        t.push_event(21.0, EventKind::Failover, "java.lang.Exception");
        // a parallelism-only rescale in the step phase counts too
        t.push_event(
            40.0,
            EventKind::RescaleStarted,
            "none 2→2 TMs, parallelism 4→4",
        );
        let m = measure(&t);
        assert_eq!(m.up.rescales, 3);
        assert_eq!(m.failovers, 1);
        assert!(m.markdown().contains("**missed**"));
    }

    #[test]
    fn no_scale_up_means_no_reaction_time() {
        let mut t = run();
        for p in t.points.iter_mut().filter(|p| p.phase == "step") {
            if let Some(f) = p.flink.as_mut() {
                f.vertices = vec![("src".into(), 1)];
            }
        }
        let m = measure(&t);
        assert_eq!(m.up.reaction_s, None);
        assert!(m.markdown().contains("not reached"));
    }
}

//! Figures of one scenario run, computed from its [`Timeline`] only:
//!
//! * **P1** — seconds from the load step being *visible in Prometheus* (the first instant
//!   at which the produced rate Prometheus shows reaches 90 % of the new rate:
//!   [`Visibility`]) to the job RUNNING, every subtask running, at the highest parallelism
//!   of the step phase (Flink's own instant of the last subtask switching to RUNNING when
//!   the observer got it: [`Point::running_since`]).
//! * **Peak lag** after the step, and **recovery**: seconds from the step being visible
//!   until the lag is back at or under its pre-step level (the highest lag of the last
//!   30 s before the step).
//! * **P2** — Flink's in-place restarts per load change (the step up; the step down): the
//!   vertices' parallelism changing between samples of the job running, any direction (a
//!   parallelism-only rescale is a restart too); next to the rescales the scaler started
//!   and raised (a raise before Flink restarted is the same rescale).
//! * **P3** — failovers: exceptions in Flink's exception history (an in-place rescale
//!   records none) and JobID changes.
//! * **TaskManager-seconds** used against a fixed allocation at the run's peak.

use std::fmt::Write as _;

use super::{
    driver::FlinkView,
    timeline::{EventKind, Point, Timeline},
    visibility::Visibility,
};

/// Seconds before the step used for the pre-step lag level.
pub const PRE_STEP_WINDOW_S: f64 = 30.0;

/// Figures of one load change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepFigures {
    /// When the rate changed (scenario seconds).
    pub changed_at: f64,
    /// When Prometheus showed it.
    pub visible_at: Option<f64>,
    /// Parallelism before.
    pub from_parallelism: u32,
    /// Parallelism the job ran at in the phase, RUNNING with every subtask running (highest
    /// for a step up, lowest for a step down).
    pub to_parallelism: u32,
    /// When the job first ran at `to_parallelism` with every subtask running.
    pub running_at: Option<f64>,
    /// `running_at − visible_at` (P1 for the step up).
    pub reaction_s: Option<f64>,
    /// Seconds from visible to the first RUNNING at any new parallelism (the first
    /// in-place rescale done).
    pub first_reaction_s: Option<f64>,
    /// Rescales the scaler started in the phase.
    pub rescales: usize,
    /// Of those, raised before Flink restarted (`core::rescale::raise`).
    pub raises: usize,
    /// Flink's in-place restarts in the phase (P2): the vertices' parallelism changing
    /// between samples of the job running with every subtask running.
    pub restarts: usize,
    /// When the scaler started the phase's first rescale (its own timestamp).
    pub decided_at: Option<f64>,
    /// When the scaler's report to KEDA first asked for the TaskManagers that
    /// `to_parallelism` needs (the first sample from `visible_at` on): while a scale-up
    /// settles the report already asks for its pods, before the rescale starts.
    pub asked_at: Option<f64>,
    /// When the last TaskManager the rescale ran on registered, if after `visible_at` (a
    /// warm spare had them registered before: the rescale waited for none).
    pub capacity_at: Option<f64>,
    /// When the driver's HPA sync last raised the replicas before `capacity_at` (KEDA poll
    /// + HPA sync; those pods' TaskManagers are the last to start).
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
    let in_phase = phase_points(t, phase);
    let from_parallelism = t
        .points
        .iter()
        .rev()
        .find(|p| p.at < changed_at && p.flink.is_some())
        .map_or(0, |p| p.max_parallelism());
    let visible_at = Visibility::of(changed_at, &in_phase, up).at(t);
    // only samples of the job running: while Flink rebuilds it for a rescale, its REST API
    // can list the job graph's submitted parallelism (seen on 1.20.5: 2 during a 6 → 3)
    let pars = in_phase
        .iter()
        .filter(|p| ran(p))
        .map(|p| p.max_parallelism());
    let to_parallelism = if up { pars.max() } else { pars.min() }.unwrap_or(from_parallelism);
    let running = visible_at.and_then(|v| running_point(&in_phase, v, to_parallelism));
    let running_at = running.map(Point::running_since);
    let first_running =
        visible_at.and_then(|v| first_running_point(&in_phase, v, from_parallelism, up));
    let first_running_at = first_running.map(Point::running_since);
    let end = in_phase.last().map_or(changed_at, |p| p.at);
    let started = rescales_started(t, changed_at, end);
    let decided_at = started.first().copied();
    let capacity_at = visible_at.and_then(|v| {
        last_event(
            t,
            EventKind::TaskManagerStarted,
            v,
            running_at.unwrap_or(end),
        )
    });
    let scaled_at = visible_at
        .zip(capacity_at)
        .and_then(|(v, c)| last_event(t, EventKind::HpaScaled, v, c));
    let asked_at = visible_at.zip(scaled_at).and_then(|(v, s)| {
        let needed = running
            .and_then(|p| p.flink.as_ref())
            .map(FlinkView::required_task_managers)?;
        in_phase
            .iter()
            .find(|p| p.at >= v && p.reported.is_some_and(|r| r >= needed))
            .map(|p| p.at.min(s))
    });
    let registered_before = t
        .points
        .iter()
        .rev()
        .find(|p| p.at < changed_at && p.flink.is_some())
        .map_or(0, Point::task_managers);
    let first_parallelism = first_running.map(Point::max_parallelism);
    let registered_by_first_running = first_running.and_then(|f| {
        in_phase
            .iter()
            .filter(|p| p.at <= f.running_since() && p.flink.is_some())
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
        raises: event_times(t, EventKind::RescaleRaised, changed_at, end).count(),
        restarts: restarts(t, &in_phase, changed_at),
        decided_at,
        asked_at,
        capacity_at,
        scaled_at,
        registered_before,
        first_parallelism,
        registered_by_first_running,
        idle_at_end,
    }
}

/// The samples of `phase`, in time order.
fn phase_points<'t>(t: &'t Timeline, phase: &str) -> Vec<&'t Point> {
    t.points.iter().filter(|p| p.phase == phase).collect()
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

/// The first point from `visible` on with the job RUNNING at `to_parallelism`, every
/// subtask running.
fn running_point<'p>(
    in_phase: &[&'p Point],
    visible: f64,
    to_parallelism: u32,
) -> Option<&'p Point> {
    in_phase
        .iter()
        .filter(|p| p.at >= visible)
        .find(|p| ran(p) && p.max_parallelism() == to_parallelism)
        .copied()
}

/// Changes of the job's per-vertex parallelism between the samples of it running (every
/// subtask running), from the last such sample before `changed_at` through the phase.
fn restarts(t: &Timeline, in_phase: &[&Point], changed_at: f64) -> usize {
    let vertices = |p: &Point| p.flink.as_ref().map(|f| f.vertices.clone());
    let mut last = t
        .points
        .iter()
        .rev()
        .find(|p| p.at < changed_at && ran(p))
        .and_then(vertices);
    let mut n = 0;
    for now in in_phase
        .iter()
        .filter(|p| ran(p))
        .filter_map(|p| vertices(p))
    {
        if last.as_ref().is_some_and(|l| *l != now) {
            n += 1;
        }
        last = Some(now);
    }
    n
}

/// The job was RUNNING with every subtask running at this sample.
fn ran(p: &Point) -> bool {
    p.all_running && p.flink.as_ref().is_some_and(|f| f.job_state == "RUNNING")
}

/// The first point from `visible` on with every subtask running at any parallelism past
/// `from_parallelism` in the step's direction.
fn first_running_point<'p>(
    in_phase: &[&'p Point],
    visible: f64,
    from_parallelism: u32,
    up: bool,
) -> Option<&'p Point> {
    in_phase
        .iter()
        .filter(|p| p.at >= visible && p.all_running)
        .find(|p| {
            let par = p.max_parallelism();
            par != from_parallelism && (par > from_parallelism) == up
        })
        .copied()
}

/// When events of `kind` happened in `[from, to]`.
fn event_times(
    t: &Timeline,
    kind: EventKind,
    from: f64,
    to: f64,
) -> impl Iterator<Item = f64> + '_ {
    t.events
        .iter()
        .filter(move |e| e.kind == kind && e.at >= from && e.at <= to)
        .map(|e| e.at)
}

/// The last event of `kind` in `[from, to]`.
fn last_event(t: &Timeline, kind: EventKind, from: f64, to: f64) -> Option<f64> {
    event_times(t, kind, from, to).reduce(f64::max)
}

/// When the scaler started rescales in `[from, end]`.
fn rescales_started(t: &Timeline, from: f64, end: f64) -> Vec<f64> {
    // every rescale is a restart, whatever its direction (a parallelism-only one too)
    event_times(t, EventKind::RescaleStarted, from, end).collect()
}

/// The load changes the figures read (into `step`, a step up; into `back`, down) and the
/// first sample that showed each, for the observer to find their exact instants.
pub fn visibilities(t: &Timeline) -> Vec<Visibility> {
    [("step", true), ("back", false)]
        .into_iter()
        .filter_map(|(phase, up)| {
            let changed_at = load_change_into(t, phase)?;
            Some(Visibility::of(changed_at, &phase_points(t, phase), up))
        })
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

/// P1 along its critical path: `scaler / KEDA poll + HPA sync / TaskManager start /
/// Flink`, in seconds, summing to P1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Breakdown {
    /// Step visible → the report asked for the TaskManagers (when the rescale waited for
    /// new ones), or → the rescale started (when it ran on TaskManagers already there).
    pub scaler: f64,
    /// → the HPA raised the replicas, and → their TaskManagers registered; `None` when
    /// the rescale waited for no new TaskManager (a warm spare, or the pods were up
    /// before the rescale started).
    pub hpa_and_start: Option<(f64, f64)>,
    /// → RUNNING at the new parallelism: the in-place restart.
    pub flink: f64,
}

impl Breakdown {
    /// `7 s / 10 s / 18 s / 6 s`, with `— / —` for no KEDA/HPA and start on the path.
    pub fn cells(&self) -> String {
        let middle = self.hpa_and_start.map_or("— / —".to_string(), |(h, s)| {
            format!("{h:.0} s / {s:.0} s")
        });
        format!("{:.0} s / {middle} / {:.0} s", self.scaler, self.flink)
    }
}

impl StepFigures {
    /// P1's breakdown: the pods' path (report → HPA sync → registered → Flink) when the
    /// rescale waited for TaskManagers that registered after it started, else the rescale's
    /// own (started → Flink).
    pub fn breakdown(&self) -> Option<Breakdown> {
        let (visible, decided, running) = (self.visible_at?, self.decided_at?, self.running_at?);
        let pods = match (self.asked_at, self.scaled_at, self.capacity_at) {
            (Some(a), Some(s), Some(c)) if c >= decided => Some((a, s, c)),
            _ => None,
        };
        Some(match pods {
            Some((asked, scaled, capacity)) => Breakdown {
                scaler: asked - visible,
                hpa_and_start: Some((scaled - asked, capacity - scaled)),
                flink: running - capacity,
            },
            None => Breakdown {
                scaler: decided - visible,
                hpa_and_start: None,
                flink: running - decided,
            },
        })
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
    /// P2 met: one restart and one rescale of the scaler per load change.
    pub fn p2_met(&self) -> bool {
        [&self.up, &self.down]
            .iter()
            .all(|s| s.restarts == 1 && s.rescales == 1)
    }

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
        if let Some(b) = self.up.breakdown() {
            let _ = writeln!(
                out,
                "| P1 breakdown: scaler detects and asks / KEDA poll + HPA sync / TaskManager start and registration / Flink rescales in place | {} | | |",
                b.cells(),
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
            "| Lag back under the pre-step level, from the step being visible | {} | ≤ 60 s | {} |",
            secs(self.recovery_s),
            verdict(self.recovery_s.is_some_and(|s| s <= 60.0))
        );
        let _ = writeln!(
            out,
            "| P2: Flink's in-place restarts for the step up / the step down (the scaler's rescales: {} / {}; raised before Flink restarted: {}) | {} / {} | 1 / 1 | {} |",
            self.up.rescales,
            self.down.rescales,
            self.up.raises + self.down.raises,
            self.up.restarts,
            self.down.restarts,
            verdict(self.p2_met())
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
#[path = "measure_tests.rs"]
mod tests;

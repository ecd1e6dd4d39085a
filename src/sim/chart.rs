//! The simulation report as a chart (drawn by `fks-plot`, so only with the `svg`
//! feature): three stacked panels sharing the time axis (hours) — input rate, lag
//! (seconds of input, log scale, the SLO dashed) and TaskManagers (step lines) — one
//! colour per policy, with rescale (circle), restart (square) and failover (cross)
//! events marked along the top of the TaskManager panel; the policies listed on the right.

use fks_plot::{Chart, Color, HLine, Legend, Line, Marker, MarkerShape, Panel, Scale};

use super::{job::EventKind, report::Report};

/// Lags below this many seconds are drawn on the log axis' floor.
const LAG_FLOOR_S: f64 = 0.1;

fn hours(t: f64) -> f64 {
    t / 3600.0
}

/// The chart of a report.
pub fn chart(r: &Report) -> Chart {
    Chart {
        title: format!(
            "flink-keda-scaler simulate — trace {} (lag SLO {} s)",
            r.trace, r.lag_slo_s
        ),
        width: 1200,
        panel_height: 240,
        x_label: "hours".into(),
        x_max: hours(r.duration_s),
        panels: vec![input_panel(r), lag_panel(r), task_manager_panel(r)],
        events: Vec::new(),
        legend: Legend::Side {
            entries: r
                .policies
                .iter()
                .enumerate()
                .map(|(i, p)| (p.name.clone(), Color::palette(i)))
                .collect(),
            notes: vec!["● rescale ■ restart ✕ failover".into()],
        },
    }
}

/// The input rate (the same for every policy: drawn once, grey).
fn input_panel(r: &Report) -> Panel {
    let mut input = Panel::new("input rate (records/s)");
    if let Some(p) = r.policies.first() {
        let mut line = Line::new(
            "input",
            Color::GREY,
            p.series
                .iter()
                .map(|q| (hours(q.t), q.input_rate))
                .collect(),
        );
        line.name = None;
        line.width = 1;
        let max = p.series.iter().map(|q| q.input_rate).fold(0.0, f64::max);
        input.y_max = Some(max.max(1.0) * 1.05);
        input.lines.push(line);
    }
    input
}

/// Each policy's lag on a log scale, the SLO dashed.
fn lag_panel(r: &Report) -> Panel {
    let mut lag = Panel::new("lag (seconds of input, log scale)");
    lag.scale = Scale::Log { floor: LAG_FLOOR_S };
    lag.y_max = Some(
        r.policies
            .iter()
            .flat_map(|p| p.series.iter().map(|x| x.lag_s))
            .fold(r.lag_slo_s, f64::max)
            .max(1.0),
    );
    lag.hlines.push(HLine {
        y: r.lag_slo_s,
        color: Color(221, 0, 0),
        dashed: true,
    });
    for (i, p) in r.policies.iter().enumerate() {
        let mut l = Line::new(
            p.name.clone(),
            Color::palette(i),
            p.series.iter().map(|q| (hours(q.t), q.lag_s)).collect(),
        );
        l.width = 1;
        lag.lines.push(l);
    }
    lag
}

/// Each policy's TaskManagers as steps, its events as one row of markers along the top.
fn task_manager_panel(r: &Report) -> Panel {
    let tm_max = r
        .policies
        .iter()
        .flat_map(|p| p.series.iter().map(|x| x.task_managers))
        .max()
        .unwrap_or(1)
        .max(1);
    let top = f64::from(tm_max) + 1.0;
    let mut tms = Panel::new("TaskManagers (requested)");
    tms.y_max = Some(top);
    for (i, p) in r.policies.iter().enumerate() {
        let color = Color::palette(i);
        let mut steps = Line::new(
            p.name.clone(),
            color,
            p.series
                .iter()
                .map(|q| (hours(q.t), f64::from(q.task_managers)))
                .collect(),
        );
        steps.width = 1;
        steps.step = true;
        tms.lines.push(steps);
        let y = top * (0.96 - 0.035 * i as f64);
        tms.markers.extend(p.events.iter().map(|(t, kind)| Marker {
            at: (hours(*t), y),
            shape: match kind {
                EventKind::Rescale => MarkerShape::Circle,
                EventKind::Restart => MarkerShape::Square,
                EventKind::Failover => MarkerShape::Cross,
            },
            color,
        }));
    }
    tms
}

//! The timeline as a chart (drawn by `fks-plot`): lag; input, produced and consumed
//! rates; per-vertex parallelism, registered TaskManagers and the count reported to KEDA.
//! Every event is a vertical line across the three panels (load changes black, rescale
//! starts blue, rescale ends green, TaskManagers started/stopped orange/purple, refusals
//! and failovers red), labelled in the top panel.

use std::path::Path;

use fks_plot::{Chart, Color, EventLine, Legend, Line, Panel, PALETTE};

use crate::{
    error::{LabError, Result},
    timeline::{EventKind, Timeline},
};

const BLUE: Color = PALETTE[0];
const ORANGE: Color = PALETTE[1];
const GREEN: Color = PALETTE[2];
const PURPLE: Color = PALETTE[4];
/// Colours of the per-vertex parallelism lines (purple, brown, pink, cyan, blue, green).
const VERTEX_COLORS: [usize; 6] = [4, 5, 6, 7, 0, 2];

fn event_color(kind: EventKind) -> Color {
    match kind {
        EventKind::Load => Color::BLACK,
        EventKind::RescaleStarted | EventKind::RescaleRaised => BLUE,
        EventKind::RescaleFinished => GREEN,
        EventKind::HpaScaled | EventKind::TaskManagerStarted => ORANGE,
        EventKind::TaskManagerStopped => PURPLE,
        EventKind::Refused | EventKind::Failover => Color::RED,
        EventKind::Visible | EventKind::Running => PALETTE[9],
    }
}

/// Events with a label on the plot: a rescale's end, the step's visibility and Flink's
/// RUNNING instant sit next to the events that name them.
fn labelled(kind: EventKind) -> bool {
    !matches!(
        kind,
        EventKind::RescaleFinished | EventKind::Visible | EventKind::Running
    )
}

/// `(at, value)` of the points where `value` is known.
fn series(t: &Timeline, value: impl Fn(&crate::timeline::Point) -> Option<f64>) -> Vec<(f64, f64)> {
    t.points
        .iter()
        .filter_map(|p| value(p).map(|v| (p.at, v)))
        .collect()
}

/// Top panel: the source's backlog.
fn lag_panel(t: &Timeline) -> Panel {
    let mut lag = Panel::new("lag (pendingRecords)");
    let data = series(t, |p| p.lag);
    lag.y_max = Some(data.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1);
    lag.lines.push(Line::new("lag", Color::RED, data));
    lag
}

/// Middle panel: the scheduled input rate and what Prometheus saw produced and consumed.
fn rate_panel(t: &Timeline) -> Panel {
    let mut rates = Panel::new("records/s");
    rates.lines = vec![
        Line::new(
            "input rate (schedule)",
            Color::BLACK,
            series(t, |p| Some(p.input_rate)),
        ),
        Line::new(
            "produced (Prometheus)",
            BLUE,
            series(t, |p| p.produced_rate),
        ),
        Line::new(
            "consumed by the source (Prometheus)",
            GREEN,
            series(t, |p| p.consumed_rate),
        ),
    ];
    let max = rates
        .lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(1.0, f64::max);
    rates.y_max = Some(max * 1.15);
    rates
}

/// Bottom panel: parallelism per vertex, TaskManagers registered and reported to KEDA
/// (small vertical offsets keep equal lines apart).
fn count_panel(t: &Timeline) -> Panel {
    let mut counts = Panel::new("parallelism / TaskManagers");
    let top = t
        .points
        .iter()
        .flat_map(|p| {
            [
                p.max_parallelism(),
                p.task_managers(),
                p.reported.unwrap_or(0),
            ]
        })
        .max()
        .unwrap_or(1);
    counts.y_max = Some(f64::from(top) + 1.0);
    for (i, v) in t.vertices.iter().enumerate() {
        let off = 0.05 * i as f64;
        let data = series(t, |p| {
            let par = p.flink.as_ref()?.vertices.iter().find(|(n, _)| n == v)?.1;
            Some(f64::from(par) + off)
        });
        counts.lines.push(Line::new(
            format!("parallelism: {v}"),
            PALETTE[VERTEX_COLORS[i % VERTEX_COLORS.len()]],
            data,
        ));
    }
    let mut registered = Line::new(
        "TaskManagers registered",
        ORANGE,
        series(t, |p| {
            p.flink
                .as_ref()
                .map(|_| f64::from(p.task_managers()) - 0.05)
        }),
    );
    registered.width = 3;
    let mut reported = Line::new(
        "TaskManagers reported to KEDA",
        Color::RED,
        series(t, |p| p.reported.map(|r| f64::from(r) - 0.1)),
    );
    reported.width = 1;
    counts.lines.extend([registered, reported]);
    counts
}

/// The chart of `t`.
pub fn chart(t: &Timeline, title: &str) -> Chart {
    Chart {
        title: title.to_string(),
        width: 1400,
        panel_height: 320,
        x_label: "seconds".into(),
        x_max: t.points.last().map_or(1.0, |p| p.at.max(1.0)),
        panels: vec![lag_panel(t), rate_panel(t), count_panel(t)],
        events: t
            .events
            .iter()
            .map(|e| EventLine {
                x: e.at,
                color: event_color(e.kind),
                label: labelled(e.kind).then(|| e.kind.label().to_string()),
            })
            .collect(),
        legend: Legend::InPanels,
    }
}

/// Writes the plot of `t` to `path` (SVG).
pub fn svg(t: &Timeline, path: &Path, title: &str) -> Result<()> {
    let text = fks_plot::render_svg(&chart(t, title)).map_err(|e| {
        LabError::io(
            "draw the timeline plot",
            std::io::Error::other(e.to_string()),
        )
    })?;
    std::fs::write(path, text).map_err(|e| LabError::io(format!("write {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{driver::FlinkView, timeline::Point};

    #[test]
    fn writes_an_svg_with_every_series_and_event() {
        let mut t = Timeline {
            vertices: vec!["Source: topic".into(), "count".into()],
            ..Timeline::default()
        };
        for i in 0..20 {
            t.points.push(Point {
                at: f64::from(i),
                phase: "steady",
                input_rate: 650.0,
                produced_rate: Some(640.0),
                consumed_rate: Some(630.0),
                lag: Some(f64::from(i * 10)),
                flink: Some(FlinkView {
                    task_managers: 1,
                    vertices: vec![("Source: topic".into(), 1), ("count".into(), 2)],
                    job_id: "j".into(),
                    job_state: "RUNNING".into(),
                    slots_per_task_manager: 2,
                }),
                reported: Some(1),
                ..Point::default()
            });
        }
        t.push_event(5.0, EventKind::Load, "650 → 1950");
        t.push_event(7.0, EventKind::RescaleStarted, "up");
        let dir = std::env::temp_dir().join(format!("fks-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("t.svg");
        svg(&t, &path, "test run").expect("plot");
        let text = std::fs::read_to_string(&path).expect("svg");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(text.starts_with("<svg"), "{}", &text[..80.min(text.len())]);
        for label in [
            "test run",
            "lag",
            "parallelism: Source: topic",
            "parallelism: count",
            "TaskManagers registered",
            "TaskManagers reported to KEDA",
            "rescale-start",
            "load",
        ] {
            assert!(text.contains(label), "missing {label}");
        }
    }
}

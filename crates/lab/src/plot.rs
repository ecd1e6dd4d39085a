//! The timeline as an SVG (plotters, SVG backend only): lag; input, produced and consumed
//! rates; per-vertex parallelism, registered TaskManagers and the count reported to KEDA.
//! Every event is a vertical line across the three panels (load changes black, rescale
//! starts blue, rescale ends green, TaskManagers started/stopped orange/purple, refusals
//! and failovers red), labelled in the top panel.

use std::path::Path;

use plotters::prelude::*;

use super::{
    error::{LabError, Result},
    timeline::{EventKind, Timeline},
};

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

/// A named, coloured line.
type Line<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

fn event_color(kind: EventKind) -> RGBColor {
    match kind {
        EventKind::Load => RGBColor(0, 0, 0),
        EventKind::RescaleStarted => RGBColor(31, 119, 180),
        EventKind::RescaleFinished => RGBColor(44, 160, 44),
        EventKind::TaskManagerStarted => RGBColor(255, 127, 14),
        EventKind::TaskManagerStopped => RGBColor(148, 103, 189),
        EventKind::Refused | EventKind::Failover => RGBColor(214, 39, 40),
    }
}

fn draw_err(e: impl std::fmt::Display) -> LabError {
    LabError::io(
        "draw the timeline plot",
        std::io::Error::other(e.to_string()),
    )
}

type Panel<'a> = ChartContext<
    'a,
    SVGBackend<'a>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

fn events(chart: &mut Panel<'_>, t: &Timeline, top: f64, labels: bool) -> Result<()> {
    for e in &t.events {
        let c = event_color(e.kind);
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(e.at, 0.0), (e.at, top)],
                c.mix(0.6).stroke_width(1),
            )))
            .map_err(draw_err)?;
        if labels && e.kind != EventKind::RescaleFinished {
            chart
                .draw_series(std::iter::once(Text::new(
                    e.kind.label().to_string(),
                    (e.at, top * 0.97),
                    ("sans-serif", 11).into_font().color(&c),
                )))
                .map_err(draw_err)?;
        }
    }
    Ok(())
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// A panel over the whole run with events drawn.
fn panel<'a>(
    area: &Area<'a>,
    t: &Timeline,
    top: f64,
    y_desc: &str,
    labels: bool,
) -> Result<Panel<'a>> {
    let end = t.points.last().map_or(1.0, |p| p.at.max(1.0));
    let mut c = ChartBuilder::on(area)
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..end, 0.0..top)
        .map_err(draw_err)?;
    c.configure_mesh()
        .y_desc(y_desc)
        .x_desc("seconds")
        .draw()
        .map_err(draw_err)?;
    events(&mut c, t, top, labels)?;
    Ok(c)
}

/// One labelled line.
fn line(
    c: &mut Panel<'_>,
    data: Vec<(f64, f64)>,
    color: RGBColor,
    width: u32,
    label: &str,
) -> Result<()> {
    c.draw_series(LineSeries::new(data, color.stroke_width(width)))
        .map_err(draw_err)?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    Ok(())
}

fn legend(c: &mut Panel<'_>) -> Result<()> {
    c.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(draw_err)
}

/// Writes the plot of `t` to `path` (SVG).
pub fn svg(t: &Timeline, path: &Path, title: &str) -> Result<()> {
    let root = SVGBackend::new(path, (1400, 1000)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err)?;
    let root = root.titled(title, ("sans-serif", 20)).map_err(draw_err)?;
    let panels = root.split_evenly((3, 1));

    // 1: lag
    let lag_max = t.points.iter().filter_map(|p| p.lag).fold(1.0, f64::max) * 1.1;
    let mut c = panel(&panels[0], t, lag_max, "lag (pendingRecords)", true)?;
    let lag = t
        .points
        .iter()
        .filter_map(|p| p.lag.map(|l| (p.at, l)))
        .collect();
    line(&mut c, lag, RED, 2, "lag")?;
    legend(&mut c)?;

    // 2: rates
    let rate_max = t
        .points
        .iter()
        .flat_map(|p| [Some(p.input_rate), p.produced_rate, p.consumed_rate])
        .flatten()
        .fold(1.0, f64::max)
        * 1.15;
    let mut c = panel(&panels[1], t, rate_max, "records/s", false)?;
    let series: [Line<'_>; 3] = [
        (
            "input rate (schedule)",
            RGBColor(0, 0, 0),
            t.points.iter().map(|p| (p.at, p.input_rate)).collect(),
        ),
        (
            "produced (Prometheus)",
            PALETTE[0],
            t.points
                .iter()
                .filter_map(|p| p.produced_rate.map(|r| (p.at, r)))
                .collect(),
        ),
        (
            "consumed by the source (Prometheus)",
            PALETTE[1],
            t.points
                .iter()
                .filter_map(|p| p.consumed_rate.map(|r| (p.at, r)))
                .collect(),
        ),
    ];
    for (name, color, data) in series {
        line(&mut c, data, color, 2, name)?;
    }
    legend(&mut c)?;

    // 3: parallelism and TaskManagers
    let count_max = t
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
        .unwrap_or(1) as f64
        + 1.0;
    let mut c = panel(
        &panels[2],
        t,
        count_max,
        "parallelism / TaskManagers",
        false,
    )?;
    for (i, v) in t.vertices.iter().enumerate() {
        // a small vertical offset per vertex keeps equal lines apart
        let off = 0.05 * i as f64;
        let data = t
            .points
            .iter()
            .filter_map(|p| {
                let f = p.flink.as_ref()?;
                let par = f.vertices.iter().find(|(n, _)| n == v)?.1;
                Some((p.at, f64::from(par) + off))
            })
            .collect();
        line(
            &mut c,
            data,
            PALETTE[(i + 2) % PALETTE.len()],
            2,
            &format!("parallelism: {v}"),
        )?;
    }
    let tms = t
        .points
        .iter()
        .filter(|p| p.flink.is_some())
        .map(|p| (p.at, f64::from(p.task_managers()) - 0.05))
        .collect();
    line(
        &mut c,
        tms,
        RGBColor(255, 127, 14),
        3,
        "TaskManagers registered",
    )?;
    let reported = t
        .points
        .iter()
        .filter_map(|p| p.reported.map(|r| (p.at, f64::from(r) - 0.1)))
        .collect();
    line(&mut c, reported, RED, 1, "TaskManagers reported to KEDA")?;
    legend(&mut c)?;
    root.present().map_err(draw_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::{driver::FlinkView, timeline::Point};

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

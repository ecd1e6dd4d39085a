//! [`render_svg`]: a [`Chart`] drawn with `plotters`' SVG backend into a string. Panels are
//! stacked evenly under the title; with a side legend the panels leave a column free on
//! the right.

use plotters::{
    coord::{types::RangedCoordf64, Shift},
    prelude::*,
    // the trait (`mix`, `filled`, `stroke_width`); the name `Color` is the model's
    style::Color as _,
};

use crate::model::{Chart, Color, Legend, MarkerShape, Panel, Scale};

/// Pixels of the title band.
const TITLE_H: u32 = 40;
/// Width of the side legend column.
const SIDE_W: u32 = 220;

/// Drawing failed (plotters reports backend errors as text).
#[derive(Debug, thiserror::Error)]
#[error("drawing the chart {title:?}: {message}")]
pub struct PlotError {
    /// The chart's title.
    pub title: String,
    /// What plotters reported.
    pub message: String,
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// Renders `chart` as an SVG document.
pub fn render_svg(chart: &Chart) -> Result<String, PlotError> {
    let err = |e: &dyn std::fmt::Display| PlotError {
        title: chart.title.clone(),
        message: e.to_string(),
    };
    let height = TITLE_H + chart.panel_height * (chart.panels.len().max(1) as u32);
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (chart.width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let root = root
            .titled(&chart.title, ("sans-serif", 20))
            .map_err(|e| err(&e))?;
        let plots = match &chart.legend {
            Legend::Side { entries, notes } => {
                let (plots, side) = root.split_horizontally(chart.width.saturating_sub(SIDE_W));
                side_legend(&side, entries, notes).map_err(|e| err(&e))?;
                plots
            }
            Legend::InPanels => root,
        };
        for (i, (panel, area)) in chart
            .panels
            .iter()
            .zip(plots.split_evenly((chart.panels.len().max(1), 1)))
            .enumerate()
        {
            draw_panel(&area, chart, panel, i == 0).map_err(|e| err(&e))?;
        }
        plots.present().map_err(|e| err(&e))?;
    }
    Ok(tidy_text(&out))
}

/// plotters writes `<text ...>\nlabel\n</text>`; the label is kept without the newlines
/// (they render as a space, and `>label</text>` is what readers and tests search for).
fn tidy_text(svg: &str) -> String {
    let mut out = String::with_capacity(svg.len());
    let mut rest = svg;
    while let Some(start) = rest.find("<text") {
        let Some(open_end) = rest[start..].find('>').map(|i| start + i + 1) else {
            break;
        };
        out.push_str(&rest[..open_end]);
        rest = &rest[open_end..];
        let Some(close) = rest.find("</text>") else {
            break;
        };
        out.push_str(rest[..close].trim_matches('\n'));
        rest = &rest[close..];
    }
    out.push_str(rest);
    out
}

type DrawResult =
    Result<(), DrawingAreaErrorKind<<SVGBackend<'static> as DrawingBackend>::ErrorType>>;

fn rgb(c: Color) -> RGBColor {
    RGBColor(c.0, c.1, c.2)
}

/// Tick labels without a trailing `.0`, and without float noise.
fn number(v: f64) -> String {
    let r = (v * 1000.0).round() / 1000.0;
    if r.fract() == 0.0 && r.abs() < 1e15 {
        format!("{}", r as i64)
    } else {
        format!("{r}")
    }
}

fn draw_panel(area: &Area<'_>, chart: &Chart, panel: &Panel, top_panel: bool) -> DrawResult {
    let top = panel.top();
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70);
    let x = 0.0..chart.x_max.max(f64::MIN_POSITIVE);
    match panel.scale {
        Scale::Linear => {
            let mut c = builder.build_cartesian_2d(x, 0.0..top)?;
            mesh(&mut c, chart, panel)?;
            fill(&mut c, chart, panel, top, |v| v, top_panel)
        }
        Scale::Log { floor } => {
            let floor = floor.max(f64::MIN_POSITIVE);
            let y = (floor..top.max(floor * 10.0)).log_scale();
            let mut c = builder.build_cartesian_2d(x, y)?;
            mesh(&mut c, chart, panel)?;
            fill(&mut c, chart, panel, top, move |v| v.max(floor), top_panel)
        }
    }
}

/// Grid, axes, tick labels and axis descriptions.
fn mesh<'a, Y>(
    c: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<RangedCoordf64, Y>>,
    chart: &Chart,
    panel: &Panel,
) -> DrawResult
where
    Y: Ranged<ValueType = f64> + plotters::coord::ranged1d::ValueFormatter<f64>,
{
    c.configure_mesh()
        .x_desc(chart.x_label.as_str())
        .y_desc(panel.y_label.as_str())
        .x_label_formatter(&|v| number(*v))
        .y_label_formatter(&|v| number(*v))
        .draw()
}

/// Draws events, reference lines, lines, markers and the in-panel legend.
fn fill<'a, Y>(
    c: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<RangedCoordf64, Y>>,
    chart: &Chart,
    panel: &Panel,
    top: f64,
    y: impl Fn(f64) -> f64,
    top_panel: bool,
) -> DrawResult
where
    Y: Ranged<ValueType = f64>,
{
    let bottom = y(0.0);
    for e in &chart.events {
        let color = rgb(e.color);
        c.draw_series(std::iter::once(PathElement::new(
            vec![(e.x, bottom), (e.x, top)],
            color.mix(0.6).stroke_width(1),
        )))?;
        if let (true, Some(label)) = (top_panel, &e.label) {
            c.draw_series(std::iter::once(Text::new(
                label.clone(),
                (e.x, y(top * 0.97)),
                ("sans-serif", 11).into_font().color(&color),
            )))?;
        }
    }
    for h in &panel.hlines {
        let style = rgb(h.color).stroke_width(1);
        let pts = vec![(0.0, y(h.y)), (chart.x_max, y(h.y))];
        if h.dashed {
            c.draw_series(DashedLineSeries::new(pts, 4, 3, style))?;
        } else {
            c.draw_series(LineSeries::new(pts, style))?;
        }
    }
    let mut named = false;
    for l in &panel.lines {
        let color = rgb(l.color);
        let pts: Vec<(f64, f64)> = l
            .path()
            .into_iter()
            .filter(|p| p.1.is_finite())
            .map(|(px, py)| (px, y(py)))
            .collect();
        let series = c.draw_series(LineSeries::new(pts, color.stroke_width(l.width)))?;
        if let (Some(name), Legend::InPanels) = (&l.name, &chart.legend) {
            named = true;
            series
                .label(name.as_str())
                .legend(move |(lx, ly)| PathElement::new(vec![(lx, ly), (lx + 20, ly)], color));
        }
    }
    for m in &panel.markers {
        let color = rgb(m.color);
        let at = (m.at.0, y(m.at.1));
        match m.shape {
            MarkerShape::Circle => {
                c.draw_series(std::iter::once(Circle::new(at, 3, color.filled())))?;
            }
            MarkerShape::Square => {
                c.draw_series(std::iter::once(
                    EmptyElement::at(at) + Rectangle::new([(-3, -3), (3, 3)], color.filled()),
                ))?;
            }
            MarkerShape::Cross => {
                c.draw_series(std::iter::once(Cross::new(at, 3, color.stroke_width(2))))?;
            }
        }
    }
    if named {
        c.configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()?;
    }
    Ok(())
}

/// The side legend: a coloured dash and a name per entry, then the notes.
fn side_legend(side: &Area<'_>, entries: &[(String, Color)], notes: &[String]) -> DrawResult {
    let font = ("sans-serif", 12).into_font();
    let mut y = 20;
    for (name, color) in entries {
        side.draw(&PathElement::new(
            vec![(15, y), (35, y)],
            rgb(*color).stroke_width(3),
        ))?;
        side.draw(&Text::new(name.clone(), (40, y - 7), font.clone()))?;
        y += 18;
    }
    y += 10;
    for note in notes {
        side.draw(&Text::new(note.clone(), (15, y - 7), font.clone()))?;
        y += 16;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EventLine, HLine, Line, Marker};

    fn chart(legend: Legend) -> Chart {
        let mut rate = Panel::new("records/s");
        rate.lines.push(Line::new(
            "input",
            Color::BLACK,
            (0..10)
                .map(|i| (f64::from(i), 100.0 + f64::from(i)))
                .collect(),
        ));
        let mut lag = Panel::new("lag (s)");
        lag.scale = Scale::Log { floor: 0.1 };
        lag.lines.push(Line::new(
            "lag",
            Color::RED,
            (0..10).map(|i| (f64::from(i), f64::from(i * i))).collect(),
        ));
        lag.hlines.push(HLine {
            y: 30.0,
            color: Color::RED,
            dashed: true,
        });
        let mut tms = Panel::new("TaskManagers");
        let mut step = Line::new("tms", Color::palette(0), vec![(0.0, 1.0), (5.0, 3.0)]);
        step.step = true;
        tms.lines.push(step);
        for (i, shape) in [MarkerShape::Circle, MarkerShape::Square, MarkerShape::Cross]
            .into_iter()
            .enumerate()
        {
            tms.markers.push(Marker {
                at: (f64::from(i as u32) + 1.0, 3.5),
                shape,
                color: Color::palette(i),
            });
        }
        Chart {
            title: "a test chart".into(),
            width: 900,
            panel_height: 200,
            x_label: "seconds".into(),
            x_max: 10.0,
            panels: vec![rate, lag, tms],
            events: vec![EventLine {
                x: 4.0,
                color: Color::BLACK,
                label: Some("load step".into()),
            }],
            legend,
        }
    }

    #[test]
    fn in_panel_legends_name_every_line_and_the_events_are_labelled() {
        let svg = render_svg(&chart(Legend::InPanels)).expect("render");
        assert!(svg.starts_with("<svg"), "{}", &svg[..60.min(svg.len())]);
        assert!(svg.trim_end().ends_with("</svg>"));
        for text in [
            "a test chart",
            ">input<",
            ">lag<",
            ">tms<",
            ">load step<",
            "records/s",
        ] {
            assert!(svg.contains(text), "missing {text}");
        }
        // the dashed reference line is drawn as several segments
        assert!(svg.matches("<polyline").count() >= 5);
    }

    #[test]
    fn a_side_legend_lists_its_entries_and_notes_and_not_the_lines() {
        let legend = Legend::Side {
            entries: vec![("policy-a".into(), Color::palette(0))],
            notes: vec!["● rescale ■ restart ✕ failover".into()],
        };
        let svg = render_svg(&chart(legend)).expect("render");
        assert!(svg.contains(">policy-a</text>"));
        assert!(svg.contains("● rescale ■ restart ✕ failover"));
        assert!(
            !svg.contains(">tms</text>"),
            "lines are not listed in panels"
        );
    }

    #[test]
    fn rendering_is_deterministic() {
        let c = chart(Legend::InPanels);
        assert_eq!(render_svg(&c).expect("a"), render_svg(&c).expect("b"));
    }

    #[test]
    fn text_labels_lose_the_newlines_around_them() {
        let svg = "<svg>\n<text x=\"1\">\nlag\n</text>\n<text y=\"2\">\na > b\n</text>\n</svg>\n";
        assert_eq!(
            tidy_text(svg),
            "<svg>\n<text x=\"1\">lag</text>\n<text y=\"2\">a > b</text>\n</svg>\n"
        );
    }

    #[test]
    fn tick_numbers_are_short() {
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.1), "0.1");
        assert_eq!(number(1000.0), "1000");
        assert_eq!(number(2.0000000001), "2");
    }
}

//! The chart model: plain data, no drawing. Coordinates are data values; the x axis is
//! shared by every panel and runs from 0 to [`Chart::x_max`].

/// An RGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Color(pub u8, pub u8, pub u8);

impl Color {
    /// Black.
    pub const BLACK: Color = Color(0, 0, 0);
    /// The red used for limits and failures.
    pub const RED: Color = Color(214, 39, 40);
    /// Dark grey.
    pub const GREY: Color = Color(51, 51, 51);
}

/// Ten distinguishable series colours (matplotlib's `tab10`).
pub const PALETTE: [Color; 10] = [
    Color(31, 119, 180),
    Color(255, 127, 14),
    Color(44, 160, 44),
    Color(214, 39, 40),
    Color(148, 103, 189),
    Color(140, 86, 75),
    Color(227, 119, 194),
    Color(23, 190, 207),
    Color(188, 189, 34),
    Color(127, 127, 127),
];

impl Color {
    /// The `i`-th palette colour (wrapping).
    pub fn palette(i: usize) -> Color {
        PALETTE[i % PALETTE.len()]
    }
}

/// A whole chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// Title above the panels.
    pub title: String,
    /// Width in pixels.
    pub width: u32,
    /// Height of one panel in pixels.
    pub panel_height: u32,
    /// The x axis' description (e.g. `seconds`, `hours`).
    pub x_label: String,
    /// Right end of the shared x axis (the left end is 0).
    pub x_max: f64,
    /// Panels, top to bottom.
    pub panels: Vec<Panel>,
    /// Vertical lines across every panel (labelled in the top panel when they have one).
    pub events: Vec<EventLine>,
    /// Where the legend goes.
    pub legend: Legend,
}

/// Where series names are listed.
#[derive(Debug, Clone, PartialEq)]
pub enum Legend {
    /// A box in the upper left corner of each panel, listing that panel's named lines.
    InPanels,
    /// A column right of the panels: `entries` (name, colour), then `notes` lines of text.
    Side {
        /// Named colours, in order.
        entries: Vec<(String, Color)>,
        /// Free text below the entries (e.g. what the marker shapes mean).
        notes: Vec<String>,
    },
}

/// One panel: a y axis and what is drawn against it.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// The y axis' description.
    pub y_label: String,
    /// Linear or logarithmic.
    pub scale: Scale,
    /// Top of the y axis; `None`: the largest value drawn (at least 1) plus 5 %.
    pub y_max: Option<f64>,
    /// Lines, drawn in order.
    pub lines: Vec<Line>,
    /// Horizontal reference lines (limits, SLOs).
    pub hlines: Vec<HLine>,
    /// Point markers.
    pub markers: Vec<Marker>,
}

impl Panel {
    /// An empty linear panel.
    pub fn new(y_label: impl Into<String>) -> Self {
        Self {
            y_label: y_label.into(),
            scale: Scale::Linear,
            y_max: None,
            lines: Vec::new(),
            hlines: Vec::new(),
            markers: Vec::new(),
        }
    }

    /// The top of the y axis: `y_max`, or the largest value drawn (≥ 1) × 1.05.
    pub fn top(&self) -> f64 {
        self.y_max.unwrap_or_else(|| {
            let data = self
                .lines
                .iter()
                .flat_map(|l| l.points.iter().map(|p| p.1))
                .chain(self.hlines.iter().map(|h| h.y))
                .filter(|v| v.is_finite())
                .fold(1.0, f64::max);
            data * 1.05
        })
    }
}

/// The y scale of a panel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale {
    /// From 0.
    Linear,
    /// Logarithmic from `floor` (> 0); values below it are drawn at it.
    Log {
        /// Smallest value shown.
        floor: f64,
    },
}

/// A named line.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// Legend name (`None`: not listed).
    pub name: Option<String>,
    /// Colour.
    pub color: Color,
    /// Stroke width in pixels.
    pub width: u32,
    /// A step line (the value holds until the next point) instead of straight segments.
    pub step: bool,
    /// `(x, y)` points in x order.
    pub points: Vec<(f64, f64)>,
}

impl Line {
    /// A named straight line of width 2.
    pub fn new(name: impl Into<String>, color: Color, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: Some(name.into()),
            color,
            width: 2,
            step: false,
            points,
        }
    }

    /// The points to draw: for a step line, each value is held until the next x.
    pub fn path(&self) -> Vec<(f64, f64)> {
        if !self.step {
            return self.points.clone();
        }
        let mut out = Vec::with_capacity(self.points.len() * 2);
        for (i, &(x, y)) in self.points.iter().enumerate() {
            if i > 0 {
                out.push((x, self.points[i - 1].1));
            }
            out.push((x, y));
        }
        out
    }
}

/// A horizontal reference line.
#[derive(Debug, Clone, PartialEq)]
pub struct HLine {
    /// Value.
    pub y: f64,
    /// Colour.
    pub color: Color,
    /// Dashed instead of solid.
    pub dashed: bool,
}

/// The shape of a point marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerShape {
    /// A filled circle.
    Circle,
    /// A filled square.
    Square,
    /// An ×.
    Cross,
}

/// A point marker.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    /// Position.
    pub at: (f64, f64),
    /// Shape.
    pub shape: MarkerShape,
    /// Colour.
    pub color: Color,
}

/// A vertical line across every panel at `x`.
#[derive(Debug, Clone, PartialEq)]
pub struct EventLine {
    /// Position on the x axis.
    pub x: f64,
    /// Colour.
    pub color: Color,
    /// Text written next to the line in the top panel.
    pub label: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_lines_hold_each_value_until_the_next_point() {
        let mut l = Line::new("tm", Color::BLACK, vec![(0.0, 1.0), (5.0, 3.0), (9.0, 2.0)]);
        assert_eq!(l.path(), l.points);
        l.step = true;
        assert_eq!(
            l.path(),
            vec![(0.0, 1.0), (5.0, 1.0), (5.0, 3.0), (9.0, 3.0), (9.0, 2.0)]
        );
    }

    #[test]
    fn panel_top_covers_lines_and_reference_lines() {
        let mut p = Panel::new("lag");
        assert_eq!(p.top(), 1.05);
        p.lines.push(Line::new(
            "a",
            Color::BLACK,
            vec![(0.0, 10.0), (1.0, f64::NAN)],
        ));
        p.hlines.push(HLine {
            y: 20.0,
            color: Color::RED,
            dashed: true,
        });
        assert_eq!(p.top(), 21.0);
        p.y_max = Some(5.0);
        assert_eq!(p.top(), 5.0);
    }
}

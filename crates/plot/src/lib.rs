//! fks-plot: one way to draw the project's time-series charts (simulate, backtest, the
//! lab's timeline). A [`Chart`] is plain data — stacked [`Panel`]s sharing one time axis,
//! each with named [`Line`]s (optionally step-shaped), horizontal reference lines, point
//! [`Marker`]s and an optional log scale; [`EventLine`]s crossing every panel; a legend —
//! and [`render_svg`] draws it with `plotters` (SVG backend only, no font stack).
//!
//! ```text
//!  caller (sim report, backtest, lab timeline) ──► Chart (data) ──► render_svg ──► String
//! ```

mod model;
mod render;

pub use model::{
    Chart, Color, EventLine, HLine, Legend, Line, Marker, MarkerShape, Panel, Scale, PALETTE,
};
pub use render::{render_svg, PlotError};

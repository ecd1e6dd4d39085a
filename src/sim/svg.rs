//! Hand-written SVG plot of a [`Report`]: three stacked panels sharing the time axis —
//! input rate, lag (seconds of input, log scale) and TaskManagers — one colour per policy,
//! with rescale (circle), restart (square) and failover (cross) events marked on the
//! TaskManager panel.

use std::fmt::Write as _;

use super::{job::EventKind, report::Report};

const WIDTH: f64 = 1200.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 200.0;
const PANEL_H: f64 = 200.0;
const GAP: f64 = 40.0;
const TOP: f64 = 40.0;
const PALETTE: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#bcbd22", "#7f7f7f",
];

struct Panel {
    y0: f64,
    max: f64,
    log: bool,
}

impl Panel {
    fn y(&self, v: f64) -> f64 {
        let (v, m) = if self.log {
            ((1.0 + v.max(0.0)).log10(), (1.0 + self.max).log10())
        } else {
            (v, self.max)
        };
        let frac = if m > 0.0 {
            (v / m).clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.y0 + PANEL_H * (1.0 - frac)
    }
}

fn x(t: f64, duration: f64) -> f64 {
    LEFT + (WIDTH - LEFT - RIGHT) * if duration > 0.0 { t / duration } else { 0.0 }
}

fn axis(s: &mut String, p: &Panel, title: &str, ticks: &[f64], duration: f64) {
    let x1 = WIDTH - RIGHT;
    let _ = write!(
        s,
        r##"<text x="{LEFT}" y="{:.1}" font-size="13" font-weight="bold">{title}</text>"##,
        p.y0 - 6.0
    );
    let _ = write!(
        s,
        r##"<rect x="{LEFT}" y="{:.1}" width="{:.1}" height="{PANEL_H}" fill="none" stroke="#999"/>"##,
        p.y0,
        x1 - LEFT
    );
    for v in ticks {
        let y = p.y(*v);
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{x1:.1}" y2="{y:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end">{v}</text>"##,
            LEFT - 4.0,
            y + 3.0
        );
    }
    // hour ticks (every hour up to 6 h, else every 6 h)
    let step = if duration <= 6.0 * 3600.0 {
        3600.0
    } else {
        6.0 * 3600.0
    };
    let mut t = 0.0;
    while t <= duration {
        let xx = x(t, duration);
        let _ = write!(
            s,
            r##"<text x="{xx:.1}" y="{:.1}" font-size="10" text-anchor="middle">{}h</text>"##,
            p.y0 + PANEL_H + 12.0,
            t / 3600.0
        );
        t += step;
    }
}

fn polyline(s: &mut String, pts: impl Iterator<Item = (f64, f64)>, colour: &str, width: f64) {
    let mut d = String::new();
    for (x, y) in pts {
        let _ = write!(d, "{x:.1},{y:.1} ");
    }
    let _ = write!(
        s,
        r##"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="{width}"/>"##,
        d.trim_end()
    );
}

/// Renders the report as an SVG document.
pub fn render(r: &Report) -> String {
    let d = r.duration_s;
    let height = TOP + 3.0 * (PANEL_H + GAP) + 10.0;
    let mut s = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>"##
    );
    let _ = write!(
        s,
        r##"<text x="{LEFT}" y="20" font-size="15">flink-keda-scaler simulate — trace {} (lag SLO {} s)</text>"##,
        r.trace, r.lag_slo_s
    );
    let input_max = r
        .policies
        .first()
        .map(|p| p.series.iter().map(|x| x.input_rate).fold(0.0, f64::max))
        .unwrap_or(0.0)
        .max(1.0);
    let lag_max = r
        .policies
        .iter()
        .flat_map(|p| p.series.iter().map(|x| x.lag_s))
        .fold(r.lag_slo_s, f64::max);
    let tm_max = r
        .policies
        .iter()
        .flat_map(|p| p.series.iter().map(|x| x.task_managers))
        .max()
        .unwrap_or(1)
        .max(1);
    let input = Panel {
        y0: TOP,
        max: input_max * 1.05,
        log: false,
    };
    let lag = Panel {
        y0: TOP + PANEL_H + GAP,
        max: lag_max,
        log: true,
    };
    let tms = Panel {
        y0: TOP + 2.0 * (PANEL_H + GAP),
        max: f64::from(tm_max) + 1.0,
        log: false,
    };
    let nice = |m: f64| -> Vec<f64> { (0..=4).map(|i| (m * f64::from(i) / 4.0).round()).collect() };
    axis(
        &mut s,
        &input,
        "input rate (records/s)",
        &nice(input.max),
        d,
    );
    let lag_ticks: Vec<f64> = [0.0, 1.0, 10.0, 100.0, 1_000.0, 10_000.0]
        .into_iter()
        .filter(|v| *v <= lag_max)
        .collect();
    axis(
        &mut s,
        &lag,
        "lag (seconds of input, log scale)",
        &lag_ticks,
        d,
    );
    axis(&mut s, &tms, "TaskManagers (requested)", &nice(tms.max), d);
    // SLO line
    let y = lag.y(r.lag_slo_s);
    let _ = write!(
        s,
        r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#d00" stroke-dasharray="4,3"/>"##,
        WIDTH - RIGHT
    );
    if let Some(p) = r.policies.first() {
        polyline(
            &mut s,
            p.series.iter().map(|q| (x(q.t, d), input.y(q.input_rate))),
            "#333",
            1.2,
        );
    }
    for (i, p) in r.policies.iter().enumerate() {
        let c = PALETTE[i % PALETTE.len()];
        polyline(
            &mut s,
            p.series.iter().map(|q| (x(q.t, d), lag.y(q.lag_s))),
            c,
            1.2,
        );
        // step line for TaskManagers
        let mut pts = Vec::new();
        let mut prev: Option<f64> = None;
        for q in &p.series {
            let (xx, yy) = (x(q.t, d), tms.y(f64::from(q.task_managers)));
            if let Some(py) = prev {
                pts.push((xx, py));
            }
            pts.push((xx, yy));
            prev = Some(yy);
        }
        polyline(&mut s, pts.into_iter(), c, 1.2);
        let ey = tms.y0 + 6.0 + 5.0 * i as f64;
        for (t, kind) in &p.events {
            let ex = x(*t, d);
            let _ = match kind {
                EventKind::Rescale => write!(
                    s,
                    r##"<circle cx="{ex:.1}" cy="{ey:.1}" r="2.5" fill="{c}"/>"##
                ),
                EventKind::Restart => write!(
                    s,
                    r##"<rect x="{:.1}" y="{:.1}" width="5" height="5" fill="{c}"/>"##,
                    ex - 2.5,
                    ey - 2.5
                ),
                EventKind::Failover => write!(
                    s,
                    r##"<path d="M{:.1},{:.1}l6,6m0,-6l-6,6" stroke="{c}" stroke-width="1.5"/>"##,
                    ex - 3.0,
                    ey - 3.0
                ),
            };
        }
        let ly = TOP + 10.0 + 18.0 * i as f64;
        let lx = WIDTH - RIGHT + 15.0;
        let _ = write!(
            s,
            r##"<line x1="{lx}" y1="{ly}" x2="{:.1}" y2="{ly}" stroke="{c}" stroke-width="3"/><text x="{:.1}" y="{:.1}" font-size="12">{}</text>"##,
            lx + 20.0,
            lx + 25.0,
            ly + 4.0,
            p.name
        );
    }
    let ly = TOP + 10.0 + 18.0 * r.policies.len() as f64 + 10.0;
    let _ = write!(
        s,
        r##"<text x="{:.1}" y="{ly:.1}" font-size="11">● rescale ■ restart ✕ failover</text>"##,
        WIDTH - RIGHT + 15.0
    );
    s.push_str("</svg>\n");
    s
}

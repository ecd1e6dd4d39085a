//! Load traces: `t_seconds,input_rate` series, the deterministic generators of the four
//! built-in traces (`traces/*.csv` are their committed output) and the CSV parser. The
//! only I/O is [`load_csv`], a thin file reader around [`Trace::parse_csv`].

use std::path::Path;

use super::{rng::SplitMix64, SimError};

/// A load trace: input rate (records/s) from time `t` until the next sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// Name (file stem or built-in name).
    pub name: String,
    /// `(t_seconds, input_rate)` samples, strictly increasing `t`, first at 0.
    pub samples: Vec<(f64, f64)>,
}

/// The built-in traces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltinTrace {
    /// 4 h: 4 000 rec/s, a 3× step to 12 000 rec/s for 1 h, back down.
    Step,
    /// 2 days: daily sine (trough 03:00, peak 15:00) plus a sharp 09:00 morning peak that
    /// rises within ~5 min and decays over 90 min.
    Diurnal,
    /// 4 h: 4 000 rec/s with short seeded bursts of 2.5–3.5× lasting 1–5 min.
    Spikes,
    /// 4 h: 6 000 rec/s ± 10 % seeded noise.
    Noisy,
}

impl BuiltinTrace {
    /// Every built-in trace.
    pub const ALL: [BuiltinTrace; 4] = [
        BuiltinTrace::Step,
        BuiltinTrace::Diurnal,
        BuiltinTrace::Spikes,
        BuiltinTrace::Noisy,
    ];

    /// File stem (`traces/<name>.csv`).
    pub fn name(self) -> &'static str {
        match self {
            BuiltinTrace::Step => "step",
            BuiltinTrace::Diurnal => "diurnal",
            BuiltinTrace::Spikes => "spikes",
            BuiltinTrace::Noisy => "noisy",
        }
    }

    /// Parses a built-in name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }

    /// Generates the trace (seeded where random; rates rounded to whole records/s so the
    /// CSV round-trips exactly).
    pub fn generate(self) -> Trace {
        let samples = match self {
            BuiltinTrace::Step => step(),
            BuiltinTrace::Diurnal => diurnal(),
            BuiltinTrace::Spikes => spikes(0x5EED_0001),
            BuiltinTrace::Noisy => noisy(0x5EED_0002),
        };
        Trace {
            name: self.name().to_string(),
            samples,
        }
    }
}

const HOUR: f64 = 3600.0;
const DAY: f64 = 86_400.0;

fn step() -> Vec<(f64, f64)> {
    (0..(4 * 120))
        .map(|i| {
            let t = f64::from(i) * 30.0;
            let r = if (HOUR..2.0 * HOUR).contains(&t) {
                12_000.0
            } else {
                4_000.0
            };
            (t, r)
        })
        .collect()
}

fn diurnal() -> Vec<(f64, f64)> {
    (0..(2 * 24 * 60))
        .map(|i| {
            let t = f64::from(i) * 60.0;
            let day_phase = (t % DAY) / DAY;
            // daily sine, trough at 03:00, peak at 15:00
            let sine = 0.5 * (1.0 - (2.0 * std::f64::consts::PI * (day_phase - 0.125)).cos());
            // morning peak: a sharp rise at 09:00 (logistic, 1 min time constant) that
            // decays over 90 min (market open, morning push campaign)
            let m = ((t % DAY) - 9.0 * HOUR) / 60.0;
            let morning = 1.0 / (1.0 + (-m).exp()) * (-m.max(0.0) / 90.0).exp();
            (t, (2_000.0 + 5_000.0 * sine + 6_000.0 * morning).round())
        })
        .collect()
}

fn spikes(seed: u64) -> Vec<(f64, f64)> {
    let mut rng = SplitMix64::new(seed);
    let n = 4 * 360; // 10 s resolution
    let mut rates = vec![4_000.0; n];
    let mut i = 60; // first burst not before 10 min
    while i < n {
        let len = 6 + (rng.next_f64() * 24.0) as usize; // 1–5 min
        let factor = 2.5 + rng.next_f64();
        for r in rates.iter_mut().skip(i).take(len) {
            *r = (4_000.0 * factor).round();
        }
        i += len + 90 + (rng.next_f64() * 180.0) as usize; // 15–45 min apart
    }
    rates
        .into_iter()
        .enumerate()
        .map(|(i, r)| (i as f64 * 10.0, r))
        .collect()
}

fn noisy(seed: u64) -> Vec<(f64, f64)> {
    let mut rng = SplitMix64::new(seed);
    (0..(4 * 360))
        .map(|i| {
            let noise = (rng.next_normal() * 0.1).clamp(-0.3, 0.3);
            (f64::from(i) * 10.0, (6_000.0 * (1.0 + noise)).round())
        })
        .collect()
}

impl Trace {
    /// Input rate at `t` (step-hold: the last sample at or before `t`; 0 before the first).
    pub fn rate_at(&self, t: f64) -> f64 {
        let idx = self.samples.partition_point(|(ts, _)| *ts <= t);
        if idx == 0 {
            0.0
        } else {
            self.samples[idx - 1].1
        }
    }

    /// Duration: the last sample's time plus the last sample spacing.
    pub fn duration(&self) -> f64 {
        match self.samples.as_slice() {
            [] => 0.0,
            [only] => only.0 + 1.0,
            [.., a, b] => b.0 + (b.0 - a.0),
        }
    }

    /// Highest input rate.
    pub fn peak(&self) -> f64 {
        self.samples.iter().map(|s| s.1).fold(0.0, f64::max)
    }

    /// CSV with header `t_seconds,input_rate`, one row per sample.
    pub fn to_csv(&self) -> String {
        let mut s = String::from("t_seconds,input_rate\n");
        for (t, r) in &self.samples {
            s.push_str(&format!("{t},{r}\n"));
        }
        s
    }

    /// Parses `t_seconds,input_rate` CSV (header optional, `#` comments and blank lines
    /// skipped). Times must start at ≥ 0 and increase strictly; rates must be finite ≥ 0.
    pub fn parse_csv(name: &str, text: &str) -> Result<Trace, SimError> {
        let mut samples: Vec<(f64, f64)> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') || (i == 0 && l.starts_with("t_seconds")) {
                continue;
            }
            let bad = |what: &str| SimError::TraceFormat {
                trace: name.to_string(),
                line: line_no,
                message: what.to_string(),
            };
            let mut parts = l.split(',').map(str::trim);
            let (Some(ts), Some(rs), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(bad("expected two columns t_seconds,input_rate"));
            };
            let t: f64 = ts.parse().map_err(|_| bad("t_seconds is not a number"))?;
            let r: f64 = rs.parse().map_err(|_| bad("input_rate is not a number"))?;
            if !t.is_finite() || t < 0.0 {
                return Err(bad("t_seconds must be finite and ≥ 0"));
            }
            if !r.is_finite() || r < 0.0 {
                return Err(bad("input_rate must be finite and ≥ 0"));
            }
            if let Some((prev, _)) = samples.last() {
                if t <= *prev {
                    return Err(bad("t_seconds must increase strictly"));
                }
            }
            samples.push((t, r));
        }
        if samples.is_empty() {
            return Err(SimError::EmptyTrace(name.to_string()));
        }
        Ok(Trace {
            name: name.to_string(),
            samples,
        })
    }
}

/// Reads a trace CSV file (the only file I/O of the simulator). The trace is named after
/// the file stem.
pub fn load_csv(path: &Path) -> Result<Trace, SimError> {
    let text = std::fs::read_to_string(path).map_err(|source| SimError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "trace".to_string());
    Trace::parse_csv(&name, &text)
}

/// Writes every built-in trace as `<dir>/<name>.csv` (how `traces/*.csv` are produced).
pub fn write_builtin_traces(dir: &Path) -> Result<(), SimError> {
    for b in BuiltinTrace::ALL {
        let path = dir.join(format!("{}.csv", b.name()));
        std::fs::write(&path, b.generate().to_csv()).map_err(|source| SimError::Io {
            path: path.display().to_string(),
            source,
        })?;
    }
    Ok(())
}

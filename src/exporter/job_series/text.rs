//! The text of [`super::JobSeries`]: one family at a time (HELP, TYPE, then its lines),
//! labels in sorted order and escaped like the `prometheus` crate's text encoder.

use std::fmt::Write as _;

use super::{JobEntry, Jobs, DIRECTIONS, OBJECT_GAUGES, SIGNAL_GAUGES};
use crate::exporter::metrics::{RescaleOutcome, PREFIX};

/// Writes the families of [`Jobs`] into one buffer.
pub(super) struct Writer<'a> {
    pub(super) out: &'a mut String,
    pub(super) jobs: &'a Jobs,
    /// Write only this family (by number), or all.
    pub(super) only: Option<usize>,
    /// Number of the next family.
    pub(super) next: usize,
}

/// Families [`JobSeries`] writes: the per-ScaledObject gauges, the last rescale time,
/// the rescale delays, the rescale counters, two parallelism and the signal gauges,
/// decisions, phase and failovers.
pub(in crate::exporter) const FAMILIES: usize =
    OBJECT_GAUGES.len() + 3 + 2 + SIGNAL_GAUGES.len() + 3;

/// One job's labels while writing.
type Each<'j> = (&'j str, &'j str, &'j JobEntry);

/// Every job with its namespace and name.
fn each(jobs: &Jobs) -> impl Iterator<Item = Each<'_>> {
    jobs.iter().flat_map(|(ns, by_name)| {
        by_name
            .iter()
            .map(move |(job, entry)| (&**ns, &**job, entry))
    })
}

impl Writer<'_> {
    /// Writes one family: HELP and TYPE, then `series` for every job; nothing when no
    /// job has a series of it.
    fn family(
        &mut self,
        name: &str,
        help: &str,
        kind: &str,
        series: impl Fn(&mut Lines<'_>, Each<'_>),
    ) {
        let number = self.next;
        self.next += 1;
        if self.only.is_some_and(|only| only != number) {
            return;
        }
        let start = self.out.len();
        let _ = writeln!(self.out, "# HELP {PREFIX}_{name} {}", escape(help, false));
        let _ = writeln!(self.out, "# TYPE {PREFIX}_{name} {kind}");
        let header = self.out.len();
        let mut lines = Lines {
            name,
            out: self.out,
        };
        for each in each(self.jobs) {
            series(&mut lines, each);
        }
        if self.out.len() == header {
            self.out.truncate(start);
        }
    }

    pub(super) fn objects(&mut self) {
        for (i, (name, help)) in OBJECT_GAUGES.iter().enumerate() {
            self.family(name, help, "gauge", |l, (ns, job, e)| {
                for o in &e.objects {
                    if let Some(v) = o.gauges[i] {
                        l.so(ns, job, &o.name, &[], v as f64);
                    }
                }
            });
        }
        self.family(
            "last_rescale_timestamp_seconds",
            "Unix time of the last rescale applied to the job.",
            "gauge",
            |l, (ns, job, e)| {
                for o in &e.objects {
                    if let Some(v) = o.last_rescale {
                        l.so(ns, job, &o.name, &[], v);
                    }
                }
            },
        );
        self.family(
            "flink_rescale_delay_seconds",
            "Longest delay a Flink setting (label `setting`) adds to a rescale the scaler asks for (cooldown, stabilization, restart back-off); absent when none.",
            "gauge",
            |l, (ns, job, e)| {
                for o in &e.objects {
                    for (setting, v) in &o.delays {
                        l.so(ns, job, &o.name, &[("setting", setting)], *v);
                    }
                }
            },
        );
        self.family(
            "rescales_total",
            "In-place rescales by direction and outcome.",
            "counter",
            |l, (ns, job, e)| {
                for o in &e.objects {
                    for (d, row) in DIRECTIONS.iter().zip(&o.rescales) {
                        for (outcome, n) in RescaleOutcome::ALL.iter().zip(row) {
                            if let Some(n) = n {
                                l.line(
                                    &[
                                        ("direction", d.as_str()),
                                        ("job_name", job),
                                        ("namespace", ns),
                                        ("outcome", outcome.as_str()),
                                        ("scaled_object", &o.name),
                                    ],
                                    *n as f64,
                                );
                            }
                        }
                    }
                }
            },
        );
    }

    pub(super) fn vertices(&mut self) {
        let parallelism = [
            (
                "vertex_desired_parallelism",
                "Parallelism the last decision wants per job vertex.",
            ),
            (
                "vertex_current_parallelism",
                "Parallelism Flink reports per job vertex.",
            ),
        ];
        for (i, (name, help)) in parallelism.iter().enumerate() {
            self.family(name, help, "gauge", |l, (ns, job, e)| {
                for v in &e.vertices {
                    if let Some((desired, current)) = v.parallelism {
                        let value = if i == 0 { desired } else { current };
                        l.line(
                            &[
                                ("job_name", job),
                                ("namespace", ns),
                                ("vertex", &v.id),
                                ("vertex_name", &v.name),
                            ],
                            value as f64,
                        );
                    }
                }
            });
        }
        for (i, (name, help)) in SIGNAL_GAUGES.iter().enumerate() {
            self.family(name, help, "gauge", |l, (ns, job, e)| {
                for v in &e.vertices {
                    if let Some(value) = v.signals[i] {
                        l.line(
                            &[("job_name", job), ("namespace", ns), ("vertex", &v.id)],
                            value,
                        );
                    }
                }
            });
        }
    }

    pub(super) fn job_families(&mut self) {
        self.family(
            "decisions_total",
            "Decisions by the rule that settled them.",
            "counter",
            |l, (ns, job, e)| {
                for (rule, n) in &e.decisions {
                    l.line(
                        &[("job_name", job), ("namespace", ns), ("rule", rule)],
                        *n as f64,
                    );
                }
            },
        );
        self.family(
            "rescale_phase",
            "1 for the job's current rescale phase (idle when nothing is in flight).",
            "gauge",
            |l, (ns, job, e)| {
                if let Some(phase) = e.phase {
                    l.line(
                        &[("job_name", job), ("namespace", ns), ("phase", phase)],
                        1.0,
                    );
                }
            },
        );
        self.family(
            "failovers_total",
            "Job failovers (restarts not caused by a rescale) observed.",
            "counter",
            |l, (ns, job, e)| {
                if let Some(n) = e.failovers {
                    l.line(&[("job_name", job), ("namespace", ns)], n as f64);
                }
            },
        );
    }
}

/// The sample lines of one family.
struct Lines<'a> {
    name: &'a str,
    out: &'a mut String,
}

impl Lines<'_> {
    /// A line with labels given in sorted order.
    fn line(&mut self, labels: &[(&str, &str)], value: f64) {
        let _ = write!(self.out, "{PREFIX}_{}{{", self.name);
        for (i, (name, value)) in labels.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            let _ = write!(self.out, "{name}=\"{}\"", escape(value, true));
        }
        let _ = writeln!(self.out, "}} {value}");
    }

    /// A per-ScaledObject line, with `extra` labels sorting after `scaled_object`.
    fn so(&mut self, ns: &str, job: &str, so: &str, extra: &[(&str, &str)], value: f64) {
        let mut labels = vec![("job_name", job), ("namespace", ns), ("scaled_object", so)];
        labels.extend_from_slice(extra);
        self.line(&labels, value);
    }
}

/// Escapes like the `prometheus` crate's text encoder: `\` and newline always, `"` in
/// label values.
fn escape(text: &str, quote: bool) -> std::borrow::Cow<'_, str> {
    let quoted = quote && text.contains('"');
    if !quoted && !text.contains(['\\', '\n']) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out.into()
}

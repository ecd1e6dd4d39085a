//! What the lab saw, second by second: the load, the lag and rates from Prometheus, the
//! job from Flink's REST API, the scaler's answer and rescale phase, and the events
//! (load changes, rescales, TaskManagers started and stopped). Rendered as a table and a
//! CSV; `plot` draws it and `measure` computes the figures from it.

use std::fmt::Write as _;

use super::driver::FlinkView;

/// One observation (about one per second).
#[derive(Debug, Clone, Default)]
pub struct Point {
    /// Seconds since the scenario started.
    pub at: f64,
    /// Scenario phase (`steady`, `step`, `back`).
    pub phase: &'static str,
    /// Records/s the topic is produced at (the rate schedule).
    pub input_rate: f64,
    /// Records/s produced as Prometheus shows it (the job's `producedRecordsPerSecond`).
    pub produced_rate: Option<f64>,
    /// Records/s the source emits (Prometheus).
    pub consumed_rate: Option<f64>,
    /// Summed `pendingRecords` (Prometheus).
    pub lag: Option<f64>,
    /// The job as Flink's REST API shows it.
    pub flink: Option<FlinkView>,
    /// Every subtask RUNNING.
    pub all_running: bool,
    /// While every subtask runs: when the last of them switched to RUNNING, by Flink's own
    /// clock (`/jobs/:id/vertices/:vid/subtasktimes`, scenario seconds). The sample sees
    /// it later: Flink's REST API serves the job from a cache that lives up to
    /// `web.refresh-interval` (3 s by default; on 2.3 `rest.cache.execution-graph.timeout`).
    pub running_since: Option<f64>,
    /// TaskManagers the scaler reports to KEDA (`/debug/jobs`).
    pub reported: Option<u32>,
    /// The scaler's rescale in flight (`up:waiting_for_resources`, ...).
    pub rescale: Option<String>,
    /// Replicas the KEDA/HPA driver holds.
    pub replicas: u32,
}

impl Point {
    /// Registered TaskManagers (0 when Flink did not answer).
    pub fn task_managers(&self) -> u32 {
        self.flink.as_ref().map_or(0, |f| f.task_managers)
    }

    /// When the job's every subtask was running by this sample: Flink's own instant when
    /// the observer got it, else the sample's.
    pub fn running_since(&self) -> f64 {
        self.running_since.unwrap_or(self.at)
    }

    /// Highest vertex parallelism (0 when Flink did not answer).
    pub fn max_parallelism(&self) -> u32 {
        self.flink.as_ref().map_or(0, FlinkView::max_parallelism)
    }

    /// The scaler answered with its count and shows no rescale in flight. A sample it did
    /// not answer (its tick failed while Flink restarted the job) is not idle: read as
    /// idle, it ended the lab's step at parallelism 3 of a 2 → 6 rescale still in flight.
    pub fn scaler_idle(&self) -> bool {
        self.reported.is_some() && self.rescale.is_none()
    }
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The production rate changed.
    Load,
    /// The scaler started a rescale.
    RescaleStarted,
    /// The scaler raised a scale-up still waiting for its TaskManagers (same rescale).
    RescaleRaised,
    /// A rescale ended (succeeded, timed out, failed).
    RescaleFinished,
    /// The driver's HPA sync raised the replicas (pods not started yet).
    HpaScaled,
    /// The driver started a TaskManager (registered with the JobManager).
    TaskManagerStarted,
    /// The driver stopped an idle TaskManager.
    TaskManagerStopped,
    /// The driver could not scale down (no idle TaskManager) or up.
    Refused,
    /// Flink recorded an exception (a failover).
    Failover,
    /// Prometheus first showed a load change (the instant a range query at
    /// [`crate::visibility::VISIBLE_STEP_S`] resolution first met the visibility threshold).
    Visible,
    /// Flink's own timestamp of the last subtask of an execution switching to RUNNING
    /// (`/jobs/:id/vertices/:vid/subtasktimes`).
    Running,
}

impl EventKind {
    /// Short label for tables, CSV and the plot.
    pub fn label(self) -> &'static str {
        match self {
            Self::Load => "load",
            Self::RescaleStarted => "rescale-start",
            Self::RescaleRaised => "rescale-raised",
            Self::RescaleFinished => "rescale-end",
            Self::HpaScaled => "hpa",
            Self::TaskManagerStarted => "tm+",
            Self::TaskManagerStopped => "tm-",
            Self::Refused => "refused",
            Self::Failover => "failover",
            Self::Visible => "visible",
            Self::Running => "running",
        }
    }
}

/// One event.
#[derive(Debug, Clone)]
pub struct Event {
    /// Seconds since the scenario started.
    pub at: f64,
    /// Kind.
    pub kind: EventKind,
    /// Details (`650 → 1950 records/s`, `up 1→2 TMs`, `fks-tm-1`).
    pub detail: String,
}

/// The whole run.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// Observations in time order.
    pub points: Vec<Point>,
    /// Events in time order.
    pub events: Vec<Event>,
    /// Vertex names in job-graph order (CSV columns).
    pub vertices: Vec<String>,
}

fn opt(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.0}")).unwrap_or_default()
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

impl Timeline {
    /// Adds an event, keeping time order.
    pub fn push_event(&mut self, at: f64, kind: EventKind, detail: impl Into<String>) {
        let e = Event {
            at,
            kind,
            detail: detail.into(),
        };
        let i = self.events.partition_point(|x| x.at <= at);
        self.events.insert(i, e);
    }

    /// Events in `(from, to]`.
    pub fn events_between(&self, from: f64, to: f64) -> impl Iterator<Item = &Event> {
        self.events
            .iter()
            .filter(move |e| e.at > from && e.at <= to)
    }

    /// Events in `(from, to]` as `kind detail` texts.
    fn event_texts(&self, from: f64, to: f64) -> Vec<String> {
        self.events_between(from, to)
            .map(|e| format!("{} {}", e.kind.label(), e.detail))
            .collect()
    }

    /// CSV: time, rates, lag, per-vertex parallelism, TaskManagers, the scaler's answer,
    /// the rescale phase and the events since the previous row.
    pub fn to_csv(&self) -> String {
        let mut out =
            String::from("time_s,phase,input_rate,produced_rate,consumed_rate,lag,job_state,");
        for v in &self.vertices {
            out.push_str(&csv_field(&format!("parallelism:{v}")));
            out.push(',');
        }
        out.push_str("task_managers,reported_task_managers,replicas,rescale,events\n");
        let mut prev = f64::NEG_INFINITY;
        for p in &self.points {
            let par = |name: &str| {
                p.flink
                    .as_ref()
                    .and_then(|f| f.vertices.iter().find(|(n, _)| n == name))
                    .map(|(_, v)| v.to_string())
                    .unwrap_or_default()
            };
            let events = self.event_texts(prev, p.at);
            prev = p.at;
            let _ = write!(
                out,
                "{:.1},{},{:.0},{},{},{},{},",
                p.at,
                p.phase,
                p.input_rate,
                opt(p.produced_rate),
                opt(p.consumed_rate),
                opt(p.lag),
                p.flink.as_ref().map(|f| f.job_state.as_str()).unwrap_or(""),
            );
            for v in &self.vertices {
                out.push_str(&par(v));
                out.push(',');
            }
            let _ = writeln!(
                out,
                "{},{},{},{},{}",
                p.task_managers(),
                p.reported.map(|r| r.to_string()).unwrap_or_default(),
                p.replicas,
                csv_field(p.rescale.as_deref().unwrap_or("")),
                csv_field(&events.join("; ")),
            );
        }
        out
    }

    /// A table with one row every `every` seconds plus every row with an event.
    pub fn table(&self, every: f64) -> String {
        let mut out = format!(
            "{:>6} {:<6} {:>6} {:>7} {:>4} {:>3} {:>4} {:<24} {}\n",
            "t(s)", "phase", "rate", "lag", "par", "TMs", "rep", "rescale", "events"
        );
        let mut prev = f64::NEG_INFINITY;
        let mut last_row = f64::NEG_INFINITY;
        for p in &self.points {
            let events = self.event_texts(prev, p.at);
            prev = p.at;
            if events.is_empty() && p.at - last_row < every {
                continue;
            }
            last_row = p.at;
            let _ = writeln!(
                out,
                "{:>6.0} {:<6} {:>6.0} {:>7} {:>4} {:>3} {:>4} {:<24} {}",
                p.at,
                p.phase,
                p.input_rate,
                opt(p.lag),
                p.max_parallelism(),
                p.task_managers(),
                p.reported.map(|r| r.to_string()).unwrap_or("-".into()),
                p.rescale.as_deref().unwrap_or(""),
                events.join("; ")
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(par: u32, tms: u32) -> FlinkView {
        FlinkView {
            task_managers: tms,
            vertices: vec![("Source: topic".into(), par), ("count, x".into(), par)],
            job_id: "j".into(),
            job_state: "RUNNING".into(),
            slots_per_task_manager: 2,
        }
    }

    fn timeline() -> Timeline {
        let mut t = Timeline {
            vertices: vec!["Source: topic".into(), "count, x".into()],
            ..Timeline::default()
        };
        for (i, par) in [1, 1, 4].into_iter().enumerate() {
            t.points.push(Point {
                at: i as f64,
                phase: "step",
                input_rate: 1950.0,
                lag: Some(100.0 * i as f64),
                flink: Some(view(par, par.div_ceil(2))),
                reported: Some(par.div_ceil(2)),
                ..Point::default()
            });
        }
        t.push_event(1.5, EventKind::RescaleStarted, "up 1→2");
        t.push_event(0.5, EventKind::Load, "650 → 1950");
        t
    }

    #[test]
    fn csv_has_a_column_per_vertex_and_events_in_their_row() {
        let csv = timeline().to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "time_s,phase,input_rate,produced_rate,consumed_rate,lag,job_state,parallelism:Source: topic,\"parallelism:count, x\",task_managers,reported_task_managers,replicas,rescale,events"
        );
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[1], "0.0,step,1950,,,0,RUNNING,1,1,1,1,0,,");
        assert!(lines[2].ends_with(",load 650 → 1950"), "{}", lines[2]);
        assert!(
            lines[3].starts_with("2.0,step,1950,,,200,RUNNING,4,4,2,2,"),
            "{}",
            lines[3]
        );
        assert!(lines[3].ends_with("rescale-start up 1→2"), "{}", lines[3]);
    }

    #[test]
    fn events_stay_sorted_and_table_shows_event_rows() {
        let t = timeline();
        assert!(t.events.windows(2).all(|w| w[0].at <= w[1].at));
        let table = t.table(60.0);
        // header + first row + the two rows with events
        assert_eq!(table.lines().count(), 4, "{table}");
        assert!(table.contains("rescale-start up 1→2"));
    }
}

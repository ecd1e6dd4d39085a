//! The lab's own eyes, independent of the scaler's adapters: once per sample it reads
//! Flink's REST API (job state and per-vertex parallelism, registered TaskManagers),
//! Prometheus (lag, produced and consumed rates, with plain PromQL) and the scaler's
//! `/debug/jobs` (the count it reports to KEDA and the rescale in flight), and turns
//! rescales into timeline events with the scaler's own timestamps.
//!
//! Two instants the samples would round up come from the components' own clocks: when the
//! job's last subtask switched to RUNNING (Flink's `subtasktimes`, read once per new
//! execution: the job details a sample reads can be up to Flink's REST cache TTL old), and
//! when Prometheus first showed a load change (`refine_visible`, a range query after the
//! run).

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{
    driver::FlinkView,
    error::Result,
    procs,
    prometheus_proc::PrometheusProcess,
    scaler_proc::ScalerProcess,
    timeline::{EventKind, Point, Timeline},
    visibility::{Visibility, VISIBLE_STEP_S},
};

/// What one sample needs to know about the scenario at that moment.
#[derive(Debug, Clone, Copy)]
pub struct Moment {
    /// Phase name.
    pub phase: &'static str,
    /// Scheduled records/s.
    pub input_rate: f64,
    /// Replicas the driver holds.
    pub replicas: u32,
}

/// The phase of a rescale whose end fell between two samples.
pub const UNSEEN_END: &str = "ended between samples";

/// A rescale as `/debug/jobs` showed it.
#[derive(Debug, Clone, PartialEq)]
pub struct SeenRescale {
    /// `up`, `down` or `none`.
    pub direction: String,
    /// Scenario seconds of `started_at`.
    pub started_at: f64,
    /// Scenario seconds of `finished_at`.
    pub finished_at: Option<f64>,
    /// Phases seen, in order.
    pub phases: Vec<String>,
    /// TaskManagers of the target as last seen (a raise moves it).
    pub to_task_managers: u64,
}

/// Samples Flink, Prometheus and the scaler.
pub struct Observer<'a> {
    http: reqwest::Client,
    flink_url: String,
    job_id: String,
    slots: u32,
    prom: &'a PrometheusProcess,
    scaler: &'a ScalerProcess,
    origin: Instant,
    origin_utc: DateTime<Utc>,
    /// Rescales by their `started_at` string.
    pub rescales: BTreeMap<String, SeenRescale>,
    /// The execution last seen with every subtask running: its vertices' parallelism and
    /// when its last subtask switched to RUNNING (scenario seconds, Flink's clock).
    running: Option<(Vec<(String, u32)>, f64)>,
}

/// Flink's view of the job in one sample.
pub struct FlinkSample {
    /// The job.
    pub view: FlinkView,
    /// Every subtask RUNNING.
    pub all_running: bool,
    /// The job vertices' ids, in the job graph's order.
    pub vertex_ids: Vec<String>,
}

/// When the last subtask switched to RUNNING (unix ms), from each vertex's
/// `/jobs/:id/vertices/:vid/subtasktimes`; `None` while one has not.
pub fn last_running_ms(subtask_times: &[Value]) -> Option<i64> {
    let mut last = None;
    for vertex in subtask_times {
        for s in vertex["subtasks"].as_array()? {
            let ms = s["timestamps"]["RUNNING"].as_i64().filter(|ms| *ms > 0)?;
            last = Some(last.map_or(ms, |l: i64| l.max(ms)));
        }
    }
    last
}

/// The load's own gauge of the records/s it produces, per source subtask.
const PRODUCED_RATE: &str = "flink_taskmanager_job_task_operator_producedRecordsPerSecond";

/// The job's total of a per-subtask series: `sum(metric{job_id="…"})`.
fn job_sum(metric: &str, job_id: &str) -> String {
    format!("sum({metric}{{job_id=\"{job_id}\"}})")
}

fn jobs_first(debug: &Value) -> Option<&Value> {
    debug["jobs"].as_array().and_then(|a| a.first())
}

impl<'a> Observer<'a> {
    /// An observer of `job_id` whose times count from `origin` (= `origin_utc`).
    pub fn new(
        flink_url: &str,
        job_id: &str,
        slots: u32,
        prom: &'a PrometheusProcess,
        scaler: &'a ScalerProcess,
        origin: Instant,
        origin_utc: DateTime<Utc>,
    ) -> Result<Self> {
        Ok(Self {
            http: procs::http_client(Duration::from_secs(3))?,
            flink_url: flink_url.to_string(),
            job_id: job_id.to_string(),
            slots,
            prom,
            scaler,
            origin,
            origin_utc,
            rescales: BTreeMap::new(),
            running: None,
        })
    }

    /// Scenario seconds of a unix-milliseconds timestamp.
    fn secs_of_ms(&self, ms: i64) -> f64 {
        (ms - self.origin_utc.timestamp_millis()) as f64 / 1000.0
    }

    /// Scenario seconds of an RFC 3339 timestamp.
    fn secs_of(&self, ts: &str) -> Option<f64> {
        let t = DateTime::parse_from_rfc3339(ts).ok()?.with_timezone(&Utc);
        Some((t - self.origin_utc).num_milliseconds() as f64 / 1000.0)
    }

    /// Flink's view of the job.
    pub async fn flink_view(&self) -> Option<FlinkSample> {
        let details = procs::get_json(
            &self.http,
            &format!("{}/jobs/{}", self.flink_url, self.job_id),
        )
        .await?;
        let overview = procs::get_json(&self.http, &format!("{}/overview", self.flink_url)).await;
        let vs = details["vertices"].as_array()?;
        let all_running = details["state"] == "RUNNING"
            && vs.iter().all(|v| {
                v["tasks"]["RUNNING"].as_u64().unwrap_or(0)
                    == v["parallelism"].as_u64().unwrap_or(u64::MAX)
            });
        let view = FlinkView {
            task_managers: overview
                .and_then(|o| o["taskmanagers"].as_u64())
                .unwrap_or(0) as u32,
            vertices: vs
                .iter()
                .map(|v| {
                    (
                        v["name"].as_str().unwrap_or("?").to_string(),
                        v["parallelism"].as_u64().unwrap_or(0) as u32,
                    )
                })
                .collect(),
            job_id: details["jid"].as_str().unwrap_or("?").to_string(),
            job_state: details["state"].as_str().unwrap_or("?").to_string(),
            slots_per_task_manager: self.slots,
        };
        let vertex_ids = vs
            .iter()
            .filter_map(|v| v["id"].as_str().map(str::to_string))
            .collect();
        Some(FlinkSample {
            view,
            all_running,
            vertex_ids,
        })
    }

    /// When the running execution's last subtask switched to RUNNING (scenario seconds):
    /// read from Flink once per execution (the first sample of every subtask running, or
    /// of a new vertex parallelism), remembered after, with a `Running` event; `None`
    /// while not every subtask runs.
    async fn running_since(&mut self, f: &FlinkSample, timeline: &mut Timeline) -> Option<f64> {
        if !f.all_running {
            // a restart, even at the same parallelism, is a new execution
            self.running = None;
            return None;
        }
        if let Some((vertices, at)) = &self.running {
            if *vertices == f.view.vertices {
                return Some(*at);
            }
        }
        let mut times = Vec::with_capacity(f.vertex_ids.len());
        for vid in &f.vertex_ids {
            let url = format!(
                "{}/jobs/{}/vertices/{vid}/subtasktimes",
                self.flink_url, self.job_id
            );
            times.push(procs::get_json(&self.http, &url).await?);
        }
        let at = self.secs_of_ms(last_running_ms(&times)?);
        let pars: Vec<String> = f.view.vertices.iter().map(|(_, p)| p.to_string()).collect();
        timeline.push_event(
            at,
            EventKind::Running,
            format!("parallelism {}", pars.join("/")),
        );
        self.running = Some((f.view.vertices.clone(), at));
        Some(at)
    }

    /// After the run: a `Visible` event at the first instant Prometheus showed each load
    /// change in `changes` (a range query every [`VISIBLE_STEP_S`] from the change to the
    /// first sample that showed it). A change whose query fails keeps its sample.
    pub async fn refine_visible(&self, changes: &[Visibility], timeline: &mut Timeline) {
        let origin = self.origin_utc.timestamp_millis() as f64 / 1000.0;
        for v in changes {
            let Some(sampled) = v.sampled_at else {
                continue;
            };
            let values = self
                .prom
                .range(
                    &job_sum(PRODUCED_RATE, &self.job_id),
                    origin + v.changed_at,
                    origin + sampled,
                    VISIBLE_STEP_S,
                )
                .await
                .unwrap_or_default();
            let scenario: Vec<(f64, f64)> = values
                .into_iter()
                .map(|(at, rate)| (at - origin, rate))
                .collect();
            if let Some(at) = v.first_showing(&scenario) {
                timeline.push_event(
                    at,
                    EventKind::Visible,
                    format!("{:.0} records/s", v.new_rate),
                );
            }
        }
    }

    async fn prom_sum(&self, metric: &str) -> Option<f64> {
        self.prom.scalar(&job_sum(metric, &self.job_id)).await
    }

    /// One sample into `timeline` (rescale events included); returns the new point.
    pub async fn sample(&mut self, m: Moment, timeline: &mut Timeline) -> Result<Point> {
        let at = self.origin.elapsed().as_secs_f64();
        let flink = self.flink_view().await;
        let lag = self
            .prom_sum("flink_taskmanager_job_task_operator_pendingRecords")
            .await;
        let produced_rate = self.prom_sum(PRODUCED_RATE).await;
        // the counter over 10 s: Flink's own numRecordsOutPerSecond is a 60 s average
        let consumed_rate = self
            .prom
            .scalar(&format!(
                "sum(rate(flink_taskmanager_job_task_operator_numRecordsOut{{job_id=\"{}\",operator_name=~\"Source.*\"}}[10s]))",
                self.job_id
            ))
            .await;
        let debug = self.scaler.debug_jobs().await.ok();
        let job = debug.as_ref().and_then(jobs_first);
        let reported = job
            .and_then(|j| j["reported_task_managers"].as_u64())
            .map(|r| r as u32);
        let rescale = job.map(|j| &j["rescale"]).filter(|r| !r.is_null());
        let mut in_flight = None;
        if let Some(r) = rescale {
            self.track(r, timeline);
            if r["finished_at"].is_null() {
                in_flight = Some(format!(
                    "{}:{}",
                    r["direction"].as_str().unwrap_or("?"),
                    r["phase"].as_str().unwrap_or("?")
                ));
            }
        }
        if let Some(j) = job.filter(|j| j["error"].is_null()) {
            end_unseen(
                &mut self.rescales,
                j["rescale"]["started_at"].as_str(),
                at,
                timeline,
            );
        }
        if timeline.vertices.is_empty() {
            if let Some(f) = &flink {
                timeline.vertices = f.view.vertices.iter().map(|(n, _)| n.clone()).collect();
            }
        }
        let all_running = flink.as_ref().is_some_and(|f| f.all_running);
        let running_since = match &flink {
            Some(f) => self.running_since(f, timeline).await,
            None => None,
        };
        let point = Point {
            at,
            phase: m.phase,
            input_rate: m.input_rate,
            produced_rate,
            consumed_rate,
            lag,
            flink: flink.map(|f| f.view),
            all_running,
            running_since,
            reported,
            rescale: in_flight,
            replicas: m.replicas,
        };
        timeline.points.push(point.clone());
        Ok(point)
    }

    fn track(&mut self, r: &Value, timeline: &mut Timeline) {
        let Some(started) = r["started_at"].as_str() else {
            return;
        };
        let phase = r["phase"].as_str().unwrap_or("?").to_string();
        let started_at = self.secs_of(started).unwrap_or(0.0);
        let finished_at = r["finished_at"].as_str().and_then(|f| self.secs_of(f));
        let direction = r["direction"].as_str().unwrap_or("?").to_string();
        let max_par = |plan: &Value| {
            plan["parallelism"]
                .as_object()
                .map(|m| m.values().filter_map(Value::as_u64).max().unwrap_or(0))
                .unwrap_or(0)
        };
        let detail = format!(
            "{direction} {}→{} TMs, parallelism {}→{}",
            r["from"]["task_managers"].as_u64().unwrap_or(0),
            r["to"]["task_managers"].as_u64().unwrap_or(0),
            max_par(&r["from"]),
            max_par(&r["to"]),
        );
        let to_tms = r["to"]["task_managers"].as_u64().unwrap_or(0);
        let accepted_at = r["accepted_at"].as_str().and_then(|a| self.secs_of(a));
        let entry = self.rescales.entry(started.to_string()).or_insert_with(|| {
            timeline.push_event(started_at, EventKind::RescaleStarted, detail.clone());
            SeenRescale {
                direction,
                started_at,
                finished_at: None,
                phases: Vec::new(),
                to_task_managers: to_tms,
            }
        });
        if entry.to_task_managers != to_tms {
            // a raise: the same rescale, accepted again with the higher target
            let at = accepted_at.unwrap_or(started_at);
            timeline.push_event(at, EventKind::RescaleRaised, detail);
            entry.to_task_managers = to_tms;
        }
        if entry.phases.last() != Some(&phase) {
            entry.phases.push(phase.clone());
        }
        if entry.finished_at.is_none() {
            if let Some(f) = finished_at {
                entry.finished_at = Some(f);
                timeline.push_event(
                    f,
                    EventKind::RescaleFinished,
                    format!("{} {phase}", entry.direction),
                );
            }
        }
    }

    /// Flink's exception history of the job as failover events; returns how many.
    pub async fn failovers(&self, timeline: &mut Timeline) -> Result<usize> {
        let url = format!(
            "{}/jobs/{}/exceptions?maxExceptions=100",
            self.flink_url, self.job_id
        );
        let v = procs::get_json(&self.http, &url)
            .await
            .ok_or_else(|| super::error::LabError::http("GET /jobs/:id/exceptions", "no answer"))?;
        let entries = v["exceptionHistory"]["entries"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for e in &entries {
            let at = e["timestamp"]
                .as_i64()
                .map(|ms| (ms - self.origin_utc.timestamp_millis()) as f64 / 1000.0)
                .unwrap_or(0.0);
            timeline.push_event(
                at,
                EventKind::Failover,
                e["exceptionName"].as_str().unwrap_or("?").to_string(),
            );
        }
        Ok(entries.len())
    }
}

/// Ends, at `at`, every rescale still open here that a successful tick no longer shows
/// (`current` is the one it shows, if any). The scaler shows a finished rescale for one
/// tick only, so a sample that missed that tick would otherwise leave it open forever.
/// The end is then an upper bound: a rescale the scaler replaced while in flight still
/// ends after its successor started, as the overlap check needs.
fn end_unseen(
    rescales: &mut BTreeMap<String, SeenRescale>,
    current: Option<&str>,
    at: f64,
    timeline: &mut Timeline,
) {
    for (started, seen) in rescales.iter_mut() {
        if seen.finished_at.is_some() || Some(started.as_str()) == current {
            continue;
        }
        seen.finished_at = Some(at);
        seen.phases.push(UNSEEN_END.to_string());
        timeline.push_event(
            at,
            EventKind::RescaleFinished,
            format!("{} {UNSEEN_END}", seen.direction),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(direction: &str, started_at: f64) -> SeenRescale {
        SeenRescale {
            direction: direction.into(),
            started_at,
            finished_at: None,
            phases: vec!["applying".into()],
            to_task_managers: 2,
        }
    }

    #[test]
    fn the_last_subtask_to_run_sets_the_instant_and_one_not_running_leaves_none() {
        let vertex = |running: &[i64]| {
            let subtasks: Vec<Value> = running
                .iter()
                .enumerate()
                .map(|(i, ms)| {
                    serde_json::json!({
                        "subtask": i,
                        "timestamps": {"DEPLOYING": 1, "INITIALIZING": 2, "RUNNING": ms},
                    })
                })
                .collect();
            serde_json::json!({ "id": "v", "subtasks": subtasks })
        };
        let times = [vertex(&[1_000, 1_450]), vertex(&[1_200])];
        assert_eq!(last_running_ms(&times), Some(1_450));
        // Flink lists 0 for a state not reached yet
        assert_eq!(last_running_ms(&[vertex(&[1_000, 0])]), None);
        assert_eq!(last_running_ms(&[serde_json::json!({})]), None);
    }

    #[test]
    fn a_rescale_a_successful_tick_no_longer_shows_ends_at_that_sample() {
        let mut rescales = BTreeMap::from([("t30".to_string(), seen("up", 30.0))]);
        let mut timeline = Timeline::default();
        end_unseen(&mut rescales, Some("t30"), 62.0, &mut timeline);
        assert_eq!(rescales["t30"].finished_at, None, "still shown: still open");
        end_unseen(&mut rescales, None, 65.0, &mut timeline);
        assert_eq!(rescales["t30"].finished_at, Some(65.0));
        assert_eq!(
            rescales["t30"].phases.last().map(String::as_str),
            Some(UNSEEN_END)
        );
        assert_eq!(timeline.events.len(), 1);
        assert_eq!(timeline.events[0].kind, EventKind::RescaleFinished);
    }

    #[test]
    fn a_rescale_replaced_in_flight_ends_after_its_successor_started() {
        let mut rescales = BTreeMap::from([
            ("t30".to_string(), seen("up", 30.0)),
            ("t40".to_string(), seen("up", 40.0)),
        ]);
        let mut timeline = Timeline::default();
        end_unseen(&mut rescales, Some("t40"), 41.0, &mut timeline);
        let first = &rescales["t30"];
        assert!(first
            .finished_at
            .is_some_and(|f| f > rescales["t40"].started_at));
        assert_eq!(rescales["t40"].finished_at, None);
    }
}

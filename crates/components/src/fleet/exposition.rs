//! The series a JobManager's PrometheusReporter (and its TaskManagers') would expose for
//! the fleet's jobs, in Flink 2.3.0's text format: `# HELP name <metric> (scope: …)`,
//! `# TYPE name gauge` (the reporter exports counters and meters as gauges), labels in
//! the reporter's order with its trailing comma, values as Java prints doubles.
//!
//! [`FAMILIES`] lists every family served, with its scope; the real-Flink test
//! (`tests/it/flink_rescale/reporter_names.rs` of the scaler) compares names, label names
//! and types with a real reporter's scrape.

use std::fmt::Write;

use super::{
    ids::{FleetIds, TaskManagerId},
    sim::{Counters, JobSim, Rates, VERTEX_SPECS},
};

/// Where a family lives, which fixes its label names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `flink_taskmanager_job_task_*`: one series per subtask.
    Task,
    /// `flink_taskmanager_job_task_operator_*`: one series per chained operator per subtask.
    Operator,
    /// `flink_taskmanager_job_task_operator_*` of source operators only.
    SourceOperator,
    /// `flink_jobmanager_job_*`: one series per job.
    JobManagerJob,
    /// `flink_jobmanager_*`: one series per JobManager.
    JobManager,
    /// `flink_taskmanager_Status_*`: one series per TaskManager.
    TaskManager,
}

impl Scope {
    /// Label names in the order Flink 2.3.0's reporter writes them.
    pub fn labels(self) -> &'static [&'static str] {
        match self {
            Scope::Task => &[
                "job_id",
                "task_id",
                "task_attempt_id",
                "host",
                "task_name",
                "task_attempt_num",
                "job_name",
                "tm_id",
                "subtask_index",
            ],
            Scope::Operator | Scope::SourceOperator => &[
                "job_id",
                "task_id",
                "task_attempt_id",
                "host",
                "operator_id",
                "operator_name",
                "task_name",
                "task_attempt_num",
                "job_name",
                "tm_id",
                "subtask_index",
            ],
            Scope::JobManagerJob => &["job_id", "host", "job_name"],
            Scope::JobManager => &["host"],
            Scope::TaskManager => &["host", "tm_id"],
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Scope::Task => "taskmanager_job_task",
            Scope::Operator | Scope::SourceOperator => "taskmanager_job_task_operator",
            Scope::JobManagerJob => "jobmanager_job",
            Scope::JobManager => "jobmanager",
            Scope::TaskManager => "taskmanager",
        }
    }
}

/// One served family: its scope and the metric name inside the scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    /// Scope.
    pub scope: Scope,
    /// Metric name inside the scope (`busyTimeMsPerSecond`, `Status_JVM_CPU_Load`).
    pub metric: &'static str,
}

impl Family {
    /// The exposed name, e.g. `flink_taskmanager_job_task_busyTimeMsPerSecond`.
    pub fn name(&self) -> String {
        format!("flink_{}_{}", self.scope.prefix(), self.metric)
    }

    /// Flink's HELP text: the last name component and the scope it was registered in.
    fn help(&self) -> String {
        let (group, last) = match self.metric.rsplit_once('_') {
            Some((g, l)) => (format!("{}_{g}", self.scope.prefix()), l),
            None => (self.scope.prefix().to_string(), self.metric),
        };
        format!("{last} (scope: {group})")
    }
}

const fn fam(scope: Scope, metric: &'static str) -> Family {
    Family { scope, metric }
}

/// Every family the fleet serves.
pub const FAMILIES: [Family; 29] = [
    fam(Scope::Task, "busyTimeMsPerSecond"),
    fam(Scope::Task, "backPressuredTimeMsPerSecond"),
    fam(Scope::Task, "idleTimeMsPerSecond"),
    fam(Scope::Task, "accumulateBusyTimeMs"),
    fam(Scope::Task, "accumulateBackPressuredTimeMs"),
    fam(Scope::Task, "accumulateIdleTimeMs"),
    fam(Scope::Task, "numRecordsIn"),
    fam(Scope::Task, "numRecordsInPerSecond"),
    fam(Scope::Task, "numRecordsOut"),
    fam(Scope::Task, "numRecordsOutPerSecond"),
    fam(Scope::Operator, "numRecordsIn"),
    fam(Scope::Operator, "numRecordsInPerSecond"),
    fam(Scope::Operator, "numRecordsOut"),
    fam(Scope::Operator, "numRecordsOutPerSecond"),
    fam(Scope::SourceOperator, "pendingRecords"),
    fam(Scope::JobManagerJob, "numRestarts"),
    fam(Scope::JobManagerJob, "numRescales"),
    fam(Scope::JobManagerJob, "uptime"),
    fam(Scope::JobManager, "taskSlotsTotal"),
    fam(Scope::JobManager, "taskSlotsAvailable"),
    fam(Scope::JobManager, "numRegisteredTaskManagers"),
    fam(Scope::JobManager, "numRunningJobs"),
    fam(Scope::TaskManager, "Status_JVM_CPU_Load"),
    fam(Scope::TaskManager, "Status_JVM_Memory_Heap_Used"),
    fam(Scope::TaskManager, "Status_JVM_Memory_Heap_Max"),
    fam(
        Scope::TaskManager,
        "Status_JVM_GarbageCollector_All_TimeMsPerSecond",
    ),
    fam(Scope::TaskManager, "Status_JVM_GarbageCollector_All_Time"),
    fam(
        Scope::TaskManager,
        "Status_JVM_GarbageCollector_G1_Young_Generation_Time",
    ),
    fam(
        Scope::TaskManager,
        "Status_JVM_GarbageCollector_G1_Old_Generation_Time",
    ),
];

/// A label value as the reporter writes it: every character outside `[a-zA-Z0-9:_]`
/// becomes `_` (`filterLabelValueCharacters`, the default).
pub fn sanitize(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == ':' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A value as Java's `Double.toString` would print it closely enough for Prometheus.
fn value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v:?}")
    }
}

/// One job of a JobManager, as the exposition needs it.
pub struct JobView<'a> {
    /// Ids and names.
    pub ids: &'a FleetIds,
    /// Job index in the fleet.
    pub index: usize,
    /// The model, advanced to now.
    pub sim: &'a JobSim,
    /// ms since the epoch, now.
    pub now_ms: i64,
}

/// Renders the series of `jobs` (all on JobManager `jm`) into `out`.
pub fn render(out: &mut String, jm: usize, ids: &FleetIds, jobs: &[JobView<'_>]) {
    for family in FAMILIES {
        let name = family.name();
        let _ = writeln!(out, "# HELP {name} {}", family.help());
        let _ = writeln!(out, "# TYPE {name} gauge");
        match family.scope {
            Scope::Task | Scope::Operator | Scope::SourceOperator => {
                for job in jobs {
                    subtask_series(out, &name, family, job);
                }
            }
            Scope::JobManagerJob => {
                for job in jobs {
                    let v = match family.metric {
                        "numRescales" => job.sim.rescales as f64,
                        "uptime" => (job.now_ms - job.sim.running_since_ms).max(0) as f64,
                        _ => 0.0,
                    };
                    let labels = [
                        job.ids.job_id(job.index),
                        sanitize(&ids.jm_host(jm)),
                        sanitize(&job.ids.job_name(job.index)),
                    ];
                    line(out, &name, family.scope, &labels, v);
                }
            }
            Scope::JobManager => {
                let slots: u32 = jobs.iter().map(|j| j.sim.slots()).sum();
                let tms: u32 = jobs.iter().map(|j| ids.task_managers(j.sim)).sum();
                let total = tms * ids.slots_per_task_manager;
                let v = match family.metric {
                    "taskSlotsTotal" => total,
                    "taskSlotsAvailable" => total.saturating_sub(slots),
                    "numRegisteredTaskManagers" => tms,
                    _ => jobs.len() as u32,
                };
                line(
                    out,
                    &name,
                    family.scope,
                    &[sanitize(&ids.jm_host(jm))],
                    f64::from(v),
                );
            }
            Scope::TaskManager => {
                for job in jobs {
                    for k in 0..ids.task_managers(job.sim) {
                        let tm = ids.task_manager(job.index, k);
                        let v = tm_value(family.metric, job.sim, &tm, ids);
                        line(
                            out,
                            &name,
                            family.scope,
                            &[sanitize(&tm.host), sanitize(&tm.id)],
                            v,
                        );
                    }
                }
            }
        }
    }
}

fn tm_value(metric: &str, sim: &JobSim, tm: &TaskManagerId, ids: &FleetIds) -> f64 {
    // Busy share of the slots this TaskManager hosts, as a stand-in for its CPU.
    let busy: f64 = sim.vertices.iter().map(|v| v.rates.busy).sum::<f64>() / 1000.0;
    let slots = f64::from(ids.slots_per_task_manager);
    match metric {
        "Status_JVM_CPU_Load" => (busy / slots / VERTEX_SPECS.len() as f64).min(1.0),
        "Status_JVM_Memory_Heap_Used" => 2.0e8 + f64::from(tm.index) * 1.0e6,
        "Status_JVM_Memory_Heap_Max" => 5.36870912e8,
        "Status_JVM_GarbageCollector_All_TimeMsPerSecond" => 2.0,
        _ => 100.0 + (sim.running_since_ms % 1000) as f64,
    }
}

fn subtask_series(out: &mut String, name: &str, family: Family, job: &JobView<'_>) {
    let ids = job.ids;
    for (v, vertex) in job.sim.vertices.iter().enumerate() {
        if job.sim.hidden_vertex == Some(v) || (family.scope == Scope::SourceOperator && v != 0) {
            continue;
        }
        let operators = match family.scope {
            Scope::Task => vec![String::new()],
            _ => VERTEX_SPECS[v]
                .0
                .split(" -> ")
                .map(str::to_string)
                .collect(),
        };
        for (s, c) in vertex.counters.iter().enumerate() {
            let s = s as u32;
            let tm = ids.task_manager(job.index, s / ids.slots_per_task_manager);
            for (o, operator) in operators.iter().enumerate() {
                let mut labels = vec![
                    ids.job_id(job.index),
                    ids.vertex_id(v),
                    ids.attempt_id(job.index, job.sim.attempt, v, s),
                    sanitize(&tm.host),
                ];
                if family.scope != Scope::Task {
                    labels.push(ids.operator_id(v, o));
                    labels.push(sanitize(operator));
                }
                labels.extend([
                    sanitize(VERTEX_SPECS[v].0),
                    job.sim.attempt.to_string(),
                    sanitize(&ids.job_name(job.index)),
                    sanitize(&tm.id),
                    s.to_string(),
                ]);
                let v = subtask_value(family, &vertex.rates, c, job.sim, v);
                line(out, name, family.scope, &labels, v);
            }
        }
    }
}

fn subtask_value(family: Family, r: &Rates, c: &Counters, sim: &JobSim, v: usize) -> f64 {
    match family.metric {
        "busyTimeMsPerSecond" => r.busy,
        "backPressuredTimeMsPerSecond" => r.back_pressured,
        "idleTimeMsPerSecond" => r.idle,
        "accumulateBusyTimeMs" => c.busy_ms.floor(),
        "accumulateBackPressuredTimeMs" => c.back_pressured_ms.floor(),
        "accumulateIdleTimeMs" => c.idle_ms.floor(),
        // A source task has no network input: its task-level numRecordsIn is 0.
        "numRecordsIn" if family.scope == Scope::Task && v == 0 => 0.0,
        "numRecordsInPerSecond" if family.scope == Scope::Task && v == 0 => 0.0,
        "numRecordsIn" => c.records_in.floor(),
        "numRecordsInPerSecond" => r.records_in,
        "numRecordsOut" => c.records_out.floor(),
        "numRecordsOutPerSecond" => r.records_out,
        "pendingRecords" => (sim.backlog / f64::from(sim.vertices[0].parallelism.max(1))).floor(),
        _ => 0.0,
    }
}

fn line(out: &mut String, name: &str, scope: Scope, values: &[String], v: f64) {
    out.push_str(name);
    out.push('{');
    for (label, value) in scope.labels().iter().zip(values) {
        let _ = write!(out, "{label}=\"{value}\",");
    }
    let _ = writeln!(out, "}} {}", value(v));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_text_is_flinks() {
        let busy = fam(Scope::Task, "busyTimeMsPerSecond");
        assert_eq!(
            busy.help(),
            "busyTimeMsPerSecond (scope: taskmanager_job_task)"
        );
        let cpu = fam(Scope::TaskManager, "Status_JVM_CPU_Load");
        assert_eq!(cpu.name(), "flink_taskmanager_Status_JVM_CPU_Load");
        assert_eq!(cpu.help(), "Load (scope: taskmanager_Status_JVM_CPU)");
        assert_eq!(value(2166.0), "2166.0");
        assert_eq!(sanitize("Source: events"), "Source:_events");
    }
}

//! A KEDA + HPA stand-in for end-to-end tests: it talks to the scaler only over gRPC
//! (`GetMetricSpec`, `GetMetrics`, `IsActive`) and controls TaskManagers only as processes
//! (start one, stop one), as KEDA and the HPA do in a cluster.
//!
//! What it models (documented behaviour, not this scaler's internals):
//! * KEDA calls `GetMetricSpec`, `GetMetrics` and `IsActive` of an external scaler every
//!   `pollingInterval` (default 30 s) — <https://keda.sh/docs/latest/concepts/external-scalers/>
//!   and <https://keda.sh/docs/latest/reference/scaledobject-spec/#pollinginterval>.
//! * The HPA syncs every 15 s (`--horizontal-pod-autoscaler-sync-period`) and, for an
//!   `AverageValue` target, computes `desired = ceil(sum(values) / target)`, applied only
//!   when `|1 − sum / (target × current)| > 0.1` (the 10 % tolerance,
//!   `--horizontal-pod-autoscaler-tolerance`) —
//!   <https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/#algorithm-details>.
//! * Replicas are clamped to `[minReplicaCount, maxReplicaCount]`; scale-down is stabilized:
//!   the HPA takes the **highest** recommendation of the stabilization window (default
//!   300 s; scale-up default 0 s) — same page, "Stabilization window".
//! * A failing `GetMetrics` leaves the replicas unchanged (no `fallback` configured).
//! * Removing a pod: the ReplicaSet removes the pod with the lowest
//!   `controller.kubernetes.io/pod-deletion-cost`, which the scaler sets on idle
//!   TaskManagers; the driver picks a TaskManager with all slots free (Flink
//!   `/taskmanagers`) and **refuses** to stop a busy one, recording the refusal.
//!
//! In tests both periods are one configurable `polling_interval` (KEDA's poll feeds the
//! HPA's sync directly) and the stabilization window is short.

use std::{
    collections::{HashMap, VecDeque},
    future::Future,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use flink_keda_scaler::keda::pb::{
    external_scaler_client::ExternalScalerClient, GetMetricsRequest, ScaledObjectRef,
};

/// The HPA's default tolerance.
pub const HPA_TOLERANCE: f64 = 0.1;

/// HPA `AverageValue` math: the replica count for metric values summing to `sum` with a
/// per-pod `target`, or `current` when within `tolerance` of it.
pub fn hpa_desired(current: u32, sum: f64, target: f64, tolerance: f64) -> u32 {
    assert!(target > 0.0, "AverageValue target must be positive");
    if current == 0 {
        return (sum / target).ceil().max(0.0) as u32;
    }
    let ratio = sum / (target * f64::from(current));
    if (1.0 - ratio).abs() <= tolerance {
        current
    } else {
        (sum / target).ceil().max(0.0) as u32
    }
}

/// `minReplicaCount` / `maxReplicaCount`.
pub fn clamp_replicas(desired: u32, min: u32, max: u32) -> u32 {
    desired.clamp(min, max)
}

/// Scale-down stabilization: the highest recommendation within `window` of `now`
/// (recommendations are `(time, replicas)`, oldest first). Scale-up is immediate
/// because the newest recommendation is part of the maximum.
pub fn stabilized(
    recommendations: &VecDeque<(Instant, u32)>,
    now: Instant,
    window: Duration,
) -> u32 {
    recommendations
        .iter()
        .filter(|(t, _)| now.saturating_duration_since(*t) <= window)
        .map(|(_, r)| *r)
        .max()
        .unwrap_or(0)
}

/// Drops recommendations older than `window`.
pub fn prune(recommendations: &mut VecDeque<(Instant, u32)>, now: Instant, window: Duration) {
    while recommendations
        .front()
        .is_some_and(|(t, _)| now.saturating_duration_since(*t) > window)
    {
        recommendations.pop_front();
    }
}

/// Driver settings (the ScaledObject's and the HPA's).
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// KEDA `pollingInterval` (also the HPA sync period here).
    pub polling_interval: Duration,
    /// `minReplicaCount`.
    pub min_replicas: u32,
    /// `maxReplicaCount`.
    pub max_replicas: u32,
    /// HPA scale-down stabilization window.
    pub stabilization: Duration,
    /// HPA tolerance.
    pub tolerance: f64,
}

/// What the process side sees of Flink at one moment (REST, not the scaler).
#[derive(Debug, Clone, Default)]
pub struct FlinkView {
    /// Registered TaskManagers.
    pub task_managers: usize,
    /// Highest vertex parallelism of the job.
    pub max_parallelism: u32,
    /// Job id.
    pub job_id: String,
    /// Job state.
    pub job_state: String,
    /// Slots per TaskManager.
    pub slots_per_task_manager: u32,
}

/// The process side: starting and stopping TaskManagers (a Deployment and its ReplicaSet).
pub trait TaskManagerControl: Send + 'static {
    /// Starts one TaskManager (returns when it is registered).
    fn start_one(&mut self) -> impl Future<Output = ()> + Send;
    /// Stops one TaskManager with all slots free; `Err(why)` (and nothing stopped) when
    /// none is idle.
    fn stop_idle(&mut self) -> impl Future<Output = Result<String, String>> + Send;
    /// The current Flink view.
    fn view(&mut self) -> impl Future<Output = FlinkView> + Send;
}

/// One poll of the driver.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Since the driver started.
    pub at: Duration,
    /// `GetMetrics` value (`Err(code)` on failure).
    pub reported: Result<f64, String>,
    /// `IsActive`.
    pub active: Option<bool>,
    /// Replicas after this poll's HPA step.
    pub replicas: u32,
    /// Flink as seen right after the poll.
    pub flink: FlinkView,
    /// What the driver did (`+tm`, `-fks-tm-1`, `refused: ...`).
    pub action: String,
}

impl Sample {
    /// TaskManagers Flink's running slots need: `ceil(max parallelism / slots per TM)`
    /// (one slot sharing group).
    pub fn required(&self) -> u32 {
        self.flink
            .max_parallelism
            .div_ceil(self.flink.slots_per_task_manager.max(1))
    }
}

/// What the driver hands back.
#[derive(Debug, Default)]
pub struct DriverReport {
    /// Every poll.
    pub samples: Vec<Sample>,
    /// TaskManagers started.
    pub started: usize,
    /// TaskManagers stopped (their ids).
    pub stopped: Vec<String>,
    /// Scale-downs refused because no TaskManager was idle.
    pub refused: Vec<String>,
}

/// Handle of a running driver.
pub struct Driver {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<DriverReport>,
}

impl Driver {
    /// Starts polling `scaled_object` on `grpc_addr` (`127.0.0.1:port`) with `initial`
    /// replicas.
    pub fn start<C: TaskManagerControl>(
        grpc_addr: String,
        scaled_object: ScaledObjectRef,
        config: DriverConfig,
        initial: u32,
        control: C,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let task = tokio::spawn(run(grpc_addr, scaled_object, config, initial, control, s));
        Self { stop, task }
    }

    /// Stops polling and returns the report.
    pub async fn finish(self) -> DriverReport {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("driver task")
    }
}

async fn poll_keda(
    client: &mut ExternalScalerClient<tonic::transport::Channel>,
    r: &ScaledObjectRef,
) -> (Result<f64, String>, f64, Option<bool>) {
    let mut target = 1.0;
    let value = async {
        let spec = client
            .get_metric_spec(r.clone())
            .await
            .map_err(|e| format!("{:?}", e.code()))?
            .into_inner();
        let m = spec.metric_specs.first().ok_or("no metric spec")?;
        #[allow(deprecated)]
        let int_target = m.target_size as f64;
        target = if m.target_size_float > 0.0 {
            m.target_size_float
        } else {
            int_target
        };
        let resp = client
            .get_metrics(GetMetricsRequest {
                scaled_object_ref: Some(r.clone()),
                metric_name: m.metric_name.clone(),
            })
            .await
            .map_err(|e| format!("{:?}", e.code()))?
            .into_inner();
        #[allow(deprecated)]
        let sum: f64 = resp
            .metric_values
            .iter()
            .map(|v| {
                if v.metric_value_float != 0.0 {
                    v.metric_value_float
                } else {
                    v.metric_value as f64
                }
            })
            .sum();
        Ok::<f64, String>(sum)
    }
    .await;
    let active = client
        .is_active(r.clone())
        .await
        .ok()
        .map(|a| a.into_inner().result);
    (value, target, active)
}

async fn run<C: TaskManagerControl>(
    grpc_addr: String,
    r: ScaledObjectRef,
    cfg: DriverConfig,
    initial: u32,
    mut control: C,
    stop: Arc<AtomicBool>,
) -> DriverReport {
    let mut client = ExternalScalerClient::connect(format!("http://{grpc_addr}"))
        .await
        .expect("connect to the scaler");
    let started = Instant::now();
    let mut report = DriverReport::default();
    let mut replicas = initial;
    let mut recs: VecDeque<(Instant, u32)> = VecDeque::new();
    let mut next = tokio::time::Instant::now();
    while !stop.load(Ordering::SeqCst) {
        let (value, target, active) = poll_keda(&mut client, &r).await;
        let now = Instant::now();
        let mut action = String::new();
        if let Ok(sum) = value {
            let raw = hpa_desired(replicas, sum, target, cfg.tolerance);
            let rec = clamp_replicas(raw, cfg.min_replicas, cfg.max_replicas);
            recs.push_back((now, rec));
            prune(&mut recs, now, cfg.stabilization);
            let desired = stabilized(&recs, now, cfg.stabilization);
            while replicas < desired {
                control.start_one().await;
                replicas += 1;
                report.started += 1;
                action.push_str("+tm ");
            }
            while replicas > desired {
                match control.stop_idle().await {
                    Ok(id) => {
                        replicas -= 1;
                        action.push_str(&format!("-{id} "));
                        report.stopped.push(id);
                    }
                    Err(why) => {
                        action.push_str(&format!("refused: {why} "));
                        report.refused.push(why);
                        break;
                    }
                }
            }
        }
        let flink = control.view().await;
        report.samples.push(Sample {
            at: started.elapsed(),
            reported: value,
            active,
            replicas,
            flink,
            action: action.trim().to_string(),
        });
        next += cfg.polling_interval;
        let now = tokio::time::Instant::now();
        if next < now {
            next = now;
        }
        tokio::time::sleep_until(next).await;
    }
    report
}

/// The timeline as a table (with optional extra columns per sample index).
pub fn timeline_table(report: &DriverReport, extra: &HashMap<usize, String>) -> String {
    let mut out = String::from(
        "   t(s) reported active replicas TMs par req job_id                           state     extra / action\n",
    );
    for (i, s) in report.samples.iter().enumerate() {
        let reported = match &s.reported {
            Ok(v) => format!("{v}"),
            Err(e) => e.clone(),
        };
        out.push_str(&format!(
            "{:7.1} {:>8} {:>6} {:>8} {:>3} {:>3} {:>3} {:<32} {:<9} {} {}\n",
            s.at.as_secs_f64(),
            reported,
            s.active.map(|a| a.to_string()).unwrap_or("-".into()),
            s.replicas,
            s.flink.task_managers,
            s.flink.max_parallelism,
            s.required(),
            s.flink.job_id,
            s.flink.job_state,
            extra.get(&i).map(String::as_str).unwrap_or(""),
            s.action
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_value_math_with_tolerance() {
        // within 10 %: unchanged
        assert_eq!(hpa_desired(10, 10.5, 1.0, HPA_TOLERANCE), 10);
        assert_eq!(hpa_desired(10, 9.0, 1.0, HPA_TOLERANCE), 10);
        // outside: ceil(sum / target)
        assert_eq!(hpa_desired(10, 11.5, 1.0, HPA_TOLERANCE), 12);
        assert_eq!(hpa_desired(1, 3.0, 1.0, HPA_TOLERANCE), 3);
        assert_eq!(hpa_desired(3, 2.0, 1.0, HPA_TOLERANCE), 2);
        assert_eq!(hpa_desired(2, 5.0, 2.0, HPA_TOLERANCE), 3);
        // with more than 10 replicas a one-replica step is not applied
        assert_eq!(hpa_desired(11, 12.0, 1.0, HPA_TOLERANCE), 11);
        assert_eq!(hpa_desired(0, 2.0, 1.0, HPA_TOLERANCE), 2);
    }

    #[test]
    fn min_max_clamp() {
        assert_eq!(clamp_replicas(0, 1, 3), 1);
        assert_eq!(clamp_replicas(7, 1, 3), 3);
        assert_eq!(clamp_replicas(2, 1, 3), 2);
    }

    #[test]
    fn scale_down_takes_the_highest_recommendation_of_the_window() {
        let t0 = Instant::now();
        let w = Duration::from_secs(20);
        let mut recs: VecDeque<(Instant, u32)> = VecDeque::new();
        recs.push_back((t0, 3));
        recs.push_back((t0 + Duration::from_secs(10), 1));
        // 3 still within the window: stays at 3
        assert_eq!(stabilized(&recs, t0 + Duration::from_secs(15), w), 3);
        // 3 left the window: 1
        assert_eq!(stabilized(&recs, t0 + Duration::from_secs(25), w), 1);
        // scale-up is immediate
        recs.push_back((t0 + Duration::from_secs(26), 2));
        assert_eq!(stabilized(&recs, t0 + Duration::from_secs(26), w), 2);
        prune(&mut recs, t0 + Duration::from_secs(26), w);
        assert_eq!(recs.len(), 2);
    }
}

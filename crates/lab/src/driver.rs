//! A KEDA + HPA stand-in: it talks to the scaler only over gRPC (`GetMetricSpec`,
//! `GetMetrics`, `IsActive`) and controls TaskManagers only as processes (start one, stop
//! one), as KEDA and the HPA do in a cluster. It never reads the scaler's internals.
//!
//! What it models (documented behaviour):
//! * **KEDA operator poll**, every `pollingInterval` (default 30 s) and once at start:
//!   `GetMetricSpec`, then `GetMetrics` and `IsActive` for the spec's metric
//!   (<https://keda.sh/docs/latest/concepts/external-scalers/>,
//!   <https://keda.sh/docs/latest/reference/scaledobject-spec/#pollinginterval>; KEDA's
//!   `scale_handler.go` `GetMetricsAndActivityForScaler`). Activation (0 ↔ 1) is KEDA's;
//!   with `minReplicaCount ≥ 1` it changes nothing and is only recorded.
//! * **HPA sync**, every `--horizontal-pod-autoscaler-sync-period` (default 15 s): the HPA
//!   reads the external metric through KEDA's metrics server, which calls
//!   `GetMetricSpec` + `GetMetrics` (+ `IsActive`) again (no `useCachedMetrics`). For an
//!   `AverageValue` target, `desired = ceil(sum(values) / target)`, applied only when
//!   `|1 − sum / (target × current)| > 0.1` (`--horizontal-pod-autoscaler-tolerance`) —
//!   <https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/#algorithm-details>.
//! * Replicas are clamped to `[minReplicaCount, maxReplicaCount]`; scale-down is
//!   stabilized: the HPA takes the **highest** recommendation of the stabilization window
//!   (default 300 s; scale-up 0 s) — same page, "Stabilization window".
//! * A failing `GetMetrics` leaves the replicas unchanged (no `fallback` configured).
//! * Removing a pod: the ReplicaSet removes the pod with the lowest
//!   `controller.kubernetes.io/pod-deletion-cost`, which the scaler sets on idle
//!   TaskManagers
//!   (<https://kubernetes.io/docs/reference/labels-annotations-taints/#pod-deletion-cost>);
//!   the process side picks a TaskManager with all slots free and **refuses** to stop a
//!   busy one, and the refusal is recorded (it means the scaler reported too few).

use std::{
    collections::VecDeque,
    future::Future,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use crate::keda::pb::{
    external_scaler_client::ExternalScalerClient, GetMetricsRequest, ScaledObjectRef,
};

use super::error::{LabError, Result};

/// The HPA's default tolerance.
pub const HPA_TOLERANCE: f64 = 0.1;

/// HPA `AverageValue` math: the replica count for metric values summing to `sum` with a
/// per-pod `target`, or `current` when within `tolerance` of it. `None` for a
/// non-positive target (the HPA rejects such a metric).
pub fn hpa_desired(current: u32, sum: f64, target: f64, tolerance: f64) -> Option<u32> {
    if target <= 0.0 || !sum.is_finite() {
        return None;
    }
    let desired = (sum / target).ceil().max(0.0) as u32;
    if current == 0 {
        return Some(desired);
    }
    let ratio = sum / (target * f64::from(current));
    Some(if (1.0 - ratio).abs() <= tolerance {
        current
    } else {
        desired
    })
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
    /// KEDA `pollingInterval`.
    pub polling_interval: Duration,
    /// HPA sync period.
    pub hpa_sync_period: Duration,
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
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlinkView {
    /// Registered TaskManagers.
    pub task_managers: u32,
    /// Parallelism per vertex name, in job-graph order.
    pub vertices: Vec<(String, u32)>,
    /// Job id.
    pub job_id: String,
    /// Job state.
    pub job_state: String,
    /// Slots per TaskManager.
    pub slots_per_task_manager: u32,
}

impl FlinkView {
    /// Highest vertex parallelism.
    pub fn max_parallelism(&self) -> u32 {
        self.vertices.iter().map(|(_, p)| *p).max().unwrap_or(0)
    }

    /// TaskManagers the running slots need: `ceil(max parallelism / slots per TM)` (one
    /// slot-sharing group).
    pub fn required_task_managers(&self) -> u32 {
        self.max_parallelism()
            .div_ceil(self.slots_per_task_manager.max(1))
    }
}

/// The process side: starting and stopping TaskManagers (a Deployment and its ReplicaSet).
pub trait TaskManagerControl: Send + 'static {
    /// Starts `n` TaskManagers at once, as a ReplicaSet creates pods (returns their ids
    /// when they are registered).
    fn start(
        &mut self,
        n: u32,
    ) -> impl Future<Output = std::result::Result<Vec<String>, String>> + Send;
    /// Stops one TaskManager with all slots free; `Err(why)` (and nothing stopped) when
    /// none is idle.
    fn stop_idle(&mut self) -> impl Future<Output = std::result::Result<String, String>> + Send;
}

/// What one KEDA/HPA call round saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Round {
    /// Operator poll (`pollingInterval`).
    Poll,
    /// HPA sync.
    HpaSync,
}

/// One round of the driver.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Since the driver's origin.
    pub at: Duration,
    /// Which round.
    pub round: Round,
    /// `GetMetrics` value summed over metric values (`Err(status)` on failure).
    pub reported: std::result::Result<f64, String>,
    /// `IsActive` (`None` when it failed).
    pub active: Option<bool>,
    /// Replicas after this round.
    pub replicas: u32,
    /// What the driver did (`started fks-tm-2`, `stopped fks-tm-2`, `refused: ...`).
    pub actions: Vec<Action>,
}

/// A replica change the driver made or could not make.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A TaskManager was started (its id).
    Started(String),
    /// An idle TaskManager was stopped (its id).
    Stopped(String),
    /// A TaskManager could not be started.
    StartFailed(String),
    /// No idle TaskManager to stop.
    Refused(String),
}

/// What the driver hands back.
#[derive(Debug, Default, Clone)]
pub struct DriverReport {
    /// Every round.
    pub samples: Vec<Sample>,
}

impl DriverReport {
    /// Refused or failed replica changes.
    pub fn refused(&self) -> Vec<String> {
        self.samples
            .iter()
            .flat_map(|s| s.actions.iter())
            .filter_map(|a| match a {
                Action::Refused(why) | Action::StartFailed(why) => Some(why.clone()),
                _ => None,
            })
            .collect()
    }
}

/// The newest values, for a live view while the driver runs.
#[derive(Debug, Clone, Default)]
pub struct DriverState {
    /// Replicas.
    pub replicas: u32,
    /// Last `GetMetrics` value.
    pub reported: Option<std::result::Result<f64, String>>,
}

/// Handle of a running driver.
pub struct Driver {
    stop: Arc<AtomicBool>,
    state: Arc<Mutex<DriverState>>,
    task: tokio::task::JoinHandle<Result<DriverReport>>,
}

impl Driver {
    /// Starts driving `scaled_object` on `grpc_addr` (`127.0.0.1:port`) with `initial`
    /// replicas; sample times are measured from `origin`.
    pub fn start<C: TaskManagerControl>(
        grpc_addr: String,
        scaled_object: ScaledObjectRef,
        config: DriverConfig,
        initial: u32,
        control: C,
        origin: Instant,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::new(Mutex::new(DriverState {
            replicas: initial,
            reported: None,
        }));
        let run = Run {
            addr: grpc_addr,
            so: scaled_object,
            cfg: config,
            replicas: initial,
            origin,
            stop: stop.clone(),
            state: state.clone(),
        };
        let task = tokio::spawn(run.run(control));
        Self { stop, state, task }
    }

    /// The newest replicas and value.
    pub fn state(&self) -> DriverState {
        self.state.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Stops and returns the report.
    pub async fn finish(self) -> Result<DriverReport> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.map_err(|e| LabError::Grpc {
            what: "driver task".into(),
            detail: e.to_string(),
        })?
    }
}

struct Run {
    addr: String,
    so: ScaledObjectRef,
    cfg: DriverConfig,
    replicas: u32,
    origin: Instant,
    stop: Arc<AtomicBool>,
    state: Arc<Mutex<DriverState>>,
}

type Client = ExternalScalerClient<tonic::transport::Channel>;

/// `GetMetricSpec` → `GetMetrics` → `IsActive`, as KEDA does per round: (sum of values,
/// target, active).
async fn keda_round(
    client: &mut Client,
    r: &ScaledObjectRef,
) -> (std::result::Result<(f64, f64), String>, Option<bool>) {
    let value = async {
        let spec = client
            .get_metric_spec(r.clone())
            .await
            .map_err(|e| format!("GetMetricSpec {:?}: {}", e.code(), e.message()))?
            .into_inner();
        let m = spec
            .metric_specs
            .first()
            .ok_or("GetMetricSpec: empty metric spec list")?;
        #[allow(deprecated)]
        let target = if m.target_size_float > 0.0 {
            m.target_size_float
        } else {
            m.target_size as f64
        };
        let resp = client
            .get_metrics(GetMetricsRequest {
                scaled_object_ref: Some(r.clone()),
                metric_name: m.metric_name.clone(),
            })
            .await
            .map_err(|e| format!("GetMetrics {:?}: {}", e.code(), e.message()))?
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
        Ok::<(f64, f64), String>((sum, target))
    }
    .await;
    let active = client
        .is_active(r.clone())
        .await
        .ok()
        .map(|a| a.into_inner().result);
    (value, active)
}

impl Run {
    async fn run<C: TaskManagerControl>(mut self, mut control: C) -> Result<DriverReport> {
        let mut client = ExternalScalerClient::connect(format!("http://{}", self.addr))
            .await
            .map_err(|e| LabError::Grpc {
                what: format!("connect to {}", self.addr),
                detail: e.to_string(),
            })?;
        let mut report = DriverReport::default();
        let mut recs: VecDeque<(Instant, u32)> = VecDeque::new();
        let start = tokio::time::Instant::now();
        let (mut next_poll, mut next_sync) = (start, start + self.cfg.hpa_sync_period);
        while !self.stop.load(Ordering::SeqCst) {
            let now = tokio::time::Instant::now();
            let round = if now >= next_sync {
                next_sync += self.cfg.hpa_sync_period;
                Round::HpaSync
            } else if now >= next_poll {
                next_poll += self.cfg.polling_interval;
                Round::Poll
            } else {
                let wake = next_poll.min(next_sync);
                tokio::time::sleep_until(wake.min(now + Duration::from_millis(250))).await;
                continue;
            };
            let (value, active) = keda_round(&mut client, &self.so).await;
            let mut actions = Vec::new();
            if let (Round::HpaSync, Ok((sum, target))) = (&round, &value) {
                actions = self.hpa_step(*sum, *target, &mut recs, &mut control).await;
            }
            let reported = value.map(|(sum, _)| sum);
            if let Ok(mut s) = self.state.lock() {
                s.replicas = self.replicas;
                s.reported = Some(reported.clone());
            }
            report.samples.push(Sample {
                at: self.origin.elapsed(),
                round,
                reported,
                active,
                replicas: self.replicas,
                actions,
            });
        }
        Ok(report)
    }

    async fn hpa_step<C: TaskManagerControl>(
        &mut self,
        sum: f64,
        target: f64,
        recs: &mut VecDeque<(Instant, u32)>,
        control: &mut C,
    ) -> Vec<Action> {
        let now = Instant::now();
        let mut actions = Vec::new();
        let Some(raw) = hpa_desired(self.replicas, sum, target, self.cfg.tolerance) else {
            return actions;
        };
        recs.push_back((
            now,
            clamp_replicas(raw, self.cfg.min_replicas, self.cfg.max_replicas),
        ));
        prune(recs, now, self.cfg.stabilization);
        let desired = stabilized(recs, now, self.cfg.stabilization);
        if self.replicas < desired {
            match control.start(desired - self.replicas).await {
                Ok(ids) => {
                    self.replicas = desired;
                    actions.extend(ids.into_iter().map(Action::Started));
                }
                Err(why) => actions.push(Action::StartFailed(why)),
            }
        }
        while self.replicas > desired {
            match control.stop_idle().await {
                Ok(id) => {
                    self.replicas -= 1;
                    actions.push(Action::Stopped(id));
                }
                Err(why) => {
                    actions.push(Action::Refused(why));
                    break;
                }
            }
        }
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_value_math_with_tolerance() {
        let d = |c, s, t| hpa_desired(c, s, t, HPA_TOLERANCE);
        // within 10 %: unchanged
        assert_eq!(d(10, 10.5, 1.0), Some(10));
        assert_eq!(d(10, 9.0, 1.0), Some(10));
        // outside: ceil(sum / target)
        assert_eq!(d(10, 11.5, 1.0), Some(12));
        assert_eq!(d(1, 3.0, 1.0), Some(3));
        assert_eq!(d(3, 2.0, 1.0), Some(2));
        assert_eq!(d(2, 5.0, 2.0), Some(3));
        // with more than 10 replicas a one-replica step is not applied
        assert_eq!(d(11, 12.0, 1.0), Some(11));
        assert_eq!(d(0, 2.0, 1.0), Some(2));
        // a metric the HPA cannot use changes nothing
        assert_eq!(d(2, 5.0, 0.0), None);
        assert_eq!(d(2, f64::NAN, 1.0), None);
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

    #[test]
    fn required_task_managers_round_up() {
        let v = FlinkView {
            vertices: vec![("a".into(), 3), ("b".into(), 1)],
            slots_per_task_manager: 2,
            ..FlinkView::default()
        };
        assert_eq!(v.max_parallelism(), 3);
        assert_eq!(v.required_task_managers(), 2);
    }
}

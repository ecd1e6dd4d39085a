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
//! * Replicas are clamped to `[minReplicaCount, maxReplicaCount]`; scale-up is limited per
//!   sync by the `scaleUp` policies (Kubernetes' default `max(100 %, 4 pods)`; the lab
//!   uses what the example ScaledObjects ship: up to `maxReplicaCount` pods); scale-down is
//!   stabilized: the HPA takes the **highest** recommendation of the stabilization window
//!   (default 300 s, the examples ship 0 s; scale-up 0 s) — same page, "Stabilization
//!   window".
//!
//! The replica arithmetic is the simulator's pure HPA model
//! (`flink_keda_scaler::sim::hpa`), so the lab and `simulate` share one HPA.
//! * A failing `GetMetrics` leaves the replicas unchanged (no `fallback` configured).
//! * Removing a pod: the ReplicaSet removes the pod with the lowest
//!   `controller.kubernetes.io/pod-deletion-cost`, which the scaler sets on idle
//!   TaskManagers
//!   (<https://kubernetes.io/docs/reference/labels-annotations-taints/#pod-deletion-cost>);
//!   the process side picks a TaskManager with all slots free and **refuses** to stop a
//!   busy one, and the refusal is recorded (it means the scaler reported too few).

use std::{
    future::Future,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use flink_keda_scaler::{
    keda::pb::{external_scaler_client::ExternalScalerClient, GetMetricsRequest, ScaledObjectRef},
    sim::hpa::{Hpa, HpaConfig},
};

use super::error::{LabError, Result};

/// Driver settings (the ScaledObject's and the HPA's).
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// KEDA `pollingInterval`.
    pub polling_interval: Duration,
    /// The HPA: `minReplicaCount`/`maxReplicaCount` (KEDA copies them), tolerance, sync
    /// period, scale-down stabilization window.
    pub hpa: HpaConfig,
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
    /// The HPA sync raised the replicas (seconds since the origin, from → to), before the
    /// pods were started: splits "HPA sync" from "TaskManager start" in P1's breakdown.
    Scaled(f64, u32, u32),
    /// A TaskManager was started (its id; the sample's time is when it registered).
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
    /// TaskManagers whose pods the HPA created at or after `from_s` and that registered by
    /// `to_s` (seconds since the origin). A `Started` action is recorded when its
    /// TaskManagers registered, so its time alone cannot tell a spare that registered just
    /// as the step began from a pod created for the step.
    pub fn created_and_registered_within(&self, from_s: f64, to_s: f64) -> usize {
        self.samples
            .iter()
            .filter(|s| s.at.as_secs_f64() <= to_s)
            .map(|s| {
                let created_at = s.actions.iter().find_map(|a| match a {
                    Action::Scaled(when, from, to) if to > from => Some(*when),
                    _ => None,
                });
                let started = s
                    .actions
                    .iter()
                    .filter(|a| matches!(a, Action::Started(_)))
                    .count();
                if created_at.is_some_and(|c| c >= from_s) {
                    started
                } else {
                    0
                }
            })
            .sum()
    }

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
            polling_interval: config.polling_interval,
            hpa: Hpa::with_config(initial, config.hpa),
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
    polling_interval: Duration,
    /// The HPA model; its `replicas` are the TaskManagers actually running.
    hpa: Hpa,
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
        let sync_period = Duration::from_secs_f64(self.hpa.config.sync_period_s);
        let start = tokio::time::Instant::now();
        let (mut next_poll, mut next_sync) = (start, start + sync_period);
        while !self.stop.load(Ordering::SeqCst) {
            let now = tokio::time::Instant::now();
            let round = if now >= next_sync {
                next_sync += sync_period;
                Round::HpaSync
            } else if now >= next_poll {
                next_poll += self.polling_interval;
                Round::Poll
            } else {
                let wake = next_poll.min(next_sync);
                tokio::time::sleep_until(wake.min(now + Duration::from_millis(250))).await;
                continue;
            };
            let (value, active) = keda_round(&mut client, &self.so).await;
            let mut actions = Vec::new();
            if let (Round::HpaSync, Ok((sum, target))) = (&round, &value) {
                actions = self.hpa_step(*sum, *target, &mut control).await;
            }
            let reported = value.map(|(sum, _)| sum);
            if let Ok(mut s) = self.state.lock() {
                s.replicas = self.hpa.replicas;
                s.reported = Some(reported.clone());
            }
            report.samples.push(Sample {
                at: self.origin.elapsed(),
                round,
                reported,
                active,
                replicas: self.hpa.replicas,
                actions,
            });
        }
        Ok(report)
    }

    /// One HPA sync: the model's replica count, then pods started or idle ones stopped
    /// until the running count reaches it (or the process side refuses).
    async fn hpa_step<C: TaskManagerControl>(
        &mut self,
        sum: f64,
        target: f64,
        control: &mut C,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        let now = self.origin.elapsed().as_secs_f64();
        let Some(desired) = self.hpa.desired(now, sum, target) else {
            return actions;
        };
        if self.hpa.replicas < desired {
            actions.push(Action::Scaled(now, self.hpa.replicas, desired));
            match control.start(desired - self.hpa.replicas).await {
                Ok(ids) => {
                    self.hpa.replicas = desired;
                    actions.extend(ids.into_iter().map(Action::Started));
                }
                Err(why) => actions.push(Action::StartFailed(why)),
            }
        }
        while self.hpa.replicas > desired {
            match control.stop_idle().await {
                Ok(id) => {
                    self.hpa.replicas -= 1;
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

    fn sample(at: f64, actions: Vec<Action>) -> Sample {
        Sample {
            at: Duration::from_secs_f64(at),
            round: Round::HpaSync,
            reported: Ok(0.0),
            active: Some(true),
            replicas: 0,
            actions,
        }
    }

    #[test]
    fn a_spare_registered_as_the_step_began_was_not_created_for_it() {
        let started = |id: &str| Action::Started(id.into());
        let report = DriverReport {
            samples: vec![
                // the spare: created at 3 s, registered (and recorded) at 24 s
                sample(
                    24.0,
                    vec![Action::Scaled(3.0, 2, 4), started("tm-2"), started("tm-3")],
                ),
                // created for the step at 37 s, registered at 72 s
                sample(72.0, vec![Action::Scaled(37.0, 4, 5), started("tm-4")]),
            ],
        };
        assert_eq!(report.created_and_registered_within(24.0, 42.0), 0);
        assert_eq!(report.created_and_registered_within(24.0, 80.0), 1);
        assert_eq!(report.created_and_registered_within(0.0, 80.0), 3);
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
